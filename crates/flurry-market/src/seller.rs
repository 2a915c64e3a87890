//! The seller's side of `/flurry/market/1`: admission (a global cap on streams, a
//! per-peer rate, the sale's `max_jobs`), bids with ticket parameters bound to the
//! buyer, and jobs whose tokens go out only as far as the buyer's tickets pay for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use flurry_chain::U256;
use flurry_chain::ticket::SignedTicket;
use flurry_net::Committed;
use flurry_net::infer::{self, CodecError};
use flurry_net::{ErrorCode, Inbound, InferFrame, PeerStream};
use flurry_verify::messages::{Domain, Finish};
use futures_util::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::job::{self, Ask, Bid, JOB_VERSION, JobFrame, Prices, Reply, SignedJob};
use crate::{JobRecord, Market, Sale, unix_now};

/// Streams served at once, all peers together.
pub const MAX_STREAMS: usize = 64;
/// Calls for proposals one peer may make per minute, on average.
pub const CFPS_PER_MINUTE: u32 = 120;
/// Jobs one peer may start per minute, on average (each needs a call for proposals
/// first, and tickets up front).
pub const JOBS_PER_MINUTE: u32 = 120;
/// Calls, and job starts, one peer may make at once after a quiet while.
pub const BURST: u32 = 20;
/// Refusals for their rate in one minute that make a peer a flooder, cut off for [`BAN`].
pub const FLOOD_REFUSALS: u32 = 60;
/// Jobs one peer may run here at once.
pub const JOBS_PER_PEER: u32 = 2;
/// The first frame must arrive within this time.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// After the last frame, how long the seller still takes tickets that were on their way.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// A frame the buyer does not read within this time ends the stream.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Bucket {
    /// Calls for proposals left, and jobs left, refilled per minute.
    cfps: f64,
    starts: f64,
    last: Instant,
    jobs: u32,
    /// Asks refused for their rate in the minute that began at `window`.
    refused: u32,
    window: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Self {
            cfps: f64::from(BURST),
            starts: f64::from(BURST),
            last: now,
            jobs: 0,
            refused: 0,
            window: now,
        }
    }
}

/// Why an ask was refused for its rate.
pub(crate) struct Limited {
    pub(crate) message: String,
    /// The peer keeps asking though refused ([`FLOOD_REFUSALS`] in a minute): it is
    /// flooding, and is cut off for [`BAN`].
    pub(crate) flooding: bool,
}

/// How long a peer that floods a seller is cut off.
pub const BAN: Duration = Duration::from_secs(600);

/// Per-peer rate and job counts.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    peers: Mutex<HashMap<String, Bucket>>,
    /// Running jobs per ModelId.
    models: Mutex<HashMap<String, u32>>,
}

impl Admission {
    /// Takes one call for proposals (`cfp`) or one job start from `peer`'s buckets.
    fn ask(&self, peer: &str, cfp: bool) -> Result<(), Limited> {
        let mut map = self.peers.lock().map_err(|_| Limited {
            message: "poisoned".to_string(),
            flooding: false,
        })?;
        let now = Instant::now();
        if map.len() > 4096 {
            map.retain(|_, b| b.jobs > 0 || now.duration_since(b.last) < Duration::from_secs(60));
        }
        let b = map
            .entry(peer.to_string())
            .or_insert_with(|| Bucket::new(now));
        let minutes = now.duration_since(b.last).as_secs_f64() / 60.0;
        b.cfps = (b.cfps + minutes * f64::from(CFPS_PER_MINUTE)).min(f64::from(BURST));
        b.starts = (b.starts + minutes * f64::from(JOBS_PER_MINUTE)).min(f64::from(BURST));
        b.last = now;
        let (left, what, cap) = if cfp {
            (&mut b.cfps, "calls for proposals", CFPS_PER_MINUTE)
        } else {
            (&mut b.starts, "jobs", JOBS_PER_MINUTE)
        };
        if now.duration_since(b.window) >= Duration::from_secs(60) {
            b.window = now;
            b.refused = 0;
        }
        if *left < 1.0 {
            b.refused += 1;
            return Err(Limited {
                message: format!("more than {cap} {what} per minute from you; slow down"),
                flooding: b.refused >= FLOOD_REFUSALS,
            });
        }
        *left -= 1.0;
        Ok(())
    }

    /// Takes a job slot for `peer` on `sale`, or says why not.
    fn job(self: &Arc<Self>, peer: &str, sale: &Sale) -> Result<JobSlot, InferFrame> {
        let mut peers = self
            .peers
            .lock()
            .map_err(|_| InferFrame::error(ErrorCode::Internal, "poisoned"))?;
        let mut models = self
            .models
            .lock()
            .map_err(|_| InferFrame::error(ErrorCode::Internal, "poisoned"))?;
        let running = models.entry(sale.model_id.clone()).or_insert(0);
        if *running >= sale.max_jobs {
            return Err(InferFrame::error(
                ErrorCode::Busy,
                format!(
                    "this seller runs {} jobs of this model already (its limit); try another seller",
                    sale.max_jobs
                ),
            ));
        }
        let b = peers
            .entry(peer.to_string())
            .or_insert_with(|| Bucket::new(Instant::now()));
        if b.jobs >= JOBS_PER_PEER {
            return Err(InferFrame::error(
                ErrorCode::RateLimited,
                format!("{JOBS_PER_PEER} of your jobs run here already; wait for one to end"),
            ));
        }
        b.jobs += 1;
        *running += 1;
        Ok(JobSlot {
            admission: Arc::downgrade(self),
            peer: peer.to_string(),
            model_id: sale.model_id.clone(),
        })
    }

    fn running(&self, model_id: &str) -> u32 {
        self.models
            .lock()
            .map(|m| m.get(model_id).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// Gives a job's slots back when it ends.
struct JobSlot {
    admission: Weak<Admission>,
    peer: String,
    model_id: String,
}

impl Drop for JobSlot {
    fn drop(&mut self) {
        let Some(a) = self.admission.upgrade() else {
            return;
        };
        if let Ok(mut p) = a.peers.lock()
            && let Some(b) = p.get_mut(&self.peer)
        {
            b.jobs = b.jobs.saturating_sub(1);
        }
        if let Ok(mut m) = a.models.lock()
            && let Some(n) = m.get_mut(&self.model_id)
        {
            *n = n.saturating_sub(1);
        }
    }
}

/// Accepts `/flurry/market/1` streams until the swarm stops; jobs go to `jobs` to run on
/// the local engine.
pub(crate) async fn accept(
    market: Weak<Market>,
    mut incoming: flurry_net::Incoming,
    jobs: mpsc::Sender<Inbound>,
) {
    let slots = Arc::new(Semaphore::new(MAX_STREAMS));
    while let Some((peer, mut stream)) = incoming.next().await {
        let Some(m) = market.upgrade() else { return };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "market stream refused: too many at once");
            let _ = stream.close().await;
            continue;
        };
        let jobs = jobs.clone();
        tokio::spawn(async move {
            handle(&m, &peer, stream, &jobs).await;
            drop(permit);
        });
    }
}

async fn write<T: serde::Serialize>(stream: &mut PeerStream, value: &T, limit: usize) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, infer::write_frame(stream, value, limit)).await,
        Ok(Ok(()))
    )
}

async fn refuse(mut stream: PeerStream, code: ErrorCode, message: String) {
    let reply = Reply::Error { code, message };
    let _ = write(&mut stream, &reply, job::MAX_REPLY_BYTES).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.close()).await;
}

async fn handle(m: &Arc<Market>, peer: &str, mut stream: PeerStream, jobs: &mpsc::Sender<Inbound>) {
    let read = tokio::time::timeout(
        ASK_TIMEOUT,
        infer::read_frame::<_, Ask>(&mut stream, job::MAX_ASK_BYTES),
    )
    .await;
    let ask = match read {
        Err(_) => {
            return refuse(stream, ErrorCode::Timeout, "no request within 10 s".into()).await;
        }
        Ok(Ok(None) | Err(CodecError::Truncated | CodecError::Io(_))) => return,
        Ok(Err(e @ CodecError::TooLarge { .. })) => {
            return refuse(stream, ErrorCode::TooLarge, e.to_string()).await;
        }
        Ok(Err(e)) => return refuse(stream, ErrorCode::BadRequest, e.to_string()).await,
        Ok(Ok(Some(a))) => a,
    };
    if let Err(limited) = m.admission.ask(peer, matches!(ask, Ask::Cfp { .. })) {
        m.refused_asks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if limited.flooding {
            m.banned.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            m.net.ban(peer, BAN).await;
            return;
        }
        return refuse(stream, ErrorCode::RateLimited, limited.message).await;
    }
    match ask {
        Ask::Cfp { v, model_id } => {
            let reply = match bid(m, peer, v, &model_id).await {
                Ok(b) => Reply::Bid(Box::new(b)),
                Err((code, message)) => Reply::Error { code, message },
            };
            let _ = write(&mut stream, &reply, job::MAX_REPLY_BYTES).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.close()).await;
        }
        Ask::Job {
            v,
            model_id,
            request,
            skip,
            prefix,
            tickets,
            signed,
        } => {
            let order = Order {
                v,
                model_id,
                request,
                skip,
                prefix,
                tickets,
                signed,
            };
            match admit_job(m, peer, jobs, order).await {
                Ok(job) => serve_job(m, peer, stream, job).await,
                Err(frame) => {
                    let _ = write(&mut stream, &frame, infer::MAX_FRAME_BYTES).await;
                    let _ = tokio::time::timeout(Duration::from_secs(5), stream.close()).await;
                }
            }
        }
        Ask::Pay { .. } => {
            refuse(
                stream,
                ErrorCode::BadRequest,
                "a payment belongs on a job's stream".into(),
            )
            .await;
        }
    }
}

/// The sale of `model_id`, its prices, and the seller's payment side; or why there is
/// none.
fn terms(
    m: &Market,
    v: u32,
    model_id: &str,
) -> Result<(Sale, Prices, Arc<crate::Payments>), (ErrorCode, String)> {
    if v != JOB_VERSION {
        return Err((
            ErrorCode::Version,
            format!("market message version {v} is not supported; this node speaks {JOB_VERSION}"),
        ));
    }
    let Some(pay) = m.payments.get().cloned() else {
        return Err((
            ErrorCode::Internal,
            "this node takes no payments now".into(),
        ));
    };
    let sale = m
        .sales
        .lock()
        .ok()
        .and_then(|s| s.iter().find(|s| s.model_id == model_id).cloned())
        .ok_or_else(|| {
            (
                ErrorCode::Model,
                format!("this node does not sell model {model_id}"),
            )
        })?;
    let prices = Prices {
        output: sale.price_wei_per_mtok,
        prompt: sale.prompt_price_wei_per_mtok,
    };
    Ok((sale, prices, pay))
}

fn buyer_address(peer: &str) -> Result<flurry_chain::Address, (ErrorCode, String)> {
    flurry_identity::address_of_peer_id(peer)
        .ok()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| {
            (
                ErrorCode::BadRequest,
                "your peer id is not a secp256k1 key, so it cannot pay with tickets".into(),
            )
        })
}

async fn bid(m: &Market, peer: &str, v: u32, model_id: &str) -> Result<Bid, (ErrorCode, String)> {
    let (sale, prices, pay) = terms(m, v, model_id)?;
    let running = m.admission.running(model_id);
    if running >= sale.max_jobs {
        return Err((
            ErrorCode::Busy,
            format!(
                "this seller runs {} jobs of this model already",
                sale.max_jobs
            ),
        ));
    }
    let buyer = buyer_address(peer)?;
    let value = prices.ticket_value(pay.tokens_per_ticket);
    let receiver = pay.receiver.clone();
    let params = tokio::task::spawn_blocking(move || receiver.params_worth(buyer, value))
        .await
        .map_err(|e| (ErrorCode::Internal, e.to_string()))?
        .map_err(|e| (ErrorCode::Internal, e.to_string()))?;
    Ok(Bid {
        v: JOB_VERSION,
        model: sale.model,
        model_id: sale.model_id,
        profile: sale.profile,
        price_wei_per_mtok: sale.price_wei_per_mtok.to_string(),
        prompt_price_wei_per_mtok: sale.prompt_price_wei_per_mtok.to_string(),
        tokens_per_ticket: pay.tokens_per_ticket,
        params,
        active_jobs: running,
        max_jobs: sale.max_jobs,
    })
}

/// What a batch of tickets brought.
#[derive(Debug, Default, Clone, Copy)]
struct Settled {
    /// Their value, wei.
    value: U256,
    /// The buyer needs fresh parameters: one won (its redemption will make the random
    /// value public), or some came under parameters retired already (not credited).
    rotate: bool,
}

/// Validates and stores `tickets`, all signed by `buyer`.
async fn take_tickets(
    m: &Market,
    pay: &crate::Payments,
    buyer: flurry_chain::Address,
    tickets: &[SignedTicket],
) -> Result<Settled, InferFrame> {
    let refuse = |msg: String| InferFrame::error(ErrorCode::Payment, msg);
    if tickets.len() > job::MAX_TICKETS_PER_FRAME {
        return Err(refuse(format!(
            "at most {} tickets per frame",
            job::MAX_TICKETS_PER_FRAME
        )));
    }
    let chain = m
        .chain
        .as_ref()
        .ok_or_else(|| refuse("this node runs without a chain".into()))?;
    let mut out = Settled::default();
    for t in tickets {
        if t.ticket.sender != buyer {
            return Err(refuse(format!(
                "a ticket signed for {} is not yours ({buyer}); pay with your own tickets",
                t.ticket.sender
            )));
        }
        match pay.receiver.receive_checked(chain, t).await {
            Ok(a) => {
                out.value += a.value;
                out.rotate |= a.winner;
            }
            // Paid in good faith before the new parameters reached the buyer.
            Err(flurry_chain::Rejection::ParamsRetired(_)) => out.rotate = true,
            Err(e) => return Err(refuse(format!("ticket refused: {e}"))),
        }
    }
    Ok(out)
}

async fn write_job<W: futures_util::AsyncWrite + Unpin>(wr: &mut W, frame: JobFrame) -> bool {
    matches!(
        tokio::time::timeout(
            WRITE_TIMEOUT,
            infer::write_frame(wr, &frame, infer::MAX_FRAME_BYTES)
        )
        .await,
        Ok(Ok(()))
    )
}

/// Sends the buyer fresh ticket parameters worth `value` each, with what it has been
/// credited so far.
async fn send_params<W: futures_util::AsyncWrite + Unpin>(
    pay: &crate::Payments,
    buyer: flurry_chain::Address,
    value: U256,
    credit: U256,
    wr: &mut W,
) -> Result<(), InferFrame> {
    let receiver = pay.receiver.clone();
    let params = tokio::task::spawn_blocking(move || receiver.params_worth(buyer, value))
        .await
        .map_err(|e| InferFrame::error(ErrorCode::Internal, e.to_string()))?
        .map_err(|e| InferFrame::error(ErrorCode::Internal, e.to_string()))?;
    let frame = JobFrame::Params {
        params,
        credit_wei: credit.to_string(),
    };
    if write_job(wr, frame).await {
        Ok(())
    } else {
        Err(InferFrame::error(
            ErrorCode::Internal,
            "the buyer stopped reading",
        ))
    }
}

/// A job as the buyer ordered it.
struct Order {
    v: u32,
    model_id: String,
    request: flurry_net::InferRequest,
    skip: u32,
    prefix: Option<String>,
    tickets: Vec<SignedTicket>,
    signed: Option<Box<SignedJob>>,
}

/// A job with a signed request: what the receipt needs once the answer is done.
struct Receipted {
    signed: Box<SignedJob>,
    accepted_ms: u64,
    committed: oneshot::Receiver<Committed>,
}

/// A job admitted, paid up front and queued on the engine.
struct Admitted {
    sale: Sale,
    prices: Prices,
    pay: Arc<crate::Payments>,
    buyer: flurry_chain::Address,
    skip: u32,
    prefix: Option<String>,
    credit: U256,
    rotate: bool,
    rx: mpsc::Receiver<InferFrame>,
    slot: JobSlot,
    receipted: Option<Receipted>,
}

async fn admit_job(
    m: &Arc<Market>,
    peer: &str,
    jobs: &mpsc::Sender<Inbound>,
    order: Order,
) -> Result<Admitted, InferFrame> {
    let Order {
        v,
        model_id,
        mut request,
        skip,
        prefix,
        tickets,
        signed,
    } = order;
    let (sale, prices, pay) =
        terms(m, v, &model_id).map_err(|(code, msg)| InferFrame::error(code, msg))?;
    request.validate()?;
    // A market job's receipt is the market's (`signed`), not the circle's.
    request.receipt = None;
    let buyer = buyer_address(peer).map_err(|(c, msg)| InferFrame::error(c, msg))?;
    let accepted_ms = flurry_verify::bundle::now_ms();
    let mut commit = None;
    let mut receipted = None;
    if let Some(signed) = signed {
        let domain = m
            .chain
            .as_ref()
            .and_then(|c| {
                Some(Domain {
                    chain_id: c.chain_id(),
                    verifying_contract: c.registry_address().ok()?,
                })
            })
            .ok_or_else(|| {
                InferFrame::error(ErrorCode::Internal, "this node runs without a chain")
            })?;
        let me = flurry_verify::bundle::address_of(&m.identity);
        check_signed_job(&signed, buyer, me, &sale.model_id, domain, skip, unix_now())
            .map_err(|e| InferFrame::error(ErrorCode::BadRequest, e))?;
        // The signed request decides what runs.
        let q = &signed.request;
        let sampling = q.sampling();
        request.temperature = Some(sampling.temperature);
        request.top_p = Some(sampling.top_p);
        request.top_k = u32::try_from(sampling.top_k).ok();
        request.seed = Some(sampling.seed);
        request.max_tokens = Some(q.maxTokens);
        request.stop.clone_from(&signed.stop);
        let (out, committed) = oneshot::channel();
        commit = Some(flurry_net::Commit {
            job_id: q.jobId.0,
            prompt_tokens: signed.prompt_tokens.clone(),
            out,
        });
        receipted = Some(Receipted {
            signed,
            accepted_ms,
            committed,
        });
    }
    let max_tokens = request
        .max_tokens
        .unwrap_or(infer::DEFAULT_MAX_ANSWER_TOKENS);
    if skip >= max_tokens {
        return Err(InferFrame::error(
            ErrorCode::BadRequest,
            "skip must be below max_tokens",
        ));
    }
    let slot = m.admission.job(peer, &sale)?;
    let Settled {
        value: credit,
        rotate,
    } = take_tickets(m, &pay, buyer, &tickets).await?;
    let needed = job::upfront(&prices, &request, skip, pay.tokens_per_ticket);
    if credit < needed {
        return Err(InferFrame::error(
            ErrorCode::Payment,
            format!(
                "the job needs {needed} wei of tickets up front (the prompt, and {} tokens); {credit} came",
                pay.tokens_per_ticket
            ),
        ));
    }
    request.model = Some(sale.model.clone());
    let (tx, rx) = mpsc::channel(32);
    let inbound = Inbound {
        peer_id: peer.to_string(),
        name: "market".into(),
        request,
        reply: tx,
        commit,
    };
    jobs.try_send(inbound).map_err(|_| {
        InferFrame::error(
            ErrorCode::Busy,
            "this seller's engine queue is full; try another",
        )
    })?;
    Ok(Admitted {
        sale,
        prices,
        pay,
        buyer,
        skip,
        prefix,
        credit,
        rotate,
        rx,
        slot,
        receipted,
    })
}

/// The signed receipt for a finished job with a signed request.
async fn receipt_frame(
    m: &Market,
    r: Receipted,
    finish_reason: &str,
    first_ms: u64,
) -> Result<JobFrame, String> {
    let c = tokio::time::timeout(Duration::from_secs(5), r.committed)
        .await
        .map_err(|_| "the engine sent no commitments".to_string())?
        .map_err(|_| "the engine sent no commitments".to_string())?;
    let c = flurry_infer::commit::Commitments {
        prompt: c.prompt,
        output: c.output,
        eog: c.eog,
        chunks: c.chunks,
    };
    let finish = if c.eog {
        Finish::Eos
    } else if finish_reason == "stop" {
        Finish::Stop
    } else {
        Finish::Length
    };
    let done = flurry_verify::bundle::now_ms();
    let times = flurry_verify::bundle::Times {
        accept: r.accepted_ms,
        first: if first_ms == 0 { done } else { first_ms },
        done,
    };
    let me = flurry_verify::bundle::address_of(&m.identity);
    let receipt =
        flurry_verify::bundle::receipt(&r.signed.request, &r.signed.domain, me, &c, finish, times);
    let signature = flurry_verify::messages::sign(&receipt, &r.signed.domain, &m.identity);
    Ok(JobFrame::Receipt {
        receipt,
        signature: job::Bytes::copy_from_slice(&signature),
        output_tokens: c.output,
        chunks: c.chunks.into_iter().map(flurry_chain::B256::from).collect(),
    })
}

/// Checks a buyer's signed request before it runs: signed by the buyer, for this
/// provider, model and chain, its hashes matching the tokens and stop strings it comes
/// with, sampling this node runs, within bounds and before its deadline.
fn check_signed_job(
    s: &SignedJob,
    buyer: flurry_chain::Address,
    me: flurry_chain::Address,
    model_id: &str,
    domain: Domain,
    skip: u32,
    now: u64,
) -> Result<(), String> {
    use flurry_verify::messages::{check_signature, stop_hash, tokens_hash};
    let q = &s.request;
    if s.domain != domain {
        return Err(format!(
            "the request is signed for chain {} and registry {}; this seller's are {} and {}",
            s.domain.chain_id,
            s.domain.verifying_contract,
            domain.chain_id,
            domain.verifying_contract
        ));
    }
    if q.client != buyer {
        return Err("the request names another client than you".into());
    }
    check_signature(q, &s.domain, &s.signature, buyer)
        .map_err(|e| format!("the request's signature: {e}"))?;
    if q.provider != me {
        return Err("the request names another provider".into());
    }
    if hex::encode(q.modelId) != model_id {
        return Err("the request is for another model than the one bid".into());
    }
    if s.prompt_tokens.is_empty() || s.prompt_tokens.len() > job::MAX_PROMPT_TOKENS {
        return Err(format!(
            "a signed request carries 1 to {} prompt tokens",
            job::MAX_PROMPT_TOKENS
        ));
    }
    if q.promptTokensHash != tokens_hash(&s.prompt_tokens)
        || q.nPrompt as usize != s.prompt_tokens.len()
    {
        return Err("the prompt tokens are not those the request signs".into());
    }
    if q.stopHash != stop_hash(&s.stop) {
        return Err("the stop strings are not those the request signs".into());
    }
    if q.maxTokens == 0 || q.maxTokens <= skip {
        return Err("max_tokens must be at least 1 and above the tokens skipped".into());
    }
    let want = flurry_infer::sampler::SamplingParams::default();
    let got = q.sampling();
    if got.min_p.to_bits() != want.min_p.to_bits()
        || got.repeat_penalty.to_bits() != want.repeat_penalty.to_bits()
        || got.repeat_last_n != want.repeat_last_n
    {
        return Err("min_p and repetition penalties are not offered on the market".into());
    }
    if q.deadline != 0 && q.deadline < now {
        return Err("the request's deadline has passed".into());
    }
    Ok(())
}

/// Streams an admitted job's frames to the buyer, each token only once the tickets
/// received cover it, while taking the buyer's payments.
async fn serve_job(m: &Arc<Market>, peer: &str, stream: PeerStream, job: Admitted) {
    let Admitted {
        sale,
        prices,
        pay,
        buyer,
        skip,
        prefix,
        mut credit,
        rotate,
        mut rx,
        slot,
        receipted,
    } = job;
    let mut receipted = receipted;
    let mut first_ms = 0u64;
    // The tokens generated again after a failover, to compare with the buyer's.
    let mut replayed: Vec<String> = Vec::new();
    let started = unix_now();
    tracing::info!(%peer, model = %sale.model, skip, "market job started");

    // The buyer's payments, read on their own task (frames bounded, the channel too).
    let (mut rd, mut wr) = futures_util::AsyncReadExt::split(stream);
    let (pay_tx, mut pays) = mpsc::channel::<Result<Vec<SignedTicket>, String>>(4);
    let reader = tokio::spawn(async move {
        loop {
            let item = match infer::read_frame::<_, Ask>(&mut rd, job::MAX_PAY_BYTES).await {
                Ok(Some(Ask::Pay { tickets })) => Ok(tickets),
                Ok(Some(_)) => Err("only payments may follow a job".to_string()),
                Ok(None) => Err("the buyer closed the stream".to_string()),
                Err(e) => Err(e.to_string()),
            };
            let end = item.is_err();
            if pay_tx.send(item).await.is_err() || end {
                return;
            }
        }
    });
    let mut prompt_tokens = 0u64;
    let mut seen = 0u32;
    let mut sent = 0u64;
    let paid_before = credit;
    let value = prices.ticket_value(pay.tokens_per_ticket);
    // Fresh parameters for the buyer, sent before the next frame.
    let mut rotate = rotate;
    let outcome: Result<String, InferFrame> = 'job: loop {
        let frame = tokio::select! {
            f = rx.recv() => f.unwrap_or_else(|| InferFrame::error(ErrorCode::Internal, "the answer ended unexpectedly")),
            p = pays.recv() => {
                match p {
                    Some(Ok(t)) => match take_tickets(m, &pay, buyer, &t).await {
                        Ok(s) => {
                            credit += s.value;
                            rotate |= s.rotate;
                            if rotate && let Err(f) = send_params(&pay, buyer, value, credit, &mut wr).await {
                                break 'job Err(f);
                            }
                            rotate = false;
                            continue;
                        }
                        Err(f) => break 'job Err(f),
                    },
                    _ => break 'job Ok("buyer left".into()),
                }
            }
        };
        let owed = match &frame {
            InferFrame::Start {
                prompt_tokens: p, ..
            } => {
                prompt_tokens = u64::from(*p);
                prices.owed(prompt_tokens + u64::from(skip), 0)
            }
            InferFrame::Token { text } => {
                seen += 1;
                if seen <= skip {
                    if prefix.is_some() {
                        replayed.push(text.clone());
                    }
                    if seen == skip
                        && let Some(want) = &prefix
                        && job::prefix_digest(&replayed) != *want
                    {
                        break 'job Err(InferFrame::error(
                            ErrorCode::Model,
                            "the answer generated again here differs from the tokens you hold: this node cannot continue it",
                        ));
                    }
                    continue;
                }
                prices.owed(prompt_tokens + u64::from(skip), sent + 1)
            }
            _ => U256::ZERO,
        };
        // Hold the frame until the tickets cover it.
        loop {
            if rotate {
                if let Err(f) = send_params(&pay, buyer, value, credit, &mut wr).await {
                    break 'job Err(f);
                }
                rotate = false;
            }
            if credit >= owed {
                break;
            }
            match tokio::time::timeout(pay.pay_timeout, pays.recv()).await {
                Ok(Some(Ok(t))) => match take_tickets(m, &pay, buyer, &t).await {
                    Ok(s) => {
                        credit += s.value;
                        rotate |= s.rotate;
                    }
                    Err(f) => break 'job Err(f),
                },
                Ok(_) => break 'job Ok("buyer left".into()),
                Err(_) => {
                    break 'job Err(InferFrame::error(
                        ErrorCode::Payment,
                        format!(
                            "no ticket for {} s while {owed} wei were owed and {credit} paid: the job stops",
                            pay.pay_timeout.as_secs()
                        ),
                    ));
                }
            }
        }
        if matches!(frame, InferFrame::Token { .. }) {
            sent += 1;
            if first_ms == 0 {
                first_ms = flurry_verify::bundle::now_ms();
            }
        }
        if let InferFrame::Done { finish_reason, .. } = &frame
            && let Some(r) = receipted.take()
        {
            let frame = match receipt_frame(m, r, finish_reason, first_ms).await {
                Ok(f) => f,
                Err(e) => break 'job Err(InferFrame::error(ErrorCode::Internal, e)),
            };
            if !write_job(&mut wr, frame).await {
                break 'job Ok("buyer stopped reading".into());
            }
        }
        let last = frame.is_last();
        let status = match &frame {
            InferFrame::Done { finish_reason, .. } => format!("done ({finish_reason})"),
            InferFrame::Error { message, .. } => format!("failed: {message}"),
            _ => String::new(),
        };
        if !write_job(&mut wr, JobFrame::from(frame)).await {
            break 'job Ok("buyer stopped reading".into());
        }
        if last {
            break 'job Ok(status);
        }
    };
    let status = match outcome {
        Ok(s) => {
            // Tickets the buyer sent while the last frames were on their way are still
            // taken (and counted), until it closes its side.
            while let Ok(Some(Ok(t))) = tokio::time::timeout(DRAIN_TIMEOUT, pays.recv()).await {
                match take_tickets(m, &pay, buyer, &t).await {
                    Ok(s) => credit += s.value,
                    Err(_) => break,
                }
            }
            reader.abort();
            s
        }
        Err(frame) => {
            reader.abort();
            let s = match &frame {
                InferFrame::Error { message, .. } => format!("failed: {message}"),
                _ => "failed".into(),
            };
            write_job(&mut wr, JobFrame::from(frame)).await;
            s
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), wr.close()).await;
    tracing::info!(%peer, tokens = sent, paid = %credit, %status, "market job ended");
    m.record(JobRecord {
        id: format!("{peer}-{started}"),
        role: "sold".into(),
        peer: peer.to_string(),
        model: sale.model,
        model_id: sale.model_id,
        tokens: sent,
        paid_wei: credit.to_string(),
        owed_wei: prices
            .owed(prompt_tokens + u64::from(skip), sent)
            .to_string(),
        started,
        status,
        failovers: 0,
        upfront_wei: paid_before.to_string(),
    });
    drop(slot);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Prepared;
    use flurry_chain::{Address, B256};
    use flurry_identity::Identity;
    use flurry_primitives::ModelId;

    fn domain() -> Domain {
        Domain {
            chain_id: 31337,
            verifying_contract: Address::repeat_byte(5),
        }
    }

    fn prepared() -> Prepared {
        Prepared {
            domain: domain(),
            model_id: ModelId::from_bytes([0xab; 32]),
            prompt_tokens: vec![1, 2, 3],
            sampling: flurry_infer::sampler::SamplingParams::default(),
            max_tokens: 16,
            stop: vec!["\n\n".into()],
            client_seed: B256::repeat_byte(1),
            audit_secret: B256::repeat_byte(2),
        }
    }

    /// Attack: a buyer (or someone replaying a buyer's request) sends a signed request
    /// that does not match the job: signed by another key, for another provider, model
    /// or chain, with tokens or stop strings its hashes do not cover, sampling the
    /// market does not offer, too many tokens, or a deadline gone by.
    #[test]
    fn signed_requests_that_do_not_match_the_job_are_refused() {
        let buyer = Identity::generate().unwrap();
        let seller = Identity::generate().unwrap();
        let b = flurry_verify::bundle::address_of(&buyer);
        let me = flurry_verify::bundle::address_of(&seller);
        let model = "ab".repeat(32);
        let job = |p: &Prepared, key: &Identity| {
            p.sign(B256::repeat_byte(9), me, (1_000_000, 1_000_000), key)
        };
        let ok = job(&prepared(), &buyer);
        let check = |s: &SignedJob| check_signed_job(s, b, me, &model, domain(), 0, 100);
        assert_eq!(check(&ok), Ok(()));
        // Signed by someone else than the buyer on the stream.
        let thief = Identity::generate().unwrap();
        assert!(
            check(&job(&prepared(), &thief))
                .unwrap_err()
                .contains("another client")
        );
        let mut forged = ok.clone();
        forged.request.client = b;
        forged.signature = job(&prepared(), &thief).signature;
        assert!(check(&forged).unwrap_err().contains("signature"));
        // A field changed after signing.
        let mut edited = ok.clone();
        edited.request.maxTokens = 4096;
        assert!(check(&edited).unwrap_err().contains("signature"));
        // Another provider, model or chain.
        let other = Identity::generate().unwrap();
        let for_other = flurry_verify::bundle::address_of(&other);
        assert!(
            check_signed_job(&ok, b, for_other, &model, domain(), 0, 100)
                .unwrap_err()
                .contains("another provider")
        );
        assert!(
            check_signed_job(&ok, b, me, &"cd".repeat(32), domain(), 0, 100)
                .unwrap_err()
                .contains("another model")
        );
        let elsewhere = Domain {
            chain_id: 1,
            ..domain()
        };
        assert!(
            check_signed_job(&ok, b, me, &model, elsewhere, 0, 100)
                .unwrap_err()
                .contains("chain")
        );
        // Tokens or stop strings the signature does not cover.
        let mut tokens = ok.clone();
        tokens.prompt_tokens.push(4);
        assert!(check(&tokens).unwrap_err().contains("prompt tokens"));
        let mut stop = ok.clone();
        stop.stop.clear();
        assert!(check(&stop).unwrap_err().contains("stop strings"));
        let mut huge = prepared();
        huge.prompt_tokens = vec![1; job::MAX_PROMPT_TOKENS + 1];
        assert!(
            check(&job(&huge, &buyer))
                .unwrap_err()
                .contains("prompt tokens")
        );
        // Sampling the market does not offer, a zero or skipped-over limit, a deadline.
        let mut penalty = prepared();
        penalty.sampling.repeat_penalty = 1.3;
        assert!(
            check(&job(&penalty, &buyer))
                .unwrap_err()
                .contains("penalties")
        );
        let mut none = prepared();
        none.max_tokens = 0;
        assert!(
            check(&job(&none, &buyer))
                .unwrap_err()
                .contains("max_tokens")
        );
        assert!(
            check_signed_job(&ok, b, me, &model, domain(), 16, 100)
                .unwrap_err()
                .contains("max_tokens")
        );
        let mut late = ok.clone();
        late.request.deadline = 50;
        late.signature = {
            let sig = flurry_verify::messages::sign(&late.request, &domain(), &buyer);
            job::Bytes::copy_from_slice(&sig)
        };
        assert!(check(&late).unwrap_err().contains("deadline"));
    }
}
