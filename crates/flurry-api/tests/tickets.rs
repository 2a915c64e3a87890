//! The tickets routes on a node with a real chain (anvil) and ticket store.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flurry_agent::{Agent, History, ModelHost};
use flurry_api::{ApiState, NodeIdentity, Wallet, router};
use flurry_chain::{
    Address, Chain, DeployParams, LocalChain, ReceiverConfig, TicketReceiver, find_anvil,
    parse_ether,
};
use flurry_identity::Identity;
use flurry_infer::engine::EngineConfig;
use flurry_infer::store::ModelStore;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

fn anvil_path() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let pinned = repo.join("contracts/node_modules/.bin/anvil");
    find_anvil(Some(&pinned)).unwrap_or_else(|_| {
        panic!(
            "anvil is needed for these tests: run `make chain-deps` (npm ci in contracts/), or set FLURRY_ANVIL"
        )
    })
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

async fn call(state: &Arc<ApiState>, r: Request<Body>) -> (StatusCode, Value) {
    let resp = router(state.clone()).oneshot(r).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Attack: a web page the owner visits embeds
/// `<img src="http://127.0.0.1:7878/api/tickets/params">` (a cross-site GET, which
/// carries no Origin check and needs no preflight). Before, that GET stored a new row of
/// ticket parameters each time, so any page could grow the node's database. Now the
/// route answers GET with 405 and stores nothing; parameters come only from a POST with
/// a JSON body naming the sender, and they are bound to that sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_params_cannot_be_created_by_a_get() {
    let anvil = LocalChain::spawn(&anvil_path(), None).unwrap();
    let id = Identity::generate().unwrap();
    let me = Address::from(id.address_bytes());
    let mut chain = Chain::connect(anvil.url(), &id).await.unwrap();
    chain
        .dev_fund(me, parse_ether("10").unwrap())
        .await
        .unwrap();
    let contracts = chain.deploy(&DeployParams::default()).await.unwrap();
    let chain = chain.with_contracts(contracts);
    let dir = tempfile::tempdir().unwrap();
    let tickets = Arc::new(
        TicketReceiver::open(
            &dir.path().join("tickets.db"),
            me,
            chain.domain().unwrap(),
            ReceiverConfig::default(),
        )
        .unwrap(),
    );
    let host = ModelHost::new(
        ModelStore::new(dir.path().join("models")),
        EngineConfig::default().with_threads(1),
        "none".into(),
        1,
    );
    let agent = Agent {
        history: Arc::new(History::in_memory().unwrap()),
        models: Arc::new(host),
        max_tokens_cap: 64,
        recall: None,
    };
    let mut state = ApiState::new(
        Arc::new(agent),
        NodeIdentity {
            peer_id: "16Uiu2HAmTest".into(),
            address: me.to_string(),
        },
    );
    state.wallet = Some(Wallet {
        chain,
        tickets: tickets.clone(),
    });
    let state = Arc::new(state);

    for _ in 0..5 {
        let (status, _) = call(&state, req("GET", "/api/tickets/params", Body::empty())).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
    assert_eq!(tickets.params_rows().unwrap(), 0, "a GET stored parameters");

    // A POST without the sender is refused with the field named.
    let (status, err) = call(&state, req("POST", "/api/tickets/params", "{}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(tickets.params_rows().unwrap(), 0);

    let sender = Address::repeat_byte(0x42);
    let (status, params) = call(
        &state,
        req(
            "POST",
            "/api/tickets/params",
            json!({ "sender": sender }).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{params}");
    assert_eq!(params["sender"], json!(sender));
    assert_eq!(params["recipient"], json!(me));
    assert_eq!(tickets.params_rows().unwrap(), 1);
    drop(anvil);
}
