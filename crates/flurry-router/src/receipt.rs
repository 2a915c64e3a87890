//! Receipts of circle jobs (`docs/verification.md`).
//!
//! A circle request names the peer's model by its name, so the requester cannot know
//! the ModelId, nor tokenize, before the peer answers. The peer therefore states the
//! request it ran: it builds the `JobRequest` from the tokens its template made, the
//! sampling, limit, stop strings and seed it was asked for and the job id the requester
//! picked, commits to the answer and signs the receipt. The requester, when it holds
//! the same model, checks that statement field by field against what it asked for and
//! its own tokenization of the messages it sent, and only then countersigns the request:
//! the bundle is then as strong as a market job's, and `flurry verify` checks it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flurry_agent::ModelHost;
use flurry_identity::Identity;
use flurry_infer::commit::Commitments;
use flurry_infer::sampler::SamplingParams;
use flurry_infer::template::ChatMessage;
use flurry_primitives::ModelId;
use flurry_verify::Bytes;
use flurry_verify::bundle::{Bundle, RequestSpec, Times, address_of, receipt};
use flurry_verify::check::check_signed;
use flurry_verify::messages::{Domain, Finish, client_seed_of, sign};

/// Circle jobs never meet a chain: their messages are signed under chain 0.
pub const CIRCLE_DOMAIN: Domain = Domain {
    chain_id: 0,
    verifying_contract: flurry_verify::Address::ZERO,
};

/// What the provider needs, at the end of a job, to state its request and sign.
pub(crate) struct Stated {
    pub(crate) job_id: [u8; 32],
    pub(crate) client: flurry_verify::Address,
    pub(crate) sampling: SamplingParams,
    pub(crate) max_tokens: u32,
    pub(crate) stop: Vec<String>,
    pub(crate) accept_ms: u64,
}

impl Stated {
    /// The bundle the provider sends: the request it ran, its signed receipt, the output
    /// tokens and chunks; without the client's signature and the prompt tokens (the
    /// client has those).
    pub(crate) fn bundle(
        self,
        key: &Identity,
        model: ModelId,
        c: Commitments,
        finish: Finish,
        first_ms: u64,
    ) -> Bundle {
        let me = address_of(key);
        let client_seed = client_seed_of(self.sampling.seed);
        let spec = RequestSpec {
            job_id: self.job_id.into(),
            provider: me,
            model,
            prompt: c.prompt.clone(),
            sampling: self.sampling,
            max_tokens: self.max_tokens,
            stop: self.stop.clone(),
            client_seed,
            audit_commit: Default::default(),
            prices: Default::default(),
            deadline: 0,
        };
        let (request, _) = spec.request(self.client);
        let done = flurry_verify::bundle::now_ms();
        let times = Times {
            accept: self.accept_ms,
            first: if first_ms == 0 { done } else { first_ms },
            done,
        };
        let rc = receipt(&request, &CIRCLE_DOMAIN, me, &c, finish, times);
        let signature = sign(&rc, &CIRCLE_DOMAIN, key);
        Bundle {
            version: flurry_verify::bundle::VERSION,
            domain: CIRCLE_DOMAIN,
            request,
            request_signature: Bytes::new(),
            stop: self.stop,
            receipt: rc,
            receipt_signature: Bytes::copy_from_slice(&signature),
            prompt_tokens: Vec::new(),
            output_tokens: c.output,
            chunks: c.chunks.into_iter().map(Into::into).collect(),
        }
    }
}

/// What the requester asked a peer for, to check the peer's statement against.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    pub(crate) job_id: [u8; 32],
    pub(crate) provider: flurry_verify::Address,
    pub(crate) messages: Vec<ChatMessage>,
    pub(crate) sampling: SamplingParams,
    pub(crate) max_tokens: u32,
    pub(crate) stop: Vec<String>,
}

/// Where the requester keeps circle receipts, and with what it checks and signs them.
#[derive(Clone)]
pub struct Receipts {
    /// The node key (countersigns).
    pub key: Arc<Identity>,
    /// The models this node holds.
    pub models: Arc<ModelHost>,
    /// `$FLURRY_HOME/circle-receipts`.
    pub dir: PathBuf,
}

impl std::fmt::Debug for Receipts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipts")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The prompt's token ids with `model`'s chat template.
fn tokenize(model: &flurry_infer::model::Model, msgs: &[ChatMessage]) -> Result<Vec<u32>, String> {
    model
        .template()
        .tokenize(model.tokenizer(), msgs, true)
        .map_err(|e| e.to_string())
}

/// Checks a peer's bundle against what was asked, countersigns the request and keeps
/// the bundle. Blocking (it may load the model). Returns where the bundle is.
///
/// # Errors
/// A bundle that is not the job asked for, a model this node does not hold, or a bundle
/// that does not hold (it is kept then, as evidence, and the error says where).
pub(crate) fn countersign(
    r: &Receipts,
    asked: &Asked,
    value: serde_json::Value,
) -> Result<PathBuf, String> {
    let bytes = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    let mut b = Bundle::from_json(&bytes).map_err(|e| e.to_string())?;
    let model_id = ModelId::from_bytes(b.request.modelId.0);
    let want = expected(asked, address_of(&r.key), model_id);
    let q = &b.request;
    if b.domain != CIRCLE_DOMAIN {
        return Err("the receipt is signed for a chain; circle receipts are not".into());
    }
    let fields_differ = q.jobId != want.jobId
        || q.client != want.client
        || q.provider != want.provider
        || q.temperature != want.temperature
        || q.topK != want.topK
        || q.topP != want.topP
        || q.minP != want.minP
        || q.repeatPenalty != want.repeatPenalty
        || q.repeatLastN != want.repeatLastN
        || q.maxTokens != want.maxTokens
        || q.stopHash != want.stopHash
        || q.clientSeed != want.clientSeed
        || q.auditCommit != want.auditCommit
        || q.priceIn != want.priceIn
        || q.priceOut != want.priceOut
        || q.deadline != want.deadline
        || b.stop != asked.stop;
    if fields_differ {
        return Err("the peer states another request than the one sent (job, client, provider, sampling, limit, stop strings or seed)".into());
    }
    let held = r.models.weights(&model_id).ok().flatten().ok_or_else(|| {
        format!("model {model_id} is not held here, so its receipt cannot be checked")
    })?;
    let tokens = tokenize(&held, &asked.messages)?;
    if flurry_verify::messages::tokens_hash(&tokens) != q.promptTokensHash
        || tokens.len() != q.nPrompt as usize
    {
        return Err("the peer ran other prompt tokens than the messages sent".into());
    }
    b.request_signature = Bytes::copy_from_slice(&sign(&b.request, &b.domain, &r.key));
    b.prompt_tokens = tokens;
    let path = r.dir.join(format!("{}.json", hex::encode(b.request.jobId)));
    write(&r.dir, &path, &b)?;
    check_signed(&b).map_err(|f| {
        format!(
            "the peer's receipt does not hold ({f}); the bundle is kept as evidence in {}",
            path.display()
        )
    })?;
    Ok(path)
}

fn write(dir: &Path, path: &Path, b: &Bundle) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    b.write(path).map_err(|e| e.to_string())
}

/// The request the requester expects the peer to state.
fn expected(
    a: &Asked,
    client: flurry_verify::Address,
    model: ModelId,
) -> flurry_verify::messages::JobRequest {
    RequestSpec {
        job_id: a.job_id.into(),
        provider: a.provider,
        model,
        prompt: Vec::new(),
        sampling: a.sampling.clone(),
        max_tokens: a.max_tokens,
        stop: a.stop.clone(),
        client_seed: client_seed_of(a.sampling.seed),
        audit_commit: Default::default(),
        prices: Default::default(),
        deadline: 0,
    }
    .request(client)
    .0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(provider: &Identity) -> Asked {
        Asked {
            job_id: [7; 32],
            provider: address_of(provider),
            messages: vec![ChatMessage::new("user", "hi")],
            sampling: SamplingParams {
                temperature: 0.7,
                seed: 42,
                ..SamplingParams::default()
            },
            max_tokens: 16,
            stop: vec![],
        }
    }

    fn stated(a: &Asked, client: &Identity) -> Stated {
        Stated {
            job_id: a.job_id,
            client: address_of(client),
            sampling: a.sampling.clone(),
            max_tokens: a.max_tokens,
            stop: a.stop.clone(),
            accept_ms: 1,
        }
    }

    fn commitments() -> Commitments {
        Commitments {
            prompt: vec![1, 2, 3],
            output: vec![4, 5],
            eog: false,
            chunks: vec![[1; 32], [2; 32]],
        }
    }

    fn receipts(key: Identity) -> Receipts {
        let dir = tempfile::tempdir().unwrap().keep();
        let store = flurry_infer::store::ModelStore::new(dir.join("models"));
        Receipts {
            key: Arc::new(key),
            models: Arc::new(ModelHost::new(
                store,
                flurry_infer::engine::EngineConfig::default(),
                "none".into(),
                1,
            )),
            dir: dir.join("receipts"),
        }
    }

    /// Attack: a peer states another request than the one it was sent (another seed,
    /// sampling, limit, stop strings, job or client), or sends a bundle that is not one:
    /// the requester never countersigns it.
    #[test]
    fn a_peer_that_states_another_request_is_not_countersigned() {
        let client = Identity::generate().unwrap();
        let provider = Identity::generate().unwrap();
        let a = asked(&provider);
        let r = receipts(client.clone());
        let model = ModelId::from_bytes([9; 32]);
        let honest = stated(&a, &client).bundle(&provider, model, commitments(), Finish::Length, 2);
        let value = |b: &Bundle| serde_json::to_value(b).unwrap();
        // The statement matches: only the model is missing here, and it says so.
        let e = countersign(&r, &a, value(&honest)).unwrap_err();
        assert!(e.contains("not held"), "{e}");
        let tamper = |f: &dyn Fn(&mut Stated)| {
            let mut s = stated(&a, &client);
            f(&mut s);
            let b = s.bundle(&provider, model, commitments(), Finish::Length, 2);
            countersign(&r, &a, value(&b)).unwrap_err()
        };
        for e in [
            tamper(&|s| s.sampling.seed = 43),
            tamper(&|s| s.sampling.temperature = 0.0),
            tamper(&|s| s.max_tokens = 4096),
            tamper(&|s| s.stop = vec!["x".into()]),
            tamper(&|s| s.job_id = [8; 32]),
            tamper(&|s| s.client = flurry_verify::Address::repeat_byte(3)),
        ] {
            assert!(e.contains("another request"), "{e}");
        }
        // Stated by another provider than the one asked.
        let other = Identity::generate().unwrap();
        let b = stated(&a, &client).bundle(&other, model, commitments(), Finish::Length, 2);
        assert!(
            countersign(&r, &a, value(&b))
                .unwrap_err()
                .contains("another request")
        );
        // Not a bundle at all, or a bundle for a chain.
        assert!(countersign(&r, &a, serde_json::json!({"version": 1})).is_err());
        let mut chained = honest.clone();
        chained.domain.chain_id = 1;
        assert!(
            countersign(&r, &a, value(&chained))
                .unwrap_err()
                .contains("chain")
        );
        assert!(std::fs::read_dir(&r.dir).is_err(), "nothing kept");
    }
}
