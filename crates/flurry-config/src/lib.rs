//! Flurry's configuration: the `flurry.toml` file and the data-directory layout.
//!
//! This is the only crate that reads environment variables for paths:
//! - `FLURRY_HOME` (default `~/.flurry`): one node's own data (config, keys, history).
//! - `FLURRY_MODELS` (default `~/.flurry/models`): the model store, shared by every
//!   node home on the machine, as Ollama shares `~/.ollama/models`.
//!
//! ```
//! let cfg: flurry_config::FileConfig = toml::from_str("[engine]\nthreads = 2\n").unwrap();
//! assert_eq!(cfg.engine.threads, 2);
//! assert!(toml::from_str::<flurry_config::FileConfig>("bogus = 1").is_err());
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors from loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No home directory could be found to place `~/.flurry` in.
    #[error("cannot find a home directory: set FLURRY_HOME to choose where Flurry keeps its data")]
    NoHome,
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The config file could not be written.
    #[error("cannot write config file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The config file is not valid (syntax error, unknown key, wrong type).
    #[error("invalid config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the offending key.
        message: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The default model's file stem in the model store.
pub const DEFAULT_MODEL: &str = "SmolLM2-135M-Instruct.Q4_1";

/// Where Flurry keeps things on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The node's own data directory (`$FLURRY_HOME`).
    pub home: PathBuf,
    /// The shared model store (`$FLURRY_MODELS`).
    pub models: PathBuf,
}

impl Paths {
    /// Resolves paths from `FLURRY_HOME` / `FLURRY_MODELS`, falling back to `~/.flurry`.
    pub fn from_env() -> Result<Self> {
        let default_root = || -> Result<PathBuf> {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".flurry"))
                .ok_or(Error::NoHome)
        };
        let home = match std::env::var_os("FLURRY_HOME").filter(|h| !h.is_empty()) {
            Some(h) => PathBuf::from(h),
            None => default_root()?,
        };
        let models = match std::env::var_os("FLURRY_MODELS").filter(|h| !h.is_empty()) {
            Some(m) => PathBuf::from(m),
            None => default_root()?.join("models"),
        };
        Ok(Self { home, models })
    }

    /// Paths rooted at explicit directories (tests, embedding).
    pub fn new(home: impl Into<PathBuf>, models: impl Into<PathBuf>) -> Self {
        Self {
            home: home.into(),
            models: models.into(),
        }
    }

    /// `$FLURRY_HOME/flurry.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.home.join("flurry.toml")
    }

    /// `$FLURRY_HOME/keystore/node.json`: the node key (Ethereum keystore v3).
    pub fn keystore_file(&self) -> PathBuf {
        self.home.join("keystore").join("node.json")
    }

    /// `$FLURRY_HOME/keystore/password`: the passphrase file `flurry up` generates
    /// when it creates the key non-interactively (mode 0600).
    pub fn generated_password_file(&self) -> PathBuf {
        self.home.join("keystore").join("password")
    }

    /// `$FLURRY_HOME/history.db`: chat history (SQLite, WAL).
    pub fn history_db(&self) -> PathBuf {
        self.home.join("history.db")
    }

    /// `$FLURRY_HOME/egress.db`: the append-only log of data sent off the node.
    pub fn egress_db(&self) -> PathBuf {
        self.home.join("egress.db")
    }

    /// `$FLURRY_HOME/tokens.json`: hashes of API bearer tokens.
    pub fn tokens_file(&self) -> PathBuf {
        self.home.join("tokens.json")
    }

    /// `$FLURRY_HOME/node.json`: written by a running `flurry up` (API address, pid,
    /// local token) so that the CLI finds it.
    pub fn node_file(&self) -> PathBuf {
        self.home.join("node.json")
    }

    /// `$FLURRY_HOME/memory.db`: the private memory (SQLCipher, key derived from the
    /// node key).
    pub fn memory_db(&self) -> PathBuf {
        self.home.join("memory.db")
    }

    /// `$FLURRY_HOME/circle.json`: the trusted circle (peers allowed to run inference
    /// on this node).
    pub fn circle_file(&self) -> PathBuf {
        self.home.join("circle.json")
    }

    /// `$FLURRY_HOME/market.json`: what the node sells on the open market (kept across
    /// restarts).
    pub fn market_file(&self) -> PathBuf {
        self.home.join("market.json")
    }

    /// `$FLURRY_HOME/published.json`: the models this node publishes, published again at
    /// the next start.
    pub fn published_file(&self) -> PathBuf {
        self.home.join("published.json")
    }

    /// `$FLURRY_HOME/market-receipts`: the job bundles of market jobs bought with
    /// receipts (evidence for `flurry verify` and `flurry validate`); the audits are kept
    /// beside it in `market-audits.json`.
    pub fn market_receipts_dir(&self) -> PathBuf {
        self.home.join("market-receipts")
    }

    /// `$FLURRY_HOME/circle-receipts`: the countersigned job bundles of circle jobs this
    /// node asked a peer for.
    pub fn circle_receipts_dir(&self) -> PathBuf {
        self.home.join("circle-receipts")
    }

    /// `$FLURRY_HOME/market-jobs.json`: the market jobs this node bought and sold.
    pub fn market_jobs_file(&self) -> PathBuf {
        self.home.join("market-jobs.json")
    }

    /// `$FLURRY_HOME/chain`: deployments, the local chain's state, received tickets.
    pub fn chain_dir(&self) -> PathBuf {
        self.home.join("chain")
    }

    /// `$FLURRY_HOME/chain/tickets.db`: tickets received (SQLite).
    pub fn tickets_db(&self) -> PathBuf {
        self.chain_dir().join("tickets.db")
    }

    /// `$FLURRY_HOME/chain/local.json`: the RPC URL and pid of the local chain while
    /// `flurry up` runs it.
    pub fn local_chain_file(&self) -> PathBuf {
        self.chain_dir().join("local.json")
    }
}

/// Whether `FLURRY_TEST_LIGHT_KDF=1` asks for cheap key derivation for keys created
/// now. For test suites only: such keys are far easier to brute-force.
pub fn test_light_kdf() -> bool {
    std::env::var_os("FLURRY_TEST_LIGHT_KDF").is_some_and(|v| v == "1")
}

/// The key passphrase from `FLURRY_PASSPHRASE`, if set and not empty.
pub fn passphrase_from_env() -> Option<String> {
    std::env::var("FLURRY_PASSPHRASE")
        .ok()
        .filter(|p| !p.is_empty())
}

/// The `flurry.toml` file. Every field has a default; unknown keys are errors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// `[model]`: which model to use when none is named.
    pub model: ModelSection,
    /// `[engine]`: the local inference engine.
    pub engine: EngineSection,
    /// `[api]`: the HTTP API and web UI of `flurry up`.
    pub api: ApiSection,
    /// `[log]`: logging of `flurry up`.
    pub log: LogSection,
    /// `[chain]`: the EVM chain payments settle on.
    pub chain: ChainSection,
    /// `[net]`: the peer-to-peer network.
    pub net: NetSection,
    /// `[memory]`: the private memory (which folders the API may ingest).
    pub memory: MemorySection,
    /// `[privacy]`: what may leave the node, per destination.
    pub privacy: PrivacySection,
    /// `[market]`: how jobs bought on the open market are checked.
    pub market: MarketSection,
    /// `[share]`: serving published models to peers.
    pub share: ShareSection,
}

/// `[share]` section: how this node serves the models it publishes (docs/sharing.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShareSection {
    /// Transfers served at once, all peers together. Default 8.
    pub concurrent: usize,
    /// Bytes one peer may pull per minute; 0 for no limit. Default 1 GiB.
    pub bytes_per_peer_per_min: u64,
    /// Serve published models to circle members only. Default false.
    pub circle_only: bool,
}

impl Default for ShareSection {
    fn default() -> Self {
        Self {
            concurrent: 8,
            bytes_per_peer_per_min: 1 << 30,
            circle_only: false,
        }
    }
}

/// `[market]` section: audits of jobs bought (docs/verification.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarketSection {
    /// The share of a seller's jobs audited (re-executed here) once past probation.
    /// Default 0.025.
    pub audit_rate: f64,
    /// The share audited while a (seller, model) pair is on probation. Default 0.45.
    pub probation_audit_rate: f64,
    /// Jobs a (seller, model) pair stays on probation. Default 100.
    pub probation_jobs: u64,
}

impl Default for MarketSection {
    fn default() -> Self {
        Self {
            audit_rate: 0.025,
            probation_audit_rate: 0.45,
            probation_jobs: 100,
        }
    }
}

impl MarketSection {
    /// Checks the rates are shares (0 to 1).
    ///
    /// # Errors
    /// A rate outside 0..=1, named.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, v) in [
            ("audit_rate", self.audit_rate),
            ("probation_audit_rate", self.probation_audit_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("[market] {name} = {v}: a share from 0 to 1"));
            }
        }
        Ok(())
    }
}

/// What may leave the node for a destination (`[privacy]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrivacyRule {
    /// Nothing goes there: the request runs locally or fails.
    Never,
    /// It goes with personal data replaced by placeholders (restored in the answer).
    Scrubbed,
    /// It goes as typed.
    AsIs,
}

/// `[privacy]` section: the privacy router's policy (docs/privacy.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySection {
    /// Requests to a member of the trusted circle. Default `as-is`.
    pub circle: PrivacyRule,
    /// Requests to a seller on the open market. Default `scrubbed`.
    pub market: PrivacyRule,
}

impl Default for PrivacySection {
    fn default() -> Self {
        Self {
            circle: PrivacyRule::AsIs,
            market: PrivacyRule::Scrubbed,
        }
    }
}

/// `[memory]` section: the private memory (docs/memory.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemorySection {
    /// Absolute folders that `POST /api/memory/ingest` may read (after symlinks are
    /// resolved); nothing else on disk can be ingested through the API. The CLI
    /// (`flurry ingest PATH`) is not limited by it. Edited by `flurry memory roots add`.
    /// Default empty: the API ingests nothing.
    pub roots: Vec<PathBuf>,
}

/// `[net]` section: the libp2p swarm (docs/p2p.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetSection {
    /// Join the peer-to-peer network at all. Default true.
    pub enabled: bool,
    /// Listen addresses (multiaddresses); `--p2p-listen` replaces them. Default
    /// `/ip4/0.0.0.0/tcp/0` and `/ip4/0.0.0.0/udp/0/quic-v1` (a free port each).
    pub listen: Vec<String>,
    /// Peers to join through (`/ip4/HOST/tcp/PORT/p2p/PEER_ID`); `--bootstrap` adds.
    pub bootstrap: Vec<String>,
    /// Relays to hold a reservation on, so peers can reach this node behind NAT
    /// (`/ip4/HOST/tcp/4001/p2p/RELAY_ID`); `--relay` adds.
    pub relays: Vec<String>,
    /// Addresses to announce as this node's own (a known public address).
    pub external_addresses: Vec<String>,
    /// Find peers on the local network by mDNS. Default true.
    pub mdns: bool,
    /// Upgrade relayed connections to direct ones by hole punching (DCUtR). Default true.
    pub hole_punching: bool,
    /// Serve circuit relay v2 to others (what `flurry relay` turns on). Default false.
    pub relay_server: bool,
    /// Relay server: reservations held at once. Default 128.
    pub relay_max_reservations: usize,
    /// Relay server: circuits relayed at once. Default 16.
    pub relay_max_circuits: usize,
    /// Relay server: longest life of one circuit, seconds. Default 1800.
    pub relay_max_circuit_secs: u64,
    /// Relay server: most bytes through one circuit. Default 67108864 (64 MiB).
    pub relay_max_circuit_bytes: u64,
    /// Established connections in total. Default 256.
    pub max_connections: u32,
    /// Established connections per peer. Default 4.
    pub max_connections_per_peer: u32,
    /// Refuse new connections while system memory in use is above this fraction.
    /// Default 0.9.
    pub max_memory_fraction: f64,
    /// Let AutoNAT judge reachability on private addresses too (a LAN or a test
    /// network of private ranges); off, only public addresses count. Default false.
    pub autonat_private_addresses: bool,
    /// Inference requests one circle member may start per minute. Default 30.
    pub infer_per_minute: u32,
    /// Inference requests one circle member may have running at once. Default 2.
    pub infer_concurrent_per_peer: usize,
    /// Longest time, in seconds, an answer from a peer may take from the request to its
    /// last frame; a peer still streaming then is cut off. Default 600.
    pub infer_total_timeout_secs: u64,
}

impl Default for NetSection {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: vec![
                "/ip4/0.0.0.0/tcp/0".to_string(),
                "/ip4/0.0.0.0/udp/0/quic-v1".to_string(),
            ],
            bootstrap: Vec::new(),
            relays: Vec::new(),
            external_addresses: Vec::new(),
            mdns: true,
            hole_punching: true,
            relay_server: false,
            relay_max_reservations: 128,
            relay_max_circuits: 16,
            relay_max_circuit_secs: 1800,
            relay_max_circuit_bytes: 64 << 20,
            max_connections: 256,
            max_connections_per_peer: 4,
            max_memory_fraction: 0.9,
            autonat_private_addresses: false,
            infer_per_minute: 30,
            infer_concurrent_per_peer: 2,
            infer_total_timeout_secs: 600,
        }
    }
}

/// Which chain the node settles on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainMode {
    /// `flurry up` runs a local anvil (state kept in `$FLURRY_HOME/chain`), deploys the
    /// contracts once and funds the node from anvil's dev account.
    Local,
    /// An existing chain at `rpc_url` (Ethereum, an L2, a shared dev chain).
    Rpc,
    /// No chain: wallet and payments are off.
    Off,
}

/// `[chain]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainSection {
    /// `local`, `rpc` or `off` (set with `flurry chain use local|URL|off`). Default `local`.
    pub mode: ChainMode,
    /// RPC endpoint for `mode = "rpc"`, e.g. `http://127.0.0.1:8545`.
    pub rpc_url: String,
    /// anvil binary for `mode = "local"`; empty means `$FLURRY_ANVIL`, then `PATH`.
    pub anvil: String,
    /// ETH the local chain's dev account sends the node at start when its balance is
    /// below half of it. Default "100".
    pub local_funding_eth: String,
    /// Contract addresses; empty means what `flurry chain deploy` recorded for the chain.
    pub ticket_broker: String,
    /// See `ticket_broker`.
    pub provider_registry: String,
    /// See `ticket_broker`.
    pub model_registry: String,
    /// Deployment: seconds between `wallet unlock` and `wallet withdraw`. Default 86400.
    pub unlock_period_secs: u64,
    /// Deployment: seconds a provider waits to withdraw unbonded stake. Default 604800.
    pub unbonding_period_secs: u64,
    /// Deployment: length of a reserve round, seconds. Default 86400.
    pub reserve_round_secs: u64,
    /// Deployment: shares a sender's reserve is split into per round. Default 8.
    pub reserve_recipients: u64,
    /// Deployment: share of a slash paid to the challenger, basis points. Default 5000.
    pub challenger_share_bps: u16,
    /// Deployment: bonded stake (ETH) a provider needs to draw on reserves. Default "0.1".
    pub min_stake_eth: String,
    /// Tickets this node accepts: face value in ETH. Default "0.01".
    pub ticket_face_value_eth: String,
    /// Tickets this node accepts: one in this many wins. Default 100.
    pub ticket_win_one_in: u64,
    /// Seconds between redemption passes over winning tickets. Default 30.
    pub redeem_interval_secs: u64,
    /// Most tickets per redemption transaction. Default 20.
    pub redeem_batch: usize,
    /// Paying: the largest face value (ETH) of one ticket this node signs, whatever the
    /// payee asks for. Default "0.05".
    pub max_face_value_eth: String,
    /// Paying: the largest expected value (ETH) of one ticket this node signs
    /// (face value × win probability). Default "0.001".
    pub max_ticket_ev_eth: String,
}

impl Default for ChainSection {
    fn default() -> Self {
        Self {
            mode: ChainMode::Local,
            rpc_url: String::new(),
            anvil: String::new(),
            local_funding_eth: "100".to_string(),
            ticket_broker: String::new(),
            provider_registry: String::new(),
            model_registry: String::new(),
            unlock_period_secs: 86_400,
            unbonding_period_secs: 7 * 86_400,
            reserve_round_secs: 86_400,
            reserve_recipients: 8,
            challenger_share_bps: 5_000,
            min_stake_eth: "0.1".to_string(),
            ticket_face_value_eth: "0.01".to_string(),
            ticket_win_one_in: 100,
            redeem_interval_secs: 30,
            redeem_batch: 20,
            max_face_value_eth: "0.05".to_string(),
            max_ticket_ev_eth: "0.001".to_string(),
        }
    }
}

/// Sets `[chain] mode` (and `rpc_url` for `rpc`) in the config file at `path`, keeping
/// the rest of the file (comments included) as it is. Writes atomically.
pub fn set_chain(path: &Path, mode: ChainMode, rpc_url: Option<&str>) -> Result<()> {
    edit_config(path, |doc| {
        let chain = doc
            .entry("chain")
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
            .as_table_mut()
            .ok_or_else(|| "[chain] is not a table".to_string())?;
        let mode_str = match mode {
            ChainMode::Local => "local",
            ChainMode::Rpc => "rpc",
            ChainMode::Off => "off",
        };
        chain["mode"] = toml_edit::value(mode_str);
        if let Some(url) = rpc_url {
            chain["rpc_url"] = toml_edit::value(url);
        }
        Ok(())
    })
}

/// Sets `[privacy] circle` and/or `market` in the config file at `path`, keeping the rest
/// of the file as it is. Writes atomically.
pub fn set_privacy(
    path: &Path,
    circle: Option<PrivacyRule>,
    market: Option<PrivacyRule>,
) -> Result<()> {
    let name = |r: PrivacyRule| match r {
        PrivacyRule::Never => "never",
        PrivacyRule::Scrubbed => "scrubbed",
        PrivacyRule::AsIs => "as-is",
    };
    edit_config(path, |doc| {
        let privacy = doc
            .entry("privacy")
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
            .as_table_mut()
            .ok_or_else(|| "[privacy] is not a table".to_string())?;
        if let Some(r) = circle {
            privacy["circle"] = toml_edit::value(name(r));
        }
        if let Some(r) = market {
            privacy["market"] = toml_edit::value(name(r));
        }
        Ok(())
    })
}

/// Reads the config file at `path` (missing: empty), lets `edit` change the document,
/// checks that the loader accepts the result, and writes it atomically (a temporary
/// file, fsync, rename): a crash leaves the old file or the new one, never half of one.
/// Comments and the rest of the file are kept.
fn edit_config<T>(
    path: &Path,
    edit: impl FnOnce(&mut toml_edit::DocumentMut) -> std::result::Result<T, String>,
) -> Result<T> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let invalid = |message: String| Error::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| invalid(e.to_string()))?;
    let out = edit(&mut doc).map_err(invalid)?;
    let text = doc.to_string();
    // Refuse to write a file the loader would reject.
    FileConfig::parse(&text).map_err(invalid)?;
    let write = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(write)?;
    }
    let tmp = path.with_extension(format!("toml.{}.tmp", std::process::id()));
    let written = (|| {
        use std::io::Write;
        let mut f = private_file_options().open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            // The rename itself must reach the disk too.
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(write)?;
    Ok(out)
}

/// The `[memory] roots` array of `doc`, created when missing.
fn roots_array(
    doc: &mut toml_edit::DocumentMut,
) -> std::result::Result<&mut toml_edit::Array, String> {
    let memory = doc
        .entry("memory")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_mut()
        .ok_or_else(|| "[memory] is not a table".to_string())?;
    memory
        .entry("roots")
        .or_insert_with(|| toml_edit::value(toml_edit::Array::new()))
        .as_array_mut()
        .ok_or_else(|| "[memory] roots is not an array of paths".to_string())
}

/// Adds `root` (an absolute path) to `[memory] roots` in the config file at `path`,
/// keeping the rest of the file; writes atomically. Returns false when it was there
/// already.
pub fn add_memory_root(path: &Path, root: &Path) -> Result<bool> {
    let text = root.to_str().ok_or_else(|| Error::Invalid {
        path: path.to_path_buf(),
        message: format!(
            "{} is not valid UTF-8, which flurry.toml cannot hold",
            root.display()
        ),
    })?;
    if !root.is_absolute() {
        return Err(Error::Invalid {
            path: path.to_path_buf(),
            message: format!("{text} is not an absolute path"),
        });
    }
    edit_config(path, |doc| {
        let roots = roots_array(doc)?;
        if roots.iter().any(|v| v.as_str() == Some(text)) {
            return Ok(false);
        }
        roots.push(text);
        Ok(true)
    })
}

/// Removes `root` from `[memory] roots` in the config file at `path`, keeping the rest
/// of the file; writes atomically. Returns false when it was not listed.
pub fn remove_memory_root(path: &Path, root: &Path) -> Result<bool> {
    let Some(text) = root.to_str() else {
        return Ok(false);
    };
    if !path.exists() {
        return Ok(false);
    }
    edit_config(path, |doc| {
        let roots = roots_array(doc)?;
        let before = roots.len();
        roots.retain(|v| v.as_str() != Some(text));
        Ok(roots.len() != before)
    })
}

/// Options that create a file readable and writable by its owner only (0600), whatever
/// the process umask.
pub fn private_file_options() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Creates `dir` and its missing parents with mode 0700 (owner only), whatever the
/// process umask. Existing directories are left as they are (see [`tighten_dir`]).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Takes group and world access away from an existing directory `dir` (mode 0700).
/// Returns whether it had to: a home made by an older version, or by hand with the
/// usual 0755, lets every local user read the node's files.
pub fn tighten_dir(dir: &Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::symlink_metadata(dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if !meta.is_dir() || meta.permissions().mode() & 0o077 == 0 {
            return Ok(false);
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(false)
    }
}

/// Sets the process umask to 0077, so that every file and directory this process
/// creates from now on (SQLite's `-wal`, `-shm` and `-journal` files included, which it
/// creates with the umask) is for the owner only. Call it first thing in `main`.
pub fn private_umask() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// `[api]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// Address the API and web UI listen on. A non-loopback address requires a token
    /// (`flurry token create`). Default `127.0.0.1:7878`.
    pub listen: String,
    /// Origins allowed by CORS (e.g. `https://app.example`); empty means CORS is closed.
    /// Default empty.
    pub cors_origins: Vec<String>,
    /// Largest request body accepted, in bytes; larger gets 413. Default 1048576 (1 MiB).
    pub max_body_bytes: usize,
    /// Most messages in one chat request; more gets 400. Default 256.
    pub max_messages: usize,
    /// Largest `max_tokens` a request may ask for; more gets 400. Default 4096.
    pub max_tokens_limit: usize,
    /// Seconds `flurry up` waits for in-flight requests on SIGINT/SIGTERM before it
    /// stops them. Default 10.
    pub shutdown_grace_secs: u64,
    /// Most HTTP connections served at once; further ones wait in the kernel's accept
    /// queue until one closes. Default 256.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers, and the longest an idle
    /// keep-alive connection stays open (slowloris). Default 10.
    pub header_timeout_secs: u64,
    /// Seconds a response may wait on a client that stops reading before the connection
    /// is dropped and its generation cancelled. Default 30.
    pub write_timeout_secs: u64,
    /// Most generations (streaming or not) one client runs at once: per token, or per IP
    /// address without one; more gets 429. Default 8.
    pub max_streams_per_client: usize,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7878".to_string(),
            cors_origins: Vec::new(),
            max_body_bytes: 1 << 20,
            max_messages: 256,
            max_tokens_limit: 4096,
            shutdown_grace_secs: 10,
            max_connections: 256,
            header_timeout_secs: 10,
            write_timeout_secs: 30,
            max_streams_per_client: 8,
        }
    }
}

/// `[log]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `text` (human-readable) or `json` (one object per line). Default `text`.
    pub format: LogFormat,
    /// Filter in `tracing` syntax, e.g. `info` or `flurry_api=debug,info`; the
    /// `RUST_LOG` variable overrides it. Default `info`.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[model]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// Model used when a command names none: a name from `flurry model list`,
    /// a ModelId prefix, or a path to a GGUF file. Default: SmolLM2-135M-Instruct.Q4_1.
    pub default: String,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            default: DEFAULT_MODEL.to_string(),
        }
    }
}

/// `[engine]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    /// Worker threads for matrix kernels; 0 means one per CPU core. Default 0.
    pub threads: usize,
    /// Requests waiting for the engine beyond this are refused ("queue full"). Default 16.
    pub queue_capacity: usize,
    /// Requests generated at the same time (interleaved step by step). Default 4.
    pub max_active: usize,
    /// Context window used per request, capped at the model's own. 0 means the
    /// model's full context. Default 4096.
    pub context_length: usize,
    /// Models `flurry up` keeps loaded at once; loading another unloads the least
    /// recently used idle one. Default 2.
    pub max_loaded_models: usize,
}

impl Default for EngineSection {
    fn default() -> Self {
        Self {
            threads: 0,
            queue_capacity: 16,
            max_active: 4,
            context_length: 4096,
            max_loaded_models: 2,
        }
    }
}

impl FileConfig {
    /// Loads `path`; a missing file yields the defaults.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::parse(&text).map_err(|message| Error::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses TOML text, returning the parser's message on error.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let cfg: Self = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        if cfg.api.cors_origins.iter().any(|o| o.trim() == "*") {
            // A wildcard would let every web page drive the node (and its wallet).
            return Err("[api] cors_origins: \"*\" is not allowed, as it would let every web page use this node; list the origins you trust, e.g. [\"https://app.example\"]".into());
        }
        if cfg.api.max_connections == 0
            || cfg.api.max_streams_per_client == 0
            || cfg.api.header_timeout_secs == 0
            || cfg.api.write_timeout_secs == 0
        {
            return Err("[api] max_connections, max_streams_per_client, header_timeout_secs and write_timeout_secs must be at least 1".into());
        }
        cfg.market.validate()?;
        if cfg.net.infer_total_timeout_secs == 0 {
            return Err(
                "[net] infer_total_timeout_secs must be at least 1 (600 is the default)".into(),
            );
        }
        if let Some(r) = cfg.memory.roots.iter().find(|r| !r.is_absolute()) {
            // A relative root would depend on the directory the node was started in.
            return Err(format!(
                "[memory] roots: {} is not an absolute path (write the full path, or use `flurry memory roots add PATH`)",
                r.display()
            ));
        }
        Ok(cfg)
    }

    /// The effective config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attack: `[api] cors_origins = ["*"]` used to reach tower-http's wildcard check
    /// and panic at start; it must be a clear config error instead.
    #[test]
    fn wildcard_cors_origin_is_a_clear_error() {
        let e = FileConfig::parse("[api]\ncors_origins = [\"*\"]\n").unwrap_err();
        assert!(
            e.contains("cors_origins") && e.contains("https://app.example"),
            "{e}"
        );
        let ok = FileConfig::parse("[api]\ncors_origins = [\"https://app.example\"]\n").unwrap();
        assert_eq!(ok.api.cors_origins, ["https://app.example"]);
        assert_eq!(ok.api.max_connections, 256);
        assert!(FileConfig::parse("[api]\nmax_connections = 0\n").is_err());
    }

    #[test]
    fn infer_total_timeout_has_a_default_and_must_be_positive() {
        assert_eq!(FileConfig::default().net.infer_total_timeout_secs, 600);
        let c = FileConfig::parse("[net]\ninfer_total_timeout_secs = 30\n").unwrap();
        assert_eq!(c.net.infer_total_timeout_secs, 30);
        let e = FileConfig::parse("[net]\ninfer_total_timeout_secs = 0\n").unwrap_err();
        assert!(e.contains("infer_total_timeout_secs"), "{e}");
    }

    #[test]
    fn set_chain_keeps_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flurry.toml");
        std::fs::write(
            &path,
            "# my node\n[api]\nlisten = \"127.0.0.1:9000\" # custom\n",
        )
        .unwrap();
        set_chain(&path, ChainMode::Rpc, Some("http://10.0.0.2:8545")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# my node") && text.contains("# custom"),
            "{text}"
        );
        let cfg = FileConfig::load(&path).unwrap();
        assert_eq!(cfg.chain.mode, ChainMode::Rpc);
        assert_eq!(cfg.chain.rpc_url, "http://10.0.0.2:8545");
        assert_eq!(cfg.api.listen, "127.0.0.1:9000");
        set_chain(&path, ChainMode::Local, None).unwrap();
        let cfg = FileConfig::load(&path).unwrap();
        assert_eq!(cfg.chain.mode, ChainMode::Local);
        // A file the loader would reject is not rewritten.
        std::fs::write(&path, "[chain]\nmode = \"local\"\nbogus = 1\n").unwrap();
        assert!(set_chain(&path, ChainMode::Off, None).is_err());
        assert!(std::fs::read_to_string(&path).unwrap().contains("bogus"));
    }

    #[test]
    fn memory_roots_are_added_and_removed_keeping_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flurry.toml");
        std::fs::write(
            &path,
            "# mine\n[api]\nlisten = \"127.0.0.1:9000\" # custom\n",
        )
        .unwrap();
        assert!(add_memory_root(&path, Path::new("/home/u/notes")).unwrap());
        assert!(!add_memory_root(&path, Path::new("/home/u/notes")).unwrap());
        assert!(add_memory_root(&path, Path::new("/home/u/mail")).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# mine") && text.contains("# custom"),
            "{text}"
        );
        let cfg = FileConfig::load(&path).unwrap();
        assert_eq!(
            cfg.memory.roots,
            vec![
                PathBuf::from("/home/u/notes"),
                PathBuf::from("/home/u/mail")
            ]
        );
        assert_eq!(cfg.api.listen, "127.0.0.1:9000");
        assert!(remove_memory_root(&path, Path::new("/home/u/notes")).unwrap());
        assert!(!remove_memory_root(&path, Path::new("/home/u/notes")).unwrap());
        let cfg = FileConfig::load(&path).unwrap();
        assert_eq!(cfg.memory.roots, vec![PathBuf::from("/home/u/mail")]);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        // Relative roots are refused, in the file and by the editor.
        assert!(add_memory_root(&path, Path::new("notes")).is_err());
        let err = FileConfig::parse("[memory]\nroots = [\"notes\"]\n").unwrap_err();
        assert!(err.contains("absolute"), "{err}");
    }

    /// A home created with the usual umask (0022) was 0755: every local user could list
    /// and read the node's files. The helpers create 0700 and tighten an existing 0755.
    #[cfg(unix)]
    #[test]
    fn private_dirs_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("a/b");
        create_private_dir(&home).unwrap();
        for d in [dir.path().join("a"), home.clone()] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}: {mode:o}", d.display());
        }
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(tighten_dir(&home).unwrap());
        assert!(!tighten_dir(&home).unwrap());
        let mode = std::fs::metadata(&home).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn missing_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = FileConfig::load(&dir.path().join("flurry.toml")).unwrap();
        assert_eq!(cfg, FileConfig::default());
        assert_eq!(cfg.model.default, DEFAULT_MODEL);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = FileConfig::parse("[engine]\nthreadz = 3\n").unwrap_err();
        assert!(err.contains("threadz"), "{err}");
    }

    #[test]
    fn unknown_key_in_new_sections_is_named() {
        let err = FileConfig::parse("[api]\nlisten = \"127.0.0.1:1\"\nport = 3\n").unwrap_err();
        assert!(err.contains("port"), "{err}");
        let err = FileConfig::parse("[log]\nformat = \"xml\"\n").unwrap_err();
        assert!(err.contains("xml"), "{err}");
        let cfg = FileConfig::parse("[log]\nformat = \"json\"\n").unwrap();
        assert_eq!(cfg.log.format, LogFormat::Json);
    }

    #[test]
    fn roundtrips() {
        let mut cfg = FileConfig::default();
        cfg.engine.threads = 3;
        assert_eq!(FileConfig::parse(&cfg.to_toml()).unwrap(), cfg);
    }
}
