//! Embedding throughput on short sentences, one thread and all threads:
//! `cargo run --release -p flurry-embed --example embed_bench [model_dir]`.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use flurry_embed::Embedder;

const SENTENCES: [&str; 8] = [
    "A man is eating food.",
    "The new movie is awesome, I loved every minute of it.",
    "How do I reset my password?",
    "Re: meeting moved to Thursday at 3pm",
    "今天天气很好，我们去公园散步吧。",
    "Rust makes systems programming safer.",
    "The cat sat on the mat and looked out of the window.",
    "Café naïve résumé.",
];

/// CPU time (user + system) of this process in seconds, from `/proc/self/stat` (Linux;
/// 0 elsewhere). Assumes 100 clock ticks per second.
/// `$FLURRY_MODELS/all-MiniLM-L6-v2`, `FLURRY_MODELS` defaulting to `~/.flurry/models`
/// (as in `scripts/fetch-models.sh`).
fn default_model_dir() -> Option<std::path::PathBuf> {
    let models = match std::env::var_os("FLURRY_MODELS") {
        Some(m) if !m.is_empty() => std::path::PathBuf::from(m),
        _ => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".flurry/models"),
    };
    Some(models.join(flurry_embed::MODEL_DIR_NAME))
}

fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / 100.0
}

/// Texts per wall-clock second and per CPU second.
fn run(e: &Embedder, texts: &[&str], threads: usize) -> (f64, f64) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        e.embed(&texts[..16]).unwrap(); // warm-up
        let start = Instant::now();
        let cpu = cpu_seconds();
        let mut n = 0;
        while start.elapsed().as_secs_f64() < 5.0 {
            n += e.embed(texts).unwrap().len();
        }
        let n = n as f64;
        (n / start.elapsed().as_secs_f64(), n / (cpu_seconds() - cpu))
    })
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(Into::into)
        .or_else(default_model_dir)
        .expect("model directory");
    let start = Instant::now();
    let e =
        Embedder::load(&dir).unwrap_or_else(|err| panic!("{err} (run scripts/fetch-models.sh)"));
    println!("load: {:.0} ms", start.elapsed().as_secs_f64() * 1e3);
    let texts: Vec<&str> = SENTENCES.iter().cycle().take(64).copied().collect();
    let tokens: usize = texts.iter().map(|t| e.tokenize(t).len()).sum();
    println!(
        "{} texts per batch, {:.1} tokens per text on average",
        texts.len(),
        tokens as f64 / texts.len() as f64
    );
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    for threads in [1, all] {
        let (wall, cpu) = run(&e, &texts, threads);
        println!("{threads} thread(s): {wall:.0} texts/s ({cpu:.0} texts per CPU second)");
    }
    let long = "word ".repeat(300);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let start = Instant::now();
    pool.install(|| e.embed(&[long.as_str()]).unwrap());
    println!(
        "one 256-token text, 1 thread: {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
}
