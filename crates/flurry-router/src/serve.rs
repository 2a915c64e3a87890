//! Serving peers' inference requests (circle members', and market buyers' jobs, committed
//! to when the buyer signed the request) with the local engine.

use std::sync::Arc;

use flurry_infer::engine::{Event, FinishReason, Prompt, Timings};
use flurry_infer::sampler::SamplingParams;
use flurry_infer::template::ChatMessage;
use flurry_net::{Commit, Committed, ErrorCode, Inbound, InferFrame, InferRequest};
use tokio::sync::mpsc;

use crate::{Error, GenSpec, Router, Started, check_stop, random_seed};

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
            if let Err(frame) = answer(&router, request, commit, &reply, &*on_done).await {
                let _ = reply.send(frame).await;
            }
        });
    }
}

async fn answer(
    router: &Router,
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
            None,
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
    let started = router.start_committed(spec, salt).await.map_err(refusal)?;
    let Started {
        mut events,
        model,
        model_name,
        prompt_tokens,
        ..
    } = started;
    let _model = model;
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
            Event::Token { text, .. } => InferFrame::Token { text },
            Event::Done {
                reason,
                timings,
                tail,
            } => {
                on_done(&timings);
                if !tail.is_empty() && !send(InferFrame::Token { text: tail }).await {
                    return Ok(());
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
