//! Paid jobs over `/flurry/market/1` between real libp2p nodes on loopback, paying with
//! real tickets on a real chain (the pinned anvil with the contracts deployed); the
//! seller's engine is a stand-in that streams numbered tokens (no weights needed).
//!
//! An honest buyer gets its answer and pays for exactly what it got; a buyer that stops
//! paying is cut off at the last token its tickets cover; a flood of calls for proposals
//! is refused for its rate while an honest job still runs; hostile first frames
//! (oversized, unpaid, someone else's tickets) are refused with a clear error.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flurry_chain::{
    Chain, DeployParams, LocalChain, ReceiverConfig, TicketReceiver, TicketSender, U256,
    find_anvil, parse_ether,
};
use flurry_identity::Identity;
use flurry_market::job::{self, Ask, JOB_VERSION, JobFrame, Prices, Reply};
use flurry_market::{Market, Payments, Sale};
use flurry_net::infer::{read_frame, write_frame};
use flurry_net::{ErrorCode, Inbound, InferFrame, InferMessage, InferRequest, Net, NetConfig};
use futures_util::AsyncWriteExt;
use tokio::sync::mpsc;

const PRICE: u128 = 1_000_000_000_000_000; // wei per million tokens: 1 gwei a token
const TOKENS_PER_TICKET: u32 = 4;
const PROMPT_TOKENS: u32 = 10;

fn anvil_path() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    find_anvil(Some(&repo.join("contracts/node_modules/.bin/anvil"))).unwrap_or_else(|_| {
        panic!("anvil is needed for this test: run `make chain-deps`, or set FLURRY_ANVIL")
    })
}

fn sale() -> Sale {
    Sale {
        model: "m".into(),
        model_id: "ab".repeat(32),
        profile: "flurry-det-1".into(),
        price_wei_per_mtok: PRICE,
        prompt_price_wei_per_mtok: PRICE,
        max_jobs: 4,
    }
}

fn request(max_tokens: u32) -> InferRequest {
    let mut r = InferRequest::new(vec![InferMessage {
        role: "user".into(),
        content: "count".into(),
    }]);
    r.max_tokens = Some(max_tokens);
    r.seed = Some(1);
    r
}

/// Streams `start`, then tokens `t0 t1 …` up to `max_tokens`, then `done`, a few
/// milliseconds apart; stops when the reader goes.
async fn engine(mut jobs: mpsc::Receiver<Inbound>) {
    while let Some(job) = jobs.recv().await {
        tokio::spawn(async move {
            let n = job.request.max_tokens.unwrap_or(16);
            let start = InferFrame::Start {
                model: job.request.model.clone().unwrap_or_default(),
                prompt_tokens: PROMPT_TOKENS,
            };
            if job.reply.send(start).await.is_err() {
                return;
            }
            for i in 0..n {
                tokio::time::sleep(Duration::from_millis(2)).await;
                if job
                    .reply
                    .send(InferFrame::Token {
                        text: format!("t{i} "),
                    })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let _ = job
                .reply
                .send(InferFrame::Done {
                    finish_reason: "length".into(),
                    completion_tokens: n,
                })
                .await;
        });
    }
}

async fn net(id: &Identity, hub: Option<&str>) -> Net {
    Net::start_with_keypair(
        id.to_libp2p_keypair().unwrap(),
        NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            mdns: false,
            // With a hub, loopback counts for AutoNAT: the hub becomes a DHT server.
            autonat_global_only: hub.is_none(),
            bootstrap: hub.map(|h| vec![h.to_string()]).unwrap_or_default(),
            ..NetConfig::default()
        },
    )
    .await
    .unwrap()
    .0
}

async fn listen_addr(net: &Net, id: &Identity) -> String {
    let listen = loop {
        let l = net.status().await.unwrap().listen;
        if let Some(a) = l.into_iter().next() {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    format!("{listen}/p2p/{}", id.peer_id())
}

struct World {
    _anvil: LocalChain,
    seller_id: Identity,
    seller_addr: String,
    seller: Arc<Market>,
    buyer: Arc<Market>,
    hostile_id: Identity,
    hostile_net: Net,
    hostile_chain: Chain,
    dir: PathBuf,
    _hub: Option<Net>,
    seller_net: Net,
}

impl World {
    async fn seller_net_peers(&self) -> Vec<String> {
        self.seller_net
            .peers()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.peer_id)
            .collect()
    }
}

/// A seller and a buyer that heard its offer (and a hostile peer), all connected; or,
/// `through_dht`, a hub (a DHT server) they all join through, and a buyer that heard
/// no offer.
async fn world_with(through_dht: bool) -> World {
    let anvil = LocalChain::spawn(&anvil_path(), None).unwrap();
    let ids: Vec<Identity> = (0..4).map(|_| Identity::generate().unwrap()).collect();
    let (deployer, seller_id, buyer_id, hostile_id) = (
        ids[0].clone(),
        ids[1].clone(),
        ids[2].clone(),
        ids[3].clone(),
    );
    let mut chain = Chain::connect(anvil.url(), &deployer).await.unwrap();
    for id in &ids {
        chain
            .dev_fund(id.address().parse().unwrap(), parse_ether("10").unwrap())
            .await
            .unwrap();
    }
    let contracts = chain.deploy(&DeployParams::default()).await.unwrap();
    let connect = |id: &Identity| {
        let url = anvil.url().to_string();
        let id = id.clone();
        async move {
            Chain::connect(&url, &id)
                .await
                .unwrap()
                .with_contracts(contracts)
        }
    };
    let dir = std::env::temp_dir().join(format!(
        "flurry-jobs-{}-{}",
        std::process::id(),
        seller_id.address()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let payments = |id: &Identity, chain: &Chain, name: &str| Payments {
        receiver: Arc::new(
            TicketReceiver::open(
                &dir.join(format!("{name}.db")),
                chain.address(),
                chain.domain().unwrap(),
                ReceiverConfig {
                    // A ticket of 4 tokens is worth 4 gwei: 1 in 5 wins.
                    face_value: U256::from(20_000_000_000u64),
                    ..ReceiverConfig::default()
                },
            )
            .unwrap(),
        ),
        sender: Arc::new(TicketSender::new(id.clone(), chain.domain().unwrap())),
        tokens_per_ticket: TOKENS_PER_TICKET,
        pay_timeout: Duration::from_secs(2),
    };

    let seller_chain = connect(&seller_id).await;
    seller_chain
        .stake(parse_ether("0.1").unwrap())
        .await
        .unwrap();
    let (hub, hub_addr) = if through_dht {
        let id = Identity::generate().unwrap();
        let n = Net::start_with_keypair(
            id.to_libp2p_keypair().unwrap(),
            NetConfig {
                listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
                mdns: false,
                autonat_global_only: false,
                ..NetConfig::default()
            },
        )
        .await
        .unwrap()
        .0;
        let a = listen_addr(&n, &id).await;
        (Some(n), Some(a))
    } else {
        (None, None)
    };
    let hub_addr = hub_addr.as_deref();
    let seller_net = net(&seller_id, hub_addr).await;
    let seller_addr = listen_addr(&seller_net, &seller_id).await;
    let buyer_net = net(&buyer_id, hub_addr).await;
    let hostile_net = net(&hostile_id, hub_addr).await;
    if let Some(h) = &hub {
        // The others dial the hub back for AutoNAT: it turns public, a DHT server.
        for _ in 0..600 {
            if h.status().await.unwrap().nat == flurry_net::Nat::Public {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(h.status().await.unwrap().nat, flurry_net::Nat::Public);
    }
    let seller = Market::new(
        Arc::new(seller_id.clone()),
        seller_net.clone(),
        Some(seller_chain.clone()),
    );
    seller.set_payments(payments(&seller_id, &seller_chain, "seller"));
    let offer = seller.sell(sale()).await.unwrap();
    let (jobs, queued) = mpsc::channel(16);
    seller.serve_jobs(jobs).unwrap();
    tokio::spawn(engine(queued));

    let buyer_chain = connect(&buyer_id).await;
    buyer_chain
        .fund_deposit(parse_ether("1").unwrap())
        .await
        .unwrap();
    if !through_dht {
        buyer_net
            .connect(&seller_id.peer_id(), std::slice::from_ref(&seller_addr))
            .await
            .unwrap();
    }
    let buyer = Market::new(
        Arc::new(buyer_id.clone()),
        buyer_net,
        Some(buyer_chain.clone()),
    );
    buyer.set_payments(payments(&buyer_id, &buyer_chain, "buyer"));
    if !through_dht {
        buyer.on_gossip(Some(&seller_id.peer_id()), &offer.to_bytes().unwrap());
    }

    let hostile_chain = connect(&hostile_id).await;
    hostile_chain
        .fund_deposit(parse_ether("1").unwrap())
        .await
        .unwrap();
    hostile_net
        .connect(&seller_id.peer_id(), std::slice::from_ref(&seller_addr))
        .await
        .unwrap();
    World {
        _anvil: anvil,
        seller_id,
        seller_addr,
        seller,
        buyer,
        hostile_id,
        hostile_net,
        hostile_chain,
        dir,
        _hub: hub,
        seller_net,
    }
}

async fn world() -> World {
    world_with(false).await
}

/// Buys `max_tokens` tokens and returns the text and the price paid.
async fn buy(buyer: &Arc<Market>, max_tokens: u32) -> (String, flurry_market::Bought) {
    let mut p = buyer.buy("m", request(max_tokens), None).await.unwrap();
    let mut text = String::new();
    while let Some(f) = p.frames.recv().await {
        match f.unwrap() {
            InferFrame::Token { text: t } => text.push_str(&t),
            InferFrame::Done { .. } => break,
            InferFrame::Start { .. } | InferFrame::Receipt { .. } => {}
            InferFrame::Error { message, .. } => panic!("{message}"),
        }
    }
    let report = p.report.lock().unwrap().clone();
    (text, report)
}

async fn open(w: &World) -> flurry_net::PeerStream {
    w.hostile_net
        .open_stream(
            &w.seller_id.peer_id(),
            std::slice::from_ref(&w.seller_addr),
            job::MARKET_PROTOCOL,
        )
        .await
        .unwrap()
}

/// The hostile peer's bid for the seller's model.
async fn hostile_bid(w: &World) -> job::Bid {
    let mut s = open(w).await;
    write_frame(
        &mut s,
        &Ask::Cfp {
            v: JOB_VERSION,
            model_id: sale().model_id,
        },
        job::MAX_ASK_BYTES,
    )
    .await
    .unwrap();
    match read_frame::<_, Reply>(&mut s, job::MAX_REPLY_BYTES)
        .await
        .unwrap()
    {
        Some(Reply::Bid(b)) => *b,
        other => panic!("no bid: {other:?}"),
    }
}

async fn first_error(s: &mut flurry_net::PeerStream) -> (ErrorCode, String) {
    loop {
        match read_frame::<_, JobFrame>(s, 64 * 1024).await.unwrap() {
            Some(JobFrame::Error { code, message }) => return (code, message),
            Some(_) => {}
            None => panic!("closed without an error"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyers_pay_per_token_and_one_that_stops_paying_is_cut_off() {
    let w = world().await;
    let prices = Prices {
        output: PRICE,
        prompt: PRICE,
    };

    // An honest job: the whole answer, paid for what it cost and half a ticket more at
    // most (the prompt estimate aside).
    let (text, report) = buy(&w.buyer, 40).await;
    assert_eq!(text.split_whitespace().count(), 40, "{text}");
    assert_eq!(report.provider, w.seller_id.peer_id());
    assert_eq!((report.tokens, report.failovers, report.bids), (40, 0, 1));
    let paid: U256 = report.price_paid_wei.parse().unwrap();
    let owed = prices.owed(u64::from(PROMPT_TOKENS), 40);
    let estimate = job::prompt_estimate(&request(40));
    assert!(paid >= owed, "{paid} < {owed}");
    assert!(
        paid <= prices.owed(estimate.max(u64::from(PROMPT_TOKENS)), 40 + 4),
        "{paid} paid for {owed}"
    );
    // The seller records the job once the buyer has closed its side.
    let mut sold = w.seller.jobs();
    for _ in 0..100 {
        if !sold.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        sold = w.seller.jobs();
    }
    assert_eq!(sold.len(), 1);
    assert_eq!((sold[0].role.as_str(), sold[0].tokens), ("sold", 40));
    assert_eq!(sold[0].paid_wei, report.price_paid_wei, "{sold:?}");
    assert_eq!(w.buyer.jobs()[0].role, "bought");

    // A buyer that pays up front and then never again gets the tokens its tickets
    // cover, not one more, and a payment error.
    let bid = hostile_bid(&w).await;
    let sender = TicketSender::new(w.hostile_id.clone(), w.hostile_chain.domain().unwrap());
    let r = request(1000);
    let upfront = job::upfront(&prices, &r, 0, bid.tokens_per_ticket);
    let payee = w.seller_id.address().parse().unwrap();
    let tickets = sender.pay(&bid.params, payee, upfront, b"job").unwrap();
    let credit = bid.params.ticket_value() * U256::from(tickets.len());
    let mut s = open(&w).await;
    let ask = Ask::Job {
        v: JOB_VERSION,
        model_id: sale().model_id,
        request: r,
        skip: 0,
        prefix: None,
        tickets,
        signed: None,
    };
    write_frame(&mut s, &ask, job::MAX_ASK_BYTES).await.unwrap();
    let mut tokens = 0u64;
    let (code, message) = loop {
        match read_frame::<_, JobFrame>(&mut s, 64 * 1024).await.unwrap() {
            Some(JobFrame::Token { .. }) => tokens += 1,
            Some(JobFrame::Error { code, message }) => break (code, message),
            Some(JobFrame::Done { .. }) => panic!("the whole answer came unpaid"),
            Some(_) => {}
            None => panic!("closed without an error"),
        }
    };
    assert_eq!(code, ErrorCode::Payment, "{message}");
    assert!(message.contains("no ticket"), "{message}");
    let prompt = u64::from(PROMPT_TOKENS);
    assert!(
        prices.owed(prompt, tokens) <= credit && credit < prices.owed(prompt, tokens + 1),
        "{tokens} tokens for {credit} wei of tickets"
    );
    assert!(tokens < 1000);
    let _ = s.close().await;

    // A failover's job: the seller generates the held tokens again, checks them against
    // the buyer's digest, and sends only what follows; tokens that differ stop it.
    let held = ["t0 ", "t1 ", "t2 "];
    for (prefix, same) in [
        (job::prefix_digest(&held), true),
        (job::prefix_digest(&["x", "y", "z"]), false),
    ] {
        let bid = hostile_bid(&w).await;
        let r = request(8);
        let value = job::upfront(&prices, &r, 3, bid.tokens_per_ticket) + prices.owed(0, 8);
        let tickets = sender.pay(&bid.params, payee, value, b"job").unwrap();
        let mut s = open(&w).await;
        let ask = Ask::Job {
            v: JOB_VERSION,
            model_id: sale().model_id,
            request: r,
            skip: 3,
            prefix: Some(prefix),
            tickets,
            signed: None,
        };
        write_frame(&mut s, &ask, job::MAX_ASK_BYTES).await.unwrap();
        let mut texts = Vec::new();
        let end = loop {
            match read_frame::<_, JobFrame>(&mut s, 64 * 1024).await.unwrap() {
                Some(JobFrame::Token { text }) => texts.push(text),
                Some(f @ (JobFrame::Done { .. } | JobFrame::Error { .. })) => break f,
                Some(_) => {}
                None => panic!("closed early"),
            }
        };
        if same {
            assert!(matches!(end, JobFrame::Done { .. }), "{end:?}");
            assert_eq!(texts, ["t3 ", "t4 ", "t5 ", "t6 ", "t7 "]);
        } else {
            assert!(texts.is_empty(), "{texts:?}");
            assert!(
                matches!(&end, JobFrame::Error { code: ErrorCode::Model, message } if message.contains("differs")),
                "{end:?}"
            );
        }
        let _ = s.close().await;
    }

    // First frames that break the rules are refused, each with its reason.
    let mut s = open(&w).await;
    let unpaid = Ask::Job {
        v: JOB_VERSION,
        model_id: sale().model_id,
        request: request(8),
        skip: 0,
        prefix: None,
        tickets: Vec::new(),
        signed: None,
    };
    write_frame(&mut s, &unpaid, job::MAX_ASK_BYTES)
        .await
        .unwrap();
    let (code, message) = first_error(&mut s).await;
    assert_eq!(code, ErrorCode::Payment);
    assert!(message.contains("up front"), "{message}");
    // Tickets signed by another key, handed over by the hostile peer.
    let bid = hostile_bid(&w).await;
    let stolen = TicketSender::new(w.seller_id.clone(), w.hostile_chain.domain().unwrap());
    let mut p = bid.params.clone();
    p.sender = stolen.address();
    let forged = stolen.pay(&p, payee, U256::from(1u8), b"x").unwrap();
    let mut s = open(&w).await;
    let ask = Ask::Job {
        v: JOB_VERSION,
        model_id: sale().model_id,
        request: request(8),
        skip: 0,
        prefix: None,
        tickets: forged,
        signed: None,
    };
    write_frame(&mut s, &ask, job::MAX_ASK_BYTES).await.unwrap();
    let (code, message) = first_error(&mut s).await;
    assert_eq!(code, ErrorCode::Payment);
    assert!(message.contains("not yours"), "{message}");
    // A length prefix far over the bound is refused before anything is read.
    let mut s = open(&w).await;
    s.write_all(&(64u32 << 20).to_be_bytes()).await.unwrap();
    s.flush().await.unwrap();
    match read_frame::<_, Reply>(&mut s, job::MAX_REPLY_BYTES)
        .await
        .unwrap()
    {
        Some(Reply::Error { code, .. }) => assert_eq!(code, ErrorCode::TooLarge),
        other => panic!("{other:?}"),
    }
    // A model the seller does not sell gets no bid.
    let mut s = open(&w).await;
    let cfp = Ask::Cfp {
        v: JOB_VERSION,
        model_id: "cd".repeat(32),
    };
    write_frame(&mut s, &cfp, job::MAX_ASK_BYTES).await.unwrap();
    match read_frame::<_, Reply>(&mut s, job::MAX_REPLY_BYTES)
        .await
        .unwrap()
    {
        Some(Reply::Error { code, .. }) => assert_eq!(code, ErrorCode::Model),
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&w.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_calls_for_proposals_is_refused_while_an_honest_job_runs() {
    let w = world().await;
    let flood = {
        let net = w.hostile_net.clone();
        let seller = w.seller_id.peer_id();
        let addr = w.seller_addr.clone();
        tokio::spawn(async move {
            let (mut bids, mut limited) = (0, 0);
            for _ in 0..300 {
                // Once cut off, the flooder cannot connect again (each try would wait for
                // the connection timeout): it stops.
                let open =
                    net.open_stream(&seller, std::slice::from_ref(&addr), job::MARKET_PROTOCOL);
                let Ok(Ok(mut s)) = tokio::time::timeout(Duration::from_secs(2), open).await else {
                    break;
                };
                let cfp = Ask::Cfp {
                    v: JOB_VERSION,
                    model_id: sale().model_id,
                };
                if write_frame(&mut s, &cfp, job::MAX_ASK_BYTES).await.is_err() {
                    continue;
                }
                match read_frame::<_, Reply>(&mut s, job::MAX_REPLY_BYTES).await {
                    Ok(Some(Reply::Bid(_))) => bids += 1,
                    Ok(Some(Reply::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    })) => limited += 1,
                    Ok(Some(other)) => panic!("{other:?}"),
                    // Cut off: the stream ends without an answer.
                    Ok(None) | Err(_) => {}
                }
            }
            (bids, limited)
        })
    };
    let (text, report) = buy(&w.buyer, 60).await;
    assert_eq!(text.split_whitespace().count(), 60);
    assert_eq!(report.tokens, 60);
    let (bids, limited) = flood.await.unwrap();
    // The bucket holds a burst of 20 calls (and refills 2 a second); every call beyond it
    // is refused, and a peer that keeps calling through 60 refusals in a minute is cut
    // off (the 60th gets no answer): its later calls find no connection.
    assert!((20..=25).contains(&bids), "{bids} bids, {limited} refused");
    assert_eq!(limited, 59, "{bids} bids, {limited} refused");
    let status = w.seller.status();
    assert_eq!(status.banned, 1);
    assert_eq!(status.refused_asks, limited + 1);
    let peers = w.seller_net_peers().await;
    assert!(!peers.contains(&w.hostile_id.peer_id()), "{peers:?}");
    // The honest buyer still buys.
    let (_, again) = buy(&w.buyer, 8).await;
    assert_eq!(again.tokens, 8);
    let _ = std::fs::remove_dir_all(&w.dir);
}

/// A buyer that heard no offer finds the seller of a ModelId through the DHT (the
/// seller is listed as a provider when it starts selling), checks its stake on the chain
/// and buys from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_that_heard_no_offer_finds_the_seller_in_the_dht() {
    let w = world_with(true).await;
    assert!(w.buyer.offers(None, true).await.unwrap().is_empty());
    // By name there is nothing to ask for: names are in offers, not in the DHT.
    assert!(w.buyer.buy("m", request(4), None).await.is_err());
    let mut got = None;
    for _ in 0..100 {
        match w.buyer.buy(&sale().model_id, request(12), None).await {
            Ok(p) => {
                got = Some(p);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let mut p = got.expect("the DHT never listed the seller");
    let mut tokens = 0;
    while let Some(f) = p.frames.recv().await {
        match f.unwrap() {
            InferFrame::Token { .. } => tokens += 1,
            InferFrame::Done { .. } => break,
            _ => {}
        }
    }
    assert_eq!(tokens, 12);
    assert_eq!(p.report.lock().unwrap().provider, w.seller_id.peer_id());
    // A price cap below the seller's price: its bid is refused.
    let capped = w
        .buyer
        .buy(&sale().model_id, request(4), Some(PRICE - 1))
        .await;
    assert!(capped.is_err());
    let _ = std::fs::remove_dir_all(&w.dir);
}
