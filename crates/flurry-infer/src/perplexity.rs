//! Perplexity over a text, computed the way `llama-perplexity` computes it, so the two
//! engines' figures on the same GGUF and text can be compared directly.
//!
//! The method: the whole text is tokenized once (with BOS where the vocabulary asks for
//! it, special-token texts read as plain text) and cut into non-overlapping windows of
//! `ctx` tokens; the last partial window is dropped. Each window is run from an empty
//! cache with its first token replaced by BOS (when the vocabulary has one and adds it),
//! and only the second half of the window is scored: the logits at positions
//! `ctx/2 .. ctx-1` predict the tokens at `ctx/2+1 .. ctx`, so every scored token has at
//! least `ctx/2` tokens of context. The perplexity is `exp` of the mean negative
//! log-likelihood over all scored tokens; the uncertainty is the standard error of that
//! mean carried through `exp`, as llama.cpp reports it.
//!
//! Windows are run in slices of [`SLICE`] tokens (the first half without the output
//! head) so that the logits buffer stays small on a 262,144-token vocabulary; the
//! engine's logits do not depend on how a sequence is split into batches.

use crate::logprob::log_softmax_at;
use crate::model::{BatchItem, Logits, Model, Scratch};
use crate::{Error, Result};

/// Tokens per forward pass inside a window.
const SLICE: usize = 64;

/// The smallest window that leaves something to score.
pub const MIN_CTX: usize = 4;

/// The result of [`perplexity`].
#[derive(Debug, Clone, PartialEq)]
pub struct Perplexity {
    /// `exp(mean negative log-likelihood)` over every scored token.
    pub ppl: f64,
    /// Standard error of `ppl` (llama.cpp's `+/-`); 0 when fewer than two tokens were
    /// scored.
    pub ppl_stderr: f64,
    /// The window length.
    pub ctx: usize,
    /// Windows evaluated.
    pub chunks: usize,
    /// Tokens scored (`chunks * (ctx - 1 - ctx/2)`).
    pub scored: usize,
    /// The running perplexity after each window (llama.cpp's `[1]x,[2]y,…`).
    pub running: Vec<f64>,
}

/// How many windows of `ctx` a text of `n_tokens` tokens yields, at most `max_chunks`
/// when given: what [`perplexity`] will evaluate.
pub fn chunk_count(n_tokens: usize, ctx: usize, max_chunks: Option<usize>) -> usize {
    let n = n_tokens.checked_div(ctx).unwrap_or(0);
    max_chunks.map_or(n, |m| n.min(m))
}

/// Computes the perplexity of `tokens` (the text's ids from
/// `Tokenizer::encode(text, true, false)`) with windows of `ctx` tokens, at most
/// `max_chunks` of them. `progress(done, total, running_ppl)` is called after every
/// window.
///
/// Fails with [`Error::InvalidRequest`] when `ctx` is below [`MIN_CTX`] or above the
/// model's trained context, or when the text has fewer than `2 * ctx` tokens
/// (llama-perplexity's own minimum).
pub fn perplexity(
    model: &Model,
    tokens: &[u32],
    ctx: usize,
    max_chunks: Option<usize>,
    pool: &rayon::ThreadPool,
    mut progress: impl FnMut(usize, usize, f64),
) -> Result<Perplexity> {
    let n_ctx_train = model.hparams().n_ctx_train;
    if ctx < MIN_CTX || (n_ctx_train > 0 && ctx > n_ctx_train) {
        return Err(Error::InvalidRequest(format!(
            "a context of {ctx} tokens is not usable: choose between {MIN_CTX} and {n_ctx_train}"
        )));
    }
    if tokens.len() < 2 * ctx {
        return Err(Error::InvalidRequest(format!(
            "the text has {} tokens; a context of {ctx} needs at least {} (use a longer text or a smaller --ctx)",
            tokens.len(),
            2 * ctx
        )));
    }
    let chunks = chunk_count(tokens.len(), ctx, max_chunks);
    if chunks == 0 {
        return Err(Error::InvalidRequest(
            "no window to evaluate (--chunks is 0)".into(),
        ));
    }
    let tok = model.tokenizer();
    let bos = if tok.add_bos() { tok.bos() } else { None };
    let n_vocab = model.hparams().n_vocab;
    let first = ctx / 2;
    let mut scratch = Scratch::default();
    let mut window = Vec::with_capacity(ctx);
    let (mut nll, mut nll2, mut count) = (0f64, 0f64, 0usize);
    let mut running = Vec::with_capacity(chunks);
    for c in 0..chunks {
        window.clear();
        window.extend_from_slice(&tokens[c * ctx..(c + 1) * ctx]);
        if let Some(b) = bos {
            window[0] = b;
        }
        let mut cache = model.new_cache(ctx);
        let mut pos = 0;
        while pos < ctx {
            // Slices never straddle `first`: before it no logits are needed.
            let end = if pos < first {
                (pos + SLICE).min(first)
            } else {
                (pos + SLICE).min(ctx)
            };
            let logits = if pos < first {
                Logits::None
            } else {
                Logits::All
            };
            let out = model.forward_batch(
                &mut [BatchItem {
                    cache: &mut cache,
                    tokens: &window[pos..end],
                    logits,
                }],
                &mut scratch,
                pool,
            )?;
            if pos >= first {
                // Row `p` predicts the window's token `p + 1`; the last row predicts
                // past the window and is not scored.
                for (r, p) in (pos..end).enumerate() {
                    if p + 1 >= ctx {
                        break;
                    }
                    // The original token, not the BOS substituted at position 0 (which
                    // is never a target: p + 1 > first >= 2).
                    let target = tokens[c * ctx + p + 1] as usize;
                    let lp = log_softmax_at(&out[r * n_vocab..(r + 1) * n_vocab], target);
                    nll -= lp;
                    nll2 += lp * lp;
                    count += 1;
                }
            }
            pos = end;
        }
        let ppl = (nll / count as f64).exp();
        running.push(ppl);
        progress(c + 1, chunks, ppl);
    }
    let mean = nll / count as f64;
    let ppl = mean.exp();
    let var = nll2 / count as f64 - mean * mean;
    let ppl_stderr = if count > 1 && var > 0.0 {
        (var / (count - 1) as f64).sqrt() * ppl
    } else {
        0.0
    };
    Ok(Perplexity {
        ppl,
        ppl_stderr,
        ctx,
        chunks,
        scored: count,
        running,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_and_capped() {
        assert_eq!(chunk_count(1000, 128, None), 7);
        assert_eq!(chunk_count(1000, 128, Some(3)), 3);
        assert_eq!(chunk_count(100, 0, None), 0);
    }
}
