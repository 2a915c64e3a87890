//! `flurry market …`: sell this node's inference on the open market, see who sells what,
//! and manage the stake sellers need.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::Setup;
use crate::chain_cmd::{self, StakeCommand};
use crate::remote::Remote;

#[derive(Debug, Subcommand)]
pub(crate) enum MarketCommand {
    /// Offer a model for sale to strangers (needs stake: `flurry market stake`). The
    /// node signs the offer and re-publishes it every 30 s while it runs.
    Sell {
        /// Model: a name from `flurry model list`, a ModelId prefix, or `default`.
        model: String,
        /// ETH per million generated tokens, e.g. 0.002.
        #[arg(long)]
        price: String,
        /// ETH per million prompt tokens (default: --price).
        #[arg(long)]
        prompt_price: Option<String>,
        /// Jobs run at once, at most.
        #[arg(long, default_value_t = 1)]
        max_jobs: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop selling a model (or everything); other nodes drop the offer within 2 minutes.
    Stop {
        /// A model name or ModelId; all when absent.
        model: Option<String>,
    },
    /// Live offers from staked sellers, cheapest first.
    Offers {
        /// Only this model (name or ModelId).
        #[arg(long)]
        model: Option<String>,
        /// Also sellers without enough stake (never awarded a job).
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Jobs this node bought and sold (the last 1,000), oldest first.
    Jobs {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The checks of jobs bought with receipts (the last 1,000), oldest first: each
    /// job's receipt is checked, and a random sample re-run here (`[market]` rates).
    Audits {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What this node sells, and how many offers it has heard and refused.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Slash a provider on chain with its own signatures: two job bundles whose receipts
    /// give different results for one request (equivocation), or one whose receipt
    /// contradicts its request (model, prompt, seed, token count, finish reason). You
    /// are the challenger and get the challenger's share of the stake.
    Dispute(crate::verify_cmd::DisputeArgs),
    #[command(flatten)]
    Stake(StakeCommand),
}

fn node(ctx: &Setup) -> Result<Remote> {
    Remote::find(&ctx.paths).context(
        "no node is running for this FLURRY_HOME: start one with `flurry up` (the market runs inside the node)",
    )
}

fn eth_per_mtok(wei: &Value) -> String {
    wei.as_str()
        .and_then(|w| w.parse::<u128>().ok())
        .map_or_else(
            || "?".to_string(),
            |w| flurry_chain::format_ether(flurry_chain::U256::from(w)),
        )
}

pub(crate) fn run(ctx: &Setup, c: MarketCommand) -> Result<ExitCode> {
    match c {
        MarketCommand::Stake(s) => chain_cmd::stake(ctx, s),
        MarketCommand::Dispute(a) => crate::verify_cmd::dispute(ctx, a),
        MarketCommand::Sell {
            model,
            price,
            prompt_price,
            max_jobs,
            json,
        } => {
            let mut body = json!({ "model": model, "price": price, "max_jobs": max_jobs });
            if let Some(p) = prompt_price {
                body["prompt_price"] = json!(p);
            }
            let v = node(ctx)?.post("/api/market/sell", &body)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let o = &v["offer"]["offer"];
                println!(
                    "Selling {} ({}) at {} ETH per million tokens ({} for the prompt), {} job(s) at once.",
                    o["model"].as_str().unwrap_or(""),
                    &o["model_id"].as_str().unwrap_or("")
                        [..12.min(o["model_id"].as_str().unwrap_or("").len())],
                    eth_per_mtok(&o["price_wei_per_mtok"]),
                    eth_per_mtok(&o["prompt_price_wei_per_mtok"]),
                    o["max_jobs"]
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        MarketCommand::Stop { model } => {
            let v = node(ctx)?.post("/api/market/stop", &json!({ "model": model }))?;
            let stopped = v["stopped"].as_array().cloned().unwrap_or_default();
            if stopped.is_empty() {
                println!("This node was not selling that.");
            } else {
                for m in stopped {
                    println!("Stopped selling {}.", m.as_str().unwrap_or(""));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        MarketCommand::Offers { model, all, json } => {
            let mut q = Vec::new();
            if let Some(m) = &model {
                q.push(format!("model={}", urlencode(m)));
            }
            if all {
                q.push("all=true".into());
            }
            let path = if q.is_empty() {
                "/api/market/offers".to_string()
            } else {
                format!("/api/market/offers?{}", q.join("&"))
            };
            let v = node(ctx)?.get(&path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            let offers = v["offers"].as_array().cloned().unwrap_or_default();
            if offers.is_empty() {
                println!("No live offers heard yet (offers are re-published every 30 s).");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<54} {:<28} {:>14} {:>14} {:>5} {:>10} {:>8}",
                "SELLER", "MODEL", "ETH/Mtok", "PROMPT", "JOBS", "STAKE ETH", "RTT"
            );
            for o in &offers {
                let stake = o["stake_wei"]
                    .as_str()
                    .and_then(|s| s.parse::<u128>().ok())
                    .map_or_else(
                        || "?".into(),
                        |w| flurry_chain::format_ether(flurry_chain::U256::from(w)),
                    );
                let rtt = o["rtt_ms"]
                    .as_f64()
                    .map_or_else(|| "-".to_string(), |r| format!("{r:.1}ms"));
                println!(
                    "{:<54} {:<28} {:>14} {:>14} {:>5} {:>10} {:>8}{}",
                    o["peer_id"].as_str().unwrap_or(""),
                    o["model"].as_str().unwrap_or(""),
                    eth_per_mtok(&o["price_wei_per_mtok"]),
                    eth_per_mtok(&o["prompt_price_wei_per_mtok"]),
                    o["max_jobs"],
                    stake,
                    rtt,
                    if o["mine"].as_bool() == Some(true) {
                        "  (this node)"
                    } else if o["staked"].as_bool() == Some(false) {
                        "  (not staked)"
                    } else {
                        ""
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        MarketCommand::Jobs { json } => {
            let v = node(ctx)?.get("/api/market/jobs")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            let jobs = v["jobs"].as_array().cloned().unwrap_or_default();
            if jobs.is_empty() {
                println!(
                    "No market jobs yet (buy with `flurry ask --market`, sell with `flurry market sell`)."
                );
            }
            for j in &jobs {
                println!(
                    "{:<6} {:<18} {:>6} tokens  {:>22} wei  {}  {}",
                    j["role"].as_str().unwrap_or(""),
                    j["id"]
                        .as_str()
                        .unwrap_or("")
                        .chars()
                        .take(18)
                        .collect::<String>(),
                    j["tokens"],
                    j["paid_wei"].as_str().unwrap_or(""),
                    j["peer"].as_str().unwrap_or(""),
                    j["status"].as_str().unwrap_or(""),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        MarketCommand::Audits { json } => {
            let v = node(ctx)?.get("/api/market/audits")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            let audits = v["audits"].as_array().cloned().unwrap_or_default();
            if audits.is_empty() {
                println!(
                    "No jobs bought with receipts yet (a job carries one when this node holds the model it buys)."
                );
            }
            for a in &audits {
                let what = match a["failure"].as_object() {
                    Some(f) => format!(
                        "{} {}: {}",
                        f["check"].as_str().unwrap_or(""),
                        f["kind"].as_str().unwrap_or(""),
                        f["detail"].as_str().unwrap_or("")
                    ),
                    None => a["detail"].as_str().unwrap_or("").to_string(),
                };
                println!(
                    "{:<9} {:<6} {:<16} {}  {}  {}",
                    a["verdict"].as_str().unwrap_or(""),
                    a["level"].as_str().unwrap_or(""),
                    a["job_id"]
                        .as_str()
                        .unwrap_or("")
                        .chars()
                        .take(16)
                        .collect::<String>(),
                    a["provider"].as_str().unwrap_or(""),
                    what,
                    a["bundle"].as_str().unwrap_or(""),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        MarketCommand::Status { json } => {
            let v = node(ctx)?.get("/api/market")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            let selling = v["selling"].as_array().cloned().unwrap_or_default();
            if selling.is_empty() {
                println!("Selling nothing (`flurry market sell MODEL --price ETH`).");
            }
            for s in &selling {
                let o = &s["offer"];
                println!(
                    "Selling {} at {} ETH per million tokens.",
                    o["model"].as_str().unwrap_or(""),
                    eth_per_mtok(&o["price_wei_per_mtok"])
                );
            }
            println!(
                "Offers known: {}; heard {}, refused {}.",
                v["offers_known"], v["heard"], v["refused"]
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
