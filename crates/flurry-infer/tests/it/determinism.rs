//! Bit-identical logits across thread counts, and between processing a sequence as
//! one batch or one token at a time (the basis of verifiable inference).

use flurry_infer::model::{BatchItem, Logits, Model, Scratch};

use crate::common::{GEMMA3, SMOLLM2, model_path, pool};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A hash of the bits of each `n`-logit row (the full rows of a long prompt would take
/// hundreds of MB for Gemma 3's vocabulary).
fn row_hashes(v: &[f32], n: usize) -> Vec<u64> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    v.chunks_exact(n)
        .map(|r| {
            let mut h = DefaultHasher::new();
            bits(r).hash(&mut h);
            h.finish()
        })
        .collect()
}

/// A prompt of more than 96 tokens: from 32 rows per thread on (`quant::SPLIT_ACT_ROWS`),
/// prefill hands runs of rows through each layer's row-wise steps to the threads as
/// separate tasks, so with 2 and 3 threads that path is compared too, with a shorter
/// last run.
const LONG_PROMPT: &str = "Determinism matters for verification: 1, 2, 3. The same request \
    must give the same logits whatever the thread count or the batch. A client that \
    checks a provider's work runs the same model on the same input and compares the \
    results, so every output element has to be computed in one fixed order. Threads may \
    split the rows of a prompt between them, and a batch may mix prompts with decode \
    steps, but neither may change a single bit of what any request gets back.";

fn check(file: &str) {
    let model = Model::load(&model_path(file)).unwrap();
    // Also longer than the 16 rows from which prefill runs its row-wise steps on the pool
    // and the packed GEMM unpacks weight rows per tile.
    let tokens: Vec<u32> = model.tokenizer().encode(LONG_PROMPT, true, false);
    assert!(
        tokens.len() > 96 && tokens.len() < 160,
        "{file}: prompt of {} tokens",
        tokens.len()
    );
    let n_vocab = model.hparams().n_vocab;
    let mut scratch = Scratch::default();
    let mut all = Vec::new();
    for threads in [1, 2, 3] {
        let p = pool(threads);
        let mut cache = model.new_cache(192);
        let batch = model
            .forward(&mut cache, &tokens, true, &mut scratch, &p)
            .unwrap();
        let batch = row_hashes(batch, n_vocab);
        let next = model
            .forward(&mut cache, &[42], false, &mut scratch, &p)
            .unwrap()
            .to_vec();
        all.push((batch, bits(&next)));
    }
    assert!(
        all.windows(2).all(|w| w[0] == w[1]),
        "{file}: logits differ between 1, 2 and 3 threads"
    );

    // One token at a time gives the same logits as the batch, bit for bit.
    let p = pool(2);
    let mut cache = model.new_cache(192);
    for (i, &t) in tokens.iter().enumerate() {
        let step = model
            .forward(&mut cache, &[t], false, &mut scratch, &p)
            .unwrap();
        assert_eq!(
            row_hashes(step, n_vocab)[0],
            all[0].0[i],
            "{file}: position {i} differs between batched and stepwise"
        );
    }
}

#[test]
fn smollm2_is_deterministic() {
    check(SMOLLM2);
}

#[test]
fn gemma3_is_deterministic() {
    check(GEMMA3);
}

/// Several sequences in one batched pass give each exactly the logits it gets alone.
fn check_batch(file: &str) {
    let model = Model::load(&model_path(file)).unwrap();
    let tok = model.tokenizer();
    // With the long prompt the batched pass has more than 64 rows, so at 2 threads its
    // runs of rows mix a decode row and two prompts.
    let prompts = ["The capital of France is", "1, 2, 3, 4,", LONG_PROMPT];
    let p = pool(2);
    let mut scratch = Scratch::default();
    // Alone: prefill each prompt, then one decode step with token 42.
    let mut alone = Vec::new();
    for pr in prompts {
        let ids = tok.encode(pr, true, false);
        let mut cache = model.new_cache(192);
        let a = model
            .forward(&mut cache, &ids, false, &mut scratch, &p)
            .unwrap()
            .to_vec();
        let b = model
            .forward(&mut cache, &[42], false, &mut scratch, &p)
            .unwrap()
            .to_vec();
        alone.push((ids, a, b));
    }
    // Batched: the first sequence decodes while the others prefill, then all decode.
    let mut caches: Vec<_> = prompts.iter().map(|_| model.new_cache(192)).collect();
    let n_vocab = model.hparams().n_vocab;
    {
        let (c0, rest) = caches.split_first_mut().unwrap();
        model
            .forward(c0, &alone[0].0, false, &mut scratch, &p)
            .unwrap();
        let mut items: Vec<BatchItem<'_>> = vec![BatchItem {
            cache: c0,
            tokens: &[42],
            logits: Logits::Last,
        }];
        for (c, (ids, _, _)) in rest.iter_mut().zip(&alone[1..]) {
            items.push(BatchItem {
                cache: c,
                tokens: ids,
                logits: Logits::Last,
            });
        }
        let out = model.forward_batch(&mut items, &mut scratch, &p).unwrap();
        assert_eq!(
            bits(&out[..n_vocab]),
            bits(&alone[0].2),
            "{file}: decode row changed by batching"
        );
        for i in 1..3 {
            assert_eq!(
                bits(&out[i * n_vocab..(i + 1) * n_vocab]),
                bits(&alone[i].1),
                "{file}: prefill {i} changed by batching"
            );
        }
    }
    let mut items: Vec<BatchItem<'_>> = caches[1..]
        .iter_mut()
        .map(|c| BatchItem {
            cache: c,
            tokens: &[42],
            logits: Logits::Last,
        })
        .collect();
    let out = model.forward_batch(&mut items, &mut scratch, &p).unwrap();
    for i in 0..2 {
        assert_eq!(
            bits(&out[i * n_vocab..(i + 1) * n_vocab]),
            bits(&alone[i + 1].2),
            "{file}: decode {i} changed by batching"
        );
    }
}

#[test]
fn smollm2_batching_is_invisible() {
    check_batch(SMOLLM2);
}

#[test]
fn gemma3_batching_is_invisible() {
    check_batch(GEMMA3);
}
