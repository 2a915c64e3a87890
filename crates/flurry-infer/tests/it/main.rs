//! Integration tests of flurry-infer (real models from `make models`, llama.cpp fixtures).

mod common;
mod determinism;
mod engine;
mod gguf;
mod injection;
mod perplexity;
mod reference;
mod tokenizer;
