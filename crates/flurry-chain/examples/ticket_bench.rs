//! Ticket benchmark (`make bench` runs it): ticket creation and validation rates, gas
//! per winning ticket redeemed alone and in batches, and on-chain transactions per job,
//! against a real anvil.
//!
//! ```text
//! cargo run --release -p flurry-chain --example ticket_bench -- [--anvil PATH] [--jobs N] [--json]
//! ```
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use flurry_chain::ticket::win_prob_one_in;
use flurry_chain::{
    Address, Chain, DeployParams, LocalChain, ReceiverConfig, SenderFunds, SenderLimits,
    TicketReceiver, TicketSender, U256, find_anvil, parse_ether,
};
use flurry_identity::Identity;

struct Args {
    anvil: Option<PathBuf>,
    jobs: u32,
    json: bool,
}

fn args() -> Args {
    let mut a = Args {
        anvil: None,
        jobs: 2000,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--anvil" => a.anvil = it.next().map(PathBuf::from),
            "--jobs" => a.jobs = it.next().and_then(|n| n.parse().ok()).unwrap_or(a.jobs),
            "--json" => a.json = true,
            "--help" | "-h" => {
                println!("ticket_bench [--anvil PATH] [--jobs N] [--json]");
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other}; see --help");
                std::process::exit(2);
            }
        }
    }
    a
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args();
    let anvil = find_anvil(a.anvil.as_deref())?;
    let local = LocalChain::spawn(&anvil, None)?;
    let sender_id = Identity::generate()?;
    let recipient_id = Identity::generate()?;
    let mut chain = Chain::connect(local.url(), &sender_id).await?;
    for id in [&sender_id, &recipient_id] {
        chain
            .dev_fund(Address::from(id.address_bytes()), parse_ether("1000")?)
            .await?;
    }
    let contracts = chain.deploy(&DeployParams::default()).await?;
    chain.fund_deposit(parse_ether("100")?).await?;
    let recipient_chain = Chain::connect(local.url(), &recipient_id)
        .await?
        .with_contracts(contracts);
    let domain = chain.domain()?;
    let dir = tempfile::tempdir()?;
    let face = parse_ether("0.01")?;

    // Typical settings: one ticket per job, 1 in 100 wins, batches of 20.
    let typical = ReceiverConfig {
        face_value: face,
        win_prob: win_prob_one_in(100),
        params_ttl_secs: 3600,
        batch_size: 20,
        ..ReceiverConfig::default()
    };
    let receiver = TicketReceiver::open(
        &dir.path().join("typical.db"),
        Address::from(recipient_id.address_bytes()),
        domain,
        typical,
    )?;
    // The batches below use tickets that always win (to fill every batch), which the
    // default per-ticket value limit would refuse.
    let sender = TicketSender::new(sender_id.clone(), domain).with_limits(SenderLimits {
        max_face_value: U256::MAX,
        max_ticket_ev: U256::MAX,
    });
    let recipient = Address::from(recipient_id.address_bytes());
    let params = receiver.params(sender.address())?;
    let job_value = params.ticket_value();
    let funds = SenderFunds {
        deposit: parse_ether("100")?,
        reserve_available: U256::ZERO,
        unlocking: false,
    };

    let t0 = Instant::now();
    let mut tickets = Vec::with_capacity(a.jobs as usize);
    for job in 0..a.jobs {
        tickets.extend(sender.pay(&params, recipient, job_value, &job.to_be_bytes())?);
    }
    let create_s = t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    for t in &tickets {
        t.signer(&domain)?;
    }
    let verify_s = t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    for t in &tickets {
        receiver.receive(t, &funds)?;
    }
    let receive_s = t0.elapsed().as_secs_f64();

    let report = receiver.redeem_pending(&recipient_chain).await?;
    let winners = report.redeemed;
    let txs = report.txs.len();

    // Gas per winning ticket: one at a time, and in batches of 10 and 20 (all tickets
    // win here, so every batch is full).
    let mut gas = Vec::new();
    for batch in [1usize, 10, 20] {
        let cfg = ReceiverConfig {
            face_value: face,
            win_prob: U256::MAX,
            params_ttl_secs: 3600,
            batch_size: batch,
            ..ReceiverConfig::default()
        };
        let r = TicketReceiver::open(
            &dir.path().join(format!("batch{batch}.db")),
            Address::from(recipient_id.address_bytes()),
            domain,
            cfg,
        )?;
        let p = r.params(sender.address())?;
        let n = batch * 3;
        for i in 0..n {
            r.receive(
                &sender.ticket(&p, recipient, &(i as u64).to_be_bytes())?,
                &funds,
            )?;
        }
        let rep = r.redeem_pending(&recipient_chain).await?;
        assert_eq!(rep.redeemed, n, "{rep:?}");
        let used: u64 = rep.txs.iter().map(|t| t.gas_used).sum();
        gas.push((batch, used as f64 / n as f64));
    }

    let n = tickets.len() as f64;
    let tx_per_job = txs as f64 / f64::from(a.jobs);
    if a.json {
        let gas_json: Vec<_> = gas
            .iter()
            .map(|(b, g)| serde_json::json!({"batch": b, "gas_per_ticket": g}))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "jobs": a.jobs, "tickets": tickets.len(),
                "create_per_s": n / create_s, "verify_per_s": n / verify_s,
                "receive_per_s": n / receive_s, "winners": winners, "redeem_txs": txs,
                "tx_per_job": tx_per_job, "gas": gas_json,
            })
        );
        return Ok(());
    }
    println!(
        "ticket benchmark ({} jobs, 1 ticket per job, win 1/100, anvil)",
        a.jobs
    );
    println!("  create + sign:        {:>9.0} tickets/s", n / create_s);
    println!("  verify signature:     {:>9.0} tickets/s", n / verify_s);
    println!(
        "  receive (validate + durable SQLite commit): {:>7.0} tickets/s",
        n / receive_s
    );
    println!(
        "  winners {winners}, redemption transactions {txs}: {tx_per_job:.4} on-chain tx per job (target <= 0.01)"
    );
    for (b, g) in &gas {
        println!("  gas per winning ticket, batch of {b:>2}: {g:>8.0}");
    }
    local.stop();
    Ok(())
}
