//! `flurry up`, `init`, `id`, `token`, and `ask`/`chat` through a running node.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use flurry_config::LogFormat;
use flurry_identity::ScryptParams;
use flurry_node::{PassphraseOptions, UpOptions};
use serde_json::{Value, json};

use crate::remote::{Line, Remote};
use crate::{AskArgs, ChatArgs, SampleArgs, Setup};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// API and web UI address (default: [api] listen, 127.0.0.1:7878). A non-loopback
    /// address needs a token (`flurry token create`).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Default model (default: [model] default).
    #[arg(long, short)]
    model: Option<String>,
    /// Kernel threads (default: [engine] threads, 0 = one per core).
    #[arg(long, short)]
    threads: Option<usize>,
    /// Log format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
    /// File holding the key passphrase (mode 0600). Also: FLURRY_PASSPHRASE.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Peer-to-peer listen address (repeatable; replaces [net] listen), e.g.
    /// /ip4/0.0.0.0/tcp/4001 or /ip4/0.0.0.0/udp/4001/quic-v1.
    #[arg(long, value_name = "MULTIADDR")]
    p2p_listen: Vec<String>,
    /// A peer to join the network through (repeatable), e.g.
    /// /ip4/203.0.113.7/tcp/4001/p2p/16Uiu2…
    #[arg(long, value_name = "MULTIADDR")]
    bootstrap: Vec<String>,
    /// A relay to reserve a slot on, so peers reach this node behind NAT (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    relay: Vec<String>,
    /// Do not look for peers on the local network (mDNS).
    #[arg(long)]
    no_mdns: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// File holding the passphrase (mode 0600). Also: FLURRY_PASSPHRASE; else you are asked.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Print the new identity as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    /// Print JSON (`peer_id`, `address`).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a new API token; it is shown once and stored only as a hash.
    Create {
        /// A label for the token.
        #[arg(long, default_value = "default")]
        name: String,
        /// What the token may do: `read` (lists, search, status), `chat` (read plus
        /// generation and conversations) or `admin` (everything: ingest, forget,
        /// wallet, circle, network). Repeatable. Default: chat.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<flurry_api::tokens::Scope>,
    },
    /// List tokens (id, label, scopes, date; the tokens themselves are not stored).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its name or id (from `flurry token list`); a running node
    /// refuses it at once.
    Revoke {
        /// The token's name, its id, or the token itself.
        key: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct EgressArgs {
    /// Show at most this many of the newest records.
    #[arg(long, short = 'n', default_value_t = 50)]
    limit: usize,
    /// Print JSON (`records`, each with what was sent and its privacy rule, and
    /// `totals` per destination).
    #[arg(long)]
    json: bool,
    /// Read the key's passphrase from this file (the log is encrypted with the node key).
    #[arg(long)]
    password_file: Option<PathBuf>,
}

pub(crate) fn egress(ctx: &Setup, a: EgressArgs) -> Result<ExitCode> {
    if !ctx.paths.egress_db().exists() {
        if a.json {
            println!("{}", json!({"records": [], "totals": []}));
        } else {
            println!("Nothing has left this node.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let id = flurry_node::unlock(&ctx.paths, &PassphraseOptions::from_env(a.password_file))?;
    let log = flurry_agent::EgressLog::open(
        &ctx.paths.egress_db(),
        &flurry_agent::HistoryKey::egress_from_identity(&id),
    )?;
    let records = log.recent(a.limit)?;
    let totals = log.totals()?;
    if a.json {
        let totals: Vec<Value> = totals
            .iter()
            .map(|(d, n)| json!({"destination": d, "bytes": n}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"records": records, "totals": totals}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        println!("Nothing has left this node.");
        return Ok(ExitCode::SUCCESS);
    }
    for r in &records {
        let rule = if r.rule.is_empty() { "-" } else { &r.rule };
        let mut shown: String = r.content.chars().take(80).collect();
        if shown.len() < r.content.len() {
            shown.push('…');
        }
        println!(
            "{}\t{}\t{} bytes\t{}\t{rule}\t{}",
            r.at,
            r.destination,
            r.bytes,
            r.purpose,
            shown.replace('\n', " ")
        );
    }
    println!("Totals:");
    for (d, n) in &totals {
        println!("  {d}: {n} bytes");
    }
    Ok(ExitCode::SUCCESS)
}

/// Scrypt cost for new keys: geth's standard, unless FLURRY_TEST_LIGHT_KDF=1 (tests only).
pub(crate) fn scrypt_params() -> ScryptParams {
    if flurry_config::test_light_kdf() {
        ScryptParams::LIGHT
    } else {
        ScryptParams::STANDARD
    }
}

pub(crate) fn up(ctx: Setup, a: UpArgs) -> Result<ExitCode> {
    let opts = UpOptions {
        listen: a.listen,
        model: a.model,
        threads: a.threads,
        log_format: a.log_format.map(|f| match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }),
        passphrase: PassphraseOptions::from_env(a.password_file),
        scrypt: Some(scrypt_params()),
        p2p_listen: a.p2p_listen,
        bootstrap: a.bootstrap,
        relays: a.relay,
        no_mdns: a.no_mdns,
        relay_only: false,
    };
    flurry_node::up(ctx.paths, ctx.config, opts, |url| {
        println!("Flurry is up. Web UI: {url}/  (OpenAI API: {url}/v1, Ollama API: {url})");
        let _ = std::io::stdout().flush();
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn init(ctx: &Setup, a: InitArgs) -> Result<ExitCode> {
    let opts = PassphraseOptions::from_env(a.password_file);
    let id = flurry_node::init(&ctx.paths, &opts, scrypt_params())?;
    let p = flurry_node::save_public_identity(&ctx.paths, &id)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        println!(
            "Created the node key: {}",
            ctx.paths.keystore_file().display()
        );
        println!("peer id: {}\naddress: {}", p.peer_id, p.address);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn id(ctx: &Setup, a: IdArgs) -> Result<ExitCode> {
    let p = match flurry_node::read_public_identity(&ctx.paths) {
        Some(p) => p,
        None => {
            let id = flurry_node::unlock(&ctx.paths, &PassphraseOptions::from_env(None))?;
            flurry_node::save_public_identity(&ctx.paths, &id)?
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        println!("peer id: {}\naddress: {}", p.peer_id, p.address);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn token(ctx: &Setup, t: TokenCommand) -> Result<ExitCode> {
    let file = ctx.paths.tokens_file();
    match t {
        TokenCommand::Create { name, scopes } => {
            let token = flurry_api::tokens::TokenFile::create(&file, &name, &scopes)?;
            let scope = flurry_api::tokens::TokenFile::load(&file)?
                .find(&token)
                .map_or("chat", |t| t.scope().as_str());
            println!("{token}");
            eprintln!(
                "Saved (as a hash) in {}, scope {scope}. This is the only time the token is shown. Clients send it as `Authorization: Bearer <token>`; a running node accepts it at once.",
                file.display()
            );
        }
        TokenCommand::Revoke { key } => {
            let gone = flurry_api::tokens::TokenFile::revoke(&file, &key)?;
            eprintln!(
                "revoked {} ({}); a running node refuses it from now on",
                gone.name,
                gone.id()
            );
        }
        TokenCommand::List { json } => {
            let f = flurry_api::tokens::TokenFile::load(&file)?;
            if json {
                let list: Vec<Value> = f
                    .tokens
                    .iter()
                    .map(|t| {
                        json!({"id": t.id(), "name": t.name, "scopes": t.scopes, "created_at": t.created_at})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if f.tokens.is_empty() {
                println!("no tokens (make one with `flurry token create`)");
            } else {
                for t in &f.tokens {
                    let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
                    println!(
                        "{}\t{}\t{}\tcreated {}",
                        t.id(),
                        t.name,
                        scopes.join(","),
                        t.created_at
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn options(s: &SampleArgs) -> Value {
    json!({
        "temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p, "min_p": s.min_p,
        "repeat_penalty": s.repeat_penalty, "seed": s.seed, "num_predict": s.max_tokens,
        "stop": s.stop,
    })
}

/// Generated tokens per second of decoding, from an Ollama done object.
fn tokens_per_s(v: &Value) -> Value {
    match (v["eval_count"].as_f64(), v["eval_duration"].as_f64()) {
        (Some(n), Some(ns)) if ns > 0.0 => json!(n / (ns / 1e9)),
        _ => Value::Null,
    }
}

pub(crate) fn ask_remote(r: &Remote, a: &AskArgs) -> Result<ExitCode> {
    let mut model = a.model.model.clone().unwrap_or_else(|| "default".into());
    if a.market && !model.starts_with("market/") {
        model = format!("market/{model}");
    }
    let (path, body) = if a.raw {
        (
            "/api/generate",
            json!({"model": model, "prompt": a.prompt, "raw": true, "options": options(&a.sample)}),
        )
    } else {
        let mut msgs = Vec::new();
        if let Some(s) = &a.system {
            msgs.push(json!({"role": "system", "content": s}));
        }
        msgs.push(json!({"role": "user", "content": a.prompt}));
        (
            "/api/chat",
            json!({"model": model, "messages": msgs, "options": options(&a.sample)}),
        )
    };
    let mut body = body;
    // The private memory never goes to a peer.
    body["memory"] = json!(!a.no_memory && a.peer.is_none() && !a.market);
    if let Some(p) = &a.peer {
        body["peer"] = json!(p);
    }
    if let Some(p) = &a.max_price {
        body["max_price"] = json!(p);
    }
    let piece = |v: &Value| {
        v["message"]["content"]
            .as_str()
            .or_else(|| v["response"].as_str())
            .unwrap_or("")
            .to_string()
    };
    if a.json {
        body["stream"] = json!(false);
        let v = r.post(path, &body)?;
        let out = json!({
            "text": piece(&v), "finish_reason": v["done_reason"], "model": v["model"],
            "seed": a.sample.seed, "prompt_tokens": v["prompt_eval_count"],
            "completion_tokens": v["eval_count"], "node": r.node.url,
            "citations": v.get("citations").cloned().unwrap_or_else(|| json!([])),
            "tokens_per_s": tokens_per_s(&v),
            "peer": v.get("peer").cloned().unwrap_or(Value::Null),
            "relayed": v["peer"]["relayed"],
            "market": v.get("market").cloned().unwrap_or(Value::Null),
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    let rx = r.stream(path, &body)?;
    let mut out = std::io::stdout().lock();
    for line in rx {
        match line {
            Line::Json(v) => {
                if let Some(e) = v["error"].as_str() {
                    bail!("{e}");
                }
                out.write_all(piece(&v).as_bytes())?;
                out.flush()?;
                if v["done"].as_bool() == Some(true) {
                    writeln!(out)?;
                    print_sources(&v["citations"]);
                    if let Some(m) = v.get("market").filter(|m| m.is_object()) {
                        eprintln!(
                            "(bought from {} for {} wei: {} tokens, {} failover(s))",
                            m["provider"].as_str().unwrap_or(""),
                            m["price_paid_wei"].as_str().unwrap_or("0"),
                            m["tokens"],
                            m["failovers"],
                        );
                    } else if let Some(p) = v.get("peer").filter(|p| p.is_object()) {
                        eprintln!(
                            "(answered by {} {} over a {} connection)",
                            p["name"].as_str().unwrap_or("peer"),
                            p["peer_id"].as_str().unwrap_or(""),
                            if p["relayed"].as_bool() == Some(true) {
                                "relayed"
                            } else {
                                "direct"
                            },
                        );
                    }
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Line::Failed(e) => bail!(e),
            Line::End => break,
        }
    }
    bail!("the node closed the stream early")
}

/// Lists an answer's memory citations on stderr (stdout stays the answer alone).
fn print_sources(citations: &Value) {
    let Some(list) = citations.as_array().filter(|l| !l.is_empty()) else {
        return;
    };
    eprintln!("Sources from your memory:");
    for c in list {
        eprintln!(
            "  [{}] {} — {} (chunk {}, document {})",
            c["index"],
            c["title"].as_str().unwrap_or(""),
            c["document"].as_str().unwrap_or(""),
            c["chunk"],
            c["doc_id"]
        );
    }
}

pub(crate) fn chat_remote(r: &Remote, a: &ChatArgs) -> Result<ExitCode> {
    let mut conv = json!({});
    if a.no_memory {
        conv["memory"] = json!(false);
    }
    if let Some(m) = &a.model.model {
        conv["model"] = json!(m);
    }
    let c = r.post("/api/conversations", &conv)?;
    let id = c["id"].as_str().unwrap_or_default().to_string();
    if a.system.is_some() {
        eprintln!("note: --system is not kept in node conversations; use --local to set one");
    }
    let (generating, cancel) = crate::chat::ctrl_c_stops_answers()?;
    eprintln!(
        "Chatting through the node at {} (conversation {id}, also in the web UI). Ctrl-C stops an answer, Ctrl-D exits.",
        r.node.url
    );
    let stdin = std::io::stdin();
    let mut line = String::new();
    let mut seed = a.sample.seed;
    loop {
        eprint!(">>> ");
        std::io::stderr().flush()?;
        line.clear();
        if stdin.lock().read_line(&mut line)? == 0 {
            eprintln!();
            return Ok(ExitCode::SUCCESS);
        }
        let input = line.trim();
        if input.is_empty() {
            continue;
        }
        if input == "/bye" || input == "/exit" {
            return Ok(ExitCode::SUCCESS);
        }
        let s = &a.sample;
        let mut body = json!({
            "content": input, "temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p,
            "min_p": s.min_p, "repeat_penalty": s.repeat_penalty, "seed": seed,
            "max_tokens": s.max_tokens,
        });
        if let Some(m) = &a.model.model {
            body["model"] = json!(m);
        }
        seed = seed.wrapping_add(1);
        let rx = match r.stream(&format!("/api/conversations/{id}/messages"), &body) {
            Ok(rx) => rx,
            Err(e) => {
                eprintln!("error: {e:#}");
                continue;
            }
        };
        cancel.store(false, Ordering::SeqCst);
        generating.store(true, Ordering::SeqCst);
        let mut out = std::io::stdout().lock();
        let mut citations = Value::Null;
        loop {
            if cancel.load(Ordering::SeqCst) {
                eprint!(" [stopped]");
                break;
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Line::Json(v)) => match v["type"].as_str() {
                    Some("start") => citations = v["citations"].clone(),
                    Some("token") => {
                        out.write_all(v["text"].as_str().unwrap_or("").as_bytes())?;
                        out.flush()?;
                    }
                    Some("error") => {
                        eprint!("\nerror: {}", v["error"]["message"].as_str().unwrap_or("?"));
                        break;
                    }
                    Some("done") => break,
                    _ => {}
                },
                Ok(Line::Failed(e)) => {
                    eprint!("\nerror: {e}");
                    break;
                }
                Ok(Line::End) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        // Dropping the stream closes the connection, which stops the answer on the node.
        drop(rx);
        generating.store(false, Ordering::SeqCst);
        writeln!(out)?;
        print_sources(&citations);
    }
}
