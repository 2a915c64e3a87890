//! The node key and what is derived from it.

use std::fmt;

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

use crate::{Error, Result, random_bytes};

/// A node's secp256k1 key: its libp2p PeerId and its Ethereum address.
///
/// `Debug` shows the address only; the secret never leaves except through
/// [`Keystore::encrypt`](crate::Keystore::encrypt).
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
    /// Base58 PeerId, computed once at construction.
    peer_id: String,
    /// The 20-byte Ethereum address.
    address: [u8; 20],
}

impl Identity {
    /// A fresh random key from the operating system's random number generator.
    pub fn generate() -> Result<Self> {
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            random_bytes(bytes.as_mut())?;
            // Zero or ≥ the curve order: probability ~2^-128, draw again.
            match Self::from_secret_bytes(bytes.as_ref()) {
                Err(Error::InvalidKey) => continue,
                other => return other,
            }
        }
    }

    /// The identity of a 32-byte big-endian secret key.
    pub fn from_secret_bytes(secret: &[u8]) -> Result<Self> {
        // `from_slice` would left-pad a short slice; a key is exactly 32 bytes.
        if secret.len() != 32 {
            return Err(Error::InvalidKey);
        }
        let key = SigningKey::from_slice(secret).map_err(|_| Error::InvalidKey)?;
        Self::from_signing_key(key)
    }

    fn from_signing_key(key: SigningKey) -> Result<Self> {
        let verifying = key.verifying_key();
        let compressed = verifying.to_sec1_point(true);
        let public = libp2p_identity::secp256k1::PublicKey::try_from_bytes(compressed.as_bytes())
            .map_err(|_| Error::InvalidKey)?;
        let peer_id = libp2p_identity::PublicKey::from(public)
            .to_peer_id()
            .to_base58();
        let address = address_of(verifying);
        Ok(Self {
            key,
            peer_id,
            address,
        })
    }

    /// The secret key, 32 bytes big-endian (wiped when dropped). Only for building a
    /// signer of this same key in another library (the libp2p keypair, the alloy
    /// transaction signer): the node has one key, and nothing may store this copy.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.key.to_bytes());
        out
    }

    /// The libp2p PeerId in its base58 text form (`16Uiu2…` for secp256k1 keys).
    pub fn peer_id(&self) -> String {
        self.peer_id.clone()
    }

    /// The key as a libp2p keypair, for building a libp2p swarm.
    pub fn to_libp2p_keypair(&self) -> Result<libp2p_identity::Keypair> {
        let secret = libp2p_identity::secp256k1::SecretKey::try_from_bytes(*self.secret_bytes())
            .map_err(|_| Error::InvalidKey)?;
        Ok(libp2p_identity::secp256k1::Keypair::from(secret).into())
    }

    /// The Ethereum address, EIP-55 checksummed with `0x` (`0x7E5F4552…`).
    pub fn address(&self) -> String {
        checksum_address(&self.address)
    }

    /// The 20 bytes of the Ethereum address.
    pub fn address_bytes(&self) -> [u8; 20] {
        self.address
    }

    /// The public key, SEC1 uncompressed (`0x04 ‖ x ‖ y`, 65 bytes).
    pub fn public_key_uncompressed(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out.copy_from_slice(self.key.verifying_key().to_sec1_point(false).as_bytes());
        out
    }

    /// Signs a 32-byte hash (RFC 6979 deterministic, low-S), returning the Ethereum
    /// `r ‖ s ‖ v` form with `v` = 27 + recovery id.
    pub fn sign_prehash(&self, hash: &[u8; 32]) -> [u8; 65] {
        let (signature, recovery_id): (Signature, RecoveryId) =
            self.key.sign_prehash_recoverable(hash);
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&signature.to_bytes());
        out[64] = 27 + recovery_id.to_byte();
        out
    }

    /// Signs `message` as EIP-191 `personal_sign` does (the hash of
    /// [`eip191_hash`]), returning `r ‖ s ‖ v` with `v` ∈ {27, 28}.
    pub fn sign_message(&self, message: &[u8]) -> [u8; 65] {
        self.sign_prehash(&eip191_hash(message))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("address", &self.address())
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.key.verifying_key() == other.key.verifying_key()
    }
}

impl Eq for Identity {}

/// Keccak-256 (Ethereum's hash; not NIST SHA3-256).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Keccak256::digest(data));
    out
}

/// The EIP-191 `personal_sign` hash:
/// keccak256(`"\x19Ethereum Signed Message:\n"` ‖ decimal length ‖ message).
pub fn eip191_hash(message: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(b"\x19Ethereum Signed Message:\n");
    hasher.update(message.len().to_string().as_bytes());
    hasher.update(message);
    let mut out = [0u8; 32];
    out.copy_from_slice(&hasher.finalize());
    out
}

/// The checksummed address of whoever made `signature` (`r ‖ s ‖ v`, `v` ∈ {0, 1, 27, 28})
/// over `message` with [`Identity::sign_message`].
pub fn recover_message_address(message: &[u8], signature: &[u8]) -> Result<String> {
    recover_prehash_address(&eip191_hash(message), signature)
}

/// The checksummed address of whoever made `signature` (`r ‖ s ‖ v`, `v` ∈ {0, 1, 27, 28})
/// over the 32-byte `hash` with [`Identity::sign_prehash`] (an EIP-712 digest, say).
pub fn recover_prehash_address(hash: &[u8; 32], signature: &[u8]) -> Result<String> {
    let [rs @ .., v] = signature else {
        return Err(Error::InvalidSignature("empty".into()));
    };
    if rs.len() != 64 {
        return Err(Error::InvalidSignature(format!(
            "{} bytes, expected 65",
            signature.len()
        )));
    }
    let recid = match v {
        0 | 1 => *v,
        27 | 28 => v - 27,
        _ => {
            return Err(Error::InvalidSignature(format!(
                "v = {v}, expected 27 or 28"
            )));
        }
    };
    let recid =
        RecoveryId::from_byte(recid).ok_or_else(|| Error::InvalidSignature(format!("v = {v}")))?;
    let sig = Signature::from_slice(rs)
        .map_err(|_| Error::InvalidSignature("r or s out of range".into()))?;
    let key = VerifyingKey::recover_from_prehash(hash, &sig, recid)
        .map_err(|_| Error::InvalidSignature("no key recovers from it".into()))?;
    Ok(checksum_address(&address_of(&key)))
}

/// The checksummed Ethereum address of the node whose libp2p `PeerId` is `peer_id`: a
/// secp256k1 peer id carries its public key, and a node's address is that key's.
///
/// # Errors
/// When `peer_id` does not parse or is not a secp256k1 key's.
pub fn address_of_peer_id(peer_id: &str) -> Result<String> {
    let id: libp2p_identity::PeerId = peer_id
        .parse()
        .map_err(|_| Error::InvalidPeerId(peer_id.to_string()))?;
    // Keys up to 42 bytes (secp256k1 ones) are inlined with the identity multihash:
    // code 0x00, then the length (one varint byte), then the protobuf-encoded key.
    let bytes = id.to_bytes();
    let digest = match bytes.as_slice() {
        [0x00, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest,
        _ => return Err(Error::InvalidPeerId(peer_id.to_string())),
    };
    let public = libp2p_identity::PublicKey::try_decode_protobuf(digest)
        .map_err(|_| Error::InvalidPeerId(peer_id.to_string()))?;
    let secp = public
        .try_into_secp256k1()
        .map_err(|_| Error::InvalidPeerId(peer_id.to_string()))?;
    let key = VerifyingKey::from_sec1_bytes(&secp.to_bytes())
        .map_err(|_| Error::InvalidPeerId(peer_id.to_string()))?;
    Ok(checksum_address(&address_of(&key)))
}

/// Ethereum address: the last 20 bytes of keccak256 of the uncompressed public key
/// without its `0x04` prefix.
fn address_of(key: &VerifyingKey) -> [u8; 20] {
    let point = key.to_sec1_point(false);
    let hash = keccak256(&point.as_bytes()[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash[12..]);
    out
}

/// EIP-55 mixed-case checksum form of an address, with `0x`.
pub fn checksum_address(address: &[u8; 20]) -> String {
    let lower = hex::encode(address);
    let hash = keccak256(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> (if i.is_multiple_of(2) { 4 } else { 0 })) & 0x0f;
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}
