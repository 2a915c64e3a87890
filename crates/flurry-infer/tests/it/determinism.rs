//! Bit-identical logits across thread counts, and between processing a sequence as
//! one batch or one token at a time (the basis of verifiable inference).

use flurry_infer::model::{Model, Scratch};

use crate::common::{GEMMA3, SMOLLM2, model_path, pool};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check(file: &str) {
    let model = Model::load(&model_path(file)).unwrap();
    let tokens: Vec<u32> = model.tokenizer().encode(
        "Determinism matters for verification: 1, 2, 3.",
        true,
        false,
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
