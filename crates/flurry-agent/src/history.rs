//! Chat history in SQLite: conversations and their messages.
//!
//! The file is encrypted with SQLCipher under a key derived from the node key
//! ([`HistoryKey`]): answers and citations of memory-backed chats quote the private
//! memory, so they get the same protection as `memory.db`. A plaintext `history.db` from
//! an older version is encrypted in place at the first open.
//!
//! The database runs in WAL mode with `synchronous = NORMAL`, so a process killed at any
//! moment (kill -9) leaves every committed transaction intact and never a torn one; an
//! answer that was being generated when the node died is marked `interrupted` at the
//! next open.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::recall::Citation;
use crate::{Error, Result};

/// Longest title kept, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Most conversations [`History::list`] returns.
pub const MAX_LISTED: usize = 200;

/// A conversation's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversation {
    /// `c_` followed by 16 hex digits.
    pub id: String,
    /// Title (the start of the first message unless set).
    pub title: String,
    /// Model name used for it.
    pub model: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last message.
    pub updated_at: i64,
    /// Whether answers in it draw on the node's private memory (on unless switched off).
    pub memory: bool,
}

/// The state of a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Finished normally.
    Complete,
    /// Being generated now.
    Streaming,
    /// The user stopped the answer; the text is what was generated until then.
    Stopped,
    /// The node stopped while the answer was being generated.
    Interrupted,
    /// Generation failed.
    Error,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Streaming => "streaming",
            Self::Stopped => "stopped",
            Self::Interrupted => "interrupted",
            Self::Error => "error",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "complete" => Self::Complete,
            "streaming" => Self::Streaming,
            "stopped" => Self::Stopped,
            "error" => Self::Error,
            _ => Self::Interrupted,
        }
    }
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Row id, increasing.
    pub id: i64,
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Text.
    pub content: String,
    /// Unix seconds.
    pub created_at: i64,
    /// State.
    pub status: Status,
    /// The memory passages an answer was given, with where they came from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub citations: Vec<Citation>,
}

/// The 32-byte SQLCipher key of the history database.
#[derive(Clone)]
pub struct HistoryKey([u8; 32]);

impl HistoryKey {
    /// The key derived from the node's identity key:
    /// `SHA-256("flurry-history-key-v1" ‖ secret)`, distinct from the memory key, so that
    /// one database's key opens nothing else.
    pub fn from_identity(id: &flurry_identity::Identity) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"flurry-history-key-v1");
        h.update(id.secret_bytes().as_ref());
        Self(h.finalize().into())
    }

    /// The key of the egress log: `SHA-256("flurry-egress-key-v1" ‖ secret)`.
    pub fn egress_from_identity(id: &flurry_identity::Identity) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"flurry-egress-key-v1");
        h.update(id.secret_bytes().as_ref());
        Self(h.finalize().into())
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// SQLCipher's raw-key form, `x'…'` (no passphrase derivation needed).
    pub(crate) fn sql(&self) -> String {
        format!("x'{}'", hex::encode(self.0))
    }
}

impl std::fmt::Debug for HistoryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistoryKey(…)")
    }
}

/// The first 16 bytes of every plaintext SQLite database.
const PLAINTEXT_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether `path` is a plaintext SQLite database (an encrypted one starts with random
/// salt; a missing or empty file is neither).
fn is_plaintext(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut head = [0u8; 16];
    match f.read_exact(&mut head) {
        Ok(()) => Ok(&head == PLAINTEXT_HEADER),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Encrypts the plaintext database at `path` in place, crash-safely: the whole database
/// (its WAL folded in first) is exported into `PATH.encrypting`, which is synced and then
/// renamed over the original. A crash before the rename leaves the plaintext file, and
/// the next open starts over; after it, the encrypted one.
fn encrypt_in_place(path: &Path, key: &HistoryKey) -> Result<()> {
    let tmp = with_suffix(path, ".encrypting");
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let db = |source| Error::Db {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let tmp_str = tmp.to_str().ok_or_else(|| {
        Error::Invalid(format!(
            "{} is not a UTF-8 path; move FLURRY_HOME to one",
            tmp.display()
        ))
    })?;
    {
        let plain = Connection::open(path).map_err(db)?;
        plain
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        // Fold the WAL in, so that the export sees every committed row and the
        // plaintext WAL is emptied.
        plain
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(db)?;
        plain
            .execute(
                "ATTACH DATABASE ?1 AS encrypted KEY ?2",
                params![tmp_str, key.sql()],
            )
            .map_err(db)?;
        plain
            .query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))
            .map_err(db)?;
        plain.execute("DETACH DATABASE encrypted", []).map_err(db)?;
    }
    let f = std::fs::File::open(&tmp).map_err(io)?;
    f.sync_all().map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    // The plaintext connection is closed, so its (emptied) WAL and shared-memory files
    // are gone or stale; none may sit next to the encrypted file.
    for suffix in ["-wal", "-shm"] {
        match std::fs::remove_file(with_suffix(path, suffix)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    tracing::info!(path = %path.display(), "encrypted a database that was plaintext");
    Ok(())
}

/// Opens (or creates) the SQLCipher database at `path` with `key`, in WAL mode with the
/// given `synchronous` level, after checking it (`quick_check`); a plaintext database
/// is encrypted first. A wrong key or a damaged file is an error that names the file.
pub(crate) fn open_encrypted(
    path: &Path,
    key: &HistoryKey,
    synchronous: &str,
) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        flurry_config::create_private_dir(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let plaintext = is_plaintext(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if plaintext {
        encrypt_in_place(path, key)?;
    }
    let db = |source| Error::Db {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(db)?;
    conn.execute_batch(&format!("PRAGMA key = \"{}\";", key.sql()))
        .map_err(db)?;
    if conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .is_err()
    {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            message:
                "it cannot be read with this node's key (another node's history, or a damaged file)"
                    .into(),
        });
    }
    // Rows removed by `forget` are overwritten, not left in free pages.
    crate::prepare_db(
        &conn,
        path,
        &format!("PRAGMA synchronous={synchronous}; PRAGMA secure_delete=ON;"),
    )?;
    Ok(conn)
}

/// The history database.
#[derive(Debug)]
pub struct History {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id);
CREATE INDEX IF NOT EXISTS conversations_by_update ON conversations(updated_at);
";

/// Columns added after the first release, added to older databases at open.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("conversations", "memory", "INTEGER NOT NULL DEFAULT 1"),
    ("messages", "citations", "TEXT"),
];

fn migrate(db: &Connection) -> rusqlite::Result<()> {
    for (table, column, decl) in ADDED_COLUMNS {
        let present: bool = db.query_row(
            &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
            [column],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !present {
            db.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl};"))?;
        }
    }
    Ok(())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn new_id() -> Result<String> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| Error::Rng(e.to_string()))?;
    Ok(format!("c_{}", hex::encode(b)))
}

fn truncate_title(t: &str) -> String {
    let line = t
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut out: String = line.chars().take(MAX_TITLE_CHARS).collect();
    if line.chars().count() > MAX_TITLE_CHARS {
        out.pop();
        out.push('…');
    }
    out
}

impl History {
    /// Opens (or creates) the database at `path`, encrypted with `key` (a plaintext
    /// one from an older version is encrypted first), checks it, and marks answers left
    /// `streaming` by a previous process as `interrupted`.
    pub fn open(path: &Path, key: &HistoryKey) -> Result<Self> {
        let db = |source| Error::Db {
            path: path.to_path_buf(),
            source,
        };
        let conn = open_encrypted(path, key, "NORMAL")?;
        conn.execute_batch("PRAGMA foreign_keys=ON;").map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        migrate(&conn).map_err(db)?;
        conn.execute(
            "UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'",
            [],
        )
        .map_err(db)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(|source| Error::Db {
            path: "memory".into(),
            source,
        })?;
        conn.execute_batch("PRAGMA foreign_keys=ON;")
            .and_then(|()| conn.execute_batch(SCHEMA))
            .and_then(|()| migrate(&conn))
            .map_err(|source| Error::Db {
                path: "memory".into(),
                source,
            })?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let path = c.path().unwrap_or("memory").into();
        f(&mut c).map_err(|source| Error::Db { path, source })
    }

    /// Creates a conversation.
    pub fn create(&self, title: &str, model: &str) -> Result<Conversation> {
        let c = Conversation {
            id: new_id()?,
            title: truncate_title(title),
            model: model.to_string(),
            created_at: now(),
            updated_at: now(),
            memory: true,
        };
        self.with(|db| {
            db.execute(
                "INSERT INTO conversations (id, title, model, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![c.id, c.title, c.model, c.created_at, c.updated_at],
            )
        })?;
        Ok(c)
    }

    /// The newest conversations first, at most [`MAX_LISTED`].
    pub fn list(&self) -> Result<Vec<Conversation>> {
        self.with(|db| {
            let mut st = db.prepare(
                "SELECT id, title, model, created_at, updated_at, memory FROM conversations
                 ORDER BY updated_at DESC, rowid DESC LIMIT ?1",
            )?;
            st.query_map([MAX_LISTED as i64], row_conversation)?
                .collect()
        })
    }

    /// One conversation's header.
    pub fn get(&self, id: &str) -> Result<Conversation> {
        self.with(|db| {
            db.query_row(
                "SELECT id, title, model, created_at, updated_at, memory FROM conversations WHERE id = ?1",
                [id],
                row_conversation,
            )
            .optional()
        })?
        .ok_or_else(|| Error::ConversationNotFound(id.to_string()))
    }

    /// A conversation's messages in order.
    pub fn messages(&self, id: &str) -> Result<Vec<Message>> {
        self.get(id)?;
        self.with(|db| {
            let mut st = db.prepare(
                "SELECT id, role, content, created_at, status, citations FROM messages
                 WHERE conversation_id = ?1 ORDER BY id",
            )?;
            st.query_map([id], |r| {
                Ok(Message {
                    id: r.get(0)?,
                    role: r.get(1)?,
                    content: r.get(2)?,
                    created_at: r.get(3)?,
                    status: Status::parse(&r.get::<_, String>(4)?),
                    citations: r
                        .get::<_, Option<String>>(5)?
                        .and_then(|j| serde_json::from_str(&j).ok())
                        .unwrap_or_default(),
                })
            })?
            .collect()
        })
    }

    /// Deletes a conversation and its messages.
    pub fn delete(&self, id: &str) -> Result<()> {
        let n = self.with(|db| db.execute("DELETE FROM conversations WHERE id = ?1", [id]))?;
        if n == 0 {
            return Err(Error::ConversationNotFound(id.to_string()));
        }
        Ok(())
    }

    /// Stores a user message and an empty `streaming` assistant message after it, in
    /// one transaction; sets the title from the user message when it is empty, and the
    /// conversation's model; the answer keeps the `citations` of the memory passages it
    /// was given. Returns both message ids.
    pub fn begin_turn(
        &self,
        id: &str,
        user_text: &str,
        model: &str,
        citations: &[Citation],
    ) -> Result<(i64, i64)> {
        let citations =
            (!citations.is_empty()).then(|| serde_json::to_string(citations).unwrap_or_default());
        let t = now();
        let title = truncate_title(user_text);
        let ids = self.with(|db| {
            let tx = db.transaction()?;
            let n = tx.execute(
                "UPDATE conversations SET updated_at = ?2, model = ?3,
                 title = CASE WHEN title = '' THEN ?4 ELSE title END WHERE id = ?1",
                params![id, t, model, title],
            )?;
            if n == 0 {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO messages (conversation_id, role, content, status, created_at)
                 VALUES (?1, 'user', ?2, 'complete', ?3)",
                params![id, user_text, t],
            )?;
            let user = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO messages (conversation_id, role, content, status, created_at, citations)
                 VALUES (?1, 'assistant', '', 'streaming', ?2, ?3)",
                params![id, t, citations],
            )?;
            let answer = tx.last_insert_rowid();
            tx.commit()?;
            Ok(Some((user, answer)))
        })?;
        ids.ok_or_else(|| Error::ConversationNotFound(id.to_string()))
    }

    /// Switches the use of memory in a conversation on or off.
    pub fn set_memory(&self, id: &str, on: bool) -> Result<Conversation> {
        let n = self.with(|db| {
            db.execute(
                "UPDATE conversations SET memory = ?2 WHERE id = ?1",
                params![id, on],
            )
        })?;
        if n == 0 {
            return Err(Error::ConversationNotFound(id.to_string()));
        }
        self.get(id)
    }

    /// Erases, in every stored answer, the citations of forgotten documents (by
    /// document id, or by source path for citations made before the document was
    /// re-ingested under a new id): their snippets, titles and paths quote or name the
    /// documents. Each becomes a tombstone ([`Citation::tombstone`]) so the answer's
    /// `[n]` still says where its source went. Returns how many answers changed. `flurry memory forget` and `DELETE /api/memory/documents/{id}`
    /// call it.
    pub fn forget_citations(&self, doc_ids: &[i64], paths: &[String]) -> Result<usize> {
        if doc_ids.is_empty() && paths.is_empty() {
            return Ok(0);
        }
        self.with(|db| {
            let tx = db.transaction()?;
            let rows: Vec<(i64, String)> = {
                let mut st =
                    tx.prepare("SELECT id, citations FROM messages WHERE citations IS NOT NULL")?;
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?
            };
            let mut changed = 0;
            for (id, json) in rows {
                let Ok(mut cites) = serde_json::from_str::<Vec<Citation>>(&json) else {
                    continue;
                };
                let mut hit = false;
                for c in cites.iter_mut() {
                    if !c.forgotten && (doc_ids.contains(&c.doc_id) || paths.contains(&c.document))
                    {
                        *c = c.tombstone();
                        hit = true;
                    }
                }
                if !hit {
                    continue;
                }
                let json = serde_json::to_string(&cites)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                tx.execute(
                    "UPDATE messages SET citations = ?2 WHERE id = ?1",
                    params![id, json],
                )?;
                changed += 1;
            }
            tx.commit()?;
            Ok(changed)
        })
    }

    /// Updates an answer's text and state.
    pub fn update_message(&self, message_id: i64, content: &str, status: Status) -> Result<()> {
        self.with(|db| {
            db.execute(
                "UPDATE messages SET content = ?2, status = ?3 WHERE id = ?1",
                params![message_id, content, status.as_str()],
            )
        })?;
        Ok(())
    }
}

fn row_conversation(r: &rusqlite::Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: r.get(0)?,
        title: r.get(1)?,
        model: r.get(2)?,
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
        memory: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> HistoryKey {
        HistoryKey::from_bytes([9; 32])
    }

    /// Every byte of the database and its WAL and shared-memory files.
    fn raw(path: &Path) -> Vec<u8> {
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            if let Ok(b) = std::fs::read(with_suffix(path, suffix)) {
                all.extend(b);
            }
        }
        all
    }

    fn contains(hay: &[u8], needle: &str) -> bool {
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    fn secret_citation() -> Citation {
        Citation {
            index: 1,
            document: "/home/u/notes/safe.txt".into(),
            doc_id: 3,
            title: "Safe".into(),
            chunk: 0,
            start: 0,
            end: 40,
            score: 0.5,
            snippet: "the safe code is ZEBRA-4471".into(),
            forgotten: false,
        }
    }

    /// The attack: read `history.db` (and its WAL) from disk, as any process or backup
    /// that gets the file can, and look for an answer and a citation snippet that quote
    /// the private memory. Before the history was encrypted both were there in clear.
    #[test]
    fn history_on_disk_holds_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let h = History::open(&path, &key()).unwrap();
        let c = h.create("what is the code of the safe?", "m").unwrap();
        let (_, a) = h
            .begin_turn(
                &c.id,
                "what is the code of the safe?",
                "m",
                &[secret_citation()],
            )
            .unwrap();
        h.update_message(a, "The code is ZEBRA-4471 [1].", Status::Complete)
            .unwrap();
        // While the node runs (the WAL holds the rows) and after it stops.
        for needle in ["ZEBRA-4471", "code of the safe", "safe.txt"] {
            assert!(
                !contains(&raw(&path), needle),
                "{needle} is on disk in clear"
            );
        }
        drop(h);
        for needle in ["ZEBRA-4471", "code of the safe", "safe.txt"] {
            assert!(
                !contains(&raw(&path), needle),
                "{needle} is on disk in clear"
            );
        }
        // The node reads it back after a restart; another key reads nothing.
        let h = History::open(&path, &key()).unwrap();
        let msgs = h.messages(&c.id).unwrap();
        assert_eq!(msgs[1].content, "The code is ZEBRA-4471 [1].");
        assert_eq!(msgs[1].citations, vec![secret_citation()]);
        drop(h);
        let err = History::open(&path, &HistoryKey::from_bytes([1; 32]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("history.db") && err.contains("key"), "{err}");
    }

    /// A `history.db` written in clear by an older version (the attack's target: its
    /// answers sit readable on disk) is encrypted in place at the first open, rows kept.
    #[test]
    fn plaintext_history_is_encrypted_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        {
            let db = Connection::open(&path).unwrap();
            db.execute_batch("PRAGMA journal_mode=WAL;").unwrap();
            db.execute_batch(SCHEMA).unwrap();
            migrate(&db).unwrap();
            db.execute_batch(
                "INSERT INTO conversations (id, title, model, created_at, updated_at)
                   VALUES ('c_0000000000000002', 'safe', 'm', 1, 1);
                 INSERT INTO messages (conversation_id, role, content, status, created_at)
                   VALUES ('c_0000000000000002', 'assistant', 'ZEBRA-4471', 'complete', 1);",
            )
            .unwrap();
        }
        assert!(
            contains(&raw(&path), "ZEBRA-4471"),
            "the old file is plaintext"
        );
        let h = History::open(&path, &key()).unwrap();
        assert_eq!(
            h.messages("c_0000000000000002").unwrap()[0].content,
            "ZEBRA-4471"
        );
        assert!(!contains(&raw(&path), "ZEBRA-4471"));
        assert!(!with_suffix(&path, ".encrypting").exists());
        drop(h);
        let h = History::open(&path, &key()).unwrap();
        assert_eq!(h.list().unwrap().len(), 1);
    }

    /// The attack: forget a document, then read the chats that cited it. Before, the
    /// citations (snippet, title, path) of the forgotten document stayed in the history.
    #[test]
    fn forget_removes_the_citations_of_the_document() {
        let h = History::in_memory().unwrap();
        let c = h.create("t", "m").unwrap();
        let mut other = secret_citation();
        other.doc_id = 4;
        other.index = 2;
        other.document = "/home/u/notes/garden.md".into();
        other.snippet = "water the tomatoes".into();
        other.title = "Garden".into();
        let mut old = secret_citation();
        old.doc_id = 1;
        h.begin_turn(&c.id, "a", "m", &[secret_citation(), other.clone()])
            .unwrap();
        h.begin_turn(&c.id, "b", "m", &[old]).unwrap();
        let n = h
            .forget_citations(&[3], &["/home/u/notes/safe.txt".to_string()])
            .unwrap();
        assert_eq!(n, 2);
        let msgs = h.messages(&c.id).unwrap();
        assert_eq!(msgs[1].citations.len(), 2);
        assert_eq!(msgs[1].citations[1], other);
        let gone = &msgs[1].citations[0];
        assert!(gone.forgotten && gone.index == 1 && gone.doc_id == 3);
        assert!(gone.document.is_empty() && gone.title.is_empty() && gone.snippet.is_empty());
        assert!(msgs[3].citations[0].forgotten && msgs[3].citations[0].document.is_empty());
        let stored = serde_json::to_string(&msgs).unwrap();
        for secret in ["ZEBRA", "safe.txt", "Safe"] {
            assert!(
                !stored.contains(secret),
                "{secret} survived forget: {stored}"
            );
        }
        assert_eq!(h.forget_citations(&[3], &[]).unwrap(), 0);
    }

    #[test]
    fn turn_roundtrip_and_title() {
        let h = History::in_memory().unwrap();
        let c = h.create("", "m").unwrap();
        assert!(c.id.starts_with("c_") && c.id.len() == 18);
        let (u, a) = h
            .begin_turn(&c.id, "\n  Hello there\nsecond line", "m2", &[])
            .unwrap();
        assert!(a > u);
        h.update_message(a, "Hi!", Status::Complete).unwrap();
        let got = h.get(&c.id).unwrap();
        assert_eq!(got.title, "Hello there");
        assert_eq!(got.model, "m2");
        let msgs = h.messages(&c.id).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            (msgs[0].role.as_str(), msgs[0].content.as_str()),
            ("user", "\n  Hello there\nsecond line")
        );
        assert_eq!(
            (msgs[1].role.as_str(), msgs[1].status),
            ("assistant", Status::Complete)
        );
        // A second turn keeps the title.
        h.begin_turn(&c.id, "other", "m2", &[]).unwrap();
        assert_eq!(h.get(&c.id).unwrap().title, "Hello there");
    }

    #[test]
    fn memory_switch_and_citations_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let cite = Citation {
            index: 1,
            document: "/home/u/mail/a.eml".into(),
            doc_id: 7,
            title: "Boiler".into(),
            chunk: 0,
            start: 0,
            end: 120,
            score: 0.03,
            snippet: "the technician comes".into(),
            forgotten: false,
        };
        let id = {
            let h = History::open(&path, &key()).unwrap();
            let c = h.create("t", "m").unwrap();
            assert!(c.memory, "memory is on by default");
            assert!(!h.set_memory(&c.id, false).unwrap().memory);
            h.begin_turn(&c.id, "when?", "m", std::slice::from_ref(&cite))
                .unwrap();
            c.id
        };
        let h = History::open(&path, &key()).unwrap();
        assert!(!h.get(&id).unwrap().memory);
        let msgs = h.messages(&id).unwrap();
        assert!(msgs[0].citations.is_empty());
        assert_eq!(msgs[1].citations, vec![cite]);
        assert!(matches!(
            h.set_memory("c_nope", true),
            Err(Error::ConversationNotFound(_))
        ));
    }

    #[test]
    fn a_database_from_before_memory_gains_its_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        {
            let db = Connection::open(&path).unwrap();
            db.execute_batch(
                "CREATE TABLE conversations (id TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '',
                   model TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
                 CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT,
                   conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
                   role TEXT NOT NULL, content TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL);
                 INSERT INTO conversations VALUES ('c_0000000000000001', 'old', 'm', 1, 1);
                 INSERT INTO messages (conversation_id, role, content, status, created_at)
                   VALUES ('c_0000000000000001', 'user', 'hello', 'complete', 1);",
            )
            .unwrap();
        }
        let h = History::open(&path, &key()).unwrap();
        let c = h.get("c_0000000000000001").unwrap();
        assert!(c.memory);
        assert_eq!(h.messages(&c.id).unwrap()[0].content, "hello");
    }

    #[test]
    fn long_title_is_cut() {
        let h = History::in_memory().unwrap();
        let c = h.create(&"x".repeat(500), "").unwrap();
        assert_eq!(c.title.chars().count(), MAX_TITLE_CHARS);
        assert!(c.title.ends_with('…'));
    }

    #[test]
    fn unknown_conversation_is_not_found() {
        let h = History::in_memory().unwrap();
        assert!(matches!(
            h.messages("c_nope"),
            Err(Error::ConversationNotFound(_))
        ));
        assert!(matches!(
            h.begin_turn("c_nope", "x", "m", &[]),
            Err(Error::ConversationNotFound(_))
        ));
        assert!(matches!(
            h.delete("c_nope"),
            Err(Error::ConversationNotFound(_))
        ));
    }

    #[test]
    fn delete_cascades() {
        let h = History::in_memory().unwrap();
        let c = h.create("t", "m").unwrap();
        h.begin_turn(&c.id, "x", "m", &[]).unwrap();
        h.delete(&c.id).unwrap();
        let n: i64 = h
            .with(|db| db.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(n, 0);
        assert!(h.list().unwrap().is_empty());
    }

    #[test]
    fn reopen_marks_streaming_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let (id, a) = {
            let h = History::open(&path, &key()).unwrap();
            let c = h.create("t", "m").unwrap();
            let (_, a) = h.begin_turn(&c.id, "x", "m", &[]).unwrap();
            h.update_message(a, "partial", Status::Streaming).unwrap();
            (c.id, a)
        };
        let h = History::open(&path, &key()).unwrap();
        let msgs = h.messages(&id).unwrap();
        let m = msgs.iter().find(|m| m.id == a).unwrap();
        assert_eq!(
            (m.content.as_str(), m.status),
            ("partial", Status::Interrupted)
        );
    }

    #[test]
    fn garbage_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let err = History::open(&path, &key()).unwrap_err().to_string();
        assert!(err.contains("h.db"), "{err}");
    }
}
