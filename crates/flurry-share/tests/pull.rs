//! Pulls between real libp2p nodes on loopback: several peers at once against one, a
//! peer that sends bad bytes or a false layer (banned, the pull still completes), a pull
//! cut off and resumed from what is verified on disk, and hostile requests to a server.
#![allow(clippy::print_stdout)] // the figures the issue asks for

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flurry_identity::Identity;
use flurry_net::{Net, NetConfig};
use flurry_primitives::ModelId;
use flurry_share::proto::{self, Answer, Request};
use flurry_share::pull::{self, Progress, Source};
use flurry_share::serve::{self, ServeLimits, Shelf, Shelved};
use flurry_share::{Layer, MODEL_PROTOCOL, PIECE};
use futures_util::AsyncWriteExt;

async fn net(id: &Identity) -> Net {
    Net::start_with_keypair(
        id.to_libp2p_keypair().unwrap(),
        NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            mdns: false,
            autonat_global_only: true,
            ..NetConfig::default()
        },
    )
    .await
    .unwrap()
    .0
}

async fn listen_addr(net: &Net) -> String {
    loop {
        if let Some(a) = net.status().await.unwrap().listen.into_iter().next() {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pseudo-random bytes (BLAKE3's XOF of a seed), so the file is not compressible.
fn model_bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&[seed])
        .finalize_xof()
        .fill(&mut out);
    out
}

struct Server {
    _net: Net,
    source: Source,
}

enum Kind {
    Honest(ServeLimits),
    /// Serves the true layer, then pieces with one byte flipped.
    Corrupt,
    /// Serves a layer of another file.
    FalseLayer,
}

async fn server(file: &Path, model: ModelId, kind: Kind) -> Server {
    let id = Identity::generate().unwrap();
    let n = net(&id).await;
    let layer = Arc::new(Layer::of_file(file).unwrap());
    let incoming = n.accept_streams(MODEL_PROTOCOL).unwrap();
    match kind {
        Kind::Honest(limits) => {
            let shelf = Arc::new(Shelf::default());
            shelf.put(
                model,
                Shelved {
                    name: "m".into(),
                    path: file.to_path_buf(),
                    layer,
                },
            );
            tokio::spawn(serve::serve(
                incoming,
                shelf,
                limits,
                Arc::new(|_: &str| true),
            ));
        }
        Kind::Corrupt | Kind::FalseLayer => {
            let data = std::fs::read(file).unwrap();
            let false_layer = kind_is_false(&kind);
            tokio::spawn(hostile(incoming, layer, data, false_layer));
        }
    }
    let addr = format!("{}/p2p/{}", listen_addr(&n).await, id.peer_id());
    Server {
        _net: n,
        source: Source {
            peer: id.peer_id(),
            addrs: vec![addr],
        },
    }
}

fn kind_is_false(k: &Kind) -> bool {
    matches!(k, Kind::FalseLayer)
}

async fn hostile(
    mut incoming: flurry_net::Incoming,
    layer: Arc<Layer>,
    data: Vec<u8>,
    false_layer: bool,
) {
    while let Some((_, mut s)) = incoming.next().await {
        let (layer, data) = (layer.clone(), data.clone());
        tokio::spawn(async move {
            while let Ok(Some(q)) = proto::read_request(&mut s).await {
                let a = match q {
                    Request::Layer(_) if false_layer => {
                        let mut l = (*layer).clone();
                        l.cvs[0][0] ^= 1;
                        Answer::Layer(l)
                    }
                    Request::Layer(_) => Answer::Layer((*layer).clone()),
                    Request::Piece(_, i) => {
                        let (at, len) = layer.range(i);
                        let mut b = data[at as usize..(at + len) as usize].to_vec();
                        b[len as usize / 2] ^= 0x40;
                        Answer::Piece(b)
                    }
                };
                if proto::write_answer(&mut s, &a).await.is_err() {
                    return;
                }
            }
        });
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    file: PathBuf,
    data: Vec<u8>,
    model: ModelId,
}

fn fixture(mib: u64, seed: u8) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = model_bytes((mib * PIECE) as usize + 12_345, seed);
    let file = dir.path().join("model.gguf");
    std::fs::write(&file, &data).unwrap();
    Fixture {
        model: ModelId::of_bytes(&data),
        dir,
        file,
        data,
    }
}

fn quiet() -> pull::OnProgress {
    Arc::new(|_| {})
}

fn paced(bytes_per_sec: u64) -> ServeLimits {
    ServeLimits {
        bytes_per_peer_per_min: bytes_per_sec * 60,
        ..ServeLimits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_serve_a_paced_model_at_least_twice_as_fast_as_one() {
    let f = fixture(16, 1);
    let rate = 6 * PIECE; // 6 MiB/s per peer
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(server(&f.file, f.model, Kind::Honest(paced(rate))).await);
    }
    let me = net(&Identity::generate().unwrap()).await;

    let one_dir = f.dir.path().join("one");
    let t = Instant::now();
    let one = pull::pull(
        &me,
        f.model,
        vec![servers[0].source.clone()],
        &one_dir,
        quiet(),
    )
    .await
    .unwrap();
    let from_one = t.elapsed();
    assert_eq!(std::fs::read(&one.path).unwrap(), f.data, "byte-identical");
    assert_eq!(one.from.len(), 1);

    let three_dir = f.dir.path().join("three");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let t = Instant::now();
    let three = pull::pull(
        &me,
        f.model,
        servers.iter().map(|s| s.source.clone()).collect(),
        &three_dir,
        Arc::new(move |p| log.lock().unwrap().push(p)),
    )
    .await
    .unwrap();
    let from_three = t.elapsed();
    assert_eq!(
        std::fs::read(&three.path).unwrap(),
        f.data,
        "byte-identical"
    );
    assert_eq!(
        ModelId::of_bytes(&std::fs::read(&three.path).unwrap()),
        f.model
    );
    assert_eq!(
        three.from.len(),
        3,
        "every peer served pieces: {:?}",
        three.from
    );
    assert_eq!(three.from.values().sum::<u64>(), f.data.len() as u64);
    let speedup = from_one.as_secs_f64() / from_three.as_secs_f64();
    println!(
        "pull of {} bytes paced at {} MiB/s per peer: 1 peer {:.2} s, 3 peers {:.2} s, {speedup:.2}x",
        f.data.len(),
        rate / PIECE,
        from_one.as_secs_f64(),
        from_three.as_secs_f64()
    );
    assert!(speedup >= 2.0, "3 peers only {speedup:.2}x faster than 1");
    // Progress reached the whole size, with a rate and the peers serving.
    let seen = seen.lock().unwrap();
    assert!(matches!(
        seen.first(),
        Some(Progress::Layer { resumed: 0, .. })
    ));
    let Some(Progress::Bytes {
        done, total, rate, ..
    }) = seen.last()
    else {
        panic!("no byte progress: {seen:?}")
    };
    assert_eq!(
        (done, total),
        (&(f.data.len() as u64), &(f.data.len() as u64))
    );
    assert!(*rate > 0.0);
    assert!(
        seen.iter()
            .any(|p| matches!(p, Progress::Bytes { peers: 3, .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_sends_bad_pieces_or_a_false_layer_is_banned_and_the_pull_completes() {
    let f = fixture(12, 2);
    let liar = server(&f.file, f.model, Kind::FalseLayer).await;
    let corrupt = server(&f.file, f.model, Kind::Corrupt).await;
    let honest = server(&f.file, f.model, Kind::Honest(paced(4 * PIECE))).await;
    let me = net(&Identity::generate().unwrap()).await;
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let log = dropped.clone();
    let got = pull::pull(
        &me,
        f.model,
        vec![
            liar.source.clone(),
            corrupt.source.clone(),
            honest.source.clone(),
        ],
        &f.dir.path().join("pulls"),
        Arc::new(move |p| {
            if let Progress::Dropped {
                peer,
                reason,
                banned,
            } = p
            {
                log.lock().unwrap().push((peer, reason, banned));
            }
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read(&got.path).unwrap(),
        f.data,
        "the pull completed correctly"
    );
    assert_eq!(got.banned, vec![corrupt.source.peer.clone()]);
    assert_eq!(
        got.from.keys().collect::<Vec<_>>(),
        vec![&honest.source.peer]
    );
    let dropped = dropped.lock().unwrap().clone();
    let why = |p: &str| dropped.iter().find(|d| d.0 == p).cloned();
    let (_, reason, banned) = why(&liar.source.peer).expect("the liar was dropped");
    assert!(banned && reason.contains("false layer"), "{reason}");
    let (_, reason, banned) = why(&corrupt.source.peer).expect("the corrupter was dropped");
    assert!(banned && reason.contains("does not match"), "{reason}");
    // The bans hold: the banned peers are cut off from this node.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let peers: Vec<String> = me
        .peers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.peer_id)
        .collect();
    assert!(!peers.contains(&corrupt.source.peer), "{peers:?}");
    assert!(!peers.contains(&liar.source.peer), "{peers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_cut_off_resumes_from_the_verified_part_and_a_torn_piece_is_fetched_again() {
    let f = fixture(16, 3);
    let s = server(&f.file, f.model, Kind::Honest(paced(4 * PIECE))).await;
    let me = net(&Identity::generate().unwrap()).await;
    let dir = f.dir.path().join("pulls");
    let cut = tokio::time::timeout(
        Duration::from_millis(1600),
        pull::pull(&me, f.model, vec![s.source.clone()], &dir, quiet()),
    )
    .await;
    assert!(cut.is_err(), "the pull was cut off before it ended");
    // A torn write: the first piece on disk is damaged.
    let part = dir.join(format!("{}.part", f.model));
    {
        use std::os::unix::fs::FileExt;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&part)
            .unwrap()
            .write_all_at(&[0xFF; 16], 100)
            .unwrap();
    }
    let got = pull::pull(&me, f.model, vec![s.source.clone()], &dir, quiet())
        .await
        .unwrap();
    let total = f.data.len() as u64;
    assert_eq!(std::fs::read(&got.path).unwrap(), f.data);
    assert!(
        got.resumed >= 2 * PIECE && got.resumed < total,
        "resumed {}",
        got.resumed
    );
    assert_eq!(
        got.downloaded,
        total - got.resumed,
        "only what was not verified came again"
    );
    println!(
        "resume: {} of {} bytes verified on disk after the cut, {} downloaded again ({:.0}%)",
        got.resumed,
        total,
        got.downloaded,
        100.0 * got.downloaded as f64 / total as f64
    );
}

/// A server of `shelf` with `limits`, refusing `blocked`; its peer id and address.
async fn shelf_server(
    shelf: Arc<Shelf>,
    limits: ServeLimits,
    blocked: String,
) -> (Net, String, String) {
    let id = Identity::generate().unwrap();
    let n = net(&id).await;
    let incoming = n.accept_streams(MODEL_PROTOCOL).unwrap();
    tokio::spawn(serve::serve(
        incoming,
        shelf,
        limits,
        Arc::new(move |p: &str| p != blocked),
    ));
    let addr = format!("{}/p2p/{}", listen_addr(&n).await, id.peer_id());
    (n, id.peer_id(), addr)
}

async fn ask(
    me: &Net,
    to: &(Net, String, String),
    q: Request,
    len: usize,
) -> (flurry_net::PeerStream, Answer) {
    let mut s = me
        .open_stream(&to.1, std::slice::from_ref(&to.2), MODEL_PROTOCOL)
        .await
        .unwrap();
    proto::write_request(&mut s, &q).await.unwrap();
    let a = proto::read_answer(&mut s, &q, len).await.unwrap();
    (s, a)
}

fn code(a: &Answer) -> String {
    match a {
        Answer::Refused(r) => r.code.clone(),
        Answer::Piece(b) => panic!("not refused: a piece of {} bytes", b.len()),
        Answer::Layer(l) => panic!("not refused: a layer of {} pieces", l.pieces()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refuses_hostile_requests_and_serves_nothing_unpublished() {
    let f = fixture(2, 4);
    let shelf = Arc::new(Shelf::default());
    shelf.put(
        f.model,
        Shelved {
            name: "m".into(),
            path: f.file.clone(),
            layer: Arc::new(Layer::of_file(&f.file).unwrap()),
        },
    );
    let outsider = Identity::generate().unwrap();
    let open_server = shelf_server(shelf.clone(), ServeLimits::default(), outsider.peer_id()).await;
    let me = net(&Identity::generate().unwrap()).await;

    // Another model, a piece past the end.
    let (_, a) = ask(
        &me,
        &open_server,
        Request::Layer(ModelId::from_bytes([0; 32])),
        0,
    )
    .await;
    assert_eq!(code(&a), "not_published");
    let (_, a) = ask(
        &me,
        &open_server,
        Request::Piece(f.model, 3),
        PIECE as usize,
    )
    .await;
    assert_eq!(code(&a), "bad_request");
    // A published piece comes whole.
    let (_, a) = ask(
        &me,
        &open_server,
        Request::Piece(f.model, 1),
        PIECE as usize,
    )
    .await;
    assert!(
        a == Answer::Piece(f.data[PIECE as usize..2 * PIECE as usize].to_vec()),
        "piece 1 is not the file's second MiB"
    );
    // An oversized request is refused before it is read, and the stream closed.
    let mut s = me
        .open_stream(
            &open_server.1,
            std::slice::from_ref(&open_server.2),
            MODEL_PROTOCOL,
        )
        .await
        .unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    s.flush().await.unwrap();
    let q = Request::Layer(f.model);
    assert_eq!(
        code(&proto::read_answer(&mut s, &q, 0).await.unwrap()),
        "bad_request"
    );
    assert!(
        proto::read_answer(&mut s, &q, 0).await.is_err(),
        "the stream is closed"
    );

    // A peer the admission rule refuses (say, outside the circle) gets `not_allowed`.
    let theirs = net(&outsider).await;
    let (_, a) = ask(&theirs, &open_server, Request::Layer(f.model), 0).await;
    assert_eq!(code(&a), "not_allowed");

    // With one transfer allowed at once, a second stream is told `busy`.
    let one = ServeLimits {
        concurrent: 1,
        ..ServeLimits::default()
    };
    let narrow = shelf_server(shelf.clone(), one, String::new()).await;
    let (held, a) = ask(&me, &narrow, Request::Layer(f.model), 0).await;
    assert!(matches!(a, Answer::Layer(_)));
    let (_, a) = ask(&me, &narrow, Request::Layer(f.model), 0).await;
    assert_eq!(code(&a), "busy");
    drop(held);

    // A file changed on disk after publishing is not spread: it leaves the shelf.
    {
        use std::os::unix::fs::FileExt;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&f.file)
            .unwrap()
            .write_all_at(b"x", 5)
            .unwrap();
    }
    let (_, a) = ask(
        &me,
        &open_server,
        Request::Piece(f.model, 0),
        PIECE as usize,
    )
    .await;
    assert_eq!(code(&a), "unavailable");
    assert!(shelf.get(&f.model).is_none());
    let (_, a) = ask(&me, &open_server, Request::Layer(f.model), 0).await;
    assert_eq!(code(&a), "not_published", "taken off the shelf");
}
