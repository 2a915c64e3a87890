//! Flurry's peer-to-peer layer.
//!
//! One libp2p swarm per node, keyed by the node's secp256k1 identity (so its `PeerId` is
//! the node's), on TCP and QUIC with noise and yamux, running identify, ping, Kademlia
//! (client or server by AutoNAT's verdict), mDNS, gossipsub (signed, validated, scored),
//! AutoNAT, the relay v2 client (and server, on request), DCUtR hole punching, and
//! connection and memory limits.
//!
//! The swarm runs in a task of its own; [`Net`] sends it commands and a bounded channel
//! carries its [`NetEvent`]s. Peer ids and addresses cross this API as strings, so no
//! libp2p type leaks into the rest of the node.

mod behaviour;
pub mod circle;
pub mod infer;
pub mod locate;
mod serve;
mod task;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use circle::{Circle, Member};
pub use infer::{ErrorCode, InferFrame, InferMessage, InferRequest};
pub use task::{MAX_GOSSIP_BYTES, PROTOCOL_VERSION};

/// A stream to a peer on one protocol (reads and writes bytes, `futures` I/O traits).
pub type PeerStream = libp2p::Stream;

/// Streams other peers open on one protocol ([`Net::accept_streams`]).
pub struct Incoming(libp2p_stream::IncomingStreams);

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming").finish_non_exhaustive()
    }
}

impl Incoming {
    /// The next stream and the peer id that opened it; `None` when the swarm stopped.
    pub async fn next(&mut self) -> Option<(String, PeerStream)> {
        use futures_util::StreamExt;
        self.0.next().await.map(|(p, s)| (p.to_string(), s))
    }
}

/// Errors of the network layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A multiaddress did not parse.
    #[error("bad multiaddress {addr:?}: {reason}")]
    BadAddr {
        /// What was given.
        addr: String,
        /// Why it is bad.
        reason: String,
    },
    /// A peer id did not parse.
    #[error("bad peer id {0:?}")]
    BadPeerId(String),
    /// The node key could not become a libp2p key.
    #[error("node key: {0}")]
    Key(String),
    /// The swarm could not be built or could not listen.
    #[error("cannot start the network: {0}")]
    Start(String),
    /// A message is over its size bound.
    #[error("message of {size} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The bound.
        limit: usize,
    },
    /// Gossip could not be sent or subscribed.
    #[error("gossip: {0}")]
    Gossip(String),
    /// A dial failed or the peer could not be found.
    #[error("{0}")]
    Unreachable(String),
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Stopped,
    /// The trusted circle file or a change to it.
    #[error("{0}")]
    Circle(String),
    /// An inference request to a peer failed on the way.
    #[error("inference on peer {peer}: {reason}")]
    Infer {
        /// The peer.
        peer: String,
        /// What went wrong.
        reason: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Limits of a relay server (circuit relay v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayLimits {
    /// Reservations held at once.
    pub max_reservations: usize,
    /// Reservations per peer.
    pub max_reservations_per_peer: usize,
    /// Circuits relayed at once.
    pub max_circuits: usize,
    /// Circuits per peer.
    pub max_circuits_per_peer: usize,
    /// Longest life of one circuit.
    pub max_circuit_duration: Duration,
    /// Most bytes through one circuit (both ways).
    pub max_circuit_bytes: u64,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_reservations: 128,
            max_reservations_per_peer: 4,
            max_circuits: 16,
            max_circuits_per_peer: 4,
            max_circuit_duration: Duration::from_secs(30 * 60),
            max_circuit_bytes: 64 << 20,
        }
    }
}

/// How the swarm runs.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConfig {
    /// Listen addresses (multiaddresses), e.g. `/ip4/0.0.0.0/tcp/4001`,
    /// `/ip4/0.0.0.0/udp/4001/quic-v1`.
    pub listen: Vec<String>,
    /// Peers to join the network through (`/ip4/…/tcp/…/p2p/PEER_ID`).
    pub bootstrap: Vec<String>,
    /// Relays to reserve a slot on when behind NAT (`…/p2p/RELAY_ID`).
    pub relays: Vec<String>,
    /// Find peers on the local network.
    pub mdns: bool,
    /// Serve circuit relay v2 with these limits.
    pub relay_server: Option<RelayLimits>,
    /// Established connections, in total.
    pub max_connections: u32,
    /// Established connections per peer.
    pub max_connections_per_peer: u32,
    /// Connections being set up, inbound.
    pub max_pending_incoming: u32,
    /// Refuse new connections above this fraction of system memory in use.
    pub max_memory_fraction: f64,
    /// Close connections idle for this long.
    pub idle_timeout: Duration,
    /// AutoNAT probes only global addresses (off for tests on loopback and in private
    /// namespace networks).
    pub autonat_global_only: bool,
    /// Upgrade relayed connections to direct ones by hole punching (DCUtR).
    pub hole_punching: bool,
    /// Serve `/flurry/infer/1` to the trusted circle.
    pub serve_infer: bool,
    /// Addresses to announce as this node's own without waiting for AutoNAT to confirm
    /// them (a relay or server with a known public address). A relay server also
    /// announces every concrete address it listens on.
    pub external: Vec<String>,
    /// Inference requests one peer may start per minute.
    pub infer_per_minute: u32,
    /// Inference requests one peer may have running at once.
    pub infer_concurrent_per_peer: usize,
    /// Inference requests served at once, from all peers.
    pub infer_concurrent: usize,
    /// Longest time an answer from a peer may take, from the request to its last
    /// frame; a peer still streaming then is cut off ([`Net::infer`]).
    pub infer_total_timeout: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/tcp/0".into(),
                "/ip4/0.0.0.0/udp/0/quic-v1".into(),
            ],
            bootstrap: Vec::new(),
            relays: Vec::new(),
            mdns: true,
            relay_server: None,
            max_connections: 256,
            max_connections_per_peer: 4,
            max_pending_incoming: 64,
            max_memory_fraction: 0.9,
            idle_timeout: Duration::from_secs(60),
            autonat_global_only: true,
            hole_punching: true,
            serve_infer: true,
            external: Vec::new(),
            infer_per_minute: 30,
            infer_concurrent_per_peer: 2,
            infer_concurrent: 8,
            infer_total_timeout: infer::DEFAULT_TOTAL_TIMEOUT,
        }
    }
}

/// Reachability as AutoNAT sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Nat {
    /// Other peers can dial this node.
    Public,
    /// Behind NAT or a firewall.
    Private,
    /// Not known yet.
    Unknown,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Its peer id.
    pub peer_id: String,
    /// Addresses of the open connections.
    pub addresses: Vec<String>,
    /// Its agent version (from identify), e.g. `flurry/0.1.0`.
    pub agent: Option<String>,
    /// Last ping round trip, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Whether every connection to it goes through a relay.
    pub relayed: bool,
    /// Its name in the trusted circle, if it is a member.
    pub name: Option<String>,
}

/// The swarm's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetStatus {
    /// This node.
    pub peer_id: String,
    /// Where it listens.
    pub listen: Vec<String>,
    /// Addresses others confirmed they can reach.
    pub external: Vec<String>,
    /// AutoNAT's verdict.
    pub nat: Nat,
    /// Relays this node holds a reservation on.
    pub reservations: Vec<String>,
    /// Addresses through those relays (`…/p2p-circuit/p2p/SELF`): give one to a friend
    /// behind another NAT.
    pub relayed_addrs: Vec<String>,
    /// Peers in the Kademlia routing table.
    pub routing_table: usize,
    /// Connected peers.
    pub connected: usize,
    /// Whether this node serves as a relay.
    pub relay_server: bool,
    /// Reachability problems, each with what to do about it.
    pub diagnosis: Vec<String>,
}

/// A gossip message kept for `GET /api/net/gossip`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipMessage {
    /// The topic.
    pub topic: String,
    /// Its signed author.
    pub source: Option<String>,
    /// Its data, as text (lossy UTF-8).
    pub text: String,
}

/// An inference request from a member of the circle, for the node to run. Send the
/// answer's frames on `reply`, ending with `done` or `error`; when `reply` is closed the
/// peer has gone and the work can stop.
#[derive(Debug)]
pub struct Inbound {
    /// The requesting peer.
    pub peer_id: String,
    /// Its circle name.
    pub name: String,
    /// What it asks for (validated).
    pub request: InferRequest,
    /// Where the answer goes.
    pub reply: mpsc::Sender<InferFrame>,
    /// Run it as a committed job (a market job with a signed request): on these prompt
    /// tokens, with chunk commitments salted by the job id (`docs/verification.md`).
    pub commit: Option<Commit>,
}

/// A job whose answer is committed to, chunk by chunk (`docs/verification.md`).
#[derive(Debug)]
pub struct Commit {
    /// The job id, the salt of every chunk commitment.
    pub job_id: [u8; 32],
    /// The prompt's token ids, as the client signed them (the messages are not used).
    pub prompt_tokens: Vec<u32>,
    /// Where the commitments go, before the answer's `done` frame.
    pub out: tokio::sync::oneshot::Sender<Committed>,
}

/// What a committed job produced.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// The prompt's token ids.
    pub prompt: Vec<u32>,
    /// The sampled token ids, with the final end-of-generation token when `eog`.
    pub output: Vec<u32>,
    /// The chunk commitments.
    pub chunks: Vec<[u8; 32]>,
    /// Generation ended on an end-of-generation token.
    pub eog: bool,
}

/// An inference request under way on a peer.
#[derive(Debug)]
pub struct InferCall {
    /// The answer's frames; the last is `done` or `error` (or the channel closes with an
    /// `Err` first when the stream broke).
    pub frames: mpsc::Receiver<Result<InferFrame>>,
    /// The connection used goes through a relay.
    pub relayed: bool,
    /// Time to connect and open the stream.
    pub setup: Duration,
    /// Bytes of the request frame sent.
    pub request_bytes: usize,
}

/// What the swarm reports.
#[derive(Debug, Clone, PartialEq)]
pub enum NetEvent {
    /// A new listen address.
    Listening(String),
    /// A first connection to a peer.
    Connected {
        /// The peer.
        peer_id: String,
        /// Its address.
        address: String,
        /// Through a relay.
        relayed: bool,
    },
    /// The last connection to a peer closed.
    Disconnected {
        /// The peer.
        peer_id: String,
    },
    /// A gossip message on a subscribed topic.
    Gossip {
        /// The topic.
        topic: String,
        /// Its author (signed).
        source: Option<String>,
        /// Its data.
        data: Vec<u8>,
    },
    /// AutoNAT changed its verdict.
    Nat(Nat),
    /// A relay accepted a reservation.
    Reserved {
        /// The relay.
        relay: String,
    },
    /// Hole punching to a peer succeeded: there is now a direct connection.
    HolePunched {
        /// The peer.
        peer_id: String,
    },
}

/// What a topic's validator says of a gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it here and forward it.
    Accept,
    /// Neither deliver nor forward it, without blaming the sender (e.g. a stale message).
    Ignore,
    /// Neither deliver nor forward it, and lower the sender's score: a peer that keeps
    /// sending invalid messages is graylisted, then disconnected.
    Reject,
}

/// Judges a gossip message (its author's peer id, its bytes) before it is delivered or
/// forwarded.
pub type Validator = Arc<dyn Fn(Option<&str>, &[u8]) -> Verdict + Send + Sync>;

pub(crate) enum Command {
    SubscribeValidated(String, Validator, oneshot::Sender<Result<()>>),
    Status(oneshot::Sender<NetStatus>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Dial(String, oneshot::Sender<Result<()>>),
    Subscribe(String, oneshot::Sender<Result<()>>),
    Publish(String, Vec<u8>, oneshot::Sender<Result<()>>),
    FindPeer(String, oneshot::Sender<Result<Vec<String>>>),
    Rendezvous(oneshot::Sender<Vec<(PeerId, libp2p::Multiaddr)>>),
    Bootstrap(oneshot::Sender<Result<()>>),
    Gossip(String, oneshot::Sender<Result<Vec<GossipMessage>>>),
    Ban(String, Duration),
    Provide(Vec<u8>, oneshot::Sender<Result<()>>),
    Providers(Vec<u8>, oneshot::Sender<Result<Vec<String>>>),
}

/// Pauses before each try of [`Net::open_and_send`], milliseconds.
pub(crate) const SEND_TRIES_MS: [u64; 4] = [0, 20, 100, 300];

/// Peers banned at once, at most.
pub const MAX_BANNED: usize = 4096;

/// Providers of one key a lookup returns, at most.
pub const MAX_PROVIDERS: usize = 64;

/// Commands queued for the network task, at most.
const COMMAND_QUEUE: usize = 64;
/// Events buffered for the node; when full, new events are dropped (and counted in the log).
pub const EVENT_QUEUE: usize = 1024;
/// Inbound inference requests waiting for the node; when full, peers get `busy`.
pub const INBOUND_QUEUE: usize = 16;
/// How long closing a finished inference stream may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`Net::connect`] waits for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Peer id → circle name of the peers allowed to run inference here.
pub(crate) type Allowed = Arc<RwLock<HashMap<PeerId, String>>>;

/// A handle on the running swarm. Dropping every handle stops it.
#[derive(Clone)]
pub struct Net {
    tx: mpsc::Sender<Command>,
    peer_id: String,
    control: libp2p_stream::Control,
    allowed: Allowed,
    infer_total_timeout: Duration,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

/// Whether `s` is a valid peer id.
pub fn is_peer_id(s: &str) -> bool {
    s.parse::<PeerId>().is_ok()
}

fn parse_peer(s: &str) -> Result<PeerId> {
    s.parse().map_err(|_| Error::BadPeerId(s.to_string()))
}

impl Net {
    /// Starts the swarm with the node's key and `config`, listening on its addresses and
    /// dialling its bootstrap peers and relays. Needs a tokio runtime.
    ///
    /// Returns the handle, the events, and the inference requests of circle members
    /// (empty unless `config.serve_infer`).
    pub async fn start(
        identity: &flurry_identity::Identity,
        config: NetConfig,
    ) -> Result<(Self, mpsc::Receiver<NetEvent>, mpsc::Receiver<Inbound>)> {
        let key = identity
            .to_libp2p_keypair()
            .map_err(|e| Error::Key(e.to_string()))?;
        Self::start_with_keypair(key, config).await
    }

    /// [`Net::start`] with a libp2p key (tests).
    #[doc(hidden)]
    pub async fn start_with_keypair(
        key: libp2p::identity::Keypair,
        config: NetConfig,
    ) -> Result<(Self, mpsc::Receiver<NetEvent>, mpsc::Receiver<Inbound>)> {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let (in_tx, in_rx) = mpsc::channel(INBOUND_QUEUE);
        let allowed: Allowed = Arc::default();
        let serve = config.serve_infer;
        let infer_total_timeout = config.infer_total_timeout;
        let limits = serve::ServeLimits::from(&config);
        let (peer_id, mut control) = task::spawn(key, config, rx, ev_tx, allowed.clone()).await?;
        let located = control
            .accept(libp2p::StreamProtocol::new(locate::LOCATE_PROTOCOL))
            .map_err(|e| Error::Start(e.to_string()))?;
        tokio::spawn(locate::accept(located));
        if serve {
            let incoming = control
                .accept(libp2p::StreamProtocol::new(infer::INFER_PROTOCOL))
                .map_err(|e| Error::Start(e.to_string()))?;
            tokio::spawn(serve::accept(incoming, allowed.clone(), limits, in_tx));
        }
        Ok((
            Self {
                tx,
                peer_id,
                control,
                allowed,
                infer_total_timeout,
            },
            ev_rx,
            in_rx,
        ))
    }

    /// Sets who may run inference on this node: the members of the circle.
    pub fn set_circle(&self, members: &[Member]) {
        let map = members
            .iter()
            .filter_map(|m| Some((m.peer_id.parse().ok()?, m.name.clone())))
            .collect();
        if let Ok(mut w) = self.allowed.write() {
            *w = map;
        }
    }

    /// Whether `peer_id` is a member of the circle (as last given to [`Net::set_circle`]).
    pub fn in_circle(&self, peer_id: &str) -> bool {
        let Ok(peer) = peer_id.parse::<PeerId>() else {
            return false;
        };
        self.allowed.read().is_ok_and(|a| a.contains_key(&peer))
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Listen and external addresses, NAT status, reservations, routing table size.
    pub async fn status(&self) -> Result<NetStatus> {
        self.ask(Command::Status).await
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>> {
        self.ask(Command::Peers).await
    }

    /// Dials a multiaddress (with or without `/p2p/PEER_ID`); returns once the dial is
    /// under way.
    pub async fn dial(&self, addr: &str) -> Result<()> {
        self.ask(|tx| Command::Dial(addr.to_string(), tx)).await?
    }

    /// Receives gossip on `topic` (as [`NetEvent::Gossip`]).
    pub async fn subscribe(&self, topic: &str) -> Result<()> {
        self.ask(|tx| Command::Subscribe(topic.to_string(), tx))
            .await?
    }

    /// Receives gossip on `topic`, each message first judged by `validator`: only accepted
    /// messages are delivered and forwarded, and on this topic an invalid message costs
    /// its sender score (two of them in a minute graylist it, and the node then
    /// disconnects it).
    pub async fn subscribe_validated(&self, topic: &str, validator: Validator) -> Result<()> {
        self.ask(|tx| Command::SubscribeValidated(topic.to_string(), validator, tx))
            .await?
    }

    /// Publishes `data` (at most [`MAX_GOSSIP_BYTES`]) on `topic`, signed by this node.
    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<()> {
        if data.len() > MAX_GOSSIP_BYTES {
            return Err(Error::TooLarge {
                size: data.len(),
                limit: MAX_GOSSIP_BYTES,
            });
        }
        self.ask(|tx| Command::Publish(topic.to_string(), data, tx))
            .await?
    }

    /// Finds the addresses of `peer_id`: in the DHT (peers that are publicly reachable)
    /// and, at the same time, at this node's rendezvous points (bootstrap peers and
    /// relays hold the signed records of the peers that use them, see [`locate`]); the
    /// first that knows it answers.
    pub async fn find_peer(&self, peer_id: &str) -> Result<Vec<String>> {
        let target = parse_peer(peer_id)?;
        let dht = self.ask(|tx| Command::FindPeer(peer_id.to_string(), tx));
        let points = self.locate(target);
        tokio::pin!(dht, points);
        let (mut dht_err, mut points_err) = (None, None);
        loop {
            tokio::select! {
                r = &mut dht, if dht_err.is_none() => match r {
                    Ok(Ok(a)) if !a.is_empty() => return Ok(a),
                    Ok(Ok(_)) => dht_err = Some("no address".to_string()),
                    Ok(Err(e)) | Err(e) => dht_err = Some(e.to_string()),
                },
                r = &mut points, if points_err.is_none() => match r {
                    Ok(a) => return Ok(a),
                    Err(e) => points_err = Some(e),
                },
            }
            if let (Some(d), Some(p)) = (&dht_err, &points_err) {
                return Err(Error::Unreachable(format!(
                    "peer {peer_id} was not found: {d}; {p}"
                )));
            }
        }
    }

    /// Asks this node's rendezvous points for the signed record of `target`.
    async fn locate(&self, target: PeerId) -> std::result::Result<Vec<String>, String> {
        let points = self
            .ask(Command::Rendezvous)
            .await
            .map_err(|e| e.to_string())?;
        if points.is_empty() {
            return Err(
                "no rendezvous point to ask (give a `--bootstrap` peer or a `--relay`)".into(),
            );
        }
        let mut why = Vec::new();
        for (point, addr) in points {
            if point == target {
                return Ok(vec![addr.to_string()]);
            }
            if let Err(e) = self.dial_and_wait(point, &[addr.to_string()]).await {
                why.push(format!("{point}: {e}"));
                continue;
            }
            let req = locate::LocateRequest::Lookup {
                peer_id: target.to_string(),
            };
            match locate::ask(&mut self.control.clone(), point, &req).await {
                Ok(locate::LocateResponse::Found { record }) => {
                    match locate::addresses_of(&target.to_string(), &record) {
                        Ok(a) if !a.is_empty() => return Ok(a),
                        Ok(_) => why.push(format!("{point}: a record with no address")),
                        Err(e) => {
                            tracing::warn!(%point, error = %e, "a rendezvous point gave a bad record");
                            why.push(format!("{point}: {e}"));
                        }
                    }
                }
                Ok(locate::LocateResponse::NotFound) => {
                    why.push(format!("{point} holds no record of it"));
                }
                Ok(locate::LocateResponse::Refused { reason }) => {
                    why.push(format!("{point} refused: {reason}"));
                }
                Ok(other) => why.push(format!("{point}: unexpected answer {other:?}")),
                Err(e) => why.push(format!("{point}: {e}")),
            }
        }
        Err(format!("not at the rendezvous points ({})", why.join("; ")))
    }

    /// Refreshes the DHT routing table from the known peers.
    pub async fn bootstrap(&self) -> Result<()> {
        self.ask(Command::Bootstrap).await?
    }

    /// Subscribes to `topic` (first call) and returns the last messages received on it.
    pub async fn gossip(&self, topic: &str) -> Result<Vec<GossipMessage>> {
        self.ask(|tx| Command::Gossip(topic.to_string(), tx))
            .await?
    }

    /// Disconnects `peer_id` and closes any connection it makes for `how_long` (at most
    /// [`MAX_BANNED`] peers at once; an unknown id is ignored).
    pub async fn ban(&self, peer_id: &str, how_long: Duration) {
        let _ = self
            .tx
            .send(Command::Ban(peer_id.to_string(), how_long))
            .await;
    }

    /// Announces in the DHT that this node provides `key` (a provider record, kept by
    /// the DHT servers closest to it and republished by Kademlia).
    ///
    /// # Errors
    /// When the local record store is full.
    pub async fn provide(&self, key: &[u8]) -> Result<()> {
        self.ask(|tx| Command::Provide(key.to_vec(), tx)).await?
    }

    /// The peers the DHT lists as providers of `key` (at most [`MAX_PROVIDERS`]).
    ///
    /// # Errors
    /// When the swarm stopped.
    pub async fn providers(&self, key: &[u8]) -> Result<Vec<String>> {
        self.ask(|tx| Command::Providers(key.to_vec(), tx)).await?
    }

    /// Makes sure there is a connection to `peer_id`: dials `addrs` (or, with none, the
    /// addresses the DHT knows) and waits for it. Returns whether every connection to it
    /// goes through a relay.
    pub async fn connect(&self, peer_id: &str, addrs: &[String]) -> Result<bool> {
        let peer = parse_peer(peer_id)?;
        if let Some(r) = self.relayed_if_connected(peer_id).await? {
            return Ok(r);
        }
        let targets = if addrs.is_empty() {
            self.find_peer(peer_id).await?
        } else {
            addrs.to_vec()
        };
        self.dial_and_wait(peer, &targets).await
    }

    /// Whether every connection to `peer_id` is relayed; `None` when not connected.
    async fn relayed_if_connected(&self, peer_id: &str) -> Result<Option<bool>> {
        Ok(self
            .peers()
            .await?
            .iter()
            .find(|p| p.peer_id == peer_id)
            .map(|p| p.relayed))
    }

    /// Dials `targets` (addresses of `peer`) and waits for a connection; returns whether
    /// every connection to it goes through a relay.
    async fn dial_and_wait(&self, peer: PeerId, targets: &[String]) -> Result<bool> {
        let peer_id = peer.to_string();
        if let Some(r) = self.relayed_if_connected(&peer_id).await? {
            return Ok(r);
        }
        let mut last_err = None;
        for a in targets {
            let mut addr = task::parse_addr(a)?;
            if !addr
                .iter()
                .any(|p| matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
            {
                addr.push(libp2p::multiaddr::Protocol::P2p(peer));
            }
            if let Err(e) = self.dial(&addr.to_string()).await {
                last_err = Some(e);
            }
        }
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(r) = self.relayed_if_connected(&peer_id).await? {
                return Ok(r);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(Error::Unreachable(format!(
            "could not connect to {peer_id} within {}s (tried {}){}",
            CONNECT_TIMEOUT.as_secs(),
            if targets.is_empty() {
                "no address".to_string()
            } else {
                targets.join(", ")
            },
            last_err.map(|e| format!(": {e}")).unwrap_or_default()
        )))
    }

    /// Accepts the streams peers open on `protocol` (one taker per protocol; a second
    /// call for the same protocol is an error).
    ///
    /// # Errors
    /// When `protocol` is taken already.
    pub fn accept_streams(&self, protocol: &'static str) -> Result<Incoming> {
        self.control
            .clone()
            .accept(libp2p::StreamProtocol::new(protocol))
            .map(Incoming)
            .map_err(|e| Error::Start(e.to_string()))
    }

    /// Connects to `peer_id` (see [`Net::connect`]) and opens a stream of `protocol`,
    /// within [`CONNECT_TIMEOUT`] for the stream.
    ///
    /// # Errors
    /// A bad peer id, an unreachable peer, or a peer that does not speak `protocol`.
    pub async fn open_stream(
        &self,
        peer_id: &str,
        addrs: &[String],
        protocol: &'static str,
    ) -> Result<PeerStream> {
        let peer = parse_peer(peer_id)?;
        self.connect(peer_id, addrs).await?;
        let mut control = self.control.clone();
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            control.open_stream(peer, libp2p::StreamProtocol::new(protocol)),
        )
        .await
        .map_err(|_| {
            Error::Unreachable(format!(
                "opening a {protocol} stream to {peer_id} timed out"
            ))
        })?
        .map_err(|e| {
            Error::Unreachable(format!("cannot open a {protocol} stream to {peer_id}: {e}"))
        })
    }

    /// [`Net::open_stream`] and writes `frame` on it, trying four times (0, 20, 100 and
    /// 300 ms apart): a busy peer drops a new stream that arrives while its previous one
    /// on the same protocol is still being taken (libp2p-stream hands inbound streams over
    /// one at a time), and a connection can drop at any time.
    ///
    /// # Errors
    /// The last try's error.
    pub async fn open_and_send(
        &self,
        peer_id: &str,
        addrs: &[String],
        protocol: &'static str,
        frame: &[u8],
    ) -> Result<PeerStream> {
        use futures_util::AsyncWriteExt;
        let mut last = Error::Unreachable(format!("no stream to {peer_id}"));
        for pause in SEND_TRIES_MS {
            tokio::time::sleep(Duration::from_millis(pause)).await;
            match self.open_stream(peer_id, addrs, protocol).await {
                Ok(mut s) => match async {
                    s.write_all(frame).await?;
                    s.flush().await
                }
                .await
                {
                    Ok(()) => return Ok(s),
                    Err(e) => {
                        last = Error::Unreachable(format!(
                            "cannot send on {protocol} to {peer_id}: {e}"
                        ));
                    }
                },
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Opens a raw `/flurry/infer/1` stream to a connected peer (protocol tests).
    #[doc(hidden)]
    pub async fn open_infer_stream(&self, peer_id: &str) -> Result<libp2p::Stream> {
        self.open_raw_stream(peer_id, infer::INFER_PROTOCOL).await
    }

    /// Opens a raw stream of `protocol` to a connected peer (protocol tests).
    #[doc(hidden)]
    pub async fn open_raw_stream(
        &self,
        peer_id: &str,
        protocol: &'static str,
    ) -> Result<libp2p::Stream> {
        let peer = parse_peer(peer_id)?;
        self.control
            .clone()
            .open_stream(peer, libp2p::StreamProtocol::new(protocol))
            .await
            .map_err(|e| Error::Unreachable(e.to_string()))
    }

    /// Sends `request` to `peer_id` over `/flurry/infer/1` (connecting first, see
    /// [`Net::connect`]) and streams the answer back.
    ///
    /// The peer is not trusted to end its answer: it is cut off (an `Err` on
    /// [`InferCall::frames`], and the stream is dropped, which tells the peer to stop)
    /// when it sends more tokens or text than `request.max_tokens` allows
    /// ([`infer::AnswerLimits`]), breaks the frame order, stays silent for
    /// [`infer::FRAME_TIMEOUT`], or has not finished within
    /// [`NetConfig::infer_total_timeout`].
    pub async fn infer(
        &self,
        peer_id: &str,
        addrs: &[String],
        request: &InferRequest,
    ) -> Result<InferCall> {
        let started = Instant::now();
        let fail = |reason: String| Error::Infer {
            peer: peer_id.to_string(),
            reason,
        };
        let bytes =
            infer::encode(request, infer::MAX_REQUEST_BYTES).map_err(|e| fail(e.to_string()))?;
        let mut stream = self
            .open_and_send(peer_id, addrs, infer::INFER_PROTOCOL, &bytes)
            .await?;
        use futures_util::AsyncWriteExt;
        let setup = started.elapsed();
        let relayed = self
            .peers()
            .await?
            .iter()
            .find(|p| p.peer_id == peer_id)
            .is_some_and(|p| p.relayed);
        let (tx, rx) = mpsc::channel(64);
        let peer_s = peer_id.to_string();
        let total = self.infer_total_timeout;
        let deadline = tokio::time::Instant::now() + total;
        let mut guard = infer::AnswerGuard::new(infer::AnswerLimits::for_request(request));
        tokio::spawn(async move {
            loop {
                let wait = infer::FRAME_TIMEOUT
                    .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                let next = tokio::select! {
                    n = tokio::time::timeout(
                        wait,
                        infer::read_frame::<_, InferFrame>(&mut stream, infer::MAX_FRAME_BYTES),
                    ) => n,
                    // Nobody reads the answer any more: dropping the stream tells the
                    // peer to stop.
                    () = tx.closed() => return,
                };
                let item = match next {
                    Err(_) if tokio::time::Instant::now() >= deadline => Err(Error::Infer {
                        peer: peer_s.clone(),
                        reason: format!(
                            "the answer did not end within {} s; it was cut off (raise [net] infer_total_timeout_secs for longer answers)",
                            total.as_secs_f64()
                        ),
                    }),
                    Err(_) => Err(Error::Infer {
                        peer: peer_s.clone(),
                        reason: format!("no answer for {}s", infer::FRAME_TIMEOUT.as_secs()),
                    }),
                    Ok(Ok(Some(f))) => match guard.check(&f) {
                        Ok(()) => Ok(f),
                        Err(reason) => Err(Error::Infer {
                            peer: peer_s.clone(),
                            reason,
                        }),
                    },
                    Ok(Ok(None)) => Err(Error::Infer {
                        peer: peer_s.clone(),
                        reason: "the peer closed the stream before the end of the answer".into(),
                    }),
                    Ok(Err(e)) => Err(Error::Infer {
                        peer: peer_s.clone(),
                        reason: e.to_string(),
                    }),
                };
                let (last, broken) = match &item {
                    Ok(f) => (f.is_last(), false),
                    Err(_) => (true, true),
                };
                if tx.send(item).await.is_err() || broken {
                    // Dropped without a clean close: the peer sees a reset and stops.
                    return;
                }
                if last {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.close()).await;
                    return;
                }
            }
        });
        Ok(InferCall {
            frames: rx,
            relayed,
            setup,
            request_bytes: bytes.len(),
        })
    }
}

/// What the node was configured with, for [`diagnose`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Setup {
    pub(crate) relays: Vec<String>,
    pub(crate) bootstrap: usize,
    pub(crate) mdns: bool,
}

/// Reachability problems in `status`, each with what to do about it.
pub(crate) fn diagnose(status: &NetStatus, setup: &Setup) -> Vec<String> {
    let mut out = Vec::new();
    if status.listen.is_empty() && status.relayed_addrs.is_empty() {
        out.push(
            "not listening on any address: check `[net] listen` in flurry.toml or --p2p-listen (e.g. /ip4/0.0.0.0/tcp/4001)"
                .to_string(),
        );
    }
    if status.connected == 0 {
        if setup.bootstrap == 0 && setup.relays.is_empty() {
            out.push(format!(
                "not connected to any peer and no bootstrap peer is configured{}: add one with `flurry up --bootstrap /ip4/HOST/tcp/PORT/p2p/PEER_ID` or `[net] bootstrap`",
                if setup.mdns { " (only peers on this LAN can be found, by mDNS)" } else { "" }
            ));
        } else {
            out.push(
                "not connected to any peer: the bootstrap peers and relays did not answer; check that they run and that this machine can reach them (firewall, address, port)"
                    .to_string(),
            );
        }
    }
    match status.nat {
        Nat::Private if setup.relays.is_empty() => out.push(
            "behind NAT and no relay is configured: peers outside this network cannot reach this node. Add a relay with `flurry up --relay /ip4/HOST/tcp/4001/p2p/RELAY_ID` (or `[net] relays`); run one on a public machine with `flurry relay`"
                .to_string(),
        ),
        Nat::Private if status.reservations.is_empty() => out.push(format!(
            "behind NAT and no relay has accepted a reservation yet (configured: {}): check that the relay runs `flurry relay` and is reachable from here",
            setup.relays.join(", ")
        )),
        Nat::Unknown if status.connected > 0 => out.push(
            "reachability is not known yet: AutoNAT needs peers that can try to dial this node back; it settles within a minute or two"
                .to_string(),
        ),
        _ => {}
    }
    out
}

#[cfg(test)]
mod diagnosis_tests {
    use super::*;

    fn status(nat: Nat, connected: usize, reservations: usize) -> NetStatus {
        NetStatus {
            peer_id: "p".into(),
            listen: vec!["/ip4/127.0.0.1/tcp/1".into()],
            external: Vec::new(),
            nat,
            reservations: vec!["r".into(); reservations],
            relayed_addrs: Vec::new(),
            routing_table: 0,
            connected,
            relay_server: false,
            diagnosis: Vec::new(),
        }
    }

    #[test]
    fn each_problem_names_what_to_do() {
        let none = Setup::default();
        let d = diagnose(&status(Nat::Private, 1, 0), &none);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].starts_with("behind NAT and no relay is configured") && d[0].contains("--relay")
        );
        let relays = Setup {
            relays: vec!["/ip4/1.2.3.4/tcp/4001/p2p/R".into()],
            ..Setup::default()
        };
        let d = diagnose(&status(Nat::Private, 1, 0), &relays);
        assert!(
            d[0].contains("no relay has accepted a reservation") && d[0].contains("1.2.3.4"),
            "{d:?}"
        );
        assert!(diagnose(&status(Nat::Private, 1, 1), &relays).is_empty());
        assert!(diagnose(&status(Nat::Public, 3, 0), &none).is_empty());
        let d = diagnose(&status(Nat::Unknown, 0, 0), &none);
        assert!(d[0].contains("--bootstrap"), "{d:?}");
        let mut s = status(Nat::Public, 1, 0);
        s.listen.clear();
        assert!(diagnose(&s, &none)[0].contains("not listening"));
    }
}
