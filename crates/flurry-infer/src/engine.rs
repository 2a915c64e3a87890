//! The engine thread: a bounded request queue, per-request response channels, token
//! streaming, cancellation and several sequences served at once.
//!
//! Each [`GenerateRequest`] gets its own bounded channel of [`Event`]s. Dropping the
//! receiver cancels the request: the engine notices on its next send and frees the
//! sequence. Up to `max_active` sequences run at once; the engine steps them in turn
//! (a prefill chunk or one decode step each), so a long prompt never stalls the others.
//! Requests beyond `max_active` wait in the queue; beyond `queue_capacity` they are
//! refused with [`Error::QueueFull`].
//!
//! Context policy: a prompt that does not fit (it needs at least one free position for
//! the answer) is refused with [`Error::ContextOverflow`]; generation that reaches the
//! end of the context stops with [`FinishReason::Length`]. Nothing is truncated silently.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::commit::{ChunkHasher, Commitments};
use crate::logprob::{MAX_TOP_LOGPROBS, TokenLogprobs, token_logprobs};
use crate::model::{BatchItem, KvCache, Logits, Model, Scratch};
use crate::sampler::{Sampler, SamplingParams};
use crate::template::ChatMessage;
use crate::tokenizer::StreamDecoder;
use crate::{Error, Result};

/// Prompt tokens processed per engine step, so one long prompt cannot hold up the
/// other sequences for long.
const PREFILL_CHUNK: usize = 256;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Kernel threads; 0 means one per core.
    pub threads: usize,
    /// Waiting requests beyond this are refused.
    pub queue_capacity: usize,
    /// Sequences generated at once.
    pub max_active: usize,
    /// Context window per sequence; 0 means the model's own, and it is capped by it.
    pub context_length: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            queue_capacity: 16,
            max_active: 4,
            context_length: 4096,
        }
    }
}

impl EngineConfig {
    /// Sets the thread count.
    pub fn with_threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }
    /// Sets the queue capacity.
    pub fn with_queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n;
        self
    }
    /// Sets the number of sequences served at once.
    pub fn with_max_active(mut self, n: usize) -> Self {
        self.max_active = n;
        self
    }
    /// Sets the context window.
    pub fn with_context_length(mut self, n: usize) -> Self {
        self.context_length = n;
        self
    }
}

/// What to generate from.
#[derive(Debug, Clone)]
pub enum Prompt {
    /// Text sent as-is (no chat template). BOS is added when the vocabulary asks
    /// for it; special-token text is not parsed.
    Raw(String),
    /// A conversation, rendered with the model's chat template. Only the template's
    /// own text becomes control tokens; message text never does
    /// ([`ChatTemplate::tokenize`](crate::template::ChatTemplate::tokenize)).
    Chat(Vec<ChatMessage>),
    /// Token ids, used as given.
    Tokens(Vec<u32>),
}

/// One generation request.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// Sampling parameters (seeded).
    pub sampling: SamplingParams,
    /// Maximum tokens to generate.
    pub max_tokens: usize,
    /// Generation stops before the first occurrence of any of these strings.
    pub stop: Vec<String>,
    /// Report each generated token's log-probability and this many most likely
    /// alternatives (at most [`MAX_TOP_LOGPROBS`]); `None`: no log-probabilities.
    pub logprobs: Option<usize>,
    /// Commit to the computation with this salt (the job's id): the engine sends
    /// [`Event::Commitments`] before [`Event::Done`] (`crate::commit`).
    pub commit: Option<[u8; 32]>,
}

impl GenerateRequest {
    /// A raw-text request with default sampling and 128 tokens.
    pub fn raw(text: impl Into<String>) -> Self {
        Self::new(Prompt::Raw(text.into()))
    }

    /// A chat request.
    pub fn chat(messages: Vec<ChatMessage>) -> Self {
        Self::new(Prompt::Chat(messages))
    }

    /// A request for a prompt with default settings.
    pub fn new(prompt: Prompt) -> Self {
        Self {
            prompt,
            sampling: SamplingParams::default(),
            max_tokens: 128,
            stop: Vec::new(),
            logprobs: None,
            commit: None,
        }
    }

    /// Sets sampling parameters.
    pub fn with_sampling(mut self, s: SamplingParams) -> Self {
        self.sampling = s;
        self
    }

    /// Sets the token limit.
    pub fn with_max_tokens(mut self, n: usize) -> Self {
        self.max_tokens = n;
        self
    }

    /// Sets stop strings.
    pub fn with_stop(mut self, stop: Vec<String>) -> Self {
        self.stop = stop;
        self
    }

    /// Asks for commitments to the computation, salted with the job's id.
    pub fn with_commit(mut self, salt: [u8; 32]) -> Self {
        self.commit = Some(salt);
        self
    }

    /// Asks for log-probabilities with `top` alternatives per token (`None`: none).
    pub fn with_logprobs(mut self, top: Option<usize>) -> Self {
        self.logprobs = top;
        self
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens` or the end of the context window.
    Length,
}

/// Per-request figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub completion_tokens: usize,
    /// Time spent on the prompt, in milliseconds.
    pub prefill_ms: f64,
    /// Time spent generating, in milliseconds.
    pub decode_ms: f64,
    /// Time waiting in the queue, in milliseconds.
    pub queue_ms: f64,
}

/// Events streamed back for a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// One generated token and the text it completes (may be empty while a UTF-8
    /// sequence or a possible stop string is incomplete).
    Token {
        /// Token id.
        id: u32,
        /// Newly visible text.
        text: String,
        /// The token's log-probability and the most likely alternatives, when the
        /// request asked for them.
        logprobs: Option<Box<TokenLogprobs>>,
    },
    /// The prompt is being processed (sent after each prefill chunk but the last).
    Prefill {
        /// Prompt tokens processed so far.
        done: usize,
        /// Prompt tokens in all.
        total: usize,
    },
    /// The tokens and chunk commitments of a request that asked for them
    /// ([`GenerateRequest::with_commit`]); sent just before [`Event::Done`].
    Commitments(Box<Commitments>),
    /// Generation finished.
    Done {
        /// Why.
        reason: FinishReason,
        /// Counts and times.
        timings: Timings,
        /// Text not yet streamed (held back while it could have begun a stop string,
        /// or an incomplete UTF-8 sequence); usually empty.
        tail: String,
    },
    /// The request failed.
    Error(String),
}

/// A finished generation collected by [`Engine::generate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    /// Generated text (stop string excluded).
    pub text: String,
    /// Generated token ids.
    pub tokens: Vec<u32>,
    /// Per generated token, when the request asked for log-probabilities.
    pub logprobs: Vec<TokenLogprobs>,
    /// The commitments, when the request asked for them.
    #[serde(skip)]
    pub commitments: Option<Commitments>,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Counts and times.
    pub timings: Timings,
}

/// Live counters of an engine.
#[derive(Debug, Default)]
struct Counters {
    queued: AtomicUsize,
    active: AtomicUsize,
}

/// A snapshot of an engine's load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Requests waiting to be admitted.
    pub queued: usize,
    /// Requests being generated.
    pub active: usize,
}

struct Job {
    req: GenerateRequest,
    tx: SyncSender<Event>,
    queued_at: Instant,
}

/// A running engine. Dropping it stops the thread after the current step.
pub struct Engine {
    stats: Arc<Counters>,
    tx: Option<SyncSender<Job>>,
    handle: Option<JoinHandle<()>>,
    model: Arc<Model>,
    queue_capacity: usize,
    context_length: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("model", &self.model.name())
            .finish()
    }
}

impl Engine {
    /// Starts the engine thread for a model.
    pub fn start(model: impl Into<Arc<Model>>, cfg: EngineConfig) -> Result<Self> {
        let model = model.into();
        let threads = if cfg.threads == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            cfg.threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("flurry-kernel-{i}"))
            .build()
            .map_err(|e| Error::InvalidRequest(format!("cannot start {threads} threads: {e}")))?;
        let train = model.hparams().n_ctx_train;
        let context_length = match cfg.context_length {
            0 => train,
            n => n.min(train),
        };
        let (tx, rx) = mpsc::sync_channel(cfg.queue_capacity.max(1));
        let m = model.clone();
        let max_active = cfg.max_active.max(1);
        let stats = Arc::new(Counters::default());
        let st = stats.clone();
        let handle = std::thread::Builder::new()
            .name("flurry-engine".into())
            .spawn(move || run(m, rx, pool, max_active, context_length, &st))
            .map_err(|e| Error::InvalidRequest(format!("cannot start the engine thread: {e}")))?;
        Ok(Self {
            stats,
            tx: Some(tx),
            handle: Some(handle),
            model,
            queue_capacity: cfg.queue_capacity,
            context_length,
        })
    }

    /// The model being served.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Context window per sequence.
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// Requests waiting and running now.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            queued: self.stats.queued.load(Ordering::Relaxed),
            active: self.stats.active.load(Ordering::Relaxed),
        }
    }

    /// Renders and tokenizes a prompt as the engine would, and checks that it fits the
    /// context window with room for at least one generated token. Callers that want to
    /// report the prompt's size, or refuse an over-long prompt before queueing it, call
    /// this and submit [`Prompt::Tokens`].
    pub fn tokenize(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        let tokens = tokenize(&self.model, prompt)?;
        check_tokens(&self.model, &tokens, self.context_length)?;
        Ok(tokens)
    }

    /// Queues a request. Returns its event stream, or [`Error::QueueFull`] at once when
    /// the queue is full.
    pub fn submit(&self, req: GenerateRequest) -> Result<Receiver<Event>> {
        req.sampling.validate()?;
        if req.max_tokens == 0 {
            return Err(Error::InvalidRequest(
                "max_tokens must be at least 1".into(),
            ));
        }
        if let Some(k) = req.logprobs.filter(|&k| k > MAX_TOP_LOGPROBS) {
            return Err(Error::InvalidRequest(format!(
                "{k} top log-probabilities asked for; at most {MAX_TOP_LOGPROBS} are given"
            )));
        }
        // The channel holds every event a request can produce, so the engine never
        // blocks on a slow reader.
        let cap = req.max_tokens.min(self.context_length) + self.context_length / PREFILL_CHUNK + 4;
        let (tx, rx) = mpsc::sync_channel(cap);
        let job = Job {
            req,
            tx,
            queued_at: Instant::now(),
        };
        // Counted before sending, so the engine never sees a job it has not counted.
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        let sent = self.tx.as_ref().ok_or(Error::EngineStopped)?.try_send(job);
        if sent.is_err() {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
        }
        match sent {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(Error::QueueFull(self.queue_capacity)),
            Err(TrySendError::Disconnected(_)) => Err(Error::EngineStopped),
        }
    }

    /// Runs a request to completion.
    pub fn generate(&self, req: GenerateRequest) -> Result<Completion> {
        let rx = self.submit(req)?;
        let mut text = String::new();
        let mut tokens = Vec::new();
        let mut logprobs = Vec::new();
        let mut commitments = None;
        for ev in rx {
            match ev {
                Event::Token {
                    id,
                    text: t,
                    logprobs: lp,
                } => {
                    tokens.push(id);
                    text.push_str(&t);
                    logprobs.extend(lp.map(|b| *b));
                }
                Event::Prefill { .. } => {}
                Event::Commitments(c) => commitments = Some(*c),
                Event::Done {
                    reason,
                    timings,
                    tail,
                } => {
                    text.push_str(&tail);
                    return Ok(Completion {
                        text,
                        tokens,
                        logprobs,
                        commitments,
                        finish_reason: reason,
                        timings,
                    });
                }
                Event::Error(e) => return Err(Error::InvalidRequest(e)),
            }
        }
        Err(Error::EngineStopped)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Seq {
    tx: SyncSender<Event>,
    pending: Vec<u32>,
    cache: KvCache,
    sampler: Sampler,
    decoder: StreamDecoder,
    stop: Vec<String>,
    max_tokens: usize,
    logprobs: Option<usize>,
    generated: usize,
    text: String,
    emitted: usize,
    timings: Timings,
    last: Option<u32>,
    /// Commitments under way: the hasher, the prompt and the sampled tokens.
    commit: Option<Committing>,
}

struct Committing {
    hasher: ChunkHasher,
    prompt: Vec<u32>,
    output: Vec<u32>,
    eog: bool,
}

enum Step {
    Continue,
    Finished,
}

fn run(
    model: Arc<Model>,
    rx: Receiver<Job>,
    pool: rayon::ThreadPool,
    max_active: usize,
    context: usize,
    stats: &Counters,
) {
    let mut active: Vec<Seq> = Vec::new();
    let mut scratch = Scratch::default();
    let mut open = true;
    loop {
        while open && active.len() < max_active {
            let job = if active.is_empty() {
                match rx.recv() {
                    Ok(j) => j,
                    Err(_) => {
                        open = false;
                        break;
                    }
                }
            } else {
                match rx.try_recv() {
                    Ok(j) => j,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            };
            stats.queued.fetch_sub(1, Ordering::Relaxed);
            match admit(&model, job, context) {
                Ok(seq) => active.push(seq),
                Err((tx, e)) => {
                    let _ = tx.try_send(Event::Error(e.to_string()));
                }
            }
            stats.active.store(active.len(), Ordering::Relaxed);
        }
        stats.active.store(active.len(), Ordering::Relaxed);
        if active.is_empty() {
            if open {
                continue;
            }
            return;
        }
        step_all(&model, &mut active, &mut scratch, &pool, context);
        stats.active.store(active.len(), Ordering::Relaxed);
    }
}

type AdmitError = (SyncSender<Event>, Error);

fn admit(model: &Model, job: Job, context: usize) -> std::result::Result<Seq, AdmitError> {
    let Job { req, tx, queued_at } = job;
    let tokens = match tokenize(model, &req.prompt) {
        Ok(t) => t,
        Err(e) => return Err((tx, e)),
    };
    // Checked here so that one bad request can never fail the batch it would join.
    if let Err(e) = check_tokens(model, &tokens, context) {
        return Err((tx, e));
    }
    let mut sampler = Sampler::new(req.sampling.clone());
    for &t in &tokens {
        sampler.accept(t);
    }
    let commit = req.commit.map(|salt| Committing {
        hasher: ChunkHasher::new(salt, tokens.len()),
        prompt: tokens.clone(),
        output: Vec::new(),
        eog: false,
    });
    Ok(Seq {
        commit,
        tx,
        cache: model.new_cache(context),
        sampler,
        decoder: StreamDecoder::new(),
        stop: req.stop.into_iter().filter(|s| !s.is_empty()).collect(),
        max_tokens: req.max_tokens,
        logprobs: req.logprobs,
        generated: 0,
        text: String::new(),
        emitted: 0,
        timings: Timings {
            prompt_tokens: tokens.len(),
            queue_ms: ms(queued_at.elapsed()),
            ..Default::default()
        },
        pending: tokens,
        last: None,
    })
}

fn tokenize(model: &Model, prompt: &Prompt) -> Result<Vec<u32>> {
    let tok = model.tokenizer();
    Ok(match prompt {
        Prompt::Raw(t) => tok.encode(t, true, false),
        Prompt::Tokens(t) => t.clone(),
        // Special tokens come from the template's text only, never from a message.
        Prompt::Chat(msgs) => model.template().tokenize(tok, msgs, true)?,
    })
}

fn check_tokens(model: &Model, tokens: &[u32], context: usize) -> Result<()> {
    if tokens.is_empty() {
        return Err(Error::InvalidRequest("the prompt is empty".into()));
    }
    let n_vocab = model.hparams().n_vocab;
    if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
        let msg = format!("token id {bad} is outside the vocabulary of {n_vocab}");
        return Err(Error::InvalidRequest(msg));
    }
    if tokens.len() >= context {
        return Err(Error::ContextOverflow {
            prompt: tokens.len(),
            context,
        });
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One engine step: every active sequence contributes a prompt chunk or its last
/// token to one batched forward pass (continuous batching: sequences join and leave
/// between steps). Each sequence's logits are bit-identical to running it alone.
fn step_all(
    model: &Model,
    active: &mut Vec<Seq>,
    scratch: &mut Scratch,
    pool: &rayon::ThreadPool,
    context: usize,
) {
    let t0 = Instant::now();
    let inputs: Vec<(Vec<u32>, bool)> = active
        .iter_mut()
        .map(|seq| match seq.last {
            None => {
                let n = seq.pending.len().min(PREFILL_CHUNK);
                let chunk: Vec<u32> = seq.pending.drain(..n).collect();
                (chunk, seq.pending.is_empty())
            }
            Some(last) => (vec![last], true),
        })
        .collect();
    let commits = active.iter().any(|s| s.commit.is_some());
    let mut items: Vec<BatchItem<'_>> = active
        .iter_mut()
        .zip(&inputs)
        .map(|(seq, (tokens, wants))| BatchItem {
            cache: &mut seq.cache,
            tokens,
            logits: if *wants { Logits::Last } else { Logits::None },
        })
        .collect();
    let result = if commits {
        model
            .forward_batch_hidden(&mut items, scratch, pool)
            .map(|(l, h)| (l, Some(h)))
    } else {
        model
            .forward_batch(&mut items, scratch, pool)
            .map(|l| (l, None))
    };
    drop(items);
    let (logits, hidden) = match result {
        Ok(l) => l,
        Err(e) => {
            for seq in active.iter() {
                let _ = seq.tx.try_send(Event::Error(e.to_string()));
            }
            active.clear();
            return;
        }
    };
    let elapsed = ms(t0.elapsed());
    let n_vocab = model.hparams().n_vocab;
    let e = model.hparams().n_embd;
    let mut row = 0;
    let mut hidden_row = 0;
    let mut finished = vec![false; active.len()];
    for (i, (seq, (tokens, wants))) in active.iter_mut().zip(&inputs).enumerate() {
        // This sequence's hidden rows, and the one its next token is sampled from.
        let rows = hidden.map(|h| &h[hidden_row * e..(hidden_row + tokens.len()) * e]);
        hidden_row += tokens.len();
        let mut sampled_from = None;
        if let (Some(c), Some(rows)) = (seq.commit.as_mut(), rows) {
            if seq.last.is_none() {
                c.hasher.push_prompt(tokens, rows);
            }
            sampled_from = Some(&rows[rows.len() - e..]);
        }
        let prefill = seq.last.is_none();
        if prefill {
            seq.timings.prefill_ms += elapsed;
        } else {
            seq.timings.decode_ms += elapsed;
        }
        if !wants {
            // Still prompt left: report progress, which also tells whether the client left.
            let ev = Event::Prefill {
                done: seq.cache.len(),
                total: seq.timings.prompt_tokens,
            };
            finished[i] = seq.tx.try_send(ev).is_err();
            continue;
        }
        let l = &logits[row * n_vocab..(row + 1) * n_vocab];
        row += 1;
        finished[i] = matches!(
            sample_and_emit(model, seq, l, sampled_from, context),
            Step::Finished
        );
    }
    let mut i = 0;
    active.retain(|_| {
        i += 1;
        !finished[i - 1]
    });
}

/// Samples `seq`'s next token from `logits` (computed from the hidden row `row`, when
/// the request commits) and streams it.
fn sample_and_emit(
    model: &Model,
    seq: &mut Seq,
    logits: &[f32],
    row: Option<&[f32]>,
    context: usize,
) -> Step {
    let next = seq.sampler.sample(logits);
    let tok = model.tokenizer();
    if let (Some(c), Some(row)) = (seq.commit.as_mut(), row) {
        c.hasher.push_output(next, row);
        c.output.push(next);
        c.eog = tok.is_eog(next);
    }
    if tok.is_eog(next) {
        return finish(seq, FinishReason::Stop);
    }
    let logprobs = seq.logprobs.map(|k| {
        Box::new(token_logprobs(logits, next, k, |id| {
            tok.token_bytes(id, true)
        }))
    });
    seq.sampler.accept(next);
    seq.generated += 1;
    seq.timings.completion_tokens = seq.generated;
    seq.last = Some(next);
    seq.text.push_str(&seq.decoder.push(tok, next));
    // Stop strings: cut at the first match; hold back text that could begin one.
    let mut visible = seq.text.len();
    let mut stopped = false;
    for s in &seq.stop {
        let from = seq.emitted.saturating_sub(s.len());
        let from = (0..=from)
            .rev()
            .find(|&i| seq.text.is_char_boundary(i))
            .unwrap_or(0);
        if let Some(p) = seq.text[from..].find(s.as_str()) {
            visible = visible.min(from + p);
            stopped = true;
        }
    }
    if !stopped {
        for s in &seq.stop {
            for k in (1..s.len()).rev() {
                if s.is_char_boundary(k) && seq.text.ends_with(&s[..k]) {
                    visible = visible.min(seq.text.len() - k);
                    break;
                }
            }
        }
    }
    let visible = visible.max(seq.emitted);
    let text = seq.text[seq.emitted..visible].to_string();
    seq.emitted = visible;
    if seq
        .tx
        .try_send(Event::Token {
            id: next,
            text,
            logprobs,
        })
        .is_err()
    {
        // Receiver dropped: the request is cancelled.
        return Step::Finished;
    }
    if stopped {
        seq.text.truncate(visible);
        seq.decoder = StreamDecoder::new();
        return finish(seq, FinishReason::Stop);
    }
    if seq.generated >= seq.max_tokens || seq.cache.len() + 1 >= context {
        return finish(seq, FinishReason::Length);
    }
    Step::Continue
}

/// The text the engine streams for `output` (sampled token ids, a final
/// end-of-generation token included or not) under `stop`: the tokens decoded as they
/// come, cut at the first stop string, which ends the answer (the same steps as the
/// engine's, so an answer's text can be checked against the tokens a receipt commits
/// to).
pub fn answer_text(tok: &crate::tokenizer::Tokenizer, output: &[u32], stop: &[String]) -> String {
    let mut decoder = StreamDecoder::new();
    let mut text = String::new();
    for &id in output {
        if tok.is_eog(id) {
            break;
        }
        text.push_str(&decoder.push(tok, id));
        if let Some(p) = stop
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            text.truncate(p);
            return text;
        }
    }
    text.push_str(&decoder.finish());
    text
}

fn finish(seq: &mut Seq, reason: FinishReason) -> Step {
    let decoder = std::mem::take(&mut seq.decoder);
    seq.text.push_str(&decoder.finish());
    let tail = seq.text.get(seq.emitted..).unwrap_or_default().to_string();
    if let Some(c) = seq.commit.take() {
        let ev = Event::Commitments(Box::new(Commitments {
            chunks: c.hasher.finish(),
            prompt: c.prompt,
            output: c.output,
            eog: c.eog,
        }));
        let _ = seq.tx.try_send(ev);
    }
    let _ = seq.tx.try_send(Event::Done {
        reason,
        timings: seq.timings.clone(),
        tail,
    });
    Step::Finished
}
