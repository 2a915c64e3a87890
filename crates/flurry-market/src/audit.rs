//! Receipts and audits of the jobs this node buys (`docs/verification.md`).
//!
//! A buyer that holds the model it buys tokenizes the prompt itself and signs a
//! [`JobRequest`]; the seller runs those tokens with the request's seed, commits to the
//! answer chunk by chunk and signs a receipt. Every such job is kept as a job bundle
//! (`market-receipts/JOB.json`) and checked at once without the model (signatures,
//! hashes, counts); a random sample is audited by running it again here: heavily while a
//! (seller, model) pair is on probation, rarely after. Whether a job is audited is drawn
//! from a secret the seller sees only as a commitment (`auditCommit`), so it cannot tell
//! which jobs are checked. A failed audit is evidence: the seller is never bought from
//! again, its reputation counts the failure, and the bundle can be disputed
//! (`flurry validate`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use flurry_chain::{B256, keccak256};
use flurry_infer::model::Model;
use flurry_infer::sampler::SamplingParams;
use flurry_net::InferRequest;
use flurry_primitives::ModelId;
use flurry_verify::bundle::Bundle;
use flurry_verify::check::{self, Failure};
use flurry_verify::messages::{Domain, JobRequest};
use serde::{Deserialize, Serialize};

/// Audits kept for `flurry market audits`.
pub const MAX_AUDIT_RECORDS: usize = 1000;

/// The models this node holds, for signing requests (the buyer tokenizes) and audits.
pub trait Models: Send + Sync {
    /// The model whose file has this id, loaded; `None` when this node does not hold it.
    /// May block (it may load the model).
    fn by_id(&self, model_id: &ModelId) -> Option<Arc<Model>>;
    /// Threads an audit runs on.
    fn threads(&self) -> usize;
}

/// How often bought jobs are audited (`[market]` in `flurry.toml`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AuditPolicy {
    /// The share of jobs audited once a (seller, model) pair is past probation.
    pub rate: f64,
    /// The share audited during probation.
    pub probation_rate: f64,
    /// Jobs a pair stays on probation (a failed audit starts it again).
    pub probation_jobs: u64,
}

impl Default for AuditPolicy {
    /// 45% of a pair's first 100 jobs, then 2.5% (`docs/verification.md`: a 10% cheater
    /// is caught within its first 100 jobs with 99% probability).
    fn default() -> Self {
        Self {
            rate: 0.025,
            probation_rate: 0.45,
            probation_jobs: 100,
        }
    }
}

/// One bought job's check, as `flurry market audits` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The job id (64 hex digits).
    pub job_id: String,
    /// The seller's peer id.
    pub provider: String,
    /// The ModelId it claimed.
    pub model_id: String,
    /// Unix seconds of the verdict.
    pub at: u64,
    /// `audit` (re-executed here), `signed` (tier 0 only: not drawn, or it failed
    /// before re-execution was needed), or `none` (the seller sent no receipt).
    pub level: String,
    /// The audit rate the draw used.
    pub rate: f64,
    /// `held`, `failed`, or `unchecked` (this node could not check it: the reason is in
    /// `detail`).
    pub verdict: String,
    /// What failed, where (for `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Found>,
    /// Why a job is `unchecked`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The job bundle: the evidence for `flurry validate` or `flurry verify`.
    pub bundle: String,
    /// How long the check took, milliseconds.
    pub ms: f64,
}

/// What a check found wrong: the check, the kind of fault, and where
/// ([`flurry_verify::check::Failure`], kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The check that failed (`chunk`, `token`, `seed`, …).
    pub check: String,
    /// What was wrong, in a word (`hidden_state_mismatch`, `not_sampled`, …).
    pub kind: String,
    /// The failing chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<usize>,
    /// The failing output position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// A sentence for people.
    pub detail: String,
}

impl From<&Failure> for Found {
    fn from(f: &Failure) -> Self {
        Self {
            check: f.check.into(),
            kind: f.kind.into(),
            chunk: f.chunk,
            position: f.position,
            detail: f.detail.clone(),
        }
    }
}

/// What the buyer prepared to sign for a job: its prompt tokens and sampling.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) domain: Domain,
    pub(crate) model_id: ModelId,
    pub(crate) prompt_tokens: Vec<u32>,
    pub(crate) sampling: SamplingParams,
    pub(crate) max_tokens: u32,
    pub(crate) stop: Vec<String>,
    pub(crate) client_seed: B256,
    pub(crate) audit_secret: B256,
}

impl Prepared {
    /// The request for one provider, signed by `key`.
    pub(crate) fn sign(
        &self,
        job_id: B256,
        provider: flurry_chain::Address,
        prices: (u128, u128),
        key: &flurry_identity::Identity,
    ) -> crate::job::SignedJob {
        let mut request = JobRequest {
            jobId: job_id,
            client: flurry_verify::bundle::address_of(key),
            provider,
            modelId: B256::from(*self.model_id.as_bytes()),
            promptTokensHash: flurry_verify::messages::tokens_hash(&self.prompt_tokens),
            nPrompt: u32::try_from(self.prompt_tokens.len()).unwrap_or(u32::MAX),
            maxTokens: self.max_tokens,
            stopHash: flurry_verify::messages::stop_hash(&self.stop),
            clientSeed: self.client_seed,
            auditCommit: keccak256(self.audit_secret),
            priceIn: flurry_chain::U256::from(prices.1),
            priceOut: flurry_chain::U256::from(prices.0),
            ..JobRequest::default()
        };
        request.set_sampling(&self.sampling);
        let signature = flurry_verify::messages::sign(&request, &self.domain, key);
        crate::job::SignedJob {
            domain: self.domain,
            request,
            signature: flurry_verify::Bytes::copy_from_slice(&signature),
            prompt_tokens: self.prompt_tokens.clone(),
            stop: self.stop.clone(),
        }
    }
}

/// The sampling a peer's request asks for: the engine's defaults with its temperature,
/// top-p and top-k (what `flurry_router::serve_peers` runs).
pub fn sampling_of(r: &InferRequest) -> SamplingParams {
    let mut s = SamplingParams::default();
    if let Some(t) = r.temperature {
        s.temperature = t;
    }
    if let Some(p) = r.top_p {
        s.top_p = p;
    }
    if let Some(k) = r.top_k {
        s.top_k = k as usize;
    }
    s
}

/// Whether the audit lottery picks a job: the first 8 bytes of
/// keccak256(secret ‖ receipt digest), as a fraction of 2^64, below `rate`.
pub fn drawn(secret: B256, receipt_digest: B256, rate: f64) -> bool {
    let mut buf = secret.to_vec();
    buf.extend_from_slice(receipt_digest.as_slice());
    let h = keccak256(&buf);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    (u64::from_be_bytes(b) as f64) < rate * 18_446_744_073_709_551_616.0
}

/// What this node knows of the sellers it audited.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Audits {
    records: VecDeque<AuditRecord>,
    /// Jobs with receipts per `provider/model_id` since its probation began.
    jobs: HashMap<String, u64>,
    #[serde(skip)]
    file: Option<PathBuf>,
}

impl Audits {
    /// Reads what `path` holds (a file that cannot be read is set aside, not lost).
    pub(crate) fn load(path: PathBuf) -> Self {
        let mut a = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice::<Self>(&b).unwrap_or_else(|e| {
                let aside = path.with_extension("json.broken");
                let _ = std::fs::rename(&path, &aside);
                tracing::warn!(
                    "{} is not a list of audits ({e}); moved to {}",
                    path.display(),
                    aside.display()
                );
                Self::default()
            }),
            Err(_) => Self::default(),
        };
        a.file = Some(path);
        a
    }

    /// The sellers a failed check convicted: never bought from again.
    pub(crate) fn distrusted(&self) -> HashSet<String> {
        self.records
            .iter()
            .filter(|r| r.verdict == "failed")
            .map(|r| r.provider.clone())
            .collect()
    }

    pub(crate) fn list(&self) -> Vec<AuditRecord> {
        self.records.iter().cloned().collect()
    }

    /// The audit rate for the next job of `provider` with `model_id`, counting it.
    pub(crate) fn next_rate(&mut self, provider: &str, model_id: &str, p: &AuditPolicy) -> f64 {
        if self.jobs.len() > 4 * MAX_AUDIT_RECORDS {
            self.jobs.clear();
        }
        let n = self
            .jobs
            .entry(format!("{provider}/{model_id}"))
            .or_insert(0);
        *n += 1;
        if *n <= p.probation_jobs {
            p.probation_rate
        } else {
            p.rate
        }
    }

    /// Keeps `r` (a failure starts the pair's probation again) and writes the file.
    pub(crate) fn push(&mut self, r: AuditRecord) {
        if r.verdict == "failed" {
            self.jobs.remove(&format!("{}/{}", r.provider, r.model_id));
        }
        if self.records.len() >= MAX_AUDIT_RECORDS {
            self.records.pop_front();
        }
        self.records.push_back(r);
        if let Some(path) = &self.file
            && let Err(e) = crate::save_json(path, self)
        {
            tracing::warn!("{e}: the audits will not survive a restart");
        }
    }
}

/// Checks a bought job's bundle: tier 0 and the text received against the committed
/// tokens always, then, when drawn at `rate` or when the text does not match, the audit
/// with the model. Blocking.
pub(crate) fn check(
    bundle: &Bundle,
    path: &Path,
    provider: &str,
    rate: f64,
    secret: B256,
    models: Option<&Arc<dyn Models>>,
    text: &str,
) -> AuditRecord {
    let started = std::time::Instant::now();
    let model_id = ModelId::from_bytes(bundle.request.modelId.0);
    let mut r = AuditRecord {
        job_id: hex::encode(bundle.request.jobId),
        provider: provider.to_string(),
        model_id: model_id.to_string(),
        at: crate::unix_now(),
        level: "signed".into(),
        rate,
        verdict: "held".into(),
        failure: None,
        detail: String::new(),
        bundle: path.display().to_string(),
        ms: 0.0,
    };
    // `fault`: the failure is the seller's. In tier 0 every failure but this node's own
    // signature is: the seller sent the receipt, tokens and chunks itself (a third
    // party, which cannot tell who assembled a bundle, blames only what the provider
    // signed: `Failure::provider_fault`).
    let fail = |r: &mut AuditRecord, f: &Failure, fault: bool| {
        if fault {
            r.verdict = "failed".into();
        } else {
            r.verdict = "unchecked".into();
            r.detail = f.to_string();
        }
        r.failure = Some(Found::from(f));
    };
    let model = models.and_then(|m| m.by_id(&model_id).map(|x| (x, m.threads())));
    let signed = check::check_signed(bundle);
    // The seller committed to one answer and sent another: that is against the seller
    // here, but the text is not signed, so the job is audited for evidence others can
    // check whatever the lottery says.
    let text = match (&signed, &model) {
        (Ok(()), Some((m, _))) => check::check_text(bundle, m, text).err(),
        _ => None,
    };
    if let Err(f) = signed {
        fail(&mut r, &f, f.check != "request_signature");
    } else if text.is_some()
        || drawn(
            secret,
            flurry_verify::messages::digest(&bundle.receipt, &bundle.domain),
            rate,
        )
    {
        r.level = "audit".into();
        match model {
            None => {
                r.verdict = "unchecked".into();
                r.detail = format!("model {model_id} is not held here any more");
            }
            Some((model, threads)) => match check::audit(bundle, &model, model_id, threads) {
                Err(f) => fail(&mut r, &f, f.provider_fault()),
                Ok(()) => {
                    if let Some(f) = &text {
                        fail(&mut r, f, true);
                    }
                }
            },
        }
    }
    r.ms = started.elapsed().as_secs_f64() * 1e3;
    r
}

/// The audits of a market, shared with its jobs.
pub(crate) type Shared = Arc<Mutex<Audits>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lottery_draws_at_its_rate_and_only_the_secret_decides() {
        let secret = B256::repeat_byte(7);
        let n = 20_000u32;
        let hits = (0..n)
            .filter(|i| {
                let d = keccak256(i.to_be_bytes());
                drawn(secret, d, 0.45)
            })
            .count();
        let share = hits as f64 / f64::from(n);
        assert!((share - 0.45).abs() < 0.02, "{share}");
        let d = B256::repeat_byte(1);
        assert!(drawn(secret, d, 1.0) && !drawn(secret, d, 0.0));
        // Another secret draws other jobs.
        let other = B256::repeat_byte(8);
        let differ = (0..200u32)
            .filter(|i| {
                let d = keccak256(i.to_be_bytes());
                drawn(secret, d, 0.5) != drawn(other, d, 0.5)
            })
            .count();
        assert!(differ > 50, "{differ}");
    }

    #[test]
    fn probation_rate_then_steady_rate_and_a_failure_restarts_probation() {
        let p = AuditPolicy {
            rate: 0.1,
            probation_rate: 0.9,
            probation_jobs: 2,
        };
        let mut a = Audits::default();
        assert_eq!(a.next_rate("s", "m", &p), 0.9);
        assert_eq!(a.next_rate("s", "m", &p), 0.9);
        assert_eq!(a.next_rate("s", "m", &p), 0.1);
        assert_eq!(a.next_rate("s", "other", &p), 0.9);
        assert!(a.distrusted().is_empty());
        a.push(AuditRecord {
            job_id: "j".into(),
            provider: "s".into(),
            model_id: "m".into(),
            at: 0,
            level: "audit".into(),
            rate: 0.1,
            verdict: "failed".into(),
            failure: None,
            detail: String::new(),
            bundle: String::new(),
            ms: 0.0,
        });
        assert_eq!(a.distrusted(), HashSet::from(["s".to_string()]));
        assert_eq!(a.next_rate("s", "m", &p), 0.9);
    }
}
