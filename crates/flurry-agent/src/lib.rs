//! The agent: chat sessions with persistent history, prompt assembly, and the models the
//! node serves.
//!
//! - [`History`] keeps conversations in SQLite (`$FLURRY_HOME/history.db`).
//! - [`ModelHost`] loads installed models on demand into engines.
//! - [`EgressLog`] is the append-only record of everything that leaves the node.
//! - [`Agent::send`] runs one turn of a conversation: it builds the prompt from the
//!   stored history (dropping the oldest turns when the context is full), queues it,
//!   and returns a [`ChatStream`] that saves the answer as it is read, including a
//!   partial answer when the reader stops early.
//! - [`Recall`] finds the passages of the private memory that answer a message; they go
//!   into the prompt and come back as [`Citation`]s.

pub mod egress;
pub mod embed;
pub mod history;
pub mod models;
pub mod recall;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use flurry_infer::engine::{Event, FinishReason, GenerateRequest, Prompt, Timings};
use flurry_infer::sampler::SamplingParams;
use flurry_infer::template::ChatMessage;

pub use egress::{EgressLog, EgressRecord};
pub use embed::EmbedHost;
pub use history::{Conversation, History, HistoryKey, Message, Status};
pub use models::{LoadedInfo, LoadedModel, ModelHost};
pub use recall::{Citation, Passage, Recall};

/// Errors of the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The history database failed.
    #[error("chat history {}: {source}", path.display())]
    Db {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The history database is damaged.
    #[error(
        "chat history {} is damaged ({message}): move it aside to start a new history",
        path.display()
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What the check found.
        message: String,
    },
    /// File-system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Rng(String),
    /// The embedding model failed to load or run.
    #[error("embedding model: {0}")]
    Embed(String),
    /// The memory store failed.
    #[error("memory: {0}")]
    Memory(String),
    /// No such conversation.
    #[error("no conversation {0:?}")]
    ConversationNotFound(String),
    /// No installed model has this name.
    #[error(
        "unknown model {0:?}: run `flurry model list` to see installed models, or `flurry model import FILE` to add one"
    )]
    ModelNotFound(String),
    /// A bad request (empty message and the like).
    #[error("{0}")]
    Invalid(String),
    /// The engine refused or failed.
    #[error(transparent)]
    Infer(#[from] flurry_infer::Error),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Sets up an open connection of the node: busy timeout, WAL mode, the given `pragmas`
/// (e.g. `synchronous`), then `quick_check`, so that a damaged file is an error that
/// names it.
pub(crate) fn prepare_db(
    conn: &rusqlite::Connection,
    path: &std::path::Path,
    pragmas: &str,
) -> Result<()> {
    let db = |source| Error::Db {
        path: path.to_path_buf(),
        source,
    };
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(db)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            message: format!("cannot switch to WAL mode (got {mode})"),
        });
    }
    conn.execute_batch(pragmas).map_err(db)?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(db)?;
    if check != "ok" {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            message: check,
        });
    }
    Ok(())
}

/// Options for one conversation turn.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// Model name; `None` keeps the conversation's model, or the default.
    pub model: Option<String>,
    /// Sampling (seeded).
    pub sampling: SamplingParams,
    /// Token limit; `None` means up to `max_tokens_cap` and the context.
    pub max_tokens: Option<usize>,
    /// Use the private memory for this turn; `None` follows the conversation's setting.
    pub memory: Option<bool>,
}

/// The agent: history plus models.
#[derive(Debug)]
pub struct Agent {
    /// Chat history.
    pub history: Arc<History>,
    /// Models.
    pub models: Arc<ModelHost>,
    /// Default and largest `max_tokens` of a turn.
    pub max_tokens_cap: usize,
    /// Retrieval from the private memory, when the node has one open.
    pub recall: Option<Arc<Recall>>,
}

/// Tokens between saves of a growing answer, so a crash keeps most of it.
const SAVE_EVERY: usize = 32;

impl Agent {
    /// The privacy scrubber: with the owner's entities when the node has a memory, with
    /// patterns and name cues only otherwise. Blocking.
    pub fn scrubber(&self) -> Result<Arc<flurry_privacy::Scrubber>> {
        match &self.recall {
            Some(r) => r.scrubber(),
            None => Ok(Arc::new(flurry_privacy::Scrubber::new(
                &flurry_privacy::EntityList::new(),
            ))),
        }
    }

    /// Runs one turn: stores `content` as the user's message and starts the answer.
    /// Blocking (loads models, tokenizes): call it off async executors.
    pub fn send(&self, conversation: &str, content: &str, opts: SendOptions) -> Result<ChatStream> {
        if content.trim().is_empty() {
            return Err(Error::Invalid("the message is empty".into()));
        }
        let conv = self.history.get(conversation)?;
        let name = opts
            .model
            .clone()
            .or_else(|| (!conv.model.is_empty()).then(|| conv.model.clone()));
        let model = self.models.get(name.as_deref())?;
        let mut msgs: Vec<ChatMessage> = self
            .history
            .messages(conversation)?
            .into_iter()
            .filter(|m| !m.content.is_empty() && m.status != Status::Error)
            .map(|m| ChatMessage::new(m.role, m.content))
            .collect();
        msgs.push(ChatMessage::new("user", content));
        let passages = match &self.recall {
            Some(r) if opts.memory.unwrap_or(conv.memory) => {
                r.passages(content, &model).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "answering without memory");
                    Vec::new()
                })
            }
            _ => Vec::new(),
        };
        recall::with_memory(&mut msgs, &passages);
        let citations = recall::citations(&passages);
        let tokens = fit_context(&model, &mut msgs)?;
        let room = model.engine.context_length() - tokens.len();
        let max_tokens = opts
            .max_tokens
            .unwrap_or(self.max_tokens_cap)
            .min(self.max_tokens_cap)
            .min(room)
            .max(1);
        let req = GenerateRequest::new(Prompt::Tokens(tokens))
            .with_sampling(opts.sampling)
            .with_max_tokens(max_tokens);
        let rx = model.engine.submit(req)?;
        let (user_message_id, message_id) =
            self.history
                .begin_turn(conversation, content, &model.entry.name, &citations)?;
        Ok(ChatStream {
            rx,
            history: self.history.clone(),
            model,
            conversation_id: conversation.to_string(),
            user_message_id,
            message_id,
            text: String::new(),
            unsaved: 0,
            finished: false,
            pending_done: None,
            citations,
        })
    }
}

/// Tokenizes `msgs`, dropping the oldest non-system messages until the prompt leaves
/// room in the context; the newest user message is always kept.
fn fit_context(model: &LoadedModel, msgs: &mut Vec<ChatMessage>) -> Result<Vec<u32>> {
    loop {
        match model.engine.tokenize(&Prompt::Chat(msgs.clone())) {
            Ok(t) if t.len() + 16 <= model.engine.context_length() || msgs.len() <= 1 => {
                return Ok(t);
            }
            Ok(_) | Err(flurry_infer::Error::ContextOverflow { .. }) => {
                let first = msgs.iter().position(|m| m.role != "system");
                match first {
                    Some(i) if i + 1 < msgs.len() => {
                        msgs.remove(i);
                    }
                    _ => return Ok(model.engine.tokenize(&Prompt::Chat(msgs.clone()))?),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// What a [`ChatStream`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// Newly generated text.
    Token(String),
    /// The answer is complete.
    Done {
        /// Why it ended.
        reason: FinishReason,
        /// Counts and times.
        timings: Timings,
    },
    /// Generation failed.
    Error(String),
}

/// The answer to one turn, saved to history as it is read. Dropping it before the end
/// stops generation and keeps the partial answer with status `stopped`.
#[derive(Debug)]
pub struct ChatStream {
    rx: Receiver<Event>,
    history: Arc<History>,
    /// The model answering.
    pub model: Arc<LoadedModel>,
    /// Conversation id.
    pub conversation_id: String,
    /// The stored user message.
    pub user_message_id: i64,
    /// The stored answer.
    pub message_id: i64,
    text: String,
    unsaved: usize,
    finished: bool,
    pending_done: Option<ChatEvent>,
    /// The memory passages the answer was given.
    pub citations: Vec<Citation>,
}

impl ChatStream {
    /// The next event, waiting at most `timeout`. `Ok(None)` after the end.
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<ChatEvent>, RecvTimeoutError> {
        if let Some(ev) = self.pending_done.take() {
            return Ok(Some(ev));
        }
        if self.finished {
            return Ok(None);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = match self.rx.recv_timeout(left) {
                Ok(ev) => ev,
                Err(RecvTimeoutError::Timeout) => return Err(RecvTimeoutError::Timeout),
                Err(RecvTimeoutError::Disconnected) => Event::Error("the engine stopped".into()),
            };
            match ev {
                Event::Prefill { .. } | Event::Commitments(_) => continue,
                Event::Token { text, .. } => {
                    self.text.push_str(&text);
                    self.unsaved += 1;
                    if self.unsaved >= SAVE_EVERY {
                        self.save(Status::Streaming);
                    }
                    if text.is_empty() {
                        continue;
                    }
                    return Ok(Some(ChatEvent::Token(text)));
                }
                Event::Done {
                    reason,
                    timings,
                    tail,
                } => {
                    self.text.push_str(&tail);
                    self.finished = true;
                    self.save(Status::Complete);
                    let done = ChatEvent::Done { reason, timings };
                    if tail.is_empty() {
                        return Ok(Some(done));
                    }
                    // Deliver the held-back tail as a token first, then Done.
                    self.pending_done = Some(done);
                    return Ok(Some(ChatEvent::Token(tail)));
                }
                Event::Error(e) => {
                    self.finished = true;
                    self.save(Status::Error);
                    return Ok(Some(ChatEvent::Error(e)));
                }
            }
        }
    }

    /// The answer so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn save(&mut self, status: Status) {
        self.unsaved = 0;
        if let Err(e) = self
            .history
            .update_message(self.message_id, &self.text, status)
        {
            tracing::error!(error = %e, "cannot save the answer");
        }
    }
}

impl Drop for ChatStream {
    fn drop(&mut self) {
        if !self.finished {
            self.save(Status::Stopped);
        }
    }
}
