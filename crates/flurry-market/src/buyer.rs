//! The buyer's side of `/flurry/market/1`: a call for proposals to the staked sellers of
//! a model, the award by price and round trip, payment per token as the answer arrives,
//! and failover to the next bidder when a provider dies or stalls.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flurry_chain::{Address, B256, U256};
use flurry_net::infer::{self, DEFAULT_MAX_ANSWER_TOKENS, MAX_TEXT_BYTES_PER_TOKEN};
use flurry_net::{ErrorCode, InferFrame, InferRequest, PeerStream};
use futures_util::stream::FuturesUnordered;
use futures_util::{AsyncWriteExt, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::AuditRecord;
use crate::audit::Prepared;
use crate::job::{self, Ask, Bid, JOB_VERSION, JobFrame, Prices, Reply};
use crate::{Error, JobRecord, Listed, Market, unix_now};

/// Sellers asked in one call for proposals, at most.
pub const MAX_CFP: usize = 8;
/// How long a call for proposals waits for bids (connecting included).
pub const CFP_TIMEOUT: Duration = Duration::from_secs(3);
/// Once the first bid is in, how much longer the others may take.
pub const BID_GRACE: Duration = Duration::from_millis(150);
/// A provider that sends nothing for this long after the job started is given up for
/// the next bidder (the first token may take longer: the prompt is read first).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the first frame of a job may take.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(120);

/// A job bought on the market, as it stands (`"market"` in the API's answers).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Bought {
    /// The job's id.
    pub job_id: String,
    /// The ModelId.
    pub model_id: String,
    /// The provider now (the last one awarded).
    pub provider: String,
    /// Every provider awarded, in order.
    pub providers: Vec<String>,
    /// Its price for generated tokens, wei per million.
    pub price_wei_per_mtok: String,
    /// Value of the tickets sent to all providers, wei (expected value).
    pub price_paid_wei: String,
    /// Tokens received.
    pub tokens: u64,
    /// Bids received.
    pub bids: usize,
    /// Times the job moved to another provider.
    pub failovers: u32,
    /// Milliseconds from the call for proposals to the award.
    pub award_ms: f64,
    /// The receipt: the job, what each provider was paid, and the hashes of the tickets.
    pub receipt: Vec<Payment>,
    /// Whether the job carries a signed request, so its provider signs a receipt that
    /// this node checks and may audit (`flurry market audits`).
    pub receipts: bool,
}

/// What one provider was paid for a job.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Payment {
    /// The provider.
    pub provider: String,
    /// Tokens it sent.
    pub tokens: u64,
    /// Value of the tickets it got, wei.
    pub paid_wei: String,
    /// Hashes of those tickets.
    pub tickets: Vec<String>,
}

/// A job under way: its frames (`start` once, tokens, then `done` or an error), and its
/// account.
#[derive(Debug)]
pub struct Purchase {
    /// The answer's frames; dropping the receiver stops the job.
    pub frames: mpsc::Receiver<Result<InferFrame, String>>,
    /// The job's account, updated as it runs.
    pub report: Arc<Mutex<Bought>>,
}

/// A bid checked against the offer it answers.
#[derive(Debug, Clone)]
struct Award {
    peer_id: String,
    payee: Address,
    bid: Bid,
    prices: Prices,
    rtt: f64,
    reputation: crate::Reputation,
}

/// The award's order: the weight (price raised by failures), then the prompt price, then
/// the speed this node measured (a provider not yet timed first: it gets its chance),
/// then the round trip.
fn award_order(a: &Award, b: &Award) -> std::cmp::Ordering {
    let (wa, wb) = (a.weight(), b.weight());
    let speed = |x: &Award| x.reputation.ms_per_token.unwrap_or(0.0);
    wa.0.total_cmp(&wb.0)
        .then(wa.1.cmp(&wb.1))
        .then(speed(a).total_cmp(&speed(b)))
        .then(a.rtt.total_cmp(&b.rtt))
}

impl Award {
    /// What the award weighs: the price of generated tokens raised by the provider's
    /// failure rate (a provider that failed half its jobs costs as much as one asking
    /// half as much again), then the prompt price.
    fn weight(&self) -> (f64, u128) {
        (
            self.prices.output as f64 * (1.0 + self.reputation.failure_rate()),
            self.prices.prompt,
        )
    }
}

impl Market {
    /// Buys `request` from the market: the live, staked offers of `model` (a name or
    /// ModelId; the cheapest offer's ModelId decides which sellers may take part) at or
    /// below `max_price` wei per million generated tokens are called for proposals; the
    /// cheapest bid (then the shortest round trip) is awarded, and the job fails over
    /// to the next bid, with the same seed and the tokens received so far, when its
    /// provider dies or stalls.
    ///
    /// # Errors
    /// No chain or no payments, no staked offer, or no bid.
    pub async fn buy(
        self: &Arc<Self>,
        model: &str,
        mut request: InferRequest,
        max_price: Option<u128>,
    ) -> Result<Purchase, Error> {
        let pay = self.payments.get().cloned().ok_or(Error::NoChain)?;
        let me = self.identity.peer_id();
        let distrusted = self
            .audits
            .lock()
            .map(|a| a.distrusted())
            .unwrap_or_default();
        let offers: Vec<Listed> = self
            .offers(Some(model), false)
            .await?
            .into_iter()
            .filter(|o| o.offer.peer_id != me && max_price.is_none_or(|m| o.offer.price() <= m))
            .filter(|o| !distrusted.contains(&o.offer.peer_id))
            .collect();
        let offers = if offers.is_empty() && job::is_model_id(model) {
            let mut found = self.providers_of(model).await;
            found.retain(|o| !distrusted.contains(&o.offer.peer_id));
            found
        } else {
            offers
        };
        let Some(first) = offers.first() else {
            return Err(Error::NoOffers(format!(
                "no staked seller offers {model}{}: see `flurry market offers`",
                max_price
                    .map(|p| format!(" at {p} wei per million tokens or less"))
                    .unwrap_or_default()
            )));
        };
        let model_id = first.offer.model_id.clone();
        let offers: Vec<Listed> = offers
            .into_iter()
            .filter(|o| o.offer.model_id == model_id)
            .take(MAX_CFP)
            .collect();
        if request.seed.is_none() {
            // Failover continues an answer only with the seed that began it.
            request.seed = Some(rand_u64());
        }
        let prepared = self.prepare(&model_id, &mut request).await;
        let started = Instant::now();
        let mut awards = self
            .call_for_proposals(&offers, &model_id, pay.sender.address(), max_price)
            .await;
        if awards.is_empty() {
            return Err(Error::NoOffers(format!(
                "none of the {} sellers of {model} bid within {} s",
                offers.len(),
                CFP_TIMEOUT.as_secs()
            )));
        }
        awards.sort_by(award_order);
        let mut job_id = [0u8; 32];
        let _ = getrandom::fill(&mut job_id);
        let report = Arc::new(Mutex::new(Bought {
            job_id: hex::encode(job_id),
            receipts: prepared.is_some(),
            model_id: model_id.clone(),
            bids: awards.len(),
            award_ms: started.elapsed().as_secs_f64() * 1e3,
            price_paid_wei: "0".into(),
            ..Bought::default()
        }));
        let (tx, rx) = mpsc::channel(64);
        let market = self.clone();
        let r = report.clone();
        tokio::spawn(async move {
            market
                .run_purchase(awards, model_id, request, prepared, tx, r)
                .await;
        });
        Ok(Purchase { frames: rx, report })
    }

    /// The staked sellers the DHT lists as providers of `model_id`, when no offer of it
    /// was heard: asked like the sellers of offers, their bids taken on their own terms
    /// (within the request's price cap).
    async fn providers_of(&self, model_id: &str) -> Vec<Listed> {
        let Some(chain) = self.chain.as_ref() else {
            return Vec::new();
        };
        let key = crate::provider_key(model_id);
        let found = match tokio::time::timeout(CFP_TIMEOUT, self.net.providers(&key)).await {
            Ok(Ok(p)) => p,
            _ => return Vec::new(),
        };
        let Ok(min) = chain.min_stake().await else {
            return Vec::new();
        };
        let me = self.identity.peer_id();
        let mut out = Vec::new();
        for peer in found.into_iter().filter(|p| *p != me).take(MAX_CFP) {
            let Ok(address) = flurry_identity::address_of_peer_id(&peer) else {
                continue;
            };
            let Ok(stake) = self.stake_of(chain, &address).await else {
                continue;
            };
            if stake < min || stake.is_zero() {
                continue;
            }
            out.push(Listed {
                offer: crate::Offer {
                    v: crate::offer::OFFER_VERSION,
                    peer_id: peer.clone(),
                    address,
                    model: String::new(),
                    model_id: model_id.to_string(),
                    // Unknown: no offer was heard; the bid says.
                    profile: String::new(),
                    price_wei_per_mtok: u128::MAX.to_string(),
                    prompt_price_wei_per_mtok: u128::MAX.to_string(),
                    max_jobs: 1,
                    expires: 0,
                    seq: 0,
                },
                stake_wei: stake.to_string(),
                staked: true,
                mine: false,
                rtt_ms: None,
                reputation: self.reputation_of(&peer),
            });
        }
        out
    }

    async fn call_for_proposals(
        &self,
        offers: &[Listed],
        model_id: &str,
        me: Address,
        max_price: Option<u128>,
    ) -> Vec<Award> {
        let mut asks: FuturesUnordered<_> = offers
            .iter()
            .map(|o| {
                let net = self.net.clone();
                let peer = o.offer.peer_id.clone();
                let model_id = model_id.to_string();
                let offer = o.clone();
                async move {
                    let got =
                        tokio::time::timeout(CFP_TIMEOUT, ask_bid(&net, &peer, &model_id)).await;
                    match got {
                        Ok(Ok(bid)) => check_bid(&offer, bid, me, max_price),
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err("no bid in time".into()),
                    }
                    .map_err(|e| (peer, e))
                }
            })
            .collect();
        let mut out = Vec::new();
        let mut grace: Option<tokio::time::Instant> = None;
        loop {
            let next = match grace {
                Some(g) => match tokio::time::timeout_at(g, asks.next()).await {
                    Ok(n) => n,
                    Err(_) => break,
                },
                None => asks.next().await,
            };
            let Some(result) = next else { break };
            match result {
                Ok(a) => {
                    out.push(a);
                    grace.get_or_insert_with(|| tokio::time::Instant::now() + BID_GRACE);
                }
                Err((peer, e)) => tracing::info!(%peer, reason = %e, "no usable bid"),
            }
        }
        out
    }

    /// Signs the job's requests when this node holds the model: tokenizes the prompt
    /// with its chat template, fixes the token limit, and derives the client seed from
    /// the request's seed (so the same seed gives the same answer, as with the API).
    /// `None` (the job carries no receipt) without the model, receipts or a chain.
    async fn prepare(&self, model_id: &str, request: &mut InferRequest) -> Option<Arc<Prepared>> {
        let models = self.models.get()?.clone();
        self.receipts.get()?;
        let chain = self.chain.as_ref()?;
        let domain = flurry_verify::messages::Domain {
            chain_id: chain.chain_id(),
            verifying_contract: chain.registry_address().ok()?,
        };
        let id: flurry_primitives::ModelId = model_id.parse().ok()?;
        let messages = request.messages.clone();
        let model = tokio::task::spawn_blocking(move || models.by_id(&id))
            .await
            .ok()??;
        let msgs: Vec<flurry_infer::template::ChatMessage> = messages
            .into_iter()
            .map(|m| flurry_infer::template::ChatMessage::new(m.role, m.content))
            .collect();
        let prompt_tokens = match model.template().tokenize(model.tokenizer(), &msgs, true) {
            Ok(t) if t.len() <= job::MAX_PROMPT_TOKENS => t,
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tokenize the prompt; the job carries no receipt");
                return None;
            }
        };
        let max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_ANSWER_TOKENS);
        request.max_tokens = Some(max_tokens);
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).ok()?;
        Some(Arc::new(Prepared {
            domain,
            model_id: id,
            prompt_tokens,
            sampling: crate::audit::sampling_of(request),
            max_tokens,
            stop: request.stop.clone(),
            client_seed: flurry_verify::messages::client_seed_of(request.seed.unwrap_or(0)),
            audit_secret: B256::from(secret),
        }))
    }

    /// Checks a finished job's receipt (tier 0), audits it when the lottery draws it,
    /// and keeps the verdict; a seller whose check fails is never bought from again.
    fn check_bought(
        self: &Arc<Self>,
        prepared: &Prepared,
        signed: job::SignedJob,
        provider: String,
        parts: Option<Parts>,
        text: String,
    ) {
        let Some((dir, policy)) = self.receipts.get().cloned() else {
            return;
        };
        let job_hex = hex::encode(signed.request.jobId);
        let path = dir.join(format!("{job_hex}.json"));
        let model_hex = prepared.model_id.to_string();
        let Some(parts) = parts else {
            let record = AuditRecord {
                job_id: job_hex,
                provider,
                model_id: model_hex,
                at: crate::unix_now(),
                level: "none".into(),
                rate: 0.0,
                verdict: "failed".into(),
                failure: Some(crate::audit::Found {
                    check: "receipt".into(),
                    kind: "missing".into(),
                    chunk: None,
                    position: None,
                    detail: "the seller finished a job with a signed request but sent no receipt"
                        .into(),
                }),
                detail: String::new(),
                bundle: String::new(),
                ms: 0.0,
            };
            if let Ok(mut a) = self.audits.lock() {
                a.push(record);
            }
            return;
        };
        let bundle = flurry_verify::bundle::Bundle {
            version: flurry_verify::bundle::VERSION,
            domain: signed.domain,
            request: signed.request,
            request_signature: signed.signature,
            stop: signed.stop,
            receipt: parts.receipt,
            receipt_signature: parts.signature,
            prompt_tokens: signed.prompt_tokens,
            output_tokens: parts.output_tokens,
            chunks: parts.chunks,
        };
        let rate = self
            .audits
            .lock()
            .map(|mut a| a.next_rate(&provider, &model_hex, &policy))
            .unwrap_or(policy.rate);
        let secret = prepared.audit_secret;
        let models = self.models.get().cloned();
        let audits = self.audits.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = bundle.write(&path) {
                tracing::warn!(error = %e, "cannot keep a job bundle");
            }
            let record = crate::audit::check(
                &bundle,
                &path,
                &provider,
                rate,
                secret,
                models.as_ref(),
                &text,
            );
            if record.verdict == "failed" {
                tracing::warn!(%provider, job = %record.job_id, failure = ?record.failure, evidence = %record.bundle, "a market seller's job does not hold: it is not bought from again");
            } else {
                tracing::info!(%provider, job = %record.job_id, level = %record.level, verdict = %record.verdict, ms = record.ms, "market job checked");
            }
            if let Ok(mut a) = audits.lock() {
                a.push(record);
            }
        });
    }

    async fn run_purchase(
        self: Arc<Self>,
        awards: Vec<Award>,
        model_id: String,
        request: InferRequest,
        prepared: Option<Arc<Prepared>>,
        tx: mpsc::Sender<Result<InferFrame, String>>,
        report: Arc<Mutex<Bought>>,
    ) {
        let started = unix_now();
        let mut got = Got::default();
        let mut last_error = String::from("no provider");
        let mut outcome = None;
        for (i, award) in awards.iter().enumerate() {
            if let Ok(mut r) = report.lock() {
                r.provider = award.peer_id.clone();
                r.providers.push(award.peer_id.clone());
                r.price_wei_per_mtok = award.prices.output.to_string();
                r.failovers = u32::try_from(i).unwrap_or(u32::MAX);
                r.receipt.push(Payment {
                    provider: award.peer_id.clone(),
                    paid_wei: "0".into(),
                    ..Payment::default()
                });
            }
            let signed = prepared.as_ref().map(|p| {
                let job_id = report
                    .lock()
                    .ok()
                    .and_then(|r| r.job_id.parse::<B256>().ok())
                    .unwrap_or_default();
                p.sign(
                    job_id,
                    award.payee,
                    (award.prices.output, award.prices.prompt),
                    &self.identity,
                )
            });
            let mut parts = None;
            match self
                .attempt(
                    award,
                    &model_id,
                    &request,
                    signed.clone(),
                    &mut parts,
                    &mut got,
                    &tx,
                    &report,
                )
                .await
            {
                Attempt::Finished => {
                    self.rate(&award.peer_id, true);
                    if let Some(ms) = got.ms_per_token.take() {
                        self.timed(&award.peer_id, ms);
                    }
                    if let (Some(p), Some(s)) = (&prepared, signed) {
                        self.check_bought(p, s, award.peer_id.clone(), parts, got.texts.concat());
                    }
                    outcome = Some("done".to_string());
                    break;
                }
                Attempt::Gone => {
                    outcome = Some("the reader left".to_string());
                    break;
                }
                Attempt::Fatal(e) => {
                    let _ = tx.send(Err(e.clone())).await;
                    outcome = Some(format!("failed: {e}"));
                    break;
                }
                Attempt::Failover(e) => {
                    self.rate(&award.peer_id, false);
                    tracing::warn!(provider = %award.peer_id, reason = %e, tokens = got.tokens, "market provider failed; awarding the next bid");
                    last_error = format!("provider {}: {e}", award.peer_id);
                }
            }
        }
        let status = match outcome {
            Some(s) => s,
            None => {
                let e = format!("every bidder failed; the last: {last_error}");
                let _ = tx.send(Err(e.clone())).await;
                format!("failed: {e}")
            }
        };
        let r = report.lock().map(|r| r.clone()).unwrap_or_default();
        self.record(JobRecord {
            id: r.job_id,
            role: "bought".into(),
            peer: r.provider,
            model: String::new(),
            model_id,
            tokens: r.tokens,
            paid_wei: r.price_paid_wei,
            owed_wei: String::new(),
            started,
            status,
            failovers: r.failovers,
            upfront_wei: String::new(),
        });
    }

    /// One provider's part of a job: from the award to `done`, or to a failure that
    /// sends the job to the next bidder.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        award: &Award,
        model_id: &str,
        request: &InferRequest,
        signed: Option<job::SignedJob>,
        parts: &mut Option<Parts>,
        got: &mut Got,
        tx: &mpsc::Sender<Result<InferFrame, String>>,
        report: &Arc<Mutex<Bought>>,
    ) -> Attempt {
        let Some(pay) = self.payments.get().cloned() else {
            return Attempt::Fatal("this node takes no payments now".into());
        };
        let job_id = report.lock().map(|r| r.job_id.clone()).unwrap_or_default();
        let aux = job_id.as_bytes().to_vec();
        let skip = u32::try_from(got.tokens).unwrap_or(u32::MAX);
        let mut params = award.bid.params.clone();
        // Value of the tickets the provider has credited (as the buyer counts it, or as
        // the provider says after it refused some), and of all the tickets sent.
        let mut paid = U256::ZERO;
        let mut sent = U256::ZERO;
        let mut hashes: Vec<String> = Vec::new();
        let tickets_for = |params: &flurry_chain::ticket::TicketParams,
                           value: U256,
                           paid: &mut U256,
                           sent: &mut U256,
                           hashes: &mut Vec<String>| {
            let missing = value.saturating_sub(*paid);
            if missing.is_zero() {
                return Ok(Vec::new());
            }
            let ts = pay
                .sender
                .pay(params, award.payee, missing, &aux)
                .map_err(|e| e.to_string())?;
            let v = params.ticket_value() * U256::from(ts.len());
            *paid += v;
            *sent += v;
            hashes.extend(ts.iter().map(|t| t.ticket.hash(&params.domain).to_string()));
            Ok::<_, String>(ts)
        };
        let upfront = job::upfront(&award.prices, request, skip, award.bid.tokens_per_ticket);
        let tickets = match tickets_for(&params, upfront, &mut paid, &mut sent, &mut hashes) {
            Ok(t) if t.len() <= job::MAX_TICKETS_PER_FRAME => t,
            Ok(t) => {
                return Attempt::Failover(format!(
                    "its terms need {} tickets up front, more than {}",
                    t.len(),
                    job::MAX_TICKETS_PER_FRAME
                ));
            }
            Err(e) => return Attempt::Failover(e),
        };
        let ask = Ask::Job {
            v: JOB_VERSION,
            model_id: model_id.to_string(),
            request: request.clone(),
            skip,
            prefix: (skip > 0).then(|| job::prefix_digest(&got.texts)),
            tickets,
            signed: signed.map(Box::new),
        };
        let stream = match send(&self.net, &award.peer_id, &ask).await {
            Ok(s) => s,
            Err(e) => return Attempt::Failover(format!("cannot send the job: {e}")),
        };
        let account = |sent: U256, hashes: &[String], tokens: u64, total: u64| {
            if let Ok(mut r) = report.lock() {
                if let Some(p) = r.receipt.last_mut() {
                    p.paid_wei = sent.to_string();
                    p.tickets = hashes.to_vec();
                    p.tokens = tokens;
                }
                let sum = r
                    .receipt
                    .iter()
                    .map(|p| p.paid_wei.parse::<U256>().unwrap_or_default())
                    .fold(U256::ZERO, |a, b| a + b);
                r.price_paid_wei = sum.to_string();
                r.tokens = total;
            }
        };
        account(sent, &hashes, 0, got.tokens);
        let max_tokens = u64::from(request.max_tokens.unwrap_or(DEFAULT_MAX_ANSWER_TOKENS));
        let max_text = usize::try_from(max_tokens + 1)
            .unwrap_or(usize::MAX)
            .saturating_mul(MAX_TEXT_BYTES_PER_TOKEN);
        let ahead = u64::from(award.bid.tokens_per_ticket).div_ceil(2);
        let mut mine = 0u64;
        let mut prompt_tokens: Option<u64> = None;
        let (mut rd, mut wr) = futures_util::AsyncReadExt::split(stream);
        loop {
            let wait = if prompt_tokens.is_some() && mine > 0 {
                STALL_TIMEOUT
            } else {
                FIRST_FRAME_TIMEOUT
            };
            let next = tokio::select! {
                n = tokio::time::timeout(wait, infer::read_frame::<_, JobFrame>(&mut rd, job::MAX_JOB_FRAME_BYTES)) => n,
                () = tx.closed() => return Attempt::Gone,
            };
            let frame = match next {
                Err(_) => return Attempt::Failover(format!("no frame for {} s", wait.as_secs())),
                Ok(Ok(Some(f))) => f,
                Ok(Ok(None)) => {
                    return Attempt::Failover(
                        "the provider closed the stream before the end".into(),
                    );
                }
                Ok(Err(e)) => return Attempt::Failover(e.to_string()),
            };
            let frame = match frame {
                JobFrame::Params {
                    params: fresh,
                    credit_wei,
                } => {
                    if let Err(e) = check_params(&fresh, award, &params) {
                        return Attempt::Failover(format!("new ticket parameters refused: {e}"));
                    }
                    params = fresh;
                    // Tickets it refused (their parameters were retired) are paid again,
                    // within a bound checked below.
                    if let Ok(c) = credit_wei.parse::<U256>() {
                        paid = paid.min(c);
                    }
                    continue;
                }
                JobFrame::Receipt {
                    receipt,
                    signature,
                    output_tokens,
                    chunks,
                } => {
                    if parts.is_some() || output_tokens.len() as u64 > max_tokens + 1 {
                        return Attempt::Failover("a receipt sent twice, or too long".into());
                    }
                    *parts = Some(Parts {
                        receipt,
                        signature,
                        output_tokens,
                        chunks,
                    });
                    continue;
                }
                other => match other.into_infer() {
                    Some(f) => f,
                    None => continue,
                },
            };
            match &frame {
                InferFrame::Receipt { .. } => continue,
                InferFrame::Start {
                    prompt_tokens: p, ..
                } => {
                    if prompt_tokens.is_some() {
                        return Attempt::Failover("start sent twice".into());
                    }
                    prompt_tokens = Some(u64::from(*p));
                    if got.started {
                        continue;
                    }
                    got.started = true;
                }
                InferFrame::Token { text } => {
                    let Some(p) = prompt_tokens else {
                        return Attempt::Failover("a token before start".into());
                    };
                    mine += 1;
                    if mine == 1 {
                        got.first_token = Some(Instant::now());
                    }
                    got.tokens += 1;
                    got.text_bytes += text.len();
                    got.texts.push(text.clone());
                    if got.tokens > max_tokens + 1 || got.text_bytes > max_text {
                        return Attempt::Failover("more tokens than asked for".into());
                    }
                    // Keep about half a ticket ahead of what is owed, so the provider
                    // never waits, and never more than about one ticket and a half.
                    let mine_max = max_tokens.saturating_sub(u64::from(skip)) + 1;
                    let owed = award
                        .prices
                        .owed(p + u64::from(skip), (mine + ahead).min(mine_max));
                    let before = hashes.len();
                    match tickets_for(&params, owed, &mut paid, &mut sent, &mut hashes) {
                        Ok(ts) if ts.is_empty() => {}
                        Ok(ts) => {
                            // A provider that keeps saying it credited less than it was
                            // sent gets no more than two tickets beyond what is owed.
                            let ev = params.ticket_value();
                            let bound = award
                                .prices
                                .owed(p + u64::from(skip), mine + ahead)
                                .max(upfront)
                                + ev * U256::from(2u8);
                            if sent > bound {
                                hashes.truncate(before);
                                return Attempt::Failover(format!(
                                    "it asked for {sent} wei of tickets for {owed} wei of work"
                                ));
                            }
                            for chunk in ts.chunks(job::MAX_TICKETS_PER_FRAME) {
                                let msg = Ask::Pay {
                                    tickets: chunk.to_vec(),
                                };
                                if let Err(e) =
                                    infer::write_frame(&mut wr, &msg, job::MAX_PAY_BYTES).await
                                {
                                    return Attempt::Failover(format!("cannot pay: {e}"));
                                }
                            }
                        }
                        Err(e) => return Attempt::Fatal(format!("cannot pay the provider: {e}")),
                    }
                    account(sent, &hashes, mine, got.tokens);
                }
                InferFrame::Done { finish_reason, .. } => {
                    account(sent, &hashes, mine, got.tokens);
                    got.ms_per_token = got
                        .first_token
                        .filter(|_| mine >= 2)
                        .map(|t| t.elapsed().as_secs_f64() * 1e3 / (mine - 1) as f64);
                    let done = InferFrame::Done {
                        finish_reason: finish_reason.clone(),
                        completion_tokens: u32::try_from(got.tokens).unwrap_or(u32::MAX),
                    };
                    let _ = tx.send(Ok(done)).await;
                    let _ = tokio::time::timeout(Duration::from_secs(5), wr.close()).await;
                    return Attempt::Finished;
                }
                InferFrame::Error { code, message } => {
                    account(sent, &hashes, mine, got.tokens);
                    return match code {
                        ErrorCode::BadRequest | ErrorCode::TooLarge if got.tokens == 0 => {
                            Attempt::Fatal(format!("the provider refused the request: {message}"))
                        }
                        _ => Attempt::Failover(format!("{message} ({code:?})")),
                    };
                }
            }
            if tx.send(Ok(frame)).await.is_err() {
                return Attempt::Gone;
            }
        }
    }
}

/// New parameters mid-job must keep the bid's terms: same payee, payer, domain, and a
/// ticket worth no more than before.
fn check_params(
    fresh: &flurry_chain::ticket::TicketParams,
    award: &Award,
    old: &flurry_chain::ticket::TicketParams,
) -> Result<(), String> {
    if fresh.recipient != award.payee || fresh.sender != old.sender || fresh.domain != old.domain {
        return Err("they name someone else, or another chain".into());
    }
    if fresh.ticket_value() > award.prices.ticket_value(award.bid.tokens_per_ticket)
        || fresh.ticket_value().is_zero()
    {
        return Err("their tickets are worth more than the bid's".into());
    }
    Ok(())
}

/// A provider's receipt for a job, with the tokens and chunks it commits to.
#[derive(Debug)]
struct Parts {
    receipt: flurry_verify::messages::Receipt,
    signature: job::Bytes,
    output_tokens: Vec<u32>,
    chunks: Vec<B256>,
}

/// What the buyer holds of the answer across providers.
#[derive(Debug, Default)]
struct Got {
    started: bool,
    tokens: u64,
    text_bytes: usize,
    /// The tokens' texts (bounded with `text_bytes`), for the next provider's check.
    texts: Vec<String>,
    /// When the last provider's first token came, and the speed it kept after it.
    first_token: Option<std::time::Instant>,
    ms_per_token: Option<f64>,
}

enum Attempt {
    Finished,
    Gone,
    Fatal(String),
    Failover(String),
}

/// Opens a stream to `peer` and sends `ask`, trying four times: a busy seller drops a
/// new stream that arrives while its previous one is being taken (libp2p-stream hands
/// inbound streams over one at a time), and a connection can drop at any time.
async fn send(net: &flurry_net::Net, peer: &str, ask: &Ask) -> Result<PeerStream, String> {
    let frame = infer::encode(ask, job::MAX_ASK_BYTES).map_err(|e| e.to_string())?;
    net.open_and_send(peer, &[], job::MARKET_PROTOCOL, &frame)
        .await
        .map_err(|e| e.to_string())
}

async fn ask_bid(net: &flurry_net::Net, peer: &str, model_id: &str) -> Result<Bid, String> {
    let ask = Ask::Cfp {
        v: JOB_VERSION,
        model_id: model_id.to_string(),
    };
    let mut stream = send(net, peer, &ask).await?;
    let reply = infer::read_frame::<_, Reply>(&mut stream, job::MAX_REPLY_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.close().await;
    match reply {
        Some(Reply::Bid(b)) => Ok(*b),
        Some(Reply::Error { code, message }) => Err(format!("declined: {message} ({code:?})")),
        None => Err("closed without a bid".into()),
    }
}

/// A bid is believed only when it matches the seller's signed offer: the same model and
/// profile, prices no higher than offered (nor than the buyer's cap), tickets payable to
/// the offer's address whose value matches the price (one ticket never buys fewer tokens
/// than it says). A seller found through the DHT has no offer (its profile is unknown):
/// its bid is taken on its own terms within the cap.
fn check_bid(
    offer: &Listed,
    bid: Bid,
    me: Address,
    max_price: Option<u128>,
) -> Result<Award, String> {
    let o = &offer.offer;
    if bid.v != JOB_VERSION {
        return Err(format!("bid version {}", bid.v));
    }
    if bid.model_id != o.model_id || (!o.profile.is_empty() && bid.profile != o.profile) {
        return Err("the bid is for another model or profile than the offer".into());
    }
    let output: u128 = bid.price_wei_per_mtok.parse().map_err(|_| "bad price")?;
    let prompt: u128 = bid
        .prompt_price_wei_per_mtok
        .parse()
        .map_err(|_| "bad prompt price")?;
    if output > o.price() || prompt > o.prompt_price() {
        return Err("the bid asks more than the offer".into());
    }
    if max_price.is_some_and(|m| output > m) {
        return Err("the bid asks more than the price cap".into());
    }
    if bid.tokens_per_ticket == 0 || bid.tokens_per_ticket > job::MAX_TOKENS_PER_TICKET {
        return Err(format!("{} tokens per ticket", bid.tokens_per_ticket));
    }
    let payee: Address = o.address.parse().map_err(|_| "bad address")?;
    if bid.params.recipient != payee || bid.params.sender != me {
        return Err("the ticket parameters name someone else".into());
    }
    let prices = Prices { output, prompt };
    let ev = bid.params.ticket_value();
    // Rounding of the win probability may make a ticket a little cheaper, never dearer.
    if ev > prices.ticket_value(bid.tokens_per_ticket) {
        return Err(format!(
            "a ticket is worth {ev} wei, more than {} tokens cost",
            bid.tokens_per_ticket
        ));
    }
    if ev.is_zero() {
        return Err("worthless tickets".into());
    }
    Ok(Award {
        peer_id: o.peer_id.clone(),
        payee,
        bid,
        prices,
        rtt: offer.rtt_ms.unwrap_or(f64::MAX),
        reputation: offer.reputation,
    })
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Offer, Reputation};
    use flurry_chain::ticket::{Domain, TicketParams};

    const PRICE: u128 = 1_000_000_000_000_000;

    fn listed(seller: &flurry_identity::Identity) -> Listed {
        Listed {
            offer: Offer {
                v: 1,
                peer_id: seller.peer_id(),
                address: seller.address(),
                model: "m".into(),
                model_id: "ab".repeat(32),
                profile: "flurry-det-1".into(),
                price_wei_per_mtok: PRICE.to_string(),
                prompt_price_wei_per_mtok: PRICE.to_string(),
                max_jobs: 1,
                expires: 0,
                seq: 0,
            },
            stake_wei: "1".into(),
            staked: true,
            mine: false,
            rtt_ms: Some(1.0),
            reputation: Reputation::default(),
        }
    }

    fn bid(seller: &flurry_identity::Identity, buyer: Address) -> Bid {
        let value = Prices {
            output: PRICE,
            prompt: PRICE,
        }
        .ticket_value(16);
        let face = U256::from(10u64).pow(U256::from(16u8));
        Bid {
            v: JOB_VERSION,
            model: "m".into(),
            model_id: "ab".repeat(32),
            profile: "flurry-det-1".into(),
            price_wei_per_mtok: PRICE.to_string(),
            prompt_price_wei_per_mtok: PRICE.to_string(),
            tokens_per_ticket: 16,
            params: TicketParams {
                domain: Domain {
                    chain_id: 31337,
                    broker: Address::repeat_byte(7),
                },
                recipient: seller.address().parse().unwrap(),
                sender: buyer,
                face_value: face,
                win_prob: (U256::MAX / face) * value,
                recipient_rand_hash: Default::default(),
                expiration_time: u64::MAX,
            },
            active_jobs: 0,
            max_jobs: 1,
        }
    }

    /// Attack: a seller bids other terms than it offered (a dearer price, tickets worth
    /// more than the tokens they pay for, payable to someone else, for another model).
    #[test]
    fn bids_that_break_the_offer_are_refused() {
        let seller = flurry_identity::Identity::generate().unwrap();
        let me = Address::repeat_byte(1);
        let offer = listed(&seller);
        assert!(check_bid(&offer, bid(&seller, me), me, None).is_ok());
        let mut dear = bid(&seller, me);
        dear.price_wei_per_mtok = (PRICE + 1).to_string();
        assert!(
            check_bid(&offer, dear, me, None)
                .unwrap_err()
                .contains("more than the offer")
        );
        let mut rich = bid(&seller, me);
        rich.params.win_prob *= U256::from(2u8);
        assert!(
            check_bid(&offer, rich, me, None)
                .unwrap_err()
                .contains("worth")
        );
        let mut elsewhere = bid(&seller, me);
        elsewhere.params.recipient = Address::repeat_byte(9);
        assert!(
            check_bid(&offer, elsewhere, me, None)
                .unwrap_err()
                .contains("someone else")
        );
        let mut not_me = bid(&seller, me);
        not_me.params.sender = Address::repeat_byte(2);
        assert!(check_bid(&offer, not_me, me, None).is_err());
        let mut other = bid(&seller, me);
        other.profile = "other".into();
        assert!(check_bid(&offer, other, me, None).is_err());
        assert!(
            check_bid(&offer, bid(&seller, me), me, Some(PRICE - 1))
                .unwrap_err()
                .contains("cap")
        );
        let mut zero = bid(&seller, me);
        zero.tokens_per_ticket = 0;
        assert!(check_bid(&offer, zero, me, None).is_err());
        // New parameters mid-job keep the same terms.
        let award = check_bid(&offer, bid(&seller, me), me, None).unwrap();
        let old = award.bid.params.clone();
        let mut fresh = old.clone();
        fresh.recipient_rand_hash = flurry_chain::B256::repeat_byte(3);
        assert!(check_params(&fresh, &award, &old).is_ok());
        fresh.face_value *= U256::from(2u8);
        assert!(check_params(&fresh, &award, &old).is_err());
    }

    #[test]
    fn at_one_price_the_faster_provider_is_awarded_and_a_newcomer_is_tried() {
        let seller = flurry_identity::Identity::generate().unwrap();
        let me = Address::repeat_byte(1);
        let mut slow = check_bid(&listed(&seller), bid(&seller, me), me, None).unwrap();
        let mut fast = slow.clone();
        let mut new = slow.clone();
        slow.reputation.ms_per_token = Some(90.0);
        fast.reputation.ms_per_token = Some(20.0);
        new.reputation.ms_per_token = None;
        slow.peer_id = "slow".into();
        fast.peer_id = "fast".into();
        new.peer_id = "new".into();
        let mut v = [slow.clone(), fast.clone(), new.clone()];
        v.sort_by(award_order);
        let order: Vec<&str> = v.iter().map(|a| a.peer_id.as_str()).collect();
        assert_eq!(order, ["new", "fast", "slow"]);
        // Speed never beats price.
        let mut cheap_slow = slow.clone();
        cheap_slow.prices.output -= 1;
        let mut v = [fast, cheap_slow];
        v.sort_by(award_order);
        assert_eq!(v[0].peer_id, "slow");
    }

    #[test]
    fn failures_weigh_against_a_provider_in_the_award() {
        let seller = flurry_identity::Identity::generate().unwrap();
        let me = Address::repeat_byte(1);
        let mut a = check_bid(&listed(&seller), bid(&seller, me), me, None).unwrap();
        let b = a.clone();
        assert_eq!(a.weight(), b.weight());
        a.reputation = Reputation {
            jobs: 1,
            failed: 2,
            ..Reputation::default()
        };
        assert!(a.weight().0 > b.weight().0 * 1.4);
        let newcomer = Reputation::default();
        let steady = Reputation {
            jobs: 99,
            failed: 1,
            ..Reputation::default()
        };
        assert!(newcomer.failure_rate() == 0.0 && steady.failure_rate() < 0.011);
    }
}
