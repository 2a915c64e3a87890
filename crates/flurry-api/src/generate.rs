//! Running a generation for a request: load the model, tokenize, queue, and bridge the
//! engine's blocking event channel into async code.

use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use axum::http::StatusCode;
use flurry_agent::{Citation, LoadedModel, recall};
use flurry_infer::engine::{Event, FinishReason, GenerateRequest, Prompt, Timings};
use flurry_infer::sampler::SamplingParams;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::{AppState, MAX_STOP, MAX_STOP_BYTES};

/// How often a bridge checks whether its reader went away.
const POLL: Duration = Duration::from_millis(100);
/// Events buffered between the engine and a slow client.
const BRIDGE_CAPACITY: usize = 64;

/// What a request asks for, after parsing.
pub(crate) struct GenSpec {
    pub(crate) model: Option<String>,
    pub(crate) prompt: Prompt,
    pub(crate) sampling: SamplingParams,
    pub(crate) max_tokens: Option<usize>,
    pub(crate) stop: Vec<String>,
    /// Retrieve from the private memory for the last user message (chat prompts only).
    pub(crate) memory: bool,
    /// Send the request to this peer (a circle name or a peer id) instead of running it
    /// here; a model written `NAME/MODEL` does the same.
    pub(crate) peer: Option<String>,
}

/// A queued generation.
pub(crate) struct Started {
    /// The local model (kept alive while the answer streams); `None` for a peer's.
    pub(crate) model: Option<Arc<LoadedModel>>,
    /// The model's name.
    pub(crate) model_name: String,
    pub(crate) prompt_tokens: usize,
    pub(crate) events: mpsc::Receiver<Event>,
    /// The memory passages the prompt was given.
    pub(crate) citations: Vec<Citation>,
    /// The peer that answers, when it is not this node.
    pub(crate) peer: Option<crate::p2p::PeerUsed>,
}

/// The collected result of a generation.
pub(crate) struct Finished {
    pub(crate) text: String,
    pub(crate) reason: FinishReason,
    pub(crate) timings: Timings,
}

/// A random seed for requests that give none.
pub(crate) fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    // Falling back to the clock is fine: the seed only needs to vary.
    if getrandom::fill(&mut b).is_err() {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    }
    u64::from_le_bytes(b)
}

/// Checks stop strings against the limits.
pub(crate) fn check_stop(stop: &[String], param: &str) -> Result<(), ApiError> {
    if stop.len() > MAX_STOP {
        return Err(ApiError::bad_field(
            param,
            format!("at most {MAX_STOP} stop strings are allowed"),
        ));
    }
    if let Some(s) = stop.iter().find(|s| s.len() > MAX_STOP_BYTES) {
        return Err(ApiError::bad_field(
            param,
            format!(
                "stop strings are limited to {MAX_STOP_BYTES} bytes ({} given)",
                s.len()
            ),
        ));
    }
    Ok(())
}

/// Checks `max_tokens` against the node's limit.
pub(crate) fn check_max_tokens(
    st: &AppState,
    n: Option<usize>,
    param: &str,
) -> Result<(), ApiError> {
    match n {
        Some(0) => Err(ApiError::bad_field(
            param,
            format!("`{param}` must be at least 1"),
        )),
        Some(n) if n > st.limits.max_tokens => Err(ApiError::bad_field(
            param,
            format!(
                "`{param}` is {n} but this node allows at most {} ([api] max_tokens_limit)",
                st.limits.max_tokens
            ),
        )),
        _ => Ok(()),
    }
}

/// Sends the request to the peer it names, or runs it here.
pub(crate) async fn start(st: &AppState, spec: GenSpec) -> Result<Started, ApiError> {
    if let Some((member, model)) =
        crate::p2p::route(st, spec.model.as_deref(), spec.peer.as_deref())?
    {
        spec.sampling
            .validate()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        return crate::p2p::start_remote(st, member, model, spec).await;
    }
    start_local(st, spec).await
}

/// Loads the model, tokenizes and queues the request on this node.
pub(crate) async fn start_local(st: &AppState, spec: GenSpec) -> Result<Started, ApiError> {
    spec.sampling
        .validate()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let agent = st.agent.clone();
    let cap = st.limits.max_tokens;
    let stall = st.limits.write_timeout;
    let (ready_tx, ready_rx) = oneshot::channel();
    let (tx, rx) = mpsc::channel(BRIDGE_CAPACITY);
    tokio::task::spawn_blocking(move || {
        let setup = || -> Result<_, ApiError> {
            let model = agent.models.get(spec.model.as_deref())?;
            let mut prompt = spec.prompt;
            let mut citations = Vec::new();
            if let (true, Some(r), Prompt::Chat(msgs)) = (spec.memory, &agent.recall, &mut prompt)
                && let Some(q) = msgs.iter().rev().find(|m| m.role == "user")
            {
                let passages = r.passages(&q.content, &model).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "answering without memory");
                    Vec::new()
                });
                recall::with_memory(msgs, &passages);
                citations = recall::citations(&passages);
            }
            let tokens = model.engine.tokenize(&prompt)?;
            let room = model.engine.context_length() - tokens.len();
            let max_tokens = spec.max_tokens.unwrap_or(cap).min(room).max(1);
            let n = tokens.len();
            let req = GenerateRequest::new(Prompt::Tokens(tokens))
                .with_sampling(spec.sampling)
                .with_max_tokens(max_tokens)
                .with_stop(spec.stop);
            let events = model.engine.submit(req)?;
            Ok((model, n, events, citations))
        };
        match setup() {
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
            Ok((model, n, events, citations)) => {
                if ready_tx.send(Ok((model, n, citations))).is_ok() {
                    forward(|d| events.recv_timeout(d), &tx, stall);
                }
            }
        }
    });
    let (model, prompt_tokens, citations) = ready_rx
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the request was lost"))??;
    Ok(Started {
        model_name: model.entry.name.clone(),
        model: Some(model),
        prompt_tokens,
        events: rx,
        citations,
        peer: None,
    })
}

/// Moves events from a blocking source to an async channel until the end, or until the
/// reader is gone or has taken nothing for `stall` (then it returns, dropping the
/// source, which cancels the work and frees this blocking thread).
pub(crate) fn forward<T: Terminal + Send + 'static>(
    mut recv: impl FnMut(Duration) -> Result<T, RecvTimeoutError>,
    tx: &mpsc::Sender<T>,
    stall: Duration,
) {
    loop {
        match recv(POLL) {
            Ok(ev) => {
                let last = ev.is_terminal();
                if !send_within(tx, ev, stall) || last {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if tx.is_closed() {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = tx.blocking_send(T::stopped());
                return;
            }
        }
    }
}

/// Sends `ev`, waiting at most `stall` for room; false when the reader is gone or
/// stalled. (Polling, not `blocking_send`, which would wait forever on a reader that
/// stopped reading.)
fn send_within<T>(tx: &mpsc::Sender<T>, mut ev: T, stall: Duration) -> bool {
    let start = std::time::Instant::now();
    let mut nap = Duration::from_millis(1);
    loop {
        match tx.try_send(ev) {
            Ok(()) => return true,
            Err(TrySendError::Closed(_)) => return false,
            Err(TrySendError::Full(back)) => {
                if start.elapsed() >= stall {
                    tracing::info!(
                        stall_secs = stall.as_secs_f64(),
                        "the reader stopped reading: cancelling the generation"
                    );
                    return false;
                }
                ev = back;
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(20));
            }
        }
    }
}

/// Events that can end a stream.
pub(crate) trait Terminal {
    fn is_terminal(&self) -> bool;
    fn stopped() -> Self;
}

impl Terminal for Event {
    fn is_terminal(&self) -> bool {
        matches!(self, Event::Done { .. } | Event::Error(_))
    }
    fn stopped() -> Self {
        Event::Error("the engine stopped".into())
    }
}

impl Started {
    /// Reads every event and returns the whole text.
    pub(crate) async fn collect(mut self, st: &AppState) -> Result<Finished, ApiError> {
        let mut text = String::new();
        while let Some(ev) = self.events.recv().await {
            match ev {
                Event::Token { text: t, .. } => text.push_str(&t),
                Event::Prefill { .. } => {}
                Event::Done {
                    reason,
                    timings,
                    tail,
                } => {
                    text.push_str(&tail);
                    st.metrics.record(
                        timings.prompt_tokens,
                        timings.completion_tokens,
                        timings.decode_ms,
                    );
                    return Ok(Finished {
                        text,
                        reason,
                        timings,
                    });
                }
                Event::Error(e) => {
                    return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e));
                }
            }
        }
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the engine stopped",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attack: a client starts a streamed answer and never reads it. Before, the bridge
    /// thread sat in `blocking_send` forever, holding a blocking thread and the
    /// engine's sequence; now it gives up after the stall time and drops the source,
    /// which the engine sees as a cancellation.
    #[test]
    fn a_reader_that_stops_reading_frees_the_bridge() {
        let (src_tx, src_rx) = std::sync::mpsc::sync_channel::<Event>(1024);
        let (tx, rx) = mpsc::channel::<Event>(4);
        let producer = std::thread::spawn(move || {
            // An endless generation: stops only when the bridge drops its receiver.
            while src_tx
                .send(Event::Token {
                    id: 1,
                    text: "x".into(),
                })
                .is_ok()
            {}
        });
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            forward(|d| src_rx.recv_timeout(d), &tx, Duration::from_millis(300));
            let _ = done_tx.send(());
        });
        // `rx` is kept but never read, like a socket nobody reads.
        done_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the bridge must give up on a stalled reader");
        producer.join().unwrap();
        drop(rx);
    }
}
