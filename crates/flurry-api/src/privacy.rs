//! `POST /api/privacy/scrub`: what the privacy router would send for a text.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use flurry_privacy::{EntityList, Scrubbed, Scrubber};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::json::ApiJson;

/// The body of `POST /api/privacy/scrub`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScrubRequest {
    text: String,
    /// Use the entities learned from the memory (default true).
    #[serde(default)]
    memory: Option<bool>,
}

/// Scrubs `text` as a request to a stranger would be: `{"text", "entities": [...]}`.
/// It answers what the owner's own memory knows, so it needs the `read` scope (as
/// memory search does) and, like every route, a loopback Host or a token.
pub(crate) async fn scrub(
    State(st): State<AppState>,
    ApiJson(r): ApiJson<ScrubRequest>,
) -> Result<Json<Value>, ApiError> {
    if r.text.len() > flurry_privacy::MAX_TEXT_BYTES {
        return Err(ApiError::bad_field(
            "text",
            format!(
                "the text is {} bytes; at most {} are scrubbed at once",
                r.text.len(),
                flurry_privacy::MAX_TEXT_BYTES
            ),
        ));
    }
    let agent = st.agent.clone();
    let (text, found) = tokio::task::spawn_blocking(move || {
        let scrubber = if r.memory.unwrap_or(true) {
            agent
                .scrubber()
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        } else {
            std::sync::Arc::new(Scrubber::new(&EntityList::new()))
        };
        scrubber
            .scrub(&mut Scrubbed::new(), &r.text)
            .map_err(|e| ApiError::bad_field("text", e.to_string()))
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the scrubber failed"))??;
    Ok(Json(json!({ "text": text, "entities": found })))
}
