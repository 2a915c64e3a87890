//! Perplexity against llama.cpp's `llama-perplexity` on the same GGUF and text
//! (fixtures from `scripts/gen-perplexity-fixtures.py`): within 1%, over the same
//! windows, and the same figure whatever the thread count.

use flurry_infer::Error;
use flurry_infer::model::Model;
use flurry_infer::perplexity::perplexity;
use serde::Deserialize;

use crate::common::{GEMMA3, SMOLLM2, fixture, model_path, pool};

#[derive(Deserialize)]
struct Reference {
    ctx: usize,
    chunks: usize,
    running: Vec<f64>,
    ppl: f64,
}

fn check(file: &str) {
    let stem = file.trim_end_matches(".gguf");
    let r: Reference = serde_json::from_str(
        &std::fs::read_to_string(fixture(&format!("perplexity/{stem}.json"))).unwrap(),
    )
    .unwrap();
    let text = std::fs::read_to_string(fixture("perplexity/text.txt")).unwrap();
    let model = Model::load(&model_path(file)).unwrap();
    let tokens = model.tokenizer().encode(&text, true, false);
    let mut seen = Vec::new();
    let p = perplexity(
        &model,
        &tokens,
        r.ctx,
        None,
        &pool(2),
        |done, total, ppl| {
            seen.push((done, total, ppl));
        },
    )
    .unwrap();
    assert_eq!(
        p.chunks, r.chunks,
        "{file}: llama.cpp evaluated {} windows",
        r.chunks
    );
    assert_eq!(p.scored, r.chunks * (r.ctx - 1 - r.ctx / 2));
    assert_eq!(seen.len(), p.chunks);
    assert_eq!(seen.last().unwrap().2, p.ppl);
    let rel = (p.ppl - r.ppl).abs() / r.ppl;
    assert!(
        rel <= 0.01,
        "{file}: flurry ppl {:.4} vs llama.cpp {:.4} ({:.2}% apart; running {:?} vs {:?})",
        p.ppl,
        r.ppl,
        rel * 100.0,
        p.running,
        r.running
    );
    // Each window's running figure tracks llama.cpp's too (not only the mean).
    for (i, (a, b)) in p.running.iter().zip(&r.running).enumerate() {
        assert!(
            (a - b).abs() / b <= 0.02,
            "{file}: window {} {a} vs {b}",
            i + 1
        );
    }
    // Bit-identical with one thread: the engine's logits do not depend on threads.
    let one = perplexity(&model, &tokens, r.ctx, Some(2), &pool(1), |_, _, _| {}).unwrap();
    let two = perplexity(&model, &tokens, r.ctx, Some(2), &pool(2), |_, _, _| {}).unwrap();
    assert_eq!(one.ppl.to_bits(), two.ppl.to_bits());
    assert_eq!(one.running[0].to_bits(), p.running[0].to_bits());
}

#[test]
fn smollm2_perplexity_matches_llama_cpp() {
    check(SMOLLM2);
}

#[test]
fn gemma3_perplexity_matches_llama_cpp() {
    check(GEMMA3);
}

#[test]
fn perplexity_refuses_texts_and_windows_it_cannot_score() {
    let model = Model::load(&model_path(SMOLLM2)).unwrap();
    let tokens = model.tokenizer().encode("A short text.", true, false);
    let short = perplexity(&model, &tokens, 64, None, &pool(1), |_, _, _| {}).unwrap_err();
    assert!(
        matches!(&short, Error::InvalidRequest(m) if m.contains("needs at least 128")),
        "{short}"
    );
    let long: Vec<u32> = (0..64).map(|i| i % 100).collect();
    for ctx in [0, 3, 1 << 30] {
        let e = perplexity(&model, &long, ctx, None, &pool(1), |_, _, _| {}).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidRequest(m) if m.contains("not usable")),
            "{ctx}: {e}"
        );
    }
    let e = perplexity(&model, &long, 8, Some(0), &pool(1), |_, _, _| {}).unwrap_err();
    assert!(matches!(&e, Error::InvalidRequest(_)), "{e}");
}
