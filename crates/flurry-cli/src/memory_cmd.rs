//! `flurry ingest` and `flurry memory search|list|forget|roots`.
//!
//! `flurry ingest PATH` runs in this process (the user typed the path, so any path is
//! fine); the API's `POST /api/memory/ingest` only reads folders listed by
//! `flurry memory roots add`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use flurry_agent::{History, HistoryKey};
use flurry_identity::Identity;
use flurry_memory::{Filters, MemoryKey, MemoryStore, SearchMode};
use flurry_node::PassphraseOptions;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::Setup;

#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// Files or directories (walked recursively; .gitignore and .ignore files honoured).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Also remove stored documents whose file under these paths is gone.
    #[arg(long)]
    prune: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// File holding the key passphrase (mode 0600). Also: FLURRY_PASSPHRASE.
    #[arg(long)]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ModeArg {
    Hybrid,
    Bm25,
    Vector,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MemoryCommand {
    /// Search your documents by keywords and meaning.
    Search {
        /// What to look for.
        query: String,
        /// Number of results.
        #[arg(short, long, default_value_t = 5)]
        k: usize,
        /// Ranking: hybrid (BM25 + vectors, fused), bm25, or vector.
        #[arg(long, value_enum, default_value_t = ModeArg::Hybrid)]
        mode: ModeArg,
        /// Only documents whose path starts with this.
        #[arg(long)]
        path: Option<String>,
        /// Only this kind: text, markdown, html.
        #[arg(long)]
        kind: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// File holding the key passphrase (mode 0600). Also: FLURRY_PASSPHRASE.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List stored documents.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// File holding the key passphrase (mode 0600). Also: FLURRY_PASSPHRASE.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// The folders the node's API may ingest from (`[memory] roots` in flurry.toml);
    /// `flurry ingest PATH` is not limited by them.
    Roots {
        #[command(subcommand)]
        command: RootsCommand,
    },
    /// Remove a document (by id or path; a directory removes everything under it) from
    /// the full-text index and the vectors, and its citations from the chat history.
    Forget {
        /// Document id (from `memory list`) or path.
        target: String,
        /// File holding the key passphrase (mode 0600). Also: FLURRY_PASSPHRASE.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RootsCommand {
    /// Let the API ingest FOLDER and everything under it (a running node sees it at its
    /// next ingest request).
    Add {
        /// An existing folder (symlinks are resolved; the real folder is stored).
        path: PathBuf,
    },
    /// List the folders.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop letting the API ingest FOLDER (what was ingested stays; `flurry memory forget
    /// FOLDER` removes it).
    Remove {
        /// A folder listed by `flurry memory roots list`.
        path: PathBuf,
    },
}

fn open_with(ctx: &Setup, password_file: Option<PathBuf>) -> Result<(MemoryStore, Identity)> {
    let id = flurry_node::unlock(&ctx.paths, &PassphraseOptions::from_env(password_file))?;
    let store = MemoryStore::open(&ctx.paths.memory_db(), &MemoryKey::from_identity(&id))?;
    Ok((store, id))
}

fn open(ctx: &Setup, password_file: Option<PathBuf>) -> Result<MemoryStore> {
    Ok(open_with(ctx, password_file)?.0)
}

/// Whether `MemoryStore::forget(what)` removes the document `(id, path)`: by id, by
/// exact path, everything under a folder, or every message of a mailbox (`file#N`).
fn forget_matches(what: &str, id: i64, path: &str) -> bool {
    if let Ok(n) = what.parse::<i64>() {
        return n == id;
    }
    let dir = format!("{}/", what.trim_end_matches('/'));
    path == what || path.starts_with(&dir) || path.starts_with(&format!("{what}#"))
}

fn roots(ctx: &Setup, command: RootsCommand) -> Result<()> {
    let file = ctx.paths.config_file();
    match command {
        RootsCommand::Add { path } => {
            let real = std::fs::canonicalize(&path)
                .with_context(|| format!("{} cannot be added", path.display()))?;
            if !real.is_dir() {
                anyhow::bail!(
                    "{} is not a folder: add the folder that holds it (`flurry ingest FILE` ingests one file)",
                    path.display()
                );
            }
            if flurry_config::add_memory_root(&file, &real)? {
                println!(
                    "The API may now ingest from {} (a running node sees it at its next ingest request).",
                    real.display()
                );
            } else {
                println!("{} is already a memory root.", real.display());
            }
        }
        RootsCommand::List { json } => {
            let roots = &ctx.config.memory.roots;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "roots": roots }))?
                );
            } else if roots.is_empty() {
                println!(
                    "No memory roots: the API ingests nothing. (`flurry memory roots add FOLDER` adds one.)"
                );
            } else {
                for r in roots {
                    println!("{}", r.display());
                }
            }
        }
        RootsCommand::Remove { path } => {
            // The folder as listed: its real path, or (gone since) the path as typed.
            let mut forms = vec![std::path::absolute(&path)?];
            if let Ok(real) = std::fs::canonicalize(&path) {
                forms.push(real);
            }
            let mut removed = false;
            for f in &forms {
                removed |= flurry_config::remove_memory_root(&file, f)?;
            }
            if !removed {
                anyhow::bail!(
                    "{} is not a memory root (see `flurry memory roots list`)",
                    path.display()
                );
            }
            println!("The API no longer ingests from {}.", path.display());
        }
    }
    Ok(())
}

fn forget(ctx: &Setup, target: &str, password_file: Option<PathBuf>) -> Result<usize> {
    let (store, id) = open_with(ctx, password_file)?;
    let gone: Vec<(i64, String)> = store
        .list()?
        .into_iter()
        .filter(|d| forget_matches(target, d.id, &d.path))
        .map(|d| (d.id, d.path))
        .collect();
    let n = store.forget(target)?;
    if n > 0 && ctx.paths.history_db().exists() {
        // Chat answers cite snippets of these documents: the citations go with them.
        let history = History::open(&ctx.paths.history_db(), &HistoryKey::from_identity(&id))?;
        let ids: Vec<i64> = gone.iter().map(|(i, _)| *i).collect();
        let paths: Vec<String> = gone.into_iter().map(|(_, p)| p).collect();
        history.forget_citations(&ids, &paths)?;
    }
    Ok(n)
}

fn embedder(ctx: &Setup) -> Result<flurry_embed::Embedder> {
    let dir = ctx.paths.models.join(flurry_embed::MODEL_DIR_NAME);
    flurry_embed::Embedder::load(&dir).with_context(
        || "the embedding model is missing: run `make model` (or scripts/fetch-models.sh)",
    )
}

pub(crate) fn ingest(ctx: &Setup, a: IngestArgs) -> Result<ExitCode> {
    let store = open(ctx, a.password_file)?;
    let e = embedder(ctx)?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg:40!} [{bar:30}] {pos}/{len} files ({eta})")?
            .progress_chars("=> "),
    );
    if a.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = std::time::Instant::now();
    let summary = flurry_memory::ingest(&store, &e, &a.paths, a.prune, &mut |file, n, total| {
        bar.set_length(total as u64);
        bar.set_position(n as u64);
        bar.set_message(
            file.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    })?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    // Throughput of what was embedded (unchanged files cost nothing).
    let chunks_per_s = if secs > 0.0 {
        summary.chunks as f64 / secs
    } else {
        0.0
    };
    if a.json {
        let failed: Vec<_> = summary
            .failed
            .iter()
            .map(|(p, r)| json!({"path": p, "reason": r}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "added": summary.added, "updated": summary.updated,
                "unchanged": summary.unchanged, "removed": summary.removed,
                "chunks": summary.chunks, "bytes": summary.bytes, "seconds": secs,
                "chunks_per_s": chunks_per_s,
                "failed": failed,
            }))?
        );
    } else {
        println!(
            "{} added, {} updated, {} unchanged, {} removed; {} chunks from {:.1} MB in {secs:.1} s ({chunks_per_s:.1} chunks/s)",
            summary.added,
            summary.updated,
            summary.unchanged,
            summary.removed,
            summary.chunks,
            summary.bytes as f64 / 1e6
        );
        if !summary.failed.is_empty() {
            println!("skipped {} file(s):", summary.failed.len());
            for (p, r) in &summary.failed {
                println!("  {p}: {r}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn memory(ctx: &Setup, m: MemoryCommand) -> Result<ExitCode> {
    match m {
        MemoryCommand::Search {
            query,
            k,
            mode,
            path,
            kind,
            json,
            password_file,
        } => {
            let store = open(ctx, password_file)?;
            let mode = match mode {
                ModeArg::Hybrid => SearchMode::Hybrid,
                ModeArg::Bm25 => SearchMode::Bm25,
                ModeArg::Vector => SearchMode::Vector,
            };
            let vector = match mode {
                SearchMode::Bm25 => None,
                _ => Some(embedder(ctx)?.embed_one(&query)?),
            };
            let filters = Filters {
                path_prefix: path,
                kind,
                ..Filters::default()
            };
            let hits = store.search(&query, vector.as_deref(), k.max(1), mode, &filters)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "results": hits }))?
                );
            } else if hits.is_empty() {
                println!("No matches. (`flurry ingest PATH` adds documents.)");
            } else {
                for (i, h) in hits.iter().enumerate() {
                    println!(
                        "{}. {} (chunk {}, bytes {}..{}, score {:.4})\n   {}",
                        i + 1,
                        h.path,
                        h.ord,
                        h.start,
                        h.end,
                        h.score,
                        h.snippet
                    );
                }
            }
        }
        MemoryCommand::List {
            json,
            password_file,
        } => {
            let docs = open(ctx, password_file)?.list()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "documents": docs }))?
                );
            } else if docs.is_empty() {
                println!("Memory is empty. (`flurry ingest PATH` adds documents.)");
            } else {
                for d in &docs {
                    println!(
                        "{:>5}  {:<8} {:>4} chunks  {}",
                        d.id, d.kind, d.chunks, d.path
                    );
                }
            }
        }
        MemoryCommand::Roots { command } => roots(ctx, command)?,
        MemoryCommand::Forget {
            target,
            password_file,
        } => {
            let n = forget(ctx, &target, password_file)?;
            if n == 0 {
                anyhow::bail!("nothing stored matches {target:?} (see `flurry memory list`)");
            }
            println!("Forgot {n} document(s).");
        }
    }
    Ok(ExitCode::SUCCESS)
}
