//! Property tests of ticket encoding, decoding and validation: hostile bytes and JSON
//! never panic, and a signed ticket with any field changed is refused.

use flurry_chain::ticket::{
    Domain, SignedTicket, TicketParams, expected_value, is_winning, recover_signer,
};
use flurry_chain::{
    Address, B256, ReceiverConfig, SenderFunds, SenderLimits, TicketReceiver, TicketSender, U256,
};
use flurry_identity::Identity;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn domain() -> Domain {
    Domain {
        chain_id: 31337,
        broker: Address::repeat_byte(0xb0),
    }
}

fn rich() -> SenderFunds {
    SenderFunds {
        deposit: U256::MAX,
        reserve_available: U256::ZERO,
        unlocking: false,
    }
}

/// Everything a hostile payer or payee can hand the node, parsed and used: no panic.
fn poke(bytes: &[u8], receiver: &TicketReceiver, sender: &TicketSender) {
    if let Ok(t) = serde_json::from_slice::<SignedTicket>(bytes) {
        let d = domain();
        let _ = t.ticket.hash(&d);
        let _ = t.signer(&d);
        let _ = t.wins(U256::from(42));
        let _ = t.ticket.to_sol();
        let _ = expected_value(t.ticket.face_value, t.ticket.win_prob);
        let _ = receiver.receive(&t, &rich());
    }
    if let Ok(p) = serde_json::from_slice::<TicketParams>(bytes) {
        let _ = p.ticket_value();
        let _ = sender.check(&p, p.recipient);
        let _ = sender.pay(&p, p.recipient, U256::from(1), b"");
    }
    let _ = recover_signer(B256::repeat_byte(1), bytes);
    let _ = is_winning(bytes, U256::from(7), U256::MAX);
}

struct Fixture {
    _dir: tempfile::TempDir,
    receiver: TicketReceiver,
    sender: TicketSender,
    params: TicketParams,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let me = Address::repeat_byte(0x22);
    let receiver = TicketReceiver::open(
        &dir.path().join("t.db"),
        me,
        domain(),
        ReceiverConfig::default(),
    )
    .unwrap();
    let sender =
        TicketSender::new(Identity::generate().unwrap(), domain()).with_limits(SenderLimits {
            max_face_value: U256::MAX,
            max_ticket_ev: U256::MAX,
        });
    let params = receiver.params(sender.address()).unwrap();
    Fixture {
        _dir: dir,
        receiver,
        sender,
        params,
    }
}

#[test]
fn hostile_bytes_never_panic() {
    let f = fixture();
    let mut runner = TestRunner::new(Config::with_cases(2000));
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..400), |bytes| {
            poke(&bytes, &f.receiver, &f.sender);
            Ok(())
        })
        .unwrap();
}

/// A valid ticket's JSON with bytes overwritten, cut or inserted: never a panic, and
/// whatever still parses into a different ticket is refused.
#[test]
fn corrupted_ticket_json_never_panics_and_is_refused() {
    let f = fixture();
    let good = f
        .sender
        .ticket(&f.params, f.params.recipient, b"job")
        .unwrap();
    let text = serde_json::to_vec(&good).unwrap();
    let len = text.len();
    let edits = proptest::collection::vec((0..len, any::<u8>(), 0..3u8), 1..6);
    let mut runner = TestRunner::new(Config::with_cases(2000));
    runner
        .run(&edits, |edits| {
            let mut bytes = text.clone();
            for (at, byte, kind) in edits {
                let at = at.min(bytes.len().saturating_sub(1));
                match kind {
                    0 if !bytes.is_empty() => bytes[at] = byte,
                    1 => bytes.truncate(at),
                    _ => bytes.insert(at, byte),
                }
            }
            poke(&bytes, &f.receiver, &f.sender);
            if let Ok(t) = serde_json::from_slice::<SignedTicket>(&bytes)
                && t != good
            {
                prop_assert!(f.receiver.receive(&t, &rich()).is_err(), "{t:?} accepted");
            }
            Ok(())
        })
        .unwrap();
}

/// Which field of a signed ticket to change, and how.
#[derive(Debug, Clone)]
enum Change {
    Recipient(Address),
    Sender(Address),
    FaceValue(U256),
    WinProb(U256),
    Nonce(U256),
    Expiration(u64),
    RandHash(B256),
    AuxData(Vec<u8>),
    SigByte(usize, u8),
}

fn change() -> impl Strategy<Value = Change> {
    let addr = any::<[u8; 20]>().prop_map(Address::from);
    let word = any::<[u8; 32]>().prop_map(U256::from_be_bytes);
    prop_oneof![
        addr.clone().prop_map(Change::Recipient),
        addr.prop_map(Change::Sender),
        word.clone().prop_map(Change::FaceValue),
        word.clone().prop_map(Change::WinProb),
        word.prop_map(Change::Nonce),
        any::<u64>().prop_map(Change::Expiration),
        any::<[u8; 32]>().prop_map(|b| Change::RandHash(B256::from(b))),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Change::AuxData),
        (0..65usize, 1..=255u8).prop_map(|(i, x)| Change::SigByte(i, x)),
    ]
}

fn apply(t: &SignedTicket, c: &Change) -> SignedTicket {
    let mut t = t.clone();
    match c {
        Change::Recipient(a) => t.ticket.recipient = *a,
        Change::Sender(a) => t.ticket.sender = *a,
        Change::FaceValue(v) => t.ticket.face_value = *v,
        Change::WinProb(v) => t.ticket.win_prob = *v,
        Change::Nonce(v) => t.ticket.sender_nonce = *v,
        Change::Expiration(v) => t.ticket.expiration_time = *v,
        Change::RandHash(h) => t.ticket.recipient_rand_hash = *h,
        Change::AuxData(d) => t.ticket.aux_data = d.clone().into(),
        Change::SigByte(i, x) => {
            let mut sig = t.sig.to_vec();
            sig[*i] ^= x;
            t.sig = sig.into();
        }
    }
    t
}

/// A signed ticket with any one field changed (and not signed again) fails validation:
/// its signature no longer recovers the sender, or the field no longer matches what
/// the recipient issued. The untouched ticket is accepted at the end, so the refusals
/// are not the receiver refusing everything.
#[test]
fn a_ticket_with_any_field_changed_is_refused() {
    let f = fixture();
    let good = f
        .sender
        .ticket(&f.params, f.params.recipient, b"job")
        .unwrap();
    let d = domain();
    let mut runner = TestRunner::new(Config::with_cases(1000));
    runner
        .run(&change(), |c| {
            let bad = apply(&good, &c);
            if bad == good {
                return Ok(());
            }
            if !matches!(c, Change::SigByte(..)) {
                prop_assert_ne!(bad.ticket.hash(&d), good.ticket.hash(&d));
            }
            prop_assert_ne!(bad.signer(&d).ok(), Some(bad.ticket.sender));
            prop_assert!(
                f.receiver.receive(&bad, &rich()).is_err(),
                "changed ticket accepted: {c:?}"
            );
            Ok(())
        })
        .unwrap();
    f.receiver.receive(&good, &rich()).unwrap();
}
