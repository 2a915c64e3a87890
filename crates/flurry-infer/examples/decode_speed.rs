//! Quick engine timing without the CLI: `cargo run --release -p flurry-infer --example
//! decode_speed -- MODEL.gguf THREADS`. Prints pp256 and tg128 (depth 0) tokens/s, and
//! the cost of one decode step of 8 sequences against one step of one sequence. The
//! benchmark of record is `make bench`; this is for iterating on kernels.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use flurry_infer::model::{BatchItem, KvCache, Logits, Model, Scratch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: decode_speed MODEL.gguf [THREADS]")?;
    let threads: usize = args.next().map_or(Ok(1), |t| t.parse())?;
    // A third argument `batch` times only the 8-sequence steps, `prefill` only pp256, `tg`
    // only tg128, `deep` only tg128 at depth 256 (for profiling them). `batch`, `tg` and
    // `deep` take a number of rounds after it. `engine` runs 1 and 8 streams through the
    // engine twice, as `flurry bench --streams 8` does, with each stream's prefill and
    // decode times.
    let mode = args.next();
    // `batch` runs 64 steps per round, `batch128` 128 (deeper contexts, as `make bench`).
    let steps = match mode.as_deref() {
        Some("batch") => Some(64),
        Some("batch128") => Some(128),
        _ => None,
    };
    let model = Model::load(std::path::Path::new(&path))?;
    if mode.as_deref() == Some("engine") {
        return engine_streams(model, threads);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut scratch = Scratch::default();
    let vocab = model.hparams().n_vocab as u32;
    let toks: Vec<u32> = (0..256u32).map(|i| (i * 7919 + 13) % vocab).collect();
    if let Some(steps) = steps {
        // The best of 10 rounds: this machine's neighbours make single timings noisy.
        let rounds: usize = args.next().map_or(Ok(10), |r| r.parse())?;
        let mut best = 0f64;
        for _ in 0..rounds {
            best = best.max(batch8(&model, &mut scratch, &pool, steps)?);
        }
        println!("8 sequences {best:.1} t/s (best of {rounds})");
        return Ok(());
    }
    if mode.as_deref() == Some("prefill") {
        let mut best = 0f64;
        for _ in 0..10 {
            let mut cache = model.new_cache(256);
            let t = Instant::now();
            model.forward(&mut cache, &toks, false, &mut scratch, &pool)?;
            best = best.max(256.0 / t.elapsed().as_secs_f64());
        }
        println!("pp256 {best:.1} t/s (best of 10)");
        return Ok(());
    }
    if mode.as_deref() == Some("tg") {
        // tg128 at depth 0 only: the one-sequence figure the batch steps compare with.
        let rounds: usize = args.next().map_or(Ok(10), |r| r.parse())?;
        let mut best = 0f64;
        for _ in 0..rounds {
            let mut cache = model.new_cache(130);
            best = best.max(tg128(&model, &mut cache, &mut scratch, &pool)?);
        }
        println!("tg128 {best:.1} t/s (best of {rounds})");
        return Ok(());
    }
    if mode.as_deref() == Some("deep") {
        // tg128 at depth 256, as `make bench` measures it: prefill 256, then time decode.
        let rounds: usize = args.next().map_or(Ok(5), |r| r.parse())?;
        let mut best = 0f64;
        let mut cache = model.new_cache(256 + 129);
        model.forward(&mut cache, &toks, false, &mut scratch, &pool)?;
        for _ in 0..rounds {
            cache.truncate(256);
            best = best.max(tg128(&model, &mut cache, &mut scratch, &pool)?);
        }
        println!("tg128 d256 {best:.1} t/s (best of {rounds})");
        return Ok(());
    }
    for round in 0..3 {
        let mut cache = model.new_cache(256 + 129);
        let t = Instant::now();
        model.forward(&mut cache, &toks, false, &mut scratch, &pool)?;
        let pp = 256.0 / t.elapsed().as_secs_f64();
        let mut cache = model.new_cache(130);
        let tg = tg128(&model, &mut cache, &mut scratch, &pool)?;
        let b8 = batch8(&model, &mut scratch, &pool, 64)?;
        println!(
            "round {round}: pp256 {pp:.1} t/s, tg128 {tg:.1} t/s, 8 sequences {b8:.1} t/s ({:.2}x)",
            b8 / tg
        );
    }
    Ok(())
}

/// Tokens/s of 128 decode steps of one sequence, after what `cache` holds.
fn tg128(
    model: &Model,
    cache: &mut KvCache,
    scratch: &mut Scratch,
    pool: &rayon::ThreadPool,
) -> Result<f64, Box<dyn std::error::Error>> {
    let vocab = model.hparams().n_vocab as u32;
    let t = Instant::now();
    for i in 0..128u32 {
        model.forward(cache, &[(i * 31 + 7) % vocab], false, scratch, pool)?;
    }
    Ok(128.0 / t.elapsed().as_secs_f64())
}

/// Tokens/s of 8 sequences decoding together: `steps` steps of one token each, one batch
/// per step.
fn batch8(
    model: &Model,
    scratch: &mut Scratch,
    pool: &rayon::ThreadPool,
    steps: u32,
) -> Result<f64, Box<dyn std::error::Error>> {
    let vocab = model.hparams().n_vocab as u32;
    let mut caches: Vec<_> = (0..8)
        .map(|_| model.new_cache(steps as usize + 16))
        .collect();
    let t = Instant::now();
    for i in 0..steps {
        let toks: Vec<[u32; 1]> = (0..8u32).map(|s| [(i * 31 + s * 7 + 7) % vocab]).collect();
        let mut items: Vec<BatchItem<'_>> = caches
            .iter_mut()
            .zip(&toks)
            .map(|(cache, t)| BatchItem {
                cache,
                tokens: t,
                logits: Logits::Last,
            })
            .collect();
        model.forward_batch(&mut items, scratch, pool)?;
    }
    Ok(8.0 * f64::from(steps) / t.elapsed().as_secs_f64())
}

/// 1 and 8 greedy streams of 128 tokens through the engine, twice: total tokens/s and
/// where each stream's time went.
fn engine_streams(model: Model, threads: usize) -> Result<(), Box<dyn std::error::Error>> {
    use flurry_infer::engine::{Engine, EngineConfig, Event, GenerateRequest};
    use flurry_infer::sampler::SamplingParams;
    let model = std::sync::Arc::new(model);
    for n in [1usize, 8, 1, 8] {
        let cfg = EngineConfig::default()
            .with_threads(threads)
            .with_max_active(n)
            .with_queue_capacity(n);
        let engine = Engine::start(model.clone(), cfg)?;
        let t = Instant::now();
        let rxs = (0..n)
            .map(|i| {
                let req = GenerateRequest::raw(format!("Story number {i}: Once upon a time"))
                    .with_sampling(SamplingParams {
                        seed: i as u64,
                        ..SamplingParams::greedy()
                    })
                    .with_max_tokens(128);
                engine.submit(req)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut total = 0;
        let mut sums = (0f64, 0f64, 0f64, 0usize);
        for rx in rxs {
            for ev in rx {
                match ev {
                    Event::Token { .. } => total += 1,
                    Event::Done { timings, .. } => {
                        sums.0 += timings.prefill_ms;
                        sums.1 += timings.decode_ms;
                        sums.2 += timings.queue_ms;
                        sums.3 += timings.prompt_tokens;
                    }
                    _ => {}
                }
            }
        }
        let wall = t.elapsed().as_secs_f64() * 1000.0;
        let k = n as f64;
        println!(
            "{n} streams: {:.1} t/s, wall {wall:.0} ms, per seq: prefill {:.0} ms, decode {:.0} ms, queue {:.0} ms, prompt {} tokens",
            total as f64 / wall * 1000.0,
            sums.0 / k,
            sums.1 / k,
            sums.2 / k,
            sums.3 / n
        );
    }
    Ok(())
}
