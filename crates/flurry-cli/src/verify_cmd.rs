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
    /// A job bundle whose receipt contradicts its request, or the first of two bundles
    /// for one request.
    pub(crate) file: PathBuf,
    /// The second bundle of an equivocation: the same request, another result.
    pub(crate) other: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) key: crate::chain_cmd::KeyArgs,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `flurry market dispute`: submits signature-only evidence to the ProviderRegistry.
pub(crate) fn dispute(ctx: &Setup, a: DisputeArgs) -> Result<ExitCode> {
    use alloy::sol_types::SolValue;
    use flurry_chain::bindings::ProviderRegistry;

    let read = |p: &Path| Bundle::read(p).map_err(|e| anyhow::anyhow!("{e}"));
    let first = read(&a.file)?;
    let second = a.other.as_deref().map(read).transpose()?;
    let rt = crate::chain_cmd::runtime()?;
    rt.block_on(async {
        let (chain, _) = crate::chain_cmd::connect_with_key(ctx, &a.key).await?;
        let domain = Domain {
            chain_id: chain.chain_id(),
            verifying_contract: chain.registry_address()?,
        };
        for b in std::iter::once(&first).chain(second.as_ref()) {
            if b.domain != domain {
                anyhow::bail!(
                    "the bundle is signed for chain {} and registry {}, this node's chain is {} with registry {}: it can only be disputed there",
                    b.domain.chain_id,
                    b.domain.verifying_contract,
                    domain.chain_id,
                    domain.verifying_contract
                );
            }
        }
        let receipt = |b: &Bundle| -> Result<ProviderRegistry::Receipt> {
            Ok(ProviderRegistry::Receipt::abi_decode(&b.receipt.abi_encode())?)
        };
        let (fault, tx) = match &second {
            Some(b) => {
                let tx = chain
                    .slash_equivocation(
                        (&receipt(&first)?, &first.receipt_signature),
                        (&receipt(b)?, &b.receipt_signature),
                    )
                    .await
                    .context("the registry refused the equivocation (NotEquivocation: not two results for one request; BadSignature: not both signed by the provider)")?;
                ("equivocation", tx)
            }
            None => {
                let request = ProviderRegistry::JobRequest::abi_decode(&first.request.abi_encode())?;
                let tx = chain
                    .slash_inconsistent(&request, &receipt(&first)?, &first.receipt_signature)
                    .await
                    .context("the registry refused (NotInconsistent: the receipt agrees with its request, so the fault, if any, needs re-execution: `flurry verify` says what it is)")?;
                ("inconsistent", tx)
            }
        };
        let provider = first.receipt.provider;
        if a.json {
            println!(
                "{}",
                serde_json::json!({"slashed": provider, "fault": fault, "job_id": first.receipt.jobId, "tx": tx.hash})
            );
        } else {
            println!(
                "Slashed {provider} for {fault} on job {} (transaction {}).",
                first.receipt.jobId, tx.hash
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The job bundle a challenger says is false.
    pub(crate) file: PathBuf,
    /// Who gets the challenger's share if the fault is confirmed (default: all burned).
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
/// bundle; when the provider's signed receipt does not hold, slashes its stake (this
/// node's key must be the registry's arbiter: in local mode, the deployer).
pub(crate) fn validate(ctx: &Setup, a: ValidateArgs) -> Result<ExitCode> {
    let bundle = Bundle::read(&a.file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let challenger: alloy::primitives::Address = match &a.challenger {
        Some(c) => c
            .parse()
            .with_context(|| format!("--challenger {c} is not an Ethereum address"))?,
        None => Default::default(),
    };
    let fault = match check_signed(&bundle) {
        Err(f) if !f.provider_fault() => anyhow::bail!(
            "the evidence itself does not hold, so it proves nothing against the provider: {f}"
        ),
        Err(f) => Some(f),
        Ok(()) => {
            let model_id = ModelId::from_bytes(bundle.request.modelId.0);
            let entry = ctx
                .store()
                .list()?
                .into_iter()
                .find(|e| e.model_id == model_id)
                .with_context(|| {
                    format!("model {model_id} is not in the store: a validator must hold the model the job claims (`flurry model import FILE`)")
                })?;
            let model = Model::load(&entry.path)?;
            let threads = a.threads.unwrap_or(ctx.config.engine.threads).max(1);
            match audit(&bundle, &model, model_id, threads) {
                Err(f) if !f.provider_fault() => anyhow::bail!("cannot validate: {f}"),
                Err(f) => Some(f),
                Ok(()) => None,
            }
        }
    };
    let Some(fault) = fault else {
        if a.json {
            println!("{}", serde_json::json!({"fault": false, "slashed": false}));
        } else {
            println!("The job holds: every commitment and token reproduces. Nothing slashed.");
        }
        return Ok(ExitCode::SUCCESS);
    };
    let provider = bundle.receipt.provider;
    let rt = crate::chain_cmd::runtime()?;
    let tx = rt.block_on(async {
        let (chain, _) = crate::chain_cmd::connect_with_key(ctx, &a.key).await?;
        let domain = Domain {
            chain_id: chain.chain_id(),
            verifying_contract: chain.registry_address()?,
        };
        if bundle.domain != domain {
            anyhow::bail!(
                "the receipt is signed for chain {} and registry {}, not this node's chain ({} with registry {})",
                bundle.domain.chain_id,
                bundle.domain.verifying_contract,
                domain.chain_id,
                domain.verifying_contract
            );
        }
        let arbiter = chain.arbiter().await?;
        if arbiter != chain.address() {
            anyhow::bail!(
                "fault confirmed ({fault}), but only the registry's arbiter {arbiter} can slash for a compute fault; this node is {}",
                chain.address()
            );
        }
        let stake = chain.stake_of(provider).await?;
        if stake.is_zero() {
            anyhow::bail!("fault confirmed ({fault}), but {provider} has no stake left to slash");
        }
        Ok(chain.slash(provider, stake, challenger).await?)
    })?;
    if a.json {
        let mut v = serde_json::to_value(&fault)?;
        v["fault"] = serde_json::json!(true);
        v["slashed"] = serde_json::json!(provider);
        v["tx"] = serde_json::json!(tx.hash);
        println!("{v}");
    } else {
        println!(
            "Fault confirmed: {fault}. Slashed {provider} (transaction {}).",
            tx.hash
        );
    }
    Ok(ExitCode::from(1))
}
