//! Running a generation on this node: load the model, tokenize, queue, and bridge the
//! engine's blocking event channel into async code.

use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use flurry_agent::{ChatEvent, recall};
use flurry_infer::engine::{Event, GenerateRequest, Prompt};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use crate::{Error, GenSpec, Router, Started};

/// How often a bridge checks whether its reader went away.
const POLL: Duration = Duration::from_millis(100);
/// Events buffered between the engine and a slow client.
const BRIDGE_CAPACITY: usize = 64;

impl Router {
    /// Loads the model, tokenizes and queues the request on this node.
    pub async fn start_local(&self, spec: GenSpec) -> Result<Started, Error> {
        self.start_committed(spec, None, false).await
    }

    /// [`Router::start_local`], with chunk commitments salted by `commit` (a job id)
    /// when it is given: the engine sends `Event::Commitments` before `Done`. A committed
    /// answer must fit the context whole (a job cut short by the context would end
    /// `length` before its `max_tokens`, which its receipt cannot say): when it would
    /// not, the job is refused if `required`, else run without commitments.
    pub async fn start_committed(
        &self,
        spec: GenSpec,
        commit: Option<[u8; 32]>,
        required: bool,
    ) -> Result<Started, Error> {
        spec.sampling.validate().map_err(Error::Sampling)?;
        let agent = self.agent.clone();
        let cap = self.limits.max_tokens;
        let stall = self.limits.write_timeout;
        let (ready_tx, ready_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(BRIDGE_CAPACITY);
        tokio::task::spawn_blocking(move || {
            let setup = || -> Result<_, Error> {
                let model = agent.models.get(spec.model.as_deref())?;
                let mut prompt = spec.prompt;
                let mut citations = Vec::new();
                if let (true, Some(r), Prompt::Chat(msgs)) =
                    (spec.memory, &agent.recall, &mut prompt)
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
                let max_tokens = spec.max_tokens.unwrap_or(cap);
                let commit = commit.filter(|_| required || max_tokens <= room);
                if commit.is_some() && max_tokens > room {
                    return Err(Error::invalid(
                        "max_tokens",
                        format!(
                            "a committed job must fit the context whole: {} prompt tokens and {max_tokens} to generate exceed {}",
                            tokens.len(),
                            model.engine.context_length()
                        ),
                    ));
                }
                let max_tokens = max_tokens.min(room).max(1);
                let n = tokens.len();
                let mut req = GenerateRequest::new(Prompt::Tokens(tokens))
                    .with_sampling(spec.sampling)
                    .with_max_tokens(max_tokens)
                    .with_stop(spec.stop)
                    .with_logprobs(spec.logprobs);
                if let Some(job_id) = commit {
                    req = req.with_commit(job_id);
                }
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
        let (model, prompt_tokens, citations) = ready_rx.await.map_err(|_| Error::Lost)??;
        Ok(Started {
            model_name: model.entry.name.clone(),
            model: Some(model),
            prompt_tokens,
            events: rx,
            citations,
            peer: None,
            market: None,
        })
    }
}

/// Moves events from a blocking source to an async channel until the end, or until the
/// reader is gone or has taken nothing for `stall` (then it returns, dropping the
/// source, which cancels the work and frees this blocking thread).
pub fn forward<T: Terminal + Send + 'static>(
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
pub trait Terminal {
    /// Whether the stream ends after this event.
    fn is_terminal(&self) -> bool;
    /// The event that says the source stopped before the end.
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

impl Terminal for ChatEvent {
    fn is_terminal(&self) -> bool {
        matches!(self, ChatEvent::Done { .. } | ChatEvent::Error(_))
    }
    fn stopped() -> Self {
        ChatEvent::Error("the engine stopped".into())
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
                    logprobs: None,
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
