//! `flurry relay`, `flurry peers`, `flurry net status`, `flurry circle …`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use flurry_net::Circle;
use serde_json::{Value, json};

use crate::Setup;
use crate::remote::Remote;

#[derive(Debug, Args)]
pub(crate) struct RelayArgs {
    /// Where the relay listens (repeatable; default /ip4/0.0.0.0/tcp/4001 and
    /// /ip4/0.0.0.0/udp/4001/quic-v1).
    #[arg(long, value_name = "MULTIADDR")]
    p2p_listen: Vec<String>,
    /// Announce this address as the relay's own, e.g. its public IP
    /// (/ip4/203.0.113.7/tcp/4001); addresses it listens on are announced already.
    #[arg(long, value_name = "MULTIADDR")]
    external: Vec<String>,
    /// API address for `flurry net status` on this machine (default: [api] listen).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// File holding the key passphrase (mode 0600). Also: FLURRY_PASSPHRASE.
    #[arg(long)]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct PeersArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum NetCommand {
    /// Listen and external addresses, NAT status, relay reservations, DHT size, and what
    /// to do about reachability problems.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Connect to a peer now.
    Dial {
        /// Its multiaddress (/ip4/HOST/tcp/PORT/p2p/PEER_ID).
        addr: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CircleCommand {
    /// Let a peer run inference on this node (and name it, to ask it with --peer NAME).
    Add {
        /// The peer's id (it shows it with `flurry id`).
        peer_id: String,
        /// A short name (lowercase letters, digits, - and _).
        #[arg(long)]
        name: Option<String>,
        /// Where to reach it (repeatable), e.g. its relayed address from its
        /// `flurry net status`.
        #[arg(long, value_name = "MULTIADDR")]
        addr: Vec<String>,
    },
    /// List the members.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a member by name or peer id.
    Remove {
        /// Name or peer id.
        member: String,
    },
}

pub(crate) fn relay(ctx: Setup, a: RelayArgs) -> Result<ExitCode> {
    let mut config = ctx.config;
    config.net.external_addresses.extend(a.external);
    let opts = flurry_node::UpOptions {
        listen: a.listen,
        passphrase: flurry_node::PassphraseOptions::from_env(a.password_file),
        scrypt: Some(crate::node_cmd::scrypt_params()),
        p2p_listen: a.p2p_listen,
        relay_only: true,
        ..flurry_node::UpOptions::default()
    };
    let peer = flurry_node::read_public_identity(&ctx.paths).map(|p| p.peer_id);
    let paths = ctx.paths.clone();
    flurry_node::up(ctx.paths, config, opts, move |url| {
        let peer = peer
            .or_else(|| flurry_node::read_public_identity(&paths).map(|p| p.peer_id))
            .unwrap_or_default();
        println!("Flurry relay is up (peer {peer}). Status: `flurry net status` ({url}).");
        println!("Friends add it with: flurry up --relay /ip4/PUBLIC_IP/tcp/4001/p2p/{peer}");
        let _ = std::io::stdout().flush();
    })?;
    Ok(ExitCode::SUCCESS)
}

fn node(ctx: &Setup) -> Result<Remote> {
    Remote::find(&ctx.paths).context(
        "no node is running for this FLURRY_HOME: start one with `flurry up` (the network runs inside the node)",
    )
}

pub(crate) fn peers(ctx: &Setup, a: PeersArgs) -> Result<ExitCode> {
    let v = node(ctx)?.get("/api/net/peers")?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let peers = v["peers"].as_array().cloned().unwrap_or_default();
    if peers.is_empty() {
        println!("No peers connected. See `flurry net status` for why.");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<54} {:<10} {:>8}  {:<8} ADDRESS",
        "PEER", "NAME", "RTT", "PATH"
    );
    for p in &peers {
        let rtt = p["rtt_ms"]
            .as_f64()
            .map_or_else(|| "-".to_string(), |r| format!("{r:.1}ms"));
        let addr = p["addresses"][0].as_str().unwrap_or("");
        let proto = if addr.contains("/quic") {
            "quic"
        } else {
            "tcp"
        };
        let path = if p["relayed"].as_bool() == Some(true) {
            "relayed"
        } else {
            "direct"
        };
        println!(
            "{:<54} {:<10} {:>8}  {:<8} {addr} ({proto})",
            p["peer_id"].as_str().unwrap_or(""),
            p["name"].as_str().unwrap_or("-"),
            rtt,
            path,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn net(ctx: &Setup, c: NetCommand) -> Result<ExitCode> {
    let r = node(ctx)?;
    match c {
        NetCommand::Dial { addr } => {
            r.post("/api/net/dial", &json!({ "addr": addr }))?;
            println!("dialing {addr}");
        }
        NetCommand::Status { json } => {
            let v = r.get("/api/net/status")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("peer id:        {}", v["peer_id"].as_str().unwrap_or(""));
            println!("NAT status:     {}", v["nat"].as_str().unwrap_or("unknown"));
            println!("connected:      {} peers", v["connected"]);
            println!("DHT routing:    {} peers", v["routing_table"]);
            println!(
                "relay server:   {}",
                if v["relay_server"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "no"
                }
            );
            for (title, key) in [
                ("listening on", "listen"),
                ("external", "external"),
                ("relay reservations", "reservations"),
                ("reachable through relays at", "relayed_addrs"),
            ] {
                let items = list(&v[key]);
                if items.is_empty() {
                    println!("{title}: none");
                } else {
                    println!("{title}:");
                    for i in items {
                        println!("  {i}");
                    }
                }
            }
            let d = list(&v["diagnosis"]);
            if d.is_empty() {
                println!("No reachability problems found.");
            }
            for line in d {
                println!("! {line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn circle(ctx: &Setup, c: CircleCommand) -> Result<ExitCode> {
    // Through the running node, so it applies the change at once; else on the file.
    let remote = Remote::find(&ctx.paths);
    let file = ctx.paths.circle_file();
    match c {
        CircleCommand::Add {
            peer_id,
            name,
            addr,
        } => {
            let m = match &remote {
                Some(r) => r.post(
                    "/api/circle",
                    &json!({"peer_id": peer_id, "name": name, "addrs": addr}),
                )?,
                None => {
                    if flurry_node::read_public_identity(&ctx.paths)
                        .is_some_and(|p| p.peer_id == peer_id)
                    {
                        bail!("that is this node's own peer id");
                    }
                    let mut c = Circle::load(&file)?;
                    let m = serde_json::to_value(c.add(&peer_id, name.as_deref(), &addr)?)?;
                    c.save(&file)?;
                    m
                }
            };
            println!(
                "{} ({}) may now run inference on this node. It asks with `flurry ask --peer NAME`; you ask it with `flurry ask --peer {}`.",
                m["name"].as_str().unwrap_or(""),
                m["peer_id"].as_str().unwrap_or(""),
                m["name"].as_str().unwrap_or(""),
            );
        }
        CircleCommand::List { json } => {
            let members = match &remote {
                Some(r) => r.get("/api/circle")?["members"].clone(),
                None => serde_json::to_value(Circle::load(&file)?.members)?,
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "members": members }))?
                );
                return Ok(ExitCode::SUCCESS);
            }
            let members = members.as_array().cloned().unwrap_or_default();
            if members.is_empty() {
                println!(
                    "Your circle is empty. Add a peer with `flurry circle add PEER_ID --name NAME`."
                );
            }
            for m in members {
                let addrs = list(&m["addrs"]).join(", ");
                println!(
                    "{:<12} {}{}",
                    m["name"].as_str().unwrap_or(""),
                    m["peer_id"].as_str().unwrap_or(""),
                    if addrs.is_empty() {
                        String::new()
                    } else {
                        format!("  {addrs}")
                    }
                );
            }
        }
        CircleCommand::Remove { member } => {
            let removed = match &remote {
                Some(r) => r.delete(&format!("/api/circle/{member}"))?["removed"].clone(),
                None => {
                    let mut c = Circle::load(&file)?;
                    let Some(m) = c.remove(&member) else {
                        bail!("{member:?} is not in your circle (see `flurry circle list`)");
                    };
                    c.save(&file)?;
                    serde_json::to_value(m)?
                }
            };
            println!(
                "removed {} ({}) from your circle",
                removed["name"].as_str().unwrap_or(""),
                removed["peer_id"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
