//! `GET /api/memory/search`: the node's private memory, searched by keywords and meaning.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use flurry_memory::{Filters, SearchMode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// Most results one search returns.
const MAX_K: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchQuery {
    q: String,
    k: Option<usize>,
    mode: Option<String>,
    path: Option<String>,
    kind: Option<String>,
    sender: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

pub(crate) async fn search(
    State(st): State<AppState>,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let Some(store) = st.memory.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node's memory is not open (see the node log)",
        )
        .code("memory_unavailable"));
    };
    if q.q.trim().is_empty() {
        return Err(ApiError::bad_field("q", "the query is empty"));
    }
    let k = q.k.unwrap_or(5);
    if k == 0 || k > MAX_K {
        return Err(ApiError::bad_field("k", format!("k must be 1 to {MAX_K}")));
    }
    let mode = match q.mode.as_deref() {
        None | Some("hybrid") => SearchMode::Hybrid,
        Some("bm25") => SearchMode::Bm25,
        Some("vector") => SearchMode::Vector,
        Some(other) => {
            return Err(ApiError::bad_field(
                "mode",
                format!("mode {other:?} is not hybrid, bm25 or vector"),
            ));
        }
    };
    let embeddings = st.embeddings.clone();
    let filters = Filters {
        path_prefix: q.path,
        kind: q.kind,
        since: q.since,
        until: q.until,
        sender: q.sender,
    };
    let hits = tokio::task::spawn_blocking(move || {
        let vector = match (mode, embeddings) {
            (SearchMode::Bm25, _) | (_, None) => None,
            (_, Some(e)) => Some(e.get()?.embed_one(&q.q).map_err(internal)?),
        };
        store
            .search(&q.q, vector.as_deref(), k, mode, &filters)
            .map_err(internal)
    })
    .await
    .map_err(internal)??;
    Ok(Json(json!({ "results": hits })))
}
