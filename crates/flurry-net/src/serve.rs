//! The serving side of `/flurry/infer/1`: admission (circle membership, per-peer rate and
//! concurrency, a global cap), reading the request within a deadline, and streaming the
//! node's answer back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream};
use tokio::sync::{Semaphore, mpsc};

use crate::infer::{self, CodecError, ErrorCode, InferFrame, InferRequest};
use crate::{Allowed, Inbound, NetConfig};

/// A frame the peer does not read within this time ends the stream.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeLimits {
    per_minute: u32,
    per_peer: usize,
    total: usize,
}

impl From<&NetConfig> for ServeLimits {
    fn from(c: &NetConfig) -> Self {
        Self {
            per_minute: c.infer_per_minute.max(1),
            per_peer: c.infer_concurrent_per_peer.max(1),
            total: c.infer_concurrent.max(1),
        }
    }
}

/// A token bucket (capacity and refill: `per_minute`) and a count of running requests.
#[derive(Debug)]
struct PeerRate {
    tokens: f64,
    last: Instant,
    active: usize,
}

type Rates = Arc<Mutex<HashMap<PeerId, PeerRate>>>;

/// Gives the peer's concurrency slot back when the request ends.
struct Slot {
    rates: Rates,
    peer: PeerId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut r) = self.rates.lock()
            && let Some(p) = r.get_mut(&self.peer)
        {
            p.active = p.active.saturating_sub(1);
        }
    }
}

fn admit(rates: &Rates, peer: PeerId, limits: ServeLimits) -> Result<Slot, InferFrame> {
    let mut map = rates
        .lock()
        .map_err(|_| InferFrame::error(ErrorCode::Internal, "rate table poisoned"))?;
    let now = Instant::now();
    let cap = f64::from(limits.per_minute);
    let p = map.entry(peer).or_insert(PeerRate {
        tokens: cap,
        last: now,
        active: 0,
    });
    p.tokens = (p.tokens + now.duration_since(p.last).as_secs_f64() * cap / 60.0).min(cap);
    p.last = now;
    if p.active >= limits.per_peer {
        return Err(InferFrame::error(
            ErrorCode::RateLimited,
            format!(
                "{} requests from you are already running here (the limit is {}); wait for one to finish",
                p.active, limits.per_peer
            ),
        ));
    }
    if p.tokens < 1.0 {
        let wait = ((1.0 - p.tokens) * 60.0 / cap).ceil();
        return Err(InferFrame::error(
            ErrorCode::RateLimited,
            format!(
                "more than {} requests per minute from you; try again in {wait} s",
                limits.per_minute
            ),
        ));
    }
    p.tokens -= 1.0;
    p.active += 1;
    Ok(Slot {
        rates: rates.clone(),
        peer,
    })
}

/// Accepts inbound streams until the swarm stops.
pub(crate) async fn accept(
    mut incoming: libp2p_stream::IncomingStreams,
    allowed: Allowed,
    limits: ServeLimits,
    inbound: mpsc::Sender<Inbound>,
) {
    let total = Arc::new(Semaphore::new(limits.total));
    let rates: Rates = Arc::default();
    while let Some((peer, stream)) = incoming.next().await {
        let name = allowed.read().ok().and_then(|a| a.get(&peer).cloned());
        let admission = match name {
            None => Err(InferFrame::error(
                ErrorCode::Unauthorised,
                format!(
                    "you ({peer}) are not in this node's trusted circle; ask its owner to run `flurry circle add {peer}`"
                ),
            )),
            Some(name) => match total.clone().try_acquire_owned() {
                Err(_) => Err(InferFrame::error(
                    ErrorCode::Busy,
                    format!(
                        "this node is serving {} requests already; try again shortly",
                        limits.total
                    ),
                )),
                Ok(permit) => admit(&rates, peer, limits).map(|slot| (name, slot, permit)),
            },
        };
        let inbound = inbound.clone();
        tokio::spawn(async move {
            match admission {
                Err(frame) => {
                    tracing::info!(%peer, ?frame, "inference request refused");
                    refuse(stream, frame).await;
                }
                Ok((name, slot, permit)) => {
                    serve(peer, name, stream, inbound).await;
                    drop((slot, permit));
                }
            }
        });
    }
}

async fn refuse(mut stream: Stream, frame: InferFrame) {
    let _ = tokio::time::timeout(
        WRITE_TIMEOUT,
        infer::write_frame(&mut stream, &frame, infer::MAX_FRAME_BYTES),
    )
    .await;
    let _ = stream.close().await;
}

async fn serve(peer: PeerId, name: String, mut stream: Stream, inbound: mpsc::Sender<Inbound>) {
    let read = tokio::time::timeout(
        infer::REQUEST_TIMEOUT,
        infer::read_frame::<_, InferRequest>(&mut stream, infer::MAX_REQUEST_BYTES),
    )
    .await;
    let request = match read {
        Err(_) => {
            return refuse(
                stream,
                InferFrame::error(
                    ErrorCode::Timeout,
                    format!(
                        "the request did not arrive within {} s",
                        infer::REQUEST_TIMEOUT.as_secs()
                    ),
                ),
            )
            .await;
        }
        Ok(Ok(None) | Err(CodecError::Truncated | CodecError::Io(_))) => {
            let _ = stream.close().await;
            return;
        }
        Ok(Err(e @ CodecError::TooLarge { .. })) => {
            return refuse(
                stream,
                InferFrame::error(ErrorCode::TooLarge, e.to_string()),
            )
            .await;
        }
        Ok(Err(e @ CodecError::Malformed(_))) => {
            return refuse(
                stream,
                InferFrame::error(ErrorCode::BadRequest, e.to_string()),
            )
            .await;
        }
        Ok(Ok(Some(r))) => r,
    };
    if let Err(frame) = request.validate() {
        return refuse(stream, frame).await;
    }
    let (tx, mut rx) = mpsc::channel(32);
    let job = Inbound {
        peer_id: peer.to_string(),
        name,
        request,
        reply: tx,
        commit: None,
    };
    if let Err(e) = inbound.try_send(job) {
        let frame = match e {
            mpsc::error::TrySendError::Full(_) => InferFrame::error(
                ErrorCode::Busy,
                "this node has too many requests waiting; try again shortly",
            ),
            mpsc::error::TrySendError::Closed(_) => InferFrame::error(
                ErrorCode::Internal,
                "this node does not serve inference now",
            ),
        };
        return refuse(stream, frame).await;
    }
    // The client keeps its side of the stream open until the answer ends: reading
    // end-of-stream (or anything) from it means it has gone, and the work is cancelled
    // by dropping `rx`.
    let (mut rd, mut wr) = futures_util::AsyncReadExt::split(stream);
    let mut probe = [0u8; 1];
    loop {
        let frame = tokio::select! {
            f = rx.recv() => f.unwrap_or_else(|| {
                InferFrame::error(ErrorCode::Internal, "the answer ended unexpectedly")
            }),
            _ = futures_util::AsyncReadExt::read(&mut rd, &mut probe) => {
                tracing::info!(%peer, "the peer closed the stream; cancelling its request");
                return;
            }
        };
        let last = frame.is_last();
        let sent = tokio::time::timeout(
            WRITE_TIMEOUT,
            infer::write_frame(&mut wr, &frame, infer::MAX_FRAME_BYTES),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            tracing::info!(%peer, "the peer stopped reading the answer; cancelling");
            return;
        }
        if last {
            let _ = wr.close().await;
            return;
        }
    }
}
