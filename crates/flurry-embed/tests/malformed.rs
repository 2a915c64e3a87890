//! Malformed model files give clear errors naming the problem, never a panic. The files
//! are built here, in a temporary directory, around a tiny but complete BERT.

use std::path::Path;

use flurry_embed::{Embedder, Error};
use proptest::prelude::*;
use serde_json::json;

const VOCAB: [&str; 8] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s", "!",
];
const HIDDEN: usize = 4;
const INTER: usize = 8;
const POSITIONS: usize = 16;

fn tokenizer_json() -> serde_json::Value {
    let vocab: serde_json::Map<String, serde_json::Value> = VOCAB
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), json!(i)))
        .collect();
    json!({
        "version": "1.0",
        "added_tokens": [
            {"id": 0, "content": "[PAD]", "special": true, "normalized": false},
            {"id": 1, "content": "[UNK]", "special": true, "normalized": false},
            {"id": 2, "content": "[CLS]", "special": true, "normalized": false},
            {"id": 3, "content": "[SEP]", "special": true, "normalized": false}
        ],
        "normalizer": {"type": "BertNormalizer", "clean_text": true,
            "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab}
    })
}

fn config_json() -> serde_json::Value {
    json!({
        "model_type": "bert", "hidden_act": "gelu", "hidden_size": HIDDEN,
        "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": INTER,
        "max_position_embeddings": POSITIONS, "type_vocab_size": 2,
        "vocab_size": VOCAB.len(), "layer_norm_eps": 1e-12
    })
}

/// `(name, shape)` of every tensor of the tiny model.
fn tensor_shapes() -> Vec<(String, Vec<usize>)> {
    let mut t = vec![
        (
            "embeddings.word_embeddings.weight".to_string(),
            vec![VOCAB.len(), HIDDEN],
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![POSITIONS, HIDDEN],
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            vec![2, HIDDEN],
        ),
        ("embeddings.LayerNorm.weight".into(), vec![HIDDEN]),
        ("embeddings.LayerNorm.bias".into(), vec![HIDDEN]),
    ];
    let p = "encoder.layer.0";
    for (name, out, inp) in [
        ("attention.self.query", HIDDEN, HIDDEN),
        ("attention.self.key", HIDDEN, HIDDEN),
        ("attention.self.value", HIDDEN, HIDDEN),
        ("attention.output.dense", HIDDEN, HIDDEN),
        ("intermediate.dense", INTER, HIDDEN),
        ("output.dense", HIDDEN, INTER),
    ] {
        t.push((format!("{p}.{name}.weight"), vec![out, inp]));
        t.push((format!("{p}.{name}.bias"), vec![out]));
    }
    for name in ["attention.output.LayerNorm", "output.LayerNorm"] {
        t.push((format!("{p}.{name}.weight"), vec![HIDDEN]));
        t.push((format!("{p}.{name}.bias"), vec![HIDDEN]));
    }
    t
}

/// A safetensors file of `(name, dtype, shape, data)` entries.
fn safetensors(tensors: &[(String, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let begin = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.clone(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, data.len()]}),
        );
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(&data);
    out
}

fn f32_bytes(n: usize, seed: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (((i * 7 + seed * 13) % 17) as f32 / 17.0 - 0.5).to_le_bytes())
        .collect()
}

fn valid_tensors() -> Vec<(String, &'static str, Vec<usize>, Vec<u8>)> {
    tensor_shapes()
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let n = shape.iter().product();
            (name, "F32", shape, f32_bytes(n, i))
        })
        .collect()
}

fn model_dir(st: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tokenizer.json"),
        tokenizer_json().to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("config.json"), config_json().to_string()).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), st).unwrap();
    dir
}

fn load_err(dir: &Path) -> String {
    match Embedder::load(dir) {
        Ok(_) => panic!("loaded a malformed model"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_tiny_model_loads_and_embeds() {
    let dir = model_dir(&safetensors(&valid_tensors()));
    let e = Embedder::load(dir.path()).unwrap();
    assert_eq!(e.dim(), HIDDEN);
    assert_eq!(e.tokenize("Hello worlds!"), vec![2, 4, 5, 6, 7, 3]);
    assert!(e.embed(&[]).unwrap().is_empty());
    let v = e.embed(&["Hello worlds!", "", "?"]).unwrap();
    for x in &v {
        let norm: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[test]
fn truncated_file() {
    let dir = model_dir(&[1, 2, 3]);
    let e = load_err(dir.path());
    assert!(e.contains("shorter than the 8-byte header length"), "{e}");

    let full = safetensors(&valid_tensors());
    let dir = model_dir(&full[..full.len() - 3]);
    let e = load_err(dir.path());
    assert!(e.contains("outside the") && e.contains("data bytes"), "{e}");
    assert!(e.contains("tensor `"), "names the tensor: {e}");
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let full = safetensors(&valid_tensors());
    let dir = model_dir(&full);
    let path = dir.path().join("model.safetensors");
    for len in (0..full.len()).step_by(7).chain([full.len() - 1]) {
        std::fs::write(&path, &full[..len]).unwrap();
        let err = Embedder::load(dir.path()).unwrap_err();
        assert!(
            matches!(err, Error::Safetensors { .. } | Error::Tensor { .. }),
            "length {len}: {err}"
        );
    }
}

#[test]
fn header_length_beyond_the_file() {
    let mut bytes = safetensors(&valid_tensors());
    bytes[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let dir = model_dir(&bytes);
    let e = load_err(dir.path());
    assert!(
        e.contains("header length 1099511627776 runs past the end"),
        "{e}"
    );

    let mut bytes = safetensors(&valid_tensors());
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = load_err(model_dir(&bytes).path());
    assert!(e.contains("runs past the end"), "{e}");
}

#[test]
fn header_not_json() {
    let mut bytes = 5u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{oops");
    let e = load_err(model_dir(&bytes).path());
    assert!(e.contains("header is not JSON"), "{e}");
}

#[test]
fn wrong_dtype() {
    let mut t = valid_tensors();
    let shape = t[0].2.clone();
    t[0] = (
        t[0].0.clone(),
        "F16",
        shape.clone(),
        vec![0; shape.iter().product::<usize>() * 2],
    );
    let e = load_err(model_dir(&safetensors(&t)).path());
    assert!(
        e.contains("tensor `embeddings.word_embeddings.weight`: dtype F16, expected F32"),
        "{e}"
    );

    let mut t = valid_tensors();
    t[3].1 = "Q9";
    let e = load_err(model_dir(&safetensors(&t)).path());
    assert!(
        e.contains("embeddings.LayerNorm.weight`: unknown dtype Q9"),
        "{e}"
    );
}

#[test]
fn wrong_shape() {
    let mut t = valid_tensors();
    let name = "encoder.layer.0.intermediate.dense.weight";
    let i = t.iter().position(|x| x.0 == name).unwrap();
    t[i].2 = vec![HIDDEN, INTER]; // transposed: same byte count
    let e = load_err(model_dir(&safetensors(&t)).path());
    assert!(
        e.contains(&format!("tensor `{name}`: shape [4, 8], expected [8, 4]")),
        "{e}"
    );

    // A shape that disagrees with the byte range.
    let mut t = valid_tensors();
    t[1].2 = vec![POSITIONS + 1, HIDDEN];
    let e = load_err(model_dir(&safetensors(&t)).path());
    assert!(
        e.contains("embeddings.position_embeddings.weight") && e.contains("needs 272"),
        "{e}"
    );
}

#[test]
fn missing_tensor() {
    let mut t = valid_tensors();
    t.retain(|x| x.0 != "encoder.layer.0.attention.self.value.bias");
    let e = load_err(model_dir(&safetensors(&t)).path());
    assert!(
        e.contains("tensor `encoder.layer.0.attention.self.value.bias`: missing tensor"),
        "{e}"
    );
}

#[test]
fn missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("cannot read") && e.contains("tokenizer.json"),
        "{e}"
    );
    std::fs::write(
        dir.path().join("tokenizer.json"),
        tokenizer_json().to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("config.json"), config_json().to_string()).unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("cannot read") && e.contains("model.safetensors"),
        "{e}"
    );
}

fn tokenizer_err(json: &str) -> String {
    let dir = model_dir(&safetensors(&valid_tensors()));
    std::fs::write(dir.path().join("tokenizer.json"), json).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("tokenizer.json"), "names the file: {e}");
    e
}

#[test]
fn malformed_tokenizer_json() {
    let e = tokenizer_err("{not json");
    assert!(e.contains("not JSON"), "{e}");
    let e = tokenizer_err("[]");
    assert!(e.contains("no `model` object"), "{e}");

    let mut t = tokenizer_json();
    t["model"]["type"] = json!("BPE");
    let e = tokenizer_err(&t.to_string());
    assert!(
        e.contains("model type Some(\"BPE\"), expected \"WordPiece\""),
        "{e}"
    );

    let mut t = tokenizer_json();
    t["model"]["vocab"] = json!(["a", "b"]);
    assert!(tokenizer_err(&t.to_string()).contains("`model.vocab` is not an object"));

    let mut t = tokenizer_json();
    t["model"]["vocab"]["hello"] = json!(-4);
    let e = tokenizer_err(&t.to_string());
    assert!(
        e.contains("vocab entry \"hello\": id -4 is not a u32"),
        "{e}"
    );

    let mut t = tokenizer_json();
    t["model"]["vocab"].as_object_mut().unwrap().remove("[CLS]");
    let e = tokenizer_err(&t.to_string());
    assert!(
        e.contains("token \"[CLS]\" is not in the vocabulary"),
        "{e}"
    );

    let mut t = tokenizer_json();
    t["normalizer"]["type"] = json!("NFKC");
    assert!(tokenizer_err(&t.to_string()).contains("expected \"BertNormalizer\""));

    let mut t = tokenizer_json();
    t["pre_tokenizer"]["type"] = json!("ByteLevel");
    assert!(tokenizer_err(&t.to_string()).contains("expected \"BertPreTokenizer\""));

    let mut t = tokenizer_json();
    t["added_tokens"] = json!([{"content": "[X]"}]);
    assert!(tokenizer_err(&t.to_string()).contains("lacks `content` or `id`"));

    let mut t = tokenizer_json();
    t["model"]["vocab"]["big"] = json!(1000);
    let e = tokenizer_err(&t.to_string());
    assert!(
        e.contains("token id 1000 is outside the model's vocabulary of 8"),
        "{e}"
    );
}

#[test]
fn malformed_config_json() {
    let dir = model_dir(&safetensors(&valid_tensors()));
    let path = dir.path().join("config.json");
    for (config, want) in [
        ("nope".to_string(), "not JSON"),
        (
            json!({"model_type": "gpt2"}).to_string(),
            "model_type \"gpt2\"",
        ),
        (json!({"hidden_act": "relu"}).to_string(), "only \"gelu\""),
        (json!({"hidden_size": 0}).to_string(), "`hidden_size` is 0"),
        (
            json!({"hidden_size": 6, "num_attention_heads": 4}).to_string(),
            "not a multiple",
        ),
    ] {
        std::fs::write(&path, config).unwrap();
        let e = load_err(dir.path());
        assert!(e.contains("config.json") && e.contains(want), "{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random bytes in the header never panic the loader.
    #[test]
    fn random_headers_never_panic(header in proptest::collection::vec(any::<u8>(), 0..200),
                                  tail in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&tail);
        prop_assert!(Embedder::load(model_dir(&bytes).path()).is_err());
    }

    /// Random JSON-ish headers with tensor entries never panic the loader.
    #[test]
    fn random_entries_never_panic(begin in 0u64..5000, end in 0u64..5000,
                                  dims in proptest::collection::vec(0u64..u64::MAX, 0..4),
                                  dtype in "(F32|F16|I64|BOOL|X)") {
        let header = json!({"embeddings.word_embeddings.weight":
            {"dtype": dtype, "shape": dims, "data_offsets": [begin, end]}}).to_string();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0; 512]);
        prop_assert!(Embedder::load(model_dir(&bytes).path()).is_err());
    }
}
