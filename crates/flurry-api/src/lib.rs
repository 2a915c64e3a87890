//! Flurry's HTTP API: an axum [`router`] serving OpenAI-compatible `/v1/*`,
//! Ollama-compatible `/api/*`, the node's own routes, Prometheus `/metrics`, and the
//! embedded web UI. See `docs/api.md` for the routes and every limit.
//!
//! Security is decided here: on a loopback address no token is needed but the `Host`
//! header must be a loopback IP literal or exactly `localhost` (no DNS rebinding);
//! otherwise every route but the static UI needs a bearer token, and each token has a
//! [`tokens::Scope`] (`read` < `chat` < `admin`). CORS is closed unless origins are
//! configured. [`serve`] runs the router on a socket with header and write timeouts, a
//! connection cap, and graceful shutdown.

mod base64;
mod error;
mod json;
mod market;
mod memory;
mod metrics;
mod node;
mod ollama;
mod openai;
mod p2p;
mod privacy;
mod server;
mod share;
pub mod tokens;
mod wallet;
mod web;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flurry_agent::Agent;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::ApiError;
pub use memory::MemoryRoots;
pub use metrics::Metrics;
pub use server::{ServeLimits, serve};
use tokens::Scope;

/// Who the node is, as shown by `/api/node`.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// libp2p PeerId (`16Uiu2…`).
    pub peer_id: String,
    /// EIP-55 Ethereum address.
    pub address: String,
}

/// Request limits (see `[api]` in `flurry.toml`). The limits of a generation itself
/// (`max_tokens`, the stalled-reader timeout) are the router's:
/// [`flurry_router::Limits`].
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body in bytes.
    pub max_body_bytes: usize,
    /// Most messages in a chat request.
    pub max_messages: usize,
    /// Most generations one client (token, or IP address without one) runs at once.
    pub max_streams_per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_messages: 256,
            max_streams_per_client: 8,
        }
    }
}

/// Who may call the API.
#[derive(Debug, Default)]
pub struct Auth {
    /// Every request (but the static UI) needs a bearer token.
    pub require_token: bool,
    /// Only loopback `Host` headers are accepted (set when listening on loopback).
    pub loopback_hosts_only: bool,
    /// BLAKE3 hashes of tokens accepted as `admin` whatever the tokens file says (the
    /// node's own local token in `node.json`).
    pub token_hashes: Vec<String>,
    /// The tokens file (`flurry token create`), re-read when it changes.
    pub tokens: tokens::LiveTokens,
}

impl Auth {
    /// The scope of `token`, or `None` when it is not a valid token.
    fn scope_of(&self, token: &str) -> Option<Scope> {
        let h = tokens::hash_token(token);
        if self.token_hashes.contains(&h) {
            return Some(Scope::Admin);
        }
        self.tokens.scope_of(token)
    }
}

/// Generations running per client, for `[api] max_streams_per_client`.
#[derive(Debug, Default)]
pub struct StreamSlots {
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

/// One running generation of a client; dropping it frees the slot.
struct Slot {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl StreamSlots {
    fn take(&self, key: &str, max: usize) -> Option<Slot> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = c.entry(key.to_string()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: self.counts.clone(),
            key: key.to_string(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = c.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.key);
            }
        }
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
    /// The open market (offers); `None` when the network is off.
    pub market: Option<Arc<flurry_market::Market>>,
    /// Model sharing (publish, pull); `None` when the network is off.
    pub sharing: Option<Arc<flurry_share::Sharing>>,
    /// The embedding model for `/v1/embeddings`; `None` = not offered.
    pub embeddings: Option<Arc<flurry_agent::EmbedHost>>,
    /// The private memory for `/api/memory/*`; `None` = not open.
    pub memory: Option<Arc<flurry_memory::MemoryStore>>,
    /// Held while `POST /api/memory/ingest` runs: one ingestion at a time.
    pub ingesting: AtomicBool,
    /// The folders `POST /api/memory/ingest` may read (`[memory] roots`); none by default.
    pub memory_roots: MemoryRoots,
    /// How ingestion reads files: a limited child process (`flurry __extract`) unless
    /// set otherwise (tests of trusted input).
    pub extractor: flurry_memory::Extractor,
    /// Where generations run (here or on a circle peer), with their limits, the egress
    /// log and the peer-to-peer network. Its agent is `agent`.
    pub router: flurry_router::Router,
    /// Generations running per client.
    pub streams: StreamSlots,
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
            router: flurry_router::Router::new(agent.clone()),
            agent,
            identity,
            limits: Limits::default(),
            auth: Auth {
                require_token: false,
                loopback_hosts_only: true,
                ..Auth::default()
            },
            cors_origins: Vec::new(),
            metrics: Metrics::default(),
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
            wallet: None,
            market: None,
            sharing: None,
            embeddings: None,
            memory: None,
            ingesting: AtomicBool::new(false),
            memory_roots: MemoryRoots::default(),
            extractor: flurry_memory::Extractor::default(),
            streams: StreamSlots::default(),
        }
    }
}

type AppState = Arc<ApiState>;

/// Reads a whole answer and counts it in the metrics.
async fn collect(
    st: &ApiState,
    started: flurry_router::Started,
) -> Result<flurry_router::Finished, ApiError> {
    let f = started.collect().await?;
    let t = &f.timings;
    st.metrics
        .record(t.prompt_tokens, t.completion_tokens, t.decode_ms);
    Ok(f)
}

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
            "/api/privacy",
            get(privacy::policy).put(privacy::set_policy),
        )
        .route("/api/privacy/scrub", post(privacy::scrub))
        .route("/api/egress", get(privacy::egress))
        .route(
            "/api/memory/documents/{id}",
            get(memory::document).delete(memory::forget),
        )
        .route("/api/net/status", get(p2p::status))
        .route("/api/net/peers", get(p2p::peers))
        .route("/api/net/dial", post(p2p::dial))
        .route("/api/net/find", post(p2p::find))
        .route("/api/net/gossip", get(p2p::gossip).post(p2p::publish))
        .route("/api/net/gossip/subscribe", post(p2p::subscribe))
        .route("/api/circle", get(p2p::circle).post(p2p::add_member))
        .route(
            "/api/circle/{key}",
            axum::routing::delete(p2p::remove_member),
        )
        .route("/api/wallet", get(wallet::summary))
        .route("/api/market", get(market::status))
        .route("/api/market/offers", get(market::offers))
        .route("/api/market/jobs", get(market::jobs))
        .route("/api/market/audits", get(market::audits))
        .route("/api/market/sell", post(market::sell))
        .route("/api/market/stop", post(market::stop))
        .route("/api/pull", post(share::pull))
        .route("/api/models/publish", post(share::publish))
        .route("/api/models/unpublish", post(share::unpublish))
        .route("/api/models/published", get(share::published))
        .route("/api/models/announced", get(share::announced))
        .route("/api/tickets/params", post(wallet::ticket_params))
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
        // `*` is refused by the config; skipped here so that a library user cannot make
        // tower-http panic with it.
        let origins: Vec<HeaderValue> = state
            .cors_origins
            .iter()
            .filter(|o| o.trim() != "*")
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

/// Whether a `Host` header names this machine without DNS: a loopback IP literal
/// (127.0.0.0/8, `[::1]`) or exactly `localhost` (any case, no trailing dot), with an
/// optional port. Any other name could be re-pointed at 127.0.0.1 by a web page's DNS
/// (rebinding), so a prefix such as `127.evil.example` is not enough.
fn is_loopback_host(host: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        let Some((ip, tail)) = rest.split_once(']') else {
            return false;
        };
        if !(tail.is_empty() || tail.strip_prefix(':').is_some_and(port_ok)) {
            return false;
        }
        return ip.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    let name = match host.split_once(':') {
        Some((h, p)) if port_ok(p) => h,
        Some(_) => return false,
        None => host,
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// The scope the request's token grants (the owner's on loopback without tokens), for
/// handlers whose need depends on the body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Granted(pub(crate) Scope);

/// Buying on the market spends the node's money: only `admin` tokens may ask for a
/// `market/…` model.
pub(crate) fn check_market_scope(
    granted: Option<&axum::Extension<Granted>>,
    model: Option<&str>,
) -> Result<(), ApiError> {
    if !model.is_some_and(flurry_router::is_market_model) {
        return Ok(());
    }
    match granted {
        Some(g) if g.0.0 >= Scope::Admin => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "buying on the market spends this node's money: it needs a token with the admin scope (`flurry token create --scope admin`)",
        )
        .code("insufficient_scope")),
    }
}

/// The scope a request needs: `admin` unless it only reads or generates.
fn needed_scope(method: &Method, path: &str) -> Scope {
    // Balances and tickets are money: only the owner's tokens see or move them.
    // The egress log holds the text that left the node.
    if path.starts_with("/api/wallet") || path.starts_with("/api/tickets") || path == "/api/egress"
    {
        return Scope::Admin;
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Scope::Read;
    }
    // Scrubbing reads what the memory knows, as a search does.
    if *method == Method::POST && (path == "/api/show" || path == "/api/privacy/scrub") {
        return Scope::Read;
    }
    if is_generation(method, path)
        || path == "/v1/embeddings"
        || path == "/api/conversations"
        || path.starts_with("/api/conversations/")
    {
        return Scope::Chat;
    }
    Scope::Admin
}

/// Routes that run a generation (and count against `max_streams_per_client`).
fn is_generation(method: &Method, path: &str) -> bool {
    *method == Method::POST
        && (matches!(
            path,
            "/v1/chat/completions" | "/v1/completions" | "/api/chat" | "/api/generate"
        ) || (path.starts_with("/api/conversations/") && path.ends_with("/messages")))
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
    let has_body = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "0")
        || h.contains_key(header::TRANSFER_ENCODING);
    let changes_state = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH)
        || (*req.method() == Method::DELETE && has_body);
    if changes_state && from_browser {
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

/// Token and scope check, per-client generation bound and shutdown refusal for every
/// API route.
async fn guard(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    if st.shutting_down.load(Ordering::Relaxed) {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down")
            .code("shutting_down")
            .into_response();
    }
    if let Some(resp) = cross_site(&st, &req) {
        return resp;
    }
    if req.method() == Method::OPTIONS {
        return next.run(req).await;
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let token = token.as_deref();
    let token_scope = token.and_then(|t| st.auth.scope_of(t));
    let granted = match (token, token_scope) {
        (_, Some(scope)) => scope,
        // On loopback without required tokens the owner has full access; a stale token
        // kept by a browser changes nothing.
        _ if !st.auth.require_token => Scope::Admin,
        (Some(_), None) => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid API token (revoked or never made): make one with `flurry token create`",
            )
            .code("invalid_api_key")
            .into_response();
        }
        (None, None) => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this node needs an API token: send `Authorization: Bearer <token>` (make one with `flurry token create`)",
            )
            .code("missing_api_key")
            .into_response();
        }
    };
    let path = req.uri().path();
    let needed = needed_scope(req.method(), path);
    if granted < needed {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this token has the {:?} scope but {} {path} needs {:?}: use a token made with `flurry token create --scope {}`",
                granted.as_str(),
                req.method(),
                needed.as_str(),
                needed.as_str()
            ),
        )
        .code("insufficient_scope")
        .into_response();
    }
    let generation = is_generation(req.method(), path);
    req.extensions_mut().insert(Granted(granted));
    if !generation {
        return next.run(req).await;
    }
    // Bound the generations of one client: its token, or its address without one.
    let key = match token.filter(|_| token_scope.is_some()) {
        Some(t) => format!("token:{}", tokens::hash_token(t)),
        None => req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(
                || "ip:local".to_string(),
                |c| format!("ip:{}", client_ip(c.0.ip())),
            ),
    };
    let max = st.limits.max_streams_per_client;
    let Some(slot) = st.streams.take(&key, max) else {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "this client already runs {max} generations ([api] max_streams_per_client): wait for one to finish"
            ),
        )
        .code("too_many_streams")
        .into_response();
    };
    let resp = next.run(req).await;
    let streamed = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("text/event-stream") || v.starts_with("application/x-ndjson")
        });
    if !streamed {
        // A whole answer was generated before the response was made.
        return resp;
    }
    // A streamed answer keeps the slot until its body ends or the client leaves.
    let (parts, body) = resp.into_parts();
    let body = axum::body::Body::from_stream(tokio_stream::StreamExt::map(
        body.into_data_stream(),
        move |chunk| {
            let _held = &slot;
            chunk
        },
    ));
    Response::from_parts(parts, body)
}

/// The address a client is counted under: IPv4-mapped IPv6 as IPv4.
fn client_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
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
            "LocalHost:7878",
            "[::1]:7878",
            "[::1]",
            "127.0.0.2",
            "127.255.1.9:80",
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
            // DNS rebinding: names that merely start like a loopback address.
            "127.evil.example:7878",
            "127.0.0.1.evil.example",
            "127.0.0.1.nip.io:7878",
            "localhost.:7878",
            "localhost:7878:1",
            "localhost:x",
            "[::1]evil",
            "128.0.0.1",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
