//! Flurry's private memory: the node's own documents, encrypted at rest, searchable by
//! keywords (BM25) and meaning (MiniLM embeddings), fused by reciprocal rank.
//!
//! - [`MemoryStore`]: one SQLCipher database (key derived from the node key) holding
//!   documents, chunks, an FTS5 index and the chunks' vectors; `forget` removes all of a
//!   document's traces.
//! - [`ingest()`]: walks paths (honouring `.gitignore`), extracts text (text, Markdown,
//!   HTML, PDF, `.eml`, `.mbox`), chunks it,
//!   embeds it and commits one document at a time.
//! - [`Extractor`]: runs the format readers on a file's bytes in a child process with
//!   memory, CPU and time limits (the `flurry __extract` worker, [`worker_main`]), so a
//!   hostile PDF or mail costs one file's error, never the node.

mod extract;
mod ingest;
mod sandbox;
mod store;

pub use extract::{
    Extracted, MAX_FILE_BYTES, MAX_MBOX_BYTES, MAX_MESSAGE_BYTES, MAX_MESSAGES, MAX_PDF_BYTES,
    MAX_PDF_INFLATED_BYTES, MAX_TEXT_BYTES, MAX_TOTAL_TEXT_BYTES, extract, html_to_text, kind_of,
    max_file_bytes,
};
pub use ingest::{Embed, Summary, chunk, ingest, ingest_with, walk};
pub use sandbox::{Extractor, Limits, WORKER_SUBCOMMAND, worker_main};
pub use store::{
    DocumentInfo, Filters, Hit, MemoryKey, MemoryStore, NewChunk, NewDocument, SearchMode,
    StoredChunk,
};

use std::path::PathBuf;

/// Errors of the memory store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error("memory database {}: {source}", path.display())]
    Db {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The key does not open the database.
    #[error(
        "memory database {} does not open with this node's key (it belongs to another key, or is not a memory database): move it aside to start a new memory",
        .0.display()
    )]
    WrongKey(PathBuf),
    /// A file or directory could not be used.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The embedding model failed.
    #[error("embedding model: {0}")]
    Embed(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
