//! `flurry model list|import|info|register|lineage|publish|unpublish|published|announced|pull`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use flurry_infer::store::ModelInfo;
use flurry_primitives::ModelId;
use indicatif::{ProgressBar, ProgressStyle};

use crate::Setup;

#[derive(Debug, Subcommand)]
pub(crate) enum ModelCommand {
    /// List the models in the store ($FLURRY_MODELS).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Copy a GGUF file into the store (validated and hashed first).
    Import {
        /// The GGUF file.
        file: PathBuf,
    },
    /// Show a model's architecture, size, quantisation, context, template and ModelId,
    /// and its ModelRegistry entry when the chain answers.
    Info {
        /// Name, ModelId prefix, or path.
        model: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register a model of the store in the ModelRegistry, owned by this node: its
    /// ModelId (hashed again from the file), the model it came from, its licence.
    Register {
        /// Name, ModelId prefix, or path.
        model: String,
        /// The ModelId of the model this one was fine-tuned, quantised or merged from
        /// (registered already). None: a root model.
        #[arg(long, value_name = "MODELID")]
        parent: Option<String>,
        /// Its licence, an SPDX expression (default: the file's `general.license`).
        #[arg(long, value_name = "SPDX")]
        licence: Option<String>,
        /// Where the file can be fetched (default: flurry://MODELID).
        #[arg(long)]
        uri: Option<String>,
        #[command(flatten)]
        key: crate::chain_cmd::KeyArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Walk a model's lineage in the ModelRegistry: the model, then the model it came
    /// from, and so on to a root.
    Lineage {
        /// A ModelId (64 hex digits), or a model of the store.
        model: String,
        #[command(flatten)]
        key: crate::chain_cmd::KeyArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve a model of the store to peers (by its ModelId only, within `[share]`
    /// limits) and announce it: a DHT provider record and a gossip announcement with its
    /// name, size, architecture, quantisation and licence. Needs a running node; the node
    /// publishes it again when it restarts.
    Publish {
        /// Name or ModelId prefix of a model in the store.
        model: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop serving a published model.
    Unpublish {
        /// Its name or ModelId prefix.
        model: String,
    },
    /// List the models this node publishes.
    Published {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the models peers announced in the last ten minutes, with their publishers.
    Announced {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pull a model from the peers that publish it: several at once, every 1 MiB piece
    /// checked against the ModelId's BLAKE3 tree as it arrives, a peer that sends bad
    /// bytes banned, and an interrupted pull resumed from what is verified on disk. A name
    /// is resolved only through its publishers' announcements (`flurry model announced`).
    Pull {
        /// A ModelId (64 hex digits), or a name peers announced.
        model: String,
        /// Pull from this peer only (and take the name from its announcement).
        #[arg(long, value_name = "PEER")]
        from: Option<String>,
        /// Print JSON lines of progress and the result instead of a progress bar.
        #[arg(long)]
        json: bool,
    },
}

/// The deepest lineage walked.
const MAX_LINEAGE: usize = 64;

/// A ModelId from 64 hex digits, or from a model of the store.
fn model_id_of(store: &flurry_infer::store::ModelStore, spec: &str) -> Result<ModelId> {
    if spec.len() == 64
        && let Ok(id) = spec.parse::<ModelId>()
    {
        return Ok(id);
    }
    Ok(store.resolve(spec)?.model_id)
}

fn b256(id: &ModelId) -> alloy::primitives::B256 {
    alloy::primitives::B256::from(*id.as_bytes())
}

/// The registry's entry of `id` when the configured chain answers within 3 s (`None`
/// otherwise: no chain, or it is down).
fn registration(ctx: &Setup, id: &ModelId) -> Option<Option<flurry_chain::ModelRecord>> {
    if ctx.config.chain.mode == flurry_config::ChainMode::Off {
        return None;
    }
    let rt = crate::chain_cmd::runtime().ok()?;
    rt.block_on(async {
        let key = crate::chain_cmd::KeyArgs {
            password_file: None,
        };
        let look = async {
            let (chain, _) = crate::chain_cmd::connect_with_key(ctx, &key).await?;
            Ok::<_, anyhow::Error>(chain.model_record(b256(id)).await?)
        };
        tokio::time::timeout(std::time::Duration::from_secs(3), look)
            .await
            .ok()?
            .ok()
    })
}

fn print_record(r: &flurry_chain::ModelRecord, local: Option<&str>) {
    let name = local.map(|n| format!(" ({n})")).unwrap_or_default();
    println!("{}{name}", r.model_id);
    println!("  owner      {}", r.owner);
    println!("  licence    {}", r.licence);
    println!("  content    {}", r.content_uri);
    println!("  depth      {}", r.depth);
}

fn node(ctx: &Setup) -> Result<crate::remote::Remote> {
    crate::remote::Remote::find(&ctx.paths).context(
        "no node is running for this FLURRY_HOME: start one with `flurry up` (models are shared by the node)",
    )
}

fn pull(ctx: &Setup, model: &str, from: Option<&str>, json: bool) -> Result<ExitCode> {
    use crate::remote::Line;
    let node = node(ctx)?;
    let mut body = serde_json::json!({ "model": model });
    if let Some(f) = from {
        body["from"] = f.into();
    }
    let rx = node.stream("/api/pull", &body)?;
    let bar = ProgressBar::hidden();
    if !json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ({eta})",
            )?
            .progress_chars("=> "),
        );
    }
    loop {
        let v = match rx.recv() {
            Ok(Line::Json(v)) => v,
            Ok(Line::Failed(e)) => bail!("the pull's progress stopped: {e}"),
            Ok(Line::End) | Err(_) => bail!(
                "the node ended the pull without a result; run the same command again to resume"
            ),
        };
        if json {
            println!("{v}");
        }
        if let Some(e) = v.get("error").and_then(serde_json::Value::as_str) {
            bar.abandon();
            bail!("{e}");
        }
        let status = v
            .get("status")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        if let (Some(total), Some(done)) = (
            v.get("total").and_then(serde_json::Value::as_u64),
            v.get("completed").and_then(serde_json::Value::as_u64),
        ) {
            bar.set_length(total);
            bar.set_position(done);
            let peers = v
                .get("peers")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            bar.set_message(format!(
                "pulling from {peers} peer{}",
                if peers == 1 { "" } else { "s" }
            ));
        }
        if status.starts_with("peer") && !json {
            bar.suspend(|| {
                eprintln!(
                    "{status}: {} ({})",
                    v["peer"].as_str().unwrap_or("?"),
                    v["reason"].as_str().unwrap_or("")
                );
            });
        }
        if status == "success" {
            bar.finish_and_clear();
            if !json {
                let name = v["model"].as_str().unwrap_or("?");
                let id = v["model_id"].as_str().unwrap_or("?");
                match v.get("pulled").filter(|p| !p.is_null()) {
                    None => println!("{name} ({id}) is in the store already"),
                    Some(p) => println!(
                        "pulled {name} ({id}): {} from {} peer{} in {:.1} s{}",
                        human(p["bytes"].as_u64().unwrap_or(0)),
                        p["from"].as_object().map_or(0, serde_json::Map::len),
                        if p["from"].as_object().map_or(0, serde_json::Map::len) == 1 {
                            ""
                        } else {
                            "s"
                        },
                        p["secs"].as_f64().unwrap_or(0.0),
                        match p["resumed"].as_u64().unwrap_or(0) {
                            0 => String::new(),
                            r => format!(", resumed after {}", human(r)),
                        }
                    ),
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
    }
}

pub(crate) fn run(ctx: &Setup, cmd: ModelCommand) -> Result<ExitCode> {
    let store = ctx.store();
    match cmd {
        ModelCommand::Publish { model, json } => {
            let a = node(ctx)?.post(
                "/api/models/publish",
                &serde_json::json!({ "model": model }),
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&a)?);
            } else {
                println!(
                    "published {} ({}, {}): peers can pull it with `flurry model pull {}`",
                    a["name"].as_str().unwrap_or("?"),
                    a["model"].as_str().unwrap_or("?"),
                    human(a["size"].as_u64().unwrap_or(0)),
                    a["model"].as_str().unwrap_or("?"),
                );
            }
        }
        ModelCommand::Unpublish { model } => {
            let v = node(ctx)?.post(
                "/api/models/unpublish",
                &serde_json::json!({ "model": model }),
            )?;
            println!(
                "{} is no longer served",
                v["model_id"].as_str().unwrap_or("?")
            );
        }
        ModelCommand::Published { json } => {
            let v = node(ctx)?.get("/api/models/published")?;
            let list = v["models"].as_array().cloned().unwrap_or_default();
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                eprintln!("no model is published: `flurry model publish NAME`");
            } else {
                println!("{:<40} {:<14} {:>10}", "NAME", "ID", "SIZE");
                for m in list {
                    println!(
                        "{:<40} {:<14} {:>10}",
                        m["name"].as_str().unwrap_or("?"),
                        m["model"].as_str().unwrap_or("?").get(..12).unwrap_or("?"),
                        human(m["size"].as_u64().unwrap_or(0))
                    );
                }
            }
        }
        ModelCommand::Announced { json } => {
            let v = node(ctx)?.get("/api/models/announced")?;
            let list = v["models"].as_array().cloned().unwrap_or_default();
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                eprintln!("no peer has announced a model in the last ten minutes");
            } else {
                println!(
                    "{:<32} {:<14} {:>10} {:<16} PUBLISHER",
                    "NAME", "ID", "SIZE", "QUANT"
                );
                for m in list {
                    println!(
                        "{:<32} {:<14} {:>10} {:<16} {}",
                        m["name"].as_str().unwrap_or("?"),
                        m["model"].as_str().unwrap_or("?").get(..12).unwrap_or("?"),
                        human(m["size"].as_u64().unwrap_or(0)),
                        m["quantization"].as_str().unwrap_or("?"),
                        m["publisher"].as_str().unwrap_or("?"),
                    );
                }
            }
        }
        ModelCommand::Pull { model, from, json } => {
            return pull(ctx, &model, from.as_deref(), json);
        }
        ModelCommand::List { json } => {
            let list = store.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                eprintln!(
                    "no models in {}: run `make models`, or `flurry model import FILE.gguf`",
                    store.dir().display()
                );
            } else {
                println!("{:<40} {:<14} {:>10}", "NAME", "ID", "SIZE");
                for e in list {
                    println!(
                        "{:<40} {:<14} {:>10}",
                        e.name,
                        e.model_id.short(),
                        human(e.size)
                    );
                }
            }
        }
        ModelCommand::Import { file } => {
            let size = std::fs::metadata(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?
                .len();
            let bar = ProgressBar::new(size).with_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")?
                    .progress_chars("=> "),
            );
            bar.set_message("importing");
            let e = store.import(&file, |n| bar.set_position(n))?;
            bar.finish_and_clear();
            println!("imported {} ({})", e.name, e.model_id);
        }
        ModelCommand::Info { model, json } => {
            let entry = store.resolve(&model)?;
            let info = ModelInfo::read(entry)?;
            let registered = registration(ctx, &info.entry.model_id);
            if json {
                let mut v = serde_json::to_value(&info)?;
                v["registry"] = match &registered {
                    Some(r) => serde_json::to_value(r)?,
                    None => serde_json::json!("unknown"),
                };
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let e = &info.entry;
                println!("name           {}", e.name);
                if let Some(n) = &info.display_name {
                    println!("display name   {n}");
                }
                println!("model id       {}", e.model_id);
                println!("path           {}", e.path.display());
                println!("size           {}", human(e.size));
                println!("architecture   {}", info.architecture);
                println!("parameters     {:.1}M", info.parameters as f64 / 1e6);
                println!("quantization   {}", info.quantization);
                if let Some(c) = info.context_length {
                    println!("context        {c}");
                }
                if let Some(l) = &info.license {
                    println!("license        {l}");
                }
                match &registered {
                    Some(Some(r)) => {
                        println!("registry       owner {}, licence {}", r.owner, r.licence);
                        if r.depth > 0 {
                            println!("parent         {} (`flurry model lineage`)", r.parent);
                        }
                    }
                    Some(None) => {
                        println!("registry       not registered (`flurry model register`)");
                    }
                    None => println!("registry       (no chain answered)"),
                }
                match &info.chat_template {
                    Some(t) => println!("chat template  (from file)\n{t}"),
                    None => println!("chat template  (none in file; built-in fallback)"),
                }
            }
        }
        ModelCommand::Register {
            model,
            parent,
            licence,
            uri,
            key,
            json,
        } => {
            let entry = store.resolve(&model)?;
            // The id goes on chain under this node's name: hashed again, never taken
            // from the id cache.
            let id = flurry_infer::store::hash_file(&entry.path, |_| {})?;
            let info = ModelInfo::read(entry)?;
            let licence = match licence.or(info.license.clone()) {
                Some(l) if !l.trim().is_empty() && l.len() <= 256 => l,
                Some(_) => anyhow::bail!("--licence: an SPDX expression of 1 to 256 characters"),
                None => anyhow::bail!(
                    "{} names no licence (general.license): give one with --licence SPDX, e.g. --licence Apache-2.0",
                    info.entry.name
                ),
            };
            let parent = match parent {
                Some(p) => Some(p.parse::<ModelId>().map_err(|_| {
                    anyhow::anyhow!("--parent {p} is not a ModelId (64 hex digits; `flurry model list` shows them)")
                })?),
                None => None,
            };
            if parent == Some(id) {
                anyhow::bail!("a model cannot be its own parent");
            }
            let uri = uri.unwrap_or_else(|| format!("flurry://{id}"));
            if uri.len() > 1024 {
                anyhow::bail!("--uri: at most 1024 characters");
            }
            let rt = crate::chain_cmd::runtime()?;
            let (tx, record) = rt.block_on(async {
                let (chain, _) = crate::chain_cmd::connect_with_key(ctx, &key).await?;
                if let Some(p) = &parent
                    && chain.model_record(b256(p)).await?.is_none()
                {
                    anyhow::bail!(
                        "the parent {p} is not registered: register it first (its owner runs `flurry model register`)"
                    );
                }
                if let Some(r) = chain.model_record(b256(&id)).await? {
                    anyhow::bail!(
                        "{id} is registered already, by {} (licence {}): a ModelId is registered once",
                        r.owner,
                        r.licence
                    );
                }
                let tx = chain
                    .register_model(
                        b256(&id),
                        parent.as_ref().map(b256).unwrap_or_default(),
                        &licence,
                        &uri,
                    )
                    .await?;
                let record = chain.model_record(b256(&id)).await?;
                Ok((tx, record))
            })?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"model_id": id.to_string(), "name": info.entry.name, "tx": tx.hash, "record": record})
                );
            } else {
                println!(
                    "Registered {} ({id}), licence {licence}{} (transaction {}).",
                    info.entry.name,
                    parent.map(|p| format!(", from {p}")).unwrap_or_default(),
                    tx.hash
                );
            }
        }
        ModelCommand::Lineage { model, key, json } => {
            let id = model_id_of(&store, &model)?;
            let local: std::collections::HashMap<ModelId, String> = store
                .list()?
                .into_iter()
                .map(|e| (e.model_id, e.name))
                .collect();
            let rt = crate::chain_cmd::runtime()?;
            let chain_of = rt.block_on(async {
                let (chain, _) = crate::chain_cmd::connect_with_key(ctx, &key).await?;
                let mut out = Vec::new();
                let mut cur = b256(&id);
                while out.len() < MAX_LINEAGE {
                    let Some(r) = chain.model_record(cur).await? else {
                        if out.is_empty() {
                            anyhow::bail!(
                                "{id} is not registered in the ModelRegistry (`flurry model register`)"
                            );
                        }
                        break;
                    };
                    let parent = r.parent;
                    let root = r.depth == 0;
                    out.push(r);
                    if root {
                        break;
                    }
                    cur = parent;
                }
                Ok(out)
            })?;
            if json {
                let v: Vec<serde_json::Value> = chain_of
                    .iter()
                    .map(|r| {
                        let mut v = serde_json::to_value(r).unwrap_or_default();
                        v["name"] =
                            serde_json::json!(local.get(&ModelId::from_bytes(r.model_id.0)));
                        v
                    })
                    .collect();
                println!("{}", serde_json::json!({ "lineage": v }));
            } else {
                for (i, r) in chain_of.iter().enumerate() {
                    if i > 0 {
                        println!("  ↑ came from");
                    }
                    print_record(
                        r,
                        local
                            .get(&ModelId::from_bytes(r.model_id.0))
                            .map(String::as_str),
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.1} kB", b / 1e3)
    }
}
