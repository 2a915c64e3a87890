//! OpenAI-compatible routes: `/v1/chat/completions`, `/v1/completions`, `/v1/models`,
//! `/v1/embeddings`.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use flurry_infer::engine::{Event, FinishReason, Prompt};
use flurry_infer::logprob::TokenLogprobs;
use flurry_infer::sampler::SamplingParams;
use flurry_infer::template::ChatMessage;
use flurry_router::{GenSpec, Started};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::error::ApiError;
use crate::json::ApiJson;

/// `content` of a message: a string, or an array of parts of which text parts count.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

/// `stop`: one string or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// A body of `/v1/chat/completions` or `/v1/completions` (one struct, not flattened
/// parts, so that errors can name the exact field).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Request {
    model: Option<String>,
    messages: Option<Vec<InMessage>>,
    prompt: Option<String>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    max_tokens: Option<usize>,
    max_completion_tokens: Option<usize>,
    stop: Option<Stop>,
    seed: Option<u64>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    n: Option<u32>,
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
    /// Chat: `true` returns each token's log-probability; completions: the number of
    /// alternatives per token (the legacy form).
    logprobs: Option<Value>,
    /// Chat: alternatives per token with `logprobs: true`.
    top_logprobs: Option<usize>,
}

struct Parsed {
    sampling: SamplingParams,
    max_tokens: Option<usize>,
    stop: Vec<String>,
    stream: bool,
    include_usage: bool,
    memory: bool,
    peer: Option<String>,
    privacy: Option<flurry_privacy::Override>,
    logprobs: Option<usize>,
    max_price: Option<u128>,
}

/// Which route a request came in on: the two spell `logprobs` differently.
#[derive(Clone, Copy, PartialEq)]
enum Route {
    Chat,
    Completions,
}

/// `logprobs: bool` with `top_logprobs` (chat and Ollama) as alternatives per token;
/// `None` when log-probabilities are not asked for.
pub(crate) fn logprobs_wish(on: bool, top: Option<usize>) -> Result<Option<usize>, ApiError> {
    let max = flurry_infer::logprob::MAX_TOP_LOGPROBS;
    match (on, top) {
        (_, Some(k)) if k > max => Err(ApiError::bad_field(
            "top_logprobs",
            format!("`top_logprobs` must be between 0 and {max}"),
        )),
        (false, Some(k)) if k > 0 => Err(ApiError::bad_field(
            "top_logprobs",
            "`top_logprobs` needs `logprobs: true`",
        )),
        (false, _) => Ok(None),
        (true, k) => Ok(Some(k.unwrap_or(0))),
    }
}

/// `logprobs` / `top_logprobs` as the number of alternatives per token, `None` when
/// log-probabilities are not asked for.
fn parse_logprobs(s: &Request, route: Route) -> Result<Option<usize>, ApiError> {
    let max = flurry_infer::logprob::MAX_TOP_LOGPROBS;
    let lp = s.logprobs.as_ref().filter(|v| !v.is_null());
    match route {
        Route::Chat => {
            let on = match lp {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(ApiError::bad_field(
                        "logprobs",
                        "`logprobs` must be true or false on /v1/chat/completions (the number of alternatives goes in `top_logprobs`)",
                    ));
                }
            };
            logprobs_wish(on, s.top_logprobs)
        }
        Route::Completions => {
            if s.top_logprobs.is_some() {
                return Err(ApiError::bad_field(
                    "top_logprobs",
                    "/v1/completions takes the number of alternatives in `logprobs` (e.g. \"logprobs\": 3)",
                ));
            }
            match lp {
                None => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(k) if k <= max as u64 => Ok(Some(k as usize)),
                    _ => Err(ApiError::bad_field(
                        "logprobs",
                        format!(
                            "`logprobs` must be an integer between 0 and {max} on /v1/completions"
                        ),
                    )),
                },
            }
        }
    }
}

fn parse_sampling(st: &AppState, s: &mut Request, route: Route) -> Result<Parsed, ApiError> {
    let logprobs = parse_logprobs(s, route)?;
    if s.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_field("n", "only n = 1 is supported"));
    }
    let temperature = s.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::bad_field(
            "temperature",
            "`temperature` must be between 0 and 2",
        ));
    }
    let top_p = s.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::bad_field("top_p", "`top_p` must be in (0, 1]"));
    }
    let (max_tokens, param) = match (s.max_completion_tokens, s.max_tokens) {
        (Some(n), _) => (Some(n), "max_completion_tokens"),
        (None, n) => (n, "max_tokens"),
    };
    st.router.check_max_tokens(max_tokens, param)?;
    let stop = s.stop.take().map(Stop::into_vec).unwrap_or_default();
    flurry_router::check_stop(&stop, "stop")?;
    Ok(Parsed {
        sampling: SamplingParams {
            temperature,
            top_p,
            top_k: 0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            seed: s.seed.unwrap_or_else(flurry_router::random_seed),
            ..SamplingParams::default()
        },
        max_tokens,
        stop,
        stream: s.stream,
        include_usage: s.stream_options.as_ref().is_some_and(|o| o.include_usage),
        memory: s.memory.unwrap_or(false),
        peer: s.peer.take(),
        privacy: s.privacy,
        logprobs,
        max_price: s
            .max_price
            .as_deref()
            .map(|p| crate::market::wei_per_mtok("max_price", p))
            .transpose()?,
    })
}

/// Converts OpenAI messages to chat messages, checking roles and limits.
fn chat_messages(st: &AppState, msgs: Vec<InMessage>) -> Result<Vec<ChatMessage>, ApiError> {
    if msgs.is_empty() {
        return Err(ApiError::bad_field(
            "messages",
            "`messages` must not be empty",
        ));
    }
    if msgs.len() > st.limits.max_messages {
        return Err(ApiError::bad_field(
            "messages",
            format!(
                "{} messages given; this node allows at most {} ([api] max_messages)",
                msgs.len(),
                st.limits.max_messages
            ),
        ));
    }
    msgs.into_iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                other => {
                    return Err(ApiError::bad_field(
                        &format!("messages[{i}].role"),
                        format!("role {other:?} is not supported: use system, user or assistant"),
                    ));
                }
            };
            let text = match m.content {
                None => String::new(),
                Some(Content::Text(t)) => t,
                Some(Content::Parts(parts)) => {
                    let mut t = String::new();
                    for p in parts {
                        if p.kind != "text" {
                            return Err(ApiError::bad_field(
                                &format!("messages[{i}].content"),
                                format!("content parts of type {:?} are not supported: this model reads text only", p.kind),
                            ));
                        }
                        t.push_str(p.text.as_deref().unwrap_or(""));
                    }
                    t
                }
            };
            Ok(ChatMessage::new(role, text))
        })
        .collect()
}

/// Queues a generation with the parsed sampling fields.
async fn begin(
    st: &AppState,
    model: Option<String>,
    prompt: Prompt,
    p: &mut Parsed,
) -> Result<Started, ApiError> {
    let spec = GenSpec {
        model,
        prompt,
        sampling: p.sampling.clone(),
        max_tokens: p.max_tokens,
        stop: std::mem::take(&mut p.stop),
        memory: p.memory,
        peer: p.peer.take(),
        privacy: p.privacy,
        logprobs: p.logprobs,
        max_price: p.max_price,
    };
    Ok(st.router.start(spec).await?)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn reason(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}-{:016x}", flurry_router::random_seed())
}

pub(crate) async fn chat_completions(
    State(st): State<AppState>,
    granted: Option<axum::Extension<crate::Granted>>,
    ApiJson(mut req): ApiJson<Request>,
) -> Result<Response, ApiError> {
    crate::check_market_scope(granted.as_ref(), req.model.as_deref())?;
    let Some(messages) = req.messages.take() else {
        return Err(ApiError::bad_field("messages", "missing field `messages`"));
    };
    let mut p = parse_sampling(&st, &mut req, Route::Chat)?;
    let messages = chat_messages(&st, messages)?;
    let started = begin(&st, req.model, Prompt::Chat(messages), &mut p).await?;
    let citations = json!(started.citations);
    let peer = started.peer.clone();
    let market = started.market.clone();
    let id = new_id("chatcmpl");
    let model = started.model_name.clone();
    let created = now();
    let want = p.logprobs.is_some();
    if !p.stream {
        let n = started.prompt_tokens;
        let f = crate::collect(&st, started).await?;
        return Ok(Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": started_fingerprint(&st),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": f.text},
                "logprobs": chat_logprobs(want, &f.logprobs),
                "finish_reason": reason(f.reason),
            }],
            "usage": usage(n, f.timings.completion_tokens),
            "citations": citations,
            "peer": peer,
            "market": market_json(market.as_ref()),
        }))
        .into_response());
    }
    let chunk = move |delta: Value, lp: &[TokenLogprobs], finish: Option<&str>| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": chat_logprobs(want, lp), "finish_reason": finish}],
        })
    };
    Ok(stream(
        st,
        started,
        p.include_usage,
        move |piece| match piece {
            Piece::First => Some(chunk(
                json!({"role": "assistant", "content": ""}),
                &[],
                None,
            )),
            Piece::Text(t, lp) => Some(chunk(json!({"content": t}), &lp, None)),
            Piece::Finish(r, lp) => {
                let mut c = chunk(json!({}), &lp, Some(reason(r)));
                c["citations"] = citations.clone();
                if market.is_some() {
                    c["market"] = market_json(market.as_ref());
                }
                Some(c)
            }
        },
    ))
}

/// A market job's account as JSON (`null` for answers not bought).
pub(crate) fn market_json(
    m: Option<&std::sync::Arc<std::sync::Mutex<flurry_market::Bought>>>,
) -> Value {
    m.and_then(|m| m.lock().ok().map(|b| json!(*b)))
        .unwrap_or(Value::Null)
}

fn started_fingerprint(st: &AppState) -> String {
    format!(
        "flurry-{}-{}",
        env!("CARGO_PKG_VERSION"),
        &st.identity.peer_id[..st.identity.peer_id.len().min(12)]
    )
}

fn usage(prompt: usize, completion: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

pub(crate) async fn completions(
    State(st): State<AppState>,
    granted: Option<axum::Extension<crate::Granted>>,
    ApiJson(mut req): ApiJson<Request>,
) -> Result<Response, ApiError> {
    crate::check_market_scope(granted.as_ref(), req.model.as_deref())?;
    let Some(prompt) = req.prompt.take() else {
        return Err(ApiError::bad_field("prompt", "missing field `prompt`"));
    };
    let mut p = parse_sampling(&st, &mut req, Route::Completions)?;
    let started = begin(&st, req.model, Prompt::Raw(prompt), &mut p).await?;
    let want = p.logprobs.is_some();
    let id = new_id("cmpl");
    let model = started.model_name.clone();
    let created = now();
    if !p.stream {
        let n = started.prompt_tokens;
        let f = crate::collect(&st, started).await?;
        return Ok(Json(json!({
            "id": id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": 0, "text": f.text, "logprobs": completion_logprobs(want, &f.logprobs, 0), "finish_reason": reason(f.reason)}],
            "usage": usage(n, f.timings.completion_tokens),
        }))
        .into_response());
    }
    // Byte offset of the next token in the generated text, across chunks.
    let offset = std::sync::atomic::AtomicUsize::new(0);
    let chunk = move |text: &str, lp: &[TokenLogprobs], finish: Option<&str>| {
        let at = offset.fetch_add(
            lp.iter().map(|t| t.bytes.len()).sum(),
            std::sync::atomic::Ordering::Relaxed,
        );
        json!({
            "id": id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": completion_logprobs(want, lp, at), "finish_reason": finish}],
        })
    };
    Ok(stream(
        st,
        started,
        p.include_usage,
        move |piece| match piece {
            Piece::First => None,
            Piece::Text(t, lp) => Some(chunk(&t, &lp, None)),
            Piece::Finish(r, lp) => Some(chunk("", &lp, Some(reason(r)))),
        },
    ))
}

/// What a streamed chunk carries: text and the log-probabilities of the tokens that
/// made it (empty unless asked for).
enum Piece {
    First,
    Text(String, Vec<TokenLogprobs>),
    Finish(FinishReason, Vec<TokenLogprobs>),
}

/// A token as OpenAI spells it: its text (invalid UTF-8 replaced) and its bytes.
fn token_json(bytes: &[u8], logprob: f32) -> Value {
    json!({"token": String::from_utf8_lossy(bytes), "logprob": logprob, "bytes": bytes})
}

/// One entry per token: `token`, `logprob`, `bytes` and `top_logprobs` (the shape both
/// OpenAI's chat and Ollama use).
pub(crate) fn logprob_entries(lp: &[TokenLogprobs]) -> Vec<Value> {
    lp.iter()
        .map(|t| {
            let mut v = token_json(&t.bytes, t.logprob);
            v["top_logprobs"] = t
                .top
                .iter()
                .map(|a| token_json(&a.bytes, a.logprob))
                .collect();
            v
        })
        .collect()
}

/// Chat's `logprobs`: `{"content": [...]}` when asked for, else `null`.
fn chat_logprobs(want: bool, lp: &[TokenLogprobs]) -> Value {
    if !want {
        return Value::Null;
    }
    json!({"content": logprob_entries(lp), "refusal": null})
}

/// Completions' legacy `logprobs`: parallel arrays, `text_offset` in bytes of the
/// generated text from `start`; `null` unless asked for.
fn completion_logprobs(want: bool, lp: &[TokenLogprobs], start: usize) -> Value {
    if !want {
        return Value::Null;
    }
    let mut offset = start;
    let mut text_offset = Vec::with_capacity(lp.len());
    for t in lp {
        text_offset.push(offset);
        offset += t.bytes.len();
    }
    json!({
        "tokens": lp.iter().map(|t| String::from_utf8_lossy(&t.bytes)).collect::<Vec<_>>(),
        "token_logprobs": lp.iter().map(|t| t.logprob).collect::<Vec<_>>(),
        "top_logprobs": lp.iter().map(|t| {
            t.top.iter().map(|a| (String::from_utf8_lossy(&a.bytes).into_owned(), json!(a.logprob))).collect::<serde_json::Map<_, _>>()
        }).collect::<Vec<_>>(),
        "text_offset": text_offset,
    })
}

/// Streams a generation as SSE chunks made by `chunk`, then an optional usage chunk,
/// then `data: [DONE]`. Errors mid-stream are sent as an `error` object.
fn stream(
    st: AppState,
    started: Started,
    include_usage: bool,
    chunk: impl Fn(Piece) -> Option<Value> + Send + 'static,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<SseEvent, Infallible>>(16);
    let Started {
        mut events,
        prompt_tokens,
        model,
        ..
    } = started;
    tokio::spawn(async move {
        let _model = model;
        let send = |v: Value| SseEvent::default().data(v.to_string());
        if let Some(v) = chunk(Piece::First)
            && tx.send(Ok(send(v))).await.is_err()
        {
            return;
        }
        // Log-probabilities of tokens whose text is still held back.
        let mut pending: Vec<TokenLogprobs> = Vec::new();
        while let Some(ev) = events.recv().await {
            let out = match ev {
                Event::Prefill { .. } | Event::Commitments(_) => continue,
                Event::Token { text, logprobs, .. } => {
                    pending.extend(logprobs.map(|b| *b));
                    if text.is_empty() {
                        continue;
                    }
                    vec![chunk(Piece::Text(text, std::mem::take(&mut pending)))]
                }
                Event::Done {
                    reason,
                    timings,
                    tail,
                } => {
                    st.metrics
                        .record(prompt_tokens, timings.completion_tokens, timings.decode_ms);
                    let mut v = Vec::new();
                    if !tail.is_empty() {
                        v.push(chunk(Piece::Text(tail, std::mem::take(&mut pending))));
                    }
                    v.push(chunk(Piece::Finish(reason, std::mem::take(&mut pending))));
                    if include_usage {
                        let mut u =
                            chunk(Piece::Finish(reason, Vec::new())).unwrap_or_else(|| json!({}));
                        u["choices"] = json!([]);
                        u["usage"] = usage(prompt_tokens, timings.completion_tokens);
                        v.push(Some(u));
                    }
                    for v in v.into_iter().flatten() {
                        if tx.send(Ok(send(v))).await.is_err() {
                            return;
                        }
                    }
                    let _ = tx.send(Ok(SseEvent::default().data("[DONE]"))).await;
                    return;
                }
                Event::Error(e) => {
                    let v = json!({"error": {"message": e, "type": "server_error", "param": null, "code": null}});
                    let _ = tx.send(Ok(send(v))).await;
                    return;
                }
            };
            for v in out.into_iter().flatten() {
                if tx.send(Ok(send(v))).await.is_err() {
                    // The client left: dropping `events` cancels the generation.
                    return;
                }
            }
        }
    });
    Sse::new(ReceiverStream::new(rx)).into_response()
}

pub(crate) async fn models(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let agent = st.agent.clone();
    let list = tokio::task::spawn_blocking(move || agent.models.list())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let data: Vec<Value> = list.iter().map(model_object).collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

fn model_object(e: &flurry_infer::store::ModelEntry) -> Value {
    let created = std::fs::metadata(&e.path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    json!({"id": e.name, "object": "model", "created": created, "owned_by": "local", "model_id": e.model_id})
}

pub(crate) async fn model(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let agent = st.agent.clone();
    let entry = tokio::task::spawn_blocking(move || agent.models.resolve(Some(&name)))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(model_object(&entry)))
}

/// Most inputs in one embeddings request.
const MAX_EMBED_INPUTS: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmbeddingRequest {
    input: EmbedInput,
    model: Option<String>,
    encoding_format: Option<String>,
    dimensions: Option<usize>,
    #[allow(dead_code)]
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EmbedInput {
    One(String),
    Many(Vec<String>),
    Tokens(serde::de::IgnoredAny),
}

/// `POST /v1/embeddings` with the node's embedding model (all-MiniLM-L6-v2, 384
/// dimensions, unit vectors; texts beyond 256 tokens are truncated).
pub(crate) async fn embeddings(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<EmbeddingRequest>,
) -> Result<Json<Value>, ApiError> {
    let Some(host) = st.embeddings.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node has no embedding model configured",
        )
        .code("model_not_supported"));
    };
    let model = req.model.unwrap_or_else(|| host.name().to_string());
    if !host.answers_to(&model) {
        return Err(ApiError::bad_field(
            "model",
            format!(
                "model {model:?} cannot make embeddings: use {:?} (chat models do not embed)",
                host.name()
            ),
        )
        .code("model_not_supported"));
    }
    let texts = match req.input {
        EmbedInput::One(t) => vec![t],
        EmbedInput::Many(v) => v,
        EmbedInput::Tokens(_) => {
            return Err(ApiError::bad_field(
                "input",
                "input must be a string or an array of strings (token arrays are not supported)",
            ));
        }
    };
    if texts.is_empty() || texts.len() > MAX_EMBED_INPUTS {
        return Err(ApiError::bad_field(
            "input",
            format!("send 1 to {MAX_EMBED_INPUTS} inputs"),
        ));
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_field(
                "encoding_format",
                format!("encoding_format {other:?} is not \"float\" or \"base64\""),
            ));
        }
    };
    let (vectors, tokens) = tokio::task::spawn_blocking(move || {
        let e = host.get()?;
        if let Some(d) = req.dimensions
            && d != e.dim()
        {
            return Err(flurry_agent::Error::Invalid(format!(
                "dimensions must be {} for this model",
                e.dim()
            )));
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let tokens: usize = refs.iter().map(|t| e.tokenize(t).len()).sum();
        let v = e
            .embed(&refs)
            .map_err(|err| flurry_agent::Error::Embed(err.to_string()))?;
        Ok((v, tokens))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(crate::base64::encode(&bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}
