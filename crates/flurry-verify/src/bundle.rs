//! Job bundles: the request, the receipt and the tokens in one JSON file that anyone
//! holding the model can check.

use std::path::Path;

use alloy::primitives::{Address, B256, Bytes, U256};
use flurry_identity::Identity;
use flurry_infer::commit::Commitments;
use flurry_infer::engine::FinishReason;
use flurry_infer::sampler::SamplingParams;
use flurry_primitives::ModelId;
use serde::{Deserialize, Serialize};

use crate::messages::{
    Domain, Finish, JobRequest, Receipt, derive_seed, engine_profile, merkle_root, sign, stop_hash,
    tokens_hash,
};
use crate::{Error, Result};

/// The bundle format's version.
pub const VERSION: u32 = 1;

/// The largest bundle file read (a 32k-token job is about 1 MiB).
pub const MAX_BUNDLE_BYTES: u64 = 64 << 20;

/// The most tokens a bundle may hold (prompt and output together).
pub const MAX_TOKENS: usize = 1 << 20;

/// A job bundle (`flurry ask --receipt`, market jobs, `flurry verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// [`VERSION`].
    pub version: u32,
    /// The domain both messages are signed under.
    pub domain: Domain,
    /// The client's request.
    pub request: JobRequest,
    /// The client's signature of the request's EIP-712 digest.
    pub request_signature: Bytes,
    /// The stop strings (the request carries their hash).
    pub stop: Vec<String>,
    /// The provider's receipt.
    pub receipt: Receipt,
    /// The provider's signature of the receipt's EIP-712 digest.
    pub receipt_signature: Bytes,
    /// The prompt's token ids (after the chat template).
    pub prompt_tokens: Vec<u32>,
    /// The sampled token ids, with a final end-of-generation token when the receipt
    /// says `eos`.
    pub output_tokens: Vec<u32>,
    /// The chunk commitments the receipt's `commitRoot` is the Merkle root of.
    pub chunks: Vec<B256>,
}

impl Bundle {
    /// Reads a bundle, bounded in size, with an error that names the problem.
    ///
    /// # Errors
    /// [`Error::Bundle`] on a missing, oversized or malformed file.
    pub fn read(path: &Path) -> Result<Self> {
        use std::io::Read;
        let f = std::fs::File::open(path)
            .map_err(|e| Error::Bundle(format!("cannot open {}: {e}", path.display())))?;
        let mut buf = Vec::new();
        f.take(MAX_BUNDLE_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::Bundle(format!("cannot read {}: {e}", path.display())))?;
        if buf.len() as u64 > MAX_BUNDLE_BYTES {
            return Err(Error::Bundle(format!(
                "{} is larger than {} MiB; a job bundle never is",
                path.display(),
                MAX_BUNDLE_BYTES >> 20
            )));
        }
        Self::from_json(&buf)
    }

    /// Parses a bundle from JSON.
    ///
    /// # Errors
    /// [`Error::Bundle`] when it is not a version-1 bundle or holds too many tokens.
    pub fn from_json(buf: &[u8]) -> Result<Self> {
        let b: Self = serde_json::from_slice(buf)
            .map_err(|e| Error::Bundle(format!("not a job bundle: {e}")))?;
        if b.version != VERSION {
            return Err(Error::Bundle(format!(
                "bundle version {} is not supported (this node reads version {VERSION})",
                b.version
            )));
        }
        if b.prompt_tokens.len() + b.output_tokens.len() > MAX_TOKENS
            || b.chunks.len() > MAX_TOKENS
            || b.stop.len() > 64
            || b.stop.iter().any(|s| s.len() > 1024)
        {
            return Err(Error::Bundle("the bundle holds more than a job can".into()));
        }
        Ok(b)
    }

    /// Writes the bundle as JSON, atomically (a temporary file renamed into place).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("a bundle serialises");
        flurry_infer::store::write_atomic(path, &json)
            .map_err(|e| Error::Io(format!("{}: {e}", path.display())))
    }
}

/// What a client asks for, before it is signed.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// A fresh random id, never reused by this client.
    pub job_id: B256,
    /// Who is to run it.
    pub provider: Address,
    /// The model.
    pub model: ModelId,
    /// The prompt's token ids.
    pub prompt: Vec<u32>,
    /// Sampling (the seed is derived from `job_id` and `client_seed`).
    pub sampling: SamplingParams,
    /// The token limit.
    pub max_tokens: u32,
    /// Stop strings.
    pub stop: Vec<String>,
    /// 32 random bytes of the client's.
    pub client_seed: B256,
    /// keccak256 of the client's audit secret (zero when it audits every job).
    pub audit_commit: B256,
    /// Wei per prompt token and per output token.
    pub prices: (U256, U256),
    /// Unix seconds by which the job must be done (0: none).
    pub deadline: u64,
}

impl RequestSpec {
    /// The request, and the sampling parameters the provider must run it with.
    pub fn request(&self, client: Address) -> (JobRequest, SamplingParams) {
        let mut r = JobRequest {
            jobId: self.job_id,
            client,
            provider: self.provider,
            modelId: B256::from(*self.model.as_bytes()),
            promptTokensHash: tokens_hash(&self.prompt),
            nPrompt: self.prompt.len() as u32,
            temperature: 0,
            topK: 0,
            topP: 0,
            minP: 0,
            repeatPenalty: 0,
            repeatLastN: 0,
            maxTokens: self.max_tokens,
            stopHash: stop_hash(&self.stop),
            clientSeed: self.client_seed,
            auditCommit: self.audit_commit,
            priceIn: self.prices.0,
            priceOut: self.prices.1,
            deadline: self.deadline,
        };
        r.set_sampling(&self.sampling);
        let sampling = r.sampling();
        (r, sampling)
    }
}

/// The provider's clock readings for a receipt, in Unix milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Times {
    /// When it accepted the job.
    pub accept: u64,
    /// When the first token was ready.
    pub first: u64,
    /// When the job was done.
    pub done: u64,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The receipt's finish reason for an engine's end and commitments.
pub fn finish_of(reason: FinishReason, c: &Commitments) -> Finish {
    match reason {
        _ if c.eog => Finish::Eos,
        FinishReason::Stop => Finish::Stop,
        FinishReason::Length => Finish::Length,
    }
}

/// The provider's receipt for `request`, from the engine's commitments.
pub fn receipt(
    request: &JobRequest,
    domain: &Domain,
    provider: Address,
    c: &Commitments,
    finish: Finish,
    times: Times,
) -> Receipt {
    Receipt {
        requestDigest: crate::messages::digest(request, domain),
        jobId: request.jobId,
        provider,
        modelId: request.modelId,
        engineProfile: engine_profile(),
        seed: derive_seed(request.clientSeed),
        promptTokensHash: tokens_hash(&c.prompt),
        nPrompt: c.prompt.len() as u32,
        outputTokensHash: tokens_hash(&c.output),
        nOut: c.output.len() as u32,
        finishReason: finish as u8,
        commitRoot: merkle_root(&c.chunks),
        nChunks: c.chunks.len() as u32,
        tAccept: times.accept,
        tFirst: times.first,
        tDone: times.done,
    }
}

/// A signed bundle of one job: the client signs the request, the provider the receipt.
#[allow(clippy::too_many_arguments)]
pub fn assemble(
    domain: Domain,
    request: JobRequest,
    request_signature: [u8; 65],
    stop: Vec<String>,
    receipt: Receipt,
    provider: &Identity,
    c: Commitments,
) -> Bundle {
    let receipt_signature = sign(&receipt, &domain, provider);
    Bundle {
        version: VERSION,
        domain,
        request,
        request_signature: Bytes::copy_from_slice(&request_signature),
        stop,
        receipt,
        receipt_signature: Bytes::copy_from_slice(&receipt_signature),
        prompt_tokens: c.prompt,
        output_tokens: c.output,
        chunks: c.chunks.into_iter().map(B256::from).collect(),
    }
}

/// The address of a node key, as alloy's type.
pub fn address_of(key: &Identity) -> Address {
    Address::from(key.address_bytes())
}
