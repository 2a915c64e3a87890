//! Model sharing's routes: Ollama's `POST /api/pull` (NDJSON progress, or one answer
//! with `"stream": false`), `POST /api/models/publish` and `POST /api/models/unpublish`
//! (admin, like every POST), `GET /api/models/published` and `GET
//! /api/models/announced`. The pulling, checking and landing are `flurry_share`'s.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::error::ApiError;
use crate::json::ApiJson;

/// Progress lines buffered for a slow reader; when full, intermediate ones are dropped
/// (the pull never waits for the client, and goes on if the client leaves).
const PROGRESS_QUEUE: usize = 64;

fn sharing_of(st: &AppState) -> Result<Arc<flurry_share::Sharing>, ApiError> {
    st.sharing.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "model sharing needs the peer-to-peer network, which is off on this node ([net] enabled = false)",
        )
        .code("sharing_unavailable")
    })
}

pub(crate) fn share_error(e: flurry_share::Error) -> ApiError {
    use flurry_share::Error as E;
    let (status, code) = match &e {
        E::Store(flurry_infer::Error::ModelNotFound(_)) | E::NotInStore(_) => {
            (StatusCode::NOT_FOUND, "model_not_found")
        }
        E::Unresolved(_) => (StatusCode::NOT_FOUND, "model_not_announced"),
        E::Busy(_) | E::ShelfFull | E::Changed { .. } => (StatusCode::CONFLICT, "conflict"),
        E::Pull(_) | E::Net(_) => (StatusCode::BAD_GATEWAY, "pull_failed"),
        E::NotAModel { .. } => (StatusCode::BAD_GATEWAY, "not_a_model"),
        E::Store(_) | E::Io { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "io"),
    };
    ApiError::new(status, e.to_string()).code(code)
}

/// The body of `POST /api/pull` (Ollama's; `name` is its older spelling).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PullRequest {
    model: Option<String>,
    name: Option<String>,
    /// Ollama's flag for plain-HTTP registries; nothing here is fetched over HTTP.
    #[serde(default)]
    insecure: bool,
    /// Stream progress lines (the default) or answer once at the end.
    stream: Option<bool>,
    /// Flurry's: pull from this peer only.
    from: Option<String>,
}

/// `POST /api/pull`.
pub(crate) async fn pull(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<PullRequest>,
) -> Result<Response, ApiError> {
    let sharing = sharing_of(&st).map_err(ApiError::ollama)?;
    let spec = req
        .model
        .or(req.name)
        .ok_or_else(|| ApiError::bad_field("model", "name the model to pull").ollama())?;
    // Ollama's default tag means nothing here.
    let spec = spec.strip_suffix(":latest").unwrap_or(&spec).to_string();
    let from = req.from;
    if req.insecure {
        tracing::debug!("`insecure` is ignored: pulls are verified piece by piece, not by TLS");
    }
    // Resolve first, so an unknown name is a plain 404 rather than a stream.
    let (model, _) = sharing
        .resolve(&spec, from.as_deref())
        .map_err(|e| share_error(e).ollama())?;
    let digest = format!("blake3:{model}");
    let (tx, rx) = mpsc::channel::<Value>(PROGRESS_QUEUE);
    let progress_tx = tx.clone();
    let d = digest.clone();
    let on_progress: flurry_share::OnProgress = Arc::new(move |p| {
        let line = match p {
            flurry_share::Progress::Layer { total, resumed, .. } => json!({
                "status": format!("pulling {}", &d[..19]),
                "digest": &d, "total": total, "completed": resumed,
            }),
            flurry_share::Progress::Bytes {
                done,
                total,
                rate,
                peers,
                eta_secs,
            } => json!({
                "status": format!("pulling {}", &d[..19]),
                "digest": &d, "total": total, "completed": done,
                "rate": rate, "peers": peers, "eta_secs": eta_secs,
            }),
            flurry_share::Progress::Dropped {
                peer,
                reason,
                banned,
            } => json!({
                "status": if banned { "peer banned" } else { "peer dropped" },
                "peer": peer, "reason": reason,
            }),
        };
        let _ = progress_tx.try_send(line);
    });
    let task = tokio::spawn(async move {
        let _ = tx.send(json!({ "status": "pulling manifest" })).await;
        let result = sharing.pull(&spec, from.as_deref(), on_progress).await;
        let end = match result {
            Ok(landed) => {
                let _ = tx
                    .send(json!({ "status": format!("verifying {} digest", &digest[..6]) }))
                    .await;
                json!({
                    "status": "success",
                    "model": landed.entry.name,
                    "model_id": landed.entry.model_id.to_string(),
                    "pulled": landed.pulled,
                })
            }
            Err(e) => json!({ "error": e.to_string() }),
        };
        let _ = tx.send(end.clone()).await;
        end
    });
    if req.stream == Some(false) {
        // Nobody reads the progress: its sends fail at once instead of filling the queue.
        drop(rx);
        let end = task.await.map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).ollama()
        })?;
        if let Some(msg) = end.get("error").and_then(Value::as_str) {
            return Err(ApiError::new(StatusCode::BAD_GATEWAY, msg)
                .code("pull_failed")
                .ollama());
        }
        return Ok(Json(end).into_response());
    }
    let lines = tokio_stream::StreamExt::map(ReceiverStream::new(rx), |v| {
        Ok::<_, std::convert::Infallible>(format!("{v}\n"))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

/// The body of `POST /api/models/publish` and `/api/models/unpublish`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelRequest {
    /// A model of the store: its name or a ModelId prefix.
    model: String,
}

/// `POST /api/models/publish`: serve a model of the store to peers and announce it.
pub(crate) async fn publish(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<ModelRequest>,
) -> Result<Json<Value>, ApiError> {
    let a = sharing_of(&st)?
        .publish(&req.model)
        .await
        .map_err(share_error)?;
    Ok(Json(json!(a)))
}

/// `POST /api/models/unpublish`: stop serving a model.
pub(crate) async fn unpublish(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<ModelRequest>,
) -> Result<Json<Value>, ApiError> {
    let sharing = sharing_of(&st)?;
    let id = sharing
        .published()
        .into_iter()
        .find(|p| p.name == req.model || p.model.matches_prefix(&req.model))
        .map(|p| p.model)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{} is not published here (`flurry model published`)",
                req.model
            ))
        })?;
    sharing.unpublish(&id).map_err(share_error)?;
    Ok(Json(
        json!({ "model_id": id.to_string(), "published": false }),
    ))
}

/// `GET /api/models/published`.
pub(crate) async fn published(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "models": sharing_of(&st)?.published() })))
}

/// `GET /api/models/announced`: what peers announced within the last ten minutes.
pub(crate) async fn announced(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "models": sharing_of(&st)?.announced() })))
}
