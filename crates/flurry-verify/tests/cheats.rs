//! Cheats, each caught by the checks with the right reason: a provider that ran another
//! model or quantisation, edited the prompt, truncated with a fake end, spliced two
//! outputs, used another seed, replayed a receipt, or sent tokens its commitments do not
//! cover; and forged or inconsistent signed messages.

mod common;

use std::path::Path;

use alloy::primitives::B256;
use flurry_identity::Identity;
use flurry_infer::GgmlType;
use flurry_infer::commit::recompute;
use flurry_infer::gguf::Gguf;
use flurry_infer::quant;
use flurry_infer::sampler::SamplingParams;
use flurry_verify::bundle::Bundle;
use flurry_verify::check::{Failure, audit, check_signed};
use flurry_verify::messages::{Finish, sign};

use common::*;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// Both tiers, as `flurry verify` runs them.
fn verify(b: &Bundle, m: &Loaded) -> Result<(), Failure> {
    check_signed(b)?;
    audit(b, &m.model, m.id, 2)
}

fn expect(b: &Bundle, m: &Loaded, check: &str, kind: &str) -> Failure {
    let f = verify(b, m).expect_err("the cheat must be caught");
    assert_eq!(
        (f.check, f.kind),
        (check, kind),
        "caught for the wrong reason: {f}"
    );
    f
}

fn sampled() -> SamplingParams {
    SamplingParams {
        temperature: 0.7,
        top_p: 0.9,
        ..SamplingParams::default()
    }
}

/// A copy of `src` whose Q4_1 feed-forward weights went through Q4_0 first: the same
/// layout and type tags, lower precision (what a provider serving a cheaper quantisation
/// under the claimed name would run).
fn requantized(src: &Path, dst: &Path) {
    let g = Gguf::open(src).unwrap();
    let mut bytes = std::fs::read(src).unwrap();
    let mut changed = 0;
    for t in g.tensors() {
        if t.dtype != GgmlType::Q4_1 || !t.name.contains("ffn_down") {
            continue;
        }
        let n = t.elements() as usize;
        let mut x = vec![0f32; n];
        quant::dequantize_row(t.dtype, &bytes[t.range.clone()], &mut x);
        let q0 = quant::quantize_weights(GgmlType::Q4_0, &x);
        quant::dequantize_row(GgmlType::Q4_0, &q0, &mut x);
        let q1 = quant::quantize_weights(GgmlType::Q4_1, &x);
        bytes[t.range.clone()].copy_from_slice(&q1);
        changed += 1;
    }
    assert!(changed > 0, "no Q4_1 feed-forward tensor to requantise");
    std::fs::write(dst, bytes).unwrap();
}

#[test]
fn every_cheat_is_caught_for_its_reason() {
    let m = load(&model_path(SMOLLM2));
    let eng = engine(&m, 2);
    let p = Parties::new();
    let prompt = chat_tokens(&m, "Tell me a story about a robot who learns to paint.");
    assert!(prompt.len() > 32, "the prompt spans two chunks");

    // The honest job holds.
    let honest_ask = Ask::new(prompt.clone(), sampled(), 40);
    let good = honest(&eng, &p, &m, &honest_ask);
    verify(&good, &m).unwrap();
    assert_eq!(good.output_tokens.len(), 40, "a story runs to max_tokens");

    // Another answer sent than the one committed to (an ad slipped in, a word changed):
    // the client compares the text it received with the committed tokens.
    {
        use flurry_verify::check::check_text;
        let text =
            flurry_infer::engine::answer_text(m.model.tokenizer(), &good.output_tokens, &good.stop);
        assert!(text.contains(' '), "{text}");
        check_text(&good, &m.model, &text).unwrap();
        let ad = format!("{text} Visit example.com!");
        let f = check_text(&good, &m.model, &ad).unwrap_err();
        assert_eq!(
            (f.check, f.kind, f.position),
            ("text", "mismatch", Some(text.len()))
        );
        let word = text.replacen(' ', "  ", 1);
        let f = check_text(&good, &m.model, &word).unwrap_err();
        assert_eq!(f.position, text.find(' ').map(|i| i + 1));
        assert!(
            !f.provider_fault(),
            "the text is not signed: only the client can tell"
        );
    }

    // Model swap: Gemma 3 ran the tokens, the receipt claims SmolLM2.
    {
        let other = load(&model_path(GEMMA3));
        let oe = engine(&other, 2);
        let ask = Ask::new(prompt.clone(), sampled(), 12);
        let (_, _, sp) = ask.request(&p, m.id);
        let (c, reason) = collect(submit(&oe, &ask, sp));
        let b = bundle(&p, &ask, m.id, c, reason);
        let f = expect(&b, &m, "chunk", "hidden_state_mismatch");
        assert_eq!(f.chunk, Some(0));
    }

    // Quantisation swap: the same model through a coarser quantisation.
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cheap.gguf");
        requantized(&model_path(SMOLLM2), &path);
        let cheap = load(&path);
        assert_ne!(cheap.id, m.id);
        let ce = engine(&cheap, 2);
        let ask = Ask::new(prompt.clone(), SamplingParams::greedy(), 12);
        let (_, _, sp) = ask.request(&p, m.id);
        let (c, reason) = collect(submit(&ce, &ask, sp));
        let b = bundle(&p, &ask, m.id, c, reason);
        let f = expect(&b, &m, "chunk", "hidden_state_mismatch");
        assert_eq!(f.chunk, Some(0));
    }

    // Prompt edit: the provider ran a prompt with one token changed (in the second
    // chunk) and claims the client's.
    {
        let ask = Ask::new(prompt.clone(), SamplingParams::greedy(), 12);
        let mut edited = ask.clone();
        edited.prompt[40] = m.model.tokenizer().encode(" ads", false, false)[0];
        let (_, _, sp) = ask.request(&p, m.id);
        let (c, reason) = collect(submit(&eng, &edited, sp));
        let mut b = bundle(&p, &ask, m.id, c, reason);
        b.prompt_tokens = ask.prompt.clone();
        let finish = Finish::from_u8(b.receipt.finishReason).unwrap();
        resign(&mut b, &p.provider, finish);
        let f = expect(&b, &m, "chunk", "hidden_state_mismatch");
        assert_eq!(f.chunk, Some(1));
    }

    let sp = honest_ask.request(&p, m.id).2;
    let honest_chunks = |out: &[u32]| -> Vec<B256> {
        let r = recompute(&m.model, honest_ask.job_id.0, &prompt, out, &sp, &pool(2)).unwrap();
        r.chunks.into_iter().map(B256::from).collect()
    };

    // Truncation with a fake end: 10 tokens, then an end-of-generation token the
    // sampler never chose; commitments honestly recomputed for the fake output.
    {
        let mut b = good.clone();
        b.output_tokens.truncate(10);
        b.output_tokens.push(m.model.tokenizer().eos().unwrap());
        b.chunks = honest_chunks(&b.output_tokens);
        resign(&mut b, &p.provider, Finish::Eos);
        check_signed(&b).unwrap();
        let f = expect(&b, &m, "token", "not_sampled");
        assert_eq!(f.position, Some(10));
    }

    // Splice: the first part of this job's output, the rest from another job's, with
    // honestly recomputed commitments.
    {
        let mut other = honest_ask.clone();
        other.client_seed = random32();
        let (_, _, osp) = other.request(&p, m.id);
        let (oc, _) = collect(submit(&eng, &other, osp));
        let d = good
            .output_tokens
            .iter()
            .zip(&oc.output)
            .position(|(a, b)| a != b)
            .expect("two seeds give two stories");
        let mut b = good.clone();
        b.output_tokens = good.output_tokens[..d].to_vec();
        b.output_tokens.extend_from_slice(&oc.output[d..]);
        b.chunks = honest_chunks(&b.output_tokens);
        resign(&mut b, &p.provider, Finish::Length);
        let f = expect(&b, &m, "token", "not_sampled");
        assert_eq!(f.position, Some(d));
    }

    // Wrong seed: the provider sampled with a seed of its own choosing.
    {
        let ask = Ask::new(prompt.clone(), sampled(), 24);
        let (_, _, right) = ask.request(&p, m.id);
        let wrong = SamplingParams {
            seed: right.seed ^ 1,
            ..right.clone()
        };
        let (c, reason) = collect(submit(&eng, &ask, wrong));
        let b = bundle(&p, &ask, m.id, c, reason);
        expect(&b, &m, "token", "not_sampled");
    }

    // Replayed receipt: the receipt and tokens of the honest job, for a new request.
    {
        let fresh = Ask::new(prompt.clone(), sampled(), 40);
        let (rq, sig, _) = fresh.request(&p, m.id);
        let mut b = good.clone();
        b.request = rq;
        b.request_signature = sig.to_vec().into();
        expect(&b, &m, "request_digest", "mismatch");
    }

    // Tokens the commitments do not cover: one token changed, the receipt re-signed
    // over it, the chunks left as they were.
    {
        let mut b = good.clone();
        b.output_tokens[35] = (b.output_tokens[35] + 1) % 1000;
        resign(&mut b, &p.provider, Finish::Length);
        let f = expect(&b, &m, "chunk", "hidden_state_mismatch");
        // Two prompt chunks, then output chunk 1 holds position 35.
        assert_eq!(f.chunk, Some(prompt.len().div_ceil(32) + 1));
    }

    // Signed-message faults, found without the model.
    {
        let mut b = good.clone();
        b.request.maxTokens += 1;
        expect(&b, &m, "request_signature", "bad_signature");

        let mut b = good.clone();
        b.receipt_signature = sign(&b.receipt, &b.domain, &Identity::generate().unwrap())
            .to_vec()
            .into();
        expect(&b, &m, "receipt_signature", "bad_signature");

        let mut b = good.clone();
        b.output_tokens.truncate(20);
        b.chunks = honest_chunks(&b.output_tokens);
        resign(&mut b, &p.provider, Finish::Length);
        expect(&b, &m, "finish_reason", "false_length");

        // "eos" with no token at all.
        let mut b = good.clone();
        b.output_tokens.clear();
        b.chunks.truncate(prompt.len().div_ceil(32));
        resign(&mut b, &p.provider, Finish::Eos);
        expect(&b, &m, "finish_reason", "false_eos");

        let mut b = good.clone();
        b.chunks[1] = B256::repeat_byte(7);
        expect(&b, &m, "commit_root", "mismatch");

        let mut b = good.clone();
        b.receipt.seed = B256::repeat_byte(1);
        b.receipt_signature = sign(&b.receipt, &b.domain, &p.provider).to_vec().into();
        expect(&b, &m, "seed", "mismatch");

        let mut b = good.clone();
        b.prompt_tokens[3] += 1;
        expect(&b, &m, "prompt_tokens", "mismatch");
    }
}

#[test]
fn hostile_bundle_files_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("b.json");
    for (bytes, want) in [
        (b"not json".to_vec(), "not a job bundle"),
        (br#"{"version": 2}"#.to_vec(), "not a job bundle"),
        (vec![b' '; (65 << 20) as usize], "larger than"),
    ] {
        std::fs::write(&p, &bytes).unwrap();
        let e = Bundle::read(&p).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    // A well-formed bundle, then the same with what a job never holds.
    let good = Bundle {
        version: 1,
        domain: domain(),
        request: Default::default(),
        request_signature: Default::default(),
        stop: vec![],
        receipt: Default::default(),
        receipt_signature: Default::default(),
        prompt_tokens: vec![1, 2, 3],
        output_tokens: vec![4],
        chunks: vec![B256::ZERO; 2],
    };
    let json = serde_json::to_value(&good).unwrap();
    Bundle::from_json(json.to_string().as_bytes()).unwrap();
    let mut extra = json.clone();
    extra["note"] = serde_json::json!("trust me");
    let e = Bundle::from_json(extra.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field"), "{e}");
    for (field, value) in [
        (
            "output_tokens",
            serde_json::json!(vec![0u32; (1 << 20) + 1]),
        ),
        ("stop", serde_json::json!(vec!["x"; 65])),
        ("stop", serde_json::json!(["x".repeat(1025)])),
    ] {
        let mut big = json.clone();
        big[field] = value;
        let e = Bundle::from_json(big.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than a job can"), "{field}: {e}");
    }
}
