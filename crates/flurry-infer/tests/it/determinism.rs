//! Bit-identical logits across thread counts, and between processing a sequence as
//! one batch or one token at a time (the basis of verifiable inference).

use flurry_infer::model::{BatchItem, Logits, Model, Scratch};

use crate::common::{GEMMA3, SMOLLM2, model_path, pool};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check(file: &str) {
    let model = Model::load(&model_path(file)).unwrap();
    // Longer than the 16 rows from which prefill runs its row-wise steps on the pool
    // and the packed GEMM unpacks weight rows per tile, so those paths are compared too.
    let tokens: Vec<u32> = model.tokenizer().encode(
        "Determinism matters for verification: 1, 2, 3. The same request must give \
         the same logits whatever the thread count or the batch.",
        true,
        false,
    );
    assert!(
        tokens.len() > 20,
        "{file}: prompt of {} tokens",
        tokens.len()
    );
    let mut scratch = Scratch::default();
    let mut all = Vec::new();
    for threads in [1, 2, 3] {
        let p = pool(threads);
        let mut cache = model.new_cache(64);
        let batch = model
            .forward(&mut cache, &tokens, true, &mut scratch, &p)
            .unwrap()
            .to_vec();
        let next = model
            .forward(&mut cache, &[42], false, &mut scratch, &p)
            .unwrap()
            .to_vec();
        all.push((bits(&batch), bits(&next)));
    }
    assert!(
        all.windows(2).all(|w| w[0] == w[1]),
        "{file}: logits differ between 1, 2 and 3 threads"
    );

    // One token at a time gives the same logits as the batch, bit for bit.
    let n_vocab = model.hparams().n_vocab;
    let p = pool(2);
    let mut cache = model.new_cache(64);
    for (i, &t) in tokens.iter().enumerate() {
        let step = model
            .forward(&mut cache, &[t], false, &mut scratch, &p)
            .unwrap();
        assert_eq!(
            bits(step),
            all[0].0[i * n_vocab..(i + 1) * n_vocab],
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
    let prompts = [
        "The capital of France is",
        "1, 2, 3, 4,",
        "def fibonacci(n):",
    ];
    let p = pool(2);
    let mut scratch = Scratch::default();
    // Alone: prefill each prompt, then one decode step with token 42.
    let mut alone = Vec::new();
    for pr in prompts {
        let ids = tok.encode(pr, true, false);
        let mut cache = model.new_cache(64);
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
    let mut caches: Vec<_> = prompts.iter().map(|_| model.new_cache(64)).collect();
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
