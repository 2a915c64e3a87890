//! Flurry's settlement layer on an EVM chain.
//!
//! - [`bindings`]: typed bindings (alloy `sol!`) of `TicketBroker`, `ProviderRegistry` and
//!   `ModelRegistry`, generated from the compiled artifacts.
//! - [`Chain`]: a connection that signs with the node's own key (no second key): deploy,
//!   wallet (balance, deposit, reserve, unlock, withdraw), ticket redemption.
//! - [`ticket`]: ticket encoding, hashing, signing and the win rule.
//! - [`TicketSender`] / [`TicketReceiver`]: paying for jobs with tickets, and validating,
//!   storing (SQLite, crash-safe) and redeeming them in batches.
//! - [`LocalChain`]: a local anvil for `[chain] mode = "local"` and for tests.
//! - [`Deployments`]: which contracts live on which chain.
//!
//! Settlement is never on the hot path of a job: a receiver validates a ticket against
//! cached sender funds and a local database, and winners reach the chain later, in
//! batches, from a background task.

pub mod bindings;
mod client;
mod deployments;
mod local;
mod receiver;
mod sender;
pub mod ticket;

pub use alloy::primitives::utils::{format_ether, parse_ether};
pub use alloy::primitives::{Address, B256, U256, keccak256};
pub use client::{
    BatchOutcome, Chain, Contracts, DeployParams, DisputeInfo, ModelRecord, SenderInfo, TxInfo,
    WalletSummary,
};
pub use deployments::{Deployment, Deployments};
pub use local::{LocalChain, checkout_dir, find_anvil, stop_stale_anvil};
pub use receiver::{
    Accepted, ReceiverConfig, RedeemReport, Rejection, SenderFunds, Shortfall, TicketReceiver,
    TicketStatus, spawn_redeemer,
};
pub use sender::{MAX_TICKETS_PER_JOB, SenderError, SenderLimits, TicketSender};

use std::path::PathBuf;

/// Errors of the settlement layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The RPC URL does not parse.
    #[error("invalid RPC URL {0:?}: expected http(s)://HOST:PORT (e.g. http://127.0.0.1:8545)")]
    BadUrl(String),
    /// The RPC endpoint failed or could not be reached.
    #[error("chain RPC failed: {}", with_causes(.0))]
    Transport(#[from] alloy::transports::TransportError),
    /// A contract call failed (other than a decoded revert).
    #[error("contract call failed: {0}")]
    Contract(alloy::contract::Error),
    /// Waiting for a transaction failed.
    #[error("transaction did not complete: {0}")]
    Pending(#[from] alloy::providers::PendingTransactionError),
    /// A contract reverted with a known custom error.
    #[error("{call} was refused by the contract: {reason}")]
    Reverted {
        /// The function called.
        call: &'static str,
        /// The decoded custom error, e.g. `TicketAlreadyRedeemed(0x…)`.
        reason: String,
    },
    /// A mined transaction has status 0.
    #[error("transaction {0} reverted")]
    TxFailed(B256),
    /// No contracts are recorded for the chain.
    #[error(
        "no Flurry contracts are known on chain {chain_id}: run `flurry chain deploy` (or set their addresses in [chain] of flurry.toml)"
    )]
    NotDeployed {
        /// The chain.
        chain_id: u64,
    },
    /// A recorded contract address has no code (the chain was reset).
    #[error(
        "no contract code at {address} on chain {chain_id} (was the chain reset?): run `flurry chain deploy` again"
    )]
    NoCode {
        /// The address.
        address: Address,
        /// The chain.
        chain_id: u64,
    },
    /// The anvil binary is missing.
    #[error(
        "anvil not found: run `make -C {} chain-deps` (installs the pinned foundry toolchain), or set [chain] anvil = \"/path/to/anvil\", or use another chain with `flurry chain use URL`",
        checkout.display()
    )]
    AnvilMissing {
        /// The source checkout whose `make chain-deps` installs it.
        checkout: std::path::PathBuf,
    },
    /// anvil did not start.
    #[error("anvil did not start: {0}")]
    AnvilStart(String),
    /// Local development funding only works on a dev chain (anvil).
    #[error("no unlocked dev account on this chain: fund {0} from another wallet")]
    NoDevAccount(Address),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON file is malformed.
    #[error("{}: {message}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Rng(String),
    /// The ticket database failed.
    #[error("ticket database: {0}")]
    Db(#[from] rusqlite::Error),
}

impl From<alloy::contract::Error> for Error {
    fn from(e: alloy::contract::Error) -> Self {
        match e {
            alloy::contract::Error::TransportError(t) => Self::Transport(t),
            alloy::contract::Error::PendingTransactionError(p) => Self::Pending(p),
            other => Self::Contract(other),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename, fsync of the
/// directory), so a crash leaves the old or the new file, never a torn one.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// An error and its causes, `a: b: c` (HTTP clients hide the cause, e.g. a refused TLS
/// certificate, in their sources), without repeating a cause already in the text.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
