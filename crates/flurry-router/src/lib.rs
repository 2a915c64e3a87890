//! Where a generation runs: on this node's engine, or on a trusted circle peer.
//!
//! [`Router::start`] reads a [`GenSpec`] (what to generate) and either queues it on the
//! local engine ([`Router::start_local`]) or, when it names a peer (the `peer` field, or
//! a model written `NAME/MODEL`), records it in the egress log and sends it to that peer
//! over `/flurry/infer/1` ([`Router::start_remote`]). Either way the caller gets a
//! [`Started`]: the engine's [`Event`]s on an async channel, so a peer's answer streams
//! exactly like a local one. [`serve_peers`] is the other direction: circle members'
//! requests answered with the local engine (never with the private memory).
//!
//! Nothing here knows HTTP: errors are [`Error`]s, which the API maps to statuses.

mod error;
mod local;
mod market;
mod p2p;
pub mod receipt;
mod remote;
mod serve;

use std::sync::Arc;
use std::time::Duration;

use flurry_agent::{Agent, Citation, EgressLog, LoadedModel};
use flurry_infer::engine::{Event, FinishReason, Prompt, Timings};
use flurry_infer::logprob::TokenLogprobs;
use flurry_infer::sampler::SamplingParams;
use serde::Serialize;
use tokio::sync::mpsc;

pub use error::Error;
pub use local::{Terminal, forward};
pub use p2p::P2p;
pub use serve::serve_peers;

/// Whether `model` asks the open market (`market/NAME`, or `market`).
pub fn is_market_model(model: &str) -> bool {
    market::market_model(model).is_some()
}

/// Most stop strings per request.
pub const MAX_STOP: usize = 4;
/// Longest stop string, in bytes.
pub const MAX_STOP_BYTES: usize = 64;

/// Limits of a generation (see `[api]` in `flurry.toml`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest `max_tokens`.
    pub max_tokens: usize,
    /// How long a generation waits on a reader that stopped reading before it is
    /// cancelled.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tokens: 4096,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Runs generations here or on a circle peer. Cheap to clone: every part is shared.
#[derive(Debug, Clone)]
pub struct Router {
    /// The agent (models, private memory).
    pub agent: Arc<Agent>,
    /// Limits of a generation.
    pub limits: Limits,
    /// The log of data sent off the node; requests to peers are refused without it.
    pub egress: Option<Arc<EgressLog>>,
    /// The peer-to-peer network and the trusted circle; `None` = off.
    pub p2p: Option<Arc<P2p>>,
    /// The owner's privacy policy (`[privacy]`): what may leave for each destination.
    pub privacy: flurry_privacy::PolicySource,
    /// The open market, for models written `market/NAME`; `None` = off.
    pub market: Option<Arc<flurry_market::Market>>,
    /// Receipts of circle jobs: the node key signs them (as provider) and countersigns
    /// them (as requester); `None` = circle jobs carry none.
    pub receipts: Option<receipt::Receipts>,
}

/// What a request asks for, after parsing.
#[derive(Debug)]
pub struct GenSpec {
    /// The model (`None`: the default); `NAME/MODEL` or `NAME` for a circle member.
    pub model: Option<String>,
    /// The prompt.
    pub prompt: Prompt,
    /// Sampling parameters, seed included.
    pub sampling: SamplingParams,
    /// Most tokens to generate (`None`: the node's limit, within the context).
    pub max_tokens: Option<usize>,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Retrieve from the private memory for the last user message (chat prompts only).
    pub memory: bool,
    /// Send the request to this peer (a circle name or a peer id) instead of running it
    /// here; a model written `NAME/MODEL` does the same.
    pub peer: Option<String>,
    /// The request's own privacy wish (`"privacy"` in the API): it can only tighten the
    /// owner's policy.
    pub privacy: Option<flurry_privacy::Override>,
    /// Log-probabilities of each generated token with this many alternatives (`None`:
    /// none). Only models on this node give them.
    pub logprobs: Option<usize>,
    /// A market request's most wei per million generated tokens (`None`: any price).
    pub max_price: Option<u128>,
}

/// The peer a request goes to.
#[derive(Debug, Clone, Serialize)]
pub struct PeerUsed {
    /// Its peer id.
    pub peer_id: String,
    /// Its name in the circle, if it has one.
    pub name: Option<String>,
    /// The connection goes through a relay.
    pub relayed: bool,
    /// Time to connect and open the stream, in milliseconds.
    pub setup_ms: f64,
}

/// A queued generation.
#[derive(Debug)]
pub struct Started {
    /// The local model (kept alive while the answer streams); `None` for a peer's.
    pub model: Option<Arc<LoadedModel>>,
    /// The model's name.
    pub model_name: String,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// The answer; the last event is `Done` or `Error`. Dropping it cancels the work.
    pub events: mpsc::Receiver<Event>,
    /// The memory passages the prompt was given.
    pub citations: Vec<Citation>,
    /// The peer that answers, when it is not this node.
    pub peer: Option<PeerUsed>,
    /// The market job's account, when the answer was bought (`"market"` in answers).
    pub market: Option<Arc<std::sync::Mutex<flurry_market::Bought>>>,
}

/// The collected result of a generation.
#[derive(Debug)]
pub struct Finished {
    /// The whole answer.
    pub text: String,
    /// Why it ended.
    pub reason: FinishReason,
    /// Token counts and times.
    pub timings: Timings,
    /// Per generated token, when the request asked for log-probabilities.
    pub logprobs: Vec<TokenLogprobs>,
}

impl Started {
    /// Reads every event and returns the whole text.
    pub async fn collect(mut self) -> Result<Finished, Error> {
        let mut text = String::new();
        let mut logprobs = Vec::new();
        while let Some(ev) = self.events.recv().await {
            match ev {
                Event::Token {
                    text: t,
                    logprobs: lp,
                    ..
                } => {
                    text.push_str(&t);
                    logprobs.extend(lp.map(|b| *b));
                }
                Event::Prefill { .. } | Event::Commitments(_) => {}
                Event::Done {
                    reason,
                    timings,
                    tail,
                } => {
                    text.push_str(&tail);
                    return Ok(Finished {
                        text,
                        reason,
                        timings,
                        logprobs,
                    });
                }
                Event::Error(e) => return Err(Error::Generation(e)),
            }
        }
        Err(Error::Generation("the engine stopped".into()))
    }
}

impl Router {
    /// A router that runs everything here, with default limits, no egress log and no
    /// network.
    pub fn new(agent: Arc<Agent>) -> Self {
        Self {
            agent,
            limits: Limits::default(),
            egress: None,
            p2p: None,
            privacy: flurry_privacy::PolicySource::default(),
            market: None,
            receipts: None,
        }
    }

    /// The network, or [`Error::NetOff`].
    pub fn p2p(&self) -> Result<&P2p, Error> {
        self.p2p.as_deref().ok_or(Error::NetOff)
    }

    /// Checks `max_tokens` against the node's limit; `param` names the field in errors.
    pub fn check_max_tokens(&self, n: Option<usize>, param: &str) -> Result<(), Error> {
        match n {
            Some(0) => Err(Error::invalid(
                param,
                format!("`{param}` must be at least 1"),
            )),
            Some(n) if n > self.limits.max_tokens => Err(Error::invalid(
                param,
                format!(
                    "`{param}` is {n} but this node allows at most {} ([api] max_tokens_limit)",
                    self.limits.max_tokens
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Sends the request to the peer it names, or runs it here.
    pub async fn start(&self, spec: GenSpec) -> Result<Started, Error> {
        if let Some(name) = spec.model.as_deref().and_then(market::market_model) {
            let name = name.to_string();
            spec.sampling.validate().map_err(Error::Sampling)?;
            if spec.logprobs.is_some() || spec.peer.is_some() {
                return Err(Error::invalid(
                    "model",
                    "a market request takes neither `logprobs` nor `peer`: the market picks the seller",
                ));
            }
            return self.start_market(name, spec).await;
        }
        if let Some((member, model)) = self.route(spec.model.as_deref(), spec.peer.as_deref())? {
            spec.sampling.validate().map_err(Error::Sampling)?;
            if spec.logprobs.is_some() {
                return Err(Error::invalid(
                    "logprobs",
                    "log-probabilities come only from models on this node: drop `logprobs` or ask a local model",
                ));
            }
            return self.start_remote(member, model, spec).await;
        }
        self.start_local(spec).await
    }

    /// Publishes `text` on a gossip topic (subscribing to it first), after recording it
    /// in the egress log when there is one.
    pub async fn publish(&self, topic: &str, text: String) -> Result<(), Error> {
        let p = self.p2p()?;
        if let Some(log) = &self.egress {
            log.record(
                &format!("gossip topic {topic}"),
                "gossip message",
                text.len() as u64,
            )
            .map_err(Error::EgressWrite)?;
        }
        p.join(topic).await?;
        p.net.publish(topic, text.into_bytes()).await?;
        Ok(())
    }
}

/// A random seed for requests that give none.
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    // Falling back to the clock is fine: the seed only needs to vary.
    if getrandom::fill(&mut b).is_err() {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    }
    u64::from_le_bytes(b)
}

/// Checks stop strings against [`MAX_STOP`] and [`MAX_STOP_BYTES`]; `param` names the
/// field in errors.
pub fn check_stop(stop: &[String], param: &str) -> Result<(), Error> {
    if stop.len() > MAX_STOP {
        return Err(Error::invalid(
            param,
            format!("at most {MAX_STOP} stop strings are allowed"),
        ));
    }
    if let Some(s) = stop.iter().find(|s| s.len() > MAX_STOP_BYTES) {
        return Err(Error::invalid(
            param,
            format!(
                "stop strings are limited to {MAX_STOP_BYTES} bytes ({} given)",
                s.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_are_bounded() {
        let many = |n| std::iter::repeat_n("a".to_string(), n).collect::<Vec<_>>();
        assert!(check_stop(&many(MAX_STOP), "stop").is_ok());
        let e = check_stop(&many(MAX_STOP + 1), "stop").unwrap_err();
        assert!(
            matches!(e, Error::Invalid { ref param, .. } if param == "stop"),
            "{e}"
        );
        let e = check_stop(&["x".repeat(MAX_STOP_BYTES + 1)], "options.stop").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("stop strings are limited to {MAX_STOP_BYTES} bytes (65 given)")
        );
    }
}
