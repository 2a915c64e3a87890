//! `GET /api/wallet`: the node's balance, ticket escrow and received tickets.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

pub(crate) async fn summary(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let Some(w) = &st.wallet else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node runs without a chain: set [chain] mode = \"local\" or use `flurry chain use URL`, then restart it (if it is set, the node log says why the chain did not start)",
        )
        .code("chain_unavailable"));
    };
    let summary = w.chain.wallet().await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("the chain did not answer: {e}"),
        )
        .code("chain_error")
    })?;
    let tickets = w.tickets.clone();
    let counts = tokio::task::spawn_blocking(move || tickets.summary())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let tickets: serde_json::Map<String, Value> = counts
        .into_iter()
        .map(|(status, (count, face))| {
            (
                serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                json!({ "count": count, "face_value": face.to_string() }),
            )
        })
        .collect();
    let mut out = serde_json::to_value(summary).unwrap_or_default();
    out["rpc_url"] = json!(w.chain.url());
    out["tickets"] = Value::Object(tickets);
    Ok(Json(out))
}
