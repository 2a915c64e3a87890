//! The peer-to-peer routes: `/api/net/*` and `/api/circle*`. Routing requests to peers
//! and serving peers live in `flurry-router`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::json::ApiJson;

pub(crate) async fn status(State(st): State<AppState>) -> Result<Response, ApiError> {
    let s = st.router.p2p()?.net.status().await?;
    Ok(Json(s).into_response())
}

pub(crate) async fn peers(State(st): State<AppState>) -> Result<Response, ApiError> {
    let peers = st.router.p2p()?.net.peers().await?;
    Ok(Json(json!({ "peers": peers })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DialRequest {
    addr: String,
}

pub(crate) async fn dial(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<DialRequest>,
) -> Result<Response, ApiError> {
    st.router.p2p()?.net.dial(&req.addr).await?;
    Ok(Json(json!({ "dialing": req.addr })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FindRequest {
    peer_id: String,
}

pub(crate) async fn find(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<FindRequest>,
) -> Result<Response, ApiError> {
    let addrs = st
        .router
        .p2p()?
        .net
        .find_peer(&req.peer_id)
        .await
        .map_err(|e| match e {
            flurry_net::Error::Unreachable(m) => ApiError::not_found(m),
            e => e.into(),
        })?;
    Ok(Json(json!({ "peer_id": req.peer_id, "addrs": addrs })).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct TopicQuery {
    topic: String,
}

/// `GET /api/net/gossip?topic=T`: the last messages of a subscribed topic. It never
/// subscribes: a GET can be fired by any web page (`<img src=…>`), so it must not
/// change state; `POST /api/net/gossip/subscribe` does.
pub(crate) async fn gossip(
    State(st): State<AppState>,
    Query(q): Query<TopicQuery>,
) -> Result<Response, ApiError> {
    let p = st.router.p2p()?;
    if !p.is_subscribed(&q.topic) {
        return Err(ApiError::not_found(format!(
            "not subscribed to gossip topic {:?}: POST /api/net/gossip/subscribe with {{\"topic\": …}} first",
            q.topic
        ))
        .code("not_subscribed"));
    }
    let messages = p.net.gossip(&q.topic).await?;
    Ok(Json(json!({ "topic": q.topic, "messages": messages })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubscribeRequest {
    topic: String,
}

/// `POST /api/net/gossip/subscribe {"topic"}`: subscribes and returns the last messages.
pub(crate) async fn subscribe(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<SubscribeRequest>,
) -> Result<Response, ApiError> {
    let messages = st.router.p2p()?.join(&req.topic).await?;
    Ok(Json(json!({ "topic": req.topic, "messages": messages })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishRequest {
    topic: String,
    text: String,
}

pub(crate) async fn publish(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<PublishRequest>,
) -> Result<Response, ApiError> {
    st.router.publish(&req.topic, req.text).await?;
    Ok(Json(json!({ "published": true })).into_response())
}

pub(crate) async fn circle(State(st): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(json!({ "members": st.router.p2p()?.members() })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddMember {
    peer_id: String,
    name: Option<String>,
    #[serde(default)]
    addrs: Vec<String>,
}

pub(crate) async fn add_member(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<AddMember>,
) -> Result<Response, ApiError> {
    let p = st.router.p2p()?;
    if req.peer_id == st.identity.peer_id {
        return Err(ApiError::bad_field(
            "peer_id",
            "that is this node's own peer id",
        ));
    }
    let member = p.add_member(&req.peer_id, req.name.as_deref(), &req.addrs)?;
    Ok((StatusCode::CREATED, Json(member)).into_response())
}

pub(crate) async fn remove_member(
    State(st): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let p = st.router.p2p()?;
    let Some(m) = p.remove_member(&key)? else {
        return Err(ApiError::not_found(format!(
            "{key:?} is not in your circle (see `flurry circle list`)"
        )));
    };
    Ok(Json(json!({ "removed": m })).into_response())
}
