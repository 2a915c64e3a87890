//! Zero false failures: 1,000 honest jobs across 1 and 2 threads, batched and alone,
//! greedy and sampled, prompts and outputs of one and several chunks, each checked by
//! a verifier that never saw it (and on another thread count than the provider's).

mod common;

use std::time::Instant;

use flurry_infer::sampler::SamplingParams;
use flurry_verify::check::{audit, check_signed, check_text};

use common::*;

const PROMPTS: &[&str] = &[
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers.",
    "Explain recursion to a child.",
    "Translate 'good morning' into Spanish.",
    "Why is the sky blue? Answer in one sentence.",
    "Name a famous painter and one of their works.",
    "Give me a short tip for writing clean code, and explain why it matters for teams that \
     maintain software over many years, with an example from a real project if you can.",
];

fn sampling(i: usize) -> SamplingParams {
    match i % 4 {
        0 => SamplingParams::greedy(),
        1 => SamplingParams {
            temperature: 0.7,
            top_p: 0.9,
            ..SamplingParams::default()
        },
        2 => SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.1,
            ..SamplingParams::default()
        },
        _ => SamplingParams {
            temperature: 0.7,
            top_p: 0.95,
            repeat_penalty: 1.05,
            ..SamplingParams::default()
        },
    }
}

fn run_jobs(file: &str, n: usize, batch: usize) -> usize {
    let m = load(&model_path(file));
    let parties = Parties::new();
    let engines = [engine(&m, 1), engine(&m, 2)];
    let mut checked = 0;
    let mut i = 0;
    let t0 = Instant::now();
    while checked < n {
        let eng = &engines[(i / 2) % 2];
        // Alone (one job at a time) or batched (several in one engine step).
        let k = if (i / 4) % 2 == 0 { 1 } else { batch }.min(n - checked);
        let asks: Vec<Ask> = (0..k)
            .map(|j| {
                let s = i + j;
                let text = format!("{} ({s})", PROMPTS[s % PROMPTS.len()]);
                let max = [2, 5, 9, 36][s % 4];
                // Every third job through the chat template (a prompt of two chunks or
                // more), the others raw text (one chunk).
                let prompt = if s % 3 == 0 {
                    chat_tokens(&m, &text)
                } else {
                    m.model.tokenizer().encode(&text, true, false)
                };
                let mut ask = Ask::new(prompt, sampling(s), max);
                // Every fifth job with stop strings (common ones, so some jobs end on
                // them).
                if s % 5 == 0 {
                    ask.stop = vec![" the".into(), ".".into(), "\n".into()];
                }
                ask
            })
            .collect();
        let rxs: Vec<_> = asks
            .iter()
            .map(|a| {
                let (_, _, sp) = a.request(&parties, m.id);
                submit(eng, a, sp)
            })
            .collect();
        for (a, rx) in asks.iter().zip(rxs) {
            let (c, reason, text) = collect_text(rx);
            let b = bundle(&parties, a, m.id, c, reason);
            // The text streamed is what the committed tokens give.
            if let Err(f) = check_text(&b, &m.model, &text) {
                panic!("{file} job {checked}: {f}");
            }
            // A verifier that never saw the job: from the JSON file's bytes.
            let json = serde_json::to_vec(&b).unwrap();
            let b = flurry_verify::bundle::Bundle::from_json(&json).unwrap();
            let threads = 1 + (checked % 2);
            if let Err(f) = check_signed(&b).and_then(|()| audit(&b, &m.model, m.id, threads)) {
                let path =
                    std::env::temp_dir().join(format!("flurry-false-failure-{checked}.json"));
                b.write(&path).unwrap();
                panic!(
                    "{file} job {checked}: {f} (bundle kept in {})",
                    path.display()
                );
            }
            checked += 1;
        }
        i += k;
    }
    eprintln!(
        "{file}: {checked} honest jobs held in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    checked
}

#[test]
fn a_thousand_honest_jobs_all_hold() {
    let n = run_jobs(GEMMA3, 40, 4) + run_jobs(SMOLLM2, 960, 6);
    assert_eq!(n, 1000);
}
