//! Private-memory benchmark (`make bench-memory`, part of `make bench`): retrieval quality
//! on the evaluation set of `scripts/gen-memory-eval.py`, ingestion throughput, query
//! latency over a store of about 10,000 chunks, and peak RSS, with the real MiniLM model
//! and a real SQLCipher store.
//!
//! ```text
//! cargo run --release -p flurry-memory --example memory_bench -- [--quick] [--bulk N] [--skip-large] [--misses] [--work DIR [--reuse]]
//! ```
//!
//! A question counts as found at rank r when the r-th hit is a chunk of the expected
//! document (same canonical path; `file.mbox#N` for message N) whose text contains the
//! expected answer, both compared with runs of whitespace collapsed to one space.
//! recall@5 is the share of questions found within the top 5; MRR is the mean of 1/r
//! over the top 10 (0 when not found there). The run exits with status 1 when hybrid
//! search does not beat both BM25 alone and vectors alone on recall@5 and on MRR.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flurry_embed::Embedder;
use flurry_memory::{Extractor, Filters, MemoryKey, MemoryStore, SearchMode, Summary, ingest_with};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Bulk notes for the large store: with the evaluation corpus this gives about 10,000
/// chunks (measured: about 1.9 chunks per bulk note).
const BULK_FULL: usize = 4900;
const BULK_QUICK: usize = 900;
const MODES: [(SearchMode, &str); 3] = [
    (SearchMode::Bm25, "bm25"),
    (SearchMode::Vector, "vector"),
    (SearchMode::Hybrid, "hybrid"),
];
const TYPES: [&str; 3] = ["keyword", "paraphrase", "chinese"];

struct Args {
    bulk: usize,
    skip_large: bool,
    misses: bool,
    work: Option<PathBuf>,
    reuse: bool,
}

fn args() -> Args {
    let mut a = Args {
        bulk: BULK_FULL,
        skip_large: false,
        misses: false,
        work: None,
        reuse: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--quick" => a.bulk = BULK_QUICK,
            "--bulk" => a.bulk = it.next().and_then(|n| n.parse().ok()).unwrap_or(a.bulk),
            "--skip-large" => a.skip_large = true,
            "--misses" => a.misses = true,
            "--work" => a.work = it.next().map(PathBuf::from),
            "--reuse" => a.reuse = true,
            "--help" | "-h" => {
                println!(
                    "memory_bench [--quick] [--bulk N] [--skip-large] [--misses] [--work DIR [--reuse]]\n\
                     --quick       a smaller large store ({BULK_QUICK} bulk notes instead of {BULK_FULL})\n\
                     --bulk N      bulk notes in the large store\n\
                     --skip-large  quality and ingestion only, no latency store\n\
                     --misses      list the questions each mode misses in its top 5\n\
                     --work DIR    generate the corpora and stores under DIR and keep them\n\
                     --reuse       with --work: time queries on the large store an earlier run left there"
                );
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other}; see --help");
                std::process::exit(2);
            }
        }
    }
    a
}

/// `$FLURRY_MODELS/all-MiniLM-L6-v2`, `FLURRY_MODELS` defaulting to `~/.flurry/models`.
fn model_dir() -> PathBuf {
    let models = match std::env::var_os("FLURRY_MODELS") {
        Some(m) if !m.is_empty() => PathBuf::from(m),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".flurry/models"),
    };
    models.join(flurry_embed::MODEL_DIR_NAME)
}

/// Runs the generator into `out` (with `bulk` extra notes).
fn generate(out: &Path, bulk: usize) -> BoxResult<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/gen-memory-eval.py");
    let status = Command::new("python3")
        .arg(&script)
        .arg(out)
        .args(["--bulk", &bulk.to_string()])
        .status()
        .map_err(|e| {
            format!(
                "cannot run python3 {}: {e} (install Python 3)",
                script.display()
            )
        })?;
    if !status.success() {
        return Err(format!("{} failed: {status}", script.display()).into());
    }
    Ok(())
}

/// Peak resident set size of this process, MiB.
#[allow(unsafe_code)]
fn peak_rss_mib() -> f64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is valid for writes of a `rusage`; getrusage fills it on success.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) } != 0 {
        return 0.0;
    }
    // SAFETY: zero-initialised, and filled by the successful call above.
    let ru = unsafe { ru.assume_init() };
    // Linux reports kilobytes (KiB).
    ru.ru_maxrss as f64 / 1024.0
}

/// The 1-minute load average (Linux), to tell a quiet machine from a busy one.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Question {
    q: String,
    /// The document's path as the store records it.
    path: String,
    answer: String,
    kind: String,
}

fn questions(dir: &Path, corpus: &Path) -> BoxResult<Vec<Question>> {
    let text = std::fs::read_to_string(dir.join("questions.jsonl"))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let field = |k: &str| -> BoxResult<String> {
            Ok(v[k]
                .as_str()
                .ok_or_else(|| format!("question without {k}: {line}"))?
                .to_string())
        };
        let doc = field("doc")?;
        let (file, message) = match doc.split_once('#') {
            Some((f, n)) => (f, Some(n)),
            None => (doc.as_str(), None),
        };
        let mut path = std::fs::canonicalize(corpus.join(file))?
            .to_string_lossy()
            .into_owned();
        if let Some(n) = message {
            path = format!("{path}#{n}");
        }
        out.push(Question {
            q: field("q")?,
            path,
            answer: norm(&field("answer")?),
            kind: field("type")?,
        });
    }
    Ok(out)
}

/// Recall@5 and MRR@10 of a set of ranks (1-based, `None` when not in the top 10).
fn scores(ranks: &[Option<usize>]) -> (f64, f64) {
    let n = ranks.len().max(1) as f64;
    let recall = ranks.iter().filter(|r| r.is_some_and(|r| r <= 5)).count() as f64 / n;
    let mrr = ranks
        .iter()
        .map(|r| r.map_or(0.0, |r| 1.0 / r as f64))
        .sum::<f64>()
        / n;
    (recall, mrr)
}

/// A new, empty store at `path` (an earlier one left by `--work` is removed).
fn fresh_store(path: &Path) -> BoxResult<MemoryStore> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    Ok(MemoryStore::open(path, &MemoryKey::from_bytes([7; 32]))?)
}

fn ingest_timed(store: &MemoryStore, e: &Embedder, root: &Path) -> BoxResult<(Summary, Duration)> {
    let start = Instant::now();
    // The corpus is generated text, so it is read in this process: the benchmark measures
    // chunking, embedding and storing, not the extraction child (a few ms per file).
    let s = ingest_with(
        store,
        e,
        &[root.to_path_buf()],
        false,
        &Extractor::in_process(),
        &mut |_, _, _| {},
    )?;
    Ok((s, start.elapsed()))
}

fn print_ingest(label: &str, s: &Summary, took: Duration, files: usize) {
    let secs = took.as_secs_f64();
    println!(
        "{label}: {files} files -> {} documents, {} chunks, {:.2} MB in {secs:.1} s: {:.1} documents/s, {:.3} MB/s, {:.1} chunks/s",
        s.added,
        s.chunks,
        s.bytes as f64 / 1e6,
        s.added as f64 / secs,
        s.bytes as f64 / 1e6 / secs,
        s.chunks as f64 / secs,
    );
    if !s.failed.is_empty() {
        let mut by_ext: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for (path, reason) in &s.failed {
            let ext = Path::new(path)
                .extension()
                .map(|x| x.to_string_lossy().into_owned())
                .unwrap_or_default();
            let entry = by_ext.entry(ext).or_insert((0, reason.clone()));
            entry.0 += 1;
        }
        println!("  failed: {} files", s.failed.len());
        for (ext, (n, reason)) in by_ext {
            println!("    .{ext}: {n} ({reason})");
        }
    }
}

/// Nearest-rank percentile of sorted durations, in ms.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

fn main() -> BoxResult<()> {
    let a = args();
    let tmp = tempfile::tempdir()?;
    let work = a.work.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&work)?;

    let t = Instant::now();
    let e = Embedder::load(&model_dir())
        .map_err(|err| format!("{err} (run scripts/fetch-models.sh to install the model)"))?;
    println!(
        "model: {} loaded in {:.0} ms; embedding threads: {} (rayon default) on {} CPUs; load average {}",
        flurry_embed::MODEL_DIR_NAME,
        t.elapsed().as_secs_f64() * 1e3,
        rayon::current_num_threads(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average()
    );

    // (a) The evaluation corpus, ingested into a fresh store.
    let eval = work.join("eval");
    generate(&eval, 0)?;
    let corpus = std::fs::canonicalize(eval.join("corpus"))?;
    let files = flurry_memory::walk(std::slice::from_ref(&corpus)).len();
    let store = fresh_store(&work.join("eval.db"))?;
    let (s, took) = ingest_timed(&store, &e, &corpus)?;
    print_ingest("ingest (evaluation corpus)", &s, took, files);
    let eval_ingest = (
        s.added as f64 / took.as_secs_f64(),
        s.bytes as f64 / 1e6 / took.as_secs_f64(),
    );
    let (docs, chunks, _) = store.counts()?;

    // (b) Quality per mode, overall and per question type.
    let qs = questions(&eval, &corpus)?;
    let mut ranks: Vec<[Option<usize>; 3]> = Vec::with_capacity(qs.len());
    for q in &qs {
        let v = e.embed_one(&q.q)?;
        let mut r = [None; 3];
        for (m, (mode, _)) in MODES.iter().enumerate() {
            let hits = store.search(&q.q, Some(&v), 10, *mode, &Filters::default())?;
            r[m] = hits
                .iter()
                .position(|h| h.path == q.path && norm(&h.text).contains(&q.answer))
                .map(|i| i + 1);
        }
        ranks.push(r);
    }
    println!(
        "\nquality: {} questions over {docs} documents / {chunks} chunks; recall@5 and MRR@10\n",
        qs.len()
    );
    let mut groups: Vec<(String, Vec<usize>)> = vec![("all".into(), (0..qs.len()).collect())];
    for t in TYPES {
        groups.push((
            t.into(),
            (0..qs.len()).filter(|&i| qs[i].kind == t).collect(),
        ));
    }
    print!("| mode |");
    for (g, idx) in &groups {
        print!(" {g} ({}) R@5 | MRR |", idx.len());
    }
    println!();
    println!("|---|{}", "---:|---:|".repeat(groups.len()));
    let mut overall = [(0.0, 0.0); 3];
    for (m, (_, name)) in MODES.iter().enumerate() {
        print!("| {name} |");
        for (gi, (_, idx)) in groups.iter().enumerate() {
            let r: Vec<Option<usize>> = idx.iter().map(|&i| ranks[i][m]).collect();
            let (recall, mrr) = scores(&r);
            if gi == 0 {
                overall[m] = (recall, mrr);
            }
            print!(" {recall:.3} | {mrr:.3} |");
        }
        println!();
    }
    if a.misses {
        for (m, (_, name)) in MODES.iter().enumerate() {
            println!("\n{name} misses (not in top 5; ranks bm25/vector/hybrid):");
            for (q, r) in qs.iter().zip(&ranks) {
                if r[m].is_none_or(|x| x > 5) {
                    let show = |x: Option<usize>| x.map_or("-".to_string(), |x| x.to_string());
                    println!(
                        "  [{}] {} ({}/{}/{})",
                        q.kind,
                        q.q,
                        show(r[0]),
                        show(r[1]),
                        show(r[2])
                    );
                }
            }
        }
    }
    let (bm25, vector, hybrid) = (overall[0], overall[1], overall[2]);
    let beats =
        hybrid.0 > bm25.0 && hybrid.0 > vector.0 && hybrid.1 > bm25.1 && hybrid.1 > vector.1;
    println!(
        "\nhybrid beats both on recall@5 and MRR: {}",
        if beats { "yes" } else { "NO" }
    );
    drop(store);
    println!("peak RSS so far: {:.0} MiB", peak_rss_mib());

    // (c) Latency over a large store.
    let mut latency = None;
    if !a.skip_large {
        let large = work.join("large");
        let db = work.join("large.db");
        let store = if a.reuse && a.work.is_some() && db.is_file() {
            println!("\nreusing the large store {}", db.display());
            MemoryStore::open(&db, &MemoryKey::from_bytes([7; 32]))?
        } else {
            generate(&large, a.bulk)?;
            let corpus = std::fs::canonicalize(large.join("corpus"))?;
            let files = flurry_memory::walk(std::slice::from_ref(&corpus)).len();
            let store = fresh_store(&db)?;
            println!("\ningesting the large corpus ({files} files)...");
            let (s, took) = ingest_timed(&store, &e, &corpus)?;
            print_ingest("ingest (large corpus)", &s, took, files);
            store
        };
        let (docs, chunks, _) = store.counts()?;
        let queries: Vec<String> = std::fs::read_to_string(large.join("latency-queries.txt"))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        let f = Filters::default();
        for q in queries.iter().take(5) {
            let v = e.embed_one(q)?;
            store.search(q, Some(&v), 5, SearchMode::Hybrid, &f)?;
        }
        // One pass per measurement, queries in the same order.
        let mut end_to_end = Vec::with_capacity(queries.len());
        let mut vectors = Vec::with_capacity(queries.len());
        for q in &queries {
            let t = Instant::now();
            let v = e.embed_one(q)?;
            store.search(q, Some(&v), 5, SearchMode::Hybrid, &f)?;
            end_to_end.push(t.elapsed());
            vectors.push(v);
        }
        let mut per_mode = Vec::new();
        for (mode, name) in MODES {
            let mut d = Vec::with_capacity(queries.len());
            for (q, v) in queries.iter().zip(&vectors) {
                let t = Instant::now();
                store.search(q, Some(v), 5, mode, &f)?;
                d.push(t.elapsed());
            }
            d.sort();
            per_mode.push((name, d));
        }
        end_to_end.sort();
        println!(
            "\nlatency: {} queries, k = 5, over {docs} documents / {chunks} chunks (load average {})\n",
            queries.len(),
            load_average()
        );
        println!("| measurement | p50 ms | p99 ms |\n|---|---:|---:|");
        println!(
            "| hybrid, query embedding + search | {:.1} | {:.1} |",
            percentile(&end_to_end, 0.5),
            percentile(&end_to_end, 0.99)
        );
        for (name, d) in &per_mode {
            println!(
                "| {name} search alone | {:.1} | {:.1} |",
                percentile(d, 0.5),
                percentile(d, 0.99)
            );
        }
        latency = Some((
            chunks,
            percentile(&end_to_end, 0.5),
            percentile(&end_to_end, 0.99),
            percentile(&per_mode[2].1, 0.5),
            percentile(&per_mode[2].1, 0.99),
        ));
    }

    // (d) Peak RSS of the whole run.
    let rss = peak_rss_mib();
    println!("\npeak RSS: {rss:.0} MiB");
    let lat = latency.map_or(String::new(), |(c, p50, p99, s50, s99)| {
        format!(
            " latency_chunks={c} hybrid_p50_ms={p50:.1} hybrid_p99_ms={p99:.1} search_p50_ms={s50:.1} search_p99_ms={s99:.1}"
        )
    });
    println!(
        "memory_bench documents={docs} questions={} chunks={chunks} recall5_bm25={:.3} recall5_vector={:.3} recall5_hybrid={:.3} mrr_bm25={:.3} mrr_vector={:.3} mrr_hybrid={:.3} ingest_docs_s={:.1} ingest_mb_s={:.3}{lat} peak_rss_mib={rss:.0}",
        qs.len(),
        bm25.0,
        vector.0,
        hybrid.0,
        bm25.1,
        vector.1,
        hybrid.1,
        eval_ingest.0,
        eval_ingest.1,
    );
    if !beats {
        eprintln!(
            "memory_bench: hybrid search does not beat both BM25 and vectors (recall@5 {:.3} vs {:.3}/{:.3}, MRR {:.3} vs {:.3}/{:.3}); the issue requires it. Run with --misses to see the questions.",
            hybrid.0, bm25.0, vector.0, hybrid.1, bm25.1, vector.1
        );
        std::process::exit(1);
    }
    Ok(())
}
