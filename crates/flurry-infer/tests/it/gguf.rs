//! Malformed model files give one clear error naming the file, never a panic.

use std::io::Write;

use flurry_infer::GgmlType;
use flurry_infer::gguf::{Value, parse_bytes, write_gguf};
use flurry_infer::model::Model;
use proptest::prelude::*;

use crate::common::{SMOLLM2, model_path};

fn load_err(bytes: &[u8]) -> String {
    let mut f = tempfile::Builder::new().suffix(".gguf").tempfile().unwrap();
    f.write_all(bytes).unwrap();
    let err = Model::load(f.path()).unwrap_err().to_string();
    assert!(
        err.contains(&f.path().display().to_string()),
        "error does not name the file: {err}"
    );
    err
}

#[test]
fn truncated_real_model_is_reported() {
    let full = std::fs::read(model_path(SMOLLM2)).unwrap();
    for len in [
        0,
        3,
        7,
        20,
        1000,
        500_000,
        2_000_000,
        full.len() / 2,
        full.len() - 1,
    ] {
        let err = load_err(&full[..len]);
        assert!(
            err.contains("truncated") || err.contains("not a GGUF file"),
            "len {len}: {err}"
        );
    }
}

#[test]
fn corrupted_headers_are_reported() {
    let full = std::fs::read(model_path(SMOLLM2)).unwrap();
    let head = &full[..4 << 20];
    let mut bad = head.to_vec();
    bad[0..4].copy_from_slice(b"GGML");
    assert!(load_err(&bad).contains("not a GGUF file"));
    let mut bad = head.to_vec();
    bad[4..8].copy_from_slice(&7u32.to_le_bytes());
    assert!(load_err(&bad).contains("unsupported GGUF version 7"));
    let mut bad = head.to_vec();
    bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(load_err(&bad).contains("tensor count"));
}

fn tiny_llama(embd: u64, ffn_dims: Vec<u64>, arch: &str) -> Vec<u8> {
    let f32s = |n: u64| vec![0u8; n as usize * 4];
    let u = |v: u32| Value::U32(v);
    let meta = vec![
        (
            "general.architecture".to_string(),
            Value::String(arch.into()),
        ),
        (format!("{arch}.block_count"), u(1)),
        (format!("{arch}.context_length"), u(64)),
        (format!("{arch}.embedding_length"), u(embd as u32)),
        (format!("{arch}.feed_forward_length"), u(64)),
        (format!("{arch}.attention.head_count"), u(1)),
        ("tokenizer.ggml.model".into(), Value::String("llama".into())),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(vec![
                Value::String("<unk>".into()),
                Value::String("a".into()),
            ]),
        ),
        (
            "tokenizer.ggml.scores".into(),
            Value::Array(vec![Value::F32(0.0), Value::F32(0.0)]),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(vec![Value::I32(2), Value::I32(1)]),
        ),
    ];
    let m = |name: &str, dims: Vec<u64>| {
        let n: u64 = dims.iter().product();
        (name.to_string(), dims, GgmlType::F32, f32s(n))
    };
    let tensors = vec![
        m("token_embd.weight", vec![embd, 2]),
        m("output_norm.weight", vec![embd]),
        m("blk.0.attn_norm.weight", vec![embd]),
        m("blk.0.attn_q.weight", vec![embd, embd]),
        m("blk.0.attn_k.weight", vec![embd, embd]),
        m("blk.0.attn_v.weight", vec![embd, embd]),
        m("blk.0.attn_output.weight", vec![embd, embd]),
        m("blk.0.ffn_norm.weight", vec![embd]),
        m("blk.0.ffn_gate.weight", ffn_dims.clone()),
        m("blk.0.ffn_up.weight", vec![embd, 64]),
        m("blk.0.ffn_down.weight", vec![64, embd]),
    ];
    let mut out = Vec::new();
    write_gguf(&mut out, &meta, &tensors).unwrap();
    out
}

#[test]
fn shapes_are_checked_against_the_architecture() {
    let mut f = tempfile::Builder::new().suffix(".gguf").tempfile().unwrap();
    f.write_all(&tiny_llama(32, vec![32, 64], "llama")).unwrap();
    let m = Model::load(f.path()).expect("a well-formed tiny model loads");
    assert_eq!(m.hparams().n_embd, 32);
    let err = load_err(&tiny_llama(32, vec![32, 65], "llama"));
    assert!(
        err.contains("blk.0.ffn_gate.weight has shape [32, 65], expected [32, 64]"),
        "{err}"
    );
    let err = load_err(&tiny_llama(32, vec![32, 64], "mamba"));
    assert!(err.contains("unsupported architecture \"mamba\""), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Random damage to a valid file: flipped bytes, truncation, and garbage never panic.
    #[test]
    fn parser_never_panics(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
        garbage in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut b = tiny_llama(32, vec![32, 64], "llama");
        for (pos, val) in flips {
            let i = pos % b.len();
            b[i] = val;
        }
        b.truncate(cut % (b.len() + 1));
        let _ = parse_bytes(&b);
        let _ = parse_bytes(&garbage);
    }
}
