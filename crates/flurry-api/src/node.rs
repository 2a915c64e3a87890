//! The node's own routes: `/api/node` and the conversations the web UI uses.

use std::convert::Infallible;
use std::sync::mpsc::RecvTimeoutError;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use flurry_agent::{ChatEvent, SendOptions};
use flurry_infer::engine::FinishReason;
use flurry_infer::sampler::SamplingParams;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::error::ApiError;
use crate::json::ApiJson;

fn join_err(e: tokio::task::JoinError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Runs blocking agent work off the async executor.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, flurry_agent::Error> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f).await.map_err(join_err)??)
}

pub(crate) async fn info(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let agent = st.agent.clone();
    let (list, default) = blocking(move || {
        let list = agent.models.list()?;
        let default = agent.models.resolve(None).ok().map(|e| e.name);
        Ok((list, default))
    })
    .await?;
    let loaded = st.agent.models.loaded();
    let models: Vec<Value> = list
        .iter()
        .map(|e| {
            json!({
                "name": e.name, "model_id": e.model_id, "size": e.size,
                "loaded": loaded.iter().any(|l| l.name == e.name),
            })
        })
        .collect();
    Ok(Json(json!({
        "peer_id": st.identity.peer_id,
        "address": st.identity.address,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": st.started.elapsed().as_secs(),
        "default_model": default,
        "models": models,
        "auth_required": st.auth.require_token,
    })))
}

pub(crate) async fn list_conversations(
    State(st): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let h = st.agent.history.clone();
    let list = blocking(move || h.list()).await?;
    Ok(Json(json!({ "conversations": list })))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CreateConversation {
    #[serde(default)]
    title: String,
    model: Option<String>,
    /// `false` starts the conversation with memory switched off.
    memory: Option<bool>,
}

pub(crate) async fn create_conversation(
    State(st): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: CreateConversation = if body.iter().all(u8::is_ascii_whitespace) {
        CreateConversation::default()
    } else {
        crate::json::parse(&body)?
    };
    let agent = st.agent.clone();
    let c = blocking(move || {
        let model = match req.model.as_deref() {
            Some(m) if !m.is_empty() => agent.models.resolve(Some(m))?.name,
            _ => String::new(),
        };
        let c = agent.history.create(&req.title, &model)?;
        match req.memory {
            Some(false) => agent.history.set_memory(&c.id, false),
            _ => Ok(c),
        }
    })
    .await?;
    Ok((StatusCode::CREATED, Json(c)).into_response())
}

pub(crate) async fn get_conversation(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let h = st.agent.history.clone();
    let (c, msgs) = blocking(move || Ok((h.get(&id)?, h.messages(&id)?))).await?;
    let mut v = serde_json::to_value(c).unwrap_or_default();
    v["messages"] = serde_json::to_value(msgs).unwrap_or_default();
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchConversation {
    memory: bool,
}

/// `PATCH /api/conversations/{id}`: switches the use of memory on or off.
pub(crate) async fn patch_conversation(
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PatchConversation>,
) -> Result<Json<Value>, ApiError> {
    let h = st.agent.history.clone();
    let c = blocking(move || h.set_memory(&id, req.memory)).await?;
    Ok(Json(serde_json::to_value(c).unwrap_or_default()))
}

pub(crate) async fn delete_conversation(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let h = st.agent.history.clone();
    blocking(move || h.delete(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub(crate) struct SendMessage {
    content: String,
    model: Option<String>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    max_tokens: Option<usize>,
    seed: Option<u64>,
    /// Use the private memory for this message (`None`: the conversation's setting).
    memory: Option<bool>,
}

pub(crate) async fn send_message(
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SendMessage>,
) -> Result<Response, ApiError> {
    st.router.check_max_tokens(req.max_tokens, "max_tokens")?;
    let temperature = req.temperature.unwrap_or(0.7);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::bad_field(
            "temperature",
            "`temperature` must be between 0 and 2",
        ));
    }
    if req.content.len() > st.limits.max_body_bytes {
        return Err(ApiError::bad_field("content", "the message is too long"));
    }
    let opts = SendOptions {
        model: req.model.filter(|m| !m.is_empty()),
        sampling: {
            let d = SamplingParams::default();
            SamplingParams {
                temperature,
                top_k: req.top_k.unwrap_or(d.top_k),
                top_p: req.top_p.unwrap_or(d.top_p),
                min_p: req.min_p.unwrap_or(d.min_p),
                repeat_penalty: req.repeat_penalty.unwrap_or(d.repeat_penalty),
                seed: req.seed.unwrap_or_else(flurry_router::random_seed),
                ..d
            }
        },
        max_tokens: req.max_tokens,
        memory: req.memory,
    };
    opts.sampling
        .validate()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let agent = st.agent.clone();
    let stall = st.router.limits.write_timeout;
    let (ready_tx, ready_rx) = oneshot::channel();
    let (tx, mut rx) = mpsc::channel::<ChatEvent>(64);
    let content = req.content;
    tokio::task::spawn_blocking(move || match agent.send(&id, &content, opts) {
        Err(e) => {
            let _ = ready_tx.send(Err(e));
        }
        Ok(mut chat) => {
            let start = json!({
                "type": "start",
                "conversation_id": chat.conversation_id,
                "user_message_id": chat.user_message_id,
                "message_id": chat.message_id,
                "model": chat.model.entry.name,
                "citations": chat.citations,
            });
            if ready_tx.send(Ok(start)).is_ok() {
                flurry_router::forward(
                    |d| match chat.recv_timeout(d) {
                        Ok(Some(ev)) => Ok(ev),
                        Ok(None) => Err(RecvTimeoutError::Disconnected),
                        Err(e) => Err(e),
                    },
                    &tx,
                    stall,
                );
            }
            // Dropping `chat` here saves a partial answer as `stopped`.
        }
    });
    let start = ready_rx
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the request was lost"))??;
    let (out_tx, out_rx) = mpsc::channel::<Result<SseEvent, Infallible>>(16);
    tokio::spawn(async move {
        let send = |v: Value| Ok(SseEvent::default().data(v.to_string()));
        if out_tx.send(send(start)).await.is_err() {
            return;
        }
        while let Some(ev) = rx.recv().await {
            let (v, last) = match ev {
                ChatEvent::Token(t) => (json!({"type": "token", "text": t}), false),
                ChatEvent::Done { reason, timings } => {
                    st.metrics.record(
                        timings.prompt_tokens,
                        timings.completion_tokens,
                        timings.decode_ms,
                    );
                    let r = match reason {
                        FinishReason::Stop => "stop",
                        FinishReason::Length => "length",
                    };
                    (
                        json!({"type": "done", "finish_reason": r, "usage": {
                            "prompt_tokens": timings.prompt_tokens,
                            "completion_tokens": timings.completion_tokens,
                        }}),
                        true,
                    )
                }
                ChatEvent::Error(e) => (json!({"type": "error", "error": {"message": e}}), true),
            };
            if out_tx.send(send(v)).await.is_err() || last {
                return;
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(out_rx)).into_response())
}
