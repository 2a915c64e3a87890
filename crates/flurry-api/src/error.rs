//! Errors as HTTP responses: OpenAI's error shape for `/v1/*` and the node routes,
//! Ollama's `{"error": "…"}` for the Ollama routes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message that says what to do.
    pub message: String,
    /// The offending request field, if any.
    pub param: Option<String>,
    /// Machine-readable code.
    pub code: Option<&'static str>,
    /// Answer in Ollama's shape instead of OpenAI's.
    pub ollama: bool,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
            code: None,
            ollama: false,
        }
    }

    /// 400 naming a field.
    pub fn bad_field(param: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message).param(param)
    }

    /// 404 for an unknown route or object.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message).code("not_found")
    }

    /// Sets `param`.
    pub fn param(mut self, p: &str) -> Self {
        self.param = Some(p.to_string());
        self
    }

    /// Sets `code`.
    pub fn code(mut self, c: &'static str) -> Self {
        self.code = Some(c);
        self
    }

    /// Answers in Ollama's shape.
    pub fn ollama(mut self) -> Self {
        self.ollama = true;
        self
    }

    fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request_error",
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = if self.ollama {
            json!({ "error": self.message })
        } else {
            json!({ "error": {
                "message": self.message,
                "type": self.kind(),
                "param": self.param,
                "code": self.code,
            }})
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<flurry_agent::Error> for ApiError {
    fn from(e: flurry_agent::Error) -> Self {
        use flurry_agent::Error as E;
        match e {
            E::ConversationNotFound(_) => Self::not_found(e.to_string()),
            E::ModelNotFound(_) => Self::new(StatusCode::NOT_FOUND, e.to_string())
                .param("model")
                .code("model_not_found"),
            E::Invalid(m) => Self::new(StatusCode::BAD_REQUEST, m),
            E::Infer(i) => i.into(),
            other => {
                tracing::error!(error = %other, "request failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            }
        }
    }
}

impl From<flurry_infer::Error> for ApiError {
    fn from(e: flurry_infer::Error) -> Self {
        use flurry_infer::Error as E;
        match e {
            E::QueueFull(_) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()).code("queue_full")
            }
            E::ContextOverflow { .. } => Self::new(StatusCode::BAD_REQUEST, e.to_string())
                .param("messages")
                .code("context_length_exceeded"),
            E::InvalidRequest(_) | E::Template(_) => {
                Self::new(StatusCode::BAD_REQUEST, e.to_string())
            }
            E::ModelNotFound(_) | E::AmbiguousModel(..) => {
                Self::new(StatusCode::NOT_FOUND, e.to_string())
                    .param("model")
                    .code("model_not_found")
            }
            E::EngineStopped => Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            other => {
                tracing::error!(error = %other, "engine failure");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            }
        }
    }
}

impl From<flurry_net::Error> for ApiError {
    fn from(e: flurry_net::Error) -> Self {
        use flurry_net::Error as E;
        match e {
            E::BadAddr { .. }
            | E::BadPeerId(_)
            | E::TooLarge { .. }
            | E::Circle(_)
            | E::Gossip(_) => Self::new(StatusCode::BAD_REQUEST, e.to_string()),
            E::Unreachable(_) | E::Infer { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, e.to_string()).code("peer_unreachable")
            }
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl From<flurry_router::Error> for ApiError {
    fn from(e: flurry_router::Error) -> Self {
        use flurry_router::Error as E;
        match e {
            E::NetOff => Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).code("net_off"),
            E::MarketOff => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).code("market_unavailable")
            }
            E::Market(m) => crate::market::market_error(m),
            E::Net(n) => n.into(),
            E::Invalid { param, message } => Self::bad_field(&param, message),
            E::Sampling(_) => Self::new(StatusCode::BAD_REQUEST, e.to_string()),
            E::Agent(a) => a.into(),
            E::Infer(i) => i.into(),
            E::Generation(m) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, m),
            E::UnknownPeer { .. } => Self::bad_field("peer", e.to_string()).code("unknown_peer"),
            E::PrivacyRefused { .. } => {
                Self::new(StatusCode::FORBIDDEN, e.to_string()).code("privacy_refused")
            }
            E::Scrub(_) => Self::bad_field("messages", e.to_string()),
            E::Policy(_) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            E::NotChat => Self::bad_field("model", e.to_string()),
            E::RequestTooLarge(_) => Self::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
            E::PeerClosed { .. } | E::PeerProtocol { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, e.to_string())
            }
            E::PeerRefused { code, .. } => {
                use flurry_net::ErrorCode as C;
                let (status, c) = match code {
                    C::Unauthorised => (StatusCode::FORBIDDEN, "peer_refused"),
                    C::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "peer_rate_limited"),
                    C::Busy => (StatusCode::SERVICE_UNAVAILABLE, "peer_busy"),
                    C::Model => (StatusCode::NOT_FOUND, "peer_model_not_found"),
                    C::BadRequest | C::TooLarge | C::Version => {
                        (StatusCode::BAD_REQUEST, "peer_bad_request")
                    }
                    C::Timeout | C::Internal => (StatusCode::BAD_GATEWAY, "peer_failed"),
                    C::Payment => (StatusCode::PAYMENT_REQUIRED, "peer_payment"),
                };
                Self::new(status, e.to_string()).code(c)
            }
            E::TooManyTopics(_) => Self::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
            E::Lost | E::EgressWrite(_) | E::NoEgressLog | E::CirclePoisoned | E::CircleSave(_) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}
