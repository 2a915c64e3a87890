//! Sentence embeddings with all-MiniLM-L6-v2, in plain Rust.
//!
//! [`Embedder::load`] reads a model directory holding `model.safetensors` (the BERT
//! weights, F32), `tokenizer.json` (BERT WordPiece) and optionally `config.json`
//! (hyperparameters; without it those of all-MiniLM-L6-v2 are assumed). Every tensor's
//! name, dtype, shape and byte range is checked while loading.
//!
//! [`Embedder::embed`] does what sentence-transformers does for this model: tokenize
//! with `[CLS]`/`[SEP]`, truncate to 256 tokens, run the 6-layer BERT encoder, take the
//! mean of the last hidden states over the tokens and L2-normalise it. The dense layers
//! of a batch run over the rows of all its texts at once (in parallel with rayon), but
//! every row is computed independently of the others, so a text gets bit-for-bit the
//! same vector alone or in any batch.
//!
//! ```no_run
//! # fn main() -> Result<(), flurry_embed::Error> {
//! use flurry_embed::Embedder;
//! let e = Embedder::load(std::path::Path::new("/models/all-MiniLM-L6-v2"))?;
//! let v = e.embed(&["A cat sits on the mat.", "Un chat est assis."])?;
//! assert_eq!(v[0].len(), e.dim());
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use rayon::prelude::*;

mod model;
mod safetensors;
mod tokenizer;
mod unicode_data;

pub use tokenizer::Tokenizer;

/// Parses `bytes` as a safetensors file and reads every F32 tensor in it; for the fuzz
/// target (`fuzz/fuzz_targets/safetensors.rs`): any input must give `Ok` or an error,
/// never a panic or an allocation beyond the input's size.
#[doc(hidden)]
pub fn fuzz_safetensors(bytes: &[u8]) -> Result<usize, Error> {
    safetensors::SafeTensors::parse(bytes.to_vec(), Path::new("fuzz.safetensors"))?.read_all_f32()
}

/// The directory name of the model in the model store (`$FLURRY_MODELS`, resolved by
/// `flurry-config`; this crate reads no environment variables).
pub const MODEL_DIR_NAME: &str = "all-MiniLM-L6-v2";

/// The maximum sequence length of sentence-transformers for all-MiniLM-L6-v2
/// (`max_seq_length`), `[CLS]` and `[SEP]` included.
pub const MAX_TOKENS: usize = 256;

/// The most tokens run through the encoder at once by [`Embedder::embed`] (bounds its
/// memory to a few tens of MB whatever the number of texts).
const BATCH_ROWS: usize = 2048;

/// Errors of loading a model or embedding texts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The safetensors file is malformed as a whole (size, header).
    #[error("{path}: malformed safetensors file: {msg}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// One tensor of the safetensors file is missing or malformed.
    #[error("{path}: tensor `{name}`: {msg}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// `tokenizer.json` is malformed or not a BERT WordPiece tokenizer.
    #[error("{path}: unsupported or malformed tokenizer.json: {msg}")]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// `config.json` is malformed or not a supported BERT configuration.
    #[error("{path}: unsupported or malformed config.json: {msg}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

/// A loaded sentence-embedding model: tokenizer and BERT encoder.
#[derive(Debug)]
pub struct Embedder {
    tokenizer: Tokenizer,
    bert: model::Bert,
    max_tokens: usize,
}

impl Embedder {
    /// Loads `tokenizer.json`, `config.json` (optional) and `model.safetensors` from
    /// `dir`.
    pub fn load(dir: &Path) -> Result<Embedder, Error> {
        let tokenizer = Tokenizer::from_file(&dir.join("tokenizer.json"))?;
        let config_path = dir.join("config.json");
        let cfg = match std::fs::read(&config_path) {
            Ok(bytes) => model::Config::from_json(&bytes, &config_path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => model::Config::default(),
            Err(source) => {
                return Err(Error::Io {
                    path: config_path,
                    source,
                });
            }
        };
        if let Some(max) = tokenizer.max_id()
            && max as usize >= cfg.vocab_size
        {
            return Err(Error::Tokenizer {
                path: dir.join("tokenizer.json"),
                msg: format!(
                    "token id {max} is outside the model's vocabulary of {}",
                    cfg.vocab_size
                ),
            });
        }
        let st_path = dir.join("model.safetensors");
        let bytes = std::fs::read(&st_path).map_err(|source| Error::Io {
            path: st_path.clone(),
            source,
        })?;
        let st = safetensors::SafeTensors::parse(bytes, &st_path)?;
        let max_tokens = MAX_TOKENS.min(cfg.max_positions).max(2);
        let bert = model::Bert::from_safetensors(&st, cfg)?;
        Ok(Embedder {
            tokenizer,
            bert,
            max_tokens,
        })
    }

    /// The dimension of the embeddings (384).
    pub fn dim(&self) -> usize {
        self.bert.cfg.hidden
    }

    /// The maximum number of tokens of one text, `[CLS]` and `[SEP]` included; longer
    /// texts are truncated.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The token ids the model sees for `text`: `[CLS]`, the WordPiece ids truncated
    /// to [`max_tokens`](Self::max_tokens) in all, `[SEP]`.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text, self.max_tokens)
    }

    /// Unit-norm embeddings of `texts`, in order. Batches are faster per text than
    /// single texts (the weights are read once per block of rows).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        let seqs: Vec<Vec<u32>> = texts.par_iter().map(|t| self.tokenize(t)).collect();
        // Bound the activations (rows x 1536 floats): consecutive texts are run together
        // up to BATCH_ROWS tokens. Rows are independent, so the grouping does not change
        // any vector.
        let mut out = Vec::with_capacity(seqs.len());
        let mut start = 0;
        while start < seqs.len() {
            let mut end = start;
            let mut rows = 0;
            while end < seqs.len() && (end == start || rows + seqs[end].len() <= BATCH_ROWS) {
                rows += seqs[end].len();
                end += 1;
            }
            out.extend(self.bert.embed_batch(&seqs[start..end]));
            start = end;
        }
        Ok(out)
    }

    /// The unit-norm embedding of one text.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, Error> {
        let mut v = self.bert.embed_batch(&[self.tokenize(text)]);
        Ok(v.pop().unwrap_or_default())
    }
}
