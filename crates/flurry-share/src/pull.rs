//! The pulling side: one model from several peers at once, every piece checked.
//!
//! 1. The layer comes from the first source whose layer adds up to the ModelId (one that
//!    sends a layer that does not is banned).
//! 2. The partial file (`<dir>/<ModelId>.part`) is read back and every piece already in
//!    it is checked, so a pull that was cut off resumes from what is verified on disk;
//!    nothing else is trusted, not even a record of our own.
//! 3. Each source gets a worker with one stream and two requests in flight. Workers take
//!    the next missing piece, so a faster peer serves more of the file (fastest-first:
//!    every publisher holds the whole file, so rarest-first would gain nothing). When no
//!    piece is left to hand out, idle workers ask for pieces still in flight elsewhere
//!    (endgame), so one slow peer cannot hold the last percent.
//! 4. A piece that does not match the layer bans its sender for an hour and goes back to
//!    the others; a peer that refuses, stalls or drops gives its pieces back and leaves.
//!
//! The caller lands the file once every piece is verified: the pieces add up to the
//! root, so the file's BLAKE3 is the ModelId.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flurry_net::Net;
use flurry_primitives::ModelId;
use serde::Serialize;

use crate::pieces::Layer;
use crate::proto::{self, Answer, MODEL_PROTOCOL, Request};

/// Requests a worker keeps in flight on its stream.
const DEPTH: usize = 2;
/// Workers at once; more sources wait as spares.
pub const MAX_WORKERS: usize = 8;
/// How long an answer may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// New connections to a source that dropped after serving pieces, at most.
const MAX_RETRIES: u32 = 3;
/// How long a peer that sent bad bytes stays banned.
pub const BAN: Duration = Duration::from_secs(3600);

/// A peer that may have the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its peer id.
    pub peer: String,
    /// Addresses to dial (empty: the DHT's).
    pub addrs: Vec<String>,
}

/// What a pull reports as it goes.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    /// The layer is in and checked; `resumed` bytes were verified on disk already.
    Layer {
        /// The model's size.
        total: u64,
        /// Pieces in it.
        pieces: u64,
        /// Bytes already verified on disk.
        resumed: u64,
    },
    /// A piece arrived and was verified.
    Bytes {
        /// Bytes verified (resumed ones included).
        done: u64,
        /// The model's size.
        total: u64,
        /// Bytes per second downloaded in this pull.
        rate: f64,
        /// Peers serving now.
        peers: usize,
        /// Seconds left at this rate.
        eta_secs: Option<f64>,
    },
    /// A peer was dropped.
    Dropped {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
        /// Whether it was banned (it sent bytes that do not match).
        banned: bool,
    },
}

/// A pull that completed: every piece of the partial file is verified.
#[derive(Debug, Clone, Serialize)]
pub struct Pulled {
    /// The partial file, now whole.
    #[serde(skip)]
    pub path: PathBuf,
    /// The model.
    pub model: ModelId,
    /// Its size.
    pub bytes: u64,
    /// Bytes found verified on disk at the start.
    pub resumed: u64,
    /// Bytes received in this pull (duplicates of the endgame included).
    pub downloaded: u64,
    /// Verified bytes each peer gave.
    pub from: BTreeMap<String, u64>,
    /// Peers banned for bad bytes.
    pub banned: Vec<String>,
    /// Wall-clock seconds.
    pub secs: f64,
}

/// Why a pull did not complete.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Nobody to pull from.
    #[error(
        "no peer is known to have model {0}: ask its publisher for their peer id and use --from PEER"
    )]
    NoSources(ModelId),
    /// No source gave a layer that adds up.
    #[error("no peer sent the piece hashes of model {model} ({reasons})")]
    NoLayer {
        /// The model.
        model: ModelId,
        /// What each source said.
        reasons: String,
    },
    /// Every source left before the end.
    #[error(
        "the pull of model {model} stopped at {done} of {total} bytes ({reasons}); the verified part is kept, so pulling again resumes from it"
    )]
    Stalled {
        /// The model.
        model: ModelId,
        /// Bytes verified.
        done: u64,
        /// Its size.
        total: u64,
        /// What each source said.
        reasons: String,
    },
    /// The partial file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Reports progress (called from the workers' tasks).
pub type OnProgress = Arc<dyn Fn(Progress) + Send + Sync>;

#[derive(Debug)]
struct Sched {
    todo: VecDeque<u64>,
    in_flight: HashMap<u64, usize>,
    have: Vec<bool>,
    left: u64,
    done_bytes: u64,
    workers: usize,
    from: BTreeMap<String, u64>,
    banned: Vec<String>,
    reasons: Vec<String>,
}

impl Sched {
    /// The next piece for a worker that is not already fetching `busy`.
    fn next(&mut self, busy: &VecDeque<u64>) -> Option<u64> {
        while let Some(i) = self.todo.pop_front() {
            if !self.have[i as usize] {
                *self.in_flight.entry(i).or_default() += 1;
                return Some(i);
            }
        }
        // Endgame: the least-requested piece still in flight.
        let (&i, _) = self
            .in_flight
            .iter()
            .filter(|(i, _)| !busy.contains(*i) && !self.have[**i as usize])
            .min_by_key(|(i, n)| (**n, **i))?;
        *self.in_flight.get_mut(&i).expect("in flight") += 1;
        Some(i)
    }

    /// A worker gives a piece back unfetched.
    fn give_back(&mut self, i: u64) {
        if let Some(n) = self.in_flight.get_mut(&i) {
            *n -= 1;
            if *n == 0 {
                self.in_flight.remove(&i);
                if !self.have[i as usize] {
                    self.todo.push_front(i);
                }
            }
        }
    }
}

struct Shared {
    model: ModelId,
    layer: Arc<Layer>,
    file: Arc<File>,
    sched: Mutex<Sched>,
    downloaded: AtomicU64,
    started: Instant,
    progress: OnProgress,
    net: Net,
}

/// Pulls `model` from `sources` into `<dir>/<model>.part`.
///
/// # Errors
/// See [`PullError`]; the verified part of the file stays for the next try.
pub async fn pull(
    net: &Net,
    model: ModelId,
    sources: Vec<Source>,
    dir: &Path,
    progress: OnProgress,
) -> Result<Pulled, PullError> {
    if sources.is_empty() {
        return Err(PullError::NoSources(model));
    }
    let started = Instant::now();
    let mut reasons = Vec::new();
    let mut layer = None;
    for s in &sources {
        match fetch_layer(net, s, model).await {
            Ok(l) => {
                layer = Some(l);
                break;
            }
            Err((reason, ban)) => {
                if ban {
                    net.ban(&s.peer, BAN).await;
                }
                progress(Progress::Dropped {
                    peer: s.peer.clone(),
                    reason: reason.clone(),
                    banned: ban,
                });
                reasons.push(format!("{}: {reason}", short(&s.peer)));
            }
        }
    }
    let Some(layer) = layer else {
        return Err(PullError::NoLayer {
            model,
            reasons: reasons.join("; "),
        });
    };
    let layer = Arc::new(layer);
    let path = dir.join(format!("{model}.part"));
    let io = |source| PullError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let (file, have) = {
        let (path, layer) = (path.clone(), layer.clone());
        tokio::task::spawn_blocking(move || open_partial(&path, &layer))
            .await
            .map_err(|e| io(std::io::Error::other(e)))?
            .map_err(io)?
    };
    let resumed: u64 = (0..layer.pieces())
        .filter(|i| have[*i as usize])
        .map(|i| layer.range(i).1)
        .sum();
    progress(Progress::Layer {
        total: layer.len,
        pieces: layer.pieces(),
        resumed,
    });
    let todo: VecDeque<u64> = (0..layer.pieces()).filter(|i| !have[*i as usize]).collect();
    let shared = Arc::new(Shared {
        model,
        file: Arc::new(file),
        sched: Mutex::new(Sched {
            left: todo.len() as u64,
            todo,
            in_flight: HashMap::new(),
            have,
            done_bytes: resumed,
            workers: 0,
            from: BTreeMap::new(),
            banned: Vec::new(),
            reasons,
        }),
        layer: layer.clone(),
        downloaded: AtomicU64::new(0),
        started,
        progress: progress.clone(),
        net: net.clone(),
    });
    let mut spares: VecDeque<Source> = sources.into();
    let mut running = tokio::task::JoinSet::new();
    let mut retries: HashMap<String, u32> = HashMap::new();
    while !complete(&shared) {
        while running.len() < MAX_WORKERS {
            let Some(s) = spares.pop_front() else { break };
            shared.sched.lock().expect("sched").workers += 1;
            running.spawn(worker(shared.clone(), s));
        }
        match running.join_next().await {
            None => break,
            // A source whose connection dropped after it served pieces (a relay's
            // circuit limit, a restart) gets a new connection, a few times.
            Some(Ok(Some(again))) => {
                let n = retries.entry(again.peer.clone()).or_default();
                if *n < MAX_RETRIES {
                    *n += 1;
                    spares.push_back(again);
                }
            }
            Some(_) => {}
        }
    }
    running.abort_all();
    let sched = shared.sched.lock().expect("sched");
    if sched.left > 0 {
        return Err(PullError::Stalled {
            model,
            done: sched.done_bytes,
            total: layer.len,
            reasons: sched.reasons.join("; "),
        });
    }
    shared.file.sync_all().map_err(io)?;
    Ok(Pulled {
        path,
        model,
        bytes: layer.len,
        resumed,
        downloaded: shared.downloaded.load(Ordering::Relaxed),
        from: sched.from.clone(),
        banned: sched.banned.clone(),
        secs: started.elapsed().as_secs_f64(),
    })
}

fn complete(shared: &Shared) -> bool {
    shared.sched.lock().expect("sched").left == 0
}

fn short(peer: &str) -> &str {
    peer.get(peer.len().saturating_sub(8)..).unwrap_or(peer)
}

/// Opens (or creates) the partial file at the model's size and checks every piece in it.
fn open_partial(path: &Path, layer: &Layer) -> std::io::Result<(File, Vec<bool>)> {
    use std::os::unix::fs::FileExt;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let on_disk = f.metadata()?.len();
    if on_disk != layer.len {
        f.set_len(layer.len)?;
    }
    let mut have = vec![false; layer.pieces() as usize];
    let mut buf = vec![0u8; crate::pieces::PIECE as usize];
    for (i, h) in have.iter_mut().enumerate() {
        let (at, len) = layer.range(i as u64);
        if at + len > on_disk {
            break;
        }
        let b = &mut buf[..len as usize];
        f.read_exact_at(b, at)?;
        *h = layer.holds(i as u64, b);
    }
    Ok((f, have))
}

/// The layer from one source: `Err((reason, ban))`, banning a source whose layer is false.
async fn fetch_layer(net: &Net, s: &Source, model: ModelId) -> Result<Layer, (String, bool)> {
    let q = Request::Layer(model);
    let mut frame = Vec::new();
    proto::write_request(&mut frame, &q)
        .await
        .map_err(|e| (e.to_string(), false))?;
    let mut stream = net
        .open_and_send(&s.peer, &s.addrs, MODEL_PROTOCOL, &frame)
        .await
        .map_err(|e| (e.to_string(), false))?;
    match tokio::time::timeout(ANSWER_TIMEOUT, proto::read_answer(&mut stream, &q, 0)).await {
        Err(_) => Err(("no answer within a minute".into(), false)),
        Ok(Err(e)) => Err((format!("broke the protocol: {e}"), true)),
        Ok(Ok(Answer::Refused(r))) => Err((format!("{}: {}", r.code, r.message), false)),
        Ok(Ok(Answer::Layer(l))) => match l.check(&model) {
            Ok(()) => Ok(l),
            Err(e) => Err((format!("sent a false layer: {e}"), true)),
        },
        Ok(Ok(Answer::Piece(_))) => Err(("answered with a piece".into(), true)),
    }
}

/// Serves pieces from one source until none are left or the source fails; gives the
/// source back for another try when it failed without blame after serving pieces.
async fn worker(shared: Arc<Shared>, s: Source) -> Option<Source> {
    let mut served = 0u64;
    let outcome = fetch_from(&shared, &s, &mut served).await;
    let mut sched = shared.sched.lock().expect("sched");
    sched.workers -= 1;
    let again = matches!(outcome, Err((_, false))) && served > 0 && sched.left > 0;
    if let Err((reason, ban)) = outcome {
        if ban {
            sched.banned.push(s.peer.clone());
        }
        sched.reasons.push(format!("{}: {reason}", short(&s.peer)));
        drop(sched);
        if ban {
            let net = shared.net.clone();
            let peer = s.peer.clone();
            tokio::spawn(async move { net.ban(&peer, BAN).await });
        }
        (shared.progress)(Progress::Dropped {
            peer: s.peer.clone(),
            reason,
            banned: ban,
        });
    }
    again.then_some(s)
}

async fn fetch_from(
    shared: &Arc<Shared>,
    s: &Source,
    served: &mut u64,
) -> Result<(), (String, bool)> {
    let mut pending: VecDeque<u64> = VecDeque::new();
    let result = pipeline(shared, s, &mut pending, served).await;
    let mut sched = shared.sched.lock().expect("sched");
    for i in pending {
        sched.give_back(i);
    }
    result
}

async fn pipeline(
    shared: &Arc<Shared>,
    s: &Source,
    pending: &mut VecDeque<u64>,
    served: &mut u64,
) -> Result<(), (String, bool)> {
    let model = shared.model;
    let mut stream: Option<flurry_net::PeerStream> = None;
    loop {
        while pending.len() < DEPTH {
            let Some(i) = shared.sched.lock().expect("sched").next(pending) else {
                break;
            };
            pending.push_back(i);
            let mut frame = Vec::new();
            proto::write_request(&mut frame, &Request::Piece(model, i))
                .await
                .map_err(|e| (e.to_string(), false))?;
            match &mut stream {
                None => {
                    stream = Some(
                        shared
                            .net
                            .open_and_send(&s.peer, &s.addrs, MODEL_PROTOCOL, &frame)
                            .await
                            .map_err(|e| (e.to_string(), false))?,
                    );
                }
                Some(st) => {
                    use futures_util::AsyncWriteExt;
                    st.write_all(&frame)
                        .await
                        .and(st.flush().await)
                        .map_err(|e| (format!("stream: {e}"), false))?;
                }
            }
        }
        let (Some(&i), Some(st)) = (pending.front(), stream.as_mut()) else {
            return Ok(());
        };
        let q = Request::Piece(model, i);
        let (_, len) = shared.layer.range(i);
        let bytes =
            match tokio::time::timeout(ANSWER_TIMEOUT, proto::read_answer(st, &q, len as usize))
                .await
            {
                Err(_) => return Err(("no piece within a minute".into(), false)),
                Ok(Err(proto::WireError::Io(e))) => return Err((format!("stream: {e}"), false)),
                Ok(Err(e)) => return Err((format!("broke the protocol: {e}"), true)),
                Ok(Ok(Answer::Refused(r))) => {
                    return Err((format!("{}: {}", r.code, r.message), false));
                }
                Ok(Ok(Answer::Layer(_))) => {
                    return Err(("answered a piece with a layer".into(), true));
                }
                Ok(Ok(Answer::Piece(b))) => b,
            };
        pending.pop_front();
        *served += 1;
        shared
            .downloaded
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let layer = shared.layer.clone();
        let file = shared.file.clone();
        let ok = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
            use std::os::unix::fs::FileExt;
            if !layer.holds(i, &bytes) {
                return Ok(false);
            }
            file.write_all_at(&bytes, layer.range(i).0)?;
            Ok(true)
        })
        .await
        .map_err(|e| (e.to_string(), false))?;
        let ok = match ok {
            Ok(ok) => ok,
            Err(e) => {
                shared.sched.lock().expect("sched").give_back(i);
                return Err((format!("cannot write the partial file: {e}"), false));
            }
        };
        let mut sched = shared.sched.lock().expect("sched");
        if !ok {
            sched.give_back(i);
            return Err((
                format!("sent piece {i}, which does not match the model's hashes"),
                true,
            ));
        }
        if let Some(n) = sched.in_flight.get_mut(&i) {
            *n -= 1;
            if *n == 0 {
                sched.in_flight.remove(&i);
            }
        }
        if sched.have[i as usize] {
            continue; // the endgame's duplicate
        }
        sched.have[i as usize] = true;
        sched.left -= 1;
        sched.done_bytes += len;
        *sched.from.entry(s.peer.clone()).or_default() += len;
        let secs = shared.started.elapsed().as_secs_f64().max(1e-3);
        let rate = shared.downloaded.load(Ordering::Relaxed) as f64 / secs;
        let p = Progress::Bytes {
            done: sched.done_bytes,
            total: shared.layer.len,
            rate,
            peers: sched.workers,
            eta_secs: (rate > 0.0).then(|| (shared.layer.len - sched.done_bytes) as f64 / rate),
        };
        drop(sched);
        (shared.progress)(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(n: usize) -> Sched {
        Sched {
            todo: (0..n as u64).collect(),
            in_flight: HashMap::new(),
            have: vec![false; n],
            left: n as u64,
            done_bytes: 0,
            workers: 0,
            from: BTreeMap::new(),
            banned: Vec::new(),
            reasons: Vec::new(),
        }
    }

    #[test]
    fn pieces_go_out_in_order_then_the_endgame_doubles_the_ones_in_flight() {
        let mut s = sched(3);
        let a: VecDeque<u64> = [s.next(&VecDeque::new()).unwrap()].into();
        assert_eq!(a[0], 0);
        let b: VecDeque<u64> = [
            s.next(&VecDeque::new()).unwrap(),
            s.next(&VecDeque::new()).unwrap(),
        ]
        .into();
        assert_eq!(b, [1, 2]);
        // Nothing left to hand out: a worker that holds 0 gets a piece it does not hold.
        let dup = s.next(&a).unwrap();
        assert_ne!(dup, 0);
        assert_eq!(s.in_flight[&dup], 2);
        // Given back by one of its two holders, it stays in flight; by both, it is due again.
        s.give_back(dup);
        assert!(!s.todo.contains(&dup));
        s.give_back(dup);
        assert_eq!(s.todo.front(), Some(&dup));
        // A piece already had is never handed out.
        s.have[dup as usize] = true;
        let mut busy = VecDeque::new();
        busy.push_back(0);
        busy.push_back(1);
        busy.push_back(2);
        assert_eq!(s.next(&busy), None);
    }
}
