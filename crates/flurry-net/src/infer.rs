//! `/flurry/infer/1`: a peer asks this node to run a chat generation and gets the tokens
//! streamed back.
//!
//! Wire format, on one libp2p stream: the client writes one request frame, the server
//! answers with frames until `done` or `error`, then both sides close. A frame is a
//! 4-byte big-endian length followed by that many bytes of JSON. Requests are at most
//! [`MAX_REQUEST_BYTES`], answer frames at most [`MAX_FRAME_BYTES`]; a longer length
//! prefix is refused before any of the payload is read. A request carries `v`, the
//! protocol version; a server refuses versions it does not speak.

use std::time::Duration;

use futures_util::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The protocol name.
pub const INFER_PROTOCOL: &str = "/flurry/infer/1";
/// The request version this node speaks.
pub const INFER_VERSION: u32 = 1;
/// Largest request frame.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Largest answer frame.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The whole request must arrive within this time after the stream opens (slow senders
/// hold a slot for no longer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A client gives up when no frame arrives for this long (it covers the wait in the
/// peer's queue and the prefill of a long prompt on a CPU; the whole answer is bounded
/// by the total deadline, [`DEFAULT_TOTAL_TIMEOUT`]).
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(120);
/// A client gives up on an answer that has not ended this long after the request was
/// sent, however steadily its frames come (`[net] infer_total_timeout_secs`).
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(600);
/// Token frames a client accepts when its request sets no `max_tokens` (the serving
/// node caps generation by its context, which no model served today exceeds).
pub const DEFAULT_MAX_ANSWER_TOKENS: u32 = 32_768;
/// Bytes of answer text a client accepts per token it asked for: far above any real
/// token (the longest in common vocabularies is a few hundred bytes), so only a peer
/// that pads its frames reaches it.
pub const MAX_TEXT_BYTES_PER_TOKEN: usize = 1024;
/// Most messages in one request.
pub const MAX_MESSAGES: usize = 256;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InferMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferRequest {
    /// Protocol version ([`INFER_VERSION`]).
    pub v: u32,
    /// A model on the serving node; `None` = its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<InferMessage>,
    /// Most tokens to generate (the server applies its own cap too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Top-k.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Stop strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Ask for a signed receipt of this job (`docs/verification.md`): the job id the
    /// client picked, 64 lowercase hex digits. The server runs the job with chunk
    /// commitments and sends a `receipt` frame before `done`; `max_tokens` is then
    /// required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

impl InferRequest {
    /// A request for `messages` with the server's defaults.
    pub fn new(messages: Vec<InferMessage>) -> Self {
        Self {
            v: INFER_VERSION,
            model: None,
            messages,
            max_tokens: None,
            temperature: None,
            top_p: None,
            top_k: None,
            seed: None,
            stop: Vec::new(),
            receipt: None,
        }
    }

    /// Checks what a server checks before it runs anything.
    pub fn validate(&self) -> Result<(), InferFrame> {
        let bad = |m: String| Err(InferFrame::error(ErrorCode::BadRequest, m));
        if self.v != INFER_VERSION {
            return Err(InferFrame::error(
                ErrorCode::Version,
                format!(
                    "request version {} is not supported; this node speaks version {INFER_VERSION}",
                    self.v
                ),
            ));
        }
        if self.messages.is_empty() {
            return bad("the request has no messages".into());
        }
        if self.messages.len() > MAX_MESSAGES {
            return bad(format!("at most {MAX_MESSAGES} messages per request"));
        }
        if let Some(m) = self
            .messages
            .iter()
            .find(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
        {
            return bad(format!("unknown role {:?}", m.role));
        }
        if let Some(id) = &self.receipt {
            if id.len() != 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return bad("receipt: a job id of 64 lowercase hex digits".into());
            }
            if self.max_tokens.is_none() {
                return bad("a job with a receipt needs max_tokens".into());
            }
        }
        Ok(())
    }
}

/// Why a server refused or failed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The peer is not in this node's trusted circle.
    Unauthorised,
    /// Too many requests from this peer.
    RateLimited,
    /// The node is busy with other peers' requests.
    Busy,
    /// The request did not parse or breaks a rule.
    BadRequest,
    /// The request frame is over the size bound.
    TooLarge,
    /// The request did not arrive in time.
    Timeout,
    /// A protocol version this node does not speak.
    Version,
    /// The model is not available here.
    Model,
    /// Generation failed.
    Internal,
    /// A market job's payment is missing, late or invalid: no more tokens are sent.
    Payment,
}

/// One frame of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InferFrame {
    /// The request was accepted and queued.
    Start {
        /// The model that answers.
        model: String,
        /// Prompt length in tokens.
        prompt_tokens: u32,
    },
    /// Text of the answer.
    Token {
        /// The text.
        text: String,
    },
    /// The end of the answer.
    Done {
        /// `stop`, `length` or `cancelled`.
        finish_reason: String,
        /// Tokens generated.
        completion_tokens: u32,
    },
    /// The signed receipt of a job that asked for one, just before `done`: a job
    /// bundle without the client's signature and prompt tokens, which the client adds
    /// after checking it (`docs/verification.md`). Opaque here.
    Receipt {
        /// The bundle, as JSON.
        bundle: serde_json::Value,
    },
    /// The request was refused or failed; the stream ends.
    Error {
        /// Why.
        code: ErrorCode,
        /// What to do about it.
        message: String,
    },
}

impl InferFrame {
    /// An error frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > 4096 {
            let mut end = 4096;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        Self::Error { code, message }
    }

    /// Whether the stream ends after this frame.
    pub fn is_last(&self) -> bool {
        matches!(self, Self::Done { .. } | Self::Error { .. })
    }
}

/// How much of an answer a client accepts, from its own request: a serving peer that
/// sends more is cut off, whatever it claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerLimits {
    /// Token frames: the request's `max_tokens` (or [`DEFAULT_MAX_ANSWER_TOKENS`]) plus
    /// one, for the text a server holds back until the end (an incomplete UTF-8
    /// character or a partial stop string).
    pub max_token_frames: u64,
    /// Bytes of answer text over all token frames.
    pub max_text_bytes: u64,
}

impl AnswerLimits {
    /// The limits for an answer to `request`.
    pub fn for_request(request: &InferRequest) -> Self {
        let tokens = u64::from(request.max_tokens.unwrap_or(DEFAULT_MAX_ANSWER_TOKENS));
        Self {
            max_token_frames: tokens + 1,
            max_text_bytes: (tokens + 1) * MAX_TEXT_BYTES_PER_TOKEN as u64,
        }
    }
}

/// Checks the frames of one answer, in order, against [`AnswerLimits`] and the
/// protocol (`start` or `error` first, `start` once, nothing after the last frame).
#[derive(Debug, Clone)]
pub struct AnswerGuard {
    limits: AnswerLimits,
    started: bool,
    ended: bool,
    token_frames: u64,
    text_bytes: u64,
    receipts: u32,
}

impl AnswerGuard {
    /// A guard for one answer.
    pub fn new(limits: AnswerLimits) -> Self {
        Self {
            limits,
            started: false,
            ended: false,
            token_frames: 0,
            text_bytes: 0,
            receipts: 0,
        }
    }

    /// Accepts `frame`, or says why the answer must be cut off here.
    pub fn check(&mut self, frame: &InferFrame) -> Result<(), String> {
        if self.ended {
            return Err("the peer sent frames after the end of its answer".into());
        }
        match frame {
            InferFrame::Start { .. } if self.started => {
                return Err("the peer sent start twice".into());
            }
            InferFrame::Start { .. } => self.started = true,
            InferFrame::Error { .. } => {}
            _ if !self.started => {
                return Err(
                    "the peer answered before accepting the request (no start frame)".into(),
                );
            }
            InferFrame::Token { text } => {
                self.token_frames += 1;
                self.text_bytes += text.len() as u64;
                if self.token_frames > self.limits.max_token_frames {
                    return Err(format!(
                        "the peer sent more than the {} tokens asked for (max_tokens); the answer was cut off",
                        self.limits.max_token_frames - 1
                    ));
                }
                if self.text_bytes > self.limits.max_text_bytes {
                    return Err(format!(
                        "the peer sent more than {} bytes of text for {} tokens; the answer was cut off",
                        self.limits.max_text_bytes,
                        self.limits.max_token_frames - 1
                    ));
                }
            }
            InferFrame::Receipt { .. } if self.receipts > 0 => {
                return Err("the peer sent two receipts".into());
            }
            InferFrame::Receipt { .. } => self.receipts += 1,
            InferFrame::Done { .. } => {}
        }
        self.ended = frame.is_last();
        Ok(())
    }
}

/// A frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The length prefix is over the bound.
    #[error("frame of {size} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// Announced size.
        size: usize,
        /// The bound.
        limit: usize,
    },
    /// The payload is not the expected JSON.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    /// Transport error.
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes `value` as one frame (length prefix + JSON), refusing more than `limit` bytes
/// of payload.
pub fn encode<T: Serialize>(value: &T, limit: usize) -> Result<Vec<u8>, CodecError> {
    let body = serde_json::to_vec(value).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if body.len() > limit {
        return Err(CodecError::TooLarge {
            size: body.len(),
            limit,
        });
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes the payload of one frame.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodecError> {
    serde_json::from_slice(body).map_err(|e| CodecError::Malformed(e.to_string()))
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    value: &T,
    limit: usize,
) -> Result<(), CodecError> {
    let bytes = encode(value, limit)?;
    w.write_all(&bytes).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame; `Ok(None)` when the stream ended cleanly before it.
pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
    limit: usize,
) -> Result<Option<T>, CodecError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(CodecError::Truncated)
            };
        }
        got += n;
    }
    let size = u32::from_be_bytes(len) as usize;
    if size > limit {
        return Err(CodecError::TooLarge { size, limit });
    }
    let mut body = vec![0u8; size];
    r.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            CodecError::Truncated
        } else {
            CodecError::Io(e)
        }
    })?;
    decode(&body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures_util::FutureExt::now_or_never(f).expect("in-memory I/O never waits")
    }

    fn read_all<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<Vec<T>, CodecError> {
        let mut r = futures_util::io::Cursor::new(bytes.to_vec());
        let mut out = Vec::new();
        while let Some(f) = block_on(read_frame(&mut r, limit))? {
            out.push(f);
        }
        Ok(out)
    }

    fn message() -> impl Strategy<Value = InferMessage> {
        (
            prop_oneof![Just("system"), Just("user"), Just("assistant")],
            ".{0,200}",
        )
            .prop_map(|(role, content)| InferMessage {
                role: role.to_string(),
                content,
            })
    }

    fn request() -> impl Strategy<Value = InferRequest> {
        (
            proptest::collection::vec(message(), 1..8),
            proptest::option::of("[a-zA-Z0-9._/-]{1,40}"),
            proptest::option::of(1u32..4096),
            proptest::option::of(0.0f32..2.0),
            proptest::option::of(any::<u64>()),
            proptest::collection::vec(".{1,8}", 0..4),
        )
            .prop_map(|(messages, model, max_tokens, temperature, seed, stop)| {
                InferRequest {
                    model,
                    max_tokens,
                    temperature,
                    seed,
                    stop,
                    ..InferRequest::new(messages)
                }
            })
    }

    fn frame() -> impl Strategy<Value = InferFrame> {
        prop_oneof![
            (".{0,40}", any::<u32>()).prop_map(|(model, prompt_tokens)| InferFrame::Start {
                model,
                prompt_tokens
            }),
            ".{0,64}".prop_map(|text| InferFrame::Token { text }),
            ("stop|length|cancelled", any::<u32>()).prop_map(|(finish_reason, n)| {
                InferFrame::Done {
                    finish_reason,
                    completion_tokens: n,
                }
            }),
            ".{0,100}".prop_map(|m| InferFrame::error(ErrorCode::Busy, m)),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(req in request()) {
            let bytes = encode(&req, MAX_REQUEST_BYTES).unwrap();
            let back: Vec<InferRequest> = read_all(&bytes, MAX_REQUEST_BYTES).unwrap();
            prop_assert_eq!(back, vec![req]);
        }

        #[test]
        fn frame_sequences_round_trip(frames in proptest::collection::vec(frame(), 0..16)) {
            let mut bytes = Vec::new();
            for f in &frames {
                bytes.extend(encode(f, MAX_FRAME_BYTES).unwrap());
            }
            let back: Vec<InferFrame> = read_all(&bytes, MAX_FRAME_BYTES).unwrap();
            prop_assert_eq!(back, frames);
        }

        /// Any byte string gives a frame, a clean end or an error: never a panic, and
        /// never a read of more than the bound.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_all::<InferRequest>(&bytes, 128);
            let _ = read_all::<InferFrame>(&bytes, 128);
        }

        /// Cutting a valid stream anywhere inside a frame is reported as truncated.
        #[test]
        fn truncation_is_detected(req in request(), cut in 1usize..64) {
            let bytes = encode(&req, MAX_REQUEST_BYTES).unwrap();
            let cut = cut.min(bytes.len() - 1);
            let r = read_all::<InferRequest>(&bytes[..cut], MAX_REQUEST_BYTES);
            prop_assert!(matches!(r, Err(CodecError::Truncated)), "{:?}", r.map(|v| v.len()));
        }
    }

    #[test]
    fn oversize_prefix_is_refused_before_the_payload() {
        let mut bytes = (u32::MAX).to_be_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        match read_all::<InferRequest>(&bytes, MAX_REQUEST_BYTES) {
            Err(CodecError::TooLarge { size, limit }) => {
                assert_eq!(size, u32::MAX as usize);
                assert_eq!(limit, MAX_REQUEST_BYTES);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let big = InferRequest::new(vec![InferMessage {
            role: "user".into(),
            content: "x".repeat(MAX_REQUEST_BYTES),
        }]);
        assert!(matches!(
            encode(&big, MAX_REQUEST_BYTES),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn unknown_fields_and_versions_are_refused() {
        let body = br#"{"v":1,"messages":[{"role":"user","content":"hi"}],"evil":true}"#;
        assert!(matches!(
            decode::<InferRequest>(body),
            Err(CodecError::Malformed(_))
        ));
        let mut req = InferRequest::new(vec![InferMessage {
            role: "user".into(),
            content: "hi".into(),
        }]);
        assert!(req.validate().is_ok());
        req.v = 2;
        assert!(matches!(
            req.validate(),
            Err(InferFrame::Error {
                code: ErrorCode::Version,
                ..
            })
        ));
        req.v = 1;
        req.messages[0].role = "root".into();
        assert!(matches!(
            req.validate(),
            Err(InferFrame::Error {
                code: ErrorCode::BadRequest,
                ..
            })
        ));
        req.messages.clear();
        assert!(req.validate().is_err());
    }

    fn started() -> AnswerGuard {
        let mut req = InferRequest::new(vec![]);
        req.max_tokens = Some(3);
        let mut g = AnswerGuard::new(AnswerLimits::for_request(&req));
        g.check(&InferFrame::Start {
            model: "m".into(),
            prompt_tokens: 1,
        })
        .unwrap();
        g
    }

    #[test]
    fn answers_are_bounded_by_max_tokens_and_order() {
        let tok = || InferFrame::Token { text: "a".into() };
        let mut g = started();
        for _ in 0..4 {
            g.check(&tok()).unwrap();
        }
        let e = g.check(&tok()).unwrap_err();
        assert!(e.contains("max_tokens"), "{e}");

        let mut g = started();
        let e = g
            .check(&InferFrame::Token {
                text: "x".repeat(4 * MAX_TEXT_BYTES_PER_TOKEN + 1),
            })
            .unwrap_err();
        assert!(e.contains("bytes"), "{e}");

        let mut g = started();
        assert!(g.check(&started_frame()).unwrap_err().contains("twice"));
        let mut g = AnswerGuard::new(AnswerLimits::for_request(&InferRequest::new(vec![])));
        assert!(g.check(&tok()).unwrap_err().contains("start"));
        let mut g = started();
        let done = InferFrame::Done {
            finish_reason: "stop".into(),
            completion_tokens: 1,
        };
        g.check(&done).unwrap();
        assert!(g.check(&tok()).unwrap_err().contains("after the end"));
        // A refusal needs no start.
        let mut g = AnswerGuard::new(AnswerLimits::for_request(&InferRequest::new(vec![])));
        g.check(&InferFrame::error(ErrorCode::Busy, "busy"))
            .unwrap();
    }

    fn started_frame() -> InferFrame {
        InferFrame::Start {
            model: "m".into(),
            prompt_tokens: 1,
        }
    }

    #[test]
    fn error_messages_are_bounded() {
        let f = InferFrame::error(ErrorCode::Internal, "é".repeat(10_000));
        let InferFrame::Error { message, .. } = &f else {
            panic!()
        };
        assert!(message.len() <= 4096);
        assert!(encode(&f, MAX_FRAME_BYTES).is_ok());
    }
}
