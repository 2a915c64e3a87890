//! `flurry perplexity`: a model's perplexity on a text, by llama-perplexity's method
//! (see `flurry_infer::perplexity`), so quality can be compared with llama.cpp on the
//! same GGUF.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use flurry_infer::model::Model;
use flurry_infer::perplexity::{chunk_count, perplexity};
use indicatif::{ProgressBar, ProgressStyle};

use crate::Setup;

/// The largest text read (the whole file is tokenized at once).
const MAX_TEXT_BYTES: u64 = 256 << 20;

#[derive(Debug, Args)]
pub(crate) struct PerplexityArgs {
    /// Model: a name from `flurry model list`, a ModelId prefix, or a path to a GGUF file.
    #[arg(long, short)]
    model: Option<String>,
    /// The text to score (UTF-8), e.g. wiki.test.raw.
    file: PathBuf,
    /// Window length in tokens; the second half of each window is scored.
    #[arg(long, short, default_value_t = 512)]
    ctx: usize,
    /// Evaluate at most this many windows (default: all the text holds).
    #[arg(long)]
    chunks: Option<usize>,
    /// Kernel threads (default: [engine] threads, 0 = one per core).
    #[arg(long, short)]
    threads: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(ctx: &Setup, a: PerplexityArgs) -> Result<ExitCode> {
    let meta =
        std::fs::metadata(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", a.file.display());
    }
    if meta.len() > MAX_TEXT_BYTES {
        bail!(
            "{} is {} MiB; perplexity reads at most {} MiB: cut the text or pass a part of it",
            a.file.display(),
            meta.len() >> 20,
            MAX_TEXT_BYTES >> 20
        );
    }
    let bytes =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not UTF-8 text (invalid byte at offset {}): convert it first",
            a.file.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    let entry = ctx.resolve_model(a.model.as_deref())?;
    let model =
        Model::load(&entry.path).with_context(|| format!("cannot load model {}", entry.name))?;
    let threads = match a.threads.unwrap_or(ctx.config.engine.threads) {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let tokens = model.tokenizer().encode(&text, true, false);
    let total = chunk_count(tokens.len(), a.ctx, a.chunks);
    if !a.json {
        eprintln!(
            "{}: {} tokens, {total} windows of {} ({threads} threads)",
            entry.name,
            tokens.len(),
            a.ctx
        );
    }
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("[{bar:30}] {pos}/{len} windows  ppl {msg}  ({eta})")?
            .progress_chars("=> "),
    );
    if a.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = Instant::now();
    let r = perplexity(&model, &tokens, a.ctx, a.chunks, &pool, |done, _, ppl| {
        bar.set_position(done as u64);
        bar.set_message(format!("{ppl:.4}"));
    })?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let evaluated = r.chunks * r.ctx;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "model": entry.name, "model_id": entry.model_id, "file": a.file,
                "ctx": r.ctx, "chunks": r.chunks, "tokens": tokens.len(), "scored": r.scored,
                "ppl": r.ppl, "ppl_stderr": r.ppl_stderr, "running": r.running,
                "seconds": secs, "tokens_per_second": evaluated as f64 / secs,
                "threads": threads,
            })
        );
    } else {
        let running: Vec<String> = r
            .running
            .iter()
            .enumerate()
            .map(|(i, p)| format!("[{}]{p:.4}", i + 1))
            .collect();
        println!("{}", running.join(","));
        println!(
            "{} windows of {}, {} tokens scored in {secs:.1} s ({:.0} t/s); PPL = {:.4} +/- {:.4}",
            r.chunks,
            r.ctx,
            r.scored,
            evaluated as f64 / secs,
            r.ppl,
            r.ppl_stderr
        );
        println!("ppl={:.4}", r.ppl);
    }
    Ok(ExitCode::SUCCESS)
}
