//! `POST /api/memory/ingest` reads only the folders the owner listed (`[memory] roots`),
//! and its refusals say nothing about the rest of the disk. Real handlers, the real
//! embedding model and a real SQLCipher store, driven with `oneshot`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flurry_agent::{Agent, History, ModelHost};
use flurry_api::{ApiState, MemoryRoots, NodeIdentity, router};
use flurry_infer::engine::EngineConfig;
use flurry_infer::store::ModelStore;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The model store; fails (never skips) when the embedding model is missing.
fn models_dir() -> PathBuf {
    let dir = std::env::var_os("FLURRY_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".flurry/models"));
    assert!(
        dir.join("all-MiniLM-L6-v2").is_dir(),
        "embedding model not found in {}: run `make models` first",
        dir.display()
    );
    dir
}

fn state(memory_db: &Path, roots: MemoryRoots) -> Arc<ApiState> {
    let host = ModelHost::new(
        ModelStore::new(models_dir()),
        EngineConfig::default().with_threads(1),
        "none".into(),
        1,
    );
    let agent = Agent {
        history: Arc::new(History::in_memory().unwrap()),
        models: Arc::new(host),
        max_tokens_cap: 16,
        recall: None,
    };
    let mut st = ApiState::new(
        Arc::new(agent),
        NodeIdentity {
            peer_id: "16Uiu2HAmTest".into(),
            address: "0x0000000000000000000000000000000000000001".into(),
        },
    );
    st.embeddings = Some(Arc::new(flurry_agent::EmbedHost::new(&models_dir())));
    st.memory = Some(Arc::new(
        flurry_memory::MemoryStore::open(memory_db, &flurry_memory::MemoryKey::from_bytes([5; 32]))
            .unwrap(),
    ));
    st.memory_roots = roots;
    // The test binary has no `__extract` worker; these files are the test's own.
    st.extractor = flurry_memory::Extractor::in_process();
    Arc::new(st)
}

async fn call(st: &Arc<ApiState>, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
    let r = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "127.0.0.1:7878")
        .header(header::CONTENT_TYPE, "application/json")
        .body(if method == "GET" {
            Body::empty()
        } else {
            Body::from(body.to_string())
        })
        .unwrap();
    let resp = router(st.clone()).oneshot(r).await.unwrap();
    let status = resp.status();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&b)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&b)));
    (status, v)
}

async fn ingest(st: &Arc<ApiState>, path: &Path) -> (StatusCode, Value) {
    call(st, "POST", "/api/memory/ingest", json!({ "paths": [path] })).await
}

async fn stored_paths(st: &Arc<ApiState>) -> Vec<String> {
    let (s, v) = call(st, "GET", "/api/memory/documents", Value::Null).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect()
}

/// A root with a note, a folder outside it with a secret, and symlinks inside the root
/// that point at the secret (a file link and a folder link).
fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("notes");
    let outside = dir.path().join("private");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(root.join("gate.txt"), "The garden gate code is 9911.").unwrap();
    std::fs::write(outside.join("secret.txt"), "The bank PIN is 4321.").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("pin.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("private")).unwrap();
    (dir, root, outside)
}

/// The attack: an API client (on loopback no token is needed; a rebinding web page can
/// do the same) asks the node to ingest a folder the owner never chose — `/etc`, another
/// folder of the owner's, a symlink inside a root that leads out of it — and probes
/// which paths exist from the error. Before the fix the node ingested any path and
/// answered "does not exist" for missing ones.
#[tokio::test]
async fn ingest_reads_only_the_owners_roots() {
    let (dir, root, outside) = tree();
    let st = state(
        &dir.path().join("memory.db"),
        MemoryRoots::Fixed(vec![root.clone()]),
    );

    let mut refusals = Vec::new();
    for p in [
        PathBuf::from("/etc"),
        outside.clone(),
        outside.join("secret.txt"),
        outside.join("no-such-file.txt"),
        PathBuf::from("/no/such/folder"),
        root.join("pin.txt"),
        root.join("private"),
        root.join("../private/secret.txt"),
    ] {
        let (s, v) = ingest(&st, &p).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{}: {v}", p.display());
        assert_eq!(v["error"]["code"], "path_not_allowed", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("flurry memory roots add PATH"),
            "{v}"
        );
        refusals.push(v);
    }
    // Existing and missing paths get the very same answer: no existence oracle.
    assert!(refusals.windows(2).all(|w| w[0] == w[1]), "{refusals:?}");
    assert!(stored_paths(&st).await.is_empty(), "nothing was ingested");

    // Inside the root: ingested, and the symlinks leading out are not followed.
    let (s, v) = ingest(&st, &root).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["added"], 1, "{v}");
    let real_root = std::fs::canonicalize(&root).unwrap();
    assert_eq!(
        stored_paths(&st).await,
        vec![real_root.join("gate.txt").display().to_string()]
    );
    let (s, v) = call(
        &st,
        "GET",
        "/api/memory/search?q=bank%20PIN&k=5&mode=bm25",
        Value::Null,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"], json!([]), "the secret leaked in: {v}");
}

/// The roots come from `flurry.toml`, read again at each request: `flurry memory roots
/// add` opens a folder on a running node, and nothing is open before it.
#[tokio::test]
async fn roots_added_to_the_config_apply_without_a_restart() {
    let (dir, root, _) = tree();
    let config = dir.path().join("flurry.toml");
    let st = state(
        &dir.path().join("memory.db"),
        MemoryRoots::ConfigFile(config.clone()),
    );
    let (s, v) = ingest(&st, &root).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no roots yet: {v}");
    flurry_config::add_memory_root(&config, &std::fs::canonicalize(&root).unwrap()).unwrap();
    let (s, v) = ingest(&st, &root.join("gate.txt")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["added"], 1, "{v}");
    flurry_config::remove_memory_root(&config, &std::fs::canonicalize(&root).unwrap()).unwrap();
    let (s, v) = ingest(&st, &root).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "removed again: {v}");

    // The default state opens nothing.
    let st = state(&dir.path().join("memory2.db"), MemoryRoots::default());
    let (s, v) = ingest(&st, &root).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
}
