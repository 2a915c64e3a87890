//! The peer-to-peer side of the API: `/api/net/*` and `/api/circle*` routes, serving
//! circle members' inference requests with the local engine, and sending this node's
//! requests to a peer (`model: "alice/…"` or `peer: "alice"`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flurry_infer::engine::{Event, FinishReason, Prompt, Timings};
use flurry_infer::template::ChatMessage;
use flurry_net::{Circle, ErrorCode, Inbound, InferFrame, InferMessage, InferRequest, Member, Net};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::generate::{self, GenSpec, Started};
use crate::json::ApiJson;
use crate::{ApiState, AppState};

/// The node's network and its circle, for the API.
#[derive(Debug)]
pub struct P2p {
    /// The swarm.
    pub net: Net,
    /// The trusted circle, as in `circle_file`.
    pub circle: Mutex<Circle>,
    /// `$FLURRY_HOME/circle.json`.
    pub circle_file: PathBuf,
    /// Gossip topics subscribed through the API (`GET /api/net/gossip` reads only these).
    subscribed: Mutex<std::collections::HashSet<String>>,
}

impl P2p {
    /// Loads the circle from `circle_file` and gives it to the swarm.
    pub fn new(net: Net, circle_file: PathBuf) -> Result<Self, flurry_net::Error> {
        let circle = Circle::load(&circle_file)?;
        net.set_circle(&circle.members);
        Ok(Self {
            net,
            circle: Mutex::new(circle),
            circle_file,
            subscribed: Mutex::default(),
        })
    }

    fn members(&self) -> Vec<Member> {
        self.circle
            .lock()
            .map(|c| c.members.clone())
            .unwrap_or_default()
    }
}

/// The peer a request goes to.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PeerUsed {
    pub(crate) peer_id: String,
    pub(crate) name: Option<String>,
    pub(crate) relayed: bool,
    pub(crate) setup_ms: f64,
}

fn p2p(st: &ApiState) -> Result<&P2p, ApiError> {
    st.p2p.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the peer-to-peer network is off on this node: set `[net] enabled = true` in flurry.toml and restart it",
        )
        .code("net_off")
    })
}

fn net_error(e: flurry_net::Error) -> ApiError {
    use flurry_net::Error as E;
    match e {
        E::BadAddr { .. } | E::BadPeerId(_) | E::TooLarge { .. } | E::Circle(_) | E::Gossip(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, e.to_string())
        }
        E::Unreachable(_) | E::Infer { .. } => {
            ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()).code("peer_unreachable")
        }
        _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Which peer, if any, a request names: the `peer` field, or a model written
/// `NAME/MODEL` or `NAME` where NAME is a circle member's name or a peer id. Returns the
/// peer and the model to ask it for (`None` = its default).
pub(crate) fn route(
    st: &ApiState,
    model: Option<&str>,
    peer: Option<&str>,
) -> Result<Option<(Member, Option<String>)>, ApiError> {
    let Some(p) = st.p2p.as_ref() else {
        return match peer {
            Some(_) => Err(p2p(st).unwrap_err()),
            None => Ok(None),
        };
    };
    let circle = p.members();
    let lookup = |key: &str| {
        circle
            .iter()
            .find(|m| m.name == key || m.peer_id == key)
            .cloned()
    };
    if let Some(key) = peer {
        let member = lookup(key).or_else(|| {
            flurry_net::is_peer_id(key).then(|| Member {
                peer_id: key.to_string(),
                name: String::new(),
                addrs: Vec::new(),
            })
        });
        return match member {
            Some(m) => Ok(Some((m, model.filter(|m| !m.is_empty()).map(str::to_string)))),
            None => Err(ApiError::bad_field(
                "peer",
                format!("{key:?} is neither a member of your circle nor a peer id: add it with `flurry circle add PEER_ID --name {key}`"),
            )
            .code("unknown_peer")),
        };
    }
    let Some(model) = model else { return Ok(None) };
    let (head, rest) = match model.split_once('/') {
        Some((h, r)) => (h, Some(r).filter(|r| !r.is_empty()).map(str::to_string)),
        None => (model, None),
    };
    Ok(lookup(head).map(|m| (m, rest)))
}

/// Sends a chat generation to `member` and bridges its answer into engine events.
pub(crate) async fn start_remote(
    st: &ApiState,
    member: Member,
    model: Option<String>,
    spec: GenSpec,
) -> Result<Started, ApiError> {
    let p = p2p(st)?;
    let Prompt::Chat(msgs) = spec.prompt else {
        return Err(ApiError::bad_field(
            "model",
            "only chat requests can go to a peer: use /v1/chat/completions or /api/chat",
        ));
    };
    let s = &spec.sampling;
    let request = InferRequest {
        model,
        max_tokens: spec.max_tokens.map(|n| n.min(u32::MAX as usize) as u32),
        temperature: Some(s.temperature),
        top_p: Some(s.top_p),
        top_k: Some(s.top_k.min(u32::MAX as usize) as u32),
        seed: Some(s.seed),
        stop: spec.stop,
        ..InferRequest::new(
            msgs.into_iter()
                .map(|m| InferMessage {
                    role: m.role,
                    content: m.content,
                })
                .collect(),
        )
    };
    let bytes = flurry_net::infer::encode(&request, flurry_net::infer::MAX_REQUEST_BYTES)
        .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()))?
        .len();
    let label = if member.name.is_empty() {
        member.peer_id.clone()
    } else {
        format!("{} ({})", member.name, member.peer_id)
    };
    // Nothing leaves the node unrecorded: log first, then send.
    match &st.egress {
        Some(log) => {
            log.record(&format!("peer {label}"), "inference request", bytes as u64)
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("not sent: the egress log cannot be written ({e})"),
                    )
                })?;
        }
        None => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "not sent: this node has no egress log to record the request in",
            ));
        }
    }
    let started = Instant::now();
    let mut call = p
        .net
        .infer(&member.peer_id, &member.addrs, &request)
        .await
        .map_err(net_error)?;
    let used = PeerUsed {
        peer_id: member.peer_id.clone(),
        name: (!member.name.is_empty()).then(|| member.name.clone()),
        relayed: call.relayed,
        setup_ms: call.setup.as_secs_f64() * 1e3,
    };
    // The first frame says whether the peer took the request.
    let first = call.frames.recv().await.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("peer {label} closed the stream"),
        )
    })?;
    let (model_name, prompt_tokens) = match first.map_err(net_error)? {
        InferFrame::Start {
            model,
            prompt_tokens,
        } => (model, prompt_tokens as usize),
        InferFrame::Error { code, message } => return Err(refused(&label, code, message)),
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("peer {label} broke the protocol: {other:?} before start"),
            ));
        }
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut completion = 0usize;
        let mut first_token: Option<Instant> = None;
        while let Some(f) = call.frames.recv().await {
            let ev = match f {
                Ok(InferFrame::Token { text }) => {
                    completion += 1;
                    first_token.get_or_insert_with(Instant::now);
                    Event::Token { id: 0, text }
                }
                Ok(InferFrame::Done {
                    finish_reason,
                    completion_tokens,
                }) => {
                    let now = Instant::now();
                    let decode_ms =
                        first_token.map_or(0.0, |t| now.duration_since(t).as_secs_f64() * 1e3);
                    Event::Done {
                        reason: if finish_reason == "length" {
                            FinishReason::Length
                        } else {
                            FinishReason::Stop
                        },
                        timings: Timings {
                            prompt_tokens,
                            completion_tokens: (completion_tokens as usize).max(completion),
                            prefill_ms: first_token
                                .map_or(0.0, |t| t.duration_since(started).as_secs_f64() * 1e3),
                            decode_ms,
                            queue_ms: 0.0,
                        },
                        tail: String::new(),
                    }
                }
                Ok(InferFrame::Error { code, message }) => {
                    Event::Error(format!("peer {label}: {message} ({code:?})"))
                }
                Ok(InferFrame::Start { .. }) => {
                    Event::Error(format!("peer {label} sent start twice"))
                }
                Err(e) => Event::Error(e.to_string()),
            };
            let last = matches!(ev, Event::Done { .. } | Event::Error(_));
            if tx.send(ev).await.is_err() || last {
                return;
            }
        }
        let _ = tx
            .send(Event::Error(format!(
                "peer {label}: the answer was cut off"
            )))
            .await;
    });
    Ok(Started {
        model: None,
        model_name,
        prompt_tokens,
        events: rx,
        citations: Vec::new(),
        peer: Some(used),
    })
}

fn refused(label: &str, code: ErrorCode, message: String) -> ApiError {
    let (status, c) = match code {
        ErrorCode::Unauthorised => (StatusCode::FORBIDDEN, "peer_refused"),
        ErrorCode::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "peer_rate_limited"),
        ErrorCode::Busy => (StatusCode::SERVICE_UNAVAILABLE, "peer_busy"),
        ErrorCode::Model => (StatusCode::NOT_FOUND, "peer_model_not_found"),
        ErrorCode::BadRequest | ErrorCode::TooLarge | ErrorCode::Version => {
            (StatusCode::BAD_REQUEST, "peer_bad_request")
        }
        ErrorCode::Timeout | ErrorCode::Internal => (StatusCode::BAD_GATEWAY, "peer_failed"),
    };
    ApiError::new(status, format!("peer {label}: {message}")).code(c)
}

/// Runs circle members' requests on the local engine until the swarm stops. The
/// private memory is never used for them: nothing of it leaves the node.
pub async fn serve_peers(st: Arc<ApiState>, mut inbound: mpsc::Receiver<Inbound>) {
    while let Some(job) = inbound.recv().await {
        let st = st.clone();
        tokio::spawn(async move {
            let Inbound {
                peer_id,
                name,
                request,
                reply,
            } = job;
            tracing::info!(peer = %peer_id, %name, messages = request.messages.len(), "inference for a circle member");
            if let Err(frame) = answer(&st, request, &reply).await {
                let _ = reply.send(frame).await;
            }
        });
    }
}

async fn answer(
    st: &AppState,
    r: InferRequest,
    reply: &mpsc::Sender<InferFrame>,
) -> Result<(), InferFrame> {
    let bad = |m: String| InferFrame::error(ErrorCode::BadRequest, m);
    let mut sampling = flurry_infer::sampler::SamplingParams::default();
    if let Some(t) = r.temperature {
        sampling.temperature = t;
    }
    if let Some(p) = r.top_p {
        sampling.top_p = p;
    }
    if let Some(k) = r.top_k {
        sampling.top_k = k as usize;
    }
    sampling.seed = r.seed.unwrap_or_else(generate::random_seed);
    let max_tokens = r.max_tokens.map(|n| n as usize);
    generate::check_max_tokens(st, max_tokens, "max_tokens").map_err(|e| bad(e.message))?;
    generate::check_stop(&r.stop, "stop").map_err(|e| bad(e.message))?;
    let spec = GenSpec {
        model: r.model,
        prompt: Prompt::Chat(
            r.messages
                .into_iter()
                .map(|m| ChatMessage::new(m.role, m.content))
                .collect(),
        ),
        sampling,
        max_tokens,
        stop: r.stop,
        memory: false,
        peer: None,
    };
    let started = generate::start_local(st, spec).await.map_err(|e| {
        let code = match e.status {
            StatusCode::NOT_FOUND => ErrorCode::Model,
            StatusCode::BAD_REQUEST => ErrorCode::BadRequest,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Busy,
            _ => ErrorCode::Internal,
        };
        InferFrame::error(code, e.message)
    })?;
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
            Event::Token { text, .. } if text.is_empty() => continue,
            Event::Token { text, .. } => InferFrame::Token { text },
            Event::Done {
                reason,
                timings,
                tail,
            } => {
                st.metrics.record(
                    timings.prompt_tokens,
                    timings.completion_tokens,
                    timings.decode_ms,
                );
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

// ------------------------------------------------------------------- routes

pub(crate) async fn status(State(st): State<AppState>) -> Result<Response, ApiError> {
    let s = p2p(&st)?.net.status().await.map_err(net_error)?;
    Ok(Json(s).into_response())
}

pub(crate) async fn peers(State(st): State<AppState>) -> Result<Response, ApiError> {
    let peers = p2p(&st)?.net.peers().await.map_err(net_error)?;
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
    p2p(&st)?.net.dial(&req.addr).await.map_err(net_error)?;
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
    let addrs = p2p(&st)?
        .net
        .find_peer(&req.peer_id)
        .await
        .map_err(|e| match e {
            flurry_net::Error::Unreachable(m) => ApiError::not_found(m),
            e => net_error(e),
        })?;
    Ok(Json(json!({ "peer_id": req.peer_id, "addrs": addrs })).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct TopicQuery {
    topic: String,
}

/// Most gossip topics the API subscribes to.
const MAX_TOPICS: usize = 64;

impl P2p {
    fn is_subscribed(&self, topic: &str) -> bool {
        self.subscribed.lock().is_ok_and(|s| s.contains(topic))
    }

    /// Subscribes to `topic` (once) and returns its last messages.
    async fn join(&self, topic: &str) -> Result<Vec<flurry_net::GossipMessage>, ApiError> {
        {
            let mut s = self.subscribed.lock().unwrap_or_else(|p| p.into_inner());
            if !s.contains(topic) && s.len() >= MAX_TOPICS {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("this node follows {MAX_TOPICS} gossip topics already"),
                ));
            }
            s.insert(topic.to_string());
        }
        self.net.gossip(topic).await.map_err(net_error)
    }
}

/// `GET /api/net/gossip?topic=T`: the last messages of a subscribed topic. It never
/// subscribes: a GET can be fired by any web page (`<img src=…>`), so it must not
/// change state; `POST /api/net/gossip/subscribe` does.
pub(crate) async fn gossip(
    State(st): State<AppState>,
    Query(q): Query<TopicQuery>,
) -> Result<Response, ApiError> {
    let p = p2p(&st)?;
    if !p.is_subscribed(&q.topic) {
        return Err(ApiError::not_found(format!(
            "not subscribed to gossip topic {:?}: POST /api/net/gossip/subscribe with {{\"topic\": …}} first",
            q.topic
        ))
        .code("not_subscribed"));
    }
    let messages = p.net.gossip(&q.topic).await.map_err(net_error)?;
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
    let messages = p2p(&st)?.join(&req.topic).await?;
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
    let p = p2p(&st)?;
    if let Some(log) = &st.egress {
        log.record(
            &format!("gossip topic {}", req.topic),
            "gossip message",
            req.text.len() as u64,
        )
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("not sent: the egress log cannot be written ({e})"),
            )
        })?;
    }
    p.join(&req.topic).await?;
    p.net
        .publish(&req.topic, req.text.into_bytes())
        .await
        .map_err(net_error)?;
    Ok(Json(json!({ "published": true })).into_response())
}

pub(crate) async fn circle(State(st): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(json!({ "members": p2p(&st)?.members() })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddMember {
    peer_id: String,
    name: Option<String>,
    #[serde(default)]
    addrs: Vec<String>,
}

fn save(p: &P2p, c: &Circle) -> Result<(), ApiError> {
    c.save(&p.circle_file)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    p.net.set_circle(&c.members);
    Ok(())
}

pub(crate) async fn add_member(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<AddMember>,
) -> Result<Response, ApiError> {
    let p = p2p(&st)?;
    if req.peer_id == st.identity.peer_id {
        return Err(ApiError::bad_field(
            "peer_id",
            "that is this node's own peer id",
        ));
    }
    let mut c = p
        .circle
        .lock()
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "circle lock poisoned"))?;
    let mut next = c.clone();
    let member = next
        .add(&req.peer_id, req.name.as_deref(), &req.addrs)
        .map_err(net_error)?
        .clone();
    save(p, &next)?;
    *c = next;
    Ok((StatusCode::CREATED, Json(member)).into_response())
}

pub(crate) async fn remove_member(
    State(st): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let p = p2p(&st)?;
    let mut c = p
        .circle
        .lock()
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "circle lock poisoned"))?;
    let mut next = c.clone();
    let Some(m) = next.remove(&key) else {
        return Err(ApiError::not_found(format!(
            "{key:?} is not in your circle (see `flurry circle list`)"
        )));
    };
    save(p, &next)?;
    *c = next;
    Ok(Json(json!({ "removed": m })).into_response())
}
