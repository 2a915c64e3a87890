//! The privacy router's routes: `GET|PUT /api/privacy` (the owner's policy),
//! `POST /api/privacy/scrub` (what would be sent for a text) and `GET /api/egress` (what
//! was sent).

use axum::Json;
use axum::extract::{Query, State};
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

/// The policy now: `{"circle": "as-is", "market": "scrubbed"}`.
pub(crate) async fn policy(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let p = policy_source(&st)
        .current()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(Json(json!(p)))
}

/// The body of `PUT /api/privacy`: the rules to change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyChange {
    circle: Option<flurry_privacy::Rule>,
    market: Option<flurry_privacy::Rule>,
}

/// Changes the policy in `flurry.toml` (atomically, keeping the rest of the file) and
/// answers the policy now. Admin scope: it decides what may leave the node.
pub(crate) async fn set_policy(
    State(st): State<AppState>,
    ApiJson(c): ApiJson<PolicyChange>,
) -> Result<Json<Value>, ApiError> {
    if c.circle.is_none() && c.market.is_none() {
        return Err(ApiError::bad_field(
            "circle",
            "give \"circle\" and/or \"market\": \"never\", \"scrubbed\" or \"as-is\"",
        ));
    }
    let flurry_privacy::PolicySource::ConfigFile(file) = policy_source(&st) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this node's policy is fixed (it runs without a config file): set [privacy] in flurry.toml and restart",
        ));
    };
    let file = file.clone();
    tokio::task::spawn_blocking(move || flurry_config::set_privacy(&file, c.circle, c.market))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "saving the policy failed",
            )
        })?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    policy(State(st)).await
}

/// `?limit=N` of `GET /api/egress`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EgressQuery {
    limit: Option<usize>,
}

/// The newest records of the egress log (what was sent, to whom, under which rule) and
/// the bytes per destination. Admin scope: it holds the text that left.
pub(crate) async fn egress(
    State(st): State<AppState>,
    Query(q): Query<EgressQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_field("limit", "limit is 1 to 1000"));
    }
    let Some(log) = egress_log(&st) else {
        return Ok(Json(json!({"records": [], "totals": []})));
    };
    let (records, totals) = tokio::task::spawn_blocking(move || {
        Ok::<_, flurry_agent::Error>((log.recent(limit)?, log.totals()?))
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reading the egress log failed",
        )
    })?
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let totals: Vec<Value> = totals
        .into_iter()
        .map(|(d, n)| json!({"destination": d, "bytes": n}))
        .collect();
    Ok(Json(json!({"records": records, "totals": totals})))
}

fn policy_source(st: &AppState) -> &flurry_privacy::PolicySource {
    &st.router.privacy
}

fn egress_log(st: &AppState) -> Option<std::sync::Arc<flurry_agent::EgressLog>> {
    st.router.egress.clone()
}
