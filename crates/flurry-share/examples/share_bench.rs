//! `make bench-share`: what model sharing costs and delivers on this machine.
//!
//! - Verification: hashing a file into its piece layer and checking pieces, in GB/s,
//!   against reading the same file (the reference: what the disk and page cache give).
//! - Pulls between real libp2p nodes on loopback (TCP, noise, yamux), unpaced, from 1
//!   and from 3 peers, wall clock from the call to the verified file, against a plain
//!   file copy on the same disk (the reference: what a pull could at best approach).
//!
//! `SHARE_BENCH_MIB` sets the model size (default 256).
#![allow(clippy::print_stdout)] // a benchmark prints its figures

use std::sync::Arc;
use std::time::{Duration, Instant};

use flurry_identity::Identity;
use flurry_net::{Net, NetConfig};
use flurry_primitives::ModelId;
use flurry_share::pull::{self, Source};
use flurry_share::serve::{self, ServeLimits, Shelf, Shelved};
use flurry_share::{Layer, MODEL_PROTOCOL, PIECE};

async fn net(id: &Identity) -> Net {
    Net::start_with_keypair(
        id.to_libp2p_keypair().expect("key"),
        NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            mdns: false,
            autonat_global_only: true,
            ..NetConfig::default()
        },
    )
    .await
    .expect("net")
    .0
}

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mib: u64 = std::env::var("SHARE_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("model.gguf");
    let mut data = vec![0u8; (mib * PIECE) as usize];
    blake3::Hasher::new()
        .update(b"share-bench")
        .finalize_xof()
        .fill(&mut data);
    std::fs::write(&file, &data).expect("write");
    let model = ModelId::of_bytes(&data);
    let bytes = data.len() as u64;
    drop(data);

    // Verification cost against a plain read of the same (cached) file.
    let t = Instant::now();
    let read = std::fs::read(&file).expect("read");
    let read_time = t.elapsed();
    let t = Instant::now();
    let layer = Layer::of_file(&file).expect("layer");
    let layer_time = t.elapsed();
    assert_eq!(layer.root(), model);
    let t = Instant::now();
    for i in 0..layer.pieces() {
        let (at, len) = layer.range(i);
        assert!(layer.holds(i, &read[at as usize..(at + len) as usize]));
    }
    let check_time = t.elapsed();
    drop(read);
    println!(
        "model sharing bench: {mib} MiB model, {} pieces",
        layer.pieces()
    );
    println!(
        "verification: layer {:.2} GB/s ({:.2} s per GB), piece checks {:.2} GB/s ({:.2} s per GB); reading the file {:.2} GB/s",
        gbps(bytes, layer_time),
        1e9 / (bytes as f64 / layer_time.as_secs_f64()),
        gbps(bytes, check_time),
        1e9 / (bytes as f64 / check_time.as_secs_f64()),
        gbps(bytes, read_time)
    );

    // The reference for a pull: a file copy on the same disk.
    let t = Instant::now();
    std::fs::copy(&file, dir.path().join("copy.gguf")).expect("copy");
    let copy_time = t.elapsed();
    std::fs::remove_file(dir.path().join("copy.gguf")).ok();

    let layer = Arc::new(layer);
    let mut servers = Vec::new();
    let mut sources = Vec::new();
    for _ in 0..3 {
        let id = Identity::generate().expect("id");
        let n = net(&id).await;
        let shelf = Arc::new(Shelf::default());
        shelf.put(
            model,
            Shelved {
                name: "bench".into(),
                path: file.clone(),
                layer: layer.clone(),
            },
        );
        let limits = ServeLimits {
            bytes_per_peer_per_min: 0,
            ..ServeLimits::default()
        };
        tokio::spawn(serve::serve(
            n.accept_streams(MODEL_PROTOCOL).expect("accept"),
            shelf,
            limits,
            Arc::new(|_: &str| true),
        ));
        let addr = loop {
            if let Some(a) = n.status().await.expect("status").listen.into_iter().next() {
                break a;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        sources.push(Source {
            peer: id.peer_id(),
            addrs: vec![format!("{addr}/p2p/{}", id.peer_id())],
        });
        servers.push(n);
    }
    let me = net(&Identity::generate().expect("id")).await;
    let mut results = Vec::new();
    for (label, from) in [("1 peer", &sources[..1]), ("3 peers", &sources[..])] {
        let out = dir.path().join(label.replace(' ', "-"));
        let t = Instant::now();
        let got = pull::pull(&me, model, from.to_vec(), &out, Arc::new(|_| {}))
            .await
            .expect("pull");
        let took = t.elapsed();
        assert_eq!(got.bytes, bytes);
        std::fs::remove_file(&got.path).ok();
        results.push((label, took));
    }
    for (label, took) in &results {
        println!(
            "pull from {label}: {:.2} s, {:.0} MB/s ({:.2}x a file copy at {:.0} MB/s)",
            took.as_secs_f64(),
            bytes as f64 / took.as_secs_f64() / 1e6,
            copy_time.as_secs_f64() / took.as_secs_f64(),
            bytes as f64 / copy_time.as_secs_f64() / 1e6
        );
    }
    println!(
        "3 peers / 1 peer: {:.2}x (unpaced on loopback: the puller's CPU, not the peers, is the limit)",
        results[0].1.as_secs_f64() / results[1].1.as_secs_f64()
    );
    drop(servers);
}
