//! A Flurry node's identity: one secp256k1 key that is both the node's libp2p
//! [`PeerId`](libp2p_identity::PeerId) and its Ethereum address.
//!
//! - [`Identity`] holds the key and derives the PeerId (`16Uiu2…`), the EIP-55
//!   checksummed address, and EIP-191 (`personal_sign`) signatures.
//! - [`Keystore`] is the Ethereum keystore v3 file (scrypt or PBKDF2 + AES-128-CTR),
//!   the format geth and MetaMask read and write; [`Keystore::save`] writes it
//!   atomically with mode 0600 and never overwrites an existing key.
//! - [`read_password_file`] reads a passphrase from a file only it may read.
//!
//! ```
//! use flurry_identity::{Identity, Keystore, ScryptParams};
//!
//! let id = Identity::from_secret_bytes(&[1; 32]).unwrap();
//! assert!(id.peer_id().starts_with("16Uiu2"));
//! assert!(id.address().starts_with("0x"));
//!
//! // `ScryptParams::STANDARD` (geth's default) is for real keys; LIGHT keeps this fast.
//! let json = Keystore::encrypt(&id, "hunter2", ScryptParams::LIGHT).unwrap().to_json();
//! let back = Keystore::decrypt(&json, "hunter2").unwrap();
//! assert_eq!(back.address(), id.address());
//! assert!(matches!(
//!     Keystore::decrypt(&json, "wrong"),
//!     Err(flurry_identity::Error::WrongPassphrase)
//! ));
//! ```

use std::path::PathBuf;

mod identity;
mod keystore;
mod password;

pub use identity::{
    Identity, address_of_peer_id, checksum_address, eip191_hash, keccak256,
    recover_message_address, recover_prehash_address,
};
pub use keystore::{Keystore, ScryptParams};
pub use password::read_password_file;

/// Errors from this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bytes that are not a valid secp256k1 secret key.
    #[error(
        "invalid secp256k1 secret key: it must be 32 bytes, not zero, and below the curve order"
    )]
    InvalidKey,
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Rng(String),
    /// A signature that is not 65 bytes `r ‖ s ‖ v` or from which no key can be recovered.
    #[error("invalid signature: {0}")]
    InvalidSignature(String),
    /// Not the peer id of a secp256k1 key.
    #[error("{0:?} is not the peer id of a secp256k1 key")]
    InvalidPeerId(String),
    /// A keystore that is not valid JSON or lacks or mangles a required field.
    #[error("malformed keystore: {0}")]
    Malformed(String),
    /// A well-formed keystore that uses something this crate does not implement
    /// (a version other than 3, a cipher other than aes-128-ctr, an unknown KDF, or
    /// KDF parameters beyond this crate's resource limits).
    #[error("unsupported keystore: {0}")]
    Unsupported(String),
    /// The keystore MAC does not match: the passphrase is wrong (or the file was altered).
    #[error("wrong passphrase: the keystore's MAC does not match (or the file is corrupted)")]
    WrongPassphrase,
    /// The decrypted key does not belong to the address the keystore names.
    #[error("keystore names address {stated} but its key belongs to {actual}")]
    AddressMismatch {
        /// The `address` field of the file (lowercase hex, no `0x`).
        stated: String,
        /// The address of the decrypted key (lowercase hex, no `0x`).
        actual: String,
    },
    /// [`Keystore::save`] found a file already at the path.
    #[error(
        "key file {path} already exists; refusing to overwrite it, as it may hold the only copy \
         of a key. Load it instead, or move it away first if you really want a new key"
    )]
    AlreadyExists {
        /// The path that already exists.
        path: PathBuf,
    },
    /// A password file that users other than its owner can read or write.
    #[error(
        "password file {path} is accessible by other users (mode {mode:03o}); \
         run `chmod 600 {path}` and try again"
    )]
    InsecurePasswordFile {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A password file that is not UTF-8.
    #[error("password file {path} is not valid UTF-8")]
    PasswordNotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file (or directory).
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Fills `buf` from the operating system's random number generator.
fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Rng(e.to_string()))
}
