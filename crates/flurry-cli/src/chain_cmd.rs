//! `flurry chain use|show|deploy` and `flurry wallet …`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use flurry_chain::{Chain, TxInfo, format_ether};
use flurry_config::ChainMode;
use flurry_node::PassphraseOptions;
use flurry_node::chain as node_chain;
use serde_json::{Value, json};

use crate::Setup;

#[derive(Debug, Subcommand)]
pub(crate) enum ChainCommand {
    /// Choose the chain: `local` (anvil run by `flurry up`), `off`, or an RPC URL.
    Use {
        /// `local`, `off`, or http(s)://HOST:PORT of an EVM node.
        target: String,
    },
    /// Show the configured chain, its id and the contracts known on it.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deploy TicketBroker, ProviderRegistry and ModelRegistry from the node's address
    /// and record their addresses.
    Deploy {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        key: KeyArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// File holding the key passphrase (mode 0600). Also: FLURRY_PASSPHRASE.
    #[arg(long)]
    pub(crate) password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// The node's Ethereum address (the same key as its PeerId).
    Address {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Account balance and ticket escrow (deposit, reserve, unlock time).
    Balance {
        /// Print JSON (amounts in wei as decimal strings, plus `_eth` forms).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Add ETH to the ticket deposit (pays winning tickets).
    Deposit(AmountArgs),
    /// Add ETH to the ticket reserve (backs recipients when the deposit runs short).
    Reserve(AmountArgs),
    /// Start the unlock period; `withdraw` is possible when it ends.
    Unlock(TxArgs),
    /// Stop an unlock in progress.
    CancelUnlock(TxArgs),
    /// Withdraw the whole deposit and reserve after the unlock period.
    Withdraw(TxArgs),
    /// Send ETH from the node's account to an address.
    Send {
        /// Recipient address (0x…).
        to: String,
        #[command(flatten)]
        amount: AmountArgs,
    },
    /// Pay another node for work with tickets: asks it for ticket parameters
    /// (POST URL/api/tickets/params), checks them against this node's limits
    /// ([chain] max_face_value_eth, max_ticket_ev_eth) and the payee, and sends tickets
    /// worth AMOUNT in expectation.
    Pay {
        /// The other node's API, e.g. http://127.0.0.1:7878.
        url: String,
        /// The payee's address (0x…). Without it, the address the node at URL reports
        /// in /api/node is used (and printed).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        amount: AmountArgs,
        /// API token of the other node, when it listens beyond loopback.
        #[arg(long)]
        token: Option<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AmountArgs {
    /// Amount in ETH, e.g. 0.5.
    amount: String,
    #[command(flatten)]
    tx: TxArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TxArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    key: KeyArgs,
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn connect(ctx: &Setup, key: &KeyArgs) -> Result<Chain> {
    Ok(connect_with_key(ctx, key).await?.0)
}

pub(crate) async fn connect_with_key(
    ctx: &Setup,
    key: &KeyArgs,
) -> Result<(Chain, flurry_identity::Identity)> {
    let id = flurry_node::unlock(
        &ctx.paths,
        &PassphraseOptions::from_env(key.password_file.clone()),
    )?;
    let chain = node_chain::connect(&ctx.paths, &ctx.config.chain, &id).await?;
    Ok((chain, id))
}

pub(crate) fn chain(ctx: &Setup, c: ChainCommand) -> Result<ExitCode> {
    match c {
        ChainCommand::Use { target } => {
            let file = ctx.paths.config_file();
            let (mode, url) = match target.as_str() {
                "local" => (ChainMode::Local, None),
                "off" => (ChainMode::Off, None),
                u if u.starts_with("http://") || u.starts_with("https://") => {
                    (ChainMode::Rpc, Some(u))
                }
                other => bail!(
                    "unknown chain {other:?}: use `local`, `off`, or an RPC URL such as http://127.0.0.1:8545"
                ),
            };
            flurry_config::set_chain(&file, mode, url)?;
            match mode {
                ChainMode::Local => println!(
                    "Chain: local. `flurry up` runs anvil, deploys the contracts once and funds the node ({}).",
                    file.display()
                ),
                ChainMode::Off => println!("Chain: off ({}).", file.display()),
                ChainMode::Rpc => {
                    println!("Chain: {} ({}).", url.unwrap_or_default(), file.display());
                    println!(
                        "Deploy the contracts there with `flurry chain deploy`, or set their addresses in [chain]."
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Show { json } => {
            let c = &ctx.config.chain;
            let mode = serde_json::to_value(c.mode)?;
            let url = node_chain::rpc_url(&ctx.paths, c);
            let rt = runtime()?;
            // Reading needs no key: any identity signs nothing here.
            let probe = flurry_identity::Identity::generate()?;
            let live = match &url {
                Ok(u) => rt
                    .block_on(async {
                        let ch = Chain::connect(u, &probe).await?;
                        let genesis = ch.genesis_hash().await?;
                        Ok::<_, flurry_chain::Error>((ch.chain_id(), genesis))
                    })
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let known = flurry_chain::Deployments::load(&flurry_chain::Deployments::file(
                &ctx.paths.chain_dir(),
            ))?;
            let deployment = live
                .as_ref()
                .ok()
                .and_then(|(id, g)| known.get(*id, *g).cloned());
            // Local mode needs anvil: say where it is, or what is missing and how to fix it.
            let anvil = (c.mode == ChainMode::Local)
                .then(|| flurry_chain::find_anvil(Some(std::path::Path::new(&c.anvil))));
            if json {
                return print_json(&json!({
                    "mode": mode,
                    "anvil": anvil.as_ref().and_then(|a| a.as_ref().ok()),
                    "anvil_error": anvil.as_ref().and_then(|a| a.as_ref().err().map(|e| e.to_string())),
                    "rpc_url": url.as_ref().ok(),
                    "chain_id": live.as_ref().ok().map(|(id, _)| id),
                    "error": live.as_ref().err(),
                    "contracts": deployment.as_ref().map(|d| d.contracts),
                }))
                .map(|()| ExitCode::SUCCESS);
            }
            println!("mode:      {}", mode.as_str().unwrap_or_default());
            match &anvil {
                Some(Ok(p)) => println!("anvil:     {}", p.display()),
                Some(Err(e)) => println!("anvil:     missing ({e})"),
                None => {}
            }
            match (&url, &live) {
                (Ok(u), Ok((id, _))) => println!("rpc:       {u} (chain id {id})"),
                (Ok(u), Err(e)) => println!("rpc:       {u} (not reachable: {e})"),
                (Err(e), _) => println!("rpc:       none ({e})"),
            }
            match deployment {
                Some(d) => {
                    println!("broker:    {}", d.contracts.ticket_broker);
                    println!("providers: {}", d.contracts.provider_registry);
                    println!("models:    {}", d.contracts.model_registry);
                }
                None if live.is_ok() => {
                    println!("contracts: none recorded here (run `flurry chain deploy`)")
                }
                None => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        ChainCommand::Deploy { json, key } => {
            let rt = runtime()?;
            let d = rt.block_on(async {
                let mut chain = connect(ctx, &key).await?;
                if chain.balance(chain.address()).await?.is_zero() {
                    bail!(
                        "the node's address {} has no ETH on chain {} to pay for gas: fund it first",
                        chain.address(),
                        chain.chain_id()
                    );
                }
                Ok(node_chain::deploy(&ctx.paths, &ctx.config.chain, &mut chain).await?)
            })?;
            if json {
                print_json(&serde_json::to_value(&d)?)?;
            } else {
                println!("Deployed on chain {}:", d.chain_id);
                println!("  TicketBroker      {}", d.contracts.ticket_broker);
                println!("  ProviderRegistry  {}", d.contracts.provider_registry);
                println!("  ModelRegistry     {}", d.contracts.model_registry);
                if flurry_node::NodeFile::find(&ctx.paths).is_some() {
                    println!("The running node keeps its current contracts until it restarts.");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn pay(
    ctx: &Setup,
    url: &str,
    to: Option<&str>,
    a: &AmountArgs,
    token: Option<String>,
) -> Result<ExitCode> {
    let value = node_chain::parse_eth("amount", &a.amount)?;
    let limits = node_chain::sender_limits(&ctx.config.chain)?;
    let peer = crate::remote::Remote::at(url, token);
    // Whom the user means to pay, decided before the payee says anything about tickets:
    // parameters naming anyone else are refused.
    let payee: flurry_chain::Address = match to {
        Some(t) => t.parse().map_err(|_| {
            anyhow::anyhow!("invalid --to address {t:?}: expected 0x + 40 hex digits")
        })?,
        None => {
            let node = peer.get("/api/node")?;
            let reported = node["address"].as_str().unwrap_or_default();
            let payee = reported.parse().map_err(|_| {
                anyhow::anyhow!(
                    "the node at {url} reports no valid address ({reported:?}): pass the payee's address with --to"
                )
            })?;
            if !a.tx.json {
                println!(
                    "Paying {payee} (the address {url} reports; pass --to ADDRESS to insist on one)."
                );
            }
            payee
        }
    };
    let (chain, id) = connect_with_key(ctx, &a.tx.key).await?;
    let me = chain.address();
    let params: flurry_chain::ticket::TicketParams =
        serde_json::from_value(peer.post("/api/tickets/params", &json!({ "sender": me }))?)
            .context("the other node's ticket parameters do not parse")?;
    let escrow = chain.sender_info(me).await?;
    let sender = flurry_chain::TicketSender::new(id, chain.domain()?).with_limits(limits);
    sender.check(&params, payee)?;
    sender.check_deposit(&params, escrow.deposit)?;
    let tickets = sender.pay(&params, payee, value, &[])?;
    let answer = peer.post("/api/tickets", &json!({ "tickets": tickets }))?;
    if a.tx.json {
        print_json(&answer)?;
    } else {
        println!(
            "Paid {url}: {} ticket(s) accepted, {} refused, worth {} ETH in expectation.",
            answer["accepted"],
            answer["rejected"],
            answer["value"]
                .as_str()
                .and_then(|v| v.parse::<flurry_chain::U256>().ok())
                .map(format_ether)
                .unwrap_or_default()
        );
        for r in answer["results"].as_array().into_iter().flatten() {
            if let Some(e) = r["error"].as_str() {
                println!("  refused: {e}");
            }
        }
    }
    Ok(if answer["rejected"] == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_tx(what: &str, tx: &TxInfo, json: bool) -> Result<ExitCode> {
    if json {
        print_json(&json!({
            "action": what, "tx": tx.hash, "block": tx.block, "gas_used": tx.gas_used,
            "fee_wei": tx.fee().to_string(),
        }))?;
    } else {
        println!(
            "{what}: transaction {} (block {}, gas {}, fee {} ETH)",
            tx.hash,
            tx.block,
            tx.gas_used,
            format_ether(tx.fee())
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn wallet(ctx: &Setup, w: WalletCommand) -> Result<ExitCode> {
    if let WalletCommand::Address { json } = w {
        let Some(p) = flurry_node::read_public_identity(&ctx.paths) else {
            bail!("this node has no key yet: run `flurry init` (or `flurry up`)");
        };
        if json {
            print_json(&json!({ "address": p.address }))?;
        } else {
            println!("{}", p.address);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rt = runtime()?;
    rt.block_on(async {
        match w {
            WalletCommand::Address { .. } => unreachable!("handled above"),
            WalletCommand::Balance { json, key } => {
                let s = connect(ctx, &key).await?.wallet().await?;
                if json {
                    print_json(&serde_json::to_value(&s)?)?;
                } else {
                    println!("address:  {} (chain {})", s.address, s.chain_id);
                    println!("balance:  {} ETH", s.balance_eth);
                    println!("deposit:  {} ETH", s.deposit_eth);
                    println!("reserve:  {} ETH", s.reserve_eth);
                    println!("stake:    {} ETH", s.stake_eth);
                    if s.withdraw_time != 0 {
                        println!(
                            "unlocking: withdraw possible at unix time {}",
                            s.withdraw_time
                        );
                    }
                    if s.contracts.is_none() {
                        println!("(no Flurry contracts on this chain yet: `flurry chain deploy`)");
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            WalletCommand::Deposit(a) => {
                let amount = node_chain::parse_eth("amount", &a.amount)?;
                let tx = connect(ctx, &a.tx.key).await?.fund_deposit(amount).await?;
                print_tx("deposit", &tx, a.tx.json)
            }
            WalletCommand::Reserve(a) => {
                let amount = node_chain::parse_eth("amount", &a.amount)?;
                let tx = connect(ctx, &a.tx.key).await?.fund_reserve(amount).await?;
                print_tx("reserve", &tx, a.tx.json)
            }
            WalletCommand::Unlock(t) => {
                let chain = connect(ctx, &t.key).await?;
                let tx = chain.unlock().await?;
                let info = chain.sender_info(chain.address()).await?;
                if !t.json {
                    println!(
                        "Unlocking: `flurry wallet withdraw` works from unix time {}.",
                        info.withdraw_time
                    );
                }
                print_tx("unlock", &tx, t.json)
            }
            WalletCommand::CancelUnlock(t) => {
                let tx = connect(ctx, &t.key).await?.cancel_unlock().await?;
                print_tx("cancel-unlock", &tx, t.json)
            }
            WalletCommand::Withdraw(t) => {
                let tx = connect(ctx, &t.key).await?.withdraw().await?;
                print_tx("withdraw", &tx, t.json)
            }
            WalletCommand::Send { to, amount } => {
                let to: flurry_chain::Address = to.parse().map_err(|_| {
                    anyhow::anyhow!("invalid address {to:?}: expected 0x + 40 hex digits")
                })?;
                let value = node_chain::parse_eth("amount", &amount.amount)?;
                let tx = connect(ctx, &amount.tx.key)
                    .await?
                    .transfer(to, value)
                    .await?;
                print_tx("send", &tx, amount.tx.json)
            }
            WalletCommand::Pay {
                url,
                to,
                amount,
                token,
            } => pay(ctx, &url, to.as_deref(), &amount, token).await,
        }
    })
}

/// `flurry market stake|unbond|stake-info`: the node's stake in `ProviderRegistry`
/// (sellers on the open market need at least the registry's minimum).
#[derive(Debug, Subcommand)]
pub(crate) enum StakeCommand {
    /// Bond ETH as stake (it can be slashed if this node cheats a buyer).
    Stake(AmountArgs),
    /// Start unbonding ETH of the stake (withdrawable after the registry's period).
    Unbond(AmountArgs),
}

pub(crate) fn stake(ctx: &Setup, c: StakeCommand) -> Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        match c {
            StakeCommand::Stake(a) => {
                let amount = node_chain::parse_eth("amount", &a.amount)?;
                let chain = connect(ctx, &a.tx.key).await?;
                let tx = chain.stake(amount).await?;
                if !a.tx.json {
                    let bonded = chain.bonded_of(chain.address()).await?;
                    let min = chain.min_stake().await?;
                    println!(
                        "Bonded stake: {} ETH (sellers need {} ETH).",
                        flurry_chain::format_ether(bonded),
                        flurry_chain::format_ether(min)
                    );
                }
                print_tx("stake", &tx, a.tx.json)
            }
            StakeCommand::Unbond(a) => {
                let amount = node_chain::parse_eth("amount", &a.amount)?;
                let tx = connect(ctx, &a.tx.key).await?.unbond(amount).await?;
                print_tx("unbond", &tx, a.tx.json)
            }
        }
    })
}
