use std::path::PathBuf;

/// Errors of the inference engine. Messages say what went wrong and, where the user
/// can act, what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A GGUF file is malformed, truncated or unsupported.
    #[error("{}: {message}", path.display())]
    Gguf {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// I/O on a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The tokenizer metadata is missing or inconsistent.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template could not be compiled or rendered.
    #[error("chat template: {0}")]
    Template(String),
    /// The model's tensors or hyper-parameters do not fit its architecture.
    #[error("model: {0}")]
    Model(String),
    /// No model matches a name, id prefix or path.
    #[error(
        "no model matches {0:?}: run `flurry model list` to see installed models, or `make models` to fetch the defaults"
    )]
    ModelNotFound(String),
    /// More than one model matches an id prefix or name.
    #[error("{0:?} matches several models ({1}): use a longer ModelId prefix")]
    AmbiguousModel(String, String),
    /// The prompt does not fit in the context window.
    #[error(
        "prompt is {prompt} tokens but the context window is {context}: shorten the prompt or raise [engine] context_length"
    )]
    ContextOverflow {
        /// Prompt tokens.
        prompt: usize,
        /// Context window in tokens.
        context: usize,
    },
    /// The engine's request queue is full.
    #[error("the engine is busy ({0} requests queued): retry shortly")]
    QueueFull(usize),
    /// The engine thread has stopped.
    #[error("the engine has stopped")]
    EngineStopped,
    /// A request parameter is out of range.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
