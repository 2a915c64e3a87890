//! Fuzzes what a payer or a payee can send a node: signed tickets and ticket parameters
//! as JSON, and raw signature bytes. Parsed tickets go through hashing, signature
//! recovery, the win rule and the receiver's full validation (a real SQLite store);
//! parsed parameters go through the sender's checks. None of it may panic.
#![no_main]

use std::sync::OnceLock;

use flurry_chain::ticket::{Domain, SignedTicket, TicketParams, is_winning, recover_signer};
use flurry_chain::{
    Address, B256, ReceiverConfig, SenderFunds, TicketReceiver, TicketSender, U256,
};
use flurry_identity::Identity;
use libfuzzer_sys::fuzz_target;

const DOMAIN: Domain = Domain {
    chain_id: 31337,
    broker: Address::repeat_byte(0xb0),
};

struct Node {
    receiver: TicketReceiver,
    sender: TicketSender,
}

fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        let db =
            std::env::temp_dir().join(format!("flurry-fuzz-tickets-{}.db", std::process::id()));
        let receiver = TicketReceiver::open(
            &db,
            Address::repeat_byte(0x22),
            DOMAIN,
            ReceiverConfig::default(),
        )
        .expect("ticket store");
        let sender = TicketSender::new(Identity::generate().expect("key"), DOMAIN);
        // Parameters the fuzzer can refer to by their hash.
        let _ = receiver.params(sender.address());
        Node { receiver, sender }
    })
}

fuzz_target!(|data: &[u8]| {
    let n = node();
    let funds = SenderFunds {
        deposit: U256::MAX,
        reserve_available: U256::from(1),
        unlocking: false,
    };
    if let Ok(t) = serde_json::from_slice::<SignedTicket>(data) {
        let _ = t.ticket.hash(&DOMAIN);
        let _ = t.signer(&DOMAIN);
        let _ = t.wins(U256::from(42));
        let _ = t.ticket.to_sol();
        let _ = n.receiver.receive(&t, &funds);
    }
    if let Ok(p) = serde_json::from_slice::<TicketParams>(data) {
        let _ = p.ticket_value();
        let _ = n
            .sender
            .check_deposit(&p, U256::from(10u64).pow(U256::from(18)));
        let _ = n.sender.pay(&p, p.recipient, U256::from(1), b"fuzz");
    }
    let _ = recover_signer(B256::repeat_byte(1), data);
    let _ = is_winning(data, U256::from(7), U256::MAX);
});
