//! Receiving tickets: validation, durable storage (SQLite, `synchronous = FULL`) and
//! background batch redemption of the winners.
//!
//! A ticket is acknowledged only after its row is committed, so a winner that was
//! acknowledged survives `kill -9`. Redemption is idempotent: if the node dies after a
//! batch is mined but before the rows are marked, the next attempt finds the tickets
//! already paid (`TicketAlreadyRedeemed`) and marks them redeemed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::client::{Chain, TxInfo, error_name};
use crate::ticket::{Domain, SignatureError, SignedTicket, TicketParams, rand_hash};
use crate::{Error, Result, unix_now};

/// How long cached sender funds are trusted before the chain is asked again.
const FUNDS_TTL: Duration = Duration::from_secs(10);

/// The terms a receiver offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// Face value of every ticket, wei.
    pub face_value: U256,
    /// Win probability numerator over 2^256.
    pub win_prob: U256,
    /// Seconds a set of parameters (and the tickets made from it) stays valid.
    pub params_ttl_secs: u64,
    /// Most tickets per redemption transaction.
    pub batch_size: usize,
    /// Most live (unexpired, unretired) parameter sets per sender; asking for more
    /// retires the sender's oldest, so one sender cannot grow the table.
    pub max_params_per_sender: usize,
    /// Most live parameter sets in all; beyond it the oldest are retired, so a flood of
    /// made-up sender addresses cannot grow the table either.
    pub max_params: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            face_value: U256::from(10u64).pow(U256::from(16)),
            win_prob: crate::ticket::win_prob_one_in(100),
            params_ttl_secs: 3600,
            batch_size: 20,
            max_params_per_sender: 8,
            max_params: 10_000,
        }
    }
}

/// What the chain says a sender can pay (cached by [`TicketReceiver::receive_checked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderFunds {
    /// The sender's deposit, wei.
    pub deposit: U256,
    /// What this recipient may draw from the sender's reserve this round, wei.
    pub reserve_available: U256,
    /// Whether the sender has started to unlock its escrow.
    pub unlocking: bool,
}

/// Why a ticket was refused. Each reason is specific, so the sender can be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Made out to someone else.
    #[error("ticket is for recipient {got}, not this node ({expected})")]
    WrongRecipient {
        /// This node.
        expected: Address,
        /// The ticket's recipient.
        got: Address,
    },
    /// Its `recipient_rand_hash` was not issued by this node (or is long gone).
    #[error(
        "ticket uses parameters this node did not issue (unknown recipientRandHash {0}): ask for fresh ones with POST /api/tickets/params"
    )]
    UnknownParams(B256),
    /// The parameters were retired: a winner made from them went to the chain (which
    /// makes their random value public), or newer parameters replaced them.
    #[error(
        "ticket parameters {0} are retired (a winning ticket revealed their random value, or newer parameters replaced them): ask for fresh ones with POST /api/tickets/params"
    )]
    ParamsRetired(B256),
    /// A field differs from the issued parameters.
    #[error("ticket {field} differs from the parameters this node issued")]
    ParamsMismatch {
        /// Which field.
        field: &'static str,
    },
    /// Expired.
    #[error("ticket expired at {expiration} (now {now})")]
    Expired {
        /// The ticket's expiry.
        expiration: u64,
        /// Now.
        now: u64,
    },
    /// The signature is malformed or not canonical.
    #[error("bad ticket signature: {0}")]
    BadSignature(SignatureError),
    /// Signed by someone other than the ticket's sender.
    #[error("ticket claims sender {claimed} but was signed by {signer}")]
    WrongSigner {
        /// The ticket's sender.
        claimed: Address,
        /// Who signed.
        signer: Address,
    },
    /// The same ticket (or nonce) was received before.
    #[error("ticket {0} was already received (replay)")]
    Replay(B256),
    /// The sender is withdrawing its escrow.
    #[error("sender {0} is unlocking its escrow; tickets from it are no longer accepted")]
    SenderUnlocking(Address),
    /// The sender's escrow cannot cover this ticket on top of its unredeemed winners.
    #[error(
        "sender {} cannot cover this ticket: face value {} wei + {} wei of unredeemed winners > deposit {} + reserve share {} wei",
        .0.sender, .0.face_value, .0.outstanding, .0.deposit, .0.reserve
    )]
    InsufficientFunds(Box<Shortfall>),
    /// The sender's funds could not be read from the chain.
    #[error("cannot check the sender's funds: {0}")]
    Chain(String),
    /// The ticket could not be stored durably, so it is not accepted.
    #[error("cannot store the ticket: {0}")]
    Storage(String),
}

/// The numbers behind [`Rejection::InsufficientFunds`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The sender.
    pub sender: Address,
    /// This ticket's face value.
    pub face_value: U256,
    /// Face value of the sender's winning tickets not yet redeemed.
    pub outstanding: U256,
    /// Its deposit.
    pub deposit: U256,
    /// What this node may draw from its reserve.
    pub reserve: U256,
}

/// An accepted ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Accepted {
    /// Its hash.
    pub ticket_hash: B256,
    /// Whether it wins (and will be redeemed).
    pub winner: bool,
    /// Its expected value, wei: what the job was paid.
    pub value: U256,
}

/// Where a stored ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    /// Did not win; kept for replay protection.
    Lost,
    /// Won; waiting for redemption.
    Pending,
    /// Paid on chain.
    Redeemed,
    /// Won but expired before it was redeemed.
    Expired,
    /// Won but the contract refused it for good (the reason is stored).
    Failed,
}

impl TicketStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Lost => "lost",
            Self::Pending => "pending",
            Self::Redeemed => "redeemed",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "lost" => Self::Lost,
            "pending" => Self::Pending,
            "redeemed" => Self::Redeemed,
            "expired" => Self::Expired,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// What one redemption pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedeemReport {
    /// Tickets paid by this pass.
    pub redeemed: usize,
    /// Tickets found already paid (an earlier pass that died before recording it).
    pub already_redeemed: usize,
    /// Tickets that expired unredeemed.
    pub expired: usize,
    /// Tickets refused for good.
    pub failed: usize,
    /// Tickets left pending for a later pass (the sender is short of funds right now).
    pub retry_later: usize,
    /// The transactions sent.
    pub txs: Vec<TxInfo>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS params (
    rand_hash  BLOB PRIMARY KEY,
    rand       BLOB NOT NULL,
    face_value TEXT NOT NULL,
    win_prob   TEXT NOT NULL,
    expiration INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    sender     BLOB,
    retired    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tickets (
    hash       BLOB PRIMARY KEY,
    sender     BLOB NOT NULL,
    rand_hash  BLOB NOT NULL,
    nonce      TEXT NOT NULL,
    face_value TEXT NOT NULL,
    expiration INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('lost','pending','redeemed','expired','failed')),
    signed     TEXT NOT NULL,
    received   INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    tx_hash    TEXT,
    reason     TEXT,
    UNIQUE (rand_hash, sender, nonce)
);
CREATE INDEX IF NOT EXISTS tickets_pending ON tickets (status, sender);
CREATE INDEX IF NOT EXISTS tickets_rand ON tickets (rand_hash, status);
";

/// Run after [`SCHEMA`]: the per-sender index needs the columns that [`migrate`] adds to
/// databases made before parameters were bound to a sender.
const SCHEMA_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS params_live ON params (retired, sender);
";

/// Adds `sender` and `retired` to a `params` table made before parameters were bound to
/// a sender. Its old rows name no sender, so they are retired: their senders get a
/// clear refusal and fetch fresh parameters; pending winners keep their random values.
fn migrate(db: &Connection) -> rusqlite::Result<()> {
    let has_sender: bool = db.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('params') WHERE name = 'sender')",
        [],
        |r| r.get(0),
    )?;
    if !has_sender {
        db.execute_batch(
            "ALTER TABLE params ADD COLUMN sender BLOB;
             ALTER TABLE params ADD COLUMN retired INTEGER NOT NULL DEFAULT 0;
             UPDATE params SET retired = 1;",
        )?;
    }
    db.execute_batch(SCHEMA_INDEXES)
}

/// Validates, stores and redeems the tickets paid to this node.
#[derive(Debug)]
pub struct TicketReceiver {
    me: Address,
    domain: Domain,
    config: ReceiverConfig,
    db: Mutex<Connection>,
    funds: Mutex<HashMap<Address, (SenderFunds, Instant)>>,
}

impl TicketReceiver {
    /// Opens (or creates) the ticket database at `path`.
    pub fn open(path: &Path, me: Address, domain: Domain, config: ReceiverConfig) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = Connection::open(path)?;
        // Money: every commit reaches the disk before the ticket is acknowledged.
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.busy_timeout(Duration::from_secs(5))?;
        db.execute_batch(SCHEMA)?;
        migrate(&db)?;
        Ok(Self {
            me,
            domain,
            config,
            db: Mutex::new(db),
            funds: Mutex::new(HashMap::new()),
        })
    }

    /// The domain tickets must be for.
    pub fn domain(&self) -> Domain {
        self.domain
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fresh ticket parameters for `sender`: a new random value is drawn and stored
    /// (durably) before its hash is handed out. Every call rotates the random value.
    ///
    /// The table stays bounded whoever asks: beyond
    /// [`max_params_per_sender`](ReceiverConfig::max_params_per_sender) live sets for
    /// this sender, or [`max_params`](ReceiverConfig::max_params) in all, the oldest are
    /// retired; retired and expired sets are deleted once no pending winner needs their
    /// random value.
    pub fn params(&self, sender: Address) -> Result<TicketParams> {
        self.params_with(sender, self.config.face_value, self.config.win_prob)
    }

    /// [`params`](Self::params) whose tickets are each worth about `value` wei in
    /// expectation (a market seller sizes tickets to its price): the configured face
    /// value with the win probability that gives `value`, or, for a value at or above
    /// the face value, a ticket of face value `value` that always wins.
    pub fn params_worth(&self, sender: Address, value: U256) -> Result<TicketParams> {
        let value = value.max(U256::from(1u8));
        let face = self.config.face_value;
        if value >= face {
            return self.params_with(sender, value, U256::MAX);
        }
        self.params_with(sender, face, (U256::MAX / face).saturating_mul(value))
    }

    fn params_with(
        &self,
        sender: Address,
        face_value: U256,
        win_prob: U256,
    ) -> Result<TicketParams> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::Rng(e.to_string()))?;
        let rand = U256::from_be_bytes(bytes);
        let hash = rand_hash(rand);
        let now = unix_now();
        let expiration = now + self.config.params_ttl_secs;
        let mut db = self.db();
        let tx = db.transaction()?;
        // Dead sets go first: retired or expired ones whose random value no pending
        // winner needs (tickets under them are refused either way).
        tx.execute(
            "DELETE FROM params WHERE (retired = 1 OR expiration <= ?1)
               AND NOT EXISTS (SELECT 1 FROM tickets t
                               WHERE t.rand_hash = params.rand_hash AND t.status = 'pending')",
            [sql_time(now)],
        )?;
        tx.execute(
            "INSERT INTO params (rand_hash, rand, face_value, win_prob, expiration, created, sender)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                hash.as_slice(),
                &bytes[..],
                face_value.to_string(),
                win_prob.to_string(),
                sql_time(expiration),
                sql_time(now),
                sender.as_slice()
            ],
        )?;
        // Oldest first by rowid: `created` has one-second resolution.
        tx.execute(
            "UPDATE params SET retired = 1 WHERE rowid IN (
                 SELECT rowid FROM params WHERE retired = 0 AND sender = ?1
                 ORDER BY rowid DESC LIMIT -1 OFFSET ?2)",
            params![
                sender.as_slice(),
                sql_count(self.config.max_params_per_sender.max(1))
            ],
        )?;
        tx.execute(
            "UPDATE params SET retired = 1 WHERE rowid IN (
                 SELECT rowid FROM params WHERE retired = 0
                 ORDER BY rowid DESC LIMIT -1 OFFSET ?1)",
            [sql_count(self.config.max_params.max(1))],
        )?;
        tx.execute(
            "DELETE FROM params WHERE retired = 1
               AND NOT EXISTS (SELECT 1 FROM tickets t
                               WHERE t.rand_hash = params.rand_hash AND t.status = 'pending')",
            [],
        )?;
        tx.commit()?;
        Ok(TicketParams {
            domain: self.domain,
            recipient: self.me,
            sender,
            face_value,
            win_prob,
            recipient_rand_hash: hash,
            expiration_time: expiration,
        })
    }

    /// Rows in the parameters table (live, and dead ones kept for a pending winner).
    pub fn params_rows(&self) -> Result<u64> {
        let n: i64 = self
            .db()
            .query_row("SELECT COUNT(*) FROM params", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Validates a ticket against `funds` (the sender's escrow as last seen on chain) and
    /// stores it; returns once it is on disk.
    pub fn receive(&self, t: &SignedTicket, funds: &SenderFunds) -> Result<Accepted, Rejection> {
        let ticket = &t.ticket;
        if ticket.recipient != self.me {
            return Err(Rejection::WrongRecipient {
                expected: self.me,
                got: ticket.recipient,
            });
        }
        let storage = |e: rusqlite::Error| Rejection::Storage(e.to_string());
        let db = self.db();
        type Issued = (Vec<u8>, String, String, i64, Option<Vec<u8>>, bool);
        let issued: Option<Issued> = db
            .query_row(
                "SELECT rand, face_value, win_prob, expiration, sender, retired
                 FROM params WHERE rand_hash = ?1",
                [ticket.recipient_rand_hash.as_slice()],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()
            .map_err(storage)?;
        let Some((rand, face, win, expiration, issued_to, retired)) = issued else {
            return Err(Rejection::UnknownParams(ticket.recipient_rand_hash));
        };
        // Once a winner made from these parameters went to the chain, their random
        // value is public: a sender could then sign only tickets it knows will lose.
        if retired {
            return Err(Rejection::ParamsRetired(ticket.recipient_rand_hash));
        }
        if issued_to.as_deref() != Some(ticket.sender.as_slice()) {
            return Err(Rejection::ParamsMismatch { field: "sender" });
        }
        if face != ticket.face_value.to_string() {
            return Err(Rejection::ParamsMismatch {
                field: "face value",
            });
        }
        if win != ticket.win_prob.to_string() {
            return Err(Rejection::ParamsMismatch {
                field: "win probability",
            });
        }
        if expiration != sql_time(ticket.expiration_time) {
            return Err(Rejection::ParamsMismatch {
                field: "expiration time",
            });
        }
        let now = unix_now();
        if ticket.expiration_time <= now {
            return Err(Rejection::Expired {
                expiration: ticket.expiration_time,
                now,
            });
        }
        let hash = ticket.hash(&self.domain);
        let signer = recover(t, hash)?;
        if signer != ticket.sender {
            return Err(Rejection::WrongSigner {
                claimed: ticket.sender,
                signer,
            });
        }
        let seen: bool = db
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM tickets WHERE hash = ?1
                   OR (rand_hash = ?2 AND sender = ?3 AND nonce = ?4))",
                params![
                    hash.as_slice(),
                    ticket.recipient_rand_hash.as_slice(),
                    ticket.sender.as_slice(),
                    ticket.sender_nonce.to_string()
                ],
                |r| r.get(0),
            )
            .map_err(storage)?;
        if seen {
            return Err(Rejection::Replay(hash));
        }
        if funds.unlocking {
            return Err(Rejection::SenderUnlocking(ticket.sender));
        }
        let outstanding = outstanding(&db, ticket.sender).map_err(storage)?;
        let cover = funds.deposit.saturating_add(funds.reserve_available);
        if outstanding.saturating_add(ticket.face_value) > cover {
            return Err(Rejection::InsufficientFunds(Box::new(Shortfall {
                sender: ticket.sender,
                face_value: ticket.face_value,
                outstanding,
                deposit: funds.deposit,
                reserve: funds.reserve_available,
            })));
        }
        let winner = t.wins(U256::from_be_slice(&rand));
        let status = if winner {
            TicketStatus::Pending
        } else {
            TicketStatus::Lost
        };
        let signed = serde_json::to_string(t).unwrap_or_default();
        db.execute(
            "INSERT INTO tickets (hash, sender, rand_hash, nonce, face_value, expiration, status, signed, received)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                hash.as_slice(),
                ticket.sender.as_slice(),
                ticket.recipient_rand_hash.as_slice(),
                ticket.sender_nonce.to_string(),
                ticket.face_value.to_string(),
                sql_time(ticket.expiration_time),
                status.as_str(),
                signed,
                sql_time(now)
            ],
        )
        .map_err(storage)?;
        Ok(Accepted {
            ticket_hash: hash,
            winner,
            value: crate::ticket::expected_value(ticket.face_value, ticket.win_prob),
        })
    }

    /// [`receive`](Self::receive) with the sender's funds read from `chain` (cached for
    /// a few seconds, so the chain is not on the path of every job).
    pub async fn receive_checked(
        &self,
        chain: &Chain,
        t: &SignedTicket,
    ) -> Result<Accepted, Rejection> {
        let sender = t.ticket.sender;
        let cached = {
            let cache = self.funds.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .get(&sender)
                .filter(|(_, at)| at.elapsed() < FUNDS_TTL)
                .map(|(f, _)| *f)
        };
        let funds = match cached {
            Some(f) => f,
            None => {
                let chain_err = |e: Error| Rejection::Chain(e.to_string());
                let info = chain.sender_info(sender).await.map_err(chain_err)?;
                let reserve_available = chain
                    .reserve_available(sender, self.me)
                    .await
                    .map_err(chain_err)?;
                let f = SenderFunds {
                    deposit: info.deposit,
                    reserve_available,
                    unlocking: info.withdraw_time != 0,
                };
                self.funds
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(sender, (f, Instant::now()));
                f
            }
        };
        self.receive(t, &funds)
    }

    /// Ticket counts and face-value sums by status.
    pub fn summary(&self) -> Result<BTreeMap<TicketStatus, (u64, U256)>> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT status, face_value FROM tickets")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out: BTreeMap<TicketStatus, (u64, U256)> = BTreeMap::new();
        for row in rows {
            let (status, face) = row?;
            if let Some(s) = TicketStatus::parse(&status) {
                let e = out.entry(s).or_default();
                e.0 += 1;
                e.1 += face.parse::<U256>().unwrap_or_default();
            }
        }
        Ok(out)
    }

    /// The status of one ticket, if stored.
    pub fn status(&self, ticket_hash: B256) -> Result<Option<TicketStatus>> {
        let s: Option<String> = self
            .db()
            .query_row(
                "SELECT status FROM tickets WHERE hash = ?1",
                [ticket_hash.as_slice()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(s.and_then(|s| TicketStatus::parse(&s)))
    }

    /// Winning tickets waiting for redemption, oldest first, with their random values.
    pub fn pending(&self) -> Result<Vec<(SignedTicket, U256)>> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT t.signed, p.rand FROM tickets t JOIN params p ON p.rand_hash = t.rand_hash
             WHERE t.status = 'pending' ORDER BY t.received, t.rowid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (signed, rand) = row?;
            let t: SignedTicket = serde_json::from_str(&signed).map_err(|e| Error::BadFile {
                path: "tickets.db".into(),
                message: format!("stored ticket does not parse: {e}"),
            })?;
            out.push((t, U256::from_be_slice(&rand)));
        }
        Ok(out)
    }

    /// Redeems every pending winner on `chain`, in batches of `batch_size`. A transport
    /// error stops the pass and leaves the rest pending for the next one.
    pub async fn redeem_pending(&self, chain: &Chain) -> Result<RedeemReport> {
        let now = unix_now();
        let mut report = RedeemReport::default();
        report.expired += self.db().execute(
            "UPDATE tickets SET status = 'expired', reason = 'expired before redemption'
             WHERE status = 'pending' AND expiration < ?1",
            [sql_time(now)],
        )?;
        let pending = self.pending()?;
        for chunk in pending.chunks(self.config.batch_size.max(1)) {
            // The transaction carries the random values for everyone to read: retire
            // their parameters first (durably), so no ticket made from them is accepted
            // once a sender can tell winners from losers before signing.
            self.retire(chunk.iter().map(|(t, _)| t.ticket.recipient_rand_hash))?;
            let outcome = chain.batch_redeem(chunk).await?;
            let mut db = self.db();
            let tx = db.transaction()?;
            let hash_hex = outcome.tx.hash.to_string();
            for h in &outcome.redeemed {
                tx.execute(
                    "UPDATE tickets SET status = 'redeemed', tx_hash = ?2, attempts = attempts + 1 WHERE hash = ?1",
                    params![h.as_slice(), hash_hex],
                )?;
                report.redeemed += 1;
            }
            for (h, reason) in &outcome.skipped {
                let (status, counter) = match error_name(reason) {
                    "TicketAlreadyRedeemed" => ("redeemed", &mut report.already_redeemed),
                    "TicketExpired" => ("expired", &mut report.expired),
                    "InsufficientFunds" | "RecipientNotEligibleForReserve" => {
                        ("pending", &mut report.retry_later)
                    }
                    _ => ("failed", &mut report.failed),
                };
                *counter += 1;
                tx.execute(
                    "UPDATE tickets SET status = ?2, reason = ?3, attempts = attempts + 1 WHERE hash = ?1",
                    params![h.as_slice(), status, reason],
                )?;
            }
            tx.commit()?;
            report.txs.push(outcome.tx);
        }
        Ok(report)
    }
}

impl TicketReceiver {
    /// Marks parameter sets retired: tickets made from them are refused from now on.
    fn retire(&self, hashes: impl Iterator<Item = B256>) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction()?;
        for h in hashes {
            tx.execute(
                "UPDATE params SET retired = 1 WHERE rand_hash = ?1",
                [h.as_slice()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// A count limit as SQLite's integer.
fn sql_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Unix seconds as SQLite's integer (times beyond i64 are clamped).
fn sql_time(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn recover(t: &SignedTicket, hash: B256) -> Result<Address, Rejection> {
    crate::ticket::recover_signer(hash, &t.sig).map_err(Rejection::BadSignature)
}

/// Face value of `sender`'s winning tickets not yet redeemed.
fn outstanding(db: &Connection, sender: Address) -> rusqlite::Result<U256> {
    let mut stmt = db.prepare_cached(
        "SELECT face_value FROM tickets WHERE status = 'pending' AND sender = ?1",
    )?;
    let rows = stmt.query_map([sender.as_slice()], |r| r.get::<_, String>(0))?;
    let mut sum = U256::ZERO;
    for face in rows {
        sum = sum.saturating_add(face?.parse::<U256>().unwrap_or_default());
    }
    Ok(sum)
}

/// Redeems pending winners every `interval` in the background, backing off (up to
/// 5 minutes) while the chain fails. Runs until the task is aborted.
pub fn spawn_redeemer(
    receiver: Arc<TicketReceiver>,
    chain: Chain,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = interval;
        loop {
            tokio::time::sleep(wait).await;
            match receiver.redeem_pending(&chain).await {
                Ok(r) => {
                    wait = interval;
                    if r.redeemed + r.already_redeemed + r.expired + r.failed > 0 {
                        tracing::info!(
                            redeemed = r.redeemed,
                            already = r.already_redeemed,
                            expired = r.expired,
                            failed = r.failed,
                            retry = r.retry_later,
                            "redeemed winning tickets"
                        );
                    }
                }
                Err(e) => {
                    wait = (wait * 2).min(Duration::from_secs(300));
                    tracing::warn!("ticket redemption failed, retrying in {wait:?}: {e}");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sender::{SenderLimits, TicketSender};
    use crate::ticket::Ticket;
    use flurry_identity::Identity;

    fn domain() -> Domain {
        Domain {
            chain_id: 31337,
            broker: Address::repeat_byte(0xb0),
        }
    }

    fn rich() -> SenderFunds {
        SenderFunds {
            deposit: U256::from(10u64).pow(U256::from(20)),
            reserve_available: U256::ZERO,
            unlocking: false,
        }
    }

    struct World {
        _dir: tempfile::TempDir,
        receiver: TicketReceiver,
        sender_id: Identity,
        sender: TicketSender,
        params: TicketParams,
    }

    fn world(config: ReceiverConfig) -> World {
        let dir = tempfile::tempdir().unwrap();
        let me = Address::from(Identity::generate().unwrap().address_bytes());
        let receiver =
            TicketReceiver::open(&dir.path().join("t.db"), me, domain(), config).unwrap();
        let sender_id = Identity::generate().unwrap();
        // The receiver's terms are the subject here, not the sender's limits.
        let sender = TicketSender::new(sender_id.clone(), domain()).with_limits(SenderLimits {
            max_face_value: U256::MAX,
            max_ticket_ev: U256::MAX,
        });
        let params = receiver.params(sender.address()).unwrap();
        World {
            _dir: dir,
            receiver,
            sender_id,
            sender,
            params,
        }
    }

    fn resign(t: Ticket, id: &Identity) -> SignedTicket {
        t.sign(id, &domain())
    }

    #[test]
    fn every_bad_ticket_gets_its_own_reason() {
        let w = world(ReceiverConfig::default());
        let good = w
            .sender
            .ticket(&w.params, w.params.recipient, b"job")
            .unwrap();
        let me = w.params.recipient;

        let mut t = good.ticket.clone();
        t.recipient = Address::repeat_byte(9);
        assert!(matches!(
            w.receiver.receive(&resign(t, &w.sender_id), &rich()),
            Err(Rejection::WrongRecipient { expected, .. }) if expected == me
        ));

        let mut t = good.ticket.clone();
        t.recipient_rand_hash = B256::repeat_byte(3);
        assert_eq!(
            w.receiver.receive(&resign(t, &w.sender_id), &rich()),
            Err(Rejection::UnknownParams(B256::repeat_byte(3)))
        );

        let mut t = good.ticket.clone();
        t.face_value += U256::from(1);
        assert_eq!(
            w.receiver.receive(&resign(t, &w.sender_id), &rich()),
            Err(Rejection::ParamsMismatch {
                field: "face value"
            })
        );

        let mut t = good.ticket.clone();
        t.win_prob = U256::MAX;
        assert_eq!(
            w.receiver.receive(&resign(t, &w.sender_id), &rich()),
            Err(Rejection::ParamsMismatch {
                field: "win probability"
            })
        );

        // Signed by someone else while claiming the sender's escrow.
        let thief = Identity::generate().unwrap();
        let forged = resign(good.ticket.clone(), &thief);
        assert!(matches!(
            w.receiver.receive(&forged, &rich()),
            Err(Rejection::WrongSigner { claimed, signer })
                if claimed == good.ticket.sender && signer == Address::from(thief.address_bytes())
        ));

        let mut short = good.clone();
        short.sig = short.sig.slice(..64);
        assert_eq!(
            w.receiver.receive(&short, &rich()),
            Err(Rejection::BadSignature(SignatureError::Length(64)))
        );

        let unlocking = SenderFunds {
            unlocking: true,
            ..rich()
        };
        assert_eq!(
            w.receiver.receive(&good, &unlocking),
            Err(Rejection::SenderUnlocking(good.ticket.sender))
        );

        let poor = SenderFunds {
            deposit: w.params.face_value - U256::from(1),
            ..rich()
        };
        assert!(matches!(
            w.receiver.receive(&good, &poor),
            Err(Rejection::InsufficientFunds(_))
        ));

        // None of the refusals stored anything: the good ticket is still new.
        let a = w.receiver.receive(&good, &rich()).unwrap();
        assert_eq!(a.ticket_hash, good.ticket.hash(&domain()));
        assert_eq!(a.value, w.params.ticket_value());
        assert_eq!(
            w.receiver.receive(&good, &rich()),
            Err(Rejection::Replay(a.ticket_hash))
        );
        // Same nonce with other aux data: a different hash, still a replay of the nonce.
        let mut t = good.ticket.clone();
        t.aux_data = alloy::primitives::Bytes::from_static(b"other");
        assert!(matches!(
            w.receiver.receive(&resign(t, &w.sender_id), &rich()),
            Err(Rejection::Replay(_))
        ));
    }

    /// Parameters are bound to the sender that asked for them: another sender's ticket
    /// under them is refused even when it is properly signed.
    #[test]
    fn parameters_of_another_sender_are_refused() {
        let w = world(ReceiverConfig::default());
        let other_id = Identity::generate().unwrap();
        let t = Ticket {
            recipient: w.params.recipient,
            sender: Address::from(other_id.address_bytes()),
            face_value: w.params.face_value,
            win_prob: w.params.win_prob,
            sender_nonce: U256::from(1),
            expiration_time: w.params.expiration_time,
            recipient_rand_hash: w.params.recipient_rand_hash,
            aux_data: Default::default(),
        };
        assert_eq!(
            w.receiver.receive(&resign(t, &other_id), &rich()),
            Err(Rejection::ParamsMismatch { field: "sender" })
        );
    }

    /// A ticket store made before parameters were bound to a sender opens, and its old
    /// parameters (which name no sender) are retired, not trusted for anyone.
    #[test]
    fn an_old_ticket_store_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let db = Connection::open(&path).unwrap();
            db.execute_batch(
                "CREATE TABLE params (rand_hash BLOB PRIMARY KEY, rand BLOB NOT NULL,
                   face_value TEXT NOT NULL, win_prob TEXT NOT NULL,
                   expiration INTEGER NOT NULL, created INTEGER NOT NULL);
                 INSERT INTO params VALUES (x'01', x'02', '1', '1', 9999999999, 0);",
            )
            .unwrap();
        }
        let me = Address::repeat_byte(7);
        let r = TicketReceiver::open(&path, me, domain(), ReceiverConfig::default()).unwrap();
        let retired: bool = r
            .db()
            .query_row(
                "SELECT retired FROM params WHERE rand_hash = x'01'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert!(retired);
        r.params(Address::repeat_byte(8)).unwrap();
        // Opening again is a no-op.
        drop(r);
        TicketReceiver::open(&path, me, domain(), ReceiverConfig::default()).unwrap();
    }

    #[test]
    fn expired_parameters_are_refused() {
        let w = world(ReceiverConfig {
            params_ttl_secs: 0,
            ..ReceiverConfig::default()
        });
        // The sender refuses expired parameters itself …
        assert!(matches!(
            w.sender.ticket(&w.params, w.params.recipient, b""),
            Err(crate::SenderError::Expired(_))
        ));
        // … and the receiver refuses a ticket made from them anyway.
        let t = Ticket {
            recipient: w.params.recipient,
            sender: w.sender.address(),
            face_value: w.params.face_value,
            win_prob: w.params.win_prob,
            sender_nonce: U256::from(1),
            expiration_time: w.params.expiration_time,
            recipient_rand_hash: w.params.recipient_rand_hash,
            aux_data: Default::default(),
        };
        assert!(matches!(
            w.receiver.receive(&resign(t, &w.sender_id), &rich()),
            Err(Rejection::Expired { .. })
        ));
    }

    #[test]
    fn outstanding_winners_count_against_the_senders_funds() {
        // Every ticket wins; the deposit covers exactly three.
        let w = world(ReceiverConfig {
            win_prob: U256::MAX,
            ..ReceiverConfig::default()
        });
        let funds = SenderFunds {
            deposit: w.params.face_value * U256::from(3),
            ..rich()
        };
        for _ in 0..3 {
            let t = w.sender.ticket(&w.params, w.params.recipient, b"").unwrap();
            assert!(w.receiver.receive(&t, &funds).unwrap().winner);
        }
        let t = w.sender.ticket(&w.params, w.params.recipient, b"").unwrap();
        assert!(matches!(
            w.receiver.receive(&t, &funds),
            Err(Rejection::InsufficientFunds(s))
                if s.outstanding == w.params.face_value * U256::from(3)
        ));
        assert_eq!(w.receiver.pending().unwrap().len(), 3);
    }

    #[test]
    fn sender_splits_a_job_into_tickets_by_expected_value() {
        let w = world(ReceiverConfig::default());
        let ev = w.params.ticket_value();
        assert_eq!(
            w.sender
                .pay(&w.params, w.params.recipient, ev, b"")
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            w.sender
                .pay(
                    &w.params,
                    w.params.recipient,
                    ev * U256::from(3) + U256::from(1),
                    b""
                )
                .unwrap()
                .len(),
            4
        );
        let tickets = w
            .sender
            .pay(&w.params, w.params.recipient, ev * U256::from(5), b"")
            .unwrap();
        let nonces: std::collections::HashSet<_> =
            tickets.iter().map(|t| t.ticket.sender_nonce).collect();
        assert_eq!(nonces.len(), 5, "every ticket has its own nonce");
        assert!(matches!(
            w.sender
                .pay(&w.params, w.params.recipient, ev * U256::from(5000), b""),
            Err(crate::SenderError::TooManyTickets { .. })
        ));
        let other = TicketSender::new(
            w.sender_id.clone(),
            Domain {
                chain_id: 1,
                ..domain()
            },
        );
        assert!(matches!(
            other.ticket(&w.params, w.params.recipient, b""),
            Err(crate::SenderError::WrongDomain { .. })
        ));
    }
}
