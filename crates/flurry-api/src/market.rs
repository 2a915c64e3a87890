//! The open market's routes: `GET /api/market` (what this node sells, the book's
//! counters), `GET /api/market/offers` (live offers of staked sellers), `GET
//! /api/market/jobs` (jobs bought and sold), `GET /api/market/audits` (the checks of
//! jobs bought with receipts), `POST
//! /api/market/sell` and `POST /api/market/stop` (admin: they commit the node's machine).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::json::ApiJson;

/// The engine's determinism profile, announced in offers (`docs/determinism.md`).
const PROFILE: &str = flurry_infer::DETERMINISM_PROFILE;

fn market_of(st: &AppState) -> Result<&std::sync::Arc<flurry_market::Market>, ApiError> {
    st.market.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the market needs the peer-to-peer network, which is off on this node ([net] enabled = false)",
        )
        .code("market_unavailable")
    })
}

pub(crate) fn market_error(e: flurry_market::Error) -> ApiError {
    use flurry_market::Error as E;
    match e {
        E::NoChain => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).code("chain_unavailable")
        }
        E::NotStaked { .. } => {
            ApiError::new(StatusCode::CONFLICT, e.to_string()).code("not_staked")
        }
        E::Chain(_) => ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()).code("chain_error"),
        E::Offer(_) => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()).code("invalid_offer"),
        E::NoOffers(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).code("no_seller")
        }
    }
}

/// `GET /api/market/jobs`: the jobs this node bought and sold since it started.
pub(crate) async fn jobs(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "jobs": market_of(&st)?.jobs() })))
}

/// `GET /api/market/audits`: the checks of jobs bought with receipts.
pub(crate) async fn audits(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "audits": market_of(&st)?.audits() })))
}

pub(crate) async fn status(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(market_of(&st)?.status())))
}

/// The query of `GET /api/market/offers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OffersQuery {
    /// A model name or ModelId.
    model: Option<String>,
    /// Also sellers without enough stake (shown with `staked: false`).
    #[serde(default)]
    all: bool,
}

pub(crate) async fn offers(
    State(st): State<AppState>,
    Query(q): Query<OffersQuery>,
) -> Result<Json<Value>, ApiError> {
    let list = market_of(&st)?
        .offers(q.model.as_deref(), q.all)
        .await
        .map_err(market_error)?;
    Ok(Json(json!({ "offers": list })))
}

/// The body of `POST /api/market/sell`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SellRequest {
    /// A model name, ModelId prefix or `default`.
    model: String,
    /// ETH per million generated tokens (decimal string, e.g. "0.002").
    price: String,
    /// ETH per million prompt tokens; default: the same as `price`.
    prompt_price: Option<String>,
    /// Jobs run at once, at most (default 1).
    max_jobs: Option<u32>,
}

pub(crate) fn wei_per_mtok(field: &str, eth: &str) -> Result<u128, ApiError> {
    let wei = flurry_chain::parse_ether(eth.trim()).map_err(|_| {
        ApiError::bad_field(
            field,
            format!("{eth:?} is not an amount of ETH (write it like 0.002)"),
        )
    })?;
    u128::try_from(wei).map_err(|_| ApiError::bad_field(field, "the price is too large"))
}

pub(crate) async fn sell(
    State(st): State<AppState>,
    ApiJson(r): ApiJson<SellRequest>,
) -> Result<Json<Value>, ApiError> {
    let market = market_of(&st)?.clone();
    let price = wei_per_mtok("price", &r.price)?;
    let prompt_price = match &r.prompt_price {
        Some(p) => wei_per_mtok("prompt_price", p)?,
        None => price,
    };
    let max_jobs = r.max_jobs.unwrap_or(1);
    if max_jobs == 0 || max_jobs > flurry_market::offer::MAX_JOBS {
        return Err(ApiError::bad_field(
            "max_jobs",
            format!("between 1 and {}", flurry_market::offer::MAX_JOBS),
        ));
    }
    let models = st.agent.models.clone();
    let name = r.model.clone();
    let entry = tokio::task::spawn_blocking(move || models.resolve(Some(&name)))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "model lookup failed"))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "model {:?}: {e}; `flurry model list` shows what is installed",
                    r.model
                ),
            )
            .code("model_not_found")
        })?;
    let offer = market
        .sell(flurry_market::Sale {
            model: entry.name,
            model_id: entry.model_id.to_string(),
            profile: PROFILE.to_string(),
            price_wei_per_mtok: price,
            prompt_price_wei_per_mtok: prompt_price,
            max_jobs,
        })
        .await
        .map_err(market_error)?;
    Ok(Json(json!({ "offer": offer })))
}

/// The body of `POST /api/market/stop`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StopRequest {
    /// A model name or ModelId; every sale when absent.
    model: Option<String>,
}

pub(crate) async fn stop(
    State(st): State<AppState>,
    ApiJson(r): ApiJson<StopRequest>,
) -> Result<Json<Value>, ApiError> {
    let stopped = market_of(&st)?.stop(r.model.as_deref());
    Ok(Json(json!({ "stopped": stopped })))
}
