//! all-MiniLM-L6-v2 against the reference of the real sentence-transformers library
//! (`tests/fixtures/embeddings/minilm.json`, made by `scripts/gen-embed-fixture.py`).
//! Needs the model in `$FLURRY_MODELS/all-MiniLM-L6-v2` (`scripts/fetch-models.sh`).

use std::path::PathBuf;
use std::sync::OnceLock;

use flurry_embed::Embedder;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    max_seq_length: usize,
    texts: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    text: String,
    token_ids: Vec<u32>,
    embedding: Vec<f32>,
}

/// `$FLURRY_MODELS/all-MiniLM-L6-v2`, `FLURRY_MODELS` defaulting to `~/.flurry/models`
/// (as in `scripts/fetch-models.sh`).
fn default_model_dir() -> Option<std::path::PathBuf> {
    let models = match std::env::var_os("FLURRY_MODELS") {
        Some(m) if !m.is_empty() => std::path::PathBuf::from(m),
        _ => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".flurry/models"),
    };
    Some(models.join(flurry_embed::MODEL_DIR_NAME))
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/embeddings/minilm.json");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&bytes).unwrap()
    })
}

fn embedder() -> &'static Embedder {
    static E: OnceLock<Embedder> = OnceLock::new();
    E.get_or_init(|| {
        let dir = default_model_dir().expect("HOME or FLURRY_MODELS is set");
        if !dir.join("model.safetensors").is_file() || !dir.join("tokenizer.json").is_file() {
            panic!(
                "the embedding model is missing from {}: run scripts/fetch-models.sh",
                dir.display()
            );
        }
        Embedder::load(&dir).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn fixture_covers_the_cases() {
    let f = fixture();
    assert_eq!(f.max_seq_length, 256);
    assert!(f.texts.len() >= 16);
    assert!(
        f.texts.iter().any(|c| c.token_ids.len() == 256),
        "no truncated text"
    );
    assert!(f.texts.iter().any(|c| c.text.is_empty()), "no empty text");
}

#[test]
fn token_ids_match_the_reference() {
    let e = embedder();
    assert_eq!(e.max_tokens(), fixture().max_seq_length);
    let mut failures = Vec::new();
    for c in &fixture().texts {
        let got = e.tokenize(&c.text);
        if got != c.token_ids {
            failures.push(format!("{}: got {got:?}\n  want {:?}", c.name, c.token_ids));
        }
    }
    assert!(
        failures.is_empty(),
        "token ids differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn embeddings_match_the_reference() {
    let e = embedder();
    assert_eq!(e.dim(), 384);
    let cases = &fixture().texts;
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let got = e.embed(&texts).unwrap();
    assert_eq!(got.len(), cases.len());
    let mut min = f64::INFINITY;
    let mut report = Vec::new();
    for (c, v) in cases.iter().zip(&got) {
        assert_eq!(v.len(), 384, "{}", c.name);
        let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{}: norm {norm}", c.name);
        let cos = cosine(v, &c.embedding);
        report.push(format!("{}: {cos:.9}", c.name));
        min = min.min(cos);
    }
    eprintln!("cosine vs sentence-transformers: {}", report.join(", "));
    eprintln!("minimum cosine: {min:.9} (1 - min = {:.2e})", 1.0 - min);
    assert!(
        min >= 0.999,
        "minimum cosine {min} < 0.999: {}",
        report.join(", ")
    );
}

#[test]
fn batch_equals_one_at_a_time() {
    let e = embedder();
    let cases = &fixture().texts;
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let batch = e.embed(&texts).unwrap();
    let reversed: Vec<&str> = texts.iter().rev().copied().collect();
    let batch_rev = e.embed(&reversed).unwrap();
    for (i, t) in texts.iter().enumerate() {
        let one = e.embed_one(t).unwrap();
        assert_eq!(
            one, batch[i],
            "{}: batch differs from one at a time",
            cases[i].name
        );
        assert_eq!(
            one,
            batch_rev[texts.len() - 1 - i],
            "{}: batch order changes the vector",
            cases[i].name
        );
    }
}

#[test]
fn large_batches_are_split_without_changing_vectors() {
    let e = embedder();
    let long = fixture()
        .texts
        .iter()
        .find(|c| c.token_ids.len() == 256)
        .unwrap();
    let short = "A man is eating food.";
    // 20 x 256 tokens: more than one internal group of rows.
    let mut texts = vec![long.text.as_str(); 20];
    texts.insert(7, short);
    let got = e.embed(&texts).unwrap();
    assert_eq!(got.len(), 21);
    let one_long = e.embed_one(&long.text).unwrap();
    let one_short = e.embed_one(short).unwrap();
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v, if i == 7 { &one_short } else { &one_long }, "text {i}");
    }
}

#[test]
fn similar_texts_are_closer_than_unrelated_ones() {
    let e = embedder();
    let v = e
        .embed(&[
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The stock market fell sharply today.",
        ])
        .unwrap();
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.2);
}

#[test]
fn truncates_long_texts() {
    let e = embedder();
    let long = "word ".repeat(1000);
    let ids = e.tokenize(&long);
    assert_eq!(ids.len(), 256);
    assert_eq!(ids[0], e.tokenizer().cls());
    assert_eq!(ids[255], e.tokenizer().sep());
    let v = e.embed(&[long.as_str()]).unwrap();
    assert_eq!(v[0].len(), 384);
}
