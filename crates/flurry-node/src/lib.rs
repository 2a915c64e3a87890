//! The composition root of a Flurry node: `flurry up` builds every service from the
//! config, serves the API, and stops gracefully.
//!
//! Start-up: unlock (or, the first time, create) the node key; open the chat history;
//! load the default model; bind the API; write `$FLURRY_HOME/node.json` so the CLI finds
//! the node. Shutdown (SIGINT/SIGTERM): refuse new requests, wait up to
//! `[api] shutdown_grace_secs` for in-flight ones, then stop and remove `node.json`.

pub mod chain;
mod identity;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use flurry_agent::{Agent, History, ModelHost};
use flurry_api::{ApiState, Auth, Limits, NodeIdentity};
use flurry_config::{FileConfig, LogFormat, Paths};
use flurry_identity::ScryptParams;
use flurry_infer::engine::EngineConfig;
use flurry_infer::store::ModelStore;
use serde::{Deserialize, Serialize};

pub use identity::{KeyOrigin, PassphraseOptions, init, unlock, unlock_or_create};

/// Errors of the node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Key handling failed.
    #[error(transparent)]
    Identity(#[from] flurry_identity::Error),
    /// History or models failed.
    #[error(transparent)]
    Agent(#[from] flurry_agent::Error),
    /// Tokens file.
    #[error(transparent)]
    Tokens(#[from] flurry_api::tokens::TokenError),
    /// File-system or socket error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The listen address cannot be used.
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
        /// What to do.
        hint: &'static str,
    },
    /// The listen address does not parse.
    #[error("invalid listen address {0:?}: use IP:PORT, e.g. 127.0.0.1:7878")]
    BadListen(String),
    /// Listening beyond loopback without any token.
    #[error(
        "refusing to listen on {0} without an API token: anyone on the network could use this node. Run `flurry token create` first, or listen on 127.0.0.1"
    )]
    NeedToken(SocketAddr),
    /// `flurry init` found a key.
    #[error("{} already exists: this node has a key (see `flurry id`); refusing to overwrite it", path.display())]
    KeyExists {
        /// The key file.
        path: PathBuf,
    },
    /// No key yet.
    #[error("no node key at {}: run `flurry init` (or `flurry up`, which creates one)", path.display())]
    NoKey {
        /// The key file.
        path: PathBuf,
    },
    /// No passphrase source.
    #[error(
        "no passphrase: pass --password-file FILE (mode 0600), set FLURRY_PASSPHRASE, or run in a terminal to be asked"
    )]
    NoPassphrase,
    /// The two prompted passphrases differ.
    #[error("the passphrases do not match")]
    PassphraseMismatch,
    /// Reading from the terminal failed.
    #[error("cannot read the passphrase from the terminal: {0}")]
    Prompt(std::io::Error),
    /// The random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Rng(String),
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] flurry_chain::Error),
    /// `[chain] mode = "off"`.
    #[error(
        "the chain is off ([chain] mode = \"off\"): choose one with `flurry chain use local|URL`"
    )]
    ChainOff,
    /// `mode = "rpc"` without a URL.
    #[error("[chain] mode = \"rpc\" needs rpc_url: run `flurry chain use http://HOST:PORT`")]
    NoRpcUrl,
    /// Local mode, but no node runs the local chain.
    #[error(
        "the local chain runs inside the node: start it with `flurry up` (or `make run`), or use another chain with `flurry chain use URL`"
    )]
    LocalChainNotRunning,
    /// An amount or address does not parse.
    #[error(
        "invalid {field}: {value:?} (amounts are in ETH, e.g. 0.5; addresses are 0x + 40 hex digits)"
    )]
    BadAmount {
        /// Which setting or argument.
        field: String,
        /// The text given.
        value: String,
    },
    /// Async runtime failure.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The swarm could not start.
    #[error(
        "cannot start the peer-to-peer network: {0} (fix `[net]` in flurry.toml or the --p2p-listen/--bootstrap/--relay flags, or set `[net] enabled = false`)"
    )]
    Net(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The public half of the node identity, kept in `$FLURRY_HOME/identity.json` so that
/// `flurry id` needs no passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIdentity {
    /// libp2p PeerId.
    pub peer_id: String,
    /// EIP-55 Ethereum address.
    pub address: String,
}

/// `$FLURRY_HOME/identity.json`.
pub fn public_identity_file(paths: &Paths) -> PathBuf {
    paths.home.join("identity.json")
}

/// Saves the public identity.
pub fn save_public_identity(
    paths: &Paths,
    id: &flurry_identity::Identity,
) -> Result<PublicIdentity> {
    let p = PublicIdentity {
        peer_id: id.peer_id(),
        address: id.address(),
    };
    let file = public_identity_file(paths);
    let json = serde_json::to_string_pretty(&p).unwrap_or_default();
    flurry_api::tokens::write_private(&file, json.as_bytes())
        .map_err(|source| Error::Io { path: file, source })?;
    Ok(p)
}

/// Reads the public identity, if the node has a key.
pub fn read_public_identity(paths: &Paths) -> Option<PublicIdentity> {
    let text = std::fs::read_to_string(public_identity_file(paths)).ok()?;
    serde_json::from_str(&text).ok()
}

/// What a running node writes to `$FLURRY_HOME/node.json` (mode 0600).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFile {
    /// Base URL of the API, e.g. `http://127.0.0.1:7878`.
    pub url: String,
    /// Process id.
    pub pid: u32,
    /// A token valid for this run, for the CLI of the same user.
    pub token: String,
    /// The node's PeerId.
    pub peer_id: String,
}

impl NodeFile {
    /// The file of a node that is running now, if any (a file left by a dead process
    /// is ignored).
    pub fn find(paths: &Paths) -> Option<Self> {
        let text = std::fs::read_to_string(paths.node_file()).ok()?;
        let f: Self = serde_json::from_str(&text).ok()?;
        std::path::Path::new(&format!("/proc/{}", f.pid))
            .exists()
            .then_some(f)
    }
}

/// Options of `flurry up` beyond the config file.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// Passphrase sources.
    pub passphrase: PassphraseOptions,
    /// Key-derivation cost for a key created now.
    pub scrypt: Option<ScryptParams>,
    /// `--p2p-listen`: replaces `[net] listen` when not empty.
    pub p2p_listen: Vec<String>,
    /// `--bootstrap`: added to `[net] bootstrap`.
    pub bootstrap: Vec<String>,
    /// `--relay`: added to `[net] relays`.
    pub relays: Vec<String>,
    /// `--no-mdns`.
    pub no_mdns: bool,
    /// `flurry relay`: serve circuit relay v2, load no model and run no chain.
    pub relay_only: bool,
}

/// The default listen addresses of `flurry relay`: a fixed, well-known port.
pub const RELAY_LISTEN: [&str; 2] = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"];

/// The swarm settings of `[net]`.
pub fn net_config(n: &flurry_config::NetSection) -> flurry_net::NetConfig {
    flurry_net::NetConfig {
        listen: n.listen.clone(),
        bootstrap: n.bootstrap.clone(),
        relays: n.relays.clone(),
        mdns: n.mdns,
        relay_server: n.relay_server.then(|| flurry_net::RelayLimits {
            max_reservations: n.relay_max_reservations,
            max_circuits: n.relay_max_circuits,
            max_circuit_duration: Duration::from_secs(n.relay_max_circuit_secs),
            max_circuit_bytes: n.relay_max_circuit_bytes,
            ..flurry_net::RelayLimits::default()
        }),
        max_connections: n.max_connections,
        max_connections_per_peer: n.max_connections_per_peer,
        max_memory_fraction: n.max_memory_fraction,
        autonat_global_only: !n.autonat_private_addresses,
        hole_punching: n.hole_punching,
        external: n.external_addresses.clone(),
        infer_per_minute: n.infer_per_minute,
        infer_concurrent_per_peer: n.infer_concurrent_per_peer,
        infer_total_timeout: Duration::from_secs(n.infer_total_timeout_secs),
        ..flurry_net::NetConfig::default()
    }
}

/// Sets up `tracing` output on stderr.
pub fn init_logging(format: LogFormat, level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) is harmless.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Makes everything this process writes from now on owner-only (umask 0077), creates
/// `$FLURRY_HOME` 0700, and takes group and world access away from the home and its
/// `keystore/` and `chain/` folders when an older version (or `mkdir`) made them 0755:
/// the home holds the key, the chat history and the private memory.
pub fn secure_home(paths: &Paths) -> Result<()> {
    flurry_config::private_umask();
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    flurry_config::create_private_dir(&paths.home).map_err(io(&paths.home))?;
    let keystore = paths.home.join("keystore");
    for dir in [paths.home.clone(), keystore, paths.chain_dir()] {
        if flurry_config::tighten_dir(&dir).map_err(io(&dir))? {
            tracing::warn!(
                dir = %dir.display(),
                "other local users could read this folder; it is now owner-only (0700)"
            );
        }
    }
    Ok(())
}

/// Runs the node until SIGINT or SIGTERM. `on_ready` is called with the API URL once it
/// accepts connections.
pub fn up(
    paths: Paths,
    mut config: FileConfig,
    opts: UpOptions,
    on_ready: impl FnOnce(&str),
) -> Result<()> {
    if let Some(l) = &opts.listen {
        config.api.listen.clone_from(l);
    }
    if let Some(m) = &opts.model {
        config.model.default.clone_from(m);
    }
    if let Some(t) = opts.threads {
        config.engine.threads = t;
    }
    if let Some(f) = opts.log_format {
        config.log.format = f;
    }
    if !opts.p2p_listen.is_empty() {
        config.net.listen.clone_from(&opts.p2p_listen);
    } else if opts.relay_only && config.net.listen == flurry_config::NetSection::default().listen {
        config.net.listen = RELAY_LISTEN.iter().map(ToString::to_string).collect();
    }
    config.net.bootstrap.extend(opts.bootstrap.iter().cloned());
    config.net.relays.extend(opts.relays.iter().cloned());
    if opts.no_mdns {
        config.net.mdns = false;
    }
    if opts.relay_only {
        config.net.enabled = true;
        config.net.relay_server = true;
        config.chain.mode = flurry_config::ChainMode::Off;
    }
    init_logging(config.log.format, &config.log.level);
    secure_home(&paths)?;
    let addr: SocketAddr = config
        .api
        .listen
        .parse()
        .map_err(|_| Error::BadListen(config.api.listen.clone()))?;
    let tokens = flurry_api::tokens::TokenFile::load(&paths.tokens_file())?;
    let loopback = addr.ip().is_loopback();
    if !loopback && tokens.tokens.is_empty() {
        return Err(Error::NeedToken(addr));
    }

    let params = opts.scrypt.unwrap_or(ScryptParams::STANDARD);
    let (id, origin) = unlock_or_create(&paths, &opts.passphrase, params)?;
    let public = save_public_identity(&paths, &id)?;
    match &origin {
        KeyOrigin::Unlocked => {}
        KeyOrigin::Created => tracing::info!(
            peer_id = %public.peer_id, address = %public.address,
            "created the node key (first start): {}", paths.keystore_file().display()
        ),
        KeyOrigin::CreatedWithGeneratedPassword(p) => tracing::warn!(
            peer_id = %public.peer_id, address = %public.address,
            "created the node key (first start) with a generated passphrase stored in {} (mode 0600); keep it safe, or re-create the key with `flurry init`",
            p.display()
        ),
    }

    let history = Arc::new(History::open(
        &paths.history_db(),
        &flurry_agent::HistoryKey::from_identity(&id),
    )?);
    let e = &config.engine;
    let engine = EngineConfig::default()
        .with_threads(e.threads)
        .with_queue_capacity(e.queue_capacity)
        .with_max_active(e.max_active)
        .with_context_length(e.context_length);
    let models = Arc::new(ModelHost::new(
        ModelStore::new(&paths.models),
        engine,
        config.model.default.clone(),
        e.max_loaded_models,
    ));
    if !opts.relay_only {
        match models.get(None) {
            Ok(m) => tracing::info!(model = %m.entry.name, "default model ready"),
            Err(err) => {
                tracing::warn!(error = %err, "the default model is not available; requests naming it will fail until it is installed (`make model`)")
            }
        }
    }
    let memory = match flurry_memory::MemoryStore::open(
        &paths.memory_db(),
        &flurry_memory::MemoryKey::from_identity(&id),
    ) {
        Ok(m) => Some(Arc::new(m)),
        Err(e) => {
            tracing::warn!("private memory is not available: {e}");
            None
        }
    };
    let embeddings = Arc::new(flurry_agent::EmbedHost::new(&paths.models));
    let held_models = models.clone();
    let agent = Arc::new(Agent {
        history,
        models,
        max_tokens_cap: config.api.max_tokens_limit,
        recall: memory
            .clone()
            .map(|m| Arc::new(flurry_agent::Recall::new(m, embeddings.clone()))),
    });
    let local_token = flurry_api::tokens::generate_token()?;
    // The local token (node.json) is admin; file tokens are read live, with their scopes.
    let token_hashes = vec![flurry_api::tokens::hash_token(&local_token)];
    let mut state = ApiState::new(
        agent,
        NodeIdentity {
            peer_id: public.peer_id.clone(),
            address: public.address.clone(),
        },
    );
    state.limits = Limits {
        max_body_bytes: config.api.max_body_bytes,
        max_messages: config.api.max_messages,
        max_streams_per_client: config.api.max_streams_per_client,
    };
    state.router.limits = flurry_router::Limits {
        max_tokens: config.api.max_tokens_limit,
        write_timeout: Duration::from_secs(config.api.write_timeout_secs),
    };
    state.auth = Auth {
        require_token: !loopback,
        loopback_hosts_only: loopback,
        token_hashes,
        tokens: flurry_api::tokens::LiveTokens::new(paths.tokens_file()),
    };
    state.cors_origins = config.api.cors_origins.clone();
    state.embeddings = Some(embeddings);
    state.memory = memory;
    state.memory_roots = flurry_api::MemoryRoots::ConfigFile(paths.config_file());
    state.router.privacy = flurry_privacy::PolicySource::ConfigFile(paths.config_file());
    state.router.receipts = Some(flurry_router::receipt::Receipts {
        key: Arc::new(id.clone()),
        models: held_models.clone(),
        dir: paths.circle_receipts_dir(),
    });
    state.router.egress = match flurry_agent::EgressLog::open(
        &paths.egress_db(),
        &flurry_agent::HistoryKey::egress_from_identity(&id),
    ) {
        Ok(l) => Some(Arc::new(l)),
        Err(e) => {
            tracing::warn!(
                "the egress log cannot be opened, so nothing will be sent to peers: {e}"
            );
            None
        }
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("flurry-api")
        .build()
        .map_err(Error::Runtime)?;
    // On this (main) thread: a local anvil lives as long as the thread that starts it.
    let node_chain = match rt.block_on(chain::start(&paths, &config.chain, &id)) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("running without a chain (wallet and payments are off): {e}");
            None
        }
    };
    let sender_limits = chain::sender_limits(&config.chain)?;
    let inbound = if config.net.enabled {
        let net = rt.block_on(flurry_net::Net::start(&id, net_config(&config.net)));
        match net
            .map_err(|e| e.to_string())
            .and_then(|(net, events, inbound)| {
                // The market signs offers with the node key for as long as it runs.
                let market = flurry_market::Market::with_sales_file(
                    Arc::new(id.clone()),
                    net.clone(),
                    node_chain.as_ref().map(|c| c.chain.clone()),
                    Some(paths.market_file()),
                );
                rt.block_on(market.start()).map_err(|e| e.to_string())?;
                market.set_jobs_file(paths.market_jobs_file());
                market.set_receipts(
                    Arc::new(HeldModels(held_models.clone(), config.engine.threads)),
                    paths.market_receipts_dir(),
                    flurry_market::AuditPolicy {
                        rate: config.market.audit_rate,
                        probation_rate: config.market.probation_audit_rate,
                        probation_jobs: config.market.probation_jobs,
                    },
                );
                if let Some(c) = &node_chain {
                    match c.chain.domain() {
                        Ok(domain) => market.set_payments(flurry_market::Payments {
                            receiver: c.receiver.clone(),
                            sender: Arc::new(
                                flurry_chain::TicketSender::new(id.clone(), domain)
                                    .with_limits(sender_limits),
                            ),
                            tokens_per_ticket: flurry_market::job::DEFAULT_TOKENS_PER_TICKET,
                            pay_timeout: flurry_market::job::DEFAULT_PAY_TIMEOUT,
                        }),
                        Err(e) => tracing::warn!("the market cannot pay or be paid: {e}"),
                    }
                }
                // Published models are served from the store by ModelId, within limits.
                let admit: flurry_share::Admit = if config.share.circle_only {
                    let net = net.clone();
                    Arc::new(move |peer: &str| net.in_circle(peer))
                } else {
                    Arc::new(|_: &str| true)
                };
                let sharing = rt
                    .block_on(flurry_share::Sharing::start(
                        net.clone(),
                        ModelStore::new(&paths.models),
                        paths.published_file(),
                        flurry_share::ServeLimits {
                            concurrent: config.share.concurrent,
                            bytes_per_peer_per_min: config.share.bytes_per_peer_per_min,
                            ..flurry_share::ServeLimits::default()
                        },
                        admit,
                    ))
                    .map_err(|e| e.to_string())?;
                let p =
                    flurry_router::P2p::new(net, paths.circle_file()).map_err(|e| e.to_string())?;
                rt.spawn(net_events(events, market.clone(), sharing.clone()));
                Ok((p, inbound, market, sharing))
            }) {
            Ok((p, inbound, market, sharing)) => {
                state.router.p2p = Some(Arc::new(p));
                state.router.market = Some(market.clone());
                state.market = Some(market);
                state.sharing = Some(sharing);
                Some(inbound)
            }
            Err(e) => return Err(Error::Net(e)),
        }
    } else {
        tracing::info!("the peer-to-peer network is off ([net] enabled = false)");
        None
    };
    drop(id);
    state.wallet = node_chain.as_ref().map(|c| flurry_api::Wallet {
        chain: c.chain.clone(),
        tickets: c.receiver.clone(),
    });
    let state = Arc::new(state);
    // Peers' and buyers' answers count in the node's metrics like the API's own.
    let metered = |st: Arc<ApiState>| {
        move |t: &flurry_infer::engine::Timings| {
            st.metrics
                .record(t.prompt_tokens, t.completion_tokens, t.decode_ms);
        }
    };
    if let Some(inbound) = inbound {
        rt.spawn(flurry_router::serve_peers(
            state.router.clone(),
            inbound,
            metered(state.clone()),
        ));
    }
    if let Some(market) = &state.market {
        // Buyers' jobs run like circle members' requests (never with the private
        // memory); the market meters their frames against the tickets paid.
        let (jobs, queued) = tokio::sync::mpsc::channel(flurry_net::INBOUND_QUEUE);
        let _guard = rt.enter();
        match market.serve_jobs(jobs) {
            Ok(()) => {
                rt.spawn(flurry_router::serve_peers(
                    state.router.clone(),
                    queued,
                    metered(state.clone()),
                ));
            }
            Err(e) => tracing::warn!("not serving market jobs: {e}"),
        }
    }
    let grace = Duration::from_secs(config.api.shutdown_grace_secs);
    let limits = flurry_api::ServeLimits {
        max_connections: config.api.max_connections,
        header_timeout: Duration::from_secs(config.api.header_timeout_secs),
        write_timeout: Duration::from_secs(config.api.write_timeout_secs),
    };
    let served = rt.block_on(serve(
        paths,
        state,
        addr,
        local_token,
        public,
        (grace, limits),
        on_ready,
    ));
    if let Some(c) = node_chain {
        let _guard = rt.enter();
        c.stop();
    }
    served
}

async fn serve(
    paths: Paths,
    state: Arc<ApiState>,
    addr: SocketAddr,
    local_token: String,
    public: PublicIdentity,
    (grace, limits): (Duration, flurry_api::ServeLimits),
    on_ready: impl FnOnce(&str),
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind {
            addr: addr.to_string(),
            hint: if source.kind() == std::io::ErrorKind::AddrInUse {
                ": another program (perhaps another `flurry up`) uses it; pick another with --listen"
            } else {
                ""
            },
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| Error::Io {
        path: PathBuf::from(addr.to_string()),
        source,
    })?;
    let url = format!("http://{bound}");
    let node_file = NodeFile {
        url: url.clone(),
        pid: std::process::id(),
        token: local_token,
        peer_id: public.peer_id.clone(),
    };
    let nf = paths.node_file();
    flurry_api::tokens::write_private(
        &nf,
        serde_json::to_string_pretty(&node_file)
            .unwrap_or_default()
            .as_bytes(),
    )
    .map_err(|source| Error::Io {
        path: nf.clone(),
        source,
    })?;
    tracing::info!(peer_id = %public.peer_id, address = %public.address, %url, "node is up; web UI at {url}/");
    on_ready(&url);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let st = state.clone();
    let signal = async move {
        shutdown_signal().await;
        st.shutting_down.store(true, Ordering::Relaxed);
        let active: usize = st
            .agent
            .models
            .loaded()
            .iter()
            .map(|l| l.active + l.queued)
            .sum();
        tracing::info!(
            in_flight = active,
            grace_secs = grace.as_secs(),
            "shutting down: draining in-flight requests"
        );
        let _ = stop_tx.send(true);
    };
    let app = flurry_api::router(state.clone());
    // Header/idle and write timeouts and a connection cap (`axum::serve` has none).
    let server = flurry_api::serve(listener, app, limits, signal);
    let mut stop_rx2 = stop_rx.clone();
    let deadline = async move {
        let _ = stop_rx2.wait_for(|s| *s).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = server => {
            if let Err(e) = r {
                tracing::error!(error = %e, "server error");
            }
            tracing::info!("all requests finished");
        }
        () = deadline => tracing::warn!("grace period over: stopping the remaining requests"),
    }
    drop(stop_rx);
    // Only remove the file if it is still ours.
    if NodeFile::find(&paths).is_some_and(|f| f.pid == std::process::id()) {
        let _ = std::fs::remove_file(&nf);
    }
    tracing::info!("stopped");
    Ok(())
}

/// Logs what the swarm reports, and hands market offers and model announcements heard
/// by gossip to the market and to model sharing.
async fn net_events(
    mut events: tokio::sync::mpsc::Receiver<flurry_net::NetEvent>,
    market: Arc<flurry_market::Market>,
    sharing: Arc<flurry_share::Sharing>,
) {
    use flurry_net::NetEvent as E;
    while let Some(ev) = events.recv().await {
        match ev {
            E::Connected {
                peer_id,
                address,
                relayed,
            } => tracing::info!(peer = %peer_id, %address, relayed, "peer connected"),
            E::Disconnected { peer_id } => tracing::info!(peer = %peer_id, "peer disconnected"),
            E::Nat(nat) => tracing::info!(?nat, "reachability (AutoNAT)"),
            E::Reserved { relay } => tracing::info!(%relay, "relay reservation accepted"),
            E::HolePunched { peer_id } => {
                tracing::info!(peer = %peer_id, "hole punching succeeded: direct connection")
            }
            E::Listening(a) => tracing::debug!(address = %a, "p2p listen address"),
            E::Gossip {
                topic,
                source,
                data,
            } => {
                if topic == flurry_market::OFFERS_TOPIC {
                    market.on_gossip(source.as_deref(), &data);
                } else if topic == flurry_share::MODELS_TOPIC {
                    sharing.on_gossip(source.as_deref(), &data);
                } else {
                    tracing::debug!(%topic, "gossip message");
                }
            }
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}

/// The models in this node's store, for the market's signed requests and audits.
struct HeldModels(Arc<ModelHost>, usize);

impl flurry_market::Models for HeldModels {
    fn by_id(
        &self,
        model_id: &flurry_primitives::ModelId,
    ) -> Option<Arc<flurry_infer::model::Model>> {
        self.0.weights(model_id).ok().flatten()
    }

    fn threads(&self) -> usize {
        match self.1 {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}
