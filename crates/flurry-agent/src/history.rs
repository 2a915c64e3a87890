//! Chat history in SQLite: conversations and their messages.
//!
//! The database runs in WAL mode with `synchronous = NORMAL`, so a process killed at any
//! moment (kill -9) leaves every committed transaction intact and never a torn one; an
//! answer that was being generated when the node died is marked `interrupted` at the
//! next open.

use std::path::Path;
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
    /// Opens (or creates) the database at `path`, checks it, and marks answers left
    /// `streaming` by a previous process as `interrupted`.
    pub fn open(path: &Path) -> Result<Self> {
        let db = |source| Error::Db {
            path: path.to_path_buf(),
            source,
        };
        let conn = crate::open_db(path, "NORMAL")?;
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
        };
        let id = {
            let h = History::open(&path).unwrap();
            let c = h.create("t", "m").unwrap();
            assert!(c.memory, "memory is on by default");
            assert!(!h.set_memory(&c.id, false).unwrap().memory);
            h.begin_turn(&c.id, "when?", "m", std::slice::from_ref(&cite))
                .unwrap();
            c.id
        };
        let h = History::open(&path).unwrap();
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
        let h = History::open(&path).unwrap();
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
            let h = History::open(&path).unwrap();
            let c = h.create("t", "m").unwrap();
            let (_, a) = h.begin_turn(&c.id, "x", "m", &[]).unwrap();
            h.update_message(a, "partial", Status::Streaming).unwrap();
            (c.id, a)
        };
        let h = History::open(&path).unwrap();
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
        let err = History::open(&path).unwrap_err().to_string();
        assert!(err.contains("h.db"), "{err}");
    }
}
