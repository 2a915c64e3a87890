//! Attacks on the HTTP surface (issue 25), each performed against the real router or a
//! real socket: DNS rebinding, cross-site state changes, token scopes and revocation,
//! memory reads by API clients, per-client generation bounds, and the server loop's
//! header timeout and connection cap.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flurry_agent::{Agent, History, ModelHost};
use flurry_api::tokens::{LiveTokens, Scope, TokenFile};
use flurry_api::{ApiState, Auth, NodeIdentity, ServeLimits, router};
use flurry_infer::engine::EngineConfig;
use flurry_infer::store::ModelStore;
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

fn state_with(dir: PathBuf, recall: Option<Arc<flurry_agent::Recall>>) -> ApiState {
    let engine = EngineConfig::default()
        .with_threads(1)
        .with_queue_capacity(4)
        .with_max_active(2)
        .with_context_length(1024);
    let host = ModelHost::new(ModelStore::new(dir), engine, MODEL.into(), 1);
    let agent = Agent {
        history: Arc::new(History::in_memory().unwrap()),
        models: Arc::new(host),
        max_tokens_cap: 64,
        recall,
    };
    ApiState::new(
        Arc::new(agent),
        NodeIdentity {
            peer_id: "16Uiu2HAmTest".into(),
            address: "0x0000000000000000000000000000000000000001".into(),
        },
    )
}

fn empty_state() -> (ApiState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (state_with(dir.path().to_path_buf(), None), dir)
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

async fn call_json(state: &Arc<ApiState>, r: Request<Body>) -> (StatusCode, Value) {
    let resp = router(state.clone()).oneshot(r).await.unwrap();
    let s = resp.status();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&b).unwrap_or(Value::Null);
    (s, v)
}

/// Attack: DNS rebinding. A page on `127.evil.example` (resolved to 127.0.0.1) reads
/// the private documents and makes the node ingest a folder, sending a matching
/// `Origin`. The old check accepted any Host starting with `127.`.
#[tokio::test]
async fn dns_rebinding_host_is_refused() {
    let (st, _d) = empty_state();
    let st = Arc::new(st);
    for host in [
        "127.evil.example:7878",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
    ] {
        let mut r = req("GET", "/api/memory/documents", Body::empty());
        r.headers_mut().insert(header::HOST, host.parse().unwrap());
        let (s, v) = call_json(&st, r).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{host}: {v}");
        let mut r = req("POST", "/api/memory/ingest", r#"{"paths":["/tmp"]}"#);
        r.headers_mut().insert(header::HOST, host.parse().unwrap());
        r.headers_mut()
            .insert(header::ORIGIN, format!("http://{host}").parse().unwrap());
        let (s, v) = call_json(&st, r).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{host}: {v}");
    }
    for host in [
        "127.0.0.1:7878",
        "localhost:7878",
        "[::1]:7878",
        "127.0.0.2",
    ] {
        let mut r = req("GET", "/api/version", Body::empty());
        r.headers_mut().insert(header::HOST, host.parse().unwrap());
        let (s, v) = call_json(&st, r).await;
        assert_eq!(s, StatusCode::OK, "{host}: {v}");
    }
}

/// Attack: a web page makes the node sell its machine to strangers (or stop selling),
/// through DNS rebinding, a cross-site request, or a text/plain body (no preflight).
#[tokio::test]
async fn a_web_page_cannot_start_or_stop_a_sale() {
    let (st, _d) = empty_state();
    let st = Arc::new(st);
    let body = r#"{"model":"default","price":"0.001"}"#;
    for path in ["/api/market/sell", "/api/market/stop"] {
        let mut r = req("POST", path, body);
        r.headers_mut()
            .insert(header::HOST, "127.evil.example:7878".parse().unwrap());
        let (s, v) = call_json(&st, r).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "rebinding {path}: {v}");
        let mut r = req("POST", path, body);
        r.headers_mut()
            .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        let (s, v) = call_json(&st, r).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "cross-site {path}: {v}");
        let mut r = req("POST", path, body);
        r.headers_mut()
            .insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        r.headers_mut()
            .insert(header::ORIGIN, "http://127.0.0.1:7878".parse().unwrap());
        let (s, v) = call_json(&st, r).await;
        assert_eq!(
            s,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "text/plain {path}: {v}"
        );
    }
    // From the owner (loopback, JSON) the route answers, here that the network is off.
    let (s, v) = call_json(&st, req("POST", "/api/market/sell", body)).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "market_unavailable", "{v}");
}

/// Attack: a web page buys on the market with the owner's node (DNS rebinding, a
/// cross-site request) or reads the node's market jobs by rebinding; a bad price cap is
/// a clear 400 on both chat routes.
#[tokio::test]
async fn a_web_page_cannot_buy_on_the_market_or_read_its_jobs() {
    let (st, _d) = empty_state();
    let st = Arc::new(st);
    let chat = r#"{"model":"market/default","messages":[{"role":"user","content":"Hi"}]}"#;
    for (method, path, body) in [
        ("POST", "/v1/chat/completions", chat),
        ("POST", "/api/chat", chat),
        ("GET", "/api/market/jobs", ""),
    ] {
        let mut r = req(method, path, body);
        r.headers_mut()
            .insert(header::HOST, "127.evil.example:7878".parse().unwrap());
        let (s, v) = call_json(&st, r).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "rebinding {path}: {v}");
        if method == "POST" {
            let mut r = req(method, path, body);
            r.headers_mut()
                .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
            let (s, v) = call_json(&st, r).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "cross-site {path}: {v}");
        }
    }
    let capped = r#"{"model":"market/default","max_price":"lots","messages":[{"role":"user","content":"Hi"}]}"#;
    for path in ["/v1/chat/completions", "/api/chat"] {
        let (s, v) = call_json(&st, req("POST", path, capped)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert!(v.to_string().contains("lots"), "{path}: {v}");
    }
    // From the owner the jobs route answers, here that the network is off.
    let (s, v) = call_json(&st, req("GET", "/api/market/jobs", "")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
}

/// Attack: a browser page sends a state change with a non-JSON body by PATCH or by
/// DELETE with a body (only POST was checked before), from the node's own origin.
#[tokio::test]
async fn browser_patch_and_delete_bodies_must_be_json() {
    let (st, _d) = empty_state();
    let st = Arc::new(st);
    let c = st.agent.history.create("t", "").unwrap();
    let uri = format!("/api/conversations/{}", c.id);
    for method in ["PATCH", "DELETE"] {
        let mut r = req(method, &uri, r#"{"memory":false}"#);
        r.headers_mut()
            .insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, "17".parse().unwrap());
        r.headers_mut()
            .insert(header::ORIGIN, "http://127.0.0.1:7878".parse().unwrap());
        let (s, v) = call_json(&st, r).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{method}: {v}");
    }
    assert!(
        st.agent.history.get(&c.id).unwrap().memory,
        "nothing changed"
    );
    // A DELETE from a foreign page is refused by its Origin even without a body.
    let mut r = req("DELETE", &uri, Body::empty());
    r.headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    let (s, _) = call_json(&st, r).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(st.agent.history.list().unwrap().len(), 1);
}

fn with_token(mut r: Request<Body>, token: &str) -> Request<Body> {
    r.headers_mut()
        .insert(header::HOST, "node.example:7878".parse().unwrap());
    r.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    r
}

/// Attack: a token given to a chat app (scope `chat`) ingests files, forgets
/// documents, pays, buys on the market, reads the wallet, changes the circle, dials
/// peers, pulls or publishes models; a `read`
/// token generates; a revoked token keeps working until the node restarts. Before,
/// every token could do everything and the node read tokens.json only at start.
#[tokio::test]
async fn token_scopes_and_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.json");
    let chat = TokenFile::create(&file, "bot", &[Scope::Chat]).unwrap();
    let read = TokenFile::create(&file, "dash", &[Scope::Read]).unwrap();
    let admin = TokenFile::create(&file, "me", &[Scope::Admin]).unwrap();
    let mut st = state_with(models_dir(), None);
    st.auth = Auth {
        require_token: true,
        loopback_hosts_only: false,
        tokens: LiveTokens::new(file.clone()),
        ..Auth::default()
    };
    let st = Arc::new(st);
    let admin_only = [
        ("POST", "/api/memory/ingest", r#"{"paths":["/"]}"#),
        ("DELETE", "/api/memory/documents/1", ""),
        ("POST", "/api/circle", r#"{"peer_id":"x"}"#),
        ("DELETE", "/api/circle/alice", ""),
        ("POST", "/api/net/dial", r#"{"addr":"/ip4/1.2.3.4/tcp/1"}"#),
        ("POST", "/api/net/gossip", r#"{"topic":"t","text":"x"}"#),
        ("POST", "/api/net/gossip/subscribe", r#"{"topic":"t"}"#),
        ("GET", "/api/wallet", ""),
        ("GET", "/api/tickets/params", ""),
        ("POST", "/api/tickets/params", "{}"),
        ("POST", "/api/tickets", r#"{"tickets":[]}"#),
        (
            "POST",
            "/api/market/sell",
            r#"{"model":"default","price":"0.001"}"#,
        ),
        ("POST", "/api/market/stop", "{}"),
        // Pulling writes the model store; publishing spends the node's uplink.
        ("POST", "/api/pull", r#"{"model":"x"}"#),
        ("POST", "/api/models/publish", r#"{"model":"x"}"#),
        ("POST", "/api/models/unpublish", r#"{"model":"x"}"#),
        // Buying on the market spends the node's money.
        (
            "POST",
            "/v1/chat/completions",
            r#"{"model":"market/default","messages":[{"role":"user","content":"Hi"}]}"#,
        ),
        (
            "POST",
            "/api/chat",
            r#"{"model":"market/x","messages":[{"role":"user","content":"Hi"}]}"#,
        ),
    ];
    for (method, uri, body) in admin_only {
        for t in [&chat, &read] {
            let (s, v) = call_json(&st, with_token(req(method, uri, body), t)).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{method} {uri}: {v}");
            if uri == "/api/chat" && t == &chat {
                // The chat token passes the route's scope; the Ollama handler refuses the
                // purchase, in Ollama's error shape `{"error": "..."}`.
                let e = v["error"].as_str().unwrap_or_default();
                assert!(e.contains("admin scope"), "{v}");
            } else {
                assert_eq!(v["error"]["code"], "insufficient_scope", "{v}");
            }
        }
        // The admin token passes the scope check (the route may then fail on its own).
        let (s, v) = call_json(&st, with_token(req(method, uri, body), &admin)).await;
        assert!(
            s != StatusCode::UNAUTHORIZED && v["error"]["code"] != "insufficient_scope",
            "{method} {uri}: {s} {v}"
        );
    }
    let chat_body =
        json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "seed": 1})
            .to_string();
    let (s, v) = call_json(
        &st,
        with_token(
            req("POST", "/v1/chat/completions", chat_body.clone()),
            &chat,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call_json(
        &st,
        with_token(
            req("POST", "/v1/chat/completions", chat_body.clone()),
            &read,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = call_json(
        &st,
        with_token(req("GET", "/v1/models", Body::empty()), &read),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call_json(
        &st,
        with_token(req("POST", "/api/conversations", "{}"), &chat),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Revoked while the node runs: refused at the next request.
    TokenFile::revoke(&file, "bot").unwrap();
    let (s, v) = call_json(
        &st,
        with_token(req("POST", "/v1/chat/completions", chat_body), &chat),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"]["code"], "invalid_api_key");
}

/// Attack: any OpenAI/Ollama client (an app given a chat token, a script) asks an
/// innocent question and gets the private memory in its prompt and citations, because
/// memory was on by default. Now memory is used only with `"memory": true`.
#[tokio::test]
async fn memory_is_opt_in_for_api_clients() {
    let models = models_dir();
    let embed = Arc::new(flurry_agent::EmbedHost::new(&models));
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        flurry_memory::MemoryStore::open(
            &dir.path().join("memory.db"),
            &flurry_memory::MemoryKey::from_bytes([5; 32]),
        )
        .unwrap(),
    );
    let text = "The code of the garden safe is 7391-zebra-quartz.";
    store
        .put(
            &flurry_memory::NewDocument {
                path: "/secrets/safe.txt".into(),
                kind: "text".into(),
                hash: "h".into(),
                bytes: text.len() as u64,
                title: "safe".into(),
                sender: None,
                date: None,
            },
            &[flurry_memory::NewChunk {
                start: 0,
                end: text.len(),
                text: text.into(),
                embedding: embed.get().unwrap().embed_one(text).unwrap(),
            }],
        )
        .unwrap();
    let recall = Arc::new(flurry_agent::Recall::new(store, embed));
    let st = Arc::new(state_with(models, Some(recall)));
    let ask = |memory: Option<bool>| {
        let mut b = json!({
            "messages": [{"role": "user", "content": "What is the code of the garden safe?"}],
            "max_tokens": 1, "temperature": 0, "seed": 1,
        });
        if let Some(m) = memory {
            b["memory"] = json!(m);
        }
        b
    };
    let (s, off) = call_json(
        &st,
        req("POST", "/v1/chat/completions", ask(None).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{off}");
    assert_eq!(
        off["citations"],
        json!([]),
        "memory used without asking: {off}"
    );
    let (s, on) = call_json(
        &st,
        req("POST", "/v1/chat/completions", ask(Some(true)).to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{on}");
    assert_eq!(on["citations"][0]["document"], "/secrets/safe.txt", "{on}");
    assert!(
        on["usage"]["prompt_tokens"].as_u64().unwrap()
            > off["usage"]["prompt_tokens"].as_u64().unwrap() + 10,
        "the passage is in the prompt only when asked: {off} {on}"
    );
    // Ollama's /api/chat: the same default.
    let mut o = ask(None);
    o["stream"] = json!(false);
    o["options"] = json!({"num_predict": 1, "temperature": 0, "seed": 1});
    o["model"] = json!(MODEL);
    o.as_object_mut().unwrap().remove("max_tokens");
    o.as_object_mut().unwrap().remove("temperature");
    o.as_object_mut().unwrap().remove("seed");
    let (s, v) = call_json(&st, req("POST", "/api/chat", o.to_string())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v.get("citations").is_none(), "{v}");
    o["memory"] = json!(true);
    let (s, v) = call_json(&st, req("POST", "/api/chat", o.to_string())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["citations"][0]["document"], "/secrets/safe.txt", "{v}");
}

/// Attack: one client opens streamed generations without end (each holds an engine
/// slot and a thread); beyond `max_streams_per_client` it gets 429, and its slot comes
/// back when a stream ends.
#[tokio::test]
async fn streams_per_client_are_bounded() {
    let mut st = state_with(models_dir(), None);
    st.limits.max_streams_per_client = 1;
    let st = Arc::new(st);
    let body = json!({"messages": [{"role": "user", "content": "Count to a hundred."}], "max_tokens": 32, "stream": true, "seed": 1}).to_string();
    let first = router(st.clone())
        .oneshot(req("POST", "/v1/chat/completions", body.clone()))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let (s, v) = call_json(&st, req("POST", "/v1/chat/completions", body.clone())).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "too_many_streams");
    // Reading the first stream to its end frees the slot.
    let all = first.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&all).contains("[DONE]"));
    let r = router(st.clone())
        .oneshot(req("POST", "/v1/chat/completions", body))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    drop(r);
    // Dropping a stream unread (the client left) frees it too.
    let r = router(st.clone())
        .oneshot(req(
            "POST",
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}).to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn start_server(
    limits: ServeLimits,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (st, dir) = empty_state();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(Arc::new(st));
    let task = tokio::spawn(async move {
        let _dir = dir;
        flurry_api::serve(listener, app, limits, async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    });
    (addr, stop_tx, task)
}

const GET_VERSION: &[u8] = b"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// A blocking client socket (std, so that the test needs no extra tokio features).
fn connect(addr: std::net::SocketAddr) -> std::net::TcpStream {
    std::net::TcpStream::connect(addr).unwrap()
}

/// Reads until the peer closes; returns whether that happened within `limit`.
fn closed_within(mut s: std::net::TcpStream, limit: Duration) -> bool {
    use std::io::Read;
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Reads one response head within `limit`; `None` if nothing came.
fn response_within(s: &mut std::net::TcpStream, limit: Duration) -> Option<String> {
    use std::io::Read;
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 1024];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    }
}

fn send(s: &mut std::net::TcpStream, bytes: &[u8]) {
    use std::io::Write;
    s.write_all(bytes).unwrap();
}

/// Attack: slowloris. A client sends half a request header and stalls, keeps an idle
/// keep-alive connection, or connects and sends nothing; `axum::serve` kept all of
/// them open forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_connections_are_closed() {
    let (addr, stop, task) = start_server(ServeLimits {
        header_timeout: Duration::from_millis(500),
        ..ServeLimits::default()
    })
    .await;
    tokio::task::spawn_blocking(move || {
        let mut half = connect(addr);
        send(&mut half, b"GET /api/version HTTP/1.1\r\nHost: 127.0");
        assert!(
            closed_within(half, Duration::from_secs(5)),
            "a stalled header must be cut off"
        );
        let mut idle = connect(addr);
        send(&mut idle, GET_VERSION);
        assert!(
            response_within(&mut idle, Duration::from_secs(5))
                .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
        );
        assert!(
            closed_within(idle, Duration::from_secs(5)),
            "an idle keep-alive connection must be closed"
        );
        assert!(
            closed_within(connect(addr), Duration::from_secs(5)),
            "a silent connection must be closed"
        );
    })
    .await
    .unwrap();
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

/// Attack: a client opens connections until the node runs out of file descriptors.
/// With a cap of 2, a third connection is not served while two are held, and is
/// served once one closes; shutdown still drains and returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait() {
    let (addr, stop, task) = start_server(ServeLimits {
        max_connections: 2,
        header_timeout: Duration::from_secs(30),
        ..ServeLimits::default()
    })
    .await;
    tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut c = connect(addr);
            send(&mut c, GET_VERSION);
            let r = response_within(&mut c, Duration::from_secs(5));
            assert!(
                r.as_deref().is_some_and(|r| r.starts_with("HTTP/1.1 200")),
                "{r:?}"
            );
            held.push(c);
        }
        let mut third = connect(addr);
        send(&mut third, GET_VERSION);
        let early = response_within(&mut third, Duration::from_millis(800));
        assert!(early.is_none(), "served beyond the cap: {early:?}");
        drop(held.pop());
        let r = response_within(&mut third, Duration::from_secs(5));
        assert!(
            r.as_deref().is_some_and(|r| r.starts_with("HTTP/1.1 200")),
            "served once a slot is free: {r:?}"
        );
        held.push(third);
    })
    .await
    .unwrap();
    // Graceful shutdown closes the idle connections and returns.
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

/// Attack: any web page could make the node subscribe to gossip with
/// `<img src="http://127.0.0.1:7878/api/net/gossip?topic=x">` (a GET with a side
/// effect, sent cross-site without a preflight). Now GET only reads subscribed topics;
/// subscribing is a JSON POST.
#[tokio::test]
async fn gossip_get_never_subscribes() {
    let id = flurry_identity::Identity::generate().unwrap();
    let cfg = flurry_net::NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        mdns: false,
        autonat_global_only: false,
        ..flurry_net::NetConfig::default()
    };
    let (net, _events, _inbound) = flurry_net::Net::start(&id, cfg).await.unwrap();
    let (mut st, dir) = empty_state();
    st.router.p2p = Some(Arc::new(
        flurry_router::P2p::new(net, dir.path().join("circle.json")).unwrap(),
    ));
    let st = Arc::new(st);
    let mut img = req("GET", "/api/net/gossip?topic=img", Body::empty());
    img.headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    img.headers_mut().remove(header::CONTENT_TYPE);
    let (s, v) = call_json(&st, img).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "not_subscribed", "{v}");
    let (s, _) = call_json(&st, req("GET", "/api/net/gossip?topic=img", Body::empty())).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "still not subscribed");
    let (s, v) = call_json(
        &st,
        req("POST", "/api/net/gossip/subscribe", r#"{"topic":"img"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call_json(&st, req("GET", "/api/net/gossip?topic=img", Body::empty())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["messages"], json!([]));
}

/// Attack: a web page asks the node to scrub texts to learn which names, addresses
/// and numbers its owner's memory knows (a membership oracle), through DNS rebinding
/// or a cross-site request; a chat app's token does the same; a client sends a
/// malformed or oversized body. Only the owner (loopback, or a token with `read`)
/// gets an answer.
#[tokio::test]
async fn privacy_scrub_refuses_web_pages_and_bad_bodies() {
    let (st, _d) = empty_state();
    let st = Arc::new(st);
    let body = r#"{"text":"Mail bob@example.com or call +44 20 7946 0958"}"#;
    let (s, v) = call_json(&st, req("POST", "/api/privacy/scrub", body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["text"], "Mail <EMAIL_1> or call <PHONE_1>", "{v}");
    assert_eq!(v["entities"][0]["type"], "EMAIL", "{v}");
    assert_eq!(v["entities"][1]["text"], "+44 20 7946 0958", "{v}");

    let mut r = req("POST", "/api/privacy/scrub", body);
    r.headers_mut()
        .insert(header::HOST, "127.evil.example:7878".parse().unwrap());
    let (s, v) = call_json(&st, r).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "rebinding: {v}");
    let mut r = req("POST", "/api/privacy/scrub", body);
    r.headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    let (s, v) = call_json(&st, r).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "cross-site: {v}");
    let mut r = req("POST", "/api/privacy/scrub", body);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
    r.headers_mut()
        .insert(header::ORIGIN, "http://127.0.0.1:7878".parse().unwrap());
    let (s, v) = call_json(&st, r).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "form post: {v}");

    for (bad, param) in [
        (r#"{"text": 5}"#, "text"),
        (r#"{"text": "x", "leak": true}"#, "leak"),
        (r#"{}"#, "text"),
    ] {
        let (s, v) = call_json(&st, req("POST", "/api/privacy/scrub", bad)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap_or("").contains(param)
                || v["error"]["param"] == param,
            "{bad}: {v}"
        );
    }
    let huge = json!({"text": "a".repeat(flurry_privacy::MAX_TEXT_BYTES + 1)}).to_string();
    let (s, _) = call_json(&st, req("POST", "/api/privacy/scrub", huge)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "an oversized text");

    // Beyond loopback: no token, or a bad one, may not ask; a read token may.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.json");
    let read = TokenFile::create(&file, "dash", &[Scope::Read]).unwrap();
    let mut st2 = state_with(dir.path().to_path_buf(), None);
    st2.auth = Auth {
        require_token: true,
        loopback_hosts_only: false,
        tokens: LiveTokens::new(file),
        ..Auth::default()
    };
    let st2 = Arc::new(st2);
    let mut r = req("POST", "/api/privacy/scrub", body);
    r.headers_mut()
        .insert(header::HOST, "node.example:7878".parse().unwrap());
    let (s, v) = call_json(&st2, r).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "no token: {v}");
    let (s, v) = call_json(
        &st2,
        with_token(
            req("POST", "/api/privacy/scrub", body),
            "flurry_not_a_token",
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "bad token: {v}");
    let (s, v) = call_json(
        &st2,
        with_token(req("POST", "/api/privacy/scrub", body), &read),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Attack: a web page loosens the privacy policy so that the next prompt leaves the node
/// as typed, or reads what was sent (the egress log holds the text). A read or chat
/// token may see the policy but not change it, nor read the log; bad bodies are 400.
#[tokio::test]
async fn privacy_policy_and_egress_are_the_owners() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("flurry.toml");
    std::fs::write(&config, "# mine\n[privacy]\ncircle = \"scrubbed\"\n").unwrap();
    let (mut st, _d) = empty_state();
    st.router.privacy = flurry_privacy::PolicySource::ConfigFile(config.clone());
    let log = Arc::new(
        flurry_agent::EgressLog::open(
            &dir.path().join("egress.db"),
            &flurry_agent::HistoryKey::from_bytes([3; 32]),
        )
        .unwrap(),
    );
    log.record_sent("peer-x", "inference request", "scrubbed", "Hi <PERSON_1>")
        .unwrap();
    st.router.egress = Some(log);
    let st = Arc::new(st);
    let loosen = r#"{"circle":"as-is"}"#;

    for (name, host, origin) in [
        ("rebinding", "127.evil.example:7878", None),
        ("cross-site", "127.0.0.1:7878", Some("http://evil.example")),
    ] {
        let mut r = req("PUT", "/api/privacy", loosen);
        r.headers_mut().insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            r.headers_mut().insert(header::ORIGIN, o.parse().unwrap());
        }
        let (s, v) = call_json(&st, r).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{name}: {v}");
        let mut r = req("GET", "/api/egress", Body::empty());
        r.headers_mut().insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            r.headers_mut().insert(header::ORIGIN, o.parse().unwrap());
        }
        let (s, v) = call_json(&st, r).await;
        assert_ne!(s, StatusCode::OK, "{name} read the egress log: {v}");
    }
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("circle = \"scrubbed\""), "{text}");

    for (bad, param) in [
        (r#"{"circle":"leak"}"#, "circle"),
        (r#"{"circle":"as-is","to":"x"}"#, "to"),
        (r#"{}"#, "circle"),
    ] {
        let (s, v) = call_json(&st, req("PUT", "/api/privacy", bad)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(
            msg.contains(param) || v["error"]["param"] == param,
            "{bad}: {v}"
        );
    }
    let (s, v) = call_json(&st, req("GET", "/api/egress?limit=0", Body::empty())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    // The owner (loopback) changes it; the file keeps its comment; the log is readable.
    let (s, v) = call_json(&st, req("PUT", "/api/privacy", r#"{"market":"never"}"#)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"circle": "scrubbed", "market": "never"}));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.starts_with("# mine") && text.contains("market = \"never\""),
        "{text}"
    );
    let (s, v) = call_json(&st, req("GET", "/api/egress", Body::empty())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["records"][0]["content"], "Hi <PERSON_1>", "{v}");
    assert_eq!(v["records"][0]["rule"], "scrubbed", "{v}");

    // Beyond loopback: read and chat tokens see the policy, change nothing, read no log.
    let tdir = tempfile::tempdir().unwrap();
    let file = tdir.path().join("tokens.json");
    let read = TokenFile::create(&file, "dash", &[Scope::Read]).unwrap();
    let chat = TokenFile::create(&file, "bot", &[Scope::Chat]).unwrap();
    let admin = TokenFile::create(&file, "me", &[Scope::Admin]).unwrap();
    let mut st2 = state_with(tdir.path().to_path_buf(), None);
    st2.router.privacy = flurry_privacy::PolicySource::ConfigFile(config.clone());
    st2.auth = Auth {
        require_token: true,
        loopback_hosts_only: false,
        tokens: LiveTokens::new(file),
        ..Auth::default()
    };
    let st2 = Arc::new(st2);
    for t in [&read, &chat] {
        let (s, v) = call_json(
            &st2,
            with_token(req("GET", "/api/privacy", Body::empty()), t),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = call_json(&st2, with_token(req("PUT", "/api/privacy", loosen), t)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        let (s, v) = call_json(
            &st2,
            with_token(req("GET", "/api/egress", Body::empty()), t),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    }
    let (s, v) = call_json(&st2, with_token(req("PUT", "/api/privacy", loosen), &admin)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["circle"], "as-is");

    // A node without a config file has a fixed policy: a change is refused, clearly.
    let (st3, _d3) = empty_state();
    let (s, v) = call_json(&Arc::new(st3), req("PUT", "/api/privacy", loosen)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
}
