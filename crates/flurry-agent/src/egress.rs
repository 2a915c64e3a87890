//! The egress audit log: one append-only record for every transfer of data off the node,
//! by destination and purpose, so that the user can see what left.
//!
//! The log is a SQLite table whose triggers refuse `UPDATE` and `DELETE`: records can only
//! be added. A record holds what was sent (the text as it left, scrubbed or not) and the
//! privacy rule it left under, so the file is encrypted with SQLCipher under a key derived
//! from the node key (a plaintext log of an older node is encrypted in place).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::{Error, HistoryKey, Result};

/// Longest destination, purpose or rule kept, in bytes.
pub const MAX_FIELD_BYTES: usize = 512;
/// Longest content kept, in bytes (a longer one is cut on a character boundary; `bytes`
/// still counts all of it).
pub const MAX_CONTENT_BYTES: usize = 1 << 20;

/// One transfer off the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EgressRecord {
    /// Row id, increasing.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// Where the data went (a PeerId, a URL, a chain RPC endpoint…).
    pub destination: String,
    /// Why (e.g. `inference request`, `ticket redemption`).
    pub purpose: String,
    /// Bytes sent.
    pub bytes: u64,
    /// The privacy rule it left under (`as-is`, `scrubbed`), empty for transfers that
    /// carry no personal text (ticket redemption, a peer's own answer).
    pub rule: String,
    /// What was sent, as it left the node (empty when the record only counts bytes).
    pub content: String,
}

/// The egress log.
#[derive(Debug)]
pub struct EgressLog {
    conn: Mutex<Connection>,
    path: std::path::PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS egress (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    destination TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL CHECK (bytes >= 0),
    rule TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER IF NOT EXISTS egress_no_update BEFORE UPDATE ON egress
BEGIN SELECT RAISE(ABORT, 'the egress log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS egress_no_delete BEFORE DELETE ON egress
BEGIN SELECT RAISE(ABORT, 'the egress log is append-only'); END;
";

/// Columns added since the first schema: (column, declaration).
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("rule", "TEXT NOT NULL DEFAULT ''"),
    ("content", "TEXT NOT NULL DEFAULT ''"),
];

fn clip(s: &str) -> &str {
    clip_to(s, MAX_FIELD_BYTES)
}

fn clip_to(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl EgressLog {
    /// Opens (or creates) the log at `path` (`$FLURRY_HOME/egress.db`), encrypted with
    /// `key` ([`HistoryKey::egress_from_identity`]).
    pub fn open(path: &Path, key: &HistoryKey) -> Result<Self> {
        let db = |source| Error::Db {
            path: path.to_path_buf(),
            source,
        };
        // FULL: a record must be on disk before the data it describes is sent.
        let conn = crate::history::open_encrypted(path, key, "FULL")?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        for (column, decl) in ADDED_COLUMNS {
            let present: bool = conn
                .query_row(
                    "SELECT count(*) FROM pragma_table_info('egress') WHERE name = ?1",
                    [column],
                    |r| r.get::<_, i64>(0).map(|n| n > 0),
                )
                .map_err(db)?;
            if !present {
                conn.execute_batch(&format!("ALTER TABLE egress ADD COLUMN {column} {decl};"))
                    .map_err(db)?;
            }
        }
        Ok(Self {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&c).map_err(|source| Error::Db {
            path: self.path.clone(),
            source,
        })
    }

    /// Appends a record of `bytes` sent, with no content (durably: `synchronous =
    /// FULL`) and returns its id. Call it before the data is sent.
    pub fn record(&self, destination: &str, purpose: &str, bytes: u64) -> Result<i64> {
        self.insert(destination, purpose, bytes, "", "")
    }

    /// Appends a record of `content` as it leaves the node, under the privacy `rule`,
    /// and returns its id. Call it before the data is sent.
    pub fn record_sent(
        &self,
        destination: &str,
        purpose: &str,
        rule: &str,
        content: &str,
    ) -> Result<i64> {
        self.insert(
            destination,
            purpose,
            content.len() as u64,
            rule,
            clip_to(content, MAX_CONTENT_BYTES),
        )
    }

    fn insert(
        &self,
        destination: &str,
        purpose: &str,
        bytes: u64,
        rule: &str,
        content: &str,
    ) -> Result<i64> {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.with(|c| {
            c.execute(
                "INSERT INTO egress (at, destination, purpose, bytes, rule, content)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    at,
                    clip(destination),
                    clip(purpose),
                    bytes,
                    clip(rule),
                    content
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// The newest `limit` records, oldest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<EgressRecord>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, at, destination, purpose, bytes, rule, content FROM
                 (SELECT * FROM egress ORDER BY id DESC LIMIT ?1) ORDER BY id",
            )?;
            st.query_map([limit as i64], |r| {
                Ok(EgressRecord {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    destination: r.get(2)?,
                    purpose: r.get(3)?,
                    bytes: r.get::<_, i64>(4)?.max(0) as u64,
                    rule: r.get(5)?,
                    content: r.get(6)?,
                })
            })?
            .collect()
        })
    }

    /// Total bytes sent, per destination, largest first.
    pub fn totals(&self) -> Result<Vec<(String, u64)>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT destination, SUM(bytes) AS n FROM egress GROUP BY destination ORDER BY n DESC",
            )?;
            st.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> HistoryKey {
        HistoryKey::from_bytes([7; 32])
    }

    #[test]
    fn records_are_kept_in_order_and_cannot_be_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("egress.db");
        let log = EgressLog::open(&path, &key()).unwrap();
        assert!(log.recent(10).unwrap().is_empty());
        let a = log
            .record_sent(
                "16Uiu2HAmPeer",
                "inference request",
                "scrubbed",
                "Call <PERSON_1>",
            )
            .unwrap();
        let b = log
            .record("https://rpc.example", "ticket redemption", 300)
            .unwrap();
        assert!(b > a);
        let all = log.recent(10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (
                all[0].destination.as_str(),
                all[0].bytes,
                all[0].rule.as_str()
            ),
            ("16Uiu2HAmPeer", 15, "scrubbed")
        );
        assert_eq!(all[0].content, "Call <PERSON_1>");
        assert_eq!(all[1].purpose, "ticket redemption");
        assert_eq!(log.recent(1).unwrap()[0].id, b);
        assert_eq!(
            log.totals().unwrap()[0],
            ("https://rpc.example".to_string(), 300)
        );
        // Append-only, even through a raw connection with the key.
        drop(log);
        let c = Connection::open(&path).unwrap();
        c.execute_batch(&format!("PRAGMA key = \"{}\";", key().sql()))
            .unwrap();
        assert!(c.execute("UPDATE egress SET bytes = 0", []).is_err());
        assert!(c.execute("DELETE FROM egress", []).is_err());
        let n: i64 = c
            .query_row("SELECT count(*) FROM egress", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        drop(c);
        // Reopening keeps everything; another key opens nothing.
        let log = EgressLog::open(&path, &key()).unwrap();
        assert_eq!(log.recent(10).unwrap(), all);
        drop(log);
        assert!(EgressLog::open(&path, &HistoryKey::from_bytes([8; 32])).is_err());
    }

    /// Attack: someone with the disk reads what left the node. The content is in the
    /// file only encrypted; an older plaintext log is encrypted in place, its records kept.
    #[test]
    fn what_was_sent_is_encrypted_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.db");
        {
            let c = Connection::open(&old).unwrap();
            c.execute_batch(
                "CREATE TABLE egress (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
                 destination TEXT NOT NULL, purpose TEXT NOT NULL, bytes INTEGER NOT NULL);
                 INSERT INTO egress (at, destination, purpose, bytes)
                 VALUES (1, 'peer-before', 'inference request', 9);",
            )
            .unwrap();
        }
        let log = EgressLog::open(&old, &key()).unwrap();
        let secret = "Mail bob.secret@example.com about Project Nightjar";
        log.record_sent("peer", "inference request", "as-is", secret)
            .unwrap();
        let kept = log.recent(10).unwrap();
        assert_eq!(kept[0].destination, "peer-before");
        assert_eq!(kept[1].content, secret);
        drop(log);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("bob.secret"), "plaintext on disk");
            assert!(!text.contains("peer-before"), "plaintext on disk");
            assert!(!bytes.starts_with(b"SQLite format 3"));
        }
    }

    #[test]
    fn long_fields_are_clipped_on_a_char_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let log = EgressLog::open(&dir.path().join("e.db"), &key()).unwrap();
        let long = "é".repeat(400);
        log.record(&long, "x", 1).unwrap();
        let r = &log.recent(1).unwrap()[0];
        assert!(r.destination.len() <= MAX_FIELD_BYTES);
        assert!(r.destination.chars().all(|c| c == 'é'));
        let huge = "é".repeat(MAX_CONTENT_BYTES);
        log.record_sent("p", "x", "as-is", &huge).unwrap();
        let r = &log.recent(1).unwrap()[0];
        assert_eq!(r.bytes, huge.len() as u64);
        assert!(r.content.len() <= MAX_CONTENT_BYTES && r.content.chars().all(|c| c == 'é'));
    }
}
