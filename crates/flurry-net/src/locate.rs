//! `/flurry/locate/1`: finding a peer by its id alone when the DHT cannot.
//!
//! Kademlia only lists peers in server mode, that is peers AutoNAT found publicly
//! reachable. A node behind NAT, or on a private network (a LAN, loopback), is a DHT
//! client and no lookup ever returns it. So every node also hands a **signed peer
//! record** (libp2p's `PeerRecord` in a `SignedEnvelope`: its addresses, relayed ones
//! included, a sequence number, the node key's signature) to its rendezvous points (its
//! bootstrap peers and relays), and a node looking for a peer asks its own rendezvous
//! points. Nobody is trusted: the record is checked by whoever stores it (signed, by the
//! peer that hands it over, bounded) and again by whoever receives it (signed by the peer
//! that was asked for).
//!
//! libp2p's rendezvous protocol registers only *confirmed external* addresses, which a
//! node on a private network never has; that is why this small protocol exists.
//!
//! One request and one answer per stream, as length-prefixed JSON frames (the codec of
//! `/flurry/infer/1`). Each side bounds what it reads, how long it waits, and how often a
//! peer may ask.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{AsyncWriteExt, StreamExt};
use libp2p::core::{PeerRecord, SignedEnvelope};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::infer::{read_frame, write_frame};

/// The protocol name.
pub const LOCATE_PROTOCOL: &str = "/flurry/locate/1";
/// Largest signed record stored or accepted (bytes of the encoded envelope).
pub const MAX_RECORD_BYTES: usize = 4096;
/// Addresses one record may carry.
pub const MAX_ADDRS: usize = 16;
/// Largest frame either side reads (a hex record and its envelope).
pub const MAX_FRAME_BYTES: usize = 2 * MAX_RECORD_BYTES + 256;
/// How long a rendezvous point keeps a record; peers register again well before.
pub const RECORD_TTL: Duration = Duration::from_secs(2 * 3600);
/// Records one rendezvous point keeps at most; when full, new peers are refused until
/// records expire (the peers already there keep their place).
pub const MAX_RECORDS: usize = 4096;
/// Requests per peer per minute a rendezvous point answers.
pub const PER_MINUTE: u32 = 30;
/// Streams served at once, from all peers.
const CONCURRENT: usize = 32;
/// A request must arrive, and an answer, within this time.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// A node registers again this often, and whenever its addresses change.
pub const REREGISTER_EVERY: Duration = Duration::from_secs(10 * 60);

/// What a node asks a rendezvous point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LocateRequest {
    /// Keep my record (hex of the signed envelope); it must be signed by the sender.
    Register {
        /// Hex of the encoded `SignedEnvelope`.
        record: String,
    },
    /// Give me the record of this peer.
    Lookup {
        /// The peer looked for.
        peer_id: String,
    },
}

/// What a rendezvous point answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LocateResponse {
    /// The record is kept for `ttl_s` seconds.
    Registered {
        /// Seconds.
        ttl_s: u64,
    },
    /// The record asked for (hex of the signed envelope).
    Found {
        /// Hex of the encoded `SignedEnvelope`.
        record: String,
    },
    /// No live record of that peer here.
    NotFound,
    /// The request was refused, and why.
    Refused {
        /// Why, in words.
        reason: String,
    },
}

/// Signs a record of `addrs` (at most [`MAX_ADDRS`]) with the node key.
///
/// # Errors
/// When the key cannot sign.
pub fn sign_record(key: &Keypair, addrs: Vec<Multiaddr>) -> Result<Vec<u8>, String> {
    let addrs: Vec<Multiaddr> = addrs.into_iter().take(MAX_ADDRS).collect();
    PeerRecord::new(key, addrs)
        .map(|r| r.into_signed_envelope().into_protobuf_encoding())
        .map_err(|e| format!("cannot sign a peer record: {e}"))
}

/// Decodes and checks a signed record: size, encoding, signature (by the key whose peer
/// id the record names), and the number of addresses.
///
/// # Errors
/// Why the record is not acceptable.
pub fn open_record(bytes: &[u8]) -> Result<PeerRecord, String> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(format!(
            "a record of {} bytes is over the {MAX_RECORD_BYTES}-byte limit",
            bytes.len()
        ));
    }
    let envelope = SignedEnvelope::from_protobuf_encoding(bytes)
        .map_err(|e| format!("not a signed envelope: {e}"))?;
    let record = PeerRecord::from_signed_envelope(envelope)
        .map_err(|e| format!("not a valid signed peer record: {e}"))?;
    if record.addresses().len() > MAX_ADDRS {
        return Err(format!(
            "a record with {} addresses is over the limit of {MAX_ADDRS}",
            record.addresses().len()
        ));
    }
    Ok(record)
}

struct Entry {
    record: Vec<u8>,
    seq: u64,
    expires: Instant,
}

/// The records a rendezvous point holds: one per peer, each for [`RECORD_TTL`], at most
/// [`MAX_RECORDS`].
#[derive(Default)]
pub(crate) struct Registry {
    entries: HashMap<PeerId, Entry>,
}

impl Registry {
    /// Keeps `record` for `from`, if it is a valid record signed by `from` and not older
    /// than the one kept.
    pub(crate) fn register(
        &mut self,
        from: PeerId,
        record: Vec<u8>,
        now: Instant,
    ) -> Result<Duration, String> {
        let r = open_record(&record)?;
        if r.peer_id() != from {
            return Err(format!(
                "the record is {}'s, not yours ({from}): a peer registers only its own",
                r.peer_id()
            ));
        }
        if let Some(e) = self.entries.get(&from)
            && e.expires > now
            && e.seq > r.seq()
        {
            return Err(format!(
                "a newer record of yours is kept here (sequence {} > {})",
                e.seq,
                r.seq()
            ));
        }
        if !self.entries.contains_key(&from) && self.entries.len() >= MAX_RECORDS {
            self.entries.retain(|_, e| e.expires > now);
            if self.entries.len() >= MAX_RECORDS {
                return Err(format!(
                    "this rendezvous point is full ({MAX_RECORDS} records); try another"
                ));
            }
        }
        self.entries.insert(
            from,
            Entry {
                record,
                seq: r.seq(),
                expires: now + RECORD_TTL,
            },
        );
        Ok(RECORD_TTL)
    }

    /// The live record of `peer`.
    pub(crate) fn lookup(&self, peer: &PeerId, now: Instant) -> Option<&[u8]> {
        self.entries
            .get(peer)
            .filter(|e| e.expires > now)
            .map(|e| e.record.as_slice())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A token bucket per peer ([`PER_MINUTE`]).
#[derive(Default)]
struct Rates(HashMap<PeerId, (f64, Instant)>);

impl Rates {
    fn take(&mut self, peer: PeerId, now: Instant) -> bool {
        let cap = f64::from(PER_MINUTE);
        if self.0.len() > 4 * MAX_RECORDS {
            // Forget peers whose bucket has long been full again.
            self.0
                .retain(|_, (_, last)| now.duration_since(*last) < Duration::from_secs(60));
        }
        let (tokens, last) = self.0.entry(peer).or_insert((cap, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * cap / 60.0).min(cap);
        *last = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }
}

/// Serves `/flurry/locate/1` until the swarm stops.
pub(crate) async fn accept(mut incoming: libp2p_stream::IncomingStreams) {
    let registry = Arc::new(Mutex::new(Registry::default()));
    let rates = Arc::new(Mutex::new(Rates::default()));
    let slots = Arc::new(Semaphore::new(CONCURRENT));
    while let Some((peer, stream)) = incoming.next().await {
        // Over the cap, the stream is dropped: the asker sees it reset.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "locate: too many streams at once; one dropped");
            continue;
        };
        let (registry, rates) = (registry.clone(), rates.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let _ = tokio::time::timeout(TIMEOUT, serve(peer, stream, &registry, &rates)).await;
        });
    }
}

async fn serve(peer: PeerId, mut stream: Stream, registry: &Mutex<Registry>, rates: &Mutex<Rates>) {
    let now = Instant::now();
    let allowed = rates.lock().is_ok_and(|mut r| r.take(peer, now));
    let answer = if allowed {
        match read_frame::<_, LocateRequest>(&mut stream, MAX_FRAME_BYTES).await {
            Ok(Some(req)) => answer(peer, req, registry, now),
            Ok(None) => return,
            Err(e) => LocateResponse::Refused {
                reason: e.to_string(),
            },
        }
    } else {
        LocateResponse::Refused {
            reason: format!("more than {PER_MINUTE} requests per minute from you; slow down"),
        }
    };
    let _ = write_frame(&mut stream, &answer, MAX_FRAME_BYTES).await;
    let _ = stream.close().await;
}

fn answer(
    peer: PeerId,
    req: LocateRequest,
    registry: &Mutex<Registry>,
    now: Instant,
) -> LocateResponse {
    let Ok(mut reg) = registry.lock() else {
        return LocateResponse::Refused {
            reason: "internal error".into(),
        };
    };
    match req {
        LocateRequest::Register { record } => {
            let outcome = hex::decode(&record)
                .map_err(|e| format!("the record is not hex: {e}"))
                .and_then(|bytes| reg.register(peer, bytes, now));
            match outcome {
                Ok(ttl) => LocateResponse::Registered {
                    ttl_s: ttl.as_secs(),
                },
                Err(reason) => {
                    tracing::debug!(%peer, %reason, "locate: record refused");
                    LocateResponse::Refused { reason }
                }
            }
        }
        LocateRequest::Lookup { peer_id } => match peer_id.parse::<PeerId>() {
            Err(_) => LocateResponse::Refused {
                reason: format!("{peer_id:?} is not a peer id"),
            },
            Ok(p) => {
                reg.lookup(&p, now)
                    .map_or(LocateResponse::NotFound, |r| LocateResponse::Found {
                        record: hex::encode(r),
                    })
            }
        },
    }
}

/// Sends one request to `peer` (connected) and reads its answer, within [`TIMEOUT`].
pub(crate) async fn ask(
    control: &mut libp2p_stream::Control,
    peer: PeerId,
    req: &LocateRequest,
) -> Result<LocateResponse, String> {
    let go = async {
        // A busy rendezvous point drops a stream that arrives while it takes the previous
        // one (libp2p-stream hands them over one at a time): try again, briefly.
        let mut tries = crate::SEND_TRIES_MS.iter();
        let mut stream = loop {
            let Some(pause) = tries.next() else {
                return Err("the rendezvous point dropped every stream".to_string());
            };
            tokio::time::sleep(Duration::from_millis(*pause)).await;
            let mut stream = match control
                .open_stream(peer, StreamProtocol::new(LOCATE_PROTOCOL))
                .await
            {
                Ok(s) => s,
                Err(e) => return Err(format!("cannot open a stream: {e}")),
            };
            if write_frame(&mut stream, req, MAX_FRAME_BYTES).await.is_ok() {
                break stream;
            }
        };
        let answer = read_frame::<_, LocateResponse>(&mut stream, MAX_FRAME_BYTES)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the stream ended without an answer".to_string());
        let _ = stream.close().await;
        answer
    };
    tokio::time::timeout(TIMEOUT, go)
        .await
        .map_err(|_| format!("no answer within {} s", TIMEOUT.as_secs()))?
}

/// The addresses of `target` in a record a rendezvous point gave back, after checking
/// that `target` signed it; each ends with `/p2p/<target>`.
///
/// # Errors
/// When the record is malformed, badly signed or someone else's.
pub fn addresses_of(target: &str, record_hex: &str) -> Result<Vec<String>, String> {
    let target: PeerId = target
        .parse()
        .map_err(|_| format!("{target:?} is not a peer id"))?;
    let bytes = hex::decode(record_hex).map_err(|e| format!("the record is not hex: {e}"))?;
    let r = open_record(&bytes)?;
    if r.peer_id() != target {
        return Err(format!(
            "the rendezvous point answered with {}'s record, not {target}'s",
            r.peer_id()
        ));
    }
    Ok(r.addresses()
        .iter()
        .map(|a| {
            let mut a = a.clone();
            if !matches!(a.iter().last(), Some(libp2p::multiaddr::Protocol::P2p(_))) {
                a.push(libp2p::multiaddr::Protocol::P2p(target));
            }
            a.to_string()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Keypair {
        Keypair::generate_secp256k1()
    }

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn a_peer_registers_only_its_own_record() {
        let (alice, mallory) = (key(), key());
        let mut reg = Registry::default();
        let now = Instant::now();
        let rec = sign_record(&alice, vec![addr(1)]).unwrap();
        // Mallory hands over Alice's (genuine) record: refused.
        let err = reg
            .register(mallory.public().to_peer_id(), rec.clone(), now)
            .unwrap_err();
        assert!(err.contains("registers only its own"), "{err}");
        assert!(reg.lookup(&alice.public().to_peer_id(), now).is_none());
        reg.register(alice.public().to_peer_id(), rec.clone(), now)
            .unwrap();
        assert_eq!(
            reg.lookup(&alice.public().to_peer_id(), now),
            Some(rec.as_slice())
        );
        // Expired records are not handed out.
        assert!(
            reg.lookup(&alice.public().to_peer_id(), now + RECORD_TTL)
                .is_none()
        );
    }

    #[test]
    fn forged_garbled_and_oversized_records_are_refused() {
        let alice = key();
        let id = alice.public().to_peer_id();
        let mut reg = Registry::default();
        let now = Instant::now();
        let mut rec = sign_record(&alice, vec![addr(1), addr(2)]).unwrap();
        // Flip a byte inside the payload: the signature no longer holds.
        let i = rec.len() / 2;
        rec[i] ^= 0x01;
        assert!(reg.register(id, rec, now).is_err());
        assert!(reg.register(id, b"not an envelope".to_vec(), now).is_err());
        let big = sign_record(&alice, (0..400).map(addr).collect()).unwrap();
        // sign_record keeps MAX_ADDRS; a hand-made oversized record is refused by size.
        assert!(open_record(&big).is_ok());
        let huge = vec![0u8; MAX_RECORD_BYTES + 1];
        let err = reg.register(id, huge, now).unwrap_err();
        assert!(err.contains("over the"), "{err}");
        let many: Vec<Multiaddr> = (0..(MAX_ADDRS as u16 + 4)).map(addr).collect();
        let over = PeerRecord::new(&alice, many)
            .unwrap()
            .into_signed_envelope()
            .into_protobuf_encoding();
        let err = reg.register(id, over, now).unwrap_err();
        assert!(err.contains("addresses"), "{err}");
        assert_eq!(reg.len(), 0);
    }

    #[test]
    fn an_older_record_does_not_replace_a_newer_one() {
        let alice = key();
        let id = alice.public().to_peer_id();
        let mut reg = Registry::default();
        let now = Instant::now();
        let old = sign_record(&alice, vec![addr(1)]).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        let new = sign_record(&alice, vec![addr(2)]).unwrap();
        reg.register(id, new.clone(), now).unwrap();
        let err = reg.register(id, old, now).unwrap_err();
        assert!(err.contains("newer record"), "{err}");
        assert_eq!(reg.lookup(&id, now), Some(new.as_slice()));
    }

    #[test]
    fn a_full_registry_keeps_its_peers_and_refuses_new_ones() {
        let mut reg = Registry::default();
        let now = Instant::now();
        let keys: Vec<Keypair> = (0..MAX_RECORDS).map(|_| key()).collect();
        for k in &keys {
            reg.register(
                k.public().to_peer_id(),
                sign_record(k, vec![addr(1)]).unwrap(),
                now,
            )
            .unwrap();
        }
        let late = key();
        let err = reg
            .register(
                late.public().to_peer_id(),
                sign_record(&late, vec![addr(1)]).unwrap(),
                now,
            )
            .unwrap_err();
        assert!(err.contains("full"), "{err}");
        // A peer already there may renew; once records expire there is room again.
        let k0 = &keys[0];
        reg.register(
            k0.public().to_peer_id(),
            sign_record(k0, vec![addr(3)]).unwrap(),
            now,
        )
        .unwrap();
        reg.register(
            late.public().to_peer_id(),
            sign_record(&late, vec![addr(1)]).unwrap(),
            now + RECORD_TTL,
        )
        .unwrap();
        assert_eq!(reg.len(), 1);
    }

    #[test]
    fn a_receiver_refuses_someone_elses_record() {
        let (alice, mallory) = (key(), key());
        let rec = hex::encode(sign_record(&mallory, vec![addr(9)]).unwrap());
        let err = addresses_of(&alice.public().to_peer_id().to_string(), &rec).unwrap_err();
        assert!(err.contains("not"), "{err}");
        let ok = addresses_of(&mallory.public().to_peer_id().to_string(), &rec).unwrap();
        assert_eq!(
            ok,
            vec![format!(
                "/ip4/127.0.0.1/tcp/9/p2p/{}",
                mallory.public().to_peer_id()
            )]
        );
        assert!(addresses_of(&alice.public().to_peer_id().to_string(), "zz").is_err());
    }

    #[test]
    fn requests_are_rate_limited_per_peer() {
        let mut rates = Rates::default();
        let (a, b) = (key().public().to_peer_id(), key().public().to_peer_id());
        let now = Instant::now();
        let granted = (0..PER_MINUTE * 2).filter(|_| rates.take(a, now)).count();
        assert_eq!(granted, PER_MINUTE as usize);
        assert!(rates.take(b, now), "another peer is not slowed down");
        assert!(rates.take(a, now + Duration::from_secs(60)));
    }

    #[test]
    fn unknown_request_kinds_are_refused() {
        let bad = br#"{"delete":{"peer_id":"x"}}"#;
        assert!(crate::infer::decode::<LocateRequest>(bad).is_err());
        let extra = br#"{"lookup":{"peer_id":"x","all":true}}"#;
        assert!(crate::infer::decode::<LocateRequest>(extra).is_err());
    }
}
