//! The egress audit log: one append-only record for every transfer of data off the node,
//! by destination and purpose, so that the user can see what left.
//!
//! The log is a SQLite table whose triggers refuse `UPDATE` and `DELETE`: records can only
//! be added. Nothing in the node sends data anywhere yet; the peer-to-peer and market
//! features record their transfers here before they send.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::{Error, Result};

/// Longest destination or purpose kept, in bytes.
pub const MAX_FIELD_BYTES: usize = 512;

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
    bytes INTEGER NOT NULL CHECK (bytes >= 0)
);
CREATE TRIGGER IF NOT EXISTS egress_no_update BEFORE UPDATE ON egress
BEGIN SELECT RAISE(ABORT, 'the egress log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS egress_no_delete BEFORE DELETE ON egress
BEGIN SELECT RAISE(ABORT, 'the egress log is append-only'); END;
";

fn clip(s: &str) -> &str {
    if s.len() <= MAX_FIELD_BYTES {
        return s;
    }
    let mut end = MAX_FIELD_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl EgressLog {
    /// Opens (or creates) the log at `path` (`$FLURRY_HOME/egress.db`).
    pub fn open(path: &Path) -> Result<Self> {
        let db = |source| Error::Db {
            path: path.to_path_buf(),
            source,
        };
        // FULL: a record must be on disk before the data it describes is sent.
        let conn = crate::open_db(path, "FULL")?;
        conn.execute_batch(SCHEMA).map_err(db)?;
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

    /// Appends a record (durably: `synchronous = FULL`) and returns its id. Call it before
    /// the data is sent.
    pub fn record(&self, destination: &str, purpose: &str, bytes: u64) -> Result<i64> {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.with(|c| {
            c.execute(
                "INSERT INTO egress (at, destination, purpose, bytes) VALUES (?1, ?2, ?3, ?4)",
                params![at, clip(destination), clip(purpose), bytes],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// The newest `limit` records, oldest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<EgressRecord>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, at, destination, purpose, bytes FROM
                 (SELECT * FROM egress ORDER BY id DESC LIMIT ?1) ORDER BY id",
            )?;
            st.query_map([limit as i64], |r| {
                Ok(EgressRecord {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    destination: r.get(2)?,
                    purpose: r.get(3)?,
                    bytes: r.get::<_, i64>(4)?.max(0) as u64,
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

    #[test]
    fn records_are_kept_in_order_and_cannot_be_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("egress.db");
        let log = EgressLog::open(&path).unwrap();
        assert!(log.recent(10).unwrap().is_empty());
        let a = log
            .record("16Uiu2HAmPeer", "inference request", 1200)
            .unwrap();
        let b = log
            .record("https://rpc.example", "ticket redemption", 300)
            .unwrap();
        assert!(b > a);
        let all = log.recent(10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].destination.as_str(), all[0].bytes),
            ("16Uiu2HAmPeer", 1200)
        );
        assert_eq!(all[1].purpose, "ticket redemption");
        assert_eq!(log.recent(1).unwrap()[0].id, b);
        assert_eq!(
            log.totals().unwrap()[0],
            ("16Uiu2HAmPeer".to_string(), 1200)
        );
        // Append-only, even through a raw connection.
        drop(log);
        let c = Connection::open(&path).unwrap();
        assert!(c.execute("UPDATE egress SET bytes = 0", []).is_err());
        assert!(c.execute("DELETE FROM egress", []).is_err());
        let n: i64 = c
            .query_row("SELECT count(*) FROM egress", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        // Reopening keeps everything.
        let log = EgressLog::open(&path).unwrap();
        assert_eq!(log.recent(10).unwrap(), all);
    }

    #[test]
    fn long_fields_are_clipped_on_a_char_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let log = EgressLog::open(&dir.path().join("e.db")).unwrap();
        let long = "é".repeat(400);
        log.record(&long, "x", 1).unwrap();
        let r = &log.recent(1).unwrap()[0];
        assert!(r.destination.len() <= MAX_FIELD_BYTES);
        assert!(r.destination.chars().all(|c| c == 'é'));
    }
}
