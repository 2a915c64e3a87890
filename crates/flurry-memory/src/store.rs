//! The encrypted store: one SQLCipher database with documents, chunks, an FTS5 index
//! and the chunks' embeddings.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::{Error, Result};

/// Reciprocal-rank-fusion constant (the usual 60).
const RRF_K: f64 = 60.0;
/// Candidates each ranking contributes to the fusion.
const CANDIDATES: usize = 50;

/// The 32-byte key of the memory database.
#[derive(Clone)]
pub struct MemoryKey(pub(crate) [u8; 32]);

impl MemoryKey {
    /// The key derived from the node's identity key:
    /// `SHA-256("flurry-memory-key-v1" ‖ secret)`. Only this node can open its memory.
    pub fn from_identity(id: &flurry_identity::Identity) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"flurry-memory-key-v1");
        h.update(id.secret_bytes().as_ref());
        Self(h.finalize().into())
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for MemoryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryKey(…)")
    }
}

/// A document to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDocument {
    /// Where it came from (a path, or `file.mbox#3` for one message of a mailbox).
    pub path: String,
    /// `text`, `markdown`, `html`, `email`, `pdf`.
    pub kind: String,
    /// BLAKE3 of the source bytes.
    pub hash: String,
    /// Size of the source, bytes.
    pub bytes: u64,
    /// Title (mail subject, first heading, file name).
    pub title: String,
    /// Mail sender, if any.
    pub sender: Option<String>,
    /// Unix seconds (mail date, else file modification time).
    pub date: Option<i64>,
}

/// A chunk of a document to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChunk {
    /// Byte offset of the chunk in the document's text.
    pub start: usize,
    /// Byte offset of its end.
    pub end: usize,
    /// The text.
    pub text: String,
    /// Its embedding (unit vector).
    pub embedding: Vec<f32>,
}

/// A stored document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentInfo {
    /// Id.
    pub id: i64,
    /// Source.
    pub path: String,
    /// Kind.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Mail sender.
    pub sender: Option<String>,
    /// Unix seconds.
    pub date: Option<i64>,
    /// Source size, bytes.
    pub bytes: u64,
    /// Number of chunks.
    pub chunks: u64,
}

/// A stored chunk's text and place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredChunk {
    /// Number within the document, from 0.
    #[serde(rename = "chunk")]
    pub ord: i64,
    /// Byte offset in the document's text.
    pub start: i64,
    /// End offset.
    pub end: i64,
    /// The text.
    pub text: String,
}

/// Which ranking to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// BM25 and cosine fused by reciprocal rank.
    #[default]
    Hybrid,
    /// BM25 (FTS5) only.
    Bm25,
    /// Cosine similarity only.
    Vector,
}

/// Restrictions on what a search may return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// Only documents whose path starts with this.
    pub path_prefix: Option<String>,
    /// Only this kind (`email`, `markdown`, …).
    pub kind: Option<String>,
    /// Only documents dated at or after this (unix seconds).
    pub since: Option<i64>,
    /// Only documents dated before this.
    pub until: Option<i64>,
    /// Only mail whose sender contains this (case-insensitive).
    pub sender: Option<String>,
}

/// One search result: a chunk and where it sits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// Document id.
    pub doc_id: i64,
    /// Document source.
    #[serde(rename = "document")]
    pub path: String,
    /// Document title.
    pub title: String,
    /// Chunk id.
    pub chunk_id: i64,
    /// Chunk number within the document.
    #[serde(rename = "chunk")]
    pub ord: i64,
    /// Byte range of the chunk in the document's text.
    pub start: i64,
    /// End of the range.
    pub end: i64,
    /// Fused (or single-ranking) score; higher is better.
    pub score: f64,
    /// A short excerpt around the best match.
    pub snippet: String,
    /// Cosine similarity of the chunk to the query, when the vector side ranked it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cosine: Option<f32>,
    /// Rank (from 0) of the chunk in the keyword (BM25) ranking, when it matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword_rank: Option<usize>,
    /// The chunk's full text (not serialised: results show the snippet).
    #[serde(skip)]
    pub text: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS documents (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    title       TEXT NOT NULL,
    sender      TEXT,
    date        INTEGER,
    ingested_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id        INTEGER PRIMARY KEY,
    doc_id    INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord       INTEGER NOT NULL,
    start     INTEGER NOT NULL,
    end       INTEGER NOT NULL,
    text      TEXT NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS chunks_forget AFTER DELETE ON chunks BEGIN
    DELETE FROM chunks_fts WHERE rowid = old.id;
END;
";

/// The memory database.
#[derive(Debug)]
pub struct MemoryStore {
    db: Mutex<Connection>,
    path: PathBuf,
    /// Every chunk's vector, read once and kept (≈1.5 KiB per chunk) so a search does not
    /// decrypt and scan the whole table; dropped when this store writes, and re-read
    /// when another connection has committed (`PRAGMA data_version` changed).
    vectors: Mutex<Option<Arc<Vectors>>>,
}

/// The vectors of all chunks, in one flat array.
#[derive(Debug)]
struct Vectors {
    data_version: i64,
    dim: usize,
    chunk_ids: Vec<i64>,
    doc_ids: Vec<i64>,
    data: Vec<f32>,
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF
        | 0xAC00..=0xD7AF | 0x20000..=0x2FA1F)
}

/// The form of a text the full-text index sees: CJK characters become words of their
/// own (FTS5's unicode61 tokenizer would otherwise treat a whole CJK run as one word).
pub(crate) fn search_form(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    for c in text.chars() {
        if is_cjk(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// Words too common to say anything about a passage: dropped from keyword queries
/// (unless the query has nothing else), so that "what is the code for the gate" ranks by
/// "code" and "gate" rather than by "the".
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been",
    "before", "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has",
    "have", "he", "her", "his", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my",
    "of", "on", "or", "our", "she", "should", "so", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "to", "was", "we", "were", "what", "when", "where", "which",
    "who", "whom", "why", "will", "with", "would", "you", "your", "的", "了", "是", "吗", "呢",
    "吧", "啊", "什", "么",
];

/// The query's terms: words of letters and digits, and single CJK characters.
fn query_terms(q: &str) -> Vec<String> {
    let all: Vec<String> = search_form(q)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect();
    let content: Vec<String> = all
        .iter()
        .filter(|t| !STOPWORDS.contains(&t.as_str()))
        .cloned()
        .collect();
    if content.is_empty() { all } else { content }
}

impl MemoryStore {
    /// Opens (or creates) the database at `path` with `key`. A wrong key, or a file
    /// that is not a memory database, is an error that says so.
    pub fn open(path: &Path, key: &MemoryKey) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db_err = |source| Error::Db {
            path: path.to_path_buf(),
            source,
        };
        let db = Connection::open(path).map_err(db_err)?;
        // SQLCipher: a raw 256-bit key (no passphrase derivation needed).
        db.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(key.0)))
            .map_err(db_err)?;
        if db
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .is_err()
        {
            return Err(Error::WrongKey(path.to_path_buf()));
        }
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        db.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        db.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_err)?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err)?;
        db.execute_batch(SCHEMA).map_err(db_err)?;
        Ok(Self {
            db: Mutex::new(db),
            path: path.to_path_buf(),
            vectors: Mutex::new(None),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// The stored hash of the document at `path`, if it is stored.
    pub fn document_hash(&self, path: &str) -> Result<Option<String>> {
        self.conn()
            .query_row("SELECT hash FROM documents WHERE path = ?1", [path], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Stores a document and its chunks in one transaction, replacing an earlier
    /// version of the same path. Returns the document id.
    pub fn put(&self, doc: &NewDocument, chunks: &[NewChunk]) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let id = (|| {
            tx.execute("DELETE FROM documents WHERE path = ?1", [&doc.path])?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            tx.execute(
                "INSERT INTO documents (path, kind, hash, bytes, title, sender, date, ingested_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    doc.path,
                    doc.kind,
                    doc.hash,
                    i64::try_from(doc.bytes).unwrap_or(i64::MAX),
                    doc.title,
                    doc.sender,
                    doc.date,
                    now
                ],
            )?;
            let id = tx.last_insert_rowid();
            for (ord, c) in chunks.iter().enumerate() {
                let blob: Vec<u8> = c.embedding.iter().flat_map(|x| x.to_le_bytes()).collect();
                tx.execute(
                    "INSERT INTO chunks (doc_id, ord, start, end, text, embedding)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![id, ord as i64, c.start as i64, c.end as i64, c.text, blob],
                )?;
                let chunk_id = tx.last_insert_rowid();
                let body = format!("{}\n{}", doc.title, c.text);
                tx.execute(
                    "INSERT INTO chunks_fts (rowid, body) VALUES (?1, ?2)",
                    params![chunk_id, search_form(&body)],
                )?;
            }
            Ok::<_, rusqlite::Error>(id)
        })()
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        self.drop_vectors();
        Ok(id)
    }

    /// Removes documents for real (their chunks, index entries and vectors): by id
    /// (digits), by exact path, or every document under a directory path. Returns how
    /// many documents were removed.
    pub fn forget(&self, what: &str) -> Result<usize> {
        let conn = self.conn();
        self.drop_vectors();
        let n = if let Ok(id) = what.parse::<i64>() {
            conn.execute("DELETE FROM documents WHERE id = ?1", [id])
        } else {
            let dir = format!("{}/", what.trim_end_matches('/'));
            conn.execute(
                "DELETE FROM documents WHERE path = ?1 OR substr(path, 1, length(?2)) = ?2
                   OR substr(path, 1, length(?1) + 1) = ?1 || '#'",
                params![what, dir],
            )
        }
        .map_err(|e| self.err(e))?;
        if n > 0 {
            // Rewrite the index's internal b-trees so no deleted term lingers on disk pages.
            let _ = conn.execute_batch("INSERT INTO chunks_fts(chunks_fts) VALUES('optimize');");
        }
        Ok(n)
    }

    /// Whether the store holds no chunk at all.
    pub fn is_empty(&self) -> Result<bool> {
        self.conn()
            .query_row("SELECT NOT EXISTS (SELECT 1 FROM chunks)", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Changes whenever a document is added, replaced or forgotten: the count of
    /// documents, the largest id and the latest ingestion time. Caches of what is
    /// learned from the memory (the privacy router's entity list) key on it.
    pub fn fingerprint(&self) -> Result<(i64, i64, i64)> {
        self.conn()
            .query_row(
                "SELECT count(*), coalesce(max(id), 0), coalesce(max(ingested_at), 0) FROM documents",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| self.err(e))
    }

    /// Calls `f` with every document's path and text (its chunks joined in order), for
    /// what is learned from the whole memory. Holds the store while it runs.
    pub fn for_each_document(&self, mut f: impl FnMut(&str, &str)) -> Result<()> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT d.path, c.text FROM chunks c JOIN documents d ON d.id = c.doc_id
                 ORDER BY c.doc_id, c.ord",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let (mut path, mut text) = (String::new(), String::new());
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let p: String = row.get(0).map_err(|e| self.err(e))?;
            let t: String = row.get(1).map_err(|e| self.err(e))?;
            if p != path {
                if !path.is_empty() {
                    f(&path, &text);
                }
                path = p;
                text.clear();
            } else {
                text.push('\n');
            }
            text.push_str(&t);
        }
        if !path.is_empty() {
            f(&path, &text);
        }
        Ok(())
    }

    /// Every stored document, by path.
    pub fn list(&self) -> Result<Vec<DocumentInfo>> {
        self.documents(None)
    }

    fn documents(&self, id: Option<i64>) -> Result<Vec<DocumentInfo>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT d.id, d.path, d.kind, d.title, d.sender, d.date, d.bytes,
                        (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id)
                 FROM documents d WHERE ?1 IS NULL OR d.id = ?1 ORDER BY d.path",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(DocumentInfo {
                    id: r.get(0)?,
                    path: r.get(1)?,
                    kind: r.get(2)?,
                    title: r.get(3)?,
                    sender: r.get(4)?,
                    date: r.get(5)?,
                    bytes: r.get::<_, i64>(6)?.max(0) as u64,
                    chunks: r.get::<_, i64>(7)?.max(0) as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// One stored document and its chunks in order, or `None` when there is no such id.
    pub fn document(&self, id: i64) -> Result<Option<(DocumentInfo, Vec<StoredChunk>)>> {
        let Some(info) = self.documents(Some(id))?.pop() else {
            return Ok(None);
        };
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT ord, start, end, text FROM chunks WHERE doc_id = ?1 ORDER BY ord",
            )
            .map_err(|e| self.err(e))?;
        let chunks = stmt
            .query_map([id], |r| {
                Ok(StoredChunk {
                    ord: r.get(0)?,
                    start: r.get(1)?,
                    end: r.get(2)?,
                    text: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        Ok(Some((info, chunks)))
    }

    /// Counts of documents, chunks and full-text rows (for tests and `memory list`).
    pub fn counts(&self) -> Result<(u64, u64, u64)> {
        let conn = self.conn();
        let q = |sql: &str| {
            conn.query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
        };
        Ok((
            q("SELECT count(*) FROM documents").map_err(|e| self.err(e))?,
            q("SELECT count(*) FROM chunks").map_err(|e| self.err(e))?,
            q("SELECT count(*) FROM chunks_fts").map_err(|e| self.err(e))?,
        ))
    }

    fn filter_sql(f: &Filters) -> (String, Vec<rusqlite::types::Value>) {
        use rusqlite::types::Value as V;
        let mut sql = String::new();
        let mut args = Vec::new();
        if let Some(p) = &f.path_prefix {
            sql.push_str(" AND substr(d.path, 1, length(?)) = ?");
            args.push(V::Text(p.clone()));
            args.push(V::Text(p.clone()));
        }
        if let Some(k) = &f.kind {
            sql.push_str(" AND d.kind = ?");
            args.push(V::Text(k.clone()));
        }
        if let Some(s) = f.since {
            sql.push_str(" AND d.date >= ?");
            args.push(V::Integer(s));
        }
        if let Some(u) = f.until {
            sql.push_str(" AND d.date < ?");
            args.push(V::Integer(u));
        }
        if let Some(s) = &f.sender {
            sql.push_str(" AND instr(lower(coalesce(d.sender, '')), lower(?)) > 0");
            args.push(V::Text(s.clone()));
        }
        (sql, args)
    }

    /// BM25 ranking of chunk ids (best first).
    fn rank_bm25(&self, query: &str, f: &Filters) -> Result<Vec<i64>> {
        let terms = query_terms(query);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let fts_query = terms
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "")))
            .collect::<Vec<_>>()
            .join(" OR ");
        let (fsql, mut args) = Self::filter_sql(f);
        let sql = format!(
            "SELECT chunks_fts.rowid FROM chunks_fts
             JOIN chunks c ON c.id = chunks_fts.rowid JOIN documents d ON d.id = c.doc_id
             WHERE chunks_fts MATCH ?{fsql} ORDER BY bm25(chunks_fts) LIMIT {CANDIDATES}"
        );
        args.insert(0, rusqlite::types::Value::Text(fts_query));
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<i64>>>()
            .map_err(|e| self.err(e))
    }

    fn drop_vectors(&self) {
        *self.vectors.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The kept vectors, (re)read when missing or when another connection committed.
    fn vectors(&self, conn: &Connection) -> Result<Arc<Vectors>> {
        let version: i64 = conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let mut slot = self.vectors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = slot.as_ref().filter(|v| v.data_version == version) {
            return Ok(v.clone());
        }
        let mut stmt = conn
            .prepare("SELECT id, doc_id, embedding FROM chunks ORDER BY id")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut v = Vectors {
            data_version: version,
            dim: 0,
            chunk_ids: Vec::new(),
            doc_ids: Vec::new(),
            data: Vec::new(),
        };
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let blob = r.get_ref(2).map_err(|e| self.err(e))?;
            let bytes = blob.as_blob().unwrap_or_default();
            if v.dim == 0 {
                v.dim = bytes.len() / 4;
            }
            if v.dim == 0 || bytes.len() != v.dim * 4 {
                continue;
            }
            v.chunk_ids.push(r.get(0).map_err(|e| self.err(e))?);
            v.doc_ids.push(r.get(1).map_err(|e| self.err(e))?);
            v.data.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        let v = Arc::new(v);
        *slot = Some(v.clone());
        Ok(v)
    }

    /// Cosine ranking of chunk ids (best first), by a scan over the kept vectors.
    fn rank_vector(&self, q: &[f32], f: &Filters) -> Result<Vec<(i64, f32)>> {
        let conn = self.conn();
        let vectors = self.vectors(&conn)?;
        let allowed: Option<HashSet<i64>> = if *f == Filters::default() {
            None
        } else {
            let (fsql, args) = Self::filter_sql(f);
            let sql = format!("SELECT d.id FROM documents d WHERE 1 = 1{fsql}");
            let mut stmt = conn.prepare(&sql).map_err(|e| self.err(e))?;
            let ids = stmt
                .query_map(rusqlite::params_from_iter(args), |r| r.get(0))
                .map_err(|e| self.err(e))?
                .collect::<rusqlite::Result<HashSet<i64>>>()
                .map_err(|e| self.err(e))?;
            Some(ids)
        };
        drop(conn);
        if vectors.dim != q.len() {
            return Ok(Vec::new());
        }
        let mut scored: Vec<(i64, f32)> = vectors
            .data
            .chunks_exact(vectors.dim)
            .enumerate()
            .filter(|(i, _)| {
                allowed
                    .as_ref()
                    .is_none_or(|a| a.contains(&vectors.doc_ids[*i]))
            })
            .map(|(i, row)| {
                let dot: f32 = row.iter().zip(q).map(|(a, b)| a * b).sum();
                (vectors.chunk_ids[i], dot)
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(CANDIDATES);
        Ok(scored)
    }

    /// The `k` best chunks for `query` (and its embedding `query_vec`, needed for the
    /// vector and hybrid modes), within `filters`.
    pub fn search(
        &self,
        query: &str,
        query_vec: Option<&[f32]>,
        k: usize,
        mode: SearchMode,
        filters: &Filters,
    ) -> Result<Vec<Hit>> {
        let bm25 = match mode {
            SearchMode::Vector => Vec::new(),
            _ => self.rank_bm25(query, filters)?,
        };
        let vector = match (mode, query_vec) {
            (SearchMode::Bm25, _) | (_, None) => Vec::new(),
            (_, Some(q)) => self.rank_vector(q, filters)?,
        };
        let mut scores: HashMap<i64, f64> = HashMap::new();
        match mode {
            SearchMode::Bm25 => {
                for (rank, id) in bm25.iter().enumerate() {
                    scores.insert(*id, 1.0 / (rank as f64 + 1.0));
                }
            }
            SearchMode::Vector => {
                for (id, s) in &vector {
                    scores.insert(*id, f64::from(*s));
                }
            }
            SearchMode::Hybrid => {
                for (rank, id) in bm25.iter().enumerate() {
                    *scores.entry(*id).or_default() += 1.0 / (RRF_K + rank as f64 + 1.0);
                }
                for (rank, (id, _)) in vector.iter().enumerate() {
                    *scores.entry(*id).or_default() += 1.0 / (RRF_K + rank as f64 + 1.0);
                }
            }
        }
        let mut ranked: Vec<(i64, f64)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        let terms = query_terms(query);
        let cosine: HashMap<i64, f32> = vector.iter().copied().collect();
        let keyword_rank: HashMap<i64, usize> =
            bm25.iter().enumerate().map(|(r, id)| (*id, r)).collect();
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT c.doc_id, d.path, d.title, c.ord, c.start, c.end, c.text
                 FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id = ?1",
            )
            .map_err(|e| self.err(e))?;
        let mut hits = Vec::with_capacity(ranked.len());
        for (chunk_id, score) in ranked {
            let hit = stmt
                .query_row([chunk_id], |r| {
                    let text: String = r.get(6)?;
                    Ok(Hit {
                        doc_id: r.get(0)?,
                        path: r.get(1)?,
                        title: r.get(2)?,
                        chunk_id,
                        ord: r.get(3)?,
                        start: r.get(4)?,
                        end: r.get(5)?,
                        score,
                        snippet: snippet(&text, &terms),
                        cosine: cosine.get(&chunk_id).copied(),
                        keyword_rank: keyword_rank.get(&chunk_id).copied(),
                        text,
                    })
                })
                .map_err(|e| self.err(e))?;
            hits.push(hit);
        }
        Ok(hits)
    }
}

/// Up to ~200 characters of `text` around the first query term found.
fn snippet(text: &str, terms: &[String]) -> String {
    let lower = text.to_lowercase();
    let at = terms
        .iter()
        .filter_map(|t| lower.find(t.as_str()))
        .min()
        .unwrap_or(0);
    // Map back to a char boundary of `text` (lowercasing can change lengths slightly).
    let at = at.min(text.len());
    let start = text
        .char_indices()
        .map(|(i, _)| i)
        .take_while(|i| *i + 80 <= at)
        .last()
        .unwrap_or(0);
    let s: String = text[start..].chars().take(200).collect();
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if start > 0 { format!("…{s}") } else { s }
}
