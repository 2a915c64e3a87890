//! Flurry's open market (`docs/market.md`): nodes sell inference to strangers.
//!
//! This crate holds the first step of the Contract Net exchange, the **offers**: a seller
//! staked in `ProviderRegistry` signs, with its node key, what it sells (model name and
//! ModelId, determinism profile, prices, capacity, expiry) and publishes it by gossip on
//! [`OFFERS_TOPIC`]; every node checks what it hears ([`SignedOffer::open`]) and keeps the
//! live offers in a bounded [`OfferBook`]; a buyer lists them with each seller's stake,
//! read from the chain, and ignores sellers without enough of it.

pub mod audit;
pub mod book;
pub mod buyer;
pub mod job;
pub mod offer;
pub mod seller;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flurry_chain::{Address, Chain, TicketReceiver, TicketSender, U256};
use flurry_identity::Identity;
use flurry_net::{Net, Verdict};
use serde::Serialize;

pub use audit::{AuditPolicy, AuditRecord, Models};
pub use book::OfferBook;
pub use buyer::{Bought, Payment, Purchase};
pub use offer::{Offer, SignedOffer};

/// The gossip topic of offers.
pub const OFFERS_TOPIC: &str = "flurry/market/offers/1";
/// A seller re-signs and re-publishes its offers this often.
pub const REPUBLISH_EVERY: Duration = Duration::from_secs(30);
/// How long a published offer lives: a seller that stops or dies is gone from every
/// book within this time.
pub const OFFER_LIFETIME_SECS: u64 = 120;
/// Every this many rounds of [`REPUBLISH_EVERY`] (10 minutes), a seller announces itself
/// again as a provider of its models in the DHT.
const REPROVIDE_ROUNDS: u64 = 20;
/// How long a seller's stake, read from the chain, is trusted.
const STAKE_FRESH: Duration = Duration::from_secs(30);

/// Why an offer (or a request) was refused, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Errors of the market.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node runs without a chain, so it can neither prove nor check stake.
    #[error(
        "this node runs without a chain: the market needs one to check stake (set [chain] mode = \"local\" or `flurry chain use URL`, then restart)"
    )]
    NoChain,
    /// The seller's stake is below the registry's minimum.
    #[error(
        "this node's stake is {stake} wei, below the {min} wei the ProviderRegistry requires of sellers: run `flurry market stake AMOUNT` first"
    )]
    NotStaked {
        /// Bonded stake, wei.
        stake: String,
        /// Minimum, wei.
        min: String,
    },
    /// The chain did not answer.
    #[error("the chain did not answer: {0}")]
    Chain(String),
    /// The offer is not valid.
    #[error("invalid offer: {0}")]
    Offer(#[from] Refused),
    /// Nobody sells the model, or nobody bid.
    #[error("{0}")]
    NoOffers(String),
}

/// How this node pays and is paid on the market.
#[derive(Debug)]
pub struct Payments {
    /// Validates and stores the tickets buyers pay with (the node's redeemer cashes the
    /// winners).
    pub receiver: Arc<TicketReceiver>,
    /// Signs the tickets this node pays with, within its own limits.
    pub sender: Arc<TicketSender>,
    /// Tokens each ticket this node asks for pays ([`job::DEFAULT_TOKENS_PER_TICKET`]).
    pub tokens_per_ticket: u32,
    /// A job sold whose buyer sends no ticket for this long, while a token waits for
    /// payment, ends ([`job::DEFAULT_PAY_TIMEOUT`]).
    pub pay_timeout: std::time::Duration,
}

/// Jobs kept for `flurry market jobs`.
pub const MAX_JOB_RECORDS: usize = 1000;

/// A job bought or sold by this node.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct JobRecord {
    /// Its id.
    pub id: String,
    /// `bought` or `sold`.
    pub role: String,
    /// The other side (for a bought job, the last provider).
    pub peer: String,
    /// The model's name (sold jobs).
    pub model: String,
    /// The ModelId.
    pub model_id: String,
    /// Tokens generated for the buyer.
    pub tokens: u64,
    /// Value of the tickets sent (bought) or received (sold), wei.
    pub paid_wei: String,
    /// What the tokens sent cost at the seller's price, wei (sold jobs).
    pub owed_wei: String,
    /// Of which up front, wei (sold jobs).
    pub upfront_wei: String,
    /// Unix seconds when it started.
    pub started: u64,
    /// How it ended.
    pub status: String,
    /// Times a bought job moved to another provider.
    pub failovers: u32,
}

/// What this node sells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sale {
    /// Model name.
    pub model: String,
    /// ModelId (64 hex digits).
    pub model_id: String,
    /// Engine determinism profile.
    pub profile: String,
    /// Generated tokens, wei per million.
    pub price_wei_per_mtok: u128,
    /// Prompt tokens, wei per million.
    pub prompt_price_wei_per_mtok: u128,
    /// Concurrent jobs at most.
    pub max_jobs: u32,
}

/// An offer as a buyer sees it: the offer, the seller's stake, whether it is enough.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// The offer.
    #[serde(flatten)]
    pub offer: Offer,
    /// The seller's bonded stake in wei (decimal).
    pub stake_wei: String,
    /// Whether the stake reaches the registry's minimum.
    pub staked: bool,
    /// Whether this node is the seller.
    pub mine: bool,
    /// Last ping round trip to the seller, milliseconds, when connected to it.
    pub rtt_ms: Option<f64>,
    /// This node's experience of the seller as a provider.
    pub reputation: Reputation,
}

/// What this node has seen of a provider: jobs it finished, jobs it failed (died,
/// stalled, broke the protocol, refused after the award), checks it failed, its speed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Reputation {
    /// Jobs it finished.
    pub jobs: u64,
    /// Jobs it failed.
    pub failed: u64,
    /// Its jobs whose checks failed here (a receipt that does not hold, an audit that
    /// does not reproduce): such a seller is never bought from again.
    #[serde(skip_serializing_if = "is_zero")]
    pub audits_failed: u64,
    /// How fast it generated for this node: milliseconds per token after the first,
    /// a moving average over its jobs (`None` until it finished one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ms_per_token: Option<f64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Reputation {
    /// The share of failures, with one finished job assumed, so a newcomer is not
    /// worse than a provider that failed once in many jobs: `failed / (jobs + failed + 1)`.
    pub fn failure_rate(&self) -> f64 {
        self.failed as f64 / (self.jobs + self.failed + 1) as f64
    }
}

/// Counters for `GET /api/market`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// This node's current signed offers.
    pub selling: Vec<SignedOffer>,
    /// Offers in the book.
    pub offers_known: usize,
    /// Offers heard by gossip and kept.
    pub heard: u64,
    /// Offers heard and refused (bad signature, expired, someone else's, …).
    pub refused: u64,
    /// Calls for proposals and jobs refused for their rate.
    pub refused_asks: u64,
    /// Peers cut off for flooding (`docs/market.md`).
    pub banned: u64,
    /// Jobs bought and sold kept (the last 1,000).
    pub jobs: usize,
}

/// How gossip treats an offer heard from `source` at unix time `now`: a forged, tampered,
/// malformed or misattributed offer is rejected (not forwarded, and it costs its sender
/// score); an expired one or one of a newer format is ignored (not forwarded, no blame:
/// clocks drift and versions change); a valid one is accepted.
pub fn verdict(source: Option<&str>, data: &[u8], now: u64) -> Verdict {
    let newer = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v["offer"]["v"].as_u64())
        .is_some_and(|v| v > u64::from(offer::OFFER_VERSION));
    if newer {
        return Verdict::Ignore;
    }
    match SignedOffer::open_untimed(data, source) {
        Err(_) => Verdict::Reject,
        Ok(o) if o.timely(now).is_ok() => Verdict::Accept,
        Ok(_) => Verdict::Ignore,
    }
}

/// Reads the sales kept in `path` (none when it does not exist).
///
/// # Errors
/// When the file cannot be read or is not a list of sales.
pub fn load_sales(path: &Path) -> Result<Vec<Sale>, Refused> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            Refused(format!(
                "{} is not a list of sales ({e}); fix or delete it",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Refused(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Writes `sales` to `path` atomically (temporary file, fsync, rename).
///
/// # Errors
/// When the file cannot be written.
pub fn save_sales(path: &Path, sales: &[Sale]) -> Result<(), Refused> {
    save_json(path, &sales)
}

/// Writes `value` as JSON to `path` atomically (temporary file, fsync, rename).
pub(crate) fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), Refused> {
    use std::io::Write;
    let io = |e: std::io::Error| Refused(format!("cannot write {}: {e}", path.display()));
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(value).map_err(|e| Refused(e.to_string()))?;
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&text).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// The DHT key under which the sellers of a model are listed as providers.
pub fn provider_key(model_id: &str) -> Vec<u8> {
    format!("/flurry/model/{model_id}").into_bytes()
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The node's market: its own offers, and the book of everyone's.
pub struct Market {
    identity: Arc<Identity>,
    net: Net,
    chain: Option<Chain>,
    book: Mutex<OfferBook>,
    sales: Mutex<Vec<Sale>>,
    stakes: Mutex<HashMap<String, (U256, Instant)>>,
    heard: AtomicU64,
    refused: Arc<AtomicU64>,
    /// Where the sales are kept across restarts (`None`: in memory only).
    sales_file: Option<PathBuf>,
    payments: OnceLock<Arc<Payments>>,
    admission: Arc<seller::Admission>,
    refused_asks: AtomicU64,
    banned: AtomicU64,
    jobs: Mutex<VecDeque<JobRecord>>,
    reputation: Mutex<HashMap<String, Reputation>>,
    /// Where the jobs are kept across restarts (written after each job).
    jobs_file: OnceLock<PathBuf>,
    /// One write of the jobs file at a time.
    jobs_write: Arc<Mutex<()>>,
    /// The models this node holds: jobs bought of them carry a signed request and are
    /// audited.
    models: OnceLock<Arc<dyn Models>>,
    /// Where bought jobs' bundles go, and the audit rates.
    receipts: OnceLock<(PathBuf, AuditPolicy)>,
    audits: audit::Shared,
}

impl std::fmt::Debug for Market {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Market").finish_non_exhaustive()
    }
}

impl Market {
    /// A market for the node with `identity`, on `net`, checking stake on `chain`.
    pub fn new(identity: Arc<Identity>, net: Net, chain: Option<Chain>) -> Arc<Self> {
        Self::with_sales_file(identity, net, chain, None)
    }

    /// [`Market::new`] that keeps its sales in `sales_file` and, at [`Market::start`],
    /// sells again what the file lists (after checking the stake again).
    pub fn with_sales_file(
        identity: Arc<Identity>,
        net: Net,
        chain: Option<Chain>,
        sales_file: Option<PathBuf>,
    ) -> Arc<Self> {
        Arc::new(Self {
            identity,
            net,
            chain,
            book: Mutex::new(OfferBook::default()),
            sales: Mutex::new(Vec::new()),
            stakes: Mutex::new(HashMap::new()),
            heard: AtomicU64::new(0),
            refused: Arc::new(AtomicU64::new(0)),
            sales_file,
            payments: OnceLock::new(),
            admission: Arc::default(),
            refused_asks: AtomicU64::new(0),
            banned: AtomicU64::new(0),
            jobs: Mutex::new(VecDeque::new()),
            reputation: Mutex::new(HashMap::new()),
            jobs_file: OnceLock::new(),
            jobs_write: Arc::default(),
            models: OnceLock::new(),
            receipts: OnceLock::new(),
            audits: Arc::default(),
        })
    }

    /// Lets the market take and make payments (once; later calls are ignored).
    pub fn set_payments(&self, payments: Payments) {
        let _ = self.payments.set(Arc::new(payments));
    }

    /// Lets the market sign requests for, and audit, jobs of the models `models` holds;
    /// bundles go to `dir` (created), the audits to `dir/../market-audits.json`, drawn
    /// at `policy`'s rates (once; later calls are ignored).
    pub fn set_receipts(&self, models: Arc<dyn Models>, dir: PathBuf, policy: AuditPolicy) {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(
                "cannot create {}: {e}; jobs bought carry no receipt",
                dir.display()
            );
            return;
        }
        let file = dir.parent().map_or_else(
            || PathBuf::from("market-audits.json"),
            |p| p.join("market-audits.json"),
        );
        if let Ok(mut a) = self.audits.lock() {
            *a = audit::Audits::load(file);
        }
        let _ = self.models.set(models);
        let _ = self.receipts.set((dir, policy));
    }

    /// The checks of jobs bought with receipts (the last 1,000), oldest first.
    pub fn audits(&self) -> Vec<AuditRecord> {
        self.audits.lock().map(|a| a.list()).unwrap_or_default()
    }

    /// Whether a failed check convicted `peer`: it is never bought from again.
    pub fn distrusted(&self, peer: &str) -> bool {
        self.audits
            .lock()
            .map(|a| a.distrusted().contains(peer))
            .unwrap_or(false)
    }

    /// Serves `/flurry/market/1`: bids, and paid jobs handed to `jobs` to run on the local
    /// engine (answer them like circle requests; the market meters their frames).
    ///
    /// # Errors
    /// When the protocol is served already.
    pub fn serve_jobs(
        self: &Arc<Self>,
        jobs: tokio::sync::mpsc::Sender<flurry_net::Inbound>,
    ) -> Result<(), Refused> {
        let incoming = self
            .net
            .accept_streams(job::MARKET_PROTOCOL)
            .map_err(|e| Refused(e.to_string()))?;
        tokio::spawn(seller::accept(Arc::downgrade(self), incoming, jobs));
        Ok(())
    }

    /// Keeps the jobs in `path` (the last [`MAX_JOB_RECORDS`]): reads what it holds now
    /// (a file that cannot be read is reported and set aside, not lost) and writes it
    /// after each job.
    pub fn set_jobs_file(&self, path: PathBuf) {
        match std::fs::read(&path) {
            Ok(b) => match serde_json::from_slice::<Vec<JobRecord>>(&b) {
                Ok(old) => {
                    if let Ok(mut j) = self.jobs.lock() {
                        let keep = old.len().saturating_sub(MAX_JOB_RECORDS);
                        j.extend(old.into_iter().skip(keep));
                    }
                }
                Err(e) => {
                    let aside = path.with_extension("json.broken");
                    let _ = std::fs::rename(&path, &aside);
                    tracing::warn!(
                        "{} is not a list of market jobs ({e}); moved to {} and starting a new list",
                        path.display(),
                        aside.display()
                    );
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot read {}: {e}", path.display()),
        }
        let _ = self.jobs_file.set(path);
    }

    fn record(&self, job: JobRecord) {
        let list: Vec<JobRecord> = match self.jobs.lock() {
            Ok(mut j) => {
                if j.len() >= MAX_JOB_RECORDS {
                    j.pop_front();
                }
                j.push_back(job);
                j.iter().cloned().collect()
            }
            Err(_) => return,
        };
        let Some(path) = self.jobs_file.get().cloned() else {
            return;
        };
        let lock = self.jobs_write.clone();
        let write = move || {
            let _one = lock.lock();
            if let Err(e) = save_json(&path, &list) {
                tracing::warn!("{e}: the market jobs will not survive a restart");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(write);
            }
            Err(_) => write(),
        }
    }

    /// This node's experience of `peer` as a provider.
    pub fn reputation_of(&self, peer: &str) -> Reputation {
        let mut rep = self
            .reputation
            .lock()
            .map(|r| r.get(peer).copied().unwrap_or_default())
            .unwrap_or_default();
        rep.audits_failed = self
            .audits
            .lock()
            .map(|a| {
                a.list()
                    .iter()
                    .filter(|r| r.provider == peer && r.verdict == "failed")
                    .count() as u64
            })
            .unwrap_or(0);
        rep
    }

    /// Folds one job's speed into `peer`'s reputation (a moving average, a fifth for
    /// the newest job).
    fn timed(&self, peer: &str, ms_per_token: f64) {
        if !ms_per_token.is_finite() || ms_per_token < 0.0 {
            return;
        }
        if let Ok(mut r) = self.reputation.lock()
            && let Some(e) = r.get_mut(peer)
        {
            e.ms_per_token = Some(match e.ms_per_token {
                Some(old) => 0.8 * old + 0.2 * ms_per_token,
                None => ms_per_token,
            });
        }
    }

    fn rate(&self, peer: &str, finished: bool) {
        if let Ok(mut r) = self.reputation.lock() {
            if r.len() >= 4 * book::MAX_OFFERS && !r.contains_key(peer) {
                return;
            }
            let e = r.entry(peer.to_string()).or_default();
            if finished {
                e.jobs += 1;
            } else {
                e.failed += 1;
            }
        }
    }

    /// Jobs bought and sold (the last 1,000, kept across restarts), oldest first.
    pub fn jobs(&self) -> Vec<JobRecord> {
        self.jobs
            .lock()
            .map(|j| j.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Follows the offers topic and spawns the loop that re-publishes this node's offers
    /// and prunes expired ones.
    ///
    /// # Errors
    /// When the topic cannot be followed.
    pub async fn start(self: &Arc<Self>) -> Result<(), Refused> {
        let refused = self.refused.clone();
        let validator: flurry_net::Validator = Arc::new(move |source, data| {
            let v = verdict(source, data, unix_now());
            if v != Verdict::Accept {
                refused.fetch_add(1, Ordering::Relaxed);
            }
            v
        });
        self.net
            .subscribe_validated(OFFERS_TOPIC, validator)
            .await
            .map_err(|e| Refused(e.to_string()))?;
        let me = Arc::downgrade(self);
        let kept = match &self.sales_file {
            Some(f) => load_sales(f).unwrap_or_else(|e| {
                tracing::warn!("{e}; selling nothing until `flurry market sell`");
                Vec::new()
            }),
            None => Vec::new(),
        };
        tokio::spawn(async move {
            for sale in kept {
                let Some(m) = me.upgrade() else { return };
                match m.sell(sale.clone()).await {
                    Ok(_) => tracing::info!(model = %sale.model, "selling again after a restart"),
                    Err(e) => {
                        tracing::warn!(model = %sale.model, error = %e, "not selling again after a restart")
                    }
                }
            }
            let mut tick = tokio::time::interval(REPUBLISH_EVERY);
            tick.tick().await;
            let mut rounds = 0u64;
            loop {
                tick.tick().await;
                let Some(m) = me.upgrade() else { return };
                m.publish_all().await;
                rounds += 1;
                // The DHT servers near a ModelId change as peers come and go.
                if rounds.is_multiple_of(REPROVIDE_ROUNDS) {
                    m.provide_all().await;
                }
                if let Ok(mut b) = m.book.lock() {
                    b.prune(unix_now());
                }
            }
        });
        Ok(())
    }

    /// A gossip message on [`OFFERS_TOPIC`] from `source`: kept in the book if it is a
    /// valid offer.
    pub fn on_gossip(&self, source: Option<&str>, data: &[u8]) {
        let now = unix_now();
        let kept = SignedOffer::open(data, source, now).and_then(|o| {
            self.book
                .lock()
                .map_err(|_| Refused("book poisoned".into()))?
                .insert(o, now)
        });
        match kept {
            Ok(()) => {
                self.heard.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(source = ?source, reason = %e, "offer refused");
            }
        }
    }

    fn signed(&self, sale: &Sale) -> SignedOffer {
        let now = unix_now();
        Offer {
            v: offer::OFFER_VERSION,
            peer_id: self.identity.peer_id(),
            address: self.identity.address(),
            model: sale.model.clone(),
            model_id: sale.model_id.clone(),
            profile: sale.profile.clone(),
            price_wei_per_mtok: sale.price_wei_per_mtok.to_string(),
            prompt_price_wei_per_mtok: sale.prompt_price_wei_per_mtok.to_string(),
            max_jobs: sale.max_jobs,
            expires: now + OFFER_LIFETIME_SECS,
            seq: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
        .sign(&self.identity)
    }

    async fn publish(&self, offer: &SignedOffer) -> Result<(), Refused> {
        let bytes = offer.to_bytes()?;
        if let Ok(mut b) = self.book.lock() {
            let _ = b.insert(offer.clone(), unix_now());
        }
        // With nobody following the topic yet, gossipsub has no one to send to; the
        // next round reaches those who joined since.
        if let Err(e) = self.net.publish(OFFERS_TOPIC, bytes).await {
            tracing::debug!(error = %e, "offer not published this round");
        }
        Ok(())
    }

    async fn publish_all(&self) {
        let sales = self.sales.lock().map(|s| s.clone()).unwrap_or_default();
        for sale in &sales {
            let offer = self.signed(sale);
            if let Err(e) = self.publish(&offer).await {
                tracing::warn!(model = %sale.model, error = %e, "cannot publish an offer");
            }
        }
    }

    async fn provide_all(&self) {
        let sales = self.sales.lock().map(|s| s.clone()).unwrap_or_default();
        for sale in &sales {
            if let Err(e) = self.net.provide(&provider_key(&sale.model_id)).await {
                tracing::debug!(error = %e, "not listed as a provider in the DHT");
            }
        }
    }

    /// The bonded stake of `address` and the registry's minimum (fresh from the chain).
    async fn stake_and_min(&self, address: &str) -> Result<(U256, U256), Error> {
        let chain = self.chain.as_ref().ok_or(Error::NoChain)?;
        let addr: Address = address
            .parse()
            .map_err(|_| Error::Chain(format!("bad address {address}")))?;
        let stake = chain
            .bonded_of(addr)
            .await
            .map_err(|e| Error::Chain(e.to_string()))?;
        let min = chain
            .min_stake()
            .await
            .map_err(|e| Error::Chain(e.to_string()))?;
        Ok((stake, min))
    }

    /// Starts selling `sale` (replacing an earlier sale of the same model): checks that
    /// this node's stake reaches the registry's minimum, signs and publishes the offer.
    ///
    /// # Errors
    /// No chain, not enough stake, or an offer that would not pass a buyer's checks.
    pub async fn sell(&self, sale: Sale) -> Result<SignedOffer, Error> {
        let (stake, min) = self.stake_and_min(&self.identity.address()).await?;
        if stake < min || stake.is_zero() {
            return Err(Error::NotStaked {
                stake: stake.to_string(),
                min: min.to_string(),
            });
        }
        let offer = self.signed(&sale);
        offer.check(Some(&self.identity.peer_id()), unix_now())?;
        if let Ok(mut s) = self.sales.lock() {
            s.retain(|x| x.model_id != sale.model_id);
            s.push(sale);
        }
        self.save_sales();
        self.publish(&offer).await?;
        // The DHT lists this node as a provider of the ModelId: buyers that heard no
        // offer still find it (DHT servers keep the record; a node nobody can reach
        // directly is listed through the servers it reaches).
        if let Err(e) = self.net.provide(&provider_key(&offer.offer.model_id)).await {
            tracing::debug!(error = %e, "not listed as a provider in the DHT");
        }
        Ok(offer)
    }

    /// Stops selling `model` (a name or ModelId), or everything; returns the models
    /// withdrawn. Other nodes drop the offers when they expire.
    pub fn stop(&self, model: Option<&str>) -> Vec<String> {
        let mut stopped: Vec<Sale> = Vec::new();
        if let Ok(mut s) = self.sales.lock() {
            s.retain(|x| {
                let hit = model.is_none_or(|m| x.model == m || x.model_id == m);
                if hit {
                    stopped.push(x.clone());
                }
                !hit
            });
        }
        self.save_sales();
        if let Ok(mut b) = self.book.lock() {
            let me = self.identity.peer_id();
            for sale in &stopped {
                b.remove(&me, &sale.model_id);
            }
        }
        stopped.into_iter().map(|s| s.model).collect()
    }

    fn save_sales(&self) {
        let Some(f) = &self.sales_file else { return };
        let sales = self.sales.lock().map(|s| s.clone()).unwrap_or_default();
        if let Err(e) = save_sales(f, &sales) {
            tracing::warn!("{e}: the sales will not survive a restart");
        }
    }

    /// This node's offers and the book's counters.
    pub fn status(&self) -> Status {
        // The offers as last published (the book holds this node's own).
        let me = self.identity.peer_id();
        let selling = self
            .book
            .lock()
            .map(|b| b.live(None, unix_now()))
            .unwrap_or_default()
            .into_iter()
            .filter(|o| o.offer.peer_id == me)
            .collect();
        Status {
            selling,
            offers_known: self.book.lock().map_or(0, |b| b.len()),
            heard: self.heard.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            refused_asks: self.refused_asks.load(Ordering::Relaxed),
            banned: self.banned.load(Ordering::Relaxed),
            jobs: self.jobs.lock().map_or(0, |j| j.len()),
        }
    }

    /// Live offers (for `model`, a name or ModelId, when given), cheapest first, with each
    /// seller's stake; sellers below the registry's minimum only with `all`.
    ///
    /// # Errors
    /// No chain, or the chain did not answer.
    pub async fn offers(&self, model: Option<&str>, all: bool) -> Result<Vec<Listed>, Error> {
        let chain = self.chain.as_ref().ok_or(Error::NoChain)?;
        let live = self
            .book
            .lock()
            .map(|b| b.live(model, unix_now()))
            .unwrap_or_default();
        let min = chain
            .min_stake()
            .await
            .map_err(|e| Error::Chain(e.to_string()))?;
        let me = self.identity.peer_id();
        let rtt: HashMap<String, f64> = self
            .net
            .peers()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| Some((p.peer_id, p.rtt_ms?)))
            .collect();
        let mut out = Vec::new();
        for o in live {
            let stake = self.stake_of(chain, &o.offer.address).await?;
            let staked = stake >= min && !stake.is_zero();
            if staked || all {
                out.push(Listed {
                    mine: o.offer.peer_id == me,
                    rtt_ms: rtt.get(&o.offer.peer_id).copied(),
                    reputation: self.reputation_of(&o.offer.peer_id),
                    offer: o.offer,
                    stake_wei: stake.to_string(),
                    staked,
                });
            }
        }
        Ok(out)
    }

    async fn stake_of(&self, chain: &Chain, address: &str) -> Result<U256, Error> {
        if let Ok(c) = self.stakes.lock()
            && let Some((s, at)) = c.get(address)
            && at.elapsed() < STAKE_FRESH
        {
            return Ok(*s);
        }
        let addr: Address = address
            .parse()
            .map_err(|_| Error::Chain(format!("bad address {address}")))?;
        let s = chain
            .bonded_of(addr)
            .await
            .map_err(|e| Error::Chain(e.to_string()))?;
        if let Ok(mut c) = self.stakes.lock() {
            if c.len() > 4 * book::MAX_OFFERS {
                c.clear();
            }
            c.insert(address.to_string(), (s, Instant::now()));
        }
        Ok(s)
    }
}
