//! Flurry's local LLM engine.
//!
//! - [`gguf`]: a validating GGUF reader (header, metadata, tensor table, bounds).
//! - [`quant`]: GGML block formats and the quantised matrix kernels.
//! - [`tokenizer`]: GPT-2 BPE and SentencePiece tokenizers built from GGUF metadata,
//!   matching llama.cpp token for token.
//! - [`template`]: chat templates from `tokenizer.chat_template` (Jinja, via minijinja).
//! - [`model`]: the transformer forward pass for the llama and gemma3 families.
//! - [`sampler`]: seeded, reproducible sampling.
//! - [`commit`]: per-chunk commitments to a generation, and their recomputation.
//! - [`engine`]: an engine thread with a bounded request queue and token streaming.
//! - [`store`]: the model store (`$FLURRY_MODELS`) and [`ModelId`](flurry_primitives::ModelId)s.
//!
//! ```no_run
//! use flurry_infer::{engine::{Engine, EngineConfig, GenerateRequest}, model::Model};
//! let model = Model::load("SmolLM2-135M-Instruct.Q4_1.gguf".as_ref()).unwrap();
//! let engine = Engine::start(model, EngineConfig::default()).unwrap();
//! let rx = engine.submit(GenerateRequest::raw("Hello")).unwrap();
//! for event in rx { /* tokens stream in */ let _ = event; }
//! ```
//!
//! No cargo features yet; everything runs on the CPU with kernels chosen at run time
//! from the CPU features present (AVX2 when available, portable code otherwise).

mod dtype;
mod error;
mod lockstep;

/// The determinism profile of this engine, announced in market offers: nodes with the
/// same profile and model produce bit-identical logits for the same tokens, whatever
/// their thread count, batching or SIMD path (`docs/determinism.md`).
pub const DETERMINISM_PROFILE: &str = "flurry-det-1";

pub mod commit;
pub mod engine;
pub mod gguf;
pub mod logprob;
pub mod model;
pub mod perplexity;
pub mod quant;
pub mod sampler;
pub mod store;
pub mod template;
pub mod tokenizer;

pub use dtype::GgmlType;
pub use error::{Error, Result};
