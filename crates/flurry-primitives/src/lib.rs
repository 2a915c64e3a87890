//! The shared vocabulary of Flurry.
//!
//! Types here are used by every other crate and do no I/O. The first one is
//! [`ModelId`]: the BLAKE3 root hash of a model file. BLAKE3 is a Merkle tree over
//! 1 KiB chunks, so the same root later lets peers verify any byte range of a
//! model they fetch (bao-style verified streaming) without trusting the sender.
//!
//! ```
//! use flurry_primitives::ModelId;
//! let id = ModelId::of_bytes(b"hello");
//! assert_eq!(id.to_string().len(), 64);
//! assert!(id.matches_prefix(&id.to_string()[..8]));
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Errors produced when parsing identifiers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model id was not 64 hexadecimal characters.
    #[error("invalid model id {0:?}: expected 64 hexadecimal characters (a BLAKE3 hash)")]
    InvalidModelId(String),
}

/// The identity of a model: the BLAKE3 root hash of its GGUF file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId([u8; 32]);

impl ModelId {
    /// Wraps raw hash bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Hashes an in-memory buffer. Files should be hashed with a streaming
    /// [`blake3::Hasher`] and converted with [`From<blake3::Hash>`].
    pub fn of_bytes(data: &[u8]) -> Self {
        blake3::hash(data).into()
    }

    /// True when the lowercase hex form starts with `prefix` (case-insensitive).
    pub fn matches_prefix(&self, prefix: &str) -> bool {
        !prefix.is_empty()
            && prefix.len() <= 64
            && self.to_string().starts_with(&prefix.to_ascii_lowercase())
    }

    /// The first 12 hex characters, for human-readable listings.
    pub fn short(&self) -> String {
        self.to_string()[..12].to_string()
    }
}

impl From<blake3::Hash> for ModelId {
    fn from(h: blake3::Hash) -> Self {
        Self(*h.as_bytes())
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({})", self.short())
    }
}

impl FromStr for ModelId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut out = [0u8; 32];
        if s.len() != 64 {
            return Err(Error::InvalidModelId(s.to_string()));
        }
        hex::decode_to_slice(s, &mut out).map_err(|_| Error::InvalidModelId(s.to_string()))?;
        Ok(Self(out))
    }
}

impl Serialize for ModelId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ModelId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_hex_and_serde() {
        let id = ModelId::of_bytes(b"abc");
        let s = id.to_string();
        assert_eq!(s, blake3::hash(b"abc").to_hex().as_str());
        assert_eq!(s.parse::<ModelId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<ModelId>(&json).unwrap(), id);
    }

    #[test]
    fn rejects_bad_ids() {
        assert!("abc".parse::<ModelId>().is_err());
        assert!("z".repeat(64).parse::<ModelId>().is_err());
    }

    #[test]
    fn prefix_matching() {
        let id = ModelId::of_bytes(b"x");
        let s = id.to_string();
        assert!(id.matches_prefix(&s[..4].to_uppercase()));
        assert!(!id.matches_prefix(""));
        assert!(!id.matches_prefix("not-hex"));
    }
}
