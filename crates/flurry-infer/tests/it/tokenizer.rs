//! Tokenizer tests: token-for-token equality with llama.cpp on the fixture corpus of the
//! real models, and tiny hand-built vocabularies (no models needed) for the algorithms
//! and for metadata validation.

use std::path::{Path, PathBuf};
use std::time::Instant;

use flurry_infer::gguf::{Gguf, Value, write_gguf};
use flurry_infer::tokenizer::{StreamDecoder, Tokenizer};
use serde::Deserialize;

// ---------------------------------------------------------------------------------
// Fixtures generated with llama.cpp (scripts/gen-fixtures.py)
// ---------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Fixture {
    model_file: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    add_special: bool,
    parse_special: bool,
    ids: Vec<u32>,
    decoded: String,
}

fn models_dir() -> PathBuf {
    match std::env::var_os("FLURRY_MODELS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is not set"))
            .join(".flurry")
            .join("models"),
    }
}

fn fixture(name: &str) -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/tokenizer")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad fixture {}: {e}", path.display()))
}

fn load_model_tokenizer(model_file: &str) -> Tokenizer {
    let path = models_dir().join(model_file);
    assert!(
        path.is_file(),
        "model {} is missing: run `make models` to fetch the test models (or set FLURRY_MODELS)",
        path.display()
    );
    let gguf = Gguf::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    let tok = Tokenizer::from_gguf(&gguf).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{model_file}: tokenizer built in {:?}", start.elapsed());
    tok
}

fn check_fixture(name: &str) {
    let fx = fixture(name);
    let tok = load_model_tokenizer(&fx.model_file);
    let mut failures = Vec::new();
    for (i, c) in fx.cases.iter().enumerate() {
        let what = format!(
            "case #{i} text={:?} add_special={} parse_special={}",
            c.text, c.add_special, c.parse_special
        );
        let ids = tok.encode(&c.text, c.add_special, c.parse_special);
        if ids != c.ids {
            failures.push(format!(
                "{what}\n  expected ids {:?}\n  actual ids   {ids:?}",
                c.ids
            ));
        }
        let decoded = tok.decode(&c.ids, false);
        if decoded != c.decoded {
            failures.push(format!(
                "{what}\n  expected decode {:?}\n  actual decode   {decoded:?}",
                c.decoded
            ));
        }
        // Streaming gives the same text as decoding the concatenated bytes.
        let mut stream = StreamDecoder::new();
        let mut streamed: String = c.ids.iter().map(|&id| stream.push(&tok, id)).collect();
        streamed.push_str(&stream.finish());
        let bytes: Vec<u8> = c
            .ids
            .iter()
            .flat_map(|&id| tok.token_bytes(id, false))
            .collect();
        if streamed != String::from_utf8_lossy(&bytes) {
            failures.push(format!(
                "{what}\n  streamed {streamed:?} differs from the bytes"
            ));
        }
    }
    eprintln!(
        "{name}: {}/{} cases pass",
        fx.cases.len() - failures.len().min(fx.cases.len()),
        fx.cases.len()
    );
    assert!(
        failures.is_empty(),
        "{name}: {} mismatches\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_matches_llama_cpp() {
    check_fixture("smollm2");
}

#[test]
fn gemma3_matches_llama_cpp() {
    check_fixture("gemma3");
}

/// A long prompt (thousands of tokens) encodes quickly and decodes back to itself.
#[test]
fn long_prompts_roundtrip() {
    for name in ["smollm2", "gemma3"] {
        let fx = fixture(name);
        let tok = load_model_tokenizer(&fx.model_file);
        let corpus: String = fx
            .cases
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let text = corpus.repeat(8);
        let start = Instant::now();
        let ids = tok.encode(&text, false, false);
        let took = start.elapsed();
        eprintln!(
            "{name}: {} bytes -> {} tokens in {took:?}",
            text.len(),
            ids.len()
        );
        assert!(ids.len() > 2000);
        let mut bytes = Vec::new();
        for &id in &ids {
            bytes.extend(tok.token_bytes(id, false));
        }
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            text,
            "{name}: encode/decode is not lossless"
        );
    }
}

#[test]
fn model_special_tokens() {
    let tok = load_model_tokenizer("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(tok.encode("Hello world", false, false), [19556, 905]);
    assert!(!tok.add_bos());
    let im_end = tok.token_id("<|im_end|>").unwrap();
    assert!(tok.is_eog(im_end));
    assert!(tok.is_eog(tok.token_id("<|endoftext|>").unwrap()));
    assert!(!tok.is_eog(tok.token_id("<|im_start|>").unwrap()));
    assert_eq!(tok.token_bytes(im_end, false), b"");
    assert_eq!(tok.token_bytes(im_end, true), b"<|im_end|>");
    assert_eq!(tok.vocab_size(), 49152);

    let tok = load_model_tokenizer("gemma-3-270m-q4_k_m.gguf");
    assert!(tok.add_bos());
    assert_eq!(tok.bos(), Some(2));
    assert_eq!(tok.eos(), Some(1));
    assert!(tok.is_eog(tok.token_id("<end_of_turn>").unwrap()));
    assert!(!tok.is_eog(tok.token_id("<start_of_turn>").unwrap()));
    assert_eq!(tok.vocab_size(), 262144);
}

// ---------------------------------------------------------------------------------
// Tiny hand-built vocabularies
// ---------------------------------------------------------------------------------

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn strs(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|t| s(t)).collect())
}

fn write_and_open(meta: Vec<(&str, Value)>) -> (tempfile::TempDir, Gguf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vocab.gguf");
    let meta: Vec<(String, Value)> = meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let mut file = std::fs::File::create(&path).unwrap();
    write_gguf(&mut file, &meta, &[]).unwrap();
    drop(file);
    let g = Gguf::open(&path).unwrap();
    (dir, g)
}

fn build(meta: Vec<(&str, Value)>) -> flurry_infer::Result<Tokenizer> {
    let (_dir, g) = write_and_open(meta);
    Tokenizer::from_gguf(&g)
}

fn tokenizer_error(meta: Vec<(&str, Value)>) -> String {
    match build(meta) {
        Ok(_) => panic!("malformed metadata was accepted"),
        Err(flurry_infer::Error::Tokenizer(m)) => m,
        Err(other) => panic!("expected a tokenizer error, got {other}"),
    }
}

/// BPE: `<|im_end|>`, the GPT-2 characters of "a b c <space>", and three merges.
fn bpe_meta() -> Vec<(&'static str, Value)> {
    vec![
        ("tokenizer.ggml.model", s("gpt2")),
        ("tokenizer.ggml.pre", s("gpt-2")),
        (
            "tokenizer.ggml.tokens",
            strs(&["<|im_end|>", "a", "b", "c", "Ġ", "ab", "abc", "Ġa"]),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(
                [3, 1, 1, 1, 1, 1, 1, 1]
                    .into_iter()
                    .map(Value::I32)
                    .collect(),
            ),
        ),
        ("tokenizer.ggml.merges", strs(&["a b", "ab c", "Ġ a"])),
        ("tokenizer.ggml.eos_token_id", Value::U32(0)),
    ]
}

#[test]
fn tiny_bpe_merges_by_rank() {
    let tok = build(bpe_meta()).unwrap();
    // "abc" merges fully; " abc": "a b" (rank 0) wins over "Ġ a" (rank 2), then "ab c".
    assert_eq!(tok.encode("abc abc", false, false), [6, 4, 6]);
    assert_eq!(tok.encode(" a", false, false), [7]);
    assert_eq!(
        tok.encode("ab", true, false),
        [5],
        "gpt2 adds no BOS by default"
    );
    assert_eq!(tok.decode(&[6, 4, 6], false), "abc abc");
    assert_eq!(tok.encode("ab<|im_end|>", false, true), [5, 0]);
    assert!(tok.is_eog(0));
    assert_eq!(tok.decode(&[5, 0], false), "ab");
    assert_eq!(tok.decode(&[5, 0], true), "ab<|im_end|>");
    assert_eq!(tok.token_text(5), Some("ab"));
    assert_eq!(tok.token_id("Ġa"), Some(7));
    assert_eq!(
        tok.token_bytes(99, true),
        b"",
        "out-of-range ids render as nothing"
    );
    assert_eq!(tok.encode("", true, true), Vec::<u32>::new());
}

/// SPM: byte fallback, highest score first, BOS.
fn spm_meta() -> Vec<(&'static str, Value)> {
    let tokens = [
        "<unk>", "<s>", "</s>", "▁", "a", "b", "c", "ab", "bc", "▁a", "<0xC3>", "<0xA9>",
    ];
    let scores = [
        0.0, 0.0, 0.0, -1.0, -2.0, -2.0, -2.0, -5.0, -3.0, -4.0, 0.0, 0.0,
    ];
    let types = [2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 6, 6];
    vec![
        ("tokenizer.ggml.model", s("llama")),
        ("tokenizer.ggml.tokens", strs(&tokens)),
        (
            "tokenizer.ggml.scores",
            Value::Array(scores.into_iter().map(Value::F32).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ("tokenizer.ggml.unknown_token_id", Value::U32(0)),
        ("tokenizer.ggml.add_space_prefix", Value::Bool(false)),
    ]
}

#[test]
fn tiny_spm_scores_and_byte_fallback() {
    let tok = build(spm_meta()).unwrap();
    assert!(tok.add_bos());
    // "bc" (-3) beats "ab" (-5).
    assert_eq!(tok.encode("abc", false, false), [4, 8]);
    assert_eq!(tok.encode("ab a", true, false), [1, 7, 9]);
    // "é" is not a token: its UTF-8 bytes are.
    assert_eq!(tok.encode("é", false, false), [10, 11]);
    assert_eq!(tok.decode(&[1, 7, 9], false), "ab a");
    assert_eq!(tok.decode(&[10, 11], false), "é");
    assert_eq!(tok.decode(&[10], false), "\u{FFFD}");
    // Control tokens split the text only with parse_special.
    assert_eq!(tok.encode("a</s>", false, true), [4, 2]);
    assert!(tok.is_eog(2));
    assert_eq!(
        tok.decode(&[1, 9], false),
        "a",
        "one leading space is dropped after BOS"
    );

    let mut stream = StreamDecoder::new();
    assert_eq!(stream.push(&tok, 7), "ab");
    assert_eq!(stream.push(&tok, 10), "");
    assert_eq!(stream.push(&tok, 11), "é");
    assert_eq!(stream.push(&tok, 2), "", "control tokens render as nothing");
    assert_eq!(stream.push(&tok, 10), "");
    assert_eq!(stream.finish(), "\u{FFFD}");

    let mut stream = StreamDecoder::with_special(true);
    assert_eq!(stream.push(&tok, 2), "</s>");
}

#[test]
fn spm_space_prefix_follows_llama_cpp() {
    let mut meta = spm_meta();
    meta.retain(|(k, _)| *k != "tokenizer.ggml.add_space_prefix");
    let tok = build(meta).unwrap();
    assert_eq!(
        tok.encode("a", false, false),
        [9],
        "the space prefix is on by default"
    );
}

#[test]
fn malformed_metadata_is_a_clear_error() {
    let with = |key: &'static str, value: Value| {
        let mut m = bpe_meta();
        m.retain(|(k, _)| *k != key);
        m.push((key, value));
        m
    };
    let without = |key: &str| {
        let mut m = bpe_meta();
        m.retain(|(k, _)| *k != key);
        m
    };

    let e = tokenizer_error(with("tokenizer.ggml.merges", strs(&["a b", "a x"])));
    assert!(e.contains("merge #1") && e.contains("\"x\""), "{e}");
    let e = tokenizer_error(with("tokenizer.ggml.merges", strs(&["b c"])));
    assert!(e.contains("\"bc\""), "merged result must be a token: {e}");
    let e = tokenizer_error(with("tokenizer.ggml.merges", strs(&["abc"])));
    assert!(e.contains("not \"left right\""), "{e}");
    let e = tokenizer_error(without("tokenizer.ggml.merges"));
    assert!(e.contains("merges"), "{e}");
    let e = tokenizer_error(with("tokenizer.ggml.eos_token_id", Value::U32(8)));
    assert!(
        e.contains("eos_token_id = 8") && e.contains("8 tokens"),
        "{e}"
    );
    let e = tokenizer_error(with("tokenizer.ggml.bos_token_id", Value::U32(1000)));
    assert!(e.contains("bos_token_id"), "{e}");
    let e = tokenizer_error(with("tokenizer.ggml.add_bos_token", Value::Bool(true)));
    assert!(e.contains("add_bos_token"), "{e}");
    let e = tokenizer_error(with(
        "tokenizer.ggml.token_type",
        Value::Array(vec![Value::I32(1); 3]),
    ));
    assert!(e.contains("token_type has 3 entries"), "{e}");
    let e = tokenizer_error(with(
        "tokenizer.ggml.scores",
        Value::Array(vec![Value::F32(0.0); 9]),
    ));
    assert!(e.contains("scores has 9 entries"), "{e}");
    let e = tokenizer_error(with("tokenizer.ggml.tokens", strs(&["a", "b", "a"])));
    assert!(e.contains("twice"), "{e}");
    let e = tokenizer_error(with("tokenizer.ggml.model", s("bert")));
    assert!(e.contains("unsupported tokenizer model"), "{e}");
    let e = tokenizer_error(with("tokenizer.ggml.pre", s("no-such-pre")));
    assert!(e.contains("unsupported pre-tokenizer"), "{e}");

    let mut spm = spm_meta();
    spm.retain(|(k, _)| *k != "tokenizer.ggml.unknown_token_id");
    spm.push(("tokenizer.ggml.unknown_token_id", Value::U32(12)));
    let e = tokenizer_error(spm);
    assert!(e.contains("unknown_token_id = 12"), "{e}");

    // Wrong value types are reported by the GGUF reader, naming the key.
    let (_dir, g) = write_and_open(with("tokenizer.ggml.tokens", Value::U32(3)));
    let e = Tokenizer::from_gguf(&g).unwrap_err().to_string();
    assert!(e.contains("tokenizer.ggml.tokens"), "{e}");
    let (_dir, g) = write_and_open(without("tokenizer.ggml.model"));
    let e = Tokenizer::from_gguf(&g).unwrap_err().to_string();
    assert!(e.contains("tokenizer.ggml.model"), "{e}");
}

#[test]
fn tokenizer_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tokenizer>();
    assert_send_sync::<StreamDecoder>();
}
