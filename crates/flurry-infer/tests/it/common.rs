//! Shared helpers: model paths and fixtures.

use std::path::PathBuf;

/// Path of a model in the store; fails the test (never skips) when it is missing.
pub(crate) fn model_path(file: &str) -> PathBuf {
    let dir = std::env::var_os("FLURRY_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".flurry/models"));
    let p = dir.join(file);
    assert!(
        p.is_file(),
        "model {} not found: run `make models` first",
        p.display()
    );
    p
}

/// Path of a committed fixture under `tests/fixtures/`.
pub(crate) fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(rel)
}

pub(crate) const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub(crate) const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

pub(crate) fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}
