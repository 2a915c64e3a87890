//! Ollama-compatible routes: `/api/chat`, `/api/generate` (NDJSON streaming),
//! `/api/tags`, `/api/show`, `/api/ps`, `/api/version`.

use std::convert::Infallible;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use flurry_infer::engine::{Event, FinishReason, Prompt, Timings};
use flurry_infer::logprob::TokenLogprobs;
use flurry_infer::sampler::SamplingParams;
use flurry_infer::store::{ModelEntry, ModelInfo};
use flurry_infer::template::ChatMessage;
use flurry_router::{GenSpec, Started};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::openai::Stop;

#[derive(Debug, Default, Deserialize)]
struct Options {
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<usize>,
    min_p: Option<f32>,
    seed: Option<u64>,
    num_predict: Option<i64>,
    stop: Option<Stop>,
    repeat_penalty: Option<f32>,
}

#[derive(Debug, Deserialize)]
struct OMessage {
    role: String,
    #[serde(default)]
    content: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChatRequest {
    model: String,
    #[serde(default)]
    messages: Vec<OMessage>,
    stream: Option<bool>,
    #[serde(default)]
    options: Option<Options>,
    /// Flurry's extension: `true` lets the private memory into the prompt. Off by
    /// default: an API client reads memory only when it asks to.
    memory: Option<bool>,
    /// Flurry's extension: send the request to this peer (a circle name or peer id).
    peer: Option<String>,
    /// Flurry's extension: a `market/…` request's most ETH per million generated tokens.
    max_price: Option<String>,
    /// Flurry's extension: `"local-only"` or `"scrubbed"` tightens the owner's privacy
    /// policy for this request (docs/privacy.md).
    privacy: Option<flurry_privacy::Override>,
    /// Return each generated token's log-probability.
    logprobs: Option<bool>,
    /// Alternatives per token (0-20) with `logprobs`.
    top_logprobs: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct GenerateRequest {
    model: String,
    #[serde(default)]
    prompt: String,
    system: Option<String>,
    #[serde(default)]
    raw: bool,
    stream: Option<bool>,
    #[serde(default)]
    options: Option<Options>,
    /// Flurry's extension: `true` lets the private memory into the prompt. Off by
    /// default: an API client reads memory only when it asks to.
    memory: Option<bool>,
    /// Flurry's extension: see `ChatRequest::privacy`.
    privacy: Option<flurry_privacy::Override>,
    /// See `ChatRequest::logprobs`.
    logprobs: Option<bool>,
    /// See `ChatRequest::top_logprobs`.
    top_logprobs: Option<usize>,
}

fn oerr(e: ApiError) -> ApiError {
    e.ollama()
}

/// `logprobs` / `top_logprobs` as alternatives per token; `None` when not asked for.
fn parse_logprobs(on: Option<bool>, top: Option<usize>) -> Result<Option<usize>, ApiError> {
    crate::openai::logprobs_wish(on.unwrap_or(false), top).map_err(oerr)
}

fn spec_parts(
    st: &AppState,
    o: Option<Options>,
) -> Result<(SamplingParams, Option<usize>, Vec<String>), ApiError> {
    let o = o.unwrap_or_default();
    // Ollama's defaults.
    let sampling = SamplingParams {
        temperature: o.temperature.unwrap_or(0.8),
        top_p: o.top_p.unwrap_or(0.9),
        top_k: o.top_k.unwrap_or(40),
        min_p: o.min_p.unwrap_or(0.0),
        repeat_penalty: o.repeat_penalty.unwrap_or(1.1),
        seed: o.seed.unwrap_or_else(flurry_router::random_seed),
        ..SamplingParams::default()
    };
    let max_tokens = match o.num_predict {
        None => None,
        Some(n) if n < 0 => None,
        Some(n) => Some(n as usize),
    };
    st.router
        .check_max_tokens(max_tokens, "options.num_predict")?;
    let stop = o.stop.map(Stop::into_vec).unwrap_or_default();
    flurry_router::check_stop(&stop, "options.stop")?;
    Ok((sampling, max_tokens, stop))
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

fn ns(ms: f64) -> u64 {
    (ms * 1e6) as u64
}

fn done_fields(reason: FinishReason, t: &Timings) -> Value {
    json!({
        "done": true,
        "done_reason": match reason { FinishReason::Stop => "stop", FinishReason::Length => "length" },
        "total_duration": ns(t.queue_ms + t.prefill_ms + t.decode_ms),
        "load_duration": 0,
        "prompt_eval_count": t.prompt_tokens,
        "prompt_eval_duration": ns(t.prefill_ms),
        "eval_count": t.completion_tokens,
        "eval_duration": ns(t.decode_ms),
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// Loads a model without generating (Ollama's answer to an empty request); its name.
async fn load_only(st: &AppState, model: &str) -> Result<String, ApiError> {
    let agent = st.agent.clone();
    let name = model.to_string();
    let m = tokio::task::spawn_blocking(move || agent.models.get(Some(&name)))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| oerr(e.into()))?;
    Ok(m.entry.name.clone())
}

pub(crate) async fn chat(
    State(st): State<AppState>,
    granted: Option<axum::Extension<crate::Granted>>,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    crate::check_market_scope(granted.as_ref(), Some(req.model.as_str())).map_err(oerr)?;
    let (sampling, max_tokens, stop) = spec_parts(&st, req.options).map_err(oerr)?;
    let logprobs = parse_logprobs(req.logprobs, req.top_logprobs)?;
    if req.messages.len() > st.limits.max_messages {
        return Err(oerr(ApiError::bad_field(
            "messages",
            format!("at most {} messages are allowed", st.limits.max_messages),
        )));
    }
    if req.messages.is_empty() {
        // Ollama answers an empty chat by loading the model.
        let name = load_only(&st, &req.model).await?;
        return Ok(Json(json!({
            "model": name, "created_at": now_rfc3339(),
            "message": {"role": "assistant", "content": ""}, "done_reason": "load", "done": true,
        }))
        .into_response());
    }
    let mut msgs = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.into_iter().enumerate() {
        if !matches!(m.role.as_str(), "system" | "user" | "assistant") {
            return Err(oerr(ApiError::bad_field(
                &format!("messages[{i}].role"),
                format!(
                    "role {:?} is not supported: use system, user or assistant",
                    m.role
                ),
            )));
        }
        msgs.push(ChatMessage::new(m.role, m.content));
    }
    let started = st
        .router
        .start(GenSpec {
            model: Some(req.model),
            prompt: Prompt::Chat(msgs),
            sampling,
            max_tokens,
            stop,
            memory: req.memory.unwrap_or(false),
            peer: req.peer,
            privacy: req.privacy,
            logprobs,
            max_price: req
                .max_price
                .as_deref()
                .map(|p| crate::market::wei_per_mtok("max_price", p))
                .transpose()
                .map_err(oerr)?,
        })
        .await
        .map_err(|e| oerr(e.into()))?;
    let model = started.model_name.clone();
    let piece = move |text: &str, done: Option<Value>| {
        let base = json!({
            "model": model, "created_at": now_rfc3339(),
            "message": {"role": "assistant", "content": text}, "done": false,
        });
        match done {
            Some(d) => merge(base, d),
            None => base,
        }
    };
    respond(
        st,
        started,
        req.stream.unwrap_or(true),
        logprobs.is_some(),
        piece,
    )
    .await
}

pub(crate) async fn generate(
    State(st): State<AppState>,
    granted: Option<axum::Extension<crate::Granted>>,
    ApiJson(req): ApiJson<GenerateRequest>,
) -> Result<Response, ApiError> {
    crate::check_market_scope(granted.as_ref(), Some(req.model.as_str())).map_err(oerr)?;
    let (sampling, max_tokens, stop) = spec_parts(&st, req.options).map_err(oerr)?;
    let logprobs = parse_logprobs(req.logprobs, req.top_logprobs)?;
    if req.prompt.is_empty() {
        // Likewise an empty prompt.
        let name = load_only(&st, &req.model).await?;
        return Ok(Json(json!({
            "model": name, "created_at": now_rfc3339(),
            "response": "", "done_reason": "load", "done": true,
        }))
        .into_response());
    }
    let prompt = if req.raw {
        Prompt::Raw(req.prompt)
    } else {
        let mut msgs = Vec::new();
        if let Some(s) = req.system {
            msgs.push(ChatMessage::new("system", s));
        }
        msgs.push(ChatMessage::new("user", req.prompt));
        Prompt::Chat(msgs)
    };
    let started = st
        .router
        .start(GenSpec {
            model: Some(req.model),
            prompt,
            sampling,
            max_tokens,
            stop,
            memory: req.memory.unwrap_or(false),
            peer: None,
            privacy: req.privacy,
            logprobs,
            max_price: None,
        })
        .await
        .map_err(|e| oerr(e.into()))?;
    let model = started.model_name.clone();
    let piece = move |text: &str, done: Option<Value>| {
        let base =
            json!({"model": model, "created_at": now_rfc3339(), "response": text, "done": false});
        match done {
            Some(d) => merge(base, d),
            None => base,
        }
    };
    respond(
        st,
        started,
        req.stream.unwrap_or(true),
        logprobs.is_some(),
        piece,
    )
    .await
}

/// Answers one JSON object, or NDJSON lines while streaming.
async fn respond(
    st: AppState,
    started: Started,
    stream: bool,
    want_logprobs: bool,
    piece: impl Fn(&str, Option<Value>) -> Value + Send + 'static,
) -> Result<Response, ApiError> {
    // Each response object carries the log-probabilities of the tokens it holds.
    let piece = move |text: &str, done: Option<Value>, lp: &[TokenLogprobs]| {
        let mut v = piece(text, done);
        if want_logprobs {
            v["logprobs"] = Value::Array(crate::openai::logprob_entries(lp));
        }
        v
    };
    let citations = started.citations.clone();
    let peer = started.peer.clone();
    let market = started.market.clone();
    let done = move |reason, timings: &Timings| {
        let mut d = done_fields(reason, timings);
        if market.is_some() {
            d["market"] = crate::openai::market_json(market.as_ref());
        }
        if !citations.is_empty() {
            d["citations"] = json!(citations);
        }
        if let Some(p) = &peer {
            d["peer"] = json!(p);
        }
        d
    };
    if !stream {
        let f = crate::collect(&st, started).await.map_err(oerr)?;
        return Ok(Json(piece(
            &f.text,
            Some(done(f.reason, &f.timings)),
            &f.logprobs,
        ))
        .into_response());
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    let Started {
        mut events, model, ..
    } = started;
    tokio::spawn(async move {
        let _model = model;
        let line = |v: Value| {
            let mut s = v.to_string();
            s.push('\n');
            Ok(Bytes::from(s))
        };
        // Log-probabilities of tokens whose text is still held back.
        let mut pending: Vec<TokenLogprobs> = Vec::new();
        while let Some(ev) = events.recv().await {
            let v = match ev {
                Event::Prefill { .. } | Event::Commitments(_) => continue,
                Event::Token { text, logprobs, .. } => {
                    pending.extend(logprobs.map(|b| *b));
                    if text.is_empty() {
                        continue;
                    }
                    piece(&text, None, &std::mem::take(&mut pending))
                }
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
                    let _ = tx
                        .send(line(piece(&tail, Some(done(reason, &timings)), &pending)))
                        .await;
                    return;
                }
                Event::Error(e) => {
                    let _ = tx.send(line(json!({ "error": e }))).await;
                    return;
                }
            };
            if tx.send(line(v)).await.is_err() {
                return;
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response())
}

fn details(info: &ModelInfo) -> Value {
    let params = info.parameters as f64;
    let size = if params >= 1e9 {
        format!("{:.1}B", params / 1e9)
    } else {
        format!("{:.0}M", params / 1e6)
    };
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": info.architecture,
        "families": [info.architecture],
        "parameter_size": size,
        "quantization_level": info.quantization.split('+').next().unwrap_or(""),
    })
}

fn modified(e: &ModelEntry) -> String {
    std::fs::metadata(&e.path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
        .unwrap_or_else(jiff::Timestamp::now)
        .to_string()
}

async fn infos(st: &AppState) -> Result<Vec<ModelInfo>, ApiError> {
    let agent = st.agent.clone();
    tokio::task::spawn_blocking(move || -> Result<Vec<ModelInfo>, ApiError> {
        let list = agent.models.list()?;
        Ok(list
            .into_iter()
            .filter_map(|e| ModelInfo::read(e).ok())
            .collect())
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

pub(crate) async fn tags(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let models: Vec<Value> = infos(&st)
        .await
        .map_err(oerr)?
        .iter()
        .map(|i| {
            json!({
                "name": i.entry.name, "model": i.entry.name,
                "modified_at": modified(&i.entry), "size": i.entry.size,
                "digest": i.entry.model_id.to_string(), "details": details(i),
            })
        })
        .collect();
    Ok(Json(json!({ "models": models })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ShowRequest {
    #[serde(alias = "name")]
    model: String,
}

pub(crate) async fn show(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<ShowRequest>,
) -> Result<Json<Value>, ApiError> {
    let agent = st.agent.clone();
    let info = tokio::task::spawn_blocking(move || -> Result<ModelInfo, ApiError> {
        let e = agent.models.resolve(Some(&req.model))?;
        Ok(ModelInfo::read(e)?)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(oerr)?;
    let arch = &info.architecture;
    Ok(Json(json!({
        "license": info.license.clone().unwrap_or_default(),
        "modelfile": format!("FROM {}\n", info.entry.path.display()),
        "parameters": "",
        "template": info.chat_template.clone().unwrap_or_default(),
        "details": details(&info),
        "model_info": {
            "general.architecture": arch,
            "general.parameter_count": info.parameters,
            format!("{arch}.context_length"): info.context_length,
            "flurry.model_id": info.entry.model_id.to_string(),
        },
        "modified_at": modified(&info.entry),
        "capabilities": ["completion"],
    })))
}

pub(crate) async fn ps(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let loaded = st.agent.models.loaded();
    let infos = infos(&st).await.map_err(oerr)?;
    let models: Vec<Value> = loaded
        .iter()
        .filter_map(|l| infos.iter().find(|i| i.entry.name == l.name))
        .map(|i| {
            json!({
                "name": i.entry.name, "model": i.entry.name, "size": i.entry.size,
                "digest": i.entry.model_id.to_string(), "details": details(i),
                "expires_at": now_rfc3339(), "size_vram": 0,
            })
        })
        .collect();
    Ok(Json(json!({ "models": models })))
}

pub(crate) async fn version() -> Json<Value> {
    Json(json!({ "version": env!("CARGO_PKG_VERSION") }))
}
