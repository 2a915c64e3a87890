//! Flurry's HTTP API: an axum [`router`] serving OpenAI-compatible `/v1/*`,
//! Ollama-compatible `/api/*`, the node's own routes, Prometheus `/metrics`, and the
//! embedded web UI. See `docs/api.md` for the routes and every limit.
//!
//! Security is decided here: on a loopback address no token is needed but the `Host`
//! header must be a loopback name (no DNS rebinding); otherwise every route but the
//! static UI needs a bearer token. CORS is closed unless origins are configured.

mod base64;
mod error;
mod generate;
mod json;
mod memory;
mod metrics;
mod node;
mod ollama;
mod openai;
mod p2p;
pub mod tokens;
mod wallet;
mod web;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flurry_agent::Agent;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::ApiError;
pub use metrics::Metrics;
pub use p2p::{P2p, serve_peers};

/// Who the node is, as shown by `/api/node`.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// libp2p PeerId (`16Uiu2…`).
    pub peer_id: String,
    /// EIP-55 Ethereum address.
    pub address: String,
}

/// Request limits (see `[api]` in `flurry.toml`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body in bytes.
    pub max_body_bytes: usize,
    /// Most messages in a chat request.
    pub max_messages: usize,
    /// Largest `max_tokens`.
    pub max_tokens: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_messages: 256,
            max_tokens: 4096,
        }
    }
}

/// Most stop strings per request.
pub const MAX_STOP: usize = 4;
/// Longest stop string, in bytes.
pub const MAX_STOP_BYTES: usize = 64;

/// Who may call the API.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// Every request (but the static UI) needs a bearer token.
    pub require_token: bool,
    /// Only loopback `Host` headers are accepted (set when listening on loopback).
    pub loopback_hosts_only: bool,
    /// BLAKE3 hashes of accepted tokens.
    pub token_hashes: Vec<String>,
}

impl Auth {
    fn accepts(&self, token: &str) -> bool {
        let h = tokens::hash_token(token);
        self.token_hashes.contains(&h)
    }
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct ApiState {
    /// The agent (history and models).
    pub agent: Arc<Agent>,
    /// The node's identity.
    pub identity: NodeIdentity,
    /// Limits.
    pub limits: Limits,
    /// Access rules.
    pub auth: Auth,
    /// Allowed CORS origins; empty means closed.
    pub cors_origins: Vec<String>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Start time, for uptime.
    pub started: Instant,
    /// Set when the node begins shutting down: new requests get 503.
    pub shutting_down: AtomicBool,
    /// The chain side (wallet, tickets); `None` when the node runs without a chain.
    pub wallet: Option<Wallet>,
    /// The embedding model for `/v1/embeddings`; `None` = not offered.
    pub embeddings: Option<Arc<flurry_agent::EmbedHost>>,
    /// The private memory for `/api/memory/*`; `None` = not open.
    pub memory: Option<Arc<flurry_memory::MemoryStore>>,
    /// Held while `POST /api/memory/ingest` runs: one ingestion at a time.
    pub ingesting: AtomicBool,
    /// The peer-to-peer network and the trusted circle; `None` = off.
    pub p2p: Option<P2p>,
    /// The log of data sent off the node; requests to peers are refused without it.
    pub egress: Option<Arc<flurry_agent::EgressLog>>,
}

/// The node's chain connection and ticket store, for `/api/wallet`.
#[derive(Debug, Clone)]
pub struct Wallet {
    /// Connection bound to the contracts, signing with the node key.
    pub chain: flurry_chain::Chain,
    /// Tickets paid to this node.
    pub tickets: Arc<flurry_chain::TicketReceiver>,
}

impl ApiState {
    /// State with default limits, open loopback access and closed CORS.
    pub fn new(agent: Arc<Agent>, identity: NodeIdentity) -> Self {
        Self {
            agent,
            identity,
            limits: Limits::default(),
            auth: Auth {
                require_token: false,
                loopback_hosts_only: true,
                token_hashes: Vec::new(),
            },
            cors_origins: Vec::new(),
            metrics: Metrics::default(),
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
            wallet: None,
            embeddings: None,
            memory: None,
            ingesting: AtomicBool::new(false),
            p2p: None,
            egress: None,
        }
    }
}

type AppState = Arc<ApiState>;

/// The API's router.
pub fn router(state: Arc<ApiState>) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/models", get(openai::models))
        .route("/v1/models/{*model}", get(openai::model))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/api/chat", post(ollama::chat))
        .route("/api/generate", post(ollama::generate))
        .route("/api/tags", get(ollama::tags))
        .route("/api/show", post(ollama::show))
        .route("/api/ps", get(ollama::ps))
        .route("/api/version", get(ollama::version))
        .route("/api/node", get(node::info))
        .route("/api/memory/search", get(memory::search))
        .route("/api/memory/ingest", post(memory::ingest))
        .route("/api/memory/documents", get(memory::documents))
        .route(
            "/api/memory/documents/{id}",
            get(memory::document).delete(memory::forget),
        )
        .route("/api/net/status", get(p2p::status))
        .route("/api/net/peers", get(p2p::peers))
        .route("/api/net/dial", post(p2p::dial))
        .route("/api/net/find", post(p2p::find))
        .route("/api/net/gossip", get(p2p::gossip).post(p2p::publish))
        .route("/api/circle", get(p2p::circle).post(p2p::add_member))
        .route(
            "/api/circle/{key}",
            axum::routing::delete(p2p::remove_member),
        )
        .route("/api/wallet", get(wallet::summary))
        .route("/api/tickets/params", get(wallet::ticket_params))
        .route("/api/tickets", post(wallet::submit_tickets))
        .route(
            "/api/conversations",
            get(node::list_conversations).post(node::create_conversation),
        )
        .route(
            "/api/conversations/{id}",
            get(node::get_conversation)
                .patch(node::patch_conversation)
                .delete(node::delete_conversation),
        )
        .route("/api/conversations/{id}/messages", post(node::send_message))
        .route("/metrics", get(metrics::render))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard));
    let mut app = Router::new()
        .route("/", get(web::index))
        .route("/app.js", get(web::app_js))
        .route("/style.css", get(web::style_css))
        .route("/favicon.svg", get(web::favicon))
        .merge(api)
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), host_check))
        .layer(middleware::from_fn_with_state(state.clone(), count));
    if !state.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = state
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
        );
    }
    app.with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!("no route {} {}", req.method(), req.uri().path()))
}

/// Counts responses by status.
async fn count(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    st.metrics.count_status(resp.status().as_u16());
    resp
}

fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1") || name.starts_with("127.")
}

/// Refuses requests whose `Host` is not loopback when the node listens on loopback, so
/// that a web page cannot reach the API by DNS rebinding.
async fn host_check(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if st.auth.loopback_hosts_only {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !is_loopback_host(host) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                format!("host {host:?} is not allowed: this node listens on loopback only; use http://127.0.0.1"),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Refuses what a web page could send without a CORS preflight: any request whose
/// `Origin` is neither this node's own nor an allowed CORS origin (403), and, from a
/// browser (a request with `Origin` or `Sec-Fetch-Site`), a POST whose body is not
/// declared JSON (415). Browsers always send `Origin` on cross-site POSTs, so that is what
/// stops cross-site request forgery; clients that are not browsers (curl, SDKs) send no
/// `Origin` and may omit the content type, as Ollama's own `curl -d` examples do.
fn cross_site(st: &ApiState, req: &Request) -> Option<Response> {
    let h = req.headers();
    if let Some(origin) = h.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let host = h
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| o == host);
        if !own && !st.cors_origins.iter().any(|o| o == origin) {
            return Some(
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("requests from {origin} are not allowed: add it to [api] cors_origins to allow it"),
                )
                .code("origin_not_allowed")
                .into_response(),
            );
        }
    }
    let from_browser = h.contains_key(header::ORIGIN) || h.contains_key("sec-fetch-site");
    if req.method() == Method::POST && from_browser {
        let json = h
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json")
                    || v.to_ascii_lowercase().ends_with("+json")
            });
        if !json {
            return Some(
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "the body must be JSON: send `Content-Type: application/json`",
                )
                .code("unsupported_media_type")
                .into_response(),
            );
        }
    }
    None
}

/// Token check and shutdown refusal for every API route.
async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if st.shutting_down.load(Ordering::Relaxed) {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down")
            .code("shutting_down")
            .into_response();
    }
    if let Some(resp) = cross_site(&st, &req) {
        return resp;
    }
    if st.auth.require_token && req.method() != Method::OPTIONS {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        match token {
            Some(t) if st.auth.accepts(t) => {}
            Some(_) => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid API token: make one with `flurry token create`",
                )
                .code("invalid_api_key")
                .into_response();
            }
            None => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "this node needs an API token: send `Authorization: Bearer <token>` (make one with `flurry token create`)",
                )
                .code("missing_api_key")
                .into_response();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1:7878",
            "localhost",
            "localhost:1",
            "[::1]:7878",
            "127.0.0.2",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "evil.com",
            "evil.com:7878",
            "10.0.0.1:7878",
            "",
            "[::2]:1",
            "localhost.evil.com",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
