//! A flood of calls for proposals from one peer, for `make bench-market`: a fresh node
//! connects to a seller and sends calls for proposals one after another, as fast as the
//! seller answers, for the given time; it prints what came back as JSON.
//!
//! Usage: `cfp_flood SELLER_MULTIADDR/p2p/PEER_ID MODEL_ID SECONDS`
#![allow(clippy::print_stdout)] // a benchmark tool: its report is its output

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flurry_market::job::{self, Ask, JOB_VERSION, Reply};
use flurry_net::infer::{read_frame, write_frame};
use flurry_net::{ErrorCode, Net, NetConfig};
use futures_util::AsyncWriteExt;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, model_id, seconds] = args.as_slice() else {
        return Err("usage: cfp_flood SELLER_MULTIADDR/p2p/PEER_ID MODEL_ID SECONDS".into());
    };
    let peer = addr
        .rsplit_once("/p2p/")
        .map(|(_, p)| p.to_string())
        .ok_or("the address must end in /p2p/PEER_ID")?;
    let id = flurry_identity::Identity::generate()?;
    let (net, _events, _inbound) = Net::start_with_keypair(
        id.to_libp2p_keypair()?,
        NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            mdns: false,
            ..NetConfig::default()
        },
    )
    .await?;
    net.connect(&peer, std::slice::from_ref(addr)).await?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds.parse()?);
    // [asks, bids, rate-limited, other]
    let counts: [AtomicU64; 4] = Default::default();
    let flood = async {
        while Instant::now() < deadline {
            counts[0].fetch_add(1, Ordering::Relaxed);
            let Ok(mut s) = net.open_stream(&peer, &[], job::MARKET_PROTOCOL).await else {
                counts[3].fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let cfp = Ask::Cfp {
                v: JOB_VERSION,
                model_id: model_id.clone(),
            };
            if write_frame(&mut s, &cfp, job::MAX_ASK_BYTES).await.is_err() {
                counts[3].fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let slot = match read_frame::<_, Reply>(&mut s, job::MAX_REPLY_BYTES).await {
                Ok(Some(Reply::Bid(_))) => 1,
                Ok(Some(Reply::Error {
                    code: ErrorCode::RateLimited,
                    ..
                })) => 2,
                _ => 3,
            };
            counts[slot].fetch_add(1, Ordering::Relaxed);
            let _ = s.close().await;
        }
    };
    // SIGINT ends the flood early (and still prints the counts).
    let mut stop = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::select! {
        _ = stop.recv() => {}
        () = flood => {}
    }
    let [asks, bids, limited, other] = counts.map(|c| c.into_inner());
    println!(
        "{}",
        serde_json::json!({"asks": asks, "bids": bids, "rate_limited": limited, "other": other})
    );
    Ok(())
}
