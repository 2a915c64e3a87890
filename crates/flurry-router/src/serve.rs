//! Serving peers' inference requests (circle members', and market buyers' jobs, committed
//! to when the buyer signed the request) with the local engine.

use std::sync::Arc;

use flurry_infer::engine::{Event, FinishReason, Prompt, Timings};
use flurry_infer::sampler::SamplingParams;
use flurry_infer::template::ChatMessage;
use flurry_net::{Commit, Committed, ErrorCode, Inbound, InferFrame, InferRequest};
use tokio::sync::mpsc;

use crate::receipt::Stated;
use crate::{Error, GenSpec, Router, Started, check_stop, random_seed};
use flurry_verify::messages::Finish;

/// Runs circle members' requests on the local engine until the swarm stops. The
/// private memory is never used for them: nothing of it leaves the node. `on_done` is
/// called with the timings of each answer that finishes (for the node's metrics).
pub async fn serve_peers(
    router: Router,
    mut inbound: mpsc::Receiver<Inbound>,
    on_done: impl Fn(&Timings) + Send + Sync + 'static,
) {
    let router = Arc::new(router);
    let on_done = Arc::new(on_done);
    while let Some(job) = inbound.recv().await {
        let router = router.clone();
        let on_done = on_done.clone();
        tokio::spawn(async move {
            let Inbound {
                peer_id,
                name,
                request,
                reply,
                commit,
            } = job;
            tracing::info!(peer = %peer_id, %name, messages = request.messages.len(), committed = commit.is_some(), "inference for a peer");
            if let Err(frame) = answer(&router, &peer_id, request, commit, &reply, &*on_done).await
            {
                let _ = reply.send(frame).await;
            }
        });
    }
}

async fn answer(
    router: &Router,
    peer_id: &str,
    r: InferRequest,
    commit: Option<Commit>,
    reply: &mpsc::Sender<InferFrame>,
    on_done: &(impl Fn(&Timings) + ?Sized),
) -> Result<(), InferFrame> {
    let bad = |m: String| InferFrame::error(ErrorCode::BadRequest, m);
    let mut sampling = SamplingParams::default();
    if let Some(t) = r.temperature {
        sampling.temperature = t;
    }
    if let Some(p) = r.top_p {
        sampling.top_p = p;
    }
    if let Some(k) = r.top_k {
        sampling.top_k = k as usize;
    }
    sampling.seed = r.seed.unwrap_or_else(random_seed);
    let max_tokens = r.max_tokens.map(|n| n as usize);
    router
        .check_max_tokens(max_tokens, "max_tokens")
        .map_err(|e| bad(e.to_string()))?;
    check_stop(&r.stop, "stop").map_err(|e| bad(e.to_string()))?;
    // A circle job that asks for a receipt (a market job's comes through `commit`).
    let stated = match (&r.receipt, &commit, &router.receipts) {
        (Some(id), None, Some(_)) => {
            let mut job_id = [0u8; 32];
            hex::decode_to_slice(id, &mut job_id).map_err(|e| bad(format!("receipt: {e}")))?;
            let client = flurry_identity::address_of_peer_id(peer_id)
                .ok()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| bad("a receipt is signed for a secp256k1 peer id only".into()))?;
            Some(Stated {
                job_id,
                client,
                sampling: sampling.clone(),
                max_tokens: r.max_tokens.unwrap_or(0),
                stop: r.stop.clone(),
                accept_ms: flurry_verify::bundle::now_ms(),
            })
        }
        _ => None,
    };
    let (prompt, salt, mut commit_out) = match commit {
        // A committed job runs the very tokens the client signed.
        Some(c) => (Prompt::Tokens(c.prompt_tokens), Some(c.job_id), Some(c.out)),
        None => (
            Prompt::Chat(
                r.messages
                    .into_iter()
                    .map(|m| ChatMessage::new(m.role, m.content))
                    .collect(),
            ),
            stated.as_ref().map(|s| s.job_id),
            None,
        ),
    };
    let spec = GenSpec {
        model: r.model,
        prompt,
        sampling,
        max_tokens,
        stop: r.stop,
        memory: false,
        peer: None,
        privacy: None,
        logprobs: None,
        max_price: None,
    };
    // A market job's commitments are required (its buyer signed for them); a circle
    // job that cannot fit them runs without a receipt.
    let required = commit_out.is_some();
    let started = router
        .start_committed(spec, salt, required)
        .await
        .map_err(refusal)?;
    let Started {
        mut events,
        model,
        model_name,
        prompt_tokens,
        ..
    } = started;
    let model_id = model.as_ref().map(|m| m.entry.model_id);
    let mut stated = stated;
    let mut held: Option<flurry_infer::commit::Commitments> = None;
    let mut first_ms = 0u64;
    let send = |f: InferFrame| async move { reply.send(f).await.is_ok() };
    if !send(InferFrame::Start {
        model: model_name,
        prompt_tokens: prompt_tokens as u32,
    })
    .await
    {
        return Ok(());
    }
    // Dropping `events` when the peer has gone cancels the generation.
    while let Some(ev) = events.recv().await {
        let frame = match ev {
            Event::Prefill { .. } => continue,
            Event::Commitments(c) if stated.is_some() => {
                held = Some(*c);
                continue;
            }
            Event::Commitments(c) => {
                if let Some(out) = commit_out.take() {
                    let _ = out.send(Committed {
                        prompt: c.prompt,
                        output: c.output,
                        chunks: c.chunks,
                        eog: c.eog,
                    });
                }
                continue;
            }
            Event::Token { text, .. } if text.is_empty() => continue,
            Event::Token { text, .. } => {
                if first_ms == 0 {
                    first_ms = flurry_verify::bundle::now_ms();
                }
                InferFrame::Token { text }
            }
            Event::Done {
                reason,
                timings,
                tail,
            } => {
                on_done(&timings);
                if !tail.is_empty() && !send(InferFrame::Token { text: tail }).await {
                    return Ok(());
                }
                if let (Some(s), Some(c), Some(id), Some(rc)) =
                    (stated.take(), held.take(), model_id, &router.receipts)
                {
                    let finish = match reason {
                        _ if c.eog => Finish::Eos,
                        FinishReason::Stop => Finish::Stop,
                        FinishReason::Length => Finish::Length,
                    };
                    let bundle = s.bundle(&rc.key, id, c, finish, first_ms);
                    match serde_json::to_value(&bundle) {
                        Ok(bundle) => {
                            if !send(InferFrame::Receipt { bundle }).await {
                                return Ok(());
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "no receipt"),
                    }
                }
                InferFrame::Done {
                    finish_reason: match reason {
                        FinishReason::Stop => "stop",
                        FinishReason::Length => "length",
                    }
                    .into(),
                    completion_tokens: timings.completion_tokens as u32,
                }
            }
            Event::Error(e) => InferFrame::error(ErrorCode::Internal, e),
        };
        let last = frame.is_last();
        if !send(frame).await || last {
            return Ok(());
        }
    }
    Err(InferFrame::error(ErrorCode::Internal, "the engine stopped"))
}

/// The frame that refuses a request the local engine did not take: unknown model,
/// bad request, busy (a full queue, a stopped engine), or an internal failure.
fn refusal(e: Error) -> InferFrame {
    let code = match &e {
        Error::Sampling(_) | Error::Invalid { .. } => ErrorCode::BadRequest,
        Error::Agent(a) => agent_code(a),
        Error::Infer(i) => infer_code(i),
        _ => ErrorCode::Internal,
    };
    InferFrame::error(code, e.to_string())
}

fn agent_code(e: &flurry_agent::Error) -> ErrorCode {
    use flurry_agent::Error as E;
    match e {
        E::ConversationNotFound(_) | E::ModelNotFound(_) => ErrorCode::Model,
        E::Invalid(_) => ErrorCode::BadRequest,
        E::Infer(i) => infer_code(i),
        other => {
            tracing::error!(error = %other, "request failed");
            ErrorCode::Internal
        }
    }
}

fn infer_code(e: &flurry_infer::Error) -> ErrorCode {
    use flurry_infer::Error as E;
    match e {
        E::QueueFull(_) | E::EngineStopped => ErrorCode::Busy,
        E::ContextOverflow { .. } | E::InvalidRequest(_) | E::Template(_) => ErrorCode::BadRequest,
        E::ModelNotFound(_) | E::AmbiguousModel(..) => ErrorCode::Model,
        other => {
            tracing::error!(error = %other, "engine failure");
            ErrorCode::Internal
        }
    }
}
