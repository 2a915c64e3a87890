//! Router-level tests: real handlers, real engine and SQLite, driven with
//! `tower::ServiceExt::oneshot` (no sockets).

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flurry_agent::{Agent, History, ModelHost};
use flurry_api::{ApiState, Auth, NodeIdentity, router, tokens};
use flurry_infer::engine::{EngineConfig, GenerateRequest, Prompt};
use flurry_infer::sampler::SamplingParams;
use flurry_infer::store::ModelStore;
use flurry_infer::template::ChatMessage;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const MODEL: &str = "SmolLM2-135M-Instruct.Q4_1";

/// The model store; fails (never skips) when the default model is missing.
fn models_dir() -> PathBuf {
    let dir = std::env::var_os("FLURRY_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".flurry/models"));
    assert!(
        dir.join(format!("{MODEL}.gguf")).is_file(),
        "model not found in {}: run `make models` first",
        dir.display()
    );
    dir
}

fn state_with(dir: PathBuf) -> ApiState {
    let engine = EngineConfig::default()
        .with_threads(1)
        .with_queue_capacity(4)
        .with_max_active(2)
        .with_context_length(512);
    let host = ModelHost::new(ModelStore::new(dir), engine, MODEL.into(), 1);
    let agent = Agent {
        history: Arc::new(History::in_memory().unwrap()),
        models: Arc::new(host),
        max_tokens_cap: 64,
        recall: None,
    };
    ApiState::new(
        Arc::new(agent),
        NodeIdentity {
            peer_id: "16Uiu2HAmTest".into(),
            address: "0x0000000000000000000000000000000000000001".into(),
        },
    )
}

/// A state over an empty model store (for tests that never reach a model).
fn empty_state() -> (ApiState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (state_with(dir.path().to_path_buf()), dir)
}

fn req(method: &str, uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "127.0.0.1:7878")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

async fn call(
    state: &Arc<ApiState>,
    r: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let resp = router(state.clone()).oneshot(r).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

async fn call_json(state: &Arc<ApiState>, r: Request<Body>) -> (StatusCode, Value) {
    let (s, _, b) = call(state, r).await;
    let v = serde_json::from_slice(&b)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&b)));
    (s, v)
}

fn assert_openai_error(v: &Value) {
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].as_str().is_some(), "{v}");
}

#[tokio::test]
async fn unknown_route_is_json_404() {
    let (st, _d) = empty_state();
    let st = Arc::new(st);
    let (s, v) = call_json(&st, req("GET", "/v1/nothing", Body::empty())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_openai_error(&v);
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_field() {
    let (st, _d) = empty_state();
    let st = Arc::new(st);
    let cases = [
        ("{not json", None),
        ("[]", None),
        (r#"{"messages": "hi"}"#, Some("messages")),
        (r#"{"model": "x"}"#, Some("messages")),
        (
            r#"{"messages": [{"role": "user", "content": 5}]}"#,
            Some("messages[0].content"),
        ),
        (
            r#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}"#,
            Some("max_tokens"),
        ),
        (
            r#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}"#,
            Some("max_tokens"),
        ),
        (
            r#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}"#,
            Some("max_tokens"),
        ),
        (
            r#"{"messages": [{"role": "user", "content": "hi"}], "temperature": 5}"#,
            Some("temperature"),
        ),
        (
            r#"{"messages": [{"role": "user", "content": "hi"}], "n": 3}"#,
            Some("n"),
        ),
        (
            r#"{"messages": [{"role": "user", "content": "hi"}], "stop": ["a","b","c","d","e"]}"#,
            Some("stop"),
        ),
        (
            r#"{"messages": [{"role": "wizard", "content": "hi"}]}"#,
            Some("messages[0].role"),
        ),
        (r#"{"messages": []}"#, Some("messages")),
    ];
    for (body, param) in cases {
        let (s, v) = call_json(&st, req("POST", "/v1/chat/completions", body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_openai_error(&v);
        if let Some(p) = param {
            assert_eq!(v["error"]["param"], p, "{body}: {v}");
        }
    }
}

#[tokio::test]
async fn oversized_body_is_413() {
    let (mut st, _d) = empty_state();
    st.limits.max_body_bytes = 1000;
    let st = Arc::new(st);
    let big = format!(
        r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(5000)
    );
    let (s, v) = call_json(&st, req("POST", "/v1/chat/completions", big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "body_too_large");
}

#[tokio::test]
async fn foreign_host_is_refused_on_loopback() {
    let (st, _d) = empty_state();
    let st = Arc::new(st);
    let mut r = req("GET", "/api/version", Body::empty());
    r.headers_mut()
        .insert(header::HOST, "evil.example:7878".parse().unwrap());
    let (s, _, _) = call(&st, r).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = call(&st, req("GET", "/api/version", Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn tokens_are_required_beyond_loopback() {
    let (mut st, _d) = empty_state();
    let token = tokens::generate_token().unwrap();
    st.auth = Auth {
        require_token: true,
        loopback_hosts_only: false,
        token_hashes: vec![tokens::hash_token(&token)],
        ..Auth::default()
    };
    let st = Arc::new(st);
    let with = |t: Option<&str>| {
        let mut r = req("GET", "/api/version", Body::empty());
        r.headers_mut()
            .insert(header::HOST, "node.example:7878".parse().unwrap());
        if let Some(t) = t {
            r.headers_mut().insert(
                header::AUTHORIZATION,
                format!("Bearer {t}").parse().unwrap(),
            );
        }
        r
    };
    let (s, h, b) = call(&st, with(None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
    assert_openai_error(&serde_json::from_slice(&b).unwrap());
    let (s, _, _) = call(&st, with(Some("flurry_wrong"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = call(&st, with(Some(&token))).await;
    assert_eq!(s, StatusCode::OK);
    // The static UI carries no data and loads without a token (it then asks for one).
    let mut r = req("GET", "/", Body::empty());
    r.headers_mut()
        .insert(header::HOST, "node.example:7878".parse().unwrap());
    let (s, h, b) = call(&st, r).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8_lossy(&b).contains("app.js"));
}

#[tokio::test]
async fn cors_is_closed_unless_configured() {
    let preflight = || {
        Request::builder()
            .method("OPTIONS")
            .uri("/v1/models")
            .header(header::HOST, "127.0.0.1")
            .header(header::ORIGIN, "https://app.example")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(Body::empty())
            .unwrap()
    };
    let (st, _d) = empty_state();
    let (_, h, _) = call(&Arc::new(st), preflight()).await;
    assert!(
        h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
        "{h:?}"
    );

    let (mut st, _d2) = empty_state();
    st.cors_origins = vec!["https://app.example".into()];
    let (_, h, _) = call(&Arc::new(st), preflight()).await;
    assert_eq!(
        h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
}

#[tokio::test]
async fn unknown_model_is_404() {
    let st = Arc::new(state_with(models_dir()));
    let body = json!({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]});
    let (s, v) = call_json(&st, req("POST", "/v1/chat/completions", body.to_string())).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "model_not_found");
    assert_eq!(v["error"]["param"], "model");
    // Paths are not model names from clients.
    let body = json!({"model": "/etc/passwd", "messages": [{"role": "user", "content": "hi"}]});
    let (s, _) = call_json(&st, req("POST", "/v1/chat/completions", body.to_string())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn chat_completion_equals_the_engine_and_counts_usage() {
    let st = Arc::new(state_with(models_dir()));
    let body = json!({
        "model": MODEL, "temperature": 0, "max_tokens": 24, "seed": 1,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}],
    });
    let (s, v) = call_json(&st, req("POST", "/v1/chat/completions", body.to_string())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let text = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!text.is_empty());

    let m = st.agent.models.get(Some(MODEL)).unwrap();
    let msgs = vec![
        ChatMessage::new("system", "Be brief."),
        ChatMessage::new("user", "Name a colour."),
    ];
    let prompt_tokens = m
        .engine
        .tokenize(&Prompt::Chat(msgs.clone()))
        .unwrap()
        .len();
    let direct = m
        .engine
        .generate(
            GenerateRequest::chat(msgs)
                .with_sampling(SamplingParams {
                    temperature: 0.0,
                    top_k: 0,
                    top_p: 1.0,
                    min_p: 0.0,
                    seed: 1,
                    ..SamplingParams::default()
                })
                .with_max_tokens(24),
        )
        .unwrap();
    assert_eq!(text, direct.text);
    let u = &v["usage"];
    assert_eq!(u["prompt_tokens"], prompt_tokens);
    assert_eq!(u["completion_tokens"], direct.tokens.len());
    assert_eq!(u["total_tokens"], prompt_tokens + direct.tokens.len());

    // Streaming gives the same text, chunk by chunk, then [DONE].
    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let (s, h, b) = call(&st, req("POST", "/v1/chat/completions", sbody.to_string())).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let sse = String::from_utf8(b).unwrap();
    let datas: Vec<&str> = sse
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(datas.last(), Some(&"[DONE]"));
    let mut streamed = String::new();
    let mut finish = None;
    for d in &datas[..datas.len() - 1] {
        let c: Value = serde_json::from_str(d).unwrap();
        assert_eq!(c["object"], "chat.completion.chunk");
        streamed.push_str(c["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
        if let Some(f) = c["choices"][0]["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    assert_eq!(streamed, direct.text);
    assert_eq!(
        finish.as_deref(),
        Some(v["choices"][0]["finish_reason"].as_str().unwrap())
    );

    // The generation shows in the metrics.
    let (_, _, m) = call(&st, req("GET", "/metrics", Body::empty())).await;
    let m = String::from_utf8(m).unwrap();
    let line = m
        .lines()
        .find(|l| l.starts_with("flurry_generated_tokens_total "))
        .unwrap();
    let n: u64 = line.split(' ').nth(1).unwrap().parse().unwrap();
    assert_eq!(n, 2 * direct.tokens.len() as u64, "{m}");
    assert!(m.contains("flurry_model_load_seconds{model=\"SmolLM2-135M-Instruct.Q4_1\"}"));
}

#[tokio::test]
async fn ollama_chat_matches_openai_when_greedy() {
    let st = Arc::new(state_with(models_dir()));
    let msgs = json!([{"role": "user", "content": "Say one word."}]);
    let (_, o) = call_json(
        &st,
        req(
            "POST",
            "/v1/chat/completions",
            json!({"model": MODEL, "messages": msgs, "temperature": 0, "max_tokens": 12})
                .to_string(),
        ),
    )
    .await;
    let body = json!({
        "model": MODEL, "messages": msgs, "stream": false,
        "options": {"temperature": 0, "top_k": 0, "top_p": 1, "repeat_penalty": 1, "num_predict": 12},
    });
    let (s, v) = call_json(&st, req("POST", "/api/chat", body.to_string())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["message"]["content"],
        o["choices"][0]["message"]["content"]
    );
    assert_eq!(v["done"], true);
    assert_eq!(v["eval_count"], o["usage"]["completion_tokens"]);

    let (s, v) = call_json(&st, req("GET", "/api/tags", Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&MODEL), "{names:?}");
    let (s, v) = call_json(
        &st,
        req(
            "POST",
            "/api/chat",
            json!({"model": "nope", "messages": msgs}).to_string(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("nope"), "{v}");
}

#[tokio::test]
async fn conversation_turn_is_stored() {
    let st = Arc::new(state_with(models_dir()));
    let (s, c) = call_json(
        &st,
        req(
            "POST",
            "/api/conversations",
            json!({"model": MODEL}).to_string(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap();
    let body = json!({"content": "Hello there", "temperature": 0, "max_tokens": 16});
    let (s, _, b) = call(
        &st,
        req(
            "POST",
            &format!("/api/conversations/{id}/messages"),
            body.to_string(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let sse = String::from_utf8(b).unwrap();
    let events: Vec<Value> = sse
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events[0]["type"], "start");
    assert_eq!(events.last().unwrap()["type"], "done", "{sse}");
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "token")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(!text.is_empty());

    let (s, v) = call_json(
        &st,
        req("GET", &format!("/api/conversations/{id}"), Body::empty()),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["title"], "Hello there");
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        (msgs[0]["role"].as_str(), msgs[0]["content"].as_str()),
        (Some("user"), Some("Hello there"))
    );
    assert_eq!(msgs[1]["content"].as_str(), Some(text.as_str()));
    assert_eq!(msgs[1]["status"], "complete");

    let (_, list) = call_json(&st, req("GET", "/api/conversations", Body::empty())).await;
    assert_eq!(list["conversations"][0]["id"], id);
    let (s, _, _) = call(
        &st,
        req("DELETE", &format!("/api/conversations/{id}"), Body::empty()),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call_json(
        &st,
        req("GET", &format!("/api/conversations/{id}"), Body::empty()),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_openai_error(&v);
    let (s, _) = call_json(
        &st,
        req(
            "POST",
            "/api/conversations/c_none/messages",
            body.to_string(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn node_info_and_embeddings() {
    let st = Arc::new(state_with(models_dir()));
    let (s, v) = call_json(&st, req("GET", "/api/node", Body::empty())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["peer_id"], "16Uiu2HAmTest");
    assert_eq!(v["default_model"], MODEL);
    assert!(
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == MODEL)
    );
    // Without an embedding model configured, a clear refusal.
    let (s, v) = call_json(
        &st,
        req("POST", "/v1/embeddings", json!({"input": "hi"}).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["error"]["code"], "model_not_supported");
}

#[tokio::test]
async fn embeddings_match_the_reference_and_refuse_chat_models() {
    let mut st = state_with(models_dir());
    st.embeddings = Some(Arc::new(flurry_agent::EmbedHost::new(&models_dir())));
    let st = Arc::new(st);
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/fixtures/embeddings/minilm.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let cases: Vec<&serde_json::Value> = fixture["texts"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .collect();
    let inputs: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let (s, v) = call_json(
        &st,
        req(
            "POST",
            "/v1/embeddings",
            json!({"model": "sentence-transformers/all-MiniLM-L6-v2", "input": inputs}).to_string(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["object"], "list");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (d, c) in data.iter().zip(&cases) {
        let got: Vec<f64> = d["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let want: Vec<f64> = c["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), 384);
        let cos: f64 = got.iter().zip(&want).map(|(a, b)| a * b).sum();
        assert!(cos >= 0.999, "cosine {cos} for {:?}", c["text"]);
    }
    let tokens: usize = cases
        .iter()
        .map(|c| c["token_ids"].as_array().unwrap().len())
        .sum();
    assert_eq!(v["usage"]["prompt_tokens"], tokens);

    // base64: the same floats, little-endian.
    let (s, b) = call_json(
        &st,
        req(
            "POST",
            "/v1/embeddings",
            json!({"input": inputs[0], "encoding_format": "base64"}).to_string(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b["data"][0]["embedding"].as_str().unwrap().len(),
        2048,
        "384 f32 = 1536 bytes = 2048 base64 chars"
    );

    for (body, param) in [
        (json!({"model": MODEL, "input": "hi"}), "model"),
        (json!({"input": []}), "input"),
        (json!({"input": [[1, 2, 3]]}), "input"),
        (
            json!({"input": "hi", "encoding_format": "int8"}),
            "encoding_format",
        ),
    ] {
        let (s, v) = call_json(&st, req("POST", "/v1/embeddings", body.to_string())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"]["param"], param, "{v}");
    }
    let (s, _) = call_json(
        &st,
        req(
            "POST",
            "/v1/embeddings",
            json!({"input": "hi", "dimensions": 12}).to_string(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cross_site_requests_are_refused() {
    let (st, _d) = empty_state();
    let st = Arc::new(st);
    // A "simple" POST (text/plain) from a browser never reaches a handler: from a
    // foreign site the Origin is refused, and even from the node's own pages the body
    // must be declared JSON.
    for (origin, status) in [
        ("http://evil.example", StatusCode::FORBIDDEN),
        ("http://127.0.0.1:7878", StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ] {
        let mut r = req("POST", "/api/conversations", "{}");
        r.headers_mut()
            .insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        r.headers_mut()
            .insert(header::ORIGIN, origin.parse().unwrap());
        let (s, v) = call_json(&st, r).await;
        assert_eq!(s, status, "{origin}: {v}");
    }
    let mut r = req("POST", "/api/conversations", "{}");
    r.headers_mut()
        .insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
    r.headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    let (s, v) = call_json(&st, r).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
    assert_eq!(v["error"]["code"], "unsupported_media_type");
    assert!(st.agent.history.list().unwrap().is_empty());
    // A client that is not a browser (curl -d, no Origin) may omit the JSON type.
    let mut r = req("POST", "/api/conversations", "{}");
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    let (s, v) = call_json(&st, r).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    st.agent.history.delete(v["id"].as_str().unwrap()).unwrap();
    // A foreign Origin is refused; the node's own origin is fine.
    let mut r = req("POST", "/api/conversations", "{}");
    r.headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    let (s, v) = call_json(&st, r).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(st.agent.history.list().unwrap().is_empty());
    let mut r = req("POST", "/api/conversations", "{}");
    r.headers_mut()
        .insert(header::ORIGIN, "http://127.0.0.1:7878".parse().unwrap());
    let (s, _) = call_json(&st, r).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(st.agent.history.list().unwrap().len(), 1);
}

#[tokio::test]
async fn memory_search_over_the_api() {
    let mut st = state_with(models_dir());
    let host = Arc::new(flurry_agent::EmbedHost::new(&models_dir()));
    let dir = tempfile::tempdir().unwrap();
    let store = flurry_memory::MemoryStore::open(
        &dir.path().join("memory.db"),
        &flurry_memory::MemoryKey::from_bytes([3; 32]),
    )
    .unwrap();
    let e = host.get().unwrap();
    for (path, text) in [
        (
            "/notes/garden.md",
            "Water the tomatoes every morning in July.",
        ),
        ("/notes/car.txt", "The car insurance renews on 1 March."),
    ] {
        store
            .put(
                &flurry_memory::NewDocument {
                    path: path.into(),
                    kind: "text".into(),
                    hash: "h".into(),
                    bytes: text.len() as u64,
                    title: path.into(),
                    sender: None,
                    date: None,
                },
                &[flurry_memory::NewChunk {
                    start: 0,
                    end: text.len(),
                    text: text.into(),
                    embedding: e.embed_one(text).unwrap(),
                }],
            )
            .unwrap();
    }
    st.embeddings = Some(host);
    st.memory = Some(Arc::new(store));
    let st = Arc::new(st);
    let (s, v) = call_json(
        &st,
        req(
            "GET",
            "/api/memory/search?q=when%20do%20I%20irrigate%20the%20plants&k=1",
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let top = &v["results"][0];
    assert_eq!(top["document"], "/notes/garden.md", "{v}");
    for field in [
        "doc_id", "chunk", "chunk_id", "score", "snippet", "start", "end",
    ] {
        assert!(!top[field].is_null(), "{field} missing: {v}");
    }
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    for (uri, param) in [
        ("/api/memory/search?q=&k=1", "q"),
        ("/api/memory/search?q=x&k=0", "k"),
        ("/api/memory/search?q=x&mode=magic", "mode"),
    ] {
        let (s, v) = call_json(&st, req("GET", uri, Body::empty())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(v["error"]["param"], param, "{v}");
    }
    let (s, _) = call_json(&st, req("GET", "/api/memory/search?k=1", Body::empty())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "q is required");

    // Documents: list, read (what a citation links to), forget.
    let (s, v) = call_json(&st, req("GET", "/api/memory/documents", Body::empty())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let docs = v["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2, "{v}");
    let car = docs.iter().find(|d| d["path"] == "/notes/car.txt").unwrap();
    let id = car["id"].as_i64().unwrap();
    let uri = format!("/api/memory/documents/{id}");
    let (s, v) = call_json(&st, req("GET", &uri, Body::empty())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["chunks"][0]["text"],
        "The car insurance renews on 1 March."
    );
    assert_eq!(v["chunks"][0]["chunk"], 0);
    let (s, v) = call_json(&st, req("GET", "/api/memory/documents/car", Body::empty())).await;
    assert_eq!(
        (s, &v["error"]["param"]),
        (StatusCode::BAD_REQUEST, &json!("id"))
    );
    let (s, _, _) = call(&st, req("DELETE", &uri, Body::empty())).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call_json(&st, req("GET", &uri, Body::empty())).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "document_not_found");
    let (s, _) = call_json(&st, req("DELETE", &uri, Body::empty())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Ingest: bad bodies name the field.
    for (body, param) in [
        (json!({"paths": []}), "paths"),
        (json!({"paths": ["notes"]}), "paths[0]"),
        (json!({"paths": ["/", "notes"]}), "paths[1]"),
        (json!({"paths": ["/"], "prun": true}), "prun"),
    ] {
        let (s, v) = call_json(&st, req("POST", "/api/memory/ingest", body.to_string())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
    }
    // Outside every memory root (this state has none): 403, and the same answer for a
    // path that exists and one that does not (tests/memory_roots.rs has the rest).
    let mut answers = Vec::new();
    for path in ["/", "/nonexistent/flurry"] {
        let body = json!({ "paths": [path] }).to_string();
        let (s, v) = call_json(&st, req("POST", "/api/memory/ingest", body)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
        assert_eq!(v["error"]["code"], "path_not_allowed", "{v}");
        answers.push(v);
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn memory_routes_say_when_there_is_no_memory() {
    let (st, _dir) = empty_state();
    let st = Arc::new(st);
    for (method, uri, body) in [
        ("GET", "/api/memory/search?q=x", Body::empty()),
        ("GET", "/api/memory/documents", Body::empty()),
        ("GET", "/api/memory/documents/1", Body::empty()),
        ("DELETE", "/api/memory/documents/1", Body::empty()),
        (
            "POST",
            "/api/memory/ingest",
            Body::from(r#"{"paths":["/"]}"#),
        ),
    ] {
        let (s, v) = call_json(&st, req(method, uri, body)).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{method} {uri}: {v}");
        assert_eq!(v["error"]["code"], "memory_unavailable", "{v}");
    }
}
