//! The `flurry` binary end to end, in-process engine, real default model.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1";

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("FLURRY_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".flurry/models"));
    assert!(
        dir.join(format!("{SMOLLM2}.gguf")).is_file(),
        "run `make models` first"
    );
    dir
}

fn flurry(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flurry"))
        .args(args)
        .env("FLURRY_HOME", home)
        .env("FLURRY_MODELS", models_dir())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn help_everywhere() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["ask", "--help"],
        &["chat", "--help"],
        &["model", "--help"],
        &["model", "list", "--help"],
        &["bench", "--help"],
    ] {
        let out = stdout(&flurry(home.path(), args));
        assert!(out.contains("Usage"), "{args:?}: {out}");
    }
}

#[test]
fn ask_json_greedy_is_reproducible_and_names_the_model() {
    let home = tempfile::tempdir().unwrap();
    let args = [
        "ask",
        "--raw",
        "--temperature",
        "0",
        "--max-tokens",
        "8",
        "--json",
        "The capital of France is",
    ];
    let a: serde_json::Value = serde_json::from_str(&stdout(&flurry(home.path(), &args))).unwrap();
    assert!(a["text"].as_str().unwrap().contains("Paris"), "{a}");
    assert_eq!(a["tokens"].as_array().unwrap().len(), 8);
    let file = std::fs::read(models_dir().join(format!("{SMOLLM2}.gguf"))).unwrap();
    assert_eq!(a["model_id"].as_str().unwrap(), blake3_hex(&file));
    assert!(a["timings"]["prompt_tokens"].as_u64().unwrap() > 0);
    let b: serde_json::Value = serde_json::from_str(&stdout(&flurry(home.path(), &args))).unwrap();
    assert_eq!(a["tokens"], b["tokens"]);
    // Seeded sampling: same seed, same text.
    let s = [
        "ask",
        "--seed",
        "5",
        "--max-tokens",
        "12",
        "--json",
        "Say something nice.",
    ];
    let x: serde_json::Value = serde_json::from_str(&stdout(&flurry(home.path(), &s))).unwrap();
    let y: serde_json::Value = serde_json::from_str(&stdout(&flurry(home.path(), &s))).unwrap();
    assert_eq!(x["tokens"], y["tokens"]);
}

fn blake3_hex(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

#[test]
fn ask_streams_plain_text() {
    let home = tempfile::tempdir().unwrap();
    let out = stdout(&flurry(
        home.path(),
        &[
            "ask",
            "--temperature",
            "0",
            "-n",
            "40",
            "What is the capital of Germany?",
        ],
    ));
    assert!(out.contains("Berlin"), "{out}");
}

#[test]
fn model_commands() {
    let home = tempfile::tempdir().unwrap();
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&flurry(home.path(), &["model", "list", "--json"]))).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == SMOLLM2)
        .expect("default model listed")
        .clone();
    let id = entry["model_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 64);
    let info: serde_json::Value = serde_json::from_str(&stdout(&flurry(
        home.path(),
        &["model", "info", &id[..8], "--json"],
    )))
    .unwrap();
    assert_eq!(info["architecture"], "llama");
    assert_eq!(info["context_length"], 8192);
    assert_eq!(info["model_id"], id.as_str());
    assert!(info["chat_template"].as_str().unwrap().contains("im_start"));
    let human = stdout(&flurry(home.path(), &["model", "info", SMOLLM2]));
    assert!(human.contains("quantization   Q4_1"), "{human}");

    // Import into a fresh store gives the same id, and is idempotent.
    let store = tempfile::tempdir().unwrap();
    let src = models_dir().join(format!("{SMOLLM2}.gguf"));
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_flurry"))
            .args(["model", "import", src.to_str().unwrap()])
            .env("FLURRY_HOME", home.path())
            .env("FLURRY_MODELS", store.path())
            .output()
            .unwrap();
        assert!(stdout(&out).contains(&id));
    }
}

#[test]
fn errors_say_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    let o = flurry(home.path(), &["ask", "--model", "no-such-model", "hi"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("flurry model list"), "{err}");
    std::fs::write(home.path().join("flurry.toml"), "[engine]\nthreadz = 2\n").unwrap();
    let o = flurry(home.path(), &["config", "show"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("threadz"));
}

#[test]
fn chat_reads_stdin_until_eof() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flurry"))
        .args(["chat", "--temperature", "0", "-n", "30"])
        .env("FLURRY_HOME", home.path())
        .env("FLURRY_MODELS", models_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"What is the capital of Germany?\nAnd of France?\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(text.contains("Berlin"), "{text}");
    assert!(
        text.contains("Paris"),
        "the second turn should see the first: {text}"
    );
}
