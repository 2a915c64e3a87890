//! Payments against a hostile counterpart, on a real anvil: a payee that asks for more
//! than the sender allows, parameters naming someone else, a sender that learns the
//! recipient's random value from the chain, and a flood of parameter requests. Each test
//! performs the attack and checks that it fails.

use std::path::PathBuf;

use alloy::consensus::Transaction as _;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::sol_types::SolCall;
use flurry_chain::bindings::TicketBroker;
use flurry_chain::ticket::{TicketParams, rand_hash, win_prob_one_in};
use flurry_chain::{
    Address, Chain, DeployParams, LocalChain, ReceiverConfig, Rejection, SenderError, SenderFunds,
    SenderLimits, TicketReceiver, TicketSender, U256, find_anvil, parse_ether,
};
use flurry_identity::Identity;

fn anvil_path() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let pinned = repo.join("contracts/node_modules/.bin/anvil");
    find_anvil(Some(&pinned)).unwrap_or_else(|_| {
        panic!(
            "anvil is needed for these tests: run `make chain-deps` (npm ci in contracts/), or set FLURRY_ANVIL"
        )
    })
}

fn eth(s: &str) -> U256 {
    parse_ether(s).unwrap()
}

fn addr(id: &Identity) -> Address {
    Address::from(id.address_bytes())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh anvil with the contracts; the sender has `deposit` ETH in escrow.
struct World {
    anvil: LocalChain,
    sender_id: Identity,
    recipient_id: Identity,
    sender_chain: Chain,
    recipient_chain: Chain,
}

async fn world(deposit: &str) -> World {
    let anvil = LocalChain::spawn(&anvil_path(), None).unwrap();
    let sender_id = Identity::generate().unwrap();
    let recipient_id = Identity::generate().unwrap();
    let mut chain = Chain::connect(anvil.url(), &sender_id).await.unwrap();
    for id in [&sender_id, &recipient_id] {
        chain.dev_fund(addr(id), eth("100")).await.unwrap();
    }
    let contracts = chain.deploy(&DeployParams::default()).await.unwrap();
    let sender_chain = chain.with_contracts(contracts);
    sender_chain.fund_deposit(eth(deposit)).await.unwrap();
    let recipient_chain = Chain::connect(anvil.url(), &recipient_id)
        .await
        .unwrap()
        .with_contracts(contracts);
    World {
        anvil,
        sender_id,
        recipient_id,
        sender_chain,
        recipient_chain,
    }
}

/// Attack: a hostile payee answers the parameter request with `face_value` = the
/// sender's whole deposit and `win_prob` = 2^256 - 1 (every ticket wins), so that one
/// ticket would take the deposit. Before the sender checked its own limits it signed
/// whatever the payee asked for. Now it refuses (naming the limit and its config key),
/// signs nothing, and the deposit on chain is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payee_asking_for_the_whole_deposit_gets_no_ticket() {
    let w = world("1").await;
    let domain = w.sender_chain.domain().unwrap();
    let payee = addr(&w.recipient_id);
    let deposit = w
        .sender_chain
        .sender_info(addr(&w.sender_id))
        .await
        .unwrap()
        .deposit;
    assert_eq!(deposit, eth("1"));
    let hostile = TicketParams {
        domain,
        recipient: payee,
        sender: addr(&w.sender_id),
        face_value: deposit,
        win_prob: U256::MAX,
        recipient_rand_hash: rand_hash(U256::from(7)),
        expiration_time: now() + 3600,
    };
    let sender = TicketSender::new(w.sender_id.clone(), domain);
    let refused = sender.pay(&hostile, payee, eth("0.001"), b"job");
    match &refused {
        Err(e @ SenderError::FaceValueTooHigh { face_value, .. }) => {
            assert_eq!(*face_value, deposit);
            assert!(e.to_string().contains("max_face_value_eth"), "{e}");
        }
        other => panic!("the sender must refuse the face value, got {other:?}"),
    }
    assert!(sender.ticket(&hostile, payee, b"job").is_err());

    // Within the face value limit, an always-winning ticket is still worth far more than
    // the sender allows per ticket.
    let greedy = TicketParams {
        face_value: eth("0.05"),
        ..hostile.clone()
    };
    match sender.pay(&greedy, payee, eth("0.001"), b"job") {
        Err(e @ SenderError::TicketValueTooHigh { .. }) => {
            assert!(e.to_string().contains("max_ticket_ev_eth"), "{e}")
        }
        other => panic!("the sender must refuse the expected value, got {other:?}"),
    }
    // A user who raised both limits is still stopped by the deposit bound.
    let trusting = TicketSender::new(w.sender_id.clone(), domain).with_limits(SenderLimits {
        max_face_value: U256::MAX,
        max_ticket_ev: U256::MAX,
    });
    let beyond = TicketParams {
        face_value: deposit + U256::from(1),
        ..hostile.clone()
    };
    assert!(matches!(
        trusting.check_deposit(&beyond, deposit),
        Err(SenderError::AboveDeposit { .. })
    ));
    // Zero and expired terms are refused as well.
    for bad in [
        TicketParams {
            win_prob: U256::ZERO,
            ..greedy.clone()
        },
        TicketParams {
            expiration_time: now() - 1,
            face_value: eth("0.001"),
            win_prob: win_prob_one_in(100),
            ..hostile.clone()
        },
    ] {
        assert!(sender.pay(&bad, payee, eth("0.00001"), b"").is_err());
    }

    let after = w
        .sender_chain
        .sender_info(addr(&w.sender_id))
        .await
        .unwrap();
    assert_eq!(after.deposit, eth("1"), "the deposit is intact");
    drop(w.anvil);
}

/// Attack: the node at the URL the user typed (a proxy, or a payee passing on someone
/// else's terms) answers with parameters whose recipient is another address. Before,
/// the sender signed tickets for whatever recipient the parameters named; now it
/// refuses unless the recipient is the payee the user meant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_naming_another_recipient_are_refused() {
    let w = world("1").await;
    let domain = w.sender_chain.domain().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A real receiver, but of someone other than the payee.
    let other = Identity::generate().unwrap();
    let elsewhere = TicketReceiver::open(
        &dir.path().join("other.db"),
        addr(&other),
        domain,
        ReceiverConfig::default(),
    )
    .unwrap();
    let params = elsewhere.params(addr(&w.sender_id)).unwrap();
    let sender = TicketSender::new(w.sender_id.clone(), domain);
    let payee = addr(&w.recipient_id);
    match sender.pay(&params, payee, params.ticket_value(), b"") {
        Err(SenderError::WrongRecipient { expected, got }) => {
            assert_eq!((expected, got), (payee, addr(&other)))
        }
        other => panic!("tickets for another recipient must be refused, got {other:?}"),
    }
    assert!(sender.ticket(&params, payee, b"").is_err());
    // Parameters issued to another sender are refused too (they would be refused by the
    // recipient anyway, after the ticket was signed).
    let stranger = elsewhere.params(Address::repeat_byte(0x55)).unwrap();
    assert!(matches!(
        sender.ticket(&stranger, addr(&other), b""),
        Err(SenderError::NotOurParams { .. })
    ));
    // The right payee is paid.
    assert_eq!(
        sender
            .pay(&params, addr(&other), params.ticket_value(), b"")
            .unwrap()
            .len(),
        1
    );
    drop(w.anvil);
}

/// Attack: once a winning ticket is redeemed, its `recipientRand` is in the redemption
/// transaction for everyone to read. A sender that keeps using those parameters can
/// then grind nonces and send only tickets it knows lose, paying nothing. Before, the
/// receiver accepted them (as paid, at full expected value) until the parameters
/// expired an hour later; now the parameters are retired before the redemption is
/// sent, the losing ticket is refused, and fresh parameters carry a new commitment
/// under which the sender's tickets can win again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revealed_random_value_cannot_be_used_to_send_only_losers() {
    let w = world("1").await;
    let domain = w.sender_chain.domain().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let receiver = TicketReceiver::open(
        &dir.path().join("tickets.db"),
        addr(&w.recipient_id),
        domain,
        ReceiverConfig {
            face_value: eth("0.001"),
            win_prob: win_prob_one_in(2),
            ..ReceiverConfig::default()
        },
    )
    .unwrap();
    let payee = addr(&w.recipient_id);
    let sender = TicketSender::new(w.sender_id.clone(), domain);
    let old = receiver.params(sender.address()).unwrap();

    // Pay until a ticket wins (one in two), then let the receiver redeem it.
    let mut won = false;
    for i in 0..64u32 {
        let t = sender.ticket(&old, payee, &i.to_be_bytes()).unwrap();
        let a = receiver
            .receive_checked(&w.recipient_chain, &t)
            .await
            .unwrap();
        if a.winner {
            won = true;
            break;
        }
    }
    assert!(won, "no winner in 64 tickets at one in two");
    let report = receiver.redeem_pending(&w.recipient_chain).await.unwrap();
    assert_eq!(report.redeemed, 1, "{report:?}");

    // The sender reads the random value out of the redemption transaction.
    let provider = ProviderBuilder::new().connect_http(w.anvil.url().parse().unwrap());
    let tx = provider
        .get_transaction_by_hash(report.txs[0].hash)
        .await
        .unwrap()
        .expect("the redemption transaction is on chain");
    let call = TicketBroker::batchRedeemWinningTicketsCall::abi_decode(tx.input()).unwrap();
    let revealed = call.recipientRands[0];
    assert_eq!(rand_hash(revealed), old.recipient_rand_hash);

    // It grinds nonces until it holds a ticket it knows loses, and sends only that.
    let loser = (0..256u32)
        .map(|i| sender.ticket(&old, payee, &i.to_be_bytes()).unwrap())
        .find(|t| !t.wins(revealed))
        .expect("half the tickets lose");
    assert_eq!(
        receiver.receive_checked(&w.recipient_chain, &loser).await,
        Err(Rejection::ParamsRetired(old.recipient_rand_hash)),
        "a ticket under a revealed random value must be refused"
    );

    // Fresh parameters: a new commitment, and tickets under it win again.
    let fresh = receiver.params(sender.address()).unwrap();
    assert_ne!(fresh.recipient_rand_hash, old.recipient_rand_hash);
    let mut winners = 0;
    for i in 0..64u32 {
        let t = sender.ticket(&fresh, payee, &i.to_be_bytes()).unwrap();
        if receiver
            .receive_checked(&w.recipient_chain, &t)
            .await
            .unwrap()
            .winner
        {
            winners += 1;
        }
    }
    assert!(winners > 0, "tickets under fresh parameters can win");
}

/// Attack: a client asks for ticket parameters over and over, as one sender and as
/// thousands of made-up senders. Before, every request added a row that lived forever
/// (the table grew without bound). Now each sender holds at most
/// `max_params_per_sender` live sets and the table at most `max_params` live ones (plus
/// retired ones a pending winner still needs); tickets under a retired set are refused
/// with a reason, and the newest set still works.
#[test]
fn a_flood_of_parameter_requests_does_not_grow_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let domain = flurry_chain::ticket::Domain {
        chain_id: 31337,
        broker: Address::repeat_byte(0xb0),
    };
    let me = Address::repeat_byte(0x11);
    let receiver = TicketReceiver::open(
        &dir.path().join("tickets.db"),
        me,
        domain,
        ReceiverConfig {
            max_params_per_sender: 4,
            max_params: 32,
            ..ReceiverConfig::default()
        },
    )
    .unwrap();
    let sender_id = Identity::generate().unwrap();
    let sender = TicketSender::new(sender_id.clone(), domain);
    let first = receiver.params(sender.address()).unwrap();
    let mut last = first.clone();
    for _ in 0..300 {
        last = receiver.params(sender.address()).unwrap();
        assert!(receiver.params_rows().unwrap() <= 4);
    }
    let funds = SenderFunds {
        deposit: eth("10"),
        reserve_available: U256::ZERO,
        unlocking: false,
    };
    let stale = sender.ticket(&first, me, b"").unwrap();
    assert!(matches!(
        receiver.receive(&stale, &funds),
        Err(Rejection::UnknownParams(_) | Rejection::ParamsRetired(_))
    ));
    receiver
        .receive(&sender.ticket(&last, me, b"").unwrap(), &funds)
        .unwrap();

    // Made-up senders: the table stays within the global bound.
    for i in 0..300u32 {
        let mut a = [0u8; 20];
        a[..4].copy_from_slice(&i.to_be_bytes());
        receiver.params(Address::from(a)).unwrap();
        assert!(receiver.params_rows().unwrap() <= 32);
    }
}
