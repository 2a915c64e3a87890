//! Ingestion: walk paths (honouring `.gitignore`-style files), extract text, chunk,
//! embed, and store one document per transaction.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::extract::{Extracted, kind_of, max_file_bytes};
use crate::sandbox::Extractor;
use crate::store::{MemoryStore, NewChunk, NewDocument};
use crate::{Error, Result};

/// Chunks aim at this many tokens of the embedding model (which reads at most 256).
const CHUNK_TOKENS: usize = 200;

/// Computes embeddings and counts tokens; implemented for the MiniLM model and, in
/// tests, for small stand-ins.
pub trait Embed: Sync {
    /// Unit vectors for `texts`.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
    /// Tokens of `text` as the model counts them.
    fn count_tokens(&self, text: &str) -> usize;
}

impl Embed for flurry_embed::Embedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        flurry_embed::Embedder::embed(self, texts).map_err(|e| Error::Embed(e.to_string()))
    }

    fn count_tokens(&self, text: &str) -> usize {
        // `tokenize` stops at the model's limit, which is all the chunker needs to know.
        self.tokenize(text).len().saturating_sub(2)
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// New documents.
    pub added: usize,
    /// Documents whose content changed and were re-chunked.
    pub updated: usize,
    /// Documents whose content did not change.
    pub unchanged: usize,
    /// Documents removed because their file is gone (`--prune`).
    pub removed: usize,
    /// Files skipped, with the reason (corrupt, binary, undecodable, unsupported).
    pub failed: Vec<(String, String)>,
    /// Chunks written.
    pub chunks: usize,
    /// Source bytes read.
    pub bytes: u64,
}

/// The files under `paths`, in a stable order, skipping what `.gitignore`, `.ignore`
/// and hidden-file rules exclude.
pub fn walk(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_file() {
            out.push(p.clone());
            continue;
        }
        let walker = ignore::WalkBuilder::new(p)
            .require_git(false)
            .sort_by_file_path(|a, b| a.cmp(b))
            .build();
        for entry in walker.flatten() {
            if entry.file_type().is_some_and(|t| t.is_file()) {
                out.push(entry.into_path());
            }
        }
    }
    out
}

/// Splits `text` into chunks of about `CHUNK_TOKENS` tokens at paragraph, line or
/// sentence boundaries; returns byte ranges into `text`.
pub fn chunk(text: &str, count_tokens: &dyn Fn(&str) -> usize) -> Vec<(usize, usize)> {
    // Pieces: paragraphs, and within an oversized paragraph, sentences/lines, and within an
    // oversized sentence, fixed character windows.
    let mut pieces: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for (i, _) in text.match_indices("\n\n") {
        pieces.push((start, i + 2));
        start = i + 2;
    }
    pieces.push((start, text.len()));
    let mut fine: Vec<(usize, usize)> = Vec::new();
    for (a, b) in pieces {
        if count_tokens(&text[a..b]) <= CHUNK_TOKENS {
            fine.push((a, b));
            continue;
        }
        let mut s = a;
        for (i, c) in text[a..b].char_indices() {
            if matches!(c, '.' | '!' | '?' | '\n' | '。' | '！' | '？') {
                let e = a + i + c.len_utf8();
                fine.push((s, e));
                s = e;
            }
        }
        fine.push((s, b));
    }
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut cur: Option<(usize, usize)> = None;
    for (a, b) in fine.into_iter().filter(|(a, b)| b > a) {
        // A single piece longer than a chunk: cut it into windows of chars.
        if count_tokens(&text[a..b]) > CHUNK_TOKENS {
            if let Some(c) = cur.take() {
                out.push(c);
            }
            let mut s = a;
            let mut n = 0;
            for (i, ch) in text[a..b].char_indices() {
                n += 1;
                if n >= CHUNK_TOKENS * 2 || (ch.len_utf8() > 1 && n >= CHUNK_TOKENS) {
                    let e = a + i + ch.len_utf8();
                    out.push((s, e));
                    s = e;
                    n = 0;
                }
            }
            if b > s {
                out.push((s, b));
            }
            continue;
        }
        cur = match cur {
            Some((ca, _)) if count_tokens(&text[ca..b]) <= CHUNK_TOKENS => Some((ca, b)),
            Some(c) => {
                out.push(c);
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some(c) = cur {
        out.push(c);
    }
    out.retain(|(a, b)| !text[*a..*b].trim().is_empty());
    out
}

/// The file's bytes, or an error when it holds more than `cap`.
fn read_capped(path: &Path, cap: u64) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(cap + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > cap {
        return Err(format!(
            "larger than {} MiB (it grew while being read)",
            cap >> 20
        ));
    }
    Ok(bytes)
}

/// Chunks, embeds and commits one document; returns its number of chunks.
fn store_one(
    store: &MemoryStore,
    embedder: &dyn Embed,
    key: String,
    doc: Extracted,
    mtime: Option<i64>,
) -> Result<usize> {
    let ranges = chunk(&doc.text, &|t| embedder.count_tokens(t));
    let texts: Vec<&str> = ranges
        .iter()
        .map(|(a, b)| doc.text[*a..*b].trim())
        .collect();
    let vectors = embedder.embed(&texts)?;
    let chunks: Vec<NewChunk> = ranges
        .iter()
        .zip(texts.iter().zip(vectors))
        .map(|((a, b), (t, v))| NewChunk {
            start: *a,
            end: *b,
            text: (*t).to_string(),
            embedding: v,
        })
        .collect();
    store.put(
        &NewDocument {
            path: key,
            kind: doc.kind.to_string(),
            hash: doc.hash,
            bytes: doc.bytes,
            title: doc.title,
            sender: doc.sender,
            date: doc.date.or(mtime),
        },
        &chunks,
    )?;
    Ok(chunks.len())
}

/// Ingests `paths` into `store`: new and changed files are (re)chunked and embedded,
/// unchanged ones skipped, bad ones reported; with `prune`, stored documents whose file
/// is gone are removed. Each document is committed on its own, so an interrupted run
/// keeps what it finished and the next run resumes. `progress` is called per file.
///
/// Files are read by [`Extractor::default`]: a child process running this program's
/// `__extract` subcommand, as the `flurry` binary has. Other programs (tests, tools)
/// call [`ingest_with`] and name their worker.
pub fn ingest(
    store: &MemoryStore,
    embedder: &dyn Embed,
    paths: &[PathBuf],
    prune: bool,
    progress: &mut dyn FnMut(&Path, usize, usize),
) -> Result<Summary> {
    ingest_with(
        store,
        embedder,
        paths,
        prune,
        &Extractor::default(),
        progress,
    )
}

/// [`ingest()`] with the files read by `extractor`. A file that crashes, exhausts or
/// outlasts its extraction child is reported in [`Summary::failed`] and the run goes on.
pub fn ingest_with(
    store: &MemoryStore,
    embedder: &dyn Embed,
    paths: &[PathBuf],
    prune: bool,
    extractor: &Extractor,
    progress: &mut dyn FnMut(&Path, usize, usize),
) -> Result<Summary> {
    let files = walk(paths);
    let mut s = Summary::default();
    let total = files.len();
    for (n, file) in files.iter().enumerate() {
        progress(file, n, total);
        let shown = file.to_string_lossy().into_owned();
        let Some(kind) = kind_of(file) else {
            s.failed.push((
                shown,
                "unsupported format (text, Markdown, HTML, PDF, .eml and .mbox are read)".into(),
            ));
            continue;
        };
        let path = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        let key = path.to_string_lossy().into_owned();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                s.failed.push((shown, e.to_string()));
                continue;
            }
        };
        let cap = max_file_bytes(kind);
        if meta.len() > cap {
            s.failed.push((
                shown,
                format!(
                    "larger than {} MiB, the limit for this kind of file; split it or leave it out",
                    cap >> 20
                ),
            ));
            continue;
        }
        // Read at most the cap even if the file grew since `metadata`.
        let bytes = match read_capped(&path, cap) {
            Ok(b) => b,
            Err(e) => {
                s.failed.push((shown, e));
                continue;
            }
        };
        // A single-document file whose hash is stored is skipped before any parsing.
        if kind != "mbox"
            && store.document_hash(&key)?.as_deref() == Some(blake3::hash(&bytes).to_hex().as_str())
        {
            s.unchanged += 1;
            continue;
        }
        let docs = match extractor.extract(kind, &bytes, &path) {
            Ok(d) => d,
            Err(reason) => {
                s.failed.push((shown, reason));
                continue;
            }
        };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        let parts = docs
            .iter()
            .filter_map(|d| d.part)
            .max()
            .map_or(0, |m| m + 1);
        for doc in docs {
            let doc_key = match doc.part {
                Some(i) => format!("{key}#{i}"),
                None => key.clone(),
            };
            let known = store.document_hash(&doc_key)?;
            if known.as_deref() == Some(doc.hash.as_str()) {
                s.unchanged += 1;
                continue;
            }
            let n = store_one(store, embedder, doc_key, doc, mtime)?;
            s.chunks += n;
            if known.is_some() {
                s.updated += 1;
            } else {
                s.added += 1;
            }
        }
        s.bytes += bytes.len() as u64;
        if kind == "mbox" {
            // Messages past the mailbox's new end (it was compacted or rewritten).
            for doc in store.list()? {
                let gone = doc
                    .path
                    .strip_prefix(&format!("{key}#"))
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| i >= parts);
                if gone {
                    s.removed += store.forget(&doc.id.to_string())?;
                }
            }
        }
    }
    progress(Path::new(""), total, total);
    if prune {
        let roots: Vec<String> = paths
            .iter()
            .map(|p| {
                std::fs::canonicalize(p)
                    .unwrap_or_else(|_| p.clone())
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        for doc in store.list()? {
            let file = doc.path.split('#').next().unwrap_or(&doc.path).to_string();
            let under = roots
                .iter()
                .any(|r| file == *r || file.starts_with(&format!("{}/", r.trim_end_matches('/'))));
            if under && !Path::new(&file).exists() {
                s.removed += store.forget(&doc.id.to_string())?;
            }
        }
    }
    Ok(s)
}
