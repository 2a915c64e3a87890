//! Sending this node's requests to a circle peer (`model: "alice/…"` or `peer:
//! "alice"`) over `/flurry/infer/1`, and turning its frames back into engine events.
//!
//! Two seams are kept apart on purpose: [`infer_request`] builds what leaves the node
//! from the messages, after the privacy policy decided whether it may leave and in
//! which form ([`Router::outgoing`]: as typed, or scrubbed), and [`relay`] moves what
//! comes back to the caller, putting the owner's originals back in place of the
//! placeholders.

use std::time::Instant;

use flurry_infer::engine::{Event, FinishReason, Prompt, Timings};
use flurry_infer::sampler::SamplingParams;
use flurry_infer::template::ChatMessage;
use flurry_net::{InferFrame, InferMessage, InferRequest, Member};
use flurry_privacy::{Decision, Destination, Restorer, Scrubbed};
use tokio::sync::mpsc;

use crate::receipt::{Asked, Receipts};
use crate::{Error, GenSpec, PeerUsed, Router, Started};

/// Events buffered between a peer's frames and the caller.
const RELAY_CAPACITY: usize = 64;

impl Router {
    /// Which peer, if any, a request names: the `peer` field, or a model written
    /// `NAME/MODEL` or `NAME` where NAME is a circle member's name or a peer id. Returns
    /// the peer and the model to ask it for (`None` = its default).
    pub fn route(
        &self,
        model: Option<&str>,
        peer: Option<&str>,
    ) -> Result<Option<(Member, Option<String>)>, Error> {
        let Some(p) = self.p2p.as_deref() else {
            return match peer {
                Some(_) => Err(Error::NetOff),
                None => Ok(None),
            };
        };
        let circle = p.members();
        let lookup = |key: &str| {
            circle
                .iter()
                .find(|m| m.name == key || m.peer_id == key)
                .cloned()
        };
        if let Some(key) = peer {
            let member = lookup(key).or_else(|| {
                flurry_net::is_peer_id(key).then(|| Member {
                    peer_id: key.to_string(),
                    name: String::new(),
                    addrs: Vec::new(),
                })
            });
            return match member {
                Some(m) => Ok(Some((
                    m,
                    model.filter(|m| !m.is_empty()).map(str::to_string),
                ))),
                None => Err(Error::UnknownPeer {
                    key: key.to_string(),
                }),
            };
        }
        let Some(model) = model else { return Ok(None) };
        let (head, rest) = match model.split_once('/') {
            Some((h, r)) => (h, Some(r).filter(|r| !r.is_empty()).map(str::to_string)),
            None => (model, None),
        };
        Ok(lookup(head).map(|m| (m, rest)))
    }

    /// Sends a chat generation to `member` (asking it for `model`, `None` = its
    /// default) and bridges its answer into engine events. The request is written to the
    /// egress log before it is sent, and not sent when it cannot be.
    pub async fn start_remote(
        &self,
        member: Member,
        model: Option<String>,
        mut spec: GenSpec,
    ) -> Result<Started, Error> {
        let p = self.p2p()?;
        let Prompt::Chat(msgs) = std::mem::replace(&mut spec.prompt, Prompt::Raw(String::new()))
        else {
            return Err(Error::NotChat);
        };
        let label = if member.name.is_empty() {
            member.peer_id.clone()
        } else {
            format!("{} ({})", member.name, member.peer_id)
        };
        // A receipt, when this node can check and countersign one.
        let receipt = self.receipts.clone().and_then(|r| {
            let provider = flurry_identity::address_of_peer_id(&member.peer_id)
                .ok()?
                .parse()
                .ok()?;
            let mut job_id = [0u8; 32];
            getrandom::fill(&mut job_id).ok()?;
            Some((r, job_id, provider))
        });
        let (request, restorer) = self
            .leave(
                Destination::Circle,
                msgs,
                model,
                &spec,
                (&format!("peer {label}"), "inference request"),
                receipt.as_ref().map(|r| r.1),
            )
            .await?;
        let receipt = receipt.map(|(r, job_id, provider)| {
            let mut sampling = flurry_market::audit::sampling_of(&request);
            sampling.seed = request.seed.unwrap_or_default();
            let asked = Asked {
                job_id,
                provider,
                messages: request
                    .messages
                    .iter()
                    .map(|m| ChatMessage::new(m.role.clone(), m.content.clone()))
                    .collect(),
                sampling,
                max_tokens: request.max_tokens.unwrap_or_default(),
                stop: request.stop.clone(),
            };
            (r, asked)
        });
        let started = Instant::now();
        let mut call = p
            .net
            .infer(&member.peer_id, &member.addrs, &request)
            .await?;
        let used = PeerUsed {
            peer_id: member.peer_id.clone(),
            name: (!member.name.is_empty()).then(|| member.name.clone()),
            relayed: call.relayed,
            setup_ms: call.setup.as_secs_f64() * 1e3,
        };
        // The first frame says whether the peer took the request.
        let first = call.frames.recv().await.ok_or_else(|| Error::PeerClosed {
            label: label.clone(),
        })?;
        let (model_name, prompt_tokens) = accepted(&label, first?)?;
        let (tx, rx) = mpsc::channel(RELAY_CAPACITY);
        tokio::spawn(relay(
            call.frames,
            tx,
            label,
            started,
            prompt_tokens,
            restorer,
            receipt,
        ));
        Ok(Started {
            model: None,
            model_name,
            prompt_tokens,
            events: rx,
            citations: Vec::new(),
            peer: Some(used),
            market: None,
        })
    }
}

/// The model and prompt length of an answer's first frame, or why the peer (`label`)
/// did not take the request.
pub(crate) fn accepted(label: &str, first: InferFrame) -> Result<(String, usize), Error> {
    match first {
        InferFrame::Start {
            model,
            prompt_tokens,
        } => Ok((model, prompt_tokens as usize)),
        InferFrame::Error { code, message } => Err(Error::PeerRefused {
            label: label.to_string(),
            code,
            message,
        }),
        other => Err(Error::PeerProtocol {
            label: label.to_string(),
            frame: format!("{other:?}"),
        }),
    }
}

impl Router {
    /// The request that leaves for `to` (a circle peer or a market seller) from the chat
    /// `msgs` and `spec`: the privacy policy first (refused, scrubbed or as typed), the
    /// size bound, then the egress log (`what` = destination and kind), since nothing
    /// leaves the node unrecorded. Returns the request and the restorer of the answer.
    pub(crate) async fn leave(
        &self,
        to: Destination,
        msgs: Vec<ChatMessage>,
        model: Option<String>,
        spec: &GenSpec,
        what: (&str, &str),
        receipt: Option<[u8; 32]>,
    ) -> Result<(InferRequest, Option<Restorer>), Error> {
        let (msgs, rule, restorer) = self.outgoing(to, msgs, spec.privacy).await?;
        let mut request = infer_request(
            msgs,
            model,
            &spec.sampling,
            spec.max_tokens,
            spec.stop.clone(),
        );
        if let Some(job_id) = receipt {
            request.receipt = Some(hex::encode(job_id));
            request.max_tokens = Some(
                request
                    .max_tokens
                    .unwrap_or(flurry_net::infer::DEFAULT_MAX_ANSWER_TOKENS),
            );
        }
        flurry_net::infer::encode(&request, flurry_net::infer::MAX_REQUEST_BYTES)
            .map_err(Error::RequestTooLarge)?;
        let Some(log) = &self.egress else {
            return Err(Error::NoEgressLog);
        };
        let content = serde_json::to_string(&request).map_err(|e| Error::Scrub(e.to_string()))?;
        log.record_sent(what.0, what.1, rule, &content)
            .map_err(Error::EgressWrite)?;
        Ok((request, restorer))
    }

    /// What the owner's policy lets leave for a circle peer, tightened by the request's
    /// own wish: the messages as typed or scrubbed (one placeholder per entity across
    /// all of them), the rule's name for the egress log, and the restorer for the answer
    /// when they were scrubbed. A request the policy keeps here is refused before
    /// anything is sent or logged.
    pub(crate) async fn outgoing(
        &self,
        to: Destination,
        msgs: Vec<ChatMessage>,
        wish: Option<flurry_privacy::Override>,
    ) -> Result<(Vec<ChatMessage>, &'static str, Option<Restorer>), Error> {
        let rule = self.privacy.rule(to).map_err(Error::Policy)?;
        match flurry_privacy::decide(to, rule, wish) {
            Decision::Local | Decision::SendAsIs => Ok((msgs, "as-is", None)),
            Decision::Refused => Err(Error::PrivacyRefused {
                reason: if wish == Some(flurry_privacy::Override::LocalOnly) {
                    "the request asks to stay on this node (\"privacy\": \"local-only\"): send it without a peer to run it here".into()
                } else if to == Destination::Market {
                    "[privacy] market = \"never\" keeps requests off the market: ask a local model, or allow it with `flurry privacy policy --market scrubbed`".into()
                } else {
                    "[privacy] circle = \"never\" keeps requests on this node: send it without a peer to run it here, or allow it with `flurry privacy policy --circle scrubbed`".into()
                },
            }),
            Decision::SendScrubbed => {
                let agent = self.agent.clone();
                tokio::task::spawn_blocking(move || {
                    let scrubber = agent.scrubber().map_err(|e| Error::Scrub(e.to_string()))?;
                    let mut session = Scrubbed::new();
                    let mut out = Vec::with_capacity(msgs.len());
                    for m in msgs {
                        let (text, _) = scrubber
                            .scrub(&mut session, &m.content)
                            .map_err(|e| Error::Scrub(e.to_string()))?;
                        out.push(ChatMessage::new(m.role, text));
                    }
                    let restorer = (!session.is_empty()).then(|| session.restorer());
                    Ok((out, "scrubbed", restorer))
                })
                .await
                .map_err(|_| Error::Scrub("the scrubber stopped".into()))?
            }
        }
    }
}

/// The request that leaves the node for a peer: the chat messages as they are, the
/// model to ask for, sampling, `max_tokens` and stop strings.
pub(crate) fn infer_request(
    msgs: Vec<ChatMessage>,
    model: Option<String>,
    s: &SamplingParams,
    max_tokens: Option<usize>,
    stop: Vec<String>,
) -> InferRequest {
    InferRequest {
        model,
        max_tokens: max_tokens.map(|n| n.min(u32::MAX as usize) as u32),
        temperature: Some(s.temperature),
        top_p: Some(s.top_p),
        top_k: Some(s.top_k.min(u32::MAX as usize) as u32),
        seed: Some(s.seed),
        stop,
        ..InferRequest::new(
            msgs.into_iter()
                .map(|m| InferMessage {
                    role: m.role,
                    content: m.content,
                })
                .collect(),
        )
    }
}

/// Moves a peer's frames (after `start`) to the caller as engine events, until `done`,
/// an error, or the caller leaves (dropping `frames` then tells the peer to stop).
/// `started` is when the request was sent, for the prefill time.
pub(crate) async fn relay(
    mut frames: mpsc::Receiver<flurry_net::Result<InferFrame>>,
    tx: mpsc::Sender<Event>,
    label: String,
    started: Instant,
    prompt_tokens: usize,
    mut restorer: Option<Restorer>,
    receipt: Option<(Receipts, Asked)>,
) {
    let mut completion = 0usize;
    let mut bundle = None;
    let mut first_token: Option<Instant> = None;
    while let Some(f) = frames.recv().await {
        let ev = match f {
            Ok(InferFrame::Token { text }) => {
                completion += 1;
                first_token.get_or_insert_with(Instant::now);
                let text = match &mut restorer {
                    Some(r) => r.push(&text),
                    None => text,
                };
                Event::Token {
                    id: 0,
                    text,
                    logprobs: None,
                }
            }
            Ok(InferFrame::Done {
                finish_reason,
                completion_tokens,
            }) => {
                let now = Instant::now();
                let decode_ms =
                    first_token.map_or(0.0, |t| now.duration_since(t).as_secs_f64() * 1e3);
                Event::Done {
                    reason: if finish_reason == "length" {
                        FinishReason::Length
                    } else {
                        FinishReason::Stop
                    },
                    timings: Timings {
                        prompt_tokens,
                        completion_tokens: (completion_tokens as usize).max(completion),
                        prefill_ms: first_token
                            .map_or(0.0, |t| t.duration_since(started).as_secs_f64() * 1e3),
                        decode_ms,
                        queue_ms: 0.0,
                    },
                    tail: restorer.as_mut().map(Restorer::finish).unwrap_or_default(),
                }
            }
            Ok(InferFrame::Error { code, message }) => {
                Event::Error(format!("peer {label}: {message} ({code:?})"))
            }
            Ok(InferFrame::Start { .. }) => Event::Error(format!("peer {label} sent start twice")),
            Ok(InferFrame::Receipt { bundle: b }) => {
                bundle = Some(b);
                continue;
            }
            Err(e) => Event::Error(e.to_string()),
        };
        let done = matches!(ev, Event::Done { .. });
        let last = done || matches!(ev, Event::Error(_));
        if done && let Some((r, asked)) = &receipt {
            keep_receipt(r.clone(), asked.clone(), bundle.take(), label.clone());
        }
        if tx.send(ev).await.is_err() || last {
            return;
        }
    }
    let _ = tx
        .send(Event::Error(format!(
            "peer {label}: the answer was cut off"
        )))
        .await;
}

/// Checks and countersigns a circle job's receipt off the async threads, and says how
/// it went in the log (the bundle is in `$FLURRY_HOME/circle-receipts`).
fn keep_receipt(r: Receipts, asked: Asked, bundle: Option<serde_json::Value>, label: String) {
    tokio::task::spawn_blocking(move || {
        let Some(b) = bundle else {
            tracing::warn!(peer = %label, "the peer sent no receipt for a job that asked for one");
            return;
        };
        match crate::receipt::countersign(&r, &asked, b) {
            Ok(path) => {
                tracing::info!(peer = %label, bundle = %path.display(), "circle job receipt checked and countersigned")
            }
            Err(e) => tracing::warn!(peer = %label, "circle job receipt not countersigned: {e}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_to_a_peer_carries_the_messages_and_sampling() {
        let s = SamplingParams {
            temperature: 0.5,
            top_p: 0.9,
            top_k: 40,
            seed: 7,
            ..SamplingParams::default()
        };
        let r = infer_request(
            vec![
                ChatMessage::new("system", "be brief"),
                ChatMessage::new("user", "hi"),
            ],
            Some("m".into()),
            &s,
            Some(12),
            vec!["\n".into()],
        );
        assert_eq!(r.model.as_deref(), Some("m"));
        assert_eq!(r.max_tokens, Some(12));
        assert_eq!(
            (r.temperature, r.top_p, r.top_k, r.seed),
            (Some(0.5), Some(0.9), Some(40), Some(7))
        );
        assert_eq!(r.stop, vec!["\n".to_string()]);
        let msgs: Vec<_> = r
            .messages
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect();
        assert_eq!(msgs, [("system", "be brief"), ("user", "hi")]);
    }

    #[tokio::test]
    async fn relayed_frames_become_engine_events() {
        let (ftx, frames) = mpsc::channel(8);
        let (tx, mut rx) = mpsc::channel(8);
        for f in [
            InferFrame::Token { text: "a".into() },
            InferFrame::Token { text: "b".into() },
            InferFrame::Done {
                finish_reason: "length".into(),
                completion_tokens: 1,
            },
        ] {
            ftx.send(Ok(f)).await.unwrap();
        }
        relay(frames, tx, "bob".into(), Instant::now(), 3, None, None).await;
        assert!(matches!(rx.recv().await, Some(Event::Token { text, .. }) if text == "a"));
        assert!(matches!(rx.recv().await, Some(Event::Token { text, .. }) if text == "b"));
        let Some(Event::Done {
            reason, timings, ..
        }) = rx.recv().await
        else {
            panic!("no done event");
        };
        assert_eq!(reason, FinishReason::Length);
        assert_eq!((timings.prompt_tokens, timings.completion_tokens), (3, 2));
    }

    #[tokio::test]
    async fn a_cut_off_answer_ends_with_an_error() {
        let (ftx, frames) = mpsc::channel(8);
        let (tx, mut rx) = mpsc::channel(8);
        ftx.send(Ok(InferFrame::Token { text: "a".into() }))
            .await
            .unwrap();
        drop(ftx);
        relay(frames, tx, "bob".into(), Instant::now(), 1, None, None).await;
        assert!(matches!(rx.recv().await, Some(Event::Token { .. })));
        assert!(
            matches!(rx.recv().await, Some(Event::Error(e)) if e == "peer bob: the answer was cut off")
        );
    }
}
