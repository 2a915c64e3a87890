//! Ingestion: walk paths (honouring `.gitignore`-style files), extract text, chunk,
//! embed, and store one document per transaction.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::store::{MemoryStore, NewChunk, NewDocument};
use crate::{Error, Result};

/// Chunks aim at this many tokens of the embedding model (which reads at most 256).
const CHUNK_TOKENS: usize = 200;
/// Files larger than this are reported and skipped.
pub const MAX_FILE_BYTES: u64 = 32 << 20;

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

/// The kind of a file by its extension, or `None` when it is not a supported format.
pub fn kind_of(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "txt" | "text" | "log" => "text",
        "md" | "markdown" => "markdown",
        "html" | "htm" => "html",
        _ => return None,
    })
}

/// Text of a file's bytes for its kind, and a title; errors say why the file is skipped.
pub fn extract(
    kind: &str,
    bytes: &[u8],
    path: &Path,
) -> std::result::Result<(String, String), String> {
    if bytes.iter().take(8192).any(|b| *b == 0) {
        return Err("binary file (contains NUL bytes)".into());
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("not valid UTF-8 text ({e}); re-save it as UTF-8"))?
        .trim_start_matches('\u{feff}');
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(match kind {
        "html" => {
            let (title, body) = html_to_text(text);
            (body, title.unwrap_or(file_name))
        }
        "markdown" => {
            let title = text
                .lines()
                .find_map(|l| l.strip_prefix("# "))
                .map(|t| t.trim().to_string())
                .unwrap_or(file_name);
            (text.to_string(), title)
        }
        _ => (text.to_string(), file_name),
    })
}

/// Visible text of an HTML page (scripts, styles and tags removed, entities decoded,
/// block elements on their own lines) and its `<title>`.
pub fn html_to_text(html: &str) -> (Option<String>, String) {
    let mut out = String::with_capacity(html.len() / 2);
    let mut title = None;
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while i < html.len() {
        let rest = &lower[i..];
        if rest.starts_with("<script") || rest.starts_with("<style") {
            let close = if rest.starts_with("<script") {
                "</script"
            } else {
                "</style"
            };
            i = rest.find(close).map_or(html.len(), |j| i + j + close.len());
            if let Some(j) = lower[i..].find('>') {
                i += j + 1;
            }
            continue;
        }
        if rest.starts_with("<title")
            && let (Some(a), Some(b)) = (rest.find('>'), rest.find("</title"))
            && a < b
        {
            title = Some(decode_entities(html[i + a + 1..i + b].trim()));
        }
        if rest.starts_with("<!--") {
            i = rest.find("-->").map_or(html.len(), |j| i + j + 3);
            continue;
        }
        if rest.starts_with('<') {
            let end = rest.find('>').map_or(html.len(), |j| i + j + 1);
            let tag = &lower[i + 1..end.saturating_sub(1).max(i + 1)];
            let name = tag
                .trim_start_matches('/')
                .split(|c: char| !c.is_ascii_alphanumeric())
                .next()
                .unwrap_or("");
            if matches!(
                name,
                "p" | "br"
                    | "div"
                    | "li"
                    | "tr"
                    | "h1"
                    | "h2"
                    | "h3"
                    | "h4"
                    | "h5"
                    | "h6"
                    | "title"
                    | "section"
                    | "article"
                    | "pre"
                    | "blockquote"
            ) {
                out.push('\n');
            }
            i = end;
            continue;
        }
        let next = rest.find('<').map_or(html.len(), |j| i + j);
        out.push_str(&decode_entities(&html[i..next]));
        i = next;
    }
    let text = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    (title, text)
}

/// Numeric references and the named entities common in Western and typographic text.
fn named_entity(e: &str) -> Option<char> {
    if let Some(hex) = e.strip_prefix("#x").or_else(|| e.strip_prefix("#X")) {
        return u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
    }
    if let Some(dec) = e.strip_prefix('#') {
        return dec.parse().ok().and_then(char::from_u32);
    }
    const TABLE: &[(&str, char)] = &[
        ("aacute", 'á'),
        ("agrave", 'à'),
        ("acirc", 'â'),
        ("auml", 'ä'),
        ("atilde", 'ã'),
        ("aring", 'å'),
        ("aelig", 'æ'),
        ("ccedil", 'ç'),
        ("eacute", 'é'),
        ("egrave", 'è'),
        ("ecirc", 'ê'),
        ("euml", 'ë'),
        ("iacute", 'í'),
        ("igrave", 'ì'),
        ("icirc", 'î'),
        ("iuml", 'ï'),
        ("ntilde", 'ñ'),
        ("oacute", 'ó'),
        ("ograve", 'ò'),
        ("ocirc", 'ô'),
        ("ouml", 'ö'),
        ("otilde", 'õ'),
        ("oslash", 'ø'),
        ("uacute", 'ú'),
        ("ugrave", 'ù'),
        ("ucirc", 'û'),
        ("uuml", 'ü'),
        ("yacute", 'ý'),
        ("szlig", 'ß'),
        ("Eacute", 'É'),
        ("Auml", 'Ä'),
        ("Ouml", 'Ö'),
        ("Uuml", 'Ü'),
        ("Ccedil", 'Ç'),
        ("Ntilde", 'Ñ'),
        ("copy", '©'),
        ("reg", '®'),
        ("trade", '™'),
        ("euro", '€'),
        ("pound", '£'),
        ("yen", '¥'),
        ("cent", '¢'),
        ("sect", '§'),
        ("deg", '°'),
        ("middot", '·'),
        ("mdash", '—'),
        ("ndash", '–'),
        ("hellip", '…'),
        ("laquo", '«'),
        ("raquo", '»'),
        ("lsquo", '‘'),
        ("rsquo", '’'),
        ("ldquo", '“'),
        ("rdquo", '”'),
        ("bull", '•'),
        ("times", '×'),
        ("divide", '÷'),
        ("shy", '\u{ad}'),
    ];
    TABLE.iter().find(|(n, _)| *n == e).map(|(_, c)| *c)
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(a) = rest.find('&') {
        out.push_str(&rest[..a]);
        let after = &rest[a..];
        let Some(semi) = after.find(';').filter(|n| *n <= 10) else {
            out.push('&');
            rest = &after[1..];
            continue;
        };
        let ent = &after[1..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some(' '),
            e => named_entity(e),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
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

/// Ingests `paths` into `store`: new and changed files are (re)chunked and embedded,
/// unchanged ones skipped, bad ones reported; with `prune`, stored documents whose file
/// is gone are removed. Each document is committed on its own, so an interrupted run
/// keeps what it finished and the next run resumes. `progress` is called per file.
pub fn ingest(
    store: &MemoryStore,
    embedder: &dyn Embed,
    paths: &[PathBuf],
    prune: bool,
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
                "unsupported format (text, Markdown and HTML are read)".into(),
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
        if meta.len() > MAX_FILE_BYTES {
            s.failed
                .push((shown, format!("larger than {} MiB", MAX_FILE_BYTES >> 20)));
            continue;
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                s.failed.push((shown, e.to_string()));
                continue;
            }
        };
        let hash = blake3::hash(&bytes).to_hex().to_string();
        let known = store.document_hash(&key)?;
        if known.as_deref() == Some(hash.as_str()) {
            s.unchanged += 1;
            continue;
        }
        let (text, title) = match extract(kind, &bytes, &path) {
            Ok(t) => t,
            Err(reason) => {
                s.failed.push((shown, reason));
                continue;
            }
        };
        let ranges = chunk(&text, &|t| embedder.count_tokens(t));
        let texts: Vec<&str> = ranges.iter().map(|(a, b)| text[*a..*b].trim()).collect();
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
        let date = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        store.put(
            &NewDocument {
                path: key,
                kind: kind.to_string(),
                hash,
                bytes: bytes.len() as u64,
                title,
                sender: None,
                date,
            },
            &chunks,
        )?;
        s.chunks += chunks.len();
        s.bytes += bytes.len() as u64;
        if known.is_some() {
            s.updated += 1;
        } else {
            s.added += 1;
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
