//! `/flurry/model/1`: the wire format of model transfers.
//!
//! A puller opens one stream per provider and sends requests on it one after another;
//! each gets one answer. Every message is a 4-byte big-endian length, then a one-byte
//! kind, then its payload:
//!
//! | kind | from | payload |
//! |---|---|---|
//! | 1 `layer?` | puller | the ModelId (32 bytes) |
//! | 2 `piece?` | puller | the ModelId (32 bytes), the piece index (8 bytes, big-endian) |
//! | 3 `layer` | server | [`crate::Layer::to_bytes`] |
//! | 4 `piece` | server | the piece's bytes |
//! | 5 `error` | server | JSON [`Refusal`] (`code`, `message`) |
//!
//! Requests are 41 bytes at most, a piece 1 MiB, a layer 4 MiB; anything longer is
//! refused before it is read.

use flurry_primitives::ModelId;
use futures_util::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::{Deserialize, Serialize};

use crate::pieces::{Layer, MAX_PIECES, PIECE};

/// The protocol's name.
pub const MODEL_PROTOCOL: &str = "/flurry/model/1";

/// A request's bytes, at most (kind, id, index).
pub const MAX_REQUEST: usize = 1 + 32 + 8;
/// A refusal's JSON, at most.
pub const MAX_REFUSAL: usize = 1024;

/// What a puller asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// The piece layer of a model.
    Layer(ModelId),
    /// One piece of a model.
    Piece(ModelId, u64),
}

/// Why a server does not answer a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    /// `not_published`, `busy`, `not_allowed`, `bad_request`, `unavailable`.
    pub code: String,
    /// For people.
    pub message: String,
}

/// What a server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The layer.
    Layer(Layer),
    /// A piece's bytes.
    Piece(Vec<u8>),
    /// A refusal.
    Refused(Refusal),
}

/// A frame that breaks the protocol.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Longer than this place allows.
    #[error("a {size}-byte message where {limit} bytes are the most")]
    TooLarge {
        /// Its length.
        size: usize,
        /// The bound.
        limit: usize,
    },
    /// Unknown kind or bad payload.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The stream failed or ended inside a message.
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
}

const LAYER_Q: u8 = 1;
const PIECE_Q: u8 = 2;
const LAYER_A: u8 = 3;
const PIECE_A: u8 = 4;
const ERROR_A: u8 = 5;

async fn write_msg<W: AsyncWrite + Unpin>(w: &mut W, kind: u8, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len() + 1).map_err(std::io::Error::other)?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(&[kind]).await?;
    w.write_all(body).await?;
    w.flush().await
}

/// Reads one message (kind and payload); `Ok(None)` at a clean end of stream.
async fn read_msg<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> Result<Option<(u8, Vec<u8>)>, WireError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(WireError::Malformed(
                    "the stream ended inside a length".into(),
                ))
            };
        }
        got += n;
    }
    let size = u32::from_be_bytes(len) as usize;
    if size > limit {
        return Err(WireError::TooLarge { size, limit });
    }
    if size == 0 {
        return Err(WireError::Malformed("an empty message".into()));
    }
    let mut body = vec![0u8; size];
    r.read_exact(&mut body).await?;
    let kind = body.remove(0);
    Ok(Some((kind, body)))
}

/// Writes a request.
///
/// # Errors
/// When the stream fails.
pub async fn write_request<W: AsyncWrite + Unpin>(w: &mut W, q: &Request) -> std::io::Result<()> {
    match q {
        Request::Layer(m) => write_msg(w, LAYER_Q, m.as_bytes()).await,
        Request::Piece(m, i) => {
            let mut b = m.as_bytes().to_vec();
            b.extend_from_slice(&i.to_be_bytes());
            write_msg(w, PIECE_Q, &b).await
        }
    }
}

/// Reads a request; `Ok(None)` when the puller closed the stream.
///
/// # Errors
/// An oversized or malformed request, or a failed stream.
pub async fn read_request<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Request>, WireError> {
    let Some((kind, body)) = read_msg(r, MAX_REQUEST).await? else {
        return Ok(None);
    };
    let id = |b: &[u8]| -> Result<ModelId, WireError> {
        b.get(..32)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(ModelId::from_bytes)
            .ok_or_else(|| WireError::Malformed("a request without a whole ModelId".into()))
    };
    match (kind, body.len()) {
        (LAYER_Q, 32) => Ok(Some(Request::Layer(id(&body)?))),
        (PIECE_Q, 40) => {
            let index = u64::from_be_bytes(body[32..].try_into().expect("8 bytes"));
            Ok(Some(Request::Piece(id(&body)?, index)))
        }
        _ => Err(WireError::Malformed(format!(
            "request kind {kind} with {} bytes",
            body.len()
        ))),
    }
}

/// Writes an answer.
///
/// # Errors
/// When the stream fails.
pub async fn write_answer<W: AsyncWrite + Unpin>(w: &mut W, a: &Answer) -> std::io::Result<()> {
    match a {
        Answer::Layer(l) => write_msg(w, LAYER_A, &l.to_bytes()).await,
        Answer::Piece(b) => write_msg(w, PIECE_A, b).await,
        Answer::Refused(r) => {
            let mut json = serde_json::to_vec(r).map_err(std::io::Error::other)?;
            json.truncate(MAX_REFUSAL);
            write_msg(w, ERROR_A, &json).await
        }
    }
}

/// Reads the answer to `q`: a layer (no longer than [`MAX_PIECES`] values), a piece (no
/// longer than `piece_len`, the length the layer gives it) or a refusal.
///
/// # Errors
/// An answer of the wrong kind or size, or a failed stream.
pub async fn read_answer<R: AsyncRead + Unpin>(
    r: &mut R,
    q: &Request,
    piece_len: usize,
) -> Result<Answer, WireError> {
    let limit = match q {
        Request::Layer(_) => 1 + Layer::encoded_len(MAX_PIECES),
        Request::Piece(..) => 1 + piece_len.min(PIECE as usize),
    }
    .max(1 + MAX_REFUSAL);
    let Some((kind, body)) = read_msg(r, limit).await? else {
        return Err(WireError::Malformed(
            "the stream ended before the answer".into(),
        ));
    };
    match (kind, q) {
        (LAYER_A, Request::Layer(_)) => Layer::from_bytes(&body)
            .map(Answer::Layer)
            .ok_or_else(|| WireError::Malformed("a layer that is not whole hashes".into())),
        (PIECE_A, Request::Piece(..)) => {
            if body.len() == piece_len {
                Ok(Answer::Piece(body))
            } else {
                Err(WireError::Malformed(format!(
                    "a piece of {} bytes where {piece_len} were due",
                    body.len()
                )))
            }
        }
        (ERROR_A, _) if body.len() <= MAX_REFUSAL => serde_json::from_slice(&body)
            .map(Answer::Refused)
            .map_err(|e| WireError::Malformed(format!("refusal: {e}"))),
        _ => Err(WireError::Malformed(format!("answer kind {kind} to {q:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::io::Cursor;

    #[tokio::test]
    async fn requests_and_answers_round_trip_and_hostile_frames_are_refused() {
        let id = ModelId::from_bytes([9; 32]);
        for q in [Request::Layer(id), Request::Piece(id, 77)] {
            let mut buf = Vec::new();
            write_request(&mut buf, &q).await.unwrap();
            let got = read_request(&mut Cursor::new(buf)).await.unwrap();
            assert_eq!(got, Some(q));
        }
        // An oversized length is refused before any body is read.
        let mut huge = u32::MAX.to_be_bytes().to_vec();
        huge.push(LAYER_Q);
        assert!(matches!(
            read_request(&mut Cursor::new(huge)).await,
            Err(WireError::TooLarge { .. })
        ));
        // Unknown kinds, short ids, empty and truncated messages.
        for bad in [
            vec![0, 0, 0, 33, 9],
            vec![0, 0, 0, 5, LAYER_Q, 1, 2, 3, 4],
            vec![0, 0, 0, 0],
            vec![0, 0],
        ] {
            assert!(read_request(&mut Cursor::new(bad)).await.is_err());
        }
        // A piece longer than the layer says is refused; so is an answer of the wrong kind.
        let q = Request::Piece(id, 0);
        let mut buf = Vec::new();
        write_answer(&mut buf, &Answer::Piece(vec![1; 100]))
            .await
            .unwrap();
        assert!(
            read_answer(&mut Cursor::new(buf.clone()), &q, 99)
                .await
                .is_err()
        );
        assert_eq!(
            read_answer(&mut Cursor::new(buf.clone()), &q, 100)
                .await
                .unwrap(),
            Answer::Piece(vec![1; 100])
        );
        assert!(
            read_answer(&mut Cursor::new(buf), &Request::Layer(id), 0)
                .await
                .is_err()
        );
        let refusal = Answer::Refused(Refusal {
            code: "busy".into(),
            message: "later".into(),
        });
        let mut buf = Vec::new();
        write_answer(&mut buf, &refusal).await.unwrap();
        assert_eq!(
            read_answer(&mut Cursor::new(buf), &q, 100).await.unwrap(),
            refusal
        );
    }
}
