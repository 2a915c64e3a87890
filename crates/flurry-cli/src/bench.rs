//! `flurry bench`: prompt-processing and generation speed, measured like llama-bench
//! (random prompt tokens, logits for the last position of a prompt, one token per
//! decode step, optionally after a prefilled depth).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use flurry_infer::model::{Model, Scratch};

use crate::Setup;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Model: a name, ModelId prefix, or path.
    #[arg(long, short)]
    model: Option<String>,
    /// Kernel threads (0 = one per core).
    #[arg(long, short, default_value_t = 0)]
    threads: usize,
    /// Prompt length for the prefill test (0 skips it).
    #[arg(long, short = 'p', default_value_t = 256)]
    prompt_tokens: usize,
    /// Tokens generated in the decode test (0 skips it).
    #[arg(long, short = 'n', default_value_t = 128)]
    gen_tokens: usize,
    /// Context depths for the decode test, comma-separated.
    #[arg(long, short = 'd', value_delimiter = ',', default_value = "0")]
    depth: Vec<usize>,
    /// Repetitions per test.
    #[arg(long, short = 'r', default_value_t = 5)]
    reps: usize,
    /// Also measure N concurrent generation streams through the engine (continuous
    /// batching) against one stream; 0 skips it.
    #[arg(long, default_value_t = 0)]
    streams: usize,
    /// Print one JSON object per test.
    #[arg(long)]
    json: bool,
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as u32
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub(crate) fn run(ctx: &Setup, a: BenchArgs) -> Result<ExitCode> {
    let entry = ctx.resolve_model(a.model.as_deref())?;
    let t0 = Instant::now();
    let model = Model::load(&entry.path).with_context(|| format!("cannot load {}", entry.name))?;
    let load_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let threads = if a.threads == 0 {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        a.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let n_vocab = model.hparams().n_vocab;
    let mut rng = Lcg(42);
    let mut scratch = Scratch::default();
    let reps = a.reps.max(1);
    let report = |name: &str, depth: usize, samples: &mut Vec<f64>| {
        let med = median(samples);
        if a.json {
            println!(
                "{}",
                serde_json::json!({
                    "model": entry.name, "model_id": entry.model_id, "test": name,
                    "depth": depth, "threads": threads, "samples_tps": samples,
                    "median_tps": med, "kernel": flurry_infer::quant::kernel_path(),
                })
            );
        } else {
            println!(
                "{:<28} {:>6} {:>10.1} t/s  (median of {reps})",
                format!("{} {name}", entry.name),
                format!("d{depth}"),
                med
            );
        }
    };
    // Warm-up: page the weights in and size the buffers.
    {
        let mut cache = model.new_cache(16);
        model.forward(&mut cache, &[1, 2, 3], false, &mut scratch, &pool)?;
    }
    if a.prompt_tokens > 0 {
        let mut samples = Vec::new();
        for _ in 0..reps {
            let toks: Vec<u32> = (0..a.prompt_tokens).map(|_| rng.next(n_vocab)).collect();
            let mut cache = model.new_cache(a.prompt_tokens + 1);
            let t = Instant::now();
            model.forward(&mut cache, &toks, false, &mut scratch, &pool)?;
            samples.push(a.prompt_tokens as f64 / t.elapsed().as_secs_f64());
        }
        report(&format!("pp{}", a.prompt_tokens), 0, &mut samples);
    }
    if a.gen_tokens > 0 {
        for &depth in &a.depth {
            let mut samples = Vec::new();
            for _ in 0..reps {
                let mut cache = model.new_cache(depth + a.gen_tokens + 1);
                if depth > 0 {
                    let toks: Vec<u32> = (0..depth).map(|_| rng.next(n_vocab)).collect();
                    for chunk in toks.chunks(256) {
                        model.forward(&mut cache, chunk, false, &mut scratch, &pool)?;
                    }
                }
                let t = Instant::now();
                for _ in 0..a.gen_tokens {
                    let tok = rng.next(n_vocab);
                    model.forward(&mut cache, &[tok], false, &mut scratch, &pool)?;
                }
                samples.push(a.gen_tokens as f64 / t.elapsed().as_secs_f64());
            }
            report(&format!("tg{}", a.gen_tokens), depth, &mut samples);
        }
    }
    if a.streams > 0 {
        let model = std::sync::Arc::new(model);
        let mut by_n = Vec::new();
        let mut generated = 0;
        for n in [1, a.streams] {
            let (tps, tokens) = streams_tps(&model, threads, n, a.gen_tokens.max(16), reps)?;
            by_n.push(tps);
            generated = tokens;
            report(&format!("streams{n}"), 0, &mut vec![tps]);
        }
        let ratio = by_n[1] / by_n[0];
        if a.json {
            println!(
                "{}",
                serde_json::json!({"test": "streams_ratio", "streams": a.streams, "ratio": ratio, "tokens": generated})
            );
        } else {
            println!(
                "{} streams give {ratio:.2}x the tokens/s of one ({generated} tokens per round)",
                a.streams
            );
        }
    }
    let rss = peak_rss_mib().unwrap_or(0.0);
    if a.json {
        println!(
            "{}",
            serde_json::json!({"model": entry.name, "test": "summary", "peak_rss_mib": rss, "load_ms": load_ms, "threads": threads, "kernel": flurry_infer::quant::kernel_path()})
        );
    } else {
        println!(
            "peak RSS {rss:.0} MiB, load {load_ms:.0} ms, {threads} threads, kernels: {}",
            flurry_infer::quant::kernel_path()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Total generated tokens per second with `n` concurrent greedy requests (median of reps),
/// and the tokens generated in a round (fewer than `n * tokens` where a stream ended early).
fn streams_tps(
    model: &std::sync::Arc<Model>,
    threads: usize,
    n: usize,
    tokens: usize,
    reps: usize,
) -> Result<(f64, usize)> {
    use flurry_infer::engine::{Engine, EngineConfig, Event, GenerateRequest};
    use flurry_infer::sampler::SamplingParams;
    let cfg = EngineConfig::default()
        .with_threads(threads)
        .with_max_active(n)
        .with_queue_capacity(n);
    let engine = Engine::start(model.clone(), cfg)?;
    let mut samples = Vec::new();
    let mut total = 0usize;
    for _ in 0..reps {
        let t = Instant::now();
        let rxs = (0..n)
            .map(|i| {
                // Greedy, so the figure measures the engine rather than the sampler.
                let req = GenerateRequest::raw(format!("Story number {i}: Once upon a time"))
                    .with_sampling(SamplingParams {
                        seed: i as u64,
                        ..SamplingParams::greedy()
                    })
                    .with_max_tokens(tokens);
                engine.submit(req)
            })
            .collect::<Result<Vec<_>, _>>()?;
        total = 0;
        for rx in rxs {
            for ev in rx {
                if let Event::Token { .. } = ev {
                    total += 1;
                }
            }
        }
        samples.push(total as f64 / t.elapsed().as_secs_f64());
    }
    Ok((median(&mut samples), total))
}
