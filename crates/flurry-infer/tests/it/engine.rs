//! The engine thread: seeded reproducibility, interleaved requests, cancellation,
//! stop strings, limits and back-pressure, on the real default model.

use std::sync::Arc;
use std::time::Duration;

use flurry_infer::Error;
use flurry_infer::engine::{Engine, EngineConfig, Event, FinishReason, GenerateRequest, Prompt};
use flurry_infer::model::Model;
use flurry_infer::sampler::SamplingParams;
use flurry_infer::template::ChatMessage;

use crate::common::{SMOLLM2, model_path};

fn engine(cfg: EngineConfig) -> Engine {
    let model = Arc::new(Model::load(&model_path(SMOLLM2)).unwrap());
    Engine::start(model, cfg).unwrap()
}

fn sampled(seed: u64) -> SamplingParams {
    SamplingParams {
        temperature: 0.9,
        seed,
        ..SamplingParams::default()
    }
}

#[test]
fn same_seed_same_tokens_different_seed_differs() {
    let e = engine(EngineConfig::default().with_threads(2));
    let req = |seed| {
        GenerateRequest::raw("Once upon a time")
            .with_sampling(sampled(seed))
            .with_max_tokens(24)
    };
    let a = e.generate(req(7)).unwrap();
    let b = e.generate(req(7)).unwrap();
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(a.text, b.text);
    let others: Vec<_> = (8..12)
        .map(|s| e.generate(req(s)).unwrap().tokens)
        .collect();
    assert!(
        others.iter().any(|t| *t != a.tokens),
        "seeds 8..12 all gave the tokens of seed 7"
    );
}

#[test]
fn concurrent_requests_equal_sequential_ones() {
    let e = engine(EngineConfig::default().with_threads(2).with_max_active(4));
    let prompts = [
        "The capital of France is",
        "1, 2, 3,",
        "def add(a, b):",
        "Water boils at",
    ];
    let req = |p: &str| {
        GenerateRequest::raw(p)
            .with_sampling(SamplingParams::greedy())
            .with_max_tokens(12)
    };
    let sequential: Vec<_> = prompts
        .iter()
        .map(|p| e.generate(req(p)).unwrap().tokens)
        .collect();
    let receivers: Vec<_> = prompts.iter().map(|p| e.submit(req(p)).unwrap()).collect();
    for (rx, want) in receivers.into_iter().zip(&sequential) {
        let got: Vec<u32> = rx
            .iter()
            .filter_map(|ev| match ev {
                Event::Token { id, .. } => Some(id),
                _ => None,
            })
            .collect();
        assert_eq!(&got, want);
    }
}

#[test]
fn dropping_the_receiver_cancels() {
    let e = engine(EngineConfig::default().with_threads(2).with_max_active(1));
    let rx = e
        .submit(
            GenerateRequest::raw("Tell me a long story.")
                .with_sampling(sampled(1))
                .with_max_tokens(2000),
        )
        .unwrap();
    let mut seen = 0;
    for ev in rx.iter() {
        if matches!(ev, Event::Token { .. }) {
            seen += 1;
            if seen == 3 {
                break;
            }
        }
    }
    drop(rx);
    // With one active slot, the next request can only run once the first is gone.
    let rx2 = e
        .submit(GenerateRequest::raw("Hi").with_max_tokens(4))
        .unwrap();
    let mut done = false;
    while let Ok(ev) = rx2.recv_timeout(Duration::from_secs(60)) {
        if let Event::Done { timings, .. } = ev {
            assert_eq!(timings.completion_tokens, 4);
            done = true;
            break;
        }
    }
    assert!(
        done,
        "the second request never finished: the first was not cancelled"
    );
}

#[test]
fn stop_strings_cut_the_text() {
    let e = engine(EngineConfig::default().with_threads(2));
    let base = GenerateRequest::raw("1, 2, 3, 4,")
        .with_sampling(SamplingParams::greedy())
        .with_max_tokens(20);
    let full = e.generate(base.clone()).unwrap();
    assert!(full.text.contains(" 7,"), "{:?}", full.text);
    let cut = e.generate(base.with_stop(vec![" 7,".into()])).unwrap();
    assert_eq!(cut.finish_reason, FinishReason::Stop);
    assert_eq!(cut.text, full.text[..full.text.find(" 7,").unwrap()]);
}

#[test]
fn max_tokens_and_chat_prompts() {
    let e = engine(EngineConfig::default().with_threads(2));
    let c = e
        .generate(
            GenerateRequest::chat(vec![ChatMessage::new(
                "user",
                "What is the capital of Germany?",
            )])
            .with_sampling(SamplingParams::greedy())
            .with_max_tokens(64),
        )
        .unwrap();
    assert_eq!(
        c.finish_reason,
        FinishReason::Stop,
        "the chat answer should end with <|im_end|>"
    );
    assert!(c.text.contains("Berlin"), "{:?}", c.text);
    let c = e
        .generate(GenerateRequest::raw("Count: 1, 2,").with_max_tokens(5))
        .unwrap();
    assert_eq!(
        (c.finish_reason, c.tokens.len(), c.timings.completion_tokens),
        (FinishReason::Length, 5, 5)
    );
}

#[test]
fn context_overflow_is_a_clear_error() {
    let e = engine(
        EngineConfig::default()
            .with_threads(1)
            .with_context_length(16),
    );
    let err = e
        .generate(GenerateRequest::raw("word ".repeat(40)))
        .unwrap_err();
    assert!(err.to_string().contains("context window is 16"), "{err}");
    // Generation that reaches the end of the context stops with Length.
    let c = e
        .generate(GenerateRequest::raw("Hi there").with_max_tokens(100))
        .unwrap();
    assert_eq!(c.finish_reason, FinishReason::Length);
    assert!(c.timings.prompt_tokens + c.tokens.len() <= 16);
}

#[test]
fn full_queue_refuses_and_accepted_requests_finish() {
    let e = engine(
        EngineConfig::default()
            .with_threads(1)
            .with_max_active(1)
            .with_queue_capacity(1),
    );
    let mut accepted = Vec::new();
    let mut refused = 0;
    for _ in 0..6 {
        match e.submit(GenerateRequest::raw("Hello").with_max_tokens(8)) {
            Ok(rx) => accepted.push(rx),
            Err(Error::QueueFull(1)) => refused += 1,
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(
        refused >= 3,
        "only {refused} of 6 refused with a queue of 1 and one active slot"
    );
    for rx in accepted {
        assert!(rx.iter().any(|ev| matches!(ev, Event::Done { .. })));
    }
    // A request with impossible token ids fails alone; the engine keeps serving.
    let bad = e.generate(GenerateRequest::new(Prompt::Tokens(vec![1, 999_999])));
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("outside the vocabulary")
    );
    assert!(
        e.generate(GenerateRequest::raw("Hello").with_max_tokens(2))
            .is_ok()
    );
    // Bad parameters are refused before queueing.
    let bad = GenerateRequest::raw("x").with_sampling(SamplingParams {
        top_p: 2.0,
        ..Default::default()
    });
    assert!(e.submit(bad).unwrap_err().to_string().contains("top_p"));
}

#[test]
fn stats_count_queued_and_active_and_return_to_zero() {
    let e = engine(
        EngineConfig::default()
            .with_threads(1)
            .with_max_active(1)
            .with_queue_capacity(4),
    );
    assert_eq!(e.stats(), flurry_infer::engine::EngineStats::default());
    let req = || GenerateRequest::raw("Once upon a time").with_max_tokens(64);
    let a = e.submit(req()).unwrap();
    let b = e.submit(req()).unwrap();
    // While the first runs, the second waits (one active at most).
    let first = a.recv().unwrap();
    assert!(matches!(first, Event::Token { .. } | Event::Prefill { .. }));
    let s = e.stats();
    assert_eq!(s.active, 1, "{s:?}");
    assert_eq!(s.queued, 1, "{s:?}");
    drop(a);
    drop(b);
    // Cancelled requests leave; the counters settle at zero.
    let mut settled = false;
    for _ in 0..200 {
        if e.stats() == flurry_infer::engine::EngineStats::default() {
            settled = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(settled, "stats stuck at {:?}", e.stats());
    // And after a request that runs to the end.
    let c = e
        .generate(GenerateRequest::raw("Hi").with_max_tokens(3))
        .unwrap();
    assert!(!c.tokens.is_empty());
    for _ in 0..200 {
        if e.stats().active == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(e.stats(), flurry_infer::engine::EngineStats::default());
}

/// Log-probabilities reported with each token are the model's own distribution: equal,
/// bit for bit, to a log-softmax of the logits of one teacher-forced pass over prompt
/// and answer, whatever the sampling settings; greedy picks the top alternative.
#[test]
fn logprobs_are_the_models_distribution() {
    use flurry_infer::logprob::{MAX_TOP_LOGPROBS, log_softmax_at};
    let model = Arc::new(Model::load(&model_path(SMOLLM2)).unwrap());
    let e = Engine::start(model.clone(), EngineConfig::default().with_threads(2)).unwrap();
    let prompt = model
        .tokenizer()
        .encode("The capital of France is", true, false);
    let run = |s: SamplingParams, top| {
        e.generate(
            GenerateRequest::new(Prompt::Tokens(prompt.clone()))
                .with_sampling(s)
                .with_max_tokens(12)
                .with_logprobs(top),
        )
        .unwrap()
    };
    let greedy = run(SamplingParams::greedy(), Some(5));
    assert_eq!(greedy.logprobs.len(), greedy.tokens.len());
    let mut all = prompt.clone();
    all.extend(&greedy.tokens);
    let mut cache = model.new_cache(all.len());
    let mut scratch = flurry_infer::model::Scratch::default();
    let pool = crate::common::pool(2);
    let logits = model
        .forward(&mut cache, &all, true, &mut scratch, &pool)
        .unwrap()
        .to_vec();
    let n_vocab = model.hparams().n_vocab;
    for (i, (&id, lp)) in greedy.tokens.iter().zip(&greedy.logprobs).enumerate() {
        let row = &logits[(prompt.len() - 1 + i) * n_vocab..][..n_vocab];
        assert_eq!(
            lp.logprob,
            log_softmax_at(row, id as usize) as f32,
            "token {i}"
        );
        assert_eq!(lp.bytes, model.tokenizer().token_bytes(id, true));
        assert_eq!(lp.top.len(), 5);
        assert_eq!(lp.top[0].id, id, "greedy takes the most likely token");
        assert_eq!(lp.top[0].logprob, lp.logprob);
        assert!(lp.top.windows(2).all(|w| w[0].logprob >= w[1].logprob));
        assert!(lp.logprob <= 0.0);
    }
    // Sampling settings do not change the figures of the same tokens.
    let hot = run(
        SamplingParams {
            temperature: 1.7,
            top_k: 3,
            seed: 1,
            ..SamplingParams::default()
        },
        Some(0),
    );
    let mut cache = model.new_cache(prompt.len() + hot.tokens.len());
    let mut seq = prompt.clone();
    seq.extend(&hot.tokens);
    let logits = model
        .forward(&mut cache, &seq, true, &mut scratch, &pool)
        .unwrap()
        .to_vec();
    for (i, (&id, lp)) in hot.tokens.iter().zip(&hot.logprobs).enumerate() {
        let row = &logits[(prompt.len() - 1 + i) * n_vocab..][..n_vocab];
        assert_eq!(lp.logprob, log_softmax_at(row, id as usize) as f32);
        assert!(lp.top.is_empty());
    }
    // Without the option nothing is computed; above the limit the request is refused.
    assert!(run(SamplingParams::greedy(), None).logprobs.is_empty());
    let over = e
        .submit(GenerateRequest::raw("x").with_logprobs(Some(MAX_TOP_LOGPROBS + 1)))
        .unwrap_err();
    assert!(matches!(over, Error::InvalidRequest(_)), "{over}");
}
