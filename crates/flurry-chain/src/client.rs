//! A chain connection that signs with the node's identity key.

use alloy::eips::BlockNumberOrTag;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolInterface;
use flurry_identity::Identity;
use serde::{Deserialize, Serialize};

use crate::bindings::{ModelRegistry, ProviderRegistry, TicketBroker};
use crate::ticket::{Domain, SignedTicket};
use crate::{Error, Result};

/// Addresses of the three contracts on one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contracts {
    /// `TicketBroker`.
    pub ticket_broker: Address,
    /// `ProviderRegistry` (also the broker's reserve gate).
    pub provider_registry: Address,
    /// `ModelRegistry`.
    pub model_registry: Address,
}

/// Constructor parameters for [`Chain::deploy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployParams {
    /// Seconds between `unlock()` and `withdraw()`.
    pub unlock_period_secs: u64,
    /// Length of a reserve round, seconds.
    pub reserve_round_secs: u64,
    /// Shares a reserve is split into per round.
    pub reserve_recipients: u64,
    /// Seconds between `unbond` and `withdrawUnbonded`.
    pub unbonding_period_secs: u64,
    /// Share of a slash that goes to the challenger, basis points.
    pub challenger_share_bps: u16,
    /// Bonded stake a provider needs to be active (and draw on reserves), wei.
    pub min_stake: U256,
    /// The slashing arbiter; `None` = the deployer.
    pub arbiter: Option<Address>,
}

impl Default for DeployParams {
    fn default() -> Self {
        Self {
            unlock_period_secs: 86_400,
            reserve_round_secs: 86_400,
            reserve_recipients: 8,
            unbonding_period_secs: 7 * 86_400,
            challenger_share_bps: 5_000,
            min_stake: U256::from(10u64).pow(U256::from(17)),
            arbiter: None,
        }
    }
}

/// A sender's escrow in the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderInfo {
    /// Pays winning tickets first, wei.
    pub deposit: U256,
    /// Backs recipients when the deposit runs short, wei.
    pub reserve: U256,
    /// When `withdraw()` becomes possible (unix seconds); 0 when not unlocking.
    pub withdraw_time: u64,
}

/// The node's funds, for `flurry wallet balance` and `GET /api/wallet`. Amounts are
/// decimal strings in wei, with an `_eth` twin for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WalletSummary {
    /// The node's address (EIP-55 checksummed).
    pub address: String,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Account balance, wei.
    pub balance: String,
    /// Account balance, ETH.
    pub balance_eth: String,
    /// Ticket deposit in the broker, wei.
    pub deposit: String,
    /// Ticket deposit, ETH.
    pub deposit_eth: String,
    /// Ticket reserve in the broker, wei.
    pub reserve: String,
    /// Ticket reserve, ETH.
    pub reserve_eth: String,
    /// When `withdraw` becomes possible (unix seconds); 0 when not unlocking.
    pub withdraw_time: u64,
    /// Stake in the ProviderRegistry (bonded and unbonding), wei.
    pub stake: String,
    /// Stake, ETH.
    pub stake_eth: String,
    /// The contracts, when deployed.
    pub contracts: Option<Contracts>,
}

/// A mined transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxInfo {
    /// Transaction hash.
    pub hash: B256,
    /// Gas used.
    pub gas_used: u64,
    /// Block number.
    pub block: u64,
    /// Wei paid per unit of gas.
    pub gas_price: u128,
}

impl TxInfo {
    /// What the transaction cost its sender in fees, wei.
    pub fn fee(&self) -> U256 {
        U256::from(self.gas_used) * U256::from(self.gas_price)
    }

    fn of(r: &TransactionReceipt) -> Result<Self> {
        if !r.status() {
            return Err(Error::TxFailed(r.transaction_hash));
        }
        Ok(Self {
            hash: r.transaction_hash,
            gas_used: r.gas_used,
            block: r.block_number.unwrap_or_default(),
            gas_price: r.effective_gas_price,
        })
    }
}

/// What a batch redemption did, ticket by ticket (from the receipt's events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The transaction.
    pub tx: TxInfo,
    /// Ticket hashes paid.
    pub redeemed: Vec<B256>,
    /// Ticket hashes skipped, with the contract's reason (`TicketAlreadyRedeemed(…)`,
    /// `InsufficientFunds(…)`, …).
    pub skipped: Vec<(B256, String)>,
}

/// A connection to an EVM chain that signs transactions with the node key.
#[derive(Debug, Clone)]
pub struct Chain {
    provider: DynProvider,
    /// The same endpoint without a wallet, for dev-account calls.
    plain: DynProvider,
    url: String,
    chain_id: u64,
    me: Address,
    contracts: Option<Contracts>,
}

impl Chain {
    /// Connects to `url` (http) and reads the chain id.
    pub async fn connect(url: &str, identity: &Identity) -> Result<Self> {
        let parsed: alloy::transports::http::reqwest::Url =
            url.parse().map_err(|_| Error::BadUrl(url.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::BadUrl(url.to_string()));
        }
        let signer = PrivateKeySigner::from_slice(identity.secret_bytes().as_ref())
            .map_err(|_| Error::BadUrl("invalid node key".into()))?;
        let me = signer.address();
        // The nonce is asked of the chain for every transaction: a cached nonce is
        // consumed even when the transaction is refused at gas estimation (a dispute
        // that does not hold, a ticket that cannot be redeemed), and every later one
        // would then wait forever behind the gap.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_http(parsed.clone())
            .erased();
        let plain = ProviderBuilder::new().connect_http(parsed).erased();
        let chain_id = provider.get_chain_id().await?;
        Ok(Self {
            provider,
            plain,
            url: url.to_string(),
            chain_id,
            me,
            contracts: None,
        })
    }

    /// The same connection bound to deployed contracts.
    pub fn with_contracts(mut self, contracts: Contracts) -> Self {
        self.contracts = Some(contracts);
        self
    }

    /// The RPC URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// EIP-155 chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The node's address (the signer).
    pub fn address(&self) -> Address {
        self.me
    }

    /// The bound contracts, if any.
    pub fn contracts(&self) -> Option<Contracts> {
        self.contracts
    }

    /// The ticket domain (chain id and broker) of the bound contracts.
    pub fn domain(&self) -> Result<Domain> {
        Ok(Domain {
            chain_id: self.chain_id,
            broker: self.bound()?.ticket_broker,
        })
    }

    fn bound(&self) -> Result<Contracts> {
        self.contracts.ok_or(Error::NotDeployed {
            chain_id: self.chain_id,
        })
    }

    fn broker(&self) -> Result<TicketBroker::TicketBrokerInstance<DynProvider>> {
        Ok(TicketBroker::new(
            self.bound()?.ticket_broker,
            self.provider.clone(),
        ))
    }

    fn models(&self) -> Result<ModelRegistry::ModelRegistryInstance<DynProvider>> {
        Ok(ModelRegistry::new(
            self.bound()?.model_registry,
            self.provider.clone(),
        ))
    }

    /// Registers a model in the ModelRegistry, owned by this node: its ModelId, the
    /// model it came from (`B256::ZERO` for a root), its licence (SPDX) and where to
    /// fetch it.
    pub async fn register_model(
        &self,
        model_id: B256,
        parent: B256,
        licence: &str,
        content_uri: &str,
    ) -> Result<TxInfo> {
        let models = self.models()?;
        let call = models.register(
            model_id,
            parent,
            licence.to_string(),
            content_uri.to_string(),
        );
        let sent = call.send().await;
        contract_tx("register", sent, |data| {
            ModelRegistry::ModelRegistryErrors::abi_decode(data)
                .map_or_else(|_| format!("0x{}", hex::encode(data)), |e| format!("{e:?}"))
        })
        .await
    }

    /// The ModelRegistry's record of `model_id`, `None` when it is not registered.
    pub async fn model_record(&self, model_id: B256) -> Result<Option<ModelRecord>> {
        let models = self.models()?;
        if !models.exists(model_id).call().await? {
            return Ok(None);
        }
        let m = models.getModel(model_id).call().await?;
        Ok(Some(ModelRecord {
            model_id,
            owner: m.owner,
            registered_at: m.registeredAt,
            depth: m.depth,
            parent: m.parent,
            licence: m.licence,
            content_uri: m.contentUri,
        }))
    }

    fn registry(&self) -> Result<ProviderRegistry::ProviderRegistryInstance<DynProvider>> {
        Ok(ProviderRegistry::new(
            self.bound()?.provider_registry,
            self.provider.clone(),
        ))
    }

    /// Adds `amount` to this node's bonded stake in `ProviderRegistry`.
    pub async fn stake(&self, amount: U256) -> Result<TxInfo> {
        let registry = self.registry()?;
        let call = registry.stake().value(amount);
        registry_tx("stake", call.send().await).await
    }

    /// Starts unbonding `amount` of this node's stake (withdrawable after the registry's
    /// unbonding period).
    pub async fn unbond(&self, amount: U256) -> Result<TxInfo> {
        let registry = self.registry()?;
        let call = registry.unbond(amount);
        registry_tx("unbond", call.send().await).await
    }

    /// The bonded stake of `provider` (unbonding funds excluded).
    pub async fn bonded_of(&self, provider: Address) -> Result<U256> {
        Ok(self.registry()?.bondedOf(provider).call().await?)
    }

    /// The stake of `provider` that a slash can reach (bonded and unbonding).
    pub async fn stake_of(&self, provider: Address) -> Result<U256> {
        let p = self.registry()?.getProvider(provider).call().await?;
        Ok(U256::from(p.bonded) + U256::from(p.unbonding))
    }

    /// The EIP-712 digest the registry computes for a job request (`docs/verification.md`).
    pub async fn job_request_digest(&self, q: &ProviderRegistry::JobRequest) -> Result<B256> {
        Ok(self.registry()?.jobRequestDigest(q.clone()).call().await?)
    }

    /// The EIP-712 digest the registry computes for a receipt.
    pub async fn receipt_digest(&self, r: &ProviderRegistry::Receipt) -> Result<B256> {
        Ok(self.registry()?.receiptDigest(r.clone()).call().await?)
    }

    /// Slashes a provider that signed two receipts with different results for one
    /// request; this node is the challenger and gets the challenger's share.
    pub async fn slash_equivocation(
        &self,
        a: (&ProviderRegistry::Receipt, &[u8]),
        b: (&ProviderRegistry::Receipt, &[u8]),
    ) -> Result<TxInfo> {
        let registry = self.registry()?;
        let call = registry.slashEquivocation(
            a.0.clone(),
            Bytes::copy_from_slice(a.1),
            b.0.clone(),
            Bytes::copy_from_slice(b.1),
        );
        registry_tx("slashEquivocation", call.send().await).await
    }

    /// Slashes a provider whose signed receipt contradicts the request it answers.
    pub async fn slash_inconsistent(
        &self,
        q: &ProviderRegistry::JobRequest,
        r: &ProviderRegistry::Receipt,
        sig: &[u8],
    ) -> Result<TxInfo> {
        let registry = self.registry()?;
        let call = registry.slashInconsistent(q.clone(), r.clone(), Bytes::copy_from_slice(sig));
        registry_tx("slashInconsistent", call.send().await).await
    }

    /// The registry's arbiter: the only address that may slash for a compute fault.
    pub async fn arbiter(&self) -> Result<Address> {
        Ok(self.registry()?.arbiter().call().await?)
    }

    /// Slashes `amount` of `provider`'s stake as the arbiter (a compute fault a
    /// validator confirmed); `challenger` gets the challenger's share (`Address::ZERO`:
    /// all burned).
    pub async fn slash(
        &self,
        provider: Address,
        amount: U256,
        challenger: Address,
    ) -> Result<TxInfo> {
        let registry = self.registry()?;
        let call = registry.slash(provider, amount, challenger);
        registry_tx("slash", call.send().await).await
    }

    /// The bond a challenger puts up to open a dispute (burned if the arbiter finds no
    /// fault).
    pub async fn dispute_bond(&self) -> Result<U256> {
        Ok(self.registry()?.disputeBond().call().await?)
    }

    /// Opens a dispute over the provider-signed receipt `r` for a compute fault, with the
    /// bond and the hash of the job bundle the arbiter is to re-run. Returns the
    /// transaction and the dispute's id.
    pub async fn open_dispute(
        &self,
        r: &ProviderRegistry::Receipt,
        sig: &[u8],
        evidence: B256,
    ) -> Result<(TxInfo, U256)> {
        let registry = self.registry()?;
        let bond = registry.disputeBond().call().await?;
        let call = registry
            .openDispute(r.clone(), Bytes::copy_from_slice(sig), evidence)
            .value(bond);
        let tx = registry_tx("openDispute", call.send().await).await?;
        // The newest dispute of this challenger over this job (others may have opened
        // disputes in the same blocks).
        let last: U256 = registry.disputeCount().call().await?;
        let me = self.address();
        let mut id = last;
        while id > U256::ZERO && last - id < U256::from(256u16) {
            let d = registry.disputes(id).call().await?;
            if d.challenger == me && d.jobId == r.jobId && d.evidence == evidence {
                return Ok((tx, id));
            }
            id -= U256::from(1u8);
        }
        Err(Error::Reverted {
            call: "openDispute",
            reason: "the dispute was opened but not found among the latest".into(),
        })
    }

    /// Dispute `id`: challenger, provider, job, evidence hash, bond and state (1 open,
    /// 2 fault, 3 rejected; 0: no such dispute).
    pub async fn dispute(&self, id: U256) -> Result<DisputeInfo> {
        let d = self.registry()?.disputes(id).call().await?;
        Ok(DisputeInfo {
            challenger: d.challenger,
            provider: d.provider,
            job_id: d.jobId,
            evidence: d.evidence,
            bond: d.bond,
            state: d.state,
        })
    }

    /// The arbiter's verdict on dispute `id` (a fault slashes the provider and returns
    /// the bond; no fault burns the bond).
    pub async fn resolve_dispute(&self, id: U256, fault: bool) -> Result<TxInfo> {
        let registry = self.registry()?;
        let call = registry.resolveDispute(id, fault);
        registry_tx("resolveDispute", call.send().await).await
    }

    /// The ProviderRegistry's address (the verifying contract of signed jobs).
    pub fn registry_address(&self) -> Result<Address> {
        Ok(self.bound()?.provider_registry)
    }

    /// The stake a provider needs to be active.
    pub async fn min_stake(&self) -> Result<U256> {
        Ok(self.registry()?.minStake().call().await?)
    }

    /// Hash of block 0: tells a fresh dev chain from the one a deployment was made on.
    pub async fn genesis_hash(&self) -> Result<B256> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(0))
            .await?;
        Ok(block.map(|b| b.header.hash).unwrap_or_default())
    }

    /// Whether `address` holds contract code.
    pub async fn has_code(&self, address: Address) -> Result<bool> {
        Ok(!self.provider.get_code_at(address).await?.is_empty())
    }

    /// Checks that every bound contract has code.
    pub async fn check_contracts(&self) -> Result<()> {
        let c = self.bound()?;
        for address in [c.ticket_broker, c.provider_registry, c.model_registry] {
            if !self.has_code(address).await? {
                return Err(Error::NoCode {
                    address,
                    chain_id: self.chain_id,
                });
            }
        }
        Ok(())
    }

    /// Deploys `ProviderRegistry`, `TicketBroker` (gated by the registry) and
    /// `ModelRegistry` from the node's address, and binds this connection to them.
    pub async fn deploy(&mut self, p: &DeployParams) -> Result<Contracts> {
        let arbiter = p.arbiter.unwrap_or(self.me);
        let registry = ProviderRegistry::deploy(
            self.provider.clone(),
            self.me,
            arbiter,
            U256::from(p.unbonding_period_secs),
            U256::from(p.challenger_share_bps),
            p.min_stake,
        )
        .await?;
        let broker = TicketBroker::deploy(
            self.provider.clone(),
            U256::from(p.unlock_period_secs),
            U256::from(p.reserve_round_secs),
            U256::from(p.reserve_recipients),
            *registry.address(),
        )
        .await?;
        let models = ModelRegistry::deploy(self.provider.clone()).await?;
        let contracts = Contracts {
            ticket_broker: *broker.address(),
            provider_registry: *registry.address(),
            model_registry: *models.address(),
        };
        self.contracts = Some(contracts);
        Ok(contracts)
    }

    /// Native balance of `address`, wei.
    pub async fn balance(&self, address: Address) -> Result<U256> {
        Ok(self.provider.get_balance(address).await?)
    }

    /// The node's balance and escrow. Without contracts, deposit and reserve are 0.
    pub async fn wallet(&self) -> Result<WalletSummary> {
        let balance = self.balance(self.me).await?;
        let (escrow, stake) = match self.contracts {
            Some(_) => (
                self.sender_info(self.me).await?,
                self.stake_of(self.me).await?,
            ),
            None => (
                SenderInfo {
                    deposit: U256::ZERO,
                    reserve: U256::ZERO,
                    withdraw_time: 0,
                },
                U256::ZERO,
            ),
        };
        let eth = alloy::primitives::utils::format_ether;
        Ok(WalletSummary {
            address: self.me.to_string(),
            chain_id: self.chain_id,
            balance: balance.to_string(),
            balance_eth: eth(balance),
            deposit: escrow.deposit.to_string(),
            deposit_eth: eth(escrow.deposit),
            reserve: escrow.reserve.to_string(),
            reserve_eth: eth(escrow.reserve),
            withdraw_time: escrow.withdraw_time,
            stake: stake.to_string(),
            stake_eth: eth(stake),
            contracts: self.contracts,
        })
    }

    /// The escrow of `sender` in the broker.
    pub async fn sender_info(&self, sender: Address) -> Result<SenderInfo> {
        let r = self.broker()?.getSenderInfo(sender).call().await?;
        Ok(SenderInfo {
            deposit: r.deposit,
            reserve: r.reserve,
            withdraw_time: u64::try_from(r.withdrawTime).unwrap_or(u64::MAX),
        })
    }

    /// What `recipient` may draw from `sender`'s reserve this round.
    pub async fn reserve_available(&self, sender: Address, recipient: Address) -> Result<U256> {
        Ok(self
            .broker()?
            .reserveAvailableTo(sender, recipient)
            .call()
            .await?)
    }

    /// Whether a ticket hash has been paid.
    pub async fn is_redeemed(&self, ticket_hash: B256) -> Result<bool> {
        Ok(self.broker()?.usedTickets(ticket_hash).call().await?)
    }

    /// Adds `amount` to the node's deposit.
    pub async fn fund_deposit(&self, amount: U256) -> Result<TxInfo> {
        let broker = self.broker()?;
        let call = broker.fundDeposit().value(amount);
        broker_tx("fundDeposit", call.send().await).await
    }

    /// Adds `amount` to the node's reserve.
    pub async fn fund_reserve(&self, amount: U256) -> Result<TxInfo> {
        let broker = self.broker()?;
        let call = broker.fundReserve().value(amount);
        broker_tx("fundReserve", call.send().await).await
    }

    /// Starts the unlock period of the node's escrow.
    pub async fn unlock(&self) -> Result<TxInfo> {
        let broker = self.broker()?;
        let call = broker.unlock();
        broker_tx("unlock", call.send().await).await
    }

    /// Cancels an unlock in progress.
    pub async fn cancel_unlock(&self) -> Result<TxInfo> {
        let broker = self.broker()?;
        let call = broker.cancelUnlock();
        broker_tx("cancelUnlock", call.send().await).await
    }

    /// Withdraws the whole escrow after the unlock period.
    pub async fn withdraw(&self) -> Result<TxInfo> {
        let broker = self.broker()?;
        let call = broker.withdraw();
        broker_tx("withdraw", call.send().await).await
    }

    /// Redeems one winning ticket.
    pub async fn redeem(&self, t: &SignedTicket, recipient_rand: U256) -> Result<TxInfo> {
        let broker = self.broker()?;
        let call = broker.redeemWinningTicket(t.ticket.to_sol(), t.sig.clone(), recipient_rand);
        broker_tx("redeemWinningTicket", call.send().await).await
    }

    /// Redeems winning tickets in one transaction; tickets the contract refuses are
    /// skipped (and reported with the reason), the others are paid.
    pub async fn batch_redeem(&self, items: &[(SignedTicket, U256)]) -> Result<BatchOutcome> {
        let tickets = items.iter().map(|(t, _)| t.ticket.to_sol()).collect();
        let sigs: Vec<Bytes> = items.iter().map(|(t, _)| t.sig.clone()).collect();
        let rands: Vec<U256> = items.iter().map(|(_, r)| *r).collect();
        let broker = self.broker()?;
        let call = broker.batchRedeemWinningTickets(tickets, sigs, rands);
        let receipt = match call.send().await {
            Ok(pending) => pending.get_receipt().await?,
            Err(e) => {
                return Err(revert_or(
                    "batchRedeemWinningTickets",
                    e,
                    decode_broker_error,
                ));
            }
        };
        let tx = TxInfo::of(&receipt)?;
        let mut redeemed = Vec::new();
        let mut skipped = Vec::new();
        for log in receipt.inner.logs() {
            if let Ok(ev) = log.log_decode::<TicketBroker::WinningTicketRedeemed>() {
                redeemed.push(ev.inner.data.ticketHash);
            } else if let Ok(ev) = log.log_decode::<TicketBroker::WinningTicketSkipped>() {
                let data = &ev.inner.data;
                skipped.push((data.ticketHash, decode_broker_error(&data.reason)));
            }
        }
        Ok(BatchOutcome {
            tx,
            redeemed,
            skipped,
        })
    }

    /// Sends `amount` to `to` from the chain's first unlocked dev account (anvil's
    /// prefunded accounts). Only for local development chains.
    pub async fn dev_fund(&self, to: Address, amount: U256) -> Result<TxInfo> {
        let accounts = self.plain.get_accounts().await?;
        let from = *accounts.first().ok_or(Error::NoDevAccount(to))?;
        let tx = TransactionRequest::default()
            .with_from(from)
            .with_to(to)
            .with_value(amount);
        let receipt = self.plain.send_transaction(tx).await?.get_receipt().await?;
        TxInfo::of(&receipt)
    }

    /// Sends `amount` wei from the node's address to `to`.
    pub async fn transfer(&self, to: Address, amount: U256) -> Result<TxInfo> {
        let tx = TransactionRequest::default().with_to(to).with_value(amount);
        let receipt = self
            .provider
            .send_transaction(tx)
            .await?
            .get_receipt()
            .await?;
        TxInfo::of(&receipt)
    }

    /// Moves the dev chain's clock forward (anvil `evm_increaseTime` + a mined block).
    pub async fn dev_advance_time(&self, secs: u64) -> Result<()> {
        let _: serde_json::Value = self
            .plain
            .raw_request("evm_increaseTime".into(), (secs,))
            .await?;
        let _: serde_json::Value = self.plain.raw_request("evm_mine".into(), ()).await?;
        Ok(())
    }
}

/// Waits for a sent broker transaction, turning a revert into its decoded custom error.
async fn broker_tx(call: &'static str, sent: Sent) -> Result<TxInfo> {
    contract_tx(call, sent, decode_broker_error).await
}

/// Waits for a sent `ProviderRegistry` transaction, turning a revert into its decoded
/// custom error.
async fn registry_tx(call: &'static str, sent: Sent) -> Result<TxInfo> {
    contract_tx(call, sent, |data| {
        ProviderRegistry::ProviderRegistryErrors::abi_decode(data)
            .map_or_else(|_| format!("0x{}", hex::encode(data)), |e| format!("{e:?}"))
    })
    .await
}

/// A model's entry in the ModelRegistry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelRecord {
    /// Its ModelId (the BLAKE3 root of the file).
    pub model_id: B256,
    /// Who registered it (may update it and hand it on).
    pub owner: Address,
    /// Unix seconds of the block it was registered in.
    pub registered_at: u64,
    /// 0 for a root model, its parent's depth + 1 otherwise.
    pub depth: u32,
    /// The model it came from (`0x0…0` for a root).
    pub parent: B256,
    /// Its licence (an SPDX expression).
    pub licence: String,
    /// Where its file can be fetched.
    pub content_uri: String,
}

/// A compute-fault dispute on the ProviderRegistry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisputeInfo {
    /// Who opened it.
    pub challenger: Address,
    /// The provider disputed.
    pub provider: Address,
    /// The job.
    pub job_id: B256,
    /// The hash of the job bundle (keccak256 of the file's bytes).
    pub evidence: B256,
    /// The bond, wei.
    pub bond: U256,
    /// 1 open, 2 fault, 3 rejected (0: no such dispute).
    pub state: u8,
}

/// A contract transaction as sent (or refused at once).
type Sent = std::result::Result<
    alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
    alloy::contract::Error,
>;

async fn contract_tx(
    call: &'static str,
    sent: Sent,
    decode: fn(&[u8]) -> String,
) -> Result<TxInfo> {
    match sent {
        Ok(pending) => TxInfo::of(&pending.get_receipt().await?),
        Err(e) => Err(revert_or(call, e, decode)),
    }
}

fn revert_or(call: &'static str, e: alloy::contract::Error, decode: fn(&[u8]) -> String) -> Error {
    match e.as_revert_data() {
        Some(data) => Error::Reverted {
            call,
            reason: decode(&data),
        },
        None => e.into(),
    }
}

/// A `TicketBroker` custom error as `Name(args)`; unknown data as hex.
pub(crate) fn decode_broker_error(data: &[u8]) -> String {
    match TicketBroker::TicketBrokerErrors::abi_decode(data) {
        Ok(e) => {
            let s = format!("{e:?}");
            // `Variant(Variant { field: … })` → `Variant { field: … }`
            match s.split_once('(') {
                Some((_, rest)) => rest.strip_suffix(')').unwrap_or(rest).to_string(),
                None => s,
            }
        }
        Err(_) => format!("0x{}", hex::encode(data)),
    }
}

/// The short name of a decoded broker error (`TicketAlreadyRedeemed`, …).
pub(crate) fn error_name(reason: &str) -> &str {
    reason
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or(reason)
}
