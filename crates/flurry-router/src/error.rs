//! Why a generation, a peer request or a circle change failed.

use flurry_net::ErrorCode;

/// Errors of the router. Each says what to do; the API maps them to HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The peer-to-peer network is off on this node.
    #[error(
        "the peer-to-peer network is off on this node: set `[net] enabled = true` in flurry.toml and restart it"
    )]
    NetOff,
    /// The market is off on this node (no network or no chain).
    #[error(
        "the market is off on this node: it needs the peer-to-peer network ([net] enabled = true) and a chain ([chain] mode = \"local\" or `flurry chain use URL`)"
    )]
    MarketOff,
    /// The market found no seller, or the purchase failed before it started.
    #[error("market: {0}")]
    Market(#[from] flurry_market::Error),
    /// The network layer failed or refused.
    #[error(transparent)]
    Net(#[from] flurry_net::Error),
    /// A request field is out of bounds.
    #[error("{message}")]
    Invalid {
        /// The offending field.
        param: String,
        /// What is wrong with it.
        message: String,
    },
    /// The sampling parameters are out of range.
    #[error(transparent)]
    Sampling(flurry_infer::Error),
    /// The agent failed (unknown model, bad request, …).
    #[error(transparent)]
    Agent(#[from] flurry_agent::Error),
    /// The engine refused or failed.
    #[error(transparent)]
    Infer(#[from] flurry_infer::Error),
    /// The generation broke off, or failed after it started.
    #[error("{0}")]
    Generation(String),
    /// The request was lost before the engine took it.
    #[error("the request was lost")]
    Lost,
    /// The request names a peer that is neither in the circle nor a peer id.
    #[error(
        "{key:?} is neither a member of your circle nor a peer id: add it with `flurry circle add PEER_ID --name {key}`"
    )]
    UnknownPeer {
        /// What the request named.
        key: String,
    },
    /// Only chat requests can go to a peer.
    #[error("only chat requests can go to a peer: use /v1/chat/completions or /api/chat")]
    NotChat,
    /// The request to a peer is over the protocol's size bound.
    #[error(transparent)]
    RequestTooLarge(flurry_net::infer::CodecError),
    /// The egress log cannot be written, so nothing was sent.
    #[error("not sent: the egress log cannot be written ({0})")]
    EgressWrite(flurry_agent::Error),
    /// This node has no egress log, so nothing is sent to peers.
    #[error("not sent: this node has no egress log to record the request in")]
    NoEgressLog,
    /// The peer closed the stream before it answered.
    #[error("peer {label} closed the stream")]
    PeerClosed {
        /// The peer, as `name (peer id)` or its peer id.
        label: String,
    },
    /// The peer sent something other than `start` first.
    #[error("peer {label} broke the protocol: {frame} before start")]
    PeerProtocol {
        /// The peer.
        label: String,
        /// The frame it sent, in debug form.
        frame: String,
    },
    /// The peer refused the request.
    #[error("peer {label}: {message}")]
    PeerRefused {
        /// The peer.
        label: String,
        /// Why, as a code.
        code: ErrorCode,
        /// Why, in words.
        message: String,
    },
    /// The API follows too many gossip topics already.
    #[error("this node follows {0} gossip topics already")]
    TooManyTopics(usize),
    /// The circle's lock is poisoned.
    #[error("circle lock poisoned")]
    CirclePoisoned,
    /// The circle file cannot be written.
    #[error(transparent)]
    CircleSave(flurry_net::Error),
    /// The owner's privacy policy (or the request's own `privacy`) keeps the request on
    /// this node.
    #[error("not sent: {reason}")]
    PrivacyRefused {
        /// Which rule, and what to do.
        reason: String,
    },
    /// The privacy policy cannot be read: nothing leaves under a policy nobody wrote.
    #[error("not sent: the privacy policy cannot be read ({0}); fix [privacy] in flurry.toml")]
    Policy(String),
    /// The request could not be scrubbed.
    #[error("not sent: the request could not be scrubbed ({0})")]
    Scrub(String),
}

impl Error {
    /// An [`Error::Invalid`].
    pub(crate) fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            param: param.to_string(),
            message: message.into(),
        }
    }
}
