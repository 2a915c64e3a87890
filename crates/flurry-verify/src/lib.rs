//! Verifiable inference (`docs/verification.md`).
//!
//! A job is a client's signed [`JobRequest`](messages::JobRequest) and a provider's
//! signed [`Receipt`](messages::Receipt) (EIP-712, node keys), plus the token ids and
//! the per-chunk commitments the receipt's Merkle root covers, all in one
//! [`Bundle`](bundle::Bundle). Anyone holding the model checks it: [`check::check_signed`]
//! needs only hashing; [`check::audit`] runs the job again, and since Flurry's engine is
//! bit-identical across threads, batching and SIMD paths, every commitment and every
//! sampled token must come out the same.

pub mod bundle;
pub mod check;
pub mod messages;

pub use alloy::primitives::{Address, B256, Bytes};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file that is not a job bundle.
    #[error("{0}")]
    Bundle(String),
    /// A signature that does not parse or recovers to someone else.
    #[error("bad signature: {0}")]
    Signature(String),
    /// A file that could not be written.
    #[error("cannot write {0}")]
    Io(String),
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, Error>;
