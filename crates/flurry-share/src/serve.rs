//! The serving side: the shelf of published models and the `/flurry/model/1` loop.
//!
//! Only what is on the shelf is served, by ModelId, never a path. Each piece is read
//! and checked against the layer before it is sent, so a file changed on disk after
//! publishing is taken off the shelf instead of being spread. Streams served at once
//! are bounded (others are told `busy`), each peer's bytes are paced to a rate
//! (`bytes_per_peer_per_min`), and a silent stream is closed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use flurry_net::{Incoming, PeerStream};
use flurry_primitives::ModelId;
use tokio::sync::Semaphore;

use crate::pieces::Layer;
use crate::proto::{self, Answer, Refusal, Request};

/// Models on a shelf, at most.
pub const MAX_SHELF: usize = 1024;
/// Peers whose pace is tracked at once; beyond it, idle ones are forgotten.
const MAX_METERED: usize = 4096;

/// Limits on serving.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Streams served at once (all peers together).
    pub concurrent: usize,
    /// Bytes a peer may take per minute; 0 for no limit.
    pub bytes_per_peer_per_min: u64,
    /// A stream with no request for this long is closed.
    pub idle: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            concurrent: 8,
            bytes_per_peer_per_min: 1 << 30,
            idle: Duration::from_secs(30),
        }
    }
}

/// A published model.
#[derive(Debug, Clone)]
pub struct Shelved {
    /// Its name in the announcement.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// Its piece layer.
    pub layer: Arc<Layer>,
}

/// The models this node serves.
#[derive(Debug, Default)]
pub struct Shelf {
    models: RwLock<HashMap<ModelId, Shelved>>,
}

impl Shelf {
    /// Puts a model on the shelf; `false` when the shelf is full.
    pub fn put(&self, id: ModelId, s: Shelved) -> bool {
        let mut m = self.models.write().expect("shelf lock");
        if m.len() >= MAX_SHELF && !m.contains_key(&id) {
            return false;
        }
        m.insert(id, s);
        true
    }

    /// Takes a model off; whether it was there.
    pub fn remove(&self, id: &ModelId) -> bool {
        self.models
            .write()
            .expect("shelf lock")
            .remove(id)
            .is_some()
    }

    /// A model on the shelf.
    pub fn get(&self, id: &ModelId) -> Option<Shelved> {
        self.models.read().expect("shelf lock").get(id).cloned()
    }

    /// Every model on the shelf.
    pub fn list(&self) -> Vec<(ModelId, Shelved)> {
        let mut v: Vec<_> = self
            .models
            .read()
            .expect("shelf lock")
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        v.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        v
    }
}

/// Whether a peer may pull from this node (e.g. only circle members).
pub type Admit = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Paces each peer's bytes: a bucket that may go into debt, and the taker sleeps the
/// debt off, so concurrent streams of one peer share its rate.
#[derive(Debug)]
struct Meter {
    per_sec: f64,
    burst: f64,
    peers: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Meter {
    fn new(per_min: u64) -> Self {
        let per_sec = per_min as f64 / 60.0;
        Self {
            per_sec,
            burst: per_sec.min(crate::pieces::PIECE as f64),
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// How long `peer` must wait before it gets `n` more bytes.
    fn take(&self, peer: &str, n: u64) -> Duration {
        if self.per_sec <= 0.0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut peers = self.peers.lock().expect("meter lock");
        if peers.len() >= MAX_METERED && !peers.contains_key(peer) {
            let (per_sec, burst) = (self.per_sec, self.burst);
            peers.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_sec < burst
            });
        }
        let (tokens, at) = peers.entry(peer.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        *tokens -= n as f64;
        if *tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-*tokens / self.per_sec)
        }
    }
}

/// Serves `/flurry/model/1` streams until the swarm stops.
pub async fn serve(mut incoming: Incoming, shelf: Arc<Shelf>, limits: ServeLimits, admit: Admit) {
    let slots = Arc::new(Semaphore::new(limits.concurrent.max(1)));
    let meter = Arc::new(Meter::new(limits.bytes_per_peer_per_min));
    while let Some((peer, mut stream)) = incoming.next().await {
        if !admit(&peer) {
            tokio::spawn(async move {
                turn_away(
                    &mut stream,
                    "not_allowed",
                    "this node shares models with its circle only",
                )
                .await;
            });
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                turn_away(
                    &mut stream,
                    "busy",
                    "this node is serving as many transfers as it allows; try again later",
                )
                .await;
            });
            continue;
        };
        let (shelf, meter, idle) = (shelf.clone(), meter.clone(), limits.idle);
        tokio::spawn(async move {
            if let Err(e) = session(&peer, &mut stream, &shelf, &meter, idle).await {
                tracing::debug!(%peer, "model transfer ended: {e}");
            }
            drop(slot);
        });
    }
}

/// Refuses a stream before serving it: takes its first request (so the puller's write
/// succeeds and it reads why), answers the refusal and closes, all within seconds.
async fn turn_away(stream: &mut PeerStream, code: &str, message: &str) {
    use futures_util::AsyncWriteExt;
    let grace = Duration::from_secs(5);
    let _ = tokio::time::timeout(grace, proto::read_request(stream)).await;
    refuse(stream, code, message).await;
    let _ = tokio::time::timeout(grace, stream.close()).await;
}

async fn refuse(stream: &mut PeerStream, code: &str, message: &str) {
    let r = Answer::Refused(Refusal {
        code: code.into(),
        message: message.into(),
    });
    let _ = tokio::time::timeout(Duration::from_secs(5), proto::write_answer(stream, &r)).await;
}

async fn session(
    peer: &str,
    stream: &mut PeerStream,
    shelf: &Shelf,
    meter: &Meter,
    idle: Duration,
) -> Result<(), proto::WireError> {
    loop {
        let q = match tokio::time::timeout(idle, proto::read_request(stream)).await {
            Err(_) | Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => {
                refuse(stream, "bad_request", &e.to_string()).await;
                return Err(e);
            }
            Ok(Ok(Some(q))) => q,
        };
        let answer = answer(peer, &q, shelf, meter).await;
        proto::write_answer(stream, &answer).await?;
    }
}

fn refusal(code: &str, message: String) -> Answer {
    Answer::Refused(Refusal {
        code: code.into(),
        message,
    })
}

async fn answer(peer: &str, q: &Request, shelf: &Shelf, meter: &Meter) -> Answer {
    let model = match q {
        Request::Layer(m) | Request::Piece(m, _) => *m,
    };
    let Some(s) = shelf.get(&model) else {
        return refusal(
            "not_published",
            format!("model {model} is not published here"),
        );
    };
    let Request::Piece(_, index) = *q else {
        return Answer::Layer((*s.layer).clone());
    };
    if index >= s.layer.pieces() {
        return refusal(
            "bad_request",
            format!(
                "model {model} has {} pieces, not {}",
                s.layer.pieces(),
                index + 1
            ),
        );
    }
    let (at, len) = s.layer.range(index);
    tokio::time::sleep(meter.take(peer, len)).await;
    let (path, layer) = (s.path.clone(), s.layer.clone());
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Option<Vec<u8>>> {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open(&path)?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact_at(&mut buf, at)?;
        Ok(layer.holds(index, &buf).then_some(buf))
    })
    .await;
    match read {
        Ok(Ok(Some(bytes))) => Answer::Piece(bytes),
        Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
            tracing::warn!(%model, path = %s.path.display(), "a published model changed on disk: it is no longer served");
            shelf.remove(&model);
            refusal(
                "unavailable",
                format!("model {model} is no longer served here"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_paces_each_peer_to_its_rate_and_forgets_idle_peers() {
        let m = Meter::new(60 << 20); // 1 MiB/s
        assert_eq!(
            m.take("a", 1 << 20),
            Duration::ZERO,
            "the first piece is the burst"
        );
        let wait = m.take("a", 1 << 20);
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        let wait = m.take("a", 1 << 20);
        assert!(wait > Duration::from_millis(1900), "debts add up: {wait:?}");
        assert_eq!(
            m.take("b", 1 << 20),
            Duration::ZERO,
            "another peer has its own rate"
        );
        assert_eq!(
            Meter::new(0).take("a", u64::MAX),
            Duration::ZERO,
            "no limit"
        );
    }
}
