//! The privacy router between two real swarms on loopback. Bob is a circle peer (or a
//! market seller, paid with tickets on a real anvil) that answers with exactly the text
//! it received, so the test sees both what left Alice's node (Bob's copy) and what
//! Alice's user gets back (restored or not).

use std::sync::Arc;
use std::time::Duration;

use flurry_agent::{Agent, EgressLog, History, HistoryKey, ModelHost};
use flurry_config::{PrivacyRule, PrivacySection};
use flurry_infer::engine::{EngineConfig, Event, Prompt};
use flurry_infer::sampler::SamplingParams;
use flurry_infer::store::ModelStore;
use flurry_infer::template::ChatMessage;
use flurry_net::{Inbound, InferFrame, InferRequest, Member, Net, NetConfig, NetEvent};
use flurry_privacy::{Override, PolicySource};
use flurry_router::{Error, GenSpec, P2p, Router};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(60);

/// The Alices each Bob trusts (tests run in parallel, each with its own Bob; a member
/// list shared between them only grows, which is harmless).
static BOB_CIRCLE: std::sync::Mutex<Vec<Member>> = std::sync::Mutex::new(Vec::new());

fn config() -> NetConfig {
    NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        mdns: false,
        autonat_global_only: false,
        ..NetConfig::default()
    }
}

async fn start() -> (Net, String, mpsc::Receiver<Inbound>) {
    start_as(&flurry_identity::Identity::generate().unwrap()).await
}

async fn start_as(id: &flurry_identity::Identity) -> (Net, String, mpsc::Receiver<Inbound>) {
    let (net, mut events, inbound) = Net::start(id, config()).await.unwrap();
    let addr = loop {
        match tokio::time::timeout(WAIT, events.recv()).await {
            Ok(Some(NetEvent::Listening(a))) if !a.contains("/p2p-circuit") => break a,
            Ok(Some(_)) => {}
            other => panic!("no listen address: {other:?}"),
        }
    };
    // Keep the event channel drained so the swarm never blocks on it.
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    (net, addr, inbound)
}

/// Bob: answers every request with its last message, in pieces that cut placeholders
/// in two, and hands each request it received to the test.
fn echo_peer(mut inbound: mpsc::Receiver<Inbound>) -> mpsc::UnboundedReceiver<InferRequest> {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(job) = inbound.recv().await {
            let text = job
                .request
                .messages
                .last()
                .map(|m| m.content.clone())
                .unwrap_or_default();
            let _ = seen_tx.send(job.request);
            let reply = job.reply;
            let _ = reply
                .send(InferFrame::Start {
                    model: "echo".into(),
                    prompt_tokens: 1,
                })
                .await;
            let chars: Vec<char> = text.chars().collect();
            let mut n = 0;
            for piece in chars.chunks(3) {
                let _ = reply
                    .send(InferFrame::Token {
                        text: piece.iter().collect(),
                    })
                    .await;
                n += 1;
            }
            let _ = reply
                .send(InferFrame::Done {
                    finish_reason: "stop".into(),
                    completion_tokens: n,
                })
                .await;
        }
    });
    seen
}

struct Alice {
    router: Router,
    log: Arc<EgressLog>,
    dir: tempfile::TempDir,
}

async fn alice(bob: &Net, bob_addr: &str, circle: PrivacyRule) -> Alice {
    alice_as(
        &flurry_identity::Identity::generate().unwrap(),
        bob,
        bob_addr,
        circle,
    )
    .await
}

async fn alice_as(
    id: &flurry_identity::Identity,
    bob: &Net,
    bob_addr: &str,
    circle: PrivacyRule,
) -> Alice {
    let dir = tempfile::tempdir().unwrap();
    let host = ModelHost::new(
        ModelStore::new(dir.path().to_path_buf()),
        EngineConfig::default().with_threads(1),
        "none".into(),
        1,
    );
    let agent = Agent {
        history: Arc::new(History::in_memory().unwrap()),
        models: Arc::new(host),
        max_tokens_cap: 64,
        recall: None,
    };
    let (net, _addr, _inbound) = start_as(id).await;
    // Bob trusts every Alice of the test.
    let mut members = BOB_CIRCLE.lock().unwrap();
    let name = format!("alice{}", members.len());
    members.push(Member {
        peer_id: net.peer_id().to_string(),
        name,
        addrs: Vec::new(),
    });
    bob.set_circle(&members);
    drop(members);
    let p2p = P2p::new(net, dir.path().join("circle.json")).unwrap();
    p2p.add_member(
        bob.peer_id(),
        Some("bob"),
        &[format!("{bob_addr}/p2p/{}", bob.peer_id())],
    )
    .unwrap();
    let log = Arc::new(
        EgressLog::open(
            &dir.path().join("egress.db"),
            &HistoryKey::from_bytes([9; 32]),
        )
        .unwrap(),
    );
    let mut router = Router::new(Arc::new(agent));
    router.p2p = Some(Arc::new(p2p));
    router.egress = Some(log.clone());
    router.privacy = PolicySource::Fixed(PrivacySection {
        circle,
        ..PrivacySection::default()
    });
    Alice { router, log, dir }
}

fn ask(text: &str, privacy: Option<Override>) -> GenSpec {
    GenSpec {
        model: None,
        prompt: Prompt::Chat(vec![
            ChatMessage::new("system", "Answer briefly."),
            ChatMessage::new("user", text),
        ]),
        sampling: SamplingParams {
            seed: 1,
            ..SamplingParams::default()
        },
        max_tokens: Some(200),
        stop: Vec::new(),
        memory: false,
        peer: Some("bob".into()),
        privacy,
        logprobs: None,
        max_price: None,
    }
}

async fn answer(router: &Router, spec: GenSpec) -> Result<String, Error> {
    let mut started = router.start(spec).await?;
    let mut text = String::new();
    while let Some(ev) = tokio::time::timeout(WAIT, started.events.recv())
        .await
        .expect("the answer stalled")
    {
        match ev {
            Event::Token { text: t, .. } => text.push_str(&t),
            Event::Done { tail, .. } => {
                text.push_str(&tail);
                return Ok(text);
            }
            Event::Error(e) => panic!("the answer failed: {e}"),
            _ => {}
        }
    }
    panic!("the answer ended without done")
}

const PRIVATE: &str = "Tell Dr. Elena Vásquez (elena.vasquez@quickfix.example, +44 20 7946 0958) that IBAN GB82 WEST 1234 5698 7654 32 is paid; Elena asked twice.";
const SECRETS: &[&str] = &[
    "Elena",
    "Vásquez",
    "elena.vasquez@",
    "7946 0958",
    "GB82 WEST",
];

/// Under `scrubbed`, the peer receives placeholders only (the same one for the same
/// person), the egress log records that scrubbed text under its rule, and the user gets
/// the originals back even though the peer's pieces cut placeholders in two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrubbed_request_leaves_without_personal_data_and_comes_back_whole() {
    let (bob, bob_addr, inbound) = start().await;
    let mut seen = echo_peer(inbound);
    let a = alice(&bob, &bob_addr, PrivacyRule::Scrubbed).await;

    let got = answer(&a.router, ask(PRIVATE, None)).await.unwrap();
    assert_eq!(got, PRIVATE, "the user sees the restored answer");
    let sent = seen.recv().await.unwrap();
    let received = &sent.messages[1].content;
    for s in SECRETS {
        assert!(!received.contains(s), "{s} reached the peer: {received}");
    }
    assert!(
        received.contains("<EMAIL_1>") && received.contains("<PHONE_1>"),
        "{received}"
    );
    assert!(
        received.matches("<PERSON_").count() >= 2,
        "both mentions of Elena: {received}"
    );
    let log = a.log.recent(10).unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].rule, "scrubbed");
    assert!(log[0].destination.contains("bob"), "{:?}", log[0]);
    assert!(log[0].content.contains("<EMAIL_1>"), "{:?}", log[0]);
    for s in SECRETS {
        assert!(!log[0].content.contains(s), "the log says {s} left");
    }

    // A request can ask for scrubbing where the owner's rule would send it as typed.
    let b = alice(&bob, &bob_addr, PrivacyRule::AsIs).await;
    let got = answer(&b.router, ask(PRIVATE, Some(Override::Scrubbed)))
        .await
        .unwrap();
    assert_eq!(got, PRIVATE);
    let received = seen.recv().await.unwrap().messages[1].content.clone();
    assert!(!received.contains("Elena"), "{received}");
    assert_eq!(b.log.recent(1).unwrap()[0].rule, "scrubbed");
}

/// Under `as-is` (the circle's default) the request leaves as typed, and the log says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_as_is_request_leaves_as_typed() {
    let (bob, bob_addr, inbound) = start().await;
    let mut seen = echo_peer(inbound);
    let a = alice(&bob, &bob_addr, PrivacyRule::AsIs).await;
    let got = answer(&a.router, ask(PRIVATE, None)).await.unwrap();
    assert_eq!(got, PRIVATE);
    assert_eq!(seen.recv().await.unwrap().messages[1].content, PRIVATE);
    let log = a.log.recent(10).unwrap();
    assert_eq!((log.len(), log[0].rule.as_str()), (1, "as-is"));
    assert!(log[0].content.contains("elena.vasquez@"));
}

/// A request the policy keeps on the node (`never`, or the request's `local-only`) is
/// refused with what to do, before anything is logged or sent: the peer sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_kept_local_never_reaches_the_peer() {
    let (bob, bob_addr, inbound) = start().await;
    let mut seen = echo_peer(inbound);
    for (rule, wish, says) in [
        (PrivacyRule::AsIs, Some(Override::LocalOnly), "local-only"),
        (
            PrivacyRule::Scrubbed,
            Some(Override::LocalOnly),
            "local-only",
        ),
        (PrivacyRule::Never, None, "circle = \"never\""),
        (
            PrivacyRule::Never,
            Some(Override::Scrubbed),
            "circle = \"never\"",
        ),
    ] {
        let a = alice(&bob, &bob_addr, rule).await;
        match a.router.start(ask(PRIVATE, wish)).await {
            Err(Error::PrivacyRefused { reason }) => {
                assert!(reason.contains(says), "{reason}");
                assert!(reason.contains("without a peer"), "{reason}");
            }
            Err(e) => panic!("{rule:?}/{wish:?}: another error: {e}"),
            Ok(_) => panic!("{rule:?}/{wish:?}: the request left the node"),
        }
        assert!(a.log.recent(10).unwrap().is_empty(), "nothing was logged");
    }
    // Bob saw nothing (an allowed request afterwards does arrive, so the channel works).
    assert!(
        tokio::time::timeout(Duration::from_millis(500), seen.recv())
            .await
            .is_err(),
        "the peer received a request"
    );
    let ok = alice(&bob, &bob_addr, PrivacyRule::Scrubbed).await;
    answer(&ok.router, ask("hello", None)).await.unwrap();
    assert_eq!(seen.recv().await.unwrap().messages[1].content, "hello");
}

/// A policy file that cannot be read sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_policy_sends_nothing() {
    let (bob, bob_addr, inbound) = start().await;
    let _seen = echo_peer(inbound);
    let mut a = alice(&bob, &bob_addr, PrivacyRule::AsIs).await;
    let bad = a.dir.path().join("flurry.toml");
    std::fs::write(&bad, "[privacy]\ncircle = \"everything\"\n").unwrap();
    a.router.privacy = PolicySource::ConfigFile(bad);
    match a.router.start(ask(PRIVATE, None)).await {
        Err(Error::Policy(m)) => assert!(m.contains("circle"), "{m}"),
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("the request left under an unreadable policy"),
    }
    assert!(a.log.recent(10).unwrap().is_empty());
}

/// Log-probabilities come only from models on this node: a request that asks a peer
/// for them is refused before anything is sent or logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_is_never_asked_for_logprobs() {
    let (bob, bob_addr, inbound) = start().await;
    let mut seen = echo_peer(inbound);
    let a = alice(&bob, &bob_addr, PrivacyRule::AsIs).await;
    let spec = GenSpec {
        logprobs: Some(2),
        max_price: None,
        ..ask("hello", None)
    };
    match a.router.start(spec).await {
        Err(Error::Invalid { param, .. }) => assert_eq!(param, "logprobs"),
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("the request left the node"),
    }
    assert!(a.log.recent(10).unwrap().is_empty(), "nothing was logged");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), seen.recv())
            .await
            .is_err(),
        "the peer received a request"
    );
}

/// The market: Bob sells (staked on a real anvil) and answers with what he received;
/// under the market's default rule (`scrubbed`) he gets placeholders only, Alice pays him
/// with tickets, the egress log records the scrubbed request, and Alice's user gets the
/// originals back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_seller_receives_placeholders_and_the_user_the_restored_answer() {
    use flurry_chain::{
        Chain, DeployParams, LocalChain, ReceiverConfig, TicketReceiver, TicketSender, parse_ether,
    };
    use flurry_market::{Market, Payments, Sale};
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let anvil = flurry_chain::find_anvil(Some(&repo.join("contracts/node_modules/.bin/anvil")))
        .unwrap_or_else(|_| {
            panic!("anvil is needed for this test: run `make chain-deps`, or set FLURRY_ANVIL")
        });
    let anvil = LocalChain::spawn(&anvil, None).unwrap();
    let ids: Vec<_> = (0..3)
        .map(|_| flurry_identity::Identity::generate().unwrap())
        .collect();
    let (deployer, bob_id, alice_id) = (&ids[0], &ids[1], &ids[2]);
    let mut chain = Chain::connect(anvil.url(), deployer).await.unwrap();
    for id in &ids {
        chain
            .dev_fund(id.address().parse().unwrap(), parse_ether("10").unwrap())
            .await
            .unwrap();
    }
    let contracts = chain.deploy(&DeployParams::default()).await.unwrap();
    let on_chain = |id: &flurry_identity::Identity| {
        let (url, id) = (anvil.url().to_string(), id.clone());
        async move {
            Chain::connect(&url, &id)
                .await
                .unwrap()
                .with_contracts(contracts)
        }
    };
    let tickets = tempfile::tempdir().unwrap();
    let payments = |id: &flurry_identity::Identity, chain: &Chain| Payments {
        receiver: Arc::new(
            TicketReceiver::open(
                &tickets.path().join(format!("{}.db", id.address())),
                chain.address(),
                chain.domain().unwrap(),
                ReceiverConfig::default(),
            )
            .unwrap(),
        ),
        sender: Arc::new(TicketSender::new(id.clone(), chain.domain().unwrap())),
        tokens_per_ticket: 16,
        pay_timeout: Duration::from_secs(10),
    };

    let bob_chain = on_chain(bob_id).await;
    bob_chain.stake(parse_ether("0.1").unwrap()).await.unwrap();
    let (bob, bob_addr, _circle_requests) = start_as(bob_id).await;
    let seller = Market::new(
        Arc::new(bob_id.clone()),
        bob.clone(),
        Some(bob_chain.clone()),
    );
    seller.set_payments(payments(bob_id, &bob_chain));
    let offer = seller
        .sell(Sale {
            model: "echo".into(),
            model_id: "ab".repeat(32),
            profile: "flurry-det-1".into(),
            price_wei_per_mtok: 1_000_000_000_000_000,
            prompt_price_wei_per_mtok: 1_000_000_000_000_000,
            max_jobs: 2,
        })
        .await
        .unwrap();
    let (jobs, queued) = mpsc::channel(16);
    seller.serve_jobs(jobs).unwrap();
    let mut seen = echo_peer(queued);

    let alice_chain = on_chain(alice_id).await;
    alice_chain
        .fund_deposit(parse_ether("1").unwrap())
        .await
        .unwrap();
    let mut a = alice_as(alice_id, &bob, &bob_addr, PrivacyRule::AsIs).await;
    let p2p = a.router.p2p.clone().unwrap();
    let buyer = Market::new(
        Arc::new(alice_id.clone()),
        p2p.net.clone(),
        Some(alice_chain.clone()),
    );
    buyer.set_payments(payments(alice_id, &alice_chain));
    buyer.on_gossip(Some(&bob_id.peer_id()), &offer.to_bytes().unwrap());
    p2p.net
        .connect(
            bob.peer_id(),
            &[format!("{bob_addr}/p2p/{}", bob.peer_id())],
        )
        .await
        .unwrap();
    a.router.market = Some(buyer.clone());

    let spec = GenSpec {
        model: Some("market/echo".into()),
        peer: None,
        ..ask(PRIVATE, None)
    };
    let got = answer(&a.router, spec).await.unwrap();
    assert_eq!(got, PRIVATE, "the user sees the restored answer");
    let received = seen.recv().await.unwrap().messages[1].content.clone();
    for s in SECRETS {
        assert!(!received.contains(s), "{s} reached the seller: {received}");
    }
    assert!(received.contains("<EMAIL_1>"), "{received}");
    let log = a.log.recent(10).unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].rule, "scrubbed");
    assert!(log[0].destination.starts_with("market"), "{:?}", log[0]);
    let bought = buyer.jobs();
    assert_eq!(bought.len(), 1, "{bought:?}");
    assert!(
        bought[0].paid_wei.parse::<u128>().unwrap() > 0,
        "{bought:?}"
    );
}
