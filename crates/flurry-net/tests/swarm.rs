//! Real swarms in one process, on loopback TCP: connection and identify/ping, the DHT,
//! gossip, relay reservations and circuits, and `/flurry/infer/1` with well-behaved and
//! hostile peers.

use std::time::{Duration, Instant};

use flurry_net::infer::{self, ErrorCode, InferFrame, InferMessage, InferRequest};
use flurry_net::{Inbound, Member, Nat, Net, NetConfig, NetEvent, RelayLimits};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(60);

fn config() -> NetConfig {
    NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        mdns: false,
        autonat_global_only: false,
        ..NetConfig::default()
    }
}

struct Node {
    net: Net,
    events: mpsc::Receiver<NetEvent>,
    inbound: mpsc::Receiver<Inbound>,
    addr: Option<String>,
}

impl Node {
    async fn start(cfg: NetConfig) -> Self {
        let listens = !cfg.listen.is_empty();
        let key = libp2p::identity::Keypair::generate_secp256k1();
        let (net, mut events, inbound) = Net::start_with_keypair(key, cfg).await.unwrap();
        let mut addr = None;
        if listens {
            let deadline = Instant::now() + WAIT;
            while addr.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, events.recv()).await {
                    Ok(Some(NetEvent::Listening(a))) if !a.contains("/p2p-circuit") => {
                        addr = Some(format!("{a}/p2p/{}", net.peer_id()));
                    }
                    Ok(Some(_)) => {}
                    other => panic!("no listen address: {other:?}"),
                }
            }
        }
        Self {
            net,
            events,
            inbound,
            addr,
        }
    }

    fn addr(&self) -> String {
        let _ = &self.events;
        self.addr.clone().expect("listening node")
    }

    fn member(&self, name: &str) -> Member {
        Member {
            peer_id: self.net.peer_id().to_string(),
            name: name.to_string(),
            addrs: Vec::new(),
        }
    }
}

/// Polls `f` until it returns `Some`, or fails after [`WAIT`] with `what`.
async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn chat(text: &str) -> InferRequest {
    InferRequest::new(vec![InferMessage {
        role: "user".into(),
        content: text.into(),
    }])
}

/// Plays the node's part: answers every request by echoing its last message word by
/// word, then `done`.
fn echo_server(mut inbound: mpsc::Receiver<Inbound>) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(job) = inbound.recv().await {
            seen.push(job.name.clone());
            let text = job.request.messages.last().unwrap().content.clone();
            let _ = job
                .reply
                .send(InferFrame::Start {
                    model: "echo".into(),
                    prompt_tokens: 1,
                })
                .await;
            let words: Vec<&str> = text.split(' ').collect();
            for w in &words {
                let _ = job
                    .reply
                    .send(InferFrame::Token {
                        text: format!("{w} "),
                    })
                    .await;
            }
            let _ = job
                .reply
                .send(InferFrame::Done {
                    finish_reason: "stop".into(),
                    completion_tokens: words.len() as u32,
                })
                .await;
        }
        seen
    })
}

async fn collect(mut call: flurry_net::InferCall) -> Result<String, (ErrorCode, String)> {
    let mut text = String::new();
    while let Some(f) = call.frames.recv().await {
        match f.expect("stream intact") {
            InferFrame::Token { text: t } => text.push_str(&t),
            InferFrame::Start { .. } | InferFrame::Receipt { .. } => {}
            InferFrame::Done { .. } => return Ok(text),
            InferFrame::Error { code, message } => return Err((code, message)),
        }
    }
    panic!("the answer ended without done or error")
}

/// Asks `to` through `from` and collects the answer.
async fn ask(
    from: &Node,
    to: &Net,
    addrs: &[String],
    text: &str,
) -> Result<String, (ErrorCode, String)> {
    collect(
        from.net
            .infer(to.peer_id(), addrs, &chat(text))
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_connect_identify_and_ping() {
    let a = Node::start(config()).await;
    let b = Node::start(NetConfig {
        bootstrap: vec![a.addr()],
        ..config()
    })
    .await;
    let info = until("identify and a ping from a", || async {
        let peers = b.net.peers().await.unwrap();
        peers
            .into_iter()
            .find(|p| p.peer_id == a.net.peer_id() && p.agent.is_some() && p.rtt_ms.is_some())
    })
    .await;
    assert!(info.agent.unwrap().starts_with("flurry/"));
    assert!(!info.relayed);
    assert!(info.addresses[0].starts_with("/ip4/127.0.0.1/tcp/"));
    let s = a.net.status().await.unwrap();
    assert_eq!(s.connected, 1);
    assert_eq!(s.peer_id, a.net.peer_id());
    assert!(
        s.listen
            .iter()
            .all(|l| l.starts_with("/ip4/127.0.0.1/tcp/"))
    );
    // Bad input is an error, not a panic.
    assert!(matches!(
        b.net.dial("not a multiaddr").await,
        Err(flurry_net::Error::BadAddr { .. })
    ));
    assert!(matches!(
        b.net.find_peer("nope").await,
        Err(flurry_net::Error::BadPeerId(_))
    ));
}

/// A hub and three nodes that join through it.
async fn hub_and_three() -> (Node, Vec<Node>) {
    let hub = Node::start(config()).await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let cfg = NetConfig {
            bootstrap: vec![hub.addr()],
            ..config()
        };
        nodes.push(Node::start(cfg).await);
    }
    (hub, nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dht_finds_peers_and_autonat_sets_the_mode() {
    let (hub, nodes) = hub_and_three().await;
    // AutoNAT: the others dial the hub back, so it is public (and a DHT server).
    until("the hub to be found public", || async {
        (hub.net.status().await.unwrap().nat == Nat::Public).then_some(())
    })
    .await;
    let (first, last) = (&nodes[0], &nodes[2]);
    let addrs = until("nodes[0] to find nodes[2] through the DHT", || async {
        let _ = first.net.bootstrap().await;
        first.net.find_peer(last.net.peer_id()).await.ok()
    })
    .await;
    assert!(
        addrs.iter().any(|a| a.starts_with("/ip4/127.0.0.1/tcp/")),
        "{addrs:?}"
    );
    let unknown = libp2p::identity::Keypair::generate_secp256k1()
        .public()
        .to_peer_id()
        .to_string();
    let err = first.net.find_peer(&unknown).await.unwrap_err().to_string();
    assert!(err.contains("not found"), "{err}");
}

/// Nodes that AutoNAT cannot call public (the default: only global addresses count, and
/// these are on loopback) are DHT clients, which no DHT lookup returns. They still find
/// each other by peer id alone: each hands a signed record to the node it bootstrapped
/// from, and a lookup asks there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_nodes_find_each_other_through_their_bootstrap_peer() {
    let private = || NetConfig {
        autonat_global_only: true,
        ..config()
    };
    let hub = Node::start(private()).await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(
            Node::start(NetConfig {
                bootstrap: vec![hub.addr()],
                ..private()
            })
            .await,
        );
    }
    let (first, last) = (&nodes[0], &nodes[2]);
    // Asked once a second: the hub answers 30 lookups a minute per peer, and a busy
    // machine may take a few seconds to register nodes[2].
    let mut asked = 0;
    let addrs = until("nodes[0] to find nodes[2] by peer id", || {
        asked += 1;
        let pause = Duration::from_millis(if asked == 1 { 0 } else { 900 });
        async move {
            tokio::time::sleep(pause).await;
            first.net.find_peer(last.net.peer_id()).await.ok()
        }
    })
    .await;
    let want = last.addr();
    assert!(addrs.contains(&want), "{addrs:?} lacks {want}");
    assert_eq!(hub.net.status().await.unwrap().nat, Nat::Unknown);
    // Connecting by peer id alone works.
    first.net.connect(last.net.peer_id(), &[]).await.unwrap();
    // A peer nobody registered is not found, with the reason from both sources.
    let unknown = libp2p::identity::Keypair::generate_secp256k1()
        .public()
        .to_peer_id()
        .to_string();
    let err = first.net.find_peer(&unknown).await.unwrap_err().to_string();
    assert!(
        err.contains("not found") && err.contains("holds no record"),
        "{err}"
    );
}

/// A hostile peer at a rendezvous point: it cannot plant another peer's record, garbage,
/// or an oversized frame, and a flood of requests is cut off without slowing others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendezvous_points_refuse_foreign_records_and_floods() {
    use flurry_net::locate::{self, LocateRequest, LocateResponse};
    let point = Node::start(config()).await;
    let mallory = Node::start(config()).await;
    let honest = Node::start(config()).await;
    let id = point.net.peer_id();
    for n in [&mallory, &honest] {
        n.net.connect(id, &[point.addr()]).await.unwrap();
    }
    async fn exchange(n: &Node, to: &str, req: &LocateRequest) -> LocateResponse {
        let mut s = n
            .net
            .open_raw_stream(to, locate::LOCATE_PROTOCOL)
            .await
            .unwrap();
        s.write_all(&infer::encode(req, locate::MAX_FRAME_BYTES).unwrap())
            .await
            .unwrap();
        s.flush().await.unwrap();
        infer::read_frame(&mut s, locate::MAX_FRAME_BYTES)
            .await
            .unwrap()
            .unwrap()
    }
    // Mallory registers a record she signed for herself pointing at her address, but
    // handing over a record signed by another key (the victim's) is refused.
    let victim = libp2p::identity::Keypair::generate_secp256k1();
    let forged = locate::sign_record(&victim, vec!["/ip4/6.6.6.6/tcp/1".parse().unwrap()]).unwrap();
    let r = exchange(
        &mallory,
        id,
        &LocateRequest::Register {
            record: hex::encode(&forged),
        },
    )
    .await;
    assert!(
        matches!(&r, LocateResponse::Refused { reason } if reason.contains("registers only its own")),
        "{r:?}"
    );
    let r = exchange(
        &honest,
        id,
        &LocateRequest::Lookup {
            peer_id: victim.public().to_peer_id().to_string(),
        },
    )
    .await;
    assert_eq!(r, LocateResponse::NotFound);
    // Garbage in place of a record.
    let r = exchange(
        &mallory,
        id,
        &LocateRequest::Register {
            record: "00ff".into(),
        },
    )
    .await;
    assert!(matches!(r, LocateResponse::Refused { .. }), "{r:?}");
    // An oversized length prefix is refused before the payload.
    let mut s = mallory
        .net
        .open_raw_stream(id, locate::LOCATE_PROTOCOL)
        .await
        .unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    s.flush().await.unwrap();
    let r: LocateResponse = infer::read_frame(&mut s, locate::MAX_FRAME_BYTES)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&r, LocateResponse::Refused { reason } if reason.contains("limit")),
        "{r:?}"
    );
    // A flood: past the per-minute budget every request is refused, and an honest peer
    // is still answered.
    let lookup = LocateRequest::Lookup {
        peer_id: honest.net.peer_id().to_string(),
    };
    let mut refused = 0;
    for _ in 0..locate::PER_MINUTE + 10 {
        if let LocateResponse::Refused { reason } = exchange(&mallory, id, &lookup).await {
            assert!(reason.contains("per minute"), "{reason}");
            refused += 1;
        }
    }
    assert!(refused >= 10, "only {refused} requests refused");
    let r = exchange(&honest, id, &lookup).await;
    assert!(
        matches!(r, LocateResponse::NotFound | LocateResponse::Found { .. }),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_reaches_every_subscriber_and_is_bounded() {
    let (hub, nodes) = hub_and_three().await;
    let topic = "flurry/test/1";
    hub.net.gossip(topic).await.unwrap();
    for n in &nodes {
        n.net.gossip(topic).await.unwrap();
    }
    // Publish until the mesh has formed and every node has the message.
    let text = "hello circle";
    until("the message on every node", || async {
        let _ = nodes[0].net.publish(topic, text.as_bytes().to_vec()).await;
        for n in nodes.iter().skip(1).chain([&hub]) {
            let got = n.net.gossip(topic).await.unwrap();
            if !got.iter().any(|m| m.text == text) {
                return None;
            }
            let m = got.iter().find(|m| m.text == text).unwrap();
            assert_eq!(m.source.as_deref(), Some(nodes[0].net.peer_id()));
        }
        Some(())
    })
    .await;
    let big = vec![b'x'; flurry_net::MAX_GOSSIP_BYTES + 1];
    assert!(matches!(
        nodes[0].net.publish(topic, big).await,
        Err(flurry_net::Error::TooLarge { .. })
    ));
}

/// Attack: a peer floods a validated topic (market offers) with invalid messages. The
/// hub neither delivers nor forwards them (a node behind it that does not judge sees
/// only valid ones), and disconnects the sender once its score is graylisted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_gossip_is_not_forwarded_and_its_sender_is_cut_off() {
    use flurry_net::{Validator, Verdict};
    let topic = "flurry/test/validated";
    let judge: Validator = std::sync::Arc::new(|_, data: &[u8]| {
        if data.starts_with(b"ok") {
            Verdict::Accept
        } else if data.starts_with(b"stale") {
            Verdict::Ignore
        } else {
            Verdict::Reject
        }
    });
    let hub = Node::start(config()).await;
    let far = Node::start(NetConfig {
        bootstrap: vec![hub.addr()],
        ..config()
    })
    .await;
    // No address of its own: nobody but the hub hears it directly.
    let spammer = Node::start(NetConfig {
        listen: Vec::new(),
        bootstrap: vec![hub.addr()],
        ..config()
    })
    .await;
    hub.net.subscribe_validated(topic, judge).await.unwrap();
    far.net.gossip(topic).await.unwrap();
    spammer.net.gossip(topic).await.unwrap();
    until("a valid message to cross the hub", || async {
        let _ = spammer.net.publish(topic, b"ok 1".to_vec()).await;
        far.net
            .gossip(topic)
            .await
            .unwrap()
            .iter()
            .any(|m| m.text == "ok 1")
            .then_some(())
    })
    .await;
    let _ = spammer.net.publish(topic, b"stale".to_vec()).await;
    for i in 0..8 {
        let _ = spammer
            .net
            .publish(topic, format!("bad {i}").into_bytes())
            .await;
    }
    until("the hub to disconnect the spammer", || async {
        let peers = hub.net.peers().await.unwrap();
        (!peers.iter().any(|p| p.peer_id == spammer.net.peer_id())).then_some(())
    })
    .await;
    for n in [&hub, &far] {
        let got = n.net.gossip(topic).await.unwrap();
        assert!(
            !got.is_empty() && got.iter().all(|m| m.text.starts_with("ok")),
            "{got:?}"
        );
    }
    let peers = hub.net.peers().await.unwrap();
    assert!(peers.iter().any(|p| p.peer_id == far.net.peer_id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_without_a_public_address_reach_each_other_through_a_relay() {
    let relay = Node::start(NetConfig {
        relay_server: Some(RelayLimits::default()),
        ..config()
    })
    .await;
    // Neither listens on an address of its own: the relay is the only way in.
    let behind = || NetConfig {
        listen: Vec::new(),
        relays: vec![relay.addr()],
        hole_punching: false,
        ..config()
    };
    let a = Node::start(behind()).await;
    let b = Node::start(behind()).await;
    let b_addr = until("b's reservation", || async {
        let s = b.net.status().await.unwrap();
        (s.reservations == vec![relay.net.peer_id().to_string()])
            .then(|| s.relayed_addrs.first().cloned())
            .flatten()
    })
    .await;
    assert!(b_addr.contains("/p2p-circuit/p2p/"), "{b_addr}");
    assert!(relay.net.status().await.unwrap().relay_server);
    b.net.set_circle(&[a.member("alice")]);
    let server = echo_server(b.inbound);
    let call = a
        .net
        .infer(b.net.peer_id(), &[b_addr], &chat("through the relay"))
        .await
        .unwrap();
    assert!(call.relayed, "the only path is the relay");
    assert_eq!(collect(call).await.unwrap(), "through the relay ");
    let peers = a.net.peers().await.unwrap();
    let pb = peers.iter().find(|p| p.peer_id == b.net.peer_id()).unwrap();
    assert!(
        pb.relayed && pb.addresses[0].contains("/p2p-circuit"),
        "{pb:?}"
    );
    drop(b.net);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_is_for_the_circle_only_and_rate_limited() {
    let server = Node::start(NetConfig {
        infer_per_minute: 3,
        ..config()
    })
    .await;
    let friend = Node::start(config()).await;
    let stranger = Node::start(config()).await;
    server.net.set_circle(&[friend.member("alice")]);
    let addr = [server.addr()];
    let seen = echo_server(server.inbound);
    let to = &server.net;

    assert_eq!(
        ask(&friend, to, &addr, "one two three").await.unwrap(),
        "one two three "
    );

    let (code, message) = ask(&stranger, to, &addr, "let me in").await.unwrap_err();
    assert_eq!(code, ErrorCode::Unauthorised);
    assert!(message.contains("flurry circle add"), "{message}");

    // 3 per minute: the first used one; two more pass, the next is refused.
    for _ in 0..2 {
        ask(&friend, to, &addr, "again").await.unwrap();
    }
    let (code, message) = ask(&friend, to, &addr, "too many").await.unwrap_err();
    assert_eq!(code, ErrorCode::RateLimited, "{message}");
    assert!(message.contains("per minute"), "{message}");

    // Removing a member takes effect at once.
    to.set_circle(&[]);
    let (code, _) = ask(&friend, to, &addr, "still?").await.unwrap_err();
    assert_eq!(code, ErrorCode::Unauthorised);
    seen.abort();
}

/// Reads the one error frame a server answers a bad stream with.
async fn error_frame(stream: &mut libp2p::Stream) -> (ErrorCode, String) {
    match infer::read_frame::<_, InferFrame>(stream, infer::MAX_FRAME_BYTES).await {
        Ok(Some(InferFrame::Error { code, message })) => (code, message),
        other => panic!("expected an error frame, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_streams_get_clear_errors_and_free_their_slot() {
    let server = Node::start(NetConfig {
        infer_concurrent_per_peer: 1,
        infer_per_minute: 1000,
        ..config()
    })
    .await;
    let peer = Node::start(config()).await;
    server.net.set_circle(&[peer.member("mallory")]);
    let server_addr = server.addr();
    let mut inbound = server.inbound;
    peer.net
        .connect(server.net.peer_id(), &[server_addr])
        .await
        .unwrap();
    let id = server.net.peer_id();

    // Oversize length prefix: refused before the payload is read.
    let mut s = peer.net.open_infer_stream(id).await.unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    s.flush().await.unwrap();
    let (code, m) = error_frame(&mut s).await;
    assert_eq!(code, ErrorCode::TooLarge, "{m}");

    // Not JSON.
    let mut s = peer.net.open_infer_stream(id).await.unwrap();
    s.write_all(&5u32.to_be_bytes()).await.unwrap();
    s.write_all(b"hello").await.unwrap();
    s.flush().await.unwrap();
    let (code, m) = error_frame(&mut s).await;
    assert_eq!(code, ErrorCode::BadRequest, "{m}");

    // A version this node does not speak.
    let mut req = chat("hi");
    req.v = 99;
    let mut s = peer.net.open_infer_stream(id).await.unwrap();
    s.write_all(&infer::encode(&req, infer::MAX_REQUEST_BYTES).unwrap())
        .await
        .unwrap();
    s.flush().await.unwrap();
    let (code, m) = error_frame(&mut s).await;
    assert_eq!(code, ErrorCode::Version, "{m}");

    // Slow loris: half a length prefix, then nothing. The server gives up after
    // REQUEST_TIMEOUT and says so.
    let started = Instant::now();
    let mut s = peer.net.open_infer_stream(id).await.unwrap();
    s.write_all(&[0, 0]).await.unwrap();
    s.flush().await.unwrap();
    let (code, m) = error_frame(&mut s).await;
    assert_eq!(code, ErrorCode::Timeout, "{m}");
    assert!(started.elapsed() >= infer::REQUEST_TIMEOUT);

    // None of that reached the node, and every slot was given back: a good request
    // still passes the per-peer limit of 1.
    assert!(inbound.try_recv().is_err());
    let call = peer.net.infer(id, &[], &chat("fine now")).await.unwrap();
    let job = tokio::time::timeout(WAIT, inbound.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.name, "mallory");
    // While it runs, a second request from the same peer is over the limit.
    let (code, _) = collect(peer.net.infer(id, &[], &chat("second")).await.unwrap())
        .await
        .unwrap_err();
    assert_eq!(code, ErrorCode::RateLimited);
    // The client goes away mid-answer: the node sees its reply channel close.
    job.reply
        .send(InferFrame::Token { text: "par".into() })
        .await
        .unwrap();
    drop(call);
    until("the server to notice the client left", || async {
        (job.reply
            .send(InferFrame::Token { text: "x".into() })
            .await
            .is_err())
        .then_some(())
    })
    .await;
    // And a stream that says nothing and closes costs nothing.
    let mut s = peer.net.open_infer_stream(id).await.unwrap();
    s.close().await.unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
    assert!(rest.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_carries_connections_and_inference() {
    let quic = || NetConfig {
        listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".into()],
        ..config()
    };
    let key = libp2p::identity::Keypair::generate_secp256k1();
    let (server, mut events, inbound) = Net::start_with_keypair(key, quic()).await.unwrap();
    let addr = loop {
        match tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            NetEvent::Listening(a) if a.contains("/quic-v1") => {
                break format!("{a}/p2p/{}", server.peer_id());
            }
            _ => {}
        }
    };
    let client = Node::start(quic()).await;
    server.set_circle(&[client.member("quinn")]);
    let _serve = echo_server(inbound);
    let call = client
        .net
        .infer(server.peer_id(), &[addr], &chat("over quic"))
        .await
        .unwrap();
    assert!(!call.relayed);
    assert_eq!(collect(call).await.unwrap(), "over quic ");
    let peers = client.net.peers().await.unwrap();
    assert!(peers[0].addresses[0].contains("/quic-v1"), "{peers:?}");
}

/// Plays a hostile serving peer: accepts every request, then sends token frames of
/// `text` every `every` until the requester goes away. Reports how many frames it
/// managed to hand to the wire and whether the requester's leaving was noticed.
fn endless_server(
    mut inbound: mpsc::Receiver<Inbound>,
    text: String,
    every: Duration,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let Some(job) = inbound.recv().await else {
            return 0;
        };
        let start = InferFrame::Start {
            model: "endless".into(),
            prompt_tokens: 1,
        };
        if job.reply.send(start).await.is_err() {
            return 0;
        }
        let mut sent = 0;
        while job
            .reply
            .send(InferFrame::Token { text: text.clone() })
            .await
            .is_ok()
        {
            sent += 1;
            if !every.is_zero() {
                tokio::time::sleep(every).await;
            }
        }
        // `reply` closed: the serving side saw the requester drop the stream.
        sent
    })
}

/// Reads an answer to the end; returns the token frames that got through and the error
/// that ended it (an answer that ends cleanly fails the test).
async fn cut_off(call: flurry_net::InferCall) -> (u64, String) {
    tokio::time::timeout(WAIT, read_until_cut_off(call))
        .await
        .expect("the requester must give up on its own, long before this")
}

async fn read_until_cut_off(mut call: flurry_net::InferCall) -> (u64, String) {
    let mut tokens = 0;
    loop {
        match call.frames.recv().await {
            Some(Ok(InferFrame::Token { .. })) => {
                tokens += 1;
                assert!(tokens < 10_000, "the requester never cut the peer off");
            }
            Some(Ok(InferFrame::Start { .. })) => {}
            Some(Ok(f)) => panic!("the hostile answer ended by itself: {f:?}"),
            Some(Err(e)) => {
                assert!(
                    call.frames.recv().await.is_none(),
                    "nothing may follow the error"
                );
                return (tokens, e.to_string());
            }
            None => panic!("the answer ended without an error"),
        }
    }
}

/// Attack: a circle member answers `/flurry/infer/1` with token frames that never end
/// (before the fix the requester read them for as long as they came, 120 s per frame,
/// with no `max_tokens` check). The requester must stop after the request's
/// `max_tokens` (plus the held-back tail), say why, and drop the stream so the peer's
/// serving side sees it gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_answers_are_cut_off_at_max_tokens() {
    let server = Node::start(config()).await;
    let client = Node::start(config()).await;
    server.net.set_circle(&[client.member("victim")]);
    let addr = server.addr();
    let hostile = endless_server(server.inbound, "spam ".into(), Duration::ZERO);
    let mut req = chat("hello");
    req.max_tokens = Some(50);
    let call = client
        .net
        .infer(server.net.peer_id(), &[addr], &req)
        .await
        .unwrap();
    let (tokens, err) = cut_off(call).await;
    assert_eq!(tokens, 51, "max_tokens plus the tail frame, not one more");
    assert!(err.contains("max_tokens"), "{err}");
    let sent = tokio::time::timeout(WAIT, hostile)
        .await
        .expect("the hostile peer must see the stream closed")
        .unwrap();
    assert!(sent > 51, "the peer kept sending ({sent} frames)");
}

/// Attack: a circle member pads each token frame to 60 KB, so that even within
/// `max_tokens` frames it would push gigabytes. The requester stops at its byte bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padded_answers_are_cut_off_at_the_byte_bound() {
    let server = Node::start(config()).await;
    let client = Node::start(config()).await;
    server.net.set_circle(&[client.member("victim")]);
    let addr = server.addr();
    let _hostile = endless_server(server.inbound, "x".repeat(60_000), Duration::ZERO);
    let mut req = chat("hello");
    req.max_tokens = Some(100);
    let call = client
        .net
        .infer(server.net.peer_id(), &[addr], &req)
        .await
        .unwrap();
    let (tokens, err) = cut_off(call).await;
    let limits = infer::AnswerLimits::for_request(&req);
    assert!(
        tokens * 60_000 <= limits.max_text_bytes,
        "{tokens} frames got through"
    );
    assert!(err.contains("bytes of text"), "{err}");
}

/// Attack: a circle member trickles one token every 100 ms, within every per-frame
/// timeout, to hold the request (and the client's stream and model slot) for ever.
/// With `infer_total_timeout` at 1 s the requester gives up after about a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_answers_hit_the_total_deadline() {
    let server = Node::start(config()).await;
    let client = Node::start(NetConfig {
        infer_total_timeout: Duration::from_secs(1),
        ..config()
    })
    .await;
    server.net.set_circle(&[client.member("victim")]);
    let addr = server.addr();
    let hostile = endless_server(server.inbound, "slow ".into(), Duration::from_millis(100));
    let started = Instant::now();
    let call = client
        .net
        .infer(server.net.peer_id(), &[addr], &chat("hello"))
        .await
        .unwrap();
    let (tokens, err) = cut_off(call).await;
    let took = started.elapsed();
    assert!(err.contains("did not end within 1 s"), "{err}");
    assert!(err.contains("infer_total_timeout_secs"), "{err}");
    assert!(
        tokens >= 3,
        "the trickle did get through for a while ({tokens})"
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        "{took:?}"
    );
    tokio::time::timeout(WAIT, hostile)
        .await
        .expect("the hostile peer must see the stream closed")
        .unwrap();
}
