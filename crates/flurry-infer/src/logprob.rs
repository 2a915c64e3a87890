//! Log-probabilities of tokens under a logits row: the chosen token's and the most
//! likely alternatives (OpenAI's `logprobs` / `top_logprobs`), and the single-token
//! figure perplexity sums.
//!
//! They describe the model's own distribution: the raw logits, before temperature,
//! penalties and top-k/top-p/min-p filters, so the same request gives the same figures
//! whatever its sampling settings. Sums run in f64 over a max-shifted row.

use serde::Serialize;

/// The most alternatives a request may ask for (OpenAI's limit for `top_logprobs`).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// One alternative token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopLogprob {
    /// Token id.
    pub id: u32,
    /// The token's bytes (may be part of a UTF-8 sequence).
    pub bytes: Vec<u8>,
    /// Its natural-log probability.
    pub logprob: f32,
}

/// The log-probability of a generated token and of the most likely tokens at its step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenLogprobs {
    /// The generated token's bytes.
    pub bytes: Vec<u8>,
    /// Its natural-log probability.
    pub logprob: f32,
    /// The most likely tokens at this step, most likely first (ties: lower id first).
    pub top: Vec<TopLogprob>,
}

/// `ln(sum(exp(row - max)))` and `max`: `log softmax(row)[i] = row[i] - max - lse`.
fn shift(row: &[f32]) -> (f32, f64) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = row.iter().map(|&l| f64::from(l - max).exp()).sum();
    (max, sum.ln())
}

/// `log softmax(row)[target]`.
pub fn log_softmax_at(row: &[f32], target: usize) -> f64 {
    let (max, lse) = shift(row);
    f64::from(row[target] - max) - lse
}

/// The ids of the `k` largest entries of `row`, largest first (ties: lower id first),
/// in one pass with a `k`-slot insertion list (k is at most [`MAX_TOP_LOGPROBS`]).
pub fn top_k(row: &[f32], k: usize) -> Vec<u32> {
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return Vec::new();
    }
    for (i, &v) in row.iter().enumerate() {
        if best.len() == k && v <= best[k - 1].0 {
            continue;
        }
        let at = best.partition_point(|&(b, _)| b >= v);
        best.insert(at, (v, i as u32));
        best.truncate(k);
    }
    best.into_iter().map(|(_, i)| i).collect()
}

/// The log-probabilities of `chosen` and of the `k` most likely tokens of `row`;
/// `bytes(id)` renders a token.
pub fn token_logprobs(
    row: &[f32],
    chosen: u32,
    k: usize,
    bytes: impl Fn(u32) -> Vec<u8>,
) -> TokenLogprobs {
    let (max, lse) = shift(row);
    let lp = |i: u32| (f64::from(row[i as usize] - max) - lse) as f32;
    TokenLogprobs {
        bytes: bytes(chosen),
        logprob: lp(chosen),
        top: top_k(row, k.min(MAX_TOP_LOGPROBS))
            .into_iter()
            .map(|id| TopLogprob {
                id,
                bytes: bytes(id),
                logprob: lp(id),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_matches_the_definition() {
        let row = [1.0f32, 2.0, 3.0, -1.0];
        let z: f64 = row.iter().map(|&l| f64::from(l).exp()).sum();
        for (i, &l) in row.iter().enumerate() {
            let want = f64::from(l) - z.ln();
            assert!((log_softmax_at(&row, i) - want).abs() < 1e-12);
        }
    }

    #[test]
    fn top_k_is_ordered_and_breaks_ties_by_id() {
        let row = [0.5f32, 3.0, -2.0, 3.0, 1.0, f32::NEG_INFINITY];
        assert_eq!(top_k(&row, 3), vec![1, 3, 4]);
        assert_eq!(top_k(&row, 0), Vec::<u32>::new());
        assert_eq!(top_k(&row, 10), vec![1, 3, 4, 0, 2, 5]);
    }

    #[test]
    fn token_logprobs_sum_to_at_most_one() {
        let row: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 / 10.0).collect();
        let t = token_logprobs(&row, 7, 5, |i| i.to_le_bytes().to_vec());
        assert_eq!(t.top.len(), 5);
        assert_eq!(t.bytes, 7u32.to_le_bytes());
        assert!(t.top.windows(2).all(|w| w[0].logprob >= w[1].logprob));
        let mass: f64 = t.top.iter().map(|x| f64::from(x.logprob).exp()).sum();
        assert!(mass > 0.0 && mass < 1.0);
        assert!(t.logprob <= t.top[0].logprob);
        // A request for more than the limit gets the limit.
        assert_eq!(
            token_logprobs(&row, 0, 100, |_| vec![]).top.len(),
            MAX_TOP_LOGPROBS
        );
    }
}
