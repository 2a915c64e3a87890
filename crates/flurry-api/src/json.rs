//! A JSON body extractor whose rejections are [`ApiError`]s naming the bad field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `Json<T>` with OpenAI-shaped errors: 413 over the body limit, 400 for malformed JSON
/// or a wrong field (named in `param`).
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body is larger than [api] max_body_bytes",
                )
                .code("body_too_large")
            } else {
                ApiError::new(r.status(), r.body_text())
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body, naming the offending field on error.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid JSON: {inner}"),
            )
        } else if path.is_empty() || path == "." {
            let msg = inner.to_string();
            let missing = msg
                .split_once("missing field `")
                .and_then(|(_, rest)| rest.split_once('`'))
                .map(|(field, _)| field.to_string());
            match missing {
                Some(f) => ApiError::bad_field(&f, format!("missing field `{f}`")),
                None => ApiError::new(StatusCode::BAD_REQUEST, format!("invalid request: {msg}")),
            }
        } else {
            ApiError::bad_field(&path, format!("invalid field `{path}`: {inner}"))
        }
    })
}
