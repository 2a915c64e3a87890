//! What verification costs (`make bench-verify`): the provider's overhead for committing
//! (the same job with and without commitments, interleaved, wall clock), and the
//! auditor's cost of one re-execution against the generation it checks.
//!
//! `cargo run --release -p flurry-verify --example verify_bench -- [MODEL.gguf …]`
//! (default: the two models of `make models`). Prints one JSON object per model.

#![allow(clippy::print_stdout)] // a benchmark prints its figures

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use flurry_identity::Identity;
use flurry_infer::engine::{Engine, EngineConfig, GenerateRequest, Prompt};
use flurry_infer::model::Model;
use flurry_infer::sampler::SamplingParams;
use flurry_infer::store::hash_file;
use flurry_infer::template::ChatMessage;
use flurry_verify::bundle::{RequestSpec, Times, address_of, assemble, finish_of, receipt};
use flurry_verify::check::{audit, check_signed};
use flurry_verify::messages::{Domain, sign};

const ROUNDS: usize = 3;
const THREADS: usize = 2;
const MAX_TOKENS: usize = 128;

fn models() -> Vec<PathBuf> {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if !args.is_empty() {
        return args;
    }
    let dir = std::env::var_os("FLURRY_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".flurry/models")
        });
    [
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "gemma-3-270m-q4_k_m.gguf",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let key = Identity::generate().expect("a key");
    let domain = Domain {
        chain_id: 0,
        verifying_contract: Default::default(),
    };
    for path in models() {
        assert!(
            path.is_file(),
            "{} not found: run `make models`",
            path.display()
        );
        let model = Arc::new(Model::load(&path).expect("the model loads"));
        let id = hash_file(&path, |_| {}).expect("the model hashes");
        let cfg = EngineConfig::default()
            .with_threads(THREADS)
            .with_context_length(1024);
        let engine = Engine::start(model.clone(), cfg).expect("the engine starts");
        let text = "Write a long story about a lighthouse keeper who finds a message in a bottle, \
                    with three characters, a storm and a surprising ending. Describe the sea.";
        let prompt = model
            .template()
            .tokenize(model.tokenizer(), &[ChatMessage::new("user", text)], true)
            .expect("the prompt tokenizes");
        let req = |commit: Option<[u8; 32]>, sampling: &SamplingParams| {
            let r = GenerateRequest::new(Prompt::Tokens(prompt.clone()))
                .with_sampling(sampling.clone())
                .with_max_tokens(MAX_TOKENS);
            match commit {
                Some(s) => r.with_commit(s),
                None => r,
            }
        };
        let (mut plain, mut committed, mut audits, mut tokens) = (vec![], vec![], vec![], 0);
        for round in 0..ROUNDS {
            let spec = RequestSpec {
                job_id: [round as u8 + 1; 32].into(),
                provider: address_of(&key),
                model: id,
                prompt: prompt.clone(),
                sampling: SamplingParams::greedy(),
                max_tokens: MAX_TOKENS as u32,
                stop: vec![],
                client_seed: [7; 32].into(),
                audit_commit: Default::default(),
                prices: Default::default(),
                deadline: 0,
            };
            let (request, sampling) = spec.request(address_of(&key));
            let t = Instant::now();
            engine.generate(req(None, &sampling)).expect("a plain job");
            plain.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let c = engine
                .generate(req(Some(request.jobId.0), &sampling))
                .expect("a committed job");
            committed.push(t.elapsed().as_secs_f64());
            let commitments = c.commitments.expect("commitments");
            tokens = commitments.output.len();
            let finish = finish_of(c.finish_reason, &commitments);
            let rc = receipt(
                &request,
                &domain,
                address_of(&key),
                &commitments,
                finish,
                Times::default(),
            );
            let sig = sign(&request, &domain, &key);
            let bundle = assemble(domain, request, sig, vec![], rc, &key, commitments);
            let t = Instant::now();
            check_signed(&bundle).expect("the bundle holds");
            audit(&bundle, &model, id, THREADS).expect("the audit holds");
            audits.push(t.elapsed().as_secs_f64());
        }
        let (p, c, a) = (median(plain), median(committed), median(audits));
        println!(
            "{}",
            serde_json::json!({
                "model": path.file_stem().map(|s| s.to_string_lossy().into_owned()),
                "threads": THREADS,
                "prompt_tokens": prompt.len(),
                "output_tokens": tokens,
                "job_s": p,
                "job_with_commitments_s": c,
                "commit_overhead_pct": (c / p - 1.0) * 100.0,
                "audit_s": a,
                "audit_over_job": a / c,
            })
        );
    }
}
