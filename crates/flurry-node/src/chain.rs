//! The node's chain: where it is (`[chain]`), the local anvil `flurry up` runs, the
//! contracts deployed once and remembered, and the background ticket redeemer.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flurry_chain::ticket::win_prob_one_in;
use flurry_chain::{
    Chain, Contracts, DeployParams, Deployment, Deployments, LocalChain, ReceiverConfig,
    SenderLimits, TicketReceiver, U256, parse_ether,
};
use flurry_config::{ChainMode, ChainSection, Paths};
use flurry_identity::Identity;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `$FLURRY_HOME/chain/local.json`: the local chain of a running node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalChainFile {
    /// RPC URL.
    pub url: String,
    /// anvil's process id.
    pub pid: u32,
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Parses an ETH amount such as `1.5` (wei precision).
pub fn parse_eth(field: &str, s: &str) -> Result<U256> {
    parse_ether(s.trim()).map_err(|_| Error::BadAmount {
        field: field.to_string(),
        value: s.to_string(),
    })
}

/// Constructor parameters from `[chain]`.
pub fn deploy_params(c: &ChainSection) -> Result<DeployParams> {
    Ok(DeployParams {
        unlock_period_secs: c.unlock_period_secs,
        reserve_round_secs: c.reserve_round_secs,
        reserve_recipients: c.reserve_recipients,
        unbonding_period_secs: c.unbonding_period_secs,
        challenger_share_bps: c.challenger_share_bps,
        min_stake: parse_eth("[chain] min_stake_eth", &c.min_stake_eth)?,
        arbiter: None,
    })
}

/// Ticket terms this node offers as a recipient, from `[chain]`.
pub fn receiver_config(c: &ChainSection) -> Result<ReceiverConfig> {
    Ok(ReceiverConfig {
        face_value: parse_eth("[chain] ticket_face_value_eth", &c.ticket_face_value_eth)?,
        win_prob: win_prob_one_in(c.ticket_win_one_in),
        params_ttl_secs: 3600,
        batch_size: c.redeem_batch.max(1),
        ..ReceiverConfig::default()
    })
}

/// What this node signs as a sender whatever a payee asks for, from `[chain]`.
pub fn sender_limits(c: &ChainSection) -> Result<SenderLimits> {
    Ok(SenderLimits {
        max_face_value: parse_eth("[chain] max_face_value_eth", &c.max_face_value_eth)?,
        max_ticket_ev: parse_eth("[chain] max_ticket_ev_eth", &c.max_ticket_ev_eth)?,
    })
}

/// The RPC URL of the configured chain. In local mode that is the anvil of the running
/// node.
pub fn rpc_url(paths: &Paths, c: &ChainSection) -> Result<String> {
    match c.mode {
        ChainMode::Off => Err(Error::ChainOff),
        ChainMode::Rpc if c.rpc_url.trim().is_empty() => Err(Error::NoRpcUrl),
        ChainMode::Rpc => Ok(c.rpc_url.trim().to_string()),
        ChainMode::Local => {
            let file = paths.local_chain_file();
            let local: Option<LocalChainFile> = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            match local {
                Some(l) if alive(l.pid) => Ok(l.url),
                _ => Err(Error::LocalChainNotRunning),
            }
        }
    }
}

fn explicit_contracts(c: &ChainSection) -> Result<Option<Contracts>> {
    let fields = [
        ("ticket_broker", &c.ticket_broker),
        ("provider_registry", &c.provider_registry),
        ("model_registry", &c.model_registry),
    ];
    if fields.iter().all(|(_, v)| v.trim().is_empty()) {
        return Ok(None);
    }
    let mut out = [flurry_chain::Address::ZERO; 3];
    for (slot, (name, v)) in out.iter_mut().zip(fields) {
        *slot = v.trim().parse().map_err(|_| Error::BadAmount {
            field: format!("[chain] {name}"),
            value: v.clone(),
        })?;
    }
    Ok(Some(Contracts {
        ticket_broker: out[0],
        provider_registry: out[1],
        model_registry: out[2],
    }))
}

/// Connects to the configured chain with the node key and binds the contracts: those
/// set in `[chain]`, else those recorded for this chain by `flurry chain deploy`. An
/// unknown chain gives an unbound connection (its contract calls say to deploy).
pub async fn connect(paths: &Paths, c: &ChainSection, id: &Identity) -> Result<Chain> {
    let url = rpc_url(paths, c)?;
    connect_url(paths, c, id, &url).await
}

async fn connect_url(paths: &Paths, c: &ChainSection, id: &Identity, url: &str) -> Result<Chain> {
    let chain = Chain::connect(url, id).await?;
    if let Some(contracts) = explicit_contracts(c)? {
        return Ok(chain.with_contracts(contracts));
    }
    let genesis = chain.genesis_hash().await?;
    let known = Deployments::load(&Deployments::file(&paths.chain_dir()))?;
    Ok(match known.get(chain.chain_id(), genesis) {
        Some(d) => chain.with_contracts(d.contracts),
        None => chain,
    })
}

/// Deploys the three contracts from the node's address and records them.
pub async fn deploy(paths: &Paths, c: &ChainSection, chain: &mut Chain) -> Result<Deployment> {
    let contracts = chain.deploy(&deploy_params(c)?).await?;
    let deployment = Deployment {
        chain_id: chain.chain_id(),
        genesis: chain.genesis_hash().await?,
        contracts,
        deployer: chain.address(),
        deployed_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    let file = Deployments::file(&paths.chain_dir());
    let mut all = Deployments::load(&file)?;
    all.insert(deployment.clone());
    all.save(&file)?;
    Ok(deployment)
}

/// The chain side of a running node.
#[derive(Debug)]
pub struct NodeChain {
    /// Connection bound to the contracts.
    pub chain: Chain,
    /// Tickets paid to this node.
    pub receiver: Arc<TicketReceiver>,
    local: Option<LocalChain>,
    redeemer: tokio::task::JoinHandle<()>,
    local_file: std::path::PathBuf,
}

impl NodeChain {
    /// Stops the redeemer and, in local mode, anvil (which saves its state).
    pub fn stop(self) {
        self.redeemer.abort();
        if let Some(local) = self.local {
            local.stop();
            let _ = std::fs::remove_file(&self.local_file);
        }
    }
}

/// Brings up the configured chain for `flurry up`: in local mode starts anvil (call this
/// on the main thread: anvil is tied to the thread that starts it), funds the node from
/// the dev account, deploys the contracts if this chain has none; then opens the ticket
/// store and starts the redeemer. `Ok(None)` when `[chain] mode = "off"`.
pub async fn start(paths: &Paths, c: &ChainSection, id: &Identity) -> Result<Option<NodeChain>> {
    let local_file = paths.local_chain_file();
    let (mut chain, local) = match c.mode {
        ChainMode::Off => return Ok(None),
        ChainMode::Rpc => (connect(paths, c, id).await?, None),
        ChainMode::Local => {
            if let Some(old) = std::fs::read_to_string(&local_file)
                .ok()
                .and_then(|t| serde_json::from_str::<LocalChainFile>(&t).ok())
            {
                flurry_chain::stop_stale_anvil(old.pid);
            }
            let anvil = flurry_chain::find_anvil(Some(Path::new(&c.anvil)))?;
            let state = paths.chain_dir().join("anvil-state.json");
            let local = LocalChain::spawn(&anvil, Some(&state))?;
            let record = LocalChainFile {
                url: local.url().to_string(),
                pid: local.pid(),
            };
            flurry_api::tokens::write_private(
                &local_file,
                serde_json::to_string_pretty(&record)
                    .unwrap_or_default()
                    .as_bytes(),
            )
            .map_err(|source| Error::Io {
                path: local_file.clone(),
                source,
            })?;
            let chain = connect_url(paths, c, id, local.url()).await?;
            let funding = parse_eth("[chain] local_funding_eth", &c.local_funding_eth)?;
            let balance = chain.balance(chain.address()).await?;
            if balance < funding / U256::from(2) {
                chain.dev_fund(chain.address(), funding - balance).await?;
                tracing::info!(address = %chain.address(), "funded the node from the local chain's dev account");
            }
            (chain, Some(local))
        }
    };
    let usable = match chain.contracts() {
        Some(_) => chain.check_contracts().await.is_ok(),
        None => false,
    };
    if !usable {
        if local.is_some() {
            let d = deploy(paths, c, &mut chain).await?;
            tracing::info!(broker = %d.contracts.ticket_broker, registry = %d.contracts.provider_registry, models = %d.contracts.model_registry, "deployed the Flurry contracts on the local chain");
        } else {
            chain.check_contracts().await?;
        }
    }
    let receiver = Arc::new(TicketReceiver::open(
        &paths.tickets_db(),
        chain.address(),
        chain.domain()?,
        receiver_config(c)?,
    )?);
    let redeemer = flurry_chain::spawn_redeemer(
        receiver.clone(),
        chain.clone(),
        Duration::from_secs(c.redeem_interval_secs.max(1)),
    );
    tracing::info!(chain_id = chain.chain_id(), rpc = %chain.url(), "chain ready");
    Ok(Some(NodeChain {
        chain,
        receiver,
        local,
        redeemer,
        local_file,
    }))
}
