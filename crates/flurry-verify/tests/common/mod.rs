//! Shared helpers: models, engines, honest jobs and re-signed cheats.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use alloy::primitives::B256;
use flurry_identity::Identity;
use flurry_infer::commit::Commitments;
use flurry_infer::engine::{Engine, EngineConfig, FinishReason, GenerateRequest, Prompt};
use flurry_infer::model::Model;
use flurry_infer::sampler::SamplingParams;
use flurry_infer::store::hash_file;
use flurry_infer::template::ChatMessage;
use flurry_primitives::ModelId;
use flurry_verify::bundle::{Bundle, RequestSpec, Times, address_of, assemble, finish_of, receipt};
use flurry_verify::messages::{
    Domain, Finish, JobRequest, Receipt, merkle_root, sign, tokens_hash,
};

pub(crate) const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub(crate) const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

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

pub(crate) struct Loaded {
    pub(crate) model: Arc<Model>,
    pub(crate) id: ModelId,
}

pub(crate) fn load(path: &std::path::Path) -> Loaded {
    Loaded {
        model: Arc::new(Model::load(path).unwrap()),
        id: hash_file(path, |_| {}).unwrap(),
    }
}

pub(crate) fn engine(m: &Loaded, threads: usize) -> Engine {
    let cfg = EngineConfig::default()
        .with_threads(threads)
        .with_max_active(8)
        .with_queue_capacity(64)
        .with_context_length(1024);
    Engine::start(m.model.clone(), cfg).unwrap()
}

pub(crate) fn domain() -> Domain {
    Domain {
        chain_id: 31337,
        verifying_contract: alloy::primitives::Address::repeat_byte(0x42),
    }
}

/// The parties of a job.
pub(crate) struct Parties {
    pub(crate) client: Identity,
    pub(crate) provider: Identity,
}

impl Parties {
    pub(crate) fn new() -> Self {
        Self {
            client: Identity::generate().unwrap(),
            provider: Identity::generate().unwrap(),
        }
    }
}

pub(crate) fn chat_tokens(m: &Loaded, text: &str) -> Vec<u32> {
    let msgs = vec![ChatMessage::new("user", text)];
    m.model
        .template()
        .tokenize(m.model.tokenizer(), &msgs, true)
        .unwrap()
}

pub(crate) fn random32() -> B256 {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    B256::from(b)
}

/// What a job asks for.
#[derive(Clone)]
pub(crate) struct Ask {
    pub(crate) prompt: Vec<u32>,
    pub(crate) sampling: SamplingParams,
    pub(crate) max_tokens: u32,
    pub(crate) stop: Vec<String>,
    pub(crate) job_id: B256,
    pub(crate) client_seed: B256,
}

impl Ask {
    pub(crate) fn new(prompt: Vec<u32>, sampling: SamplingParams, max_tokens: u32) -> Self {
        Self {
            prompt,
            sampling,
            max_tokens,
            stop: Vec::new(),
            job_id: random32(),
            client_seed: random32(),
        }
    }

    /// The signed request for `claimed` model.
    pub(crate) fn request(
        &self,
        p: &Parties,
        claimed: ModelId,
    ) -> (JobRequest, [u8; 65], SamplingParams) {
        let spec = RequestSpec {
            job_id: self.job_id,
            provider: address_of(&p.provider),
            model: claimed,
            prompt: self.prompt.clone(),
            sampling: self.sampling.clone(),
            max_tokens: self.max_tokens,
            stop: self.stop.clone(),
            client_seed: self.client_seed,
            audit_commit: B256::ZERO,
            prices: Default::default(),
            deadline: 0,
        };
        let (rq, sampling) = spec.request(address_of(&p.client));
        let sig = sign(&rq, &domain(), &p.client);
        (rq, sig, sampling)
    }
}

/// Runs `ask` on `engine` with commitments (the request submitted, not waited for).
pub(crate) fn submit(
    engine: &Engine,
    ask: &Ask,
    sampling: SamplingParams,
) -> std::sync::mpsc::Receiver<flurry_infer::engine::Event> {
    let req = GenerateRequest::new(Prompt::Tokens(ask.prompt.clone()))
        .with_sampling(sampling)
        .with_max_tokens(ask.max_tokens as usize)
        .with_stop(ask.stop.clone())
        .with_commit(ask.job_id.0);
    engine.submit(req).unwrap()
}

/// Collects a submitted job's commitments and finish reason.
#[allow(dead_code)]
pub(crate) fn collect(
    rx: std::sync::mpsc::Receiver<flurry_infer::engine::Event>,
) -> (Commitments, FinishReason) {
    let (c, reason, _) = collect_text(rx);
    (c, reason)
}

/// Collects a submitted job's commitments, finish reason, and the text it streamed.
pub(crate) fn collect_text(
    rx: std::sync::mpsc::Receiver<flurry_infer::engine::Event>,
) -> (Commitments, FinishReason, String) {
    use flurry_infer::engine::Event;
    let mut c = None;
    let mut text = String::new();
    for ev in rx {
        match ev {
            Event::Commitments(x) => c = Some(*x),
            Event::Token { text: t, .. } => text.push_str(&t),
            Event::Done { reason, tail, .. } => {
                text.push_str(&tail);
                return (c.expect("commitments before done"), reason, text);
            }
            Event::Error(e) => panic!("engine error: {e}"),
            _ => {}
        }
    }
    panic!("engine stopped")
}

/// A bundle signed by both parties for what the engine did.
pub(crate) fn bundle(
    p: &Parties,
    ask: &Ask,
    claimed: ModelId,
    c: Commitments,
    reason: FinishReason,
) -> Bundle {
    let (rq, sig, _) = ask.request(p, claimed);
    let finish = finish_of(reason, &c);
    let rc = receipt(
        &rq,
        &domain(),
        address_of(&p.provider),
        &c,
        finish,
        Times::default(),
    );
    assemble(domain(), rq, sig, ask.stop.clone(), rc, &p.provider, c)
}

/// An honest job, start to end.
pub(crate) fn honest(engine: &Engine, p: &Parties, m: &Loaded, ask: &Ask) -> Bundle {
    let (_, _, sampling) = ask.request(p, m.id);
    let (c, reason) = collect(submit(engine, ask, sampling));
    bundle(p, ask, m.id, c, reason)
}

/// Re-signs `b`'s receipt after a cheat changed the tokens or chunks: the hashes,
/// counts and root are made consistent, so only the audit can tell.
pub(crate) fn resign(b: &mut Bundle, provider: &Identity, finish: Finish) {
    let chunks: Vec<[u8; 32]> = b.chunks.iter().map(|c| c.0).collect();
    let rc: &mut Receipt = &mut b.receipt;
    rc.outputTokensHash = tokens_hash(&b.output_tokens);
    rc.nOut = b.output_tokens.len() as u32;
    rc.promptTokensHash = tokens_hash(&b.prompt_tokens);
    rc.nPrompt = b.prompt_tokens.len() as u32;
    rc.commitRoot = merkle_root(&chunks);
    rc.nChunks = chunks.len() as u32;
    rc.finishReason = finish as u8;
    b.receipt_signature = sign(&b.receipt, &b.domain, provider).to_vec().into();
}
