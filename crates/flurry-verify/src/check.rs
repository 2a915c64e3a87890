//! The checks of a job bundle: tier 0 (signatures and hashes, no model needed) and the
//! audit (one re-execution with the claimed model, bit for bit).

use alloy::primitives::B256;
use flurry_infer::commit::{CHUNK, recompute};
use flurry_infer::model::Model;
use flurry_primitives::ModelId;
use serde::Serialize;

use crate::bundle::Bundle;
use crate::messages::{
    Finish, check_signature, derive_seed, digest, engine_profile, merkle_root, n_chunks, stop_hash,
    tokens_hash,
};

/// Why a bundle does not hold: which check failed, of what kind, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The check: `request_signature`, `receipt_signature`, `provider`, `request_digest`,
    /// `model_id`, `seed`, `stop`, `prompt_tokens`, `output_tokens`, `max_tokens`,
    /// `finish_reason`, `commit_root`, `engine_profile`, `chunk` or `token`.
    pub check: &'static str,
    /// What was wrong, in a word (`mismatch`, `hidden_state_mismatch`, `not_sampled`, …).
    pub kind: &'static str,
    /// The failing chunk (prompt chunks first, then output chunks), for `chunk`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk: Option<usize>,
    /// The failing output position, for `token` and `finish_reason`; the first byte that
    /// differs, for `text`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// A sentence for people.
    pub detail: String,
}

impl Failure {
    fn new(check: &'static str, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            kind,
            chunk: None,
            position: None,
            detail: detail.into(),
        }
    }
}

impl Failure {
    /// Whether the failure is the provider's fault, given a bundle whose receipt the
    /// provider signed for this request: a receipt that contradicts the request, or a
    /// computation that does not reproduce. Broken evidence (a bad signature, tokens or
    /// chunks that are not those the receipt commits to) proves nothing against anyone.
    pub fn provider_fault(&self) -> bool {
        matches!(
            (self.check, self.kind),
            (
                "seed" | "max_tokens" | "finish_reason" | "chunk" | "token",
                _
            ) | ("model_id", "mismatch")
                | ("prompt_tokens", "receipt_mismatch")
                | ("output_tokens", "too_long")
        )
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} check failed ({})", self.check, self.kind)?;
        if let Some(c) = self.chunk {
            write!(f, " at chunk {c}")?;
        }
        if let Some(p) = self.position {
            write!(f, " at output token {p}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

type Check = std::result::Result<(), Failure>;

fn ensure(
    ok: bool,
    check: &'static str,
    kind: &'static str,
    detail: impl FnOnce() -> String,
) -> Check {
    if ok {
        Ok(())
    } else {
        Err(Failure::new(check, kind, detail()))
    }
}

/// Tier 0: everything that needs no model. Signatures (the client's on the request, the
/// provider's on the receipt), the receipt answering this very request, the seed's
/// derivation, every hash and count, the Merkle root of the chunks and the finish
/// reason as far as counts tell.
///
/// # Errors
/// The first [`Failure`].
pub fn check_signed(b: &Bundle) -> Check {
    let (rq, rc, d) = (&b.request, &b.receipt, &b.domain);
    check_signature(rq, d, &b.request_signature, rq.client)
        .map_err(|e| Failure::new("request_signature", "bad_signature", e.to_string()))?;
    check_signature(rc, d, &b.receipt_signature, rc.provider)
        .map_err(|e| Failure::new("receipt_signature", "bad_signature", e.to_string()))?;
    ensure(rc.provider == rq.provider, "provider", "mismatch", || {
        format!(
            "the receipt is {}'s, the request asked {}",
            rc.provider, rq.provider
        )
    })?;
    ensure(
        rc.requestDigest == digest(rq, d) && rc.jobId == rq.jobId,
        "request_digest",
        "mismatch",
        || "the receipt answers another request (a replayed or misplaced receipt)".into(),
    )?;
    ensure(rc.modelId == rq.modelId, "model_id", "mismatch", || {
        format!(
            "the receipt claims model {}, the request asked {}",
            rc.modelId, rq.modelId
        )
    })?;
    ensure(
        rc.seed == derive_seed(rq.clientSeed),
        "seed",
        "mismatch",
        || "the receipt's seed is not the one derived from the request".into(),
    )?;
    ensure(
        rq.stopHash == stop_hash(&b.stop),
        "stop",
        "mismatch",
        || "the stop strings are not those the request signed".into(),
    )?;
    let prompt_hash = tokens_hash(&b.prompt_tokens);
    let n_prompt = b.prompt_tokens.len();
    ensure(
        rq.promptTokensHash == prompt_hash && rq.nPrompt as usize == n_prompt,
        "prompt_tokens",
        "mismatch",
        || "the prompt tokens are not those the client signed".into(),
    )?;
    ensure(
        rc.promptTokensHash == prompt_hash && rc.nPrompt as usize == n_prompt,
        "prompt_tokens",
        "receipt_mismatch",
        || "the receipt's prompt is not the request's".into(),
    )?;
    let n_out = b.output_tokens.len();
    ensure(
        rc.outputTokensHash == tokens_hash(&b.output_tokens) && rc.nOut as usize == n_out,
        "output_tokens",
        "mismatch",
        || "the output tokens are not those the receipt signed".into(),
    )?;
    ensure(
        n_out <= rq.maxTokens as usize + 1,
        "max_tokens",
        "exceeded",
        || {
            format!(
                "{n_out} output tokens, the request allowed {}",
                rq.maxTokens
            )
        },
    )?;
    let finish = Finish::from_u8(rc.finishReason).ok_or_else(|| {
        Failure::new(
            "finish_reason",
            "unknown",
            format!("code {}", rc.finishReason),
        )
    })?;
    // An end-of-generation token is sampled after at most max_tokens others.
    let generated = n_out.saturating_sub(usize::from(finish == Finish::Eos));
    ensure(
        generated <= rq.maxTokens as usize,
        "max_tokens",
        "exceeded",
        || {
            format!(
                "{generated} output tokens, the request allowed {}",
                rq.maxTokens
            )
        },
    )?;
    match finish {
        Finish::Length => ensure(
            generated == rq.maxTokens as usize,
            "finish_reason",
            "false_length",
            || {
                format!(
                    "finish \"length\" after {generated} of {} tokens",
                    rq.maxTokens
                )
            },
        )?,
        Finish::Eos => ensure(n_out > 0, "finish_reason", "false_eos", || {
            "finish \"eos\" with no end-of-generation token".into()
        })?,
        Finish::Stop => ensure(
            !b.stop.is_empty() && n_out > 0,
            "finish_reason",
            "false_stop",
            || "finish \"stop\" but the request has no stop strings".into(),
        )?,
    }
    let chunks: Vec<[u8; 32]> = b.chunks.iter().map(|c| c.0).collect();
    ensure(
        chunks.len() == n_chunks(n_prompt, n_out)
            && rc.nChunks as usize == chunks.len()
            && rc.commitRoot == merkle_root(&chunks),
        "commit_root",
        "mismatch",
        || "the chunk commitments are not those the receipt's root commits to".into(),
    )?;
    Ok(())
}

/// The audit: runs the job again with `model` (whose file's BLAKE3 is `model_id`) on
/// `threads` threads, recomputes every chunk commitment and draws every output token
/// again from the seed; then the finish reason against the tokenizer and stop strings.
/// Whether `text`, the answer a client received, is what the bundle's output tokens
/// give: decoded and cut at a stop string exactly as the engine streams them. Only the
/// client can run this check (the text is not signed): a provider that commits to one
/// answer and sends another fails it.
///
/// # Errors
/// [`Failure`] `text`/`mismatch` with the first byte where they differ.
pub fn check_text(b: &Bundle, model: &Model, text: &str) -> Check {
    let want = flurry_infer::engine::answer_text(model.tokenizer(), &b.output_tokens, &b.stop);
    if want == text {
        return Ok(());
    }
    let at = want
        .bytes()
        .zip(text.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let mut f = Failure::new(
        "text",
        "mismatch",
        format!(
            "the answer received differs from the committed tokens at byte {at} ({} bytes received, {} committed)",
            text.len(),
            want.len()
        ),
    );
    f.position = Some(at);
    Err(f)
}

/// Call [`check_signed`] first.
///
/// # Errors
/// The first [`Failure`]: a chunk whose hidden rows differ, or a token the seeded
/// sampler would not have drawn.
pub fn audit(b: &Bundle, model: &Model, model_id: ModelId, threads: usize) -> Check {
    let (rq, rc) = (&b.request, &b.receipt);
    ensure(
        B256::from(*model_id.as_bytes()) == rq.modelId,
        "model_id",
        "not_this_model",
        || {
            format!(
                "the audit was given model {model_id}, the job claims {}",
                rq.modelId
            )
        },
    )?;
    ensure(
        rc.engineProfile == engine_profile(),
        "engine_profile",
        "unknown",
        || {
            format!(
                "the receipt's engine profile is not {} (only exact re-execution is supported)",
                flurry_infer::DETERMINISM_PROFILE
            )
        },
    )?;
    let n_ctx = model.hparams().n_ctx_train.max(1);
    ensure(
        b.prompt_tokens.len() + b.output_tokens.len() <= n_ctx,
        "output_tokens",
        "too_long",
        || format!("the job is longer than the model's context of {n_ctx}"),
    )?;
    let vocab = model.hparams().n_vocab;
    if let Some(p) = b.prompt_tokens.iter().position(|&t| t as usize >= vocab) {
        return Err(Failure::new(
            "prompt_tokens",
            "outside_vocabulary",
            format!("prompt token {p} is outside the model's vocabulary of {vocab}"),
        ));
    }
    // A token outside the claimed model's vocabulary proves another model; the chunks
    // before it are compared first, as the earliest evidence.
    let cut = b
        .output_tokens
        .iter()
        .position(|&t| t as usize >= vocab)
        .unwrap_or(b.output_tokens.len());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Failure::new("audit", "no_threads", e.to_string()))?;
    let salt = rq.jobId.0;
    let mut again = recompute(
        model,
        salt,
        &b.prompt_tokens,
        &b.output_tokens[..cut],
        &rq.sampling(),
        &pool,
    )
    .map_err(|e| Failure::new("audit", "cannot_run", e.to_string()))?;
    if cut < b.output_tokens.len() {
        // Only the output chunks wholly before the cut were recomputed in full.
        let whole = b.prompt_tokens.len().div_ceil(CHUNK) + cut / CHUNK;
        again.chunks.truncate(whole);
        again.first_wrong_token = None;
    }
    let n_prompt_chunks = b.prompt_tokens.len().div_ceil(CHUNK);
    if let Some(k) = again
        .chunks
        .iter()
        .zip(&b.chunks)
        .position(|(a, c)| a != &c.0)
    {
        let (part, local) = if k < n_prompt_chunks {
            ("prompt", k)
        } else {
            ("output", k - n_prompt_chunks)
        };
        return Err(Failure {
            chunk: Some(k),
            ..Failure::new(
                "chunk",
                "hidden_state_mismatch",
                format!(
                    "{part} chunk {local}: the claimed model on these tokens gives other hidden states"
                ),
            )
        });
    }
    if cut < b.output_tokens.len() {
        return Err(Failure {
            position: Some(cut),
            ..Failure::new(
                "token",
                "outside_vocabulary",
                format!("output token {cut} is outside the claimed model's vocabulary of {vocab}"),
            )
        });
    }
    if let Some((pos, expected)) = again.first_wrong_token {
        return Err(Failure {
            position: Some(pos),
            ..Failure::new(
                "token",
                "not_sampled",
                format!(
                    "the seeded sampler draws token {expected} there, not {}",
                    b.output_tokens[pos]
                ),
            )
        });
    }
    check_finish(b, model)
}

/// The finish reason against the tokenizer: only the last token may end generation,
/// and a stop string ends the output at its first occurrence.
fn check_finish(b: &Bundle, model: &Model) -> Check {
    let tok = model.tokenizer();
    let out = &b.output_tokens;
    let finish = Finish::from_u8(b.receipt.finishReason).unwrap_or(Finish::Length);
    let last_eog = out.last().is_some_and(|&t| tok.is_eog(t));
    let body = if finish == Finish::Eos {
        &out[..out.len().saturating_sub(1)]
    } else {
        &out[..]
    };
    if let Some(p) = body.iter().position(|&t| tok.is_eog(t)) {
        return Err(Failure {
            position: Some(p),
            ..Failure::new(
                "finish_reason",
                "went_on_after_eos",
                "generation continued after an end-of-generation token",
            )
        });
    }
    match finish {
        Finish::Eos => ensure(last_eog, "finish_reason", "false_eos", || {
            "finish \"eos\" but the last token does not end generation".into()
        }),
        Finish::Length => Ok(()),
        Finish::Stop => {
            let full = tok.decode(out, false);
            let before = tok.decode(&out[..out.len().saturating_sub(1)], false);
            let hit = |t: &str| b.stop.iter().any(|s| t.contains(s.as_str()));
            if !hit(&full) {
                return Err(Failure::new(
                    "finish_reason",
                    "false_stop",
                    "finish \"stop\" but no stop string appears",
                ));
            }
            ensure(!hit(&before), "finish_reason", "went_on_after_stop", || {
                "generation continued after a stop string".into()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Failure;

    #[test]
    fn only_faults_the_provider_signed_count_against_it() {
        let f = |check, kind| Failure::new(check, kind, "");
        for (check, kind) in [
            ("chunk", "hidden_state_mismatch"),
            ("token", "not_sampled"),
            ("token", "outside_vocabulary"),
            ("seed", "mismatch"),
            ("model_id", "mismatch"),
            ("prompt_tokens", "receipt_mismatch"),
            ("max_tokens", "exceeded"),
            ("finish_reason", "false_length"),
            ("output_tokens", "too_long"),
        ] {
            assert!(f(check, kind).provider_fault(), "{check}/{kind}");
        }
        // Broken evidence, or the verifier's own problem: nobody's fault on chain.
        for (check, kind) in [
            ("request_signature", "bad_signature"),
            ("receipt_signature", "bad_signature"),
            ("request_digest", "mismatch"),
            ("provider", "mismatch"),
            ("stop", "mismatch"),
            ("prompt_tokens", "mismatch"),
            ("prompt_tokens", "outside_vocabulary"),
            ("output_tokens", "mismatch"),
            ("commit_root", "mismatch"),
            ("model_id", "not_this_model"),
            ("engine_profile", "unknown"),
            ("audit", "cannot_run"),
        ] {
            assert!(!f(check, kind).provider_fault(), "{check}/{kind}");
        }
    }
}
