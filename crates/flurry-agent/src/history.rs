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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
                "SELECT id, title, model, created_at, updated_at FROM conversations
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
                "SELECT id, title, model, created_at, updated_at FROM conversations WHERE id = ?1",
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
                "SELECT id, role, content, created_at, status FROM messages
                 WHERE conversation_id = ?1 ORDER BY id",
            )?;
            st.query_map([id], |r| {
                Ok(Message {
                    id: r.get(0)?,
                    role: r.get(1)?,
                    content: r.get(2)?,
                    created_at: r.get(3)?,
                    status: Status::parse(&r.get::<_, String>(4)?),
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
    /// conversation's model. Returns both message ids.
    pub fn begin_turn(&self, id: &str, user_text: &str, model: &str) -> Result<(i64, i64)> {
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
                "INSERT INTO messages (conversation_id, role, content, status, created_at)
                 VALUES (?1, 'assistant', '', 'streaming', ?2)",
                params![id, t],
            )?;
            let answer = tx.last_insert_rowid();
            tx.commit()?;
            Ok(Some((user, answer)))
        })?;
        ids.ok_or_else(|| Error::ConversationNotFound(id.to_string()))
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
            .begin_turn(&c.id, "\n  Hello there\nsecond line", "m2")
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
        h.begin_turn(&c.id, "other", "m2").unwrap();
        assert_eq!(h.get(&c.id).unwrap().title, "Hello there");
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
            h.begin_turn("c_nope", "x", "m"),
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
        h.begin_turn(&c.id, "x", "m").unwrap();
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
            let (_, a) = h.begin_turn(&c.id, "x", "m").unwrap();
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
