//! Commitments to a generation's computation, for verification (`docs/verification.md`).
//!
//! A job's positions are split into chunks of [`CHUNK`] tokens: the prompt's chunks,
//! then the output's. Each chunk is committed to by one BLAKE3 hash over its token ids
//! and the final-norm hidden rows (the output head's input) that go with them:
//!
//! - a **prompt** token goes with the row computed at its own position;
//! - an **output** token goes with the row whose logits it was sampled from (the row of
//!   the position before it), so that a verifier checks both the forward pass and the
//!   sampling from the same rows.
//!
//! `h = BLAKE3-derive-key("flurry chunk commitment v1", salt ‖ idx u32 LE ‖ n u8 ‖
//! (token u32 LE ‖ row as n_embd f32 LE) for each of the n positions)`, where `idx` has
//! bit 31 set for an output chunk and `salt` is the job's id. The engine's rows are
//! bit-identical across threads, batching and SIMD paths (`docs/determinism.md`), so
//! an honest re-execution gives the same hashes; any other model, quantisation, prompt
//! or token gives other rows.
//!
//! [`recompute`] is the auditor's side: one prefill over prompt and output, the same
//! hashes, and every sampled token drawn again from the seed.

use crate::model::{BatchItem, Logits, Model, Scratch};
use crate::sampler::{Sampler, SamplingParams};
use crate::{Error, Result};

/// Tokens per chunk.
pub const CHUNK: usize = 32;

/// The key-derivation context of a chunk hash.
const CONTEXT: &str = "flurry chunk commitment v1";

/// Bit 31 of a chunk index: an output chunk.
pub const OUTPUT_BIT: u32 = 1 << 31;

/// Hashes a job's chunks as its positions arrive.
#[derive(Debug, Clone)]
pub struct ChunkHasher {
    salt: [u8; 32],
    prompt_left: usize,
    idx: u32,
    n: usize,
    tokens: Vec<u32>,
    rows: Vec<u8>,
    chunks: Vec<[u8; 32]>,
}

impl ChunkHasher {
    /// A hasher for a job with `salt` (its id) and a prompt of `n_prompt` tokens.
    pub fn new(salt: [u8; 32], n_prompt: usize) -> Self {
        Self {
            salt,
            prompt_left: n_prompt,
            idx: 0,
            n: 0,
            tokens: Vec::with_capacity(CHUNK),
            rows: Vec::new(),
            chunks: Vec::new(),
        }
    }

    /// Adds prompt tokens and their own rows (`row.len()` = tokens × `n_embd`).
    pub fn push_prompt(&mut self, tokens: &[u32], rows: &[f32]) {
        let e = rows.len() / tokens.len().max(1);
        for (t, r) in tokens.iter().zip(rows.chunks_exact(e.max(1))) {
            self.push(*t, r);
            self.prompt_left = self.prompt_left.saturating_sub(1);
            if self.prompt_left == 0 {
                self.close();
                self.idx = OUTPUT_BIT;
            }
        }
    }

    /// Adds an output token and the row it was sampled from.
    pub fn push_output(&mut self, token: u32, row: &[f32]) {
        self.push(token, row);
    }

    fn push(&mut self, token: u32, row: &[f32]) {
        self.tokens.push(token);
        self.rows.extend_from_slice(&token.to_le_bytes());
        for v in row {
            self.rows.extend_from_slice(&v.to_le_bytes());
        }
        self.n += 1;
        if self.n == CHUNK {
            self.close();
        }
    }

    fn close(&mut self) {
        if self.n == 0 {
            return;
        }
        let mut h = blake3::Hasher::new_derive_key(CONTEXT);
        h.update(&self.salt);
        h.update(&self.idx.to_le_bytes());
        h.update(&[self.n as u8]);
        h.update(&self.rows);
        self.chunks.push(*h.finalize().as_bytes());
        self.idx += 1;
        self.n = 0;
        self.tokens.clear();
        self.rows.clear();
    }

    /// The chunk hashes, prompt chunks first; closes the last partial chunk.
    pub fn finish(mut self) -> Vec<[u8; 32]> {
        self.close();
        self.chunks
    }
}

/// A job's commitments as the engine made them ([`crate::engine::Event::Commitments`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitments {
    /// The prompt's token ids, as the engine ran them.
    pub prompt: Vec<u32>,
    /// Every sampled token, including a final end-of-generation token when generation
    /// ended on one (`eog`).
    pub output: Vec<u32>,
    /// Whether the last output token is an end-of-generation token.
    pub eog: bool,
    /// The chunk hashes: `ceil(prompt/32)` prompt chunks, then `ceil(output/32)`.
    pub chunks: Vec<[u8; 32]>,
}

/// What an audit found by running a job again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recomputed {
    /// The chunk hashes of the claimed tokens under this model.
    pub chunks: Vec<[u8; 32]>,
    /// The first output position whose claimed token is not the seeded sampler's
    /// choice, with the token the sampler chose.
    pub first_wrong_token: Option<(usize, u32)>,
}

/// Prefill rows per pass of [`recompute`], at most.
const PASS: usize = 256;

/// Logits per pass of [`recompute`], at most (64 MiB).
const PASS_FLOATS: usize = 16 << 20;

/// Runs `prompt ‖ output` through `model` once (output tokens but the last are fed;
/// the last is only checked), recomputes the chunk hashes and draws every output token
/// again from `sampling` (seeded) and the recomputed logits.
///
/// # Errors
/// A sequence longer than the model's context, or a token outside its vocabulary.
pub fn recompute(
    model: &Model,
    salt: [u8; 32],
    prompt: &[u32],
    output: &[u32],
    sampling: &SamplingParams,
    pool: &rayon::ThreadPool,
) -> Result<Recomputed> {
    if prompt.is_empty() {
        return Err(Error::InvalidRequest("the prompt is empty".into()));
    }
    let n_vocab = model.hparams().n_vocab;
    let e = model.hparams().n_embd;
    let total = prompt.len() + output.len().saturating_sub(1);
    let mut cache = model.new_cache(total.max(1));
    let mut scratch = Scratch::default();
    let mut hasher = ChunkHasher::new(salt, prompt.len());
    let mut sampler = Sampler::new(sampling.clone());
    for &t in prompt {
        sampler.accept(t);
    }
    let mut first_wrong = None;
    // The sequence that is fed: the prompt, then every output token but the last.
    let fed: Vec<u32> = prompt
        .iter()
        .chain(&output[..output.len().saturating_sub(1)])
        .copied()
        .collect();
    // Logits rows of a pass are bounded to about 64 MiB (Gemma's vocabulary is 262,144).
    let pass = (PASS_FLOATS / n_vocab).clamp(8, PASS);
    // Logits are needed from the last prompt row on (each samples the next token); the
    // rows before it only need their hidden states, in passes that skip the output head.
    let want_from = prompt.len() - 1;
    let mut pos = 0;
    while pos < fed.len() {
        let (end, logits_mode) = if pos < want_from {
            ((pos + PASS).min(want_from), Logits::None)
        } else {
            ((pos + pass).min(fed.len()), Logits::All)
        };
        let tokens = &fed[pos..end];
        let (logits, hidden) = model.forward_batch_hidden(
            &mut [BatchItem {
                cache: &mut cache,
                tokens,
                logits: logits_mode,
            }],
            &mut scratch,
            pool,
        )?;
        for (i, &tok) in tokens.iter().enumerate() {
            let p = pos + i;
            let row = &hidden[i * e..(i + 1) * e];
            if p < prompt.len() {
                hasher.push_prompt(&[tok], row);
            }
            if p >= want_from {
                // This row samples output token `p - want_from`.
                let j = p - want_from;
                let Some(&claimed) = output.get(j) else {
                    continue;
                };
                let l = &logits[i * n_vocab..(i + 1) * n_vocab];
                let chosen = sampler.sample(l);
                if chosen != claimed && first_wrong.is_none() {
                    first_wrong = Some((j, chosen));
                }
                sampler.accept(claimed);
                hasher.push_output(claimed, row);
            }
        }
        pos = end;
    }
    Ok(Recomputed {
        chunks: hasher.finish(),
        first_wrong_token: first_wrong,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows(n: usize, e: usize) -> Vec<f32> {
        (0..n * e).map(|i| (i as f32).sin()).collect()
    }

    proptest! {
        /// The hashes do not depend on how positions arrive: the engine feeds prompt
        /// chunks of its own size (and batches), an audit feeds passes of another.
        #[test]
        fn chunk_hashes_do_not_depend_on_how_the_prompt_is_fed(
            n_prompt in 1usize..100,
            n_out in 0usize..70,
            cuts in proptest::collection::vec(1usize..40, 1..8),
        ) {
            let e = 4;
            let tokens: Vec<u32> = (0..n_prompt as u32).collect();
            let r = rows(n_prompt + n_out, e);
            let whole = {
                let mut h = ChunkHasher::new([1; 32], n_prompt);
                h.push_prompt(&tokens, &r[..n_prompt * e]);
                for j in 0..n_out {
                    h.push_output(1000 + j as u32, &r[(n_prompt + j) * e..(n_prompt + j + 1) * e]);
                }
                h.finish()
            };
            let mut h = ChunkHasher::new([1; 32], n_prompt);
            let (mut at, mut k) = (0, 0);
            while at < n_prompt {
                let end = (at + cuts[k % cuts.len()]).min(n_prompt);
                h.push_prompt(&tokens[at..end], &r[at * e..end * e]);
                at = end;
                k += 1;
            }
            for j in 0..n_out {
                h.push_output(1000 + j as u32, &r[(n_prompt + j) * e..(n_prompt + j + 1) * e]);
            }
            let pieces = h.finish();
            prop_assert_eq!(pieces.len(), n_prompt.div_ceil(CHUNK) + n_out.div_ceil(CHUNK));
            prop_assert_eq!(whole, pieces);
        }
    }

    #[test]
    fn salt_index_tokens_and_rows_each_change_the_hash() {
        let e = 4;
        let base = |salt: [u8; 32], tok: u32, bump: f32| {
            let mut r = rows(2, e);
            r[5] += bump;
            let mut h = ChunkHasher::new(salt, 1);
            h.push_prompt(&[7], &r[..e]);
            h.push_output(tok, &r[e..]);
            h.finish()
        };
        let a = base([1; 32], 9, 0.0);
        assert_eq!(a.len(), 2);
        assert_ne!(a, base([2; 32], 9, 0.0), "another job");
        assert_ne!(a[1], base([1; 32], 10, 0.0)[1], "another token");
        // One ulp in one hidden value of the output row.
        let ulp = f32::from_bits(rows(2, e)[5].to_bits() + 1) - rows(2, e)[5];
        assert_ne!(a[1], base([1; 32], 9, ulp)[1], "another hidden state");
        // A prompt chunk and an output chunk with the same contents differ by index.
        let mut p = ChunkHasher::new([1; 32], 1);
        p.push_prompt(&[7], &rows(1, e));
        let mut o = ChunkHasher::new([1; 32], 0);
        o.idx = OUTPUT_BIT;
        o.push_output(7, &rows(1, e));
        assert_ne!(p.finish(), o.finish());
    }
}
