//! `flurry verify`: checks a job bundle, down to re-running the job; and the bundle
//! writer behind `flurry ask --receipt`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use flurry_infer::engine::{Engine, GenerateRequest};
use flurry_infer::model::Model;
use flurry_infer::sampler::SamplingParams;
use flurry_node::PassphraseOptions;
use flurry_primitives::ModelId;
use flurry_verify::bundle::{
    Bundle, RequestSpec, Times, address_of, assemble, finish_of, now_ms, receipt,
};
use flurry_verify::check::{Failure, audit, check_signed};
use flurry_verify::messages::{Domain, sign};

use crate::Setup;

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The job bundle (from `flurry ask --receipt`, or a market job).
    pub(crate) file: PathBuf,
    /// Print one JSON object: `{"ok": true, …}` or `{"ok": false, "check": …, "kind": …}`.
    #[arg(long)]
    pub(crate) json: bool,
    /// Only the checks that need no model (signatures, hashes, counts): no re-execution.
    #[arg(long)]
    pub(crate) no_audit: bool,
    /// Threads for the re-execution (default: the engine's setting).
    #[arg(long, short = 't')]
    pub(crate) threads: Option<usize>,
}

/// Exit codes: 0 the bundle holds, 1 it does not, 2 it could not be checked.
pub(crate) fn run(ctx: &Setup, a: VerifyArgs) -> Result<ExitCode> {
    let bundle = match Bundle::read(&a.file) {
        Ok(b) => b,
        Err(e) => return cannot(&a, "bundle", &e.to_string()),
    };
    if let Err(f) = check_signed(&bundle) {
        return failed(&a, &f);
    }
    if a.no_audit {
        return held(&a, &bundle, None);
    }
    let model_id = ModelId::from_bytes(bundle.request.modelId.0);
    let entry = match ctx
        .store()
        .list()
        .map(|all| all.into_iter().find(|e| e.model_id == model_id))
    {
        Ok(Some(e)) => e,
        Ok(None) => {
            return cannot(
                &a,
                "model",
                &format!(
                    "model {model_id} is not in the store ({}): import the model the job claims with `flurry model import FILE`, then verify again (or use --no-audit)",
                    ctx.paths.models.display()
                ),
            );
        }
        Err(e) => return cannot(&a, "model", &e.to_string()),
    };
    let model = Model::load(&entry.path).with_context(|| format!("cannot load {}", entry.name))?;
    let threads = a.threads.unwrap_or(ctx.config.engine.threads).max(1);
    let t0 = Instant::now();
    if let Err(f) = audit(&bundle, &model, model_id, threads) {
        return failed(&a, &f);
    }
    held(
        &a,
        &bundle,
        Some((entry.name, t0.elapsed().as_secs_f64() * 1000.0)),
    )
}

fn held(a: &VerifyArgs, b: &Bundle, audited: Option<(String, f64)>) -> Result<ExitCode> {
    let r = &b.receipt;
    if a.json {
        let mut out = serde_json::json!({
            "ok": true,
            "job_id": r.jobId,
            "provider": r.provider,
            "client": b.request.client,
            "model_id": r.modelId,
            "prompt_tokens": r.nPrompt,
            "output_tokens": r.nOut,
            "chunks": r.nChunks,
            "audited": audited.is_some(),
        });
        if let Some((name, ms)) = &audited {
            out["model"] = serde_json::json!(name);
            out["audit_ms"] = serde_json::json!(ms);
        }
        println!("{out}");
    } else {
        println!(
            "ok: job {} by {} for {}: signatures, hashes and {} chunk commitments hold",
            r.jobId, r.provider, b.request.client, r.nChunks
        );
        match audited {
            Some((name, ms)) => println!(
                "re-executed with {name} ({} prompt + {} output tokens) in {ms:.0} ms: every hidden state and every sampled token matches",
                r.nPrompt, r.nOut
            ),
            None => println!("not re-executed (--no-audit)"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn failed(a: &VerifyArgs, f: &Failure) -> Result<ExitCode> {
    if a.json {
        let mut v = serde_json::to_value(f)?;
        v["ok"] = serde_json::json!(false);
        println!("{v}");
    } else {
        println!("FAILED: {f}");
    }
    Ok(ExitCode::from(1))
}

fn cannot(a: &VerifyArgs, check: &str, why: &str) -> Result<ExitCode> {
    if a.json {
        println!(
            "{}",
            serde_json::json!({"ok": false, "check": check, "kind": "cannot_check", "detail": why})
        );
    } else {
        eprintln!("error: cannot verify: {why}");
    }
    Ok(ExitCode::from(2))
}

/// Runs `req` on the local engine as a job this node both asks for and serves, and
/// writes its signed bundle to `path`. Returns the answer's text.
pub(crate) fn ask_with_receipt(
    ctx: &Setup,
    engine: &Engine,
    model_id: ModelId,
    req: GenerateRequest,
    sampling: &SamplingParams,
    path: &Path,
) -> Result<String> {
    let key = flurry_node::unlock(&ctx.paths, &PassphraseOptions::from_env(None))
        .context("a receipt is signed with the node key")?;
    let prompt = engine.tokenize(&req.prompt)?;
    let me = address_of(&key);
    let spec = RequestSpec {
        job_id: random32()?.into(),
        provider: me,
        model: model_id,
        prompt: prompt.clone(),
        sampling: sampling.clone(),
        max_tokens: req.max_tokens.try_into().unwrap_or(u32::MAX),
        stop: req.stop.clone(),
        client_seed: random32()?.into(),
        audit_commit: Default::default(),
        prices: Default::default(),
        deadline: 0,
    };
    let domain = chain_domain(ctx, &key);
    let (request, sampling) = spec.request(me);
    let request_sig = sign(&request, &domain, &key);
    let accept = now_ms();
    let req = GenerateRequest {
        prompt: flurry_infer::engine::Prompt::Tokens(prompt),
        sampling,
        ..req
    }
    .with_commit(request.jobId.0);
    let c = engine.generate(req)?;
    let done = now_ms();
    let commitments = c
        .commitments
        .context("the engine returned no commitments")?;
    let finish = finish_of(c.finish_reason, &commitments);
    let times = Times {
        accept,
        first: accept + (c.timings.queue_ms + c.timings.prefill_ms) as u64,
        done,
    };
    let rc = receipt(&request, &domain, me, &commitments, finish, times);
    let bundle = assemble(
        domain,
        request,
        request_sig,
        spec.stop,
        rc,
        &key,
        commitments,
    );
    bundle.write(path)?;
    Ok(c.text)
}

/// The domain receipts are signed under: the configured chain and its ProviderRegistry
/// when they answer within 3 s (so the receipt can be disputed there), else chain id 0
/// and no contract (a job that never meets a chain).
fn chain_domain(ctx: &Setup, key: &flurry_identity::Identity) -> Domain {
    let none = Domain {
        chain_id: 0,
        verifying_contract: Default::default(),
    };
    if ctx.config.chain.mode == flurry_config::ChainMode::Off {
        return none;
    }
    let Ok(rt) = crate::chain_cmd::runtime() else {
        return none;
    };
    rt.block_on(async {
        let connect = flurry_node::chain::connect(&ctx.paths, &ctx.config.chain, key);
        match tokio::time::timeout(std::time::Duration::from_secs(3), connect).await {
            Ok(Ok(chain)) => match chain.registry_address() {
                Ok(registry) => Domain {
                    chain_id: chain.chain_id(),
                    verifying_contract: registry,
                },
                Err(_) => none,
            },
            _ => none,
        }
    })
}

fn random32() -> Result<[u8; 32]> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(b)
}

#[derive(Debug, Args)]
pub(crate) struct DisputeArgs {
    /// A job bundle whose receipt contradicts its request, or whose computation does not
    /// reproduce (a failed audit: `flurry market audits`); or the first of two bundles
    /// for one request.
    pub(crate) file: PathBuf,
    /// The second bundle of an equivocation: the same request, another result.
    pub(crate) other: Option<PathBuf>,
    /// Threads for the re-execution that checks a compute fault first (default: the
    /// engine's setting).
    #[arg(long, short = 't')]
    pub(crate) threads: Option<usize>,
    #[command(flatten)]
    pub(crate) key: crate::chain_cmd::KeyArgs,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The fault in `bundle`, if any: a provider-signed one found by the checks that need no
/// model, else by re-running the job with the model from the store.
fn fault_of(ctx: &Setup, bundle: &Bundle, threads: Option<usize>) -> Result<Option<Failure>> {
    match check_signed(bundle) {
        Err(f) if !f.provider_fault() => anyhow::bail!(
            "the evidence itself does not hold, so it proves nothing against the provider: {f}"
        ),
        Err(f) => Ok(Some(f)),
        Ok(()) => {
            let model_id = ModelId::from_bytes(bundle.request.modelId.0);
            let entry = ctx
                .store()
                .list()?
                .into_iter()
                .find(|e| e.model_id == model_id)
                .with_context(|| {
                    format!("model {model_id} is not in the store: the job can only be re-run with the model it claims (`flurry model import FILE`)")
                })?;
            let model = Model::load(&entry.path)?;
            let threads = threads.unwrap_or(ctx.config.engine.threads).max(1);
            match audit(bundle, &model, model_id, threads) {
                Err(f) if !f.provider_fault() => anyhow::bail!("cannot re-run the job: {f}"),
                Err(f) => Ok(Some(f)),
                Ok(()) => Ok(None),
            }
        }
    }
}

/// Reads a bundle and the keccak256 of its bytes (the evidence hash a dispute records).
fn read_evidence(path: &Path) -> Result<(Bundle, alloy::primitives::B256)> {
    let bundle = Bundle::read(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((bundle, alloy::primitives::keccak256(&bytes)))
}

fn check_domain(b: &Bundle, chain: &flurry_chain::Chain) -> Result<()> {
    let domain = Domain {
        chain_id: chain.chain_id(),
        verifying_contract: chain.registry_address()?,
    };
    if b.domain != domain {
        anyhow::bail!(
            "the bundle is signed for chain {} and registry {}, this node's chain is {} with registry {}: it can only be disputed there",
            b.domain.chain_id,
            b.domain.verifying_contract,
            domain.chain_id,
            domain.verifying_contract
        );
    }
    Ok(())
}

/// `flurry market dispute`: slashes on signature-only evidence, or opens a dispute for a
/// compute fault (after re-running the job here) for the arbiter to decide.
pub(crate) fn dispute(ctx: &Setup, a: DisputeArgs) -> Result<ExitCode> {
    use alloy::sol_types::SolValue;
    use flurry_chain::bindings::ProviderRegistry;

    let (first, evidence) = read_evidence(&a.file)?;
    let second = a
        .other
        .as_deref()
        .map(|p| Bundle::read(p).map_err(|e| anyhow::anyhow!("{e}")))
        .transpose()?;
    // A compute fault is checked here before the bond is put up.
    let fault = match &second {
        Some(_) => None,
        None => match fault_of(ctx, &first, a.threads)? {
            Some(f) => Some(f),
            None => anyhow::bail!(
                "the job holds: every commitment and token reproduces here, so a dispute would lose its bond"
            ),
        },
    };
    let rt = crate::chain_cmd::runtime()?;
    rt.block_on(async {
        let (chain, _) = crate::chain_cmd::connect_with_key(ctx, &a.key).await?;
        for b in std::iter::once(&first).chain(second.as_ref()) {
            check_domain(b, &chain)?;
        }
        let receipt = |b: &Bundle| -> Result<ProviderRegistry::Receipt> {
            Ok(ProviderRegistry::Receipt::abi_decode(&b.receipt.abi_encode())?)
        };
        let provider = first.receipt.provider;
        let job = first.receipt.jobId;
        let (what, tx, id) = match (&second, &fault) {
            (Some(b), _) => {
                let tx = chain
                    .slash_equivocation(
                        (&receipt(&first)?, &first.receipt_signature),
                        (&receipt(b)?, &b.receipt_signature),
                    )
                    .await
                    .context("the registry refused the equivocation (NotEquivocation: not two results for one request; BadSignature: not both signed by the provider)")?;
                ("equivocation", tx, None)
            }
            (None, Some(f)) if f.check != "chunk" && f.check != "token" => {
                let request = ProviderRegistry::JobRequest::abi_decode(&first.request.abi_encode())?;
                let tx = chain
                    .slash_inconsistent(&request, &receipt(&first)?, &first.receipt_signature)
                    .await
                    .context("the registry refused (NotInconsistent: the receipt agrees with its request as far as the chain can tell)")?;
                ("inconsistent", tx, None)
            }
            (None, _) => {
                let (tx, id) = chain
                    .open_dispute(&receipt(&first)?, &first.receipt_signature, evidence)
                    .await
                    .context("the registry refused the dispute (WrongBond, BadSignature: not the provider's receipt, AlreadySlashed: this job was slashed for already)")?;
                ("compute", tx, Some(id))
            }
        };
        if a.json {
            let mut v = serde_json::json!({"fault": what, "provider": provider, "job_id": job, "tx": tx.hash});
            match id {
                Some(id) => {
                    v["dispute"] = serde_json::json!(id.to_string());
                    v["evidence"] = serde_json::json!(evidence);
                    v["failure"] = serde_json::to_value(fault.as_ref())?;
                }
                None => v["slashed"] = serde_json::json!(provider),
            }
            println!("{v}");
        } else if let Some(id) = id {
            let f = fault.as_ref().map(ToString::to_string).unwrap_or_default();
            println!(
                "Opened dispute {id} against {provider} for job {job} ({f}); transaction {}.\nThe registry's arbiter decides it: give it {} and have it run `flurry validate {} --dispute {id}` (a confirmed fault slashes the provider and returns your bond).",
                tx.hash,
                a.file.display(),
                a.file.display()
            );
        } else {
            println!(
                "Slashed {provider} for {what} on job {job} (transaction {}).",
                tx.hash
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The job bundle a challenger says is false.
    pub(crate) file: PathBuf,
    /// Decide this dispute opened on chain (`flurry market dispute`): the bundle must be
    /// its evidence; the verdict is sent to the registry.
    #[arg(long, value_name = "ID")]
    pub(crate) dispute: Option<String>,
    /// Without `--dispute`: who gets the challenger's share if the fault is confirmed
    /// (default: all burned).
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) challenger: Option<String>,
    /// Threads for the re-execution (default: the engine's setting).
    #[arg(long, short = 't')]
    pub(crate) threads: Option<usize>,
    #[command(flatten)]
    pub(crate) key: crate::chain_cmd::KeyArgs,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `flurry validate`: the arbiter's side of a compute fault. Re-runs the job in the
/// bundle and, with `--dispute`, sends the verdict on that dispute to the registry;
/// without it, slashes the provider directly when its signed receipt does not hold.
/// This node's key must be the registry's arbiter (in local mode, the deployer).
/// Exit 1 when a fault is confirmed.
pub(crate) fn validate(ctx: &Setup, a: ValidateArgs) -> Result<ExitCode> {
    let (bundle, evidence) = read_evidence(&a.file)?;
    let challenger: alloy::primitives::Address = match &a.challenger {
        Some(c) => c
            .parse()
            .with_context(|| format!("--challenger {c} is not an Ethereum address"))?,
        None => Default::default(),
    };
    let dispute: Option<alloy::primitives::U256> = a
        .dispute
        .as_deref()
        .map(|d| {
            d.parse()
                .with_context(|| format!("--dispute {d} is not a dispute id"))
        })
        .transpose()?;
    let provider = bundle.receipt.provider;
    let rt = crate::chain_cmd::runtime()?;
    // The dispute is checked against the evidence before the job is re-run.
    let chain = rt.block_on(async {
        let (chain, _) = crate::chain_cmd::connect_with_key(ctx, &a.key).await?;
        check_domain(&bundle, &chain)?;
        let arbiter = chain.arbiter().await?;
        if arbiter != chain.address() {
            anyhow::bail!(
                "only the registry's arbiter {arbiter} can decide a compute fault; this node is {}",
                chain.address()
            );
        }
        if let Some(id) = dispute {
            let d = chain.dispute(id).await?;
            if d.state != 1 {
                anyhow::bail!(
                    "dispute {id} is not open ({})",
                    match d.state {
                        0 => "no such dispute",
                        2 => "decided: fault",
                        _ => "decided: no fault",
                    }
                );
            }
            if d.evidence != evidence || d.provider != provider || d.job_id != bundle.receipt.jobId
            {
                anyhow::bail!(
                    "{} is not the evidence of dispute {id} (its hash, provider or job differ)",
                    a.file.display()
                );
            }
        }
        Ok(chain)
    })?;
    let fault = fault_of(ctx, &bundle, a.threads)?;
    let tx = rt.block_on(async {
        match (dispute, &fault) {
            (Some(id), f) => Ok(Some(chain.resolve_dispute(id, f.is_some()).await?)),
            (None, None) => Ok(None),
            (None, Some(f)) => {
                let stake = chain.stake_of(provider).await?;
                if stake.is_zero() {
                    anyhow::bail!(
                        "fault confirmed ({f}), but {provider} has no stake left to slash"
                    );
                }
                Ok(Some(chain.slash(provider, stake, challenger).await?))
            }
        }
    })?;
    let Some(fault) = fault else {
        if a.json {
            let mut v = serde_json::json!({"fault": false, "slashed": false});
            if let (Some(id), Some(tx)) = (dispute, &tx) {
                v["dispute"] = serde_json::json!(id.to_string());
                v["tx"] = serde_json::json!(tx.hash);
            }
            println!("{v}");
        } else if dispute.is_some() {
            println!(
                "The job holds: every commitment and token reproduces. The dispute is rejected; its bond is burned."
            );
        } else {
            println!("The job holds: every commitment and token reproduces. Nothing slashed.");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let tx = tx.map(|t| t.hash).unwrap_or_default();
    if a.json {
        let mut v = serde_json::to_value(&fault)?;
        v["fault"] = serde_json::json!(true);
        v["slashed"] = serde_json::json!(provider);
        v["tx"] = serde_json::json!(tx);
        if let Some(id) = dispute {
            v["dispute"] = serde_json::json!(id.to_string());
        }
        println!("{v}");
    } else {
        println!("Fault confirmed: {fault}. Slashed {provider} (transaction {tx}).");
    }
    Ok(ExitCode::from(1))
}
