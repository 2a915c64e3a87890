//! `GET /api/wallet`: the node's balance, ticket escrow and received tickets;
//! `POST /api/tickets/params` and `POST /api/tickets`: being paid with tickets.

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

fn wallet_of(st: &AppState) -> Result<&crate::Wallet, ApiError> {
    st.wallet.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node runs without a chain and cannot be paid",
        )
        .code("chain_unavailable")
    })
}

/// Most tickets in one `POST /api/tickets`.
const MAX_TICKETS_PER_REQUEST: usize = flurry_chain::MAX_TICKETS_PER_JOB as usize;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ParamsBody {
    /// The address that will sign the tickets; the parameters are bound to it.
    sender: flurry_chain::Address,
}

/// `POST /api/tickets/params` with `{"sender": "0x…"}`: fresh ticket parameters for that
/// sender. A POST (never a GET) because it stores a row: a web page's `<img>` must not
/// be able to make the node write. The receiver bounds the rows per sender and in all.
pub(crate) async fn ticket_params(
    State(st): State<AppState>,
    crate::json::ApiJson(body): crate::json::ApiJson<ParamsBody>,
) -> Result<Json<Value>, ApiError> {
    let w = wallet_of(&st)?;
    let tickets = w.tickets.clone();
    let params = tokio::task::spawn_blocking(move || tickets.params(body.sender))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(serde_json::to_value(params).unwrap_or_default()))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitBody {
    tickets: Vec<flurry_chain::ticket::SignedTicket>,
}

/// `POST /api/tickets`: pays this node. Every ticket is validated and stored before the
/// answer; each gets its own result (accepted with its value, or the reason it was
/// refused).
pub(crate) async fn submit_tickets(
    State(st): State<AppState>,
    crate::json::ApiJson(body): crate::json::ApiJson<SubmitBody>,
) -> Result<Json<Value>, ApiError> {
    let w = wallet_of(&st)?;
    if body.tickets.is_empty() || body.tickets.len() > MAX_TICKETS_PER_REQUEST {
        return Err(ApiError::bad_field(
            "tickets",
            format!("send 1 to {MAX_TICKETS_PER_REQUEST} tickets"),
        ));
    }
    let mut results = Vec::with_capacity(body.tickets.len());
    let mut accepted = 0usize;
    let mut value = flurry_chain::U256::ZERO;
    for t in &body.tickets {
        match w.tickets.receive_checked(&w.chain, t).await {
            Ok(a) => {
                accepted += 1;
                value += a.value;
                results.push(json!({
                    "ticket_hash": a.ticket_hash, "winner": a.winner, "value": a.value.to_string(),
                }));
            }
            Err(e) => results.push(json!({ "error": e.to_string() })),
        }
    }
    Ok(Json(json!({
        "accepted": accepted,
        "rejected": body.tickets.len() - accepted,
        "value": value.to_string(),
        "results": results,
    })))
}
