//! Flurry's command-line interface.
//!
//! The clap command tree lives here; each command resolves paths and config through
//! `flurry-config` and calls a library crate to do the work. `anyhow` is used only at
//! this edge, and errors print as `error: …` with their chain of causes.
//!
//! ```text
//! flurry ask "What is the capital of France?"
//! flurry chat
//! flurry model list --json
//! flurry bench --threads 2
//! ```
#![allow(clippy::print_stdout)]

mod bench;
mod chain_cmd;
mod chat;
mod market_cmd;
mod memory_cmd;
mod model_cmd;
mod net_cmd;
mod node_cmd;
mod perplexity_cmd;
mod privacy_cmd;
mod remote;
mod verify_cmd;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use flurry_config::{FileConfig, Paths};
use flurry_infer::engine::{Engine, EngineConfig, Event, GenerateRequest, Prompt};
use flurry_infer::model::Model;
use flurry_infer::sampler::SamplingParams;
use flurry_infer::store::{ModelEntry, ModelStore};
use flurry_infer::template::ChatMessage;

/// What `flurry --help` opens with: the product, not this crate (clap's bare `about`
/// would print the crate's Cargo description).
const ABOUT: &str = "Flurry: your own private AI node. A language model on your machine that \
answers from your files, mail and notes, and works with other people's nodes peer to peer. \
Nothing leaves the node unless you allow it.";

const AFTER_HELP: &str = "Get started:\n  \
flurry up                    start the node, then open http://127.0.0.1:7878\n  \
flurry ask \"Hello!\"          one answer in the terminal\n  \
flurry ingest ~/notes        let it answer from your notes (encrypted at rest)\n\n\
Any OpenAI or Ollama client works against http://127.0.0.1:7878. \
`flurry COMMAND --help` explains each command.";

#[derive(Debug, Parser)]
#[command(
    name = "flurry",
    version,
    about = ABOUT,
    long_about = None,
    after_help = AFTER_HELP,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the node: API (OpenAI and Ollama compatible) and web UI on 127.0.0.1:7878.
    Up(node_cmd::UpArgs),
    /// Answer one prompt and exit.
    Ask(AskArgs),
    /// Chat interactively in the terminal (Ctrl-C stops an answer, Ctrl-D exits).
    Chat(ChatArgs),
    /// Manage the model store.
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
    /// Add files and directories to the node's private memory (encrypted at rest).
    Ingest(memory_cmd::IngestArgs),
    /// Search, list and forget what the memory holds.
    #[command(subcommand)]
    Memory(memory_cmd::MemoryCommand),
    /// List connected peers: addresses, protocol, latency, direct or relayed.
    Peers(net_cmd::PeersArgs),
    /// The trusted circle: peers allowed to run inference on this node.
    #[command(subcommand)]
    Circle(net_cmd::CircleCommand),
    /// The peer-to-peer network: status and reachability diagnosis, dialling.
    #[command(subcommand)]
    Net(net_cmd::NetCommand),
    /// Run a relay server (circuit relay v2) for friends behind NAT: no model, no chain.
    Relay(net_cmd::RelayArgs),
    /// The node's wallet: address, balance, ticket deposit and reserve.
    #[command(subcommand)]
    Wallet(chain_cmd::WalletCommand),
    /// The open market: sell inference to strangers, list offers, stake.
    #[command(subcommand)]
    Market(market_cmd::MarketCommand),
    /// Choose and inspect the EVM chain payments settle on; deploy the contracts.
    #[command(subcommand)]
    Chain(chain_cmd::ChainCommand),
    /// Manage API tokens (needed when the node listens beyond loopback).
    #[command(subcommand)]
    Token(node_cmd::TokenCommand),
    /// Show what data has left this node: every transfer, by destination and purpose.
    Egress(node_cmd::EgressArgs),
    /// What may leave the node: scrub a text as the privacy router would, list the
    /// entities learned from your memory, measure the scrubber on a labelled set.
    #[command(subcommand)]
    Privacy(privacy_cmd::PrivacyCommand),
    /// Measure prompt-processing and generation speed.
    Bench(bench::BenchArgs),
    /// A model's perplexity on a text, computed as llama-perplexity does (non-overlapping
    /// windows, second half of each scored); prints `ppl=X` last.
    Perplexity(perplexity_cmd::PerplexityArgs),
    /// Check a job bundle (`flurry ask --receipt`, market jobs): signatures, hashes,
    /// then one re-execution with the claimed model that must give every hidden state
    /// and every sampled token bit for bit. Exit 0: it holds; 1: it does not (what
    /// failed and where); 2: it could not be checked (say, the model is missing).
    Verify(verify_cmd::VerifyArgs),
    /// Arbiter or validator: re-run a disputed job bundle and, when the provider's
    /// signed receipt does not hold, slash its stake (this node must be the registry's
    /// arbiter; in local mode the deployer). Exit 0: it holds, nothing slashed; 1: fault
    /// confirmed and slashed.
    Validate(verify_cmd::ValidateArgs),
    /// Create the node key (secp256k1: libp2p PeerId and Ethereum address).
    Init(node_cmd::InitArgs),
    /// Show the node's PeerId and Ethereum address.
    Id(node_cmd::IdArgs),
    /// Show configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Internal: the document extraction child that ingestion starts for each file
    /// (reads the file on stdin, limits itself, answers on stdout). Not for typing.
    #[command(name = "__extract", hide = true)]
    Extract {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration as TOML.
    Show,
}

/// Options shared by commands that run the model.
#[derive(Debug, Args, Clone)]
pub(crate) struct ModelArgs {
    /// Model: a name from `flurry model list`, a ModelId prefix, or a path to a GGUF file.
    #[arg(long, short)]
    pub(crate) model: Option<String>,
    /// Kernel threads (default: [engine] threads, 0 = one per core).
    #[arg(long, short)]
    pub(crate) threads: Option<usize>,
}

/// Sampling options.
#[derive(Debug, Args, Clone)]
pub(crate) struct SampleArgs {
    /// Random seed; the same prompt and seed give the same answer.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Temperature; 0 means greedy.
    #[arg(long, default_value_t = 0.8)]
    pub(crate) temperature: f32,
    /// Keep only the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 40)]
    pub(crate) top_k: usize,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long, default_value_t = 0.95)]
    pub(crate) top_p: f32,
    /// Drop tokens below this fraction of the top probability (0 = off).
    #[arg(long, default_value_t = 0.05)]
    pub(crate) min_p: f32,
    /// Penalty for recently seen tokens (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) repeat_penalty: f32,
    /// Maximum tokens to generate.
    #[arg(long, short = 'n', default_value_t = 256)]
    pub(crate) max_tokens: usize,
    /// Stop before this string (repeatable).
    #[arg(long)]
    pub(crate) stop: Vec<String>,
}

impl SampleArgs {
    pub(crate) fn params(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            seed: self.seed,
            ..SamplingParams::default()
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct AskArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) sample: SampleArgs,
    /// Send the prompt as-is, without the chat template.
    #[arg(long)]
    pub(crate) raw: bool,
    /// System prompt (ignored with --raw).
    #[arg(long)]
    pub(crate) system: Option<String>,
    /// Print one JSON object (text, tokens, model_id, timings) instead of streaming text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Run in this process even when a node (`flurry up`) is running (the private
    /// memory is only used through the node).
    #[arg(long)]
    pub(crate) local: bool,
    /// Answer without the node's private memory (no retrieval, no citations).
    #[arg(long)]
    pub(crate) no_memory: bool,
    /// Run the prompt on a peer of your circle (name or peer id) instead of this node;
    /// needs a running node. Nothing from your private memory is sent.
    #[arg(long, value_name = "NAME|PEER_ID", conflicts_with_all = ["local", "raw"])]
    pub(crate) peer: Option<String>,
    /// Buy the answer on the open market: the staked sellers of the model (`-m`, default
    /// `default`) bid, the cheapest is paid per token with tickets. Needs a running node
    /// with a funded ticket deposit (`flurry wallet deposit`); the prompt leaves as the
    /// `[privacy] market` rule allows.
    #[arg(long, conflicts_with_all = ["local", "raw", "peer"])]
    pub(crate) market: bool,
    /// Run in this process and write the job's signed bundle (request, receipt, tokens
    /// and commitments) to FILE, for `flurry verify`. Signed with the node key.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["peer", "market", "raw"])]
    pub(crate) receipt: Option<std::path::PathBuf>,
    /// With --market: pay at most this many ETH per million generated tokens.
    #[arg(long, value_name = "ETH", requires = "market")]
    pub(crate) max_price: Option<String>,
    /// The prompt.
    pub(crate) prompt: String,
}

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) sample: SampleArgs,
    /// System prompt.
    #[arg(long)]
    pub(crate) system: Option<String>,
    /// Run in this process even when a node (`flurry up`) is running (the private
    /// memory is only used through the node).
    #[arg(long)]
    pub(crate) local: bool,
    /// Chat without the node's private memory (the conversation keeps this setting).
    #[arg(long)]
    pub(crate) no_memory: bool,
}

/// Parses arguments and runs the command; the binary's whole `main`.
pub fn run() -> ExitCode {
    // Owner-only from the first write: the home, the key, the databases and SQLite's
    // -wal/-shm files are created 0700/0600 whatever umask the shell had.
    flurry_config::private_umask();
    let cli = match Cli::parse() {
        // The extraction child needs no paths or config (and gets no environment).
        Cli {
            command: Command::Extract { args },
        } => {
            return flurry_memory::worker_main(
                &args,
                &mut std::io::stdin().lock(),
                &mut std::io::stdout().lock(),
            );
        }
        cli => cli,
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let paths = Paths::from_env()?;
    let config = FileConfig::load(&paths.config_file())?;
    let ctx = Setup { paths, config };
    match cli.command {
        Command::Up(a) => node_cmd::up(ctx, a),
        Command::Init(a) => node_cmd::init(&ctx, a),
        Command::Id(a) => node_cmd::id(&ctx, a),
        Command::Token(t) => node_cmd::token(&ctx, t),
        Command::Egress(a) => node_cmd::egress(&ctx, a),
        Command::Privacy(c) => privacy_cmd::run(&ctx, c),
        Command::Ask(a) => ask(&ctx, a),
        Command::Chat(a) => chat::run(&ctx, a),
        Command::Model(m) => model_cmd::run(&ctx, m),
        Command::Bench(b) => bench::run(&ctx, b),
        Command::Perplexity(a) => perplexity_cmd::run(&ctx, a),
        Command::Verify(a) => verify_cmd::run(&ctx, a),
        Command::Validate(a) => verify_cmd::validate(&ctx, a),
        Command::Chain(c) => chain_cmd::chain(&ctx, c),
        Command::Ingest(a) => memory_cmd::ingest(&ctx, a),
        Command::Memory(m) => memory_cmd::memory(&ctx, m),
        Command::Wallet(w) => chain_cmd::wallet(&ctx, w),
        Command::Market(c) => market_cmd::run(&ctx, c),
        Command::Relay(a) => net_cmd::relay(ctx, a),
        Command::Peers(a) => net_cmd::peers(&ctx, a),
        Command::Net(c) => net_cmd::net(&ctx, c),
        Command::Circle(c) => net_cmd::circle(&ctx, c),
        // Answered in `run` before paths and config are read.
        Command::Extract { .. } => Ok(ExitCode::FAILURE),
        Command::Config(ConfigCommand::Show) => {
            println!("# {}", ctx.paths.config_file().display());
            print!("{}", ctx.config.to_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Paths and config for a command.
pub(crate) struct Setup {
    pub(crate) paths: Paths,
    pub(crate) config: FileConfig,
}

impl Setup {
    pub(crate) fn store(&self) -> ModelStore {
        ModelStore::new(&self.paths.models)
    }

    /// Resolves `--model` (or the configured default) to a store entry.
    pub(crate) fn resolve_model(&self, spec: Option<&str>) -> Result<ModelEntry> {
        let spec = spec.unwrap_or(&self.config.model.default);
        Ok(self.store().resolve(spec)?)
    }

    /// Loads a model and starts an engine for it.
    pub(crate) fn engine(&self, args: &ModelArgs) -> Result<(ModelEntry, Engine)> {
        let entry = self.resolve_model(args.model.as_deref())?;
        let model = Model::load(&entry.path)
            .with_context(|| format!("cannot load model {}", entry.name))?;
        let e = &self.config.engine;
        let cfg = EngineConfig::default()
            .with_threads(args.threads.unwrap_or(e.threads))
            .with_queue_capacity(e.queue_capacity)
            .with_max_active(e.max_active)
            .with_context_length(e.context_length);
        Ok((entry, Engine::start(Arc::new(model), cfg)?))
    }
}

fn ask(ctx: &Setup, a: AskArgs) -> Result<ExitCode> {
    if a.peer.is_some() || a.market {
        let r = remote::Remote::find(&ctx.paths).context(
            "--peer and --market need a running node (the network runs inside it): start one with `flurry up`",
        )?;
        return node_cmd::ask_remote(&r, &a);
    }
    if !a.local
        && a.receipt.is_none()
        && let Some(r) = remote::Remote::find(&ctx.paths)
    {
        return node_cmd::ask_remote(&r, &a);
    }
    let (entry, engine) = ctx.engine(&a.model)?;
    let prompt = if a.raw {
        Prompt::Raw(a.prompt)
    } else {
        let mut msgs = Vec::new();
        if let Some(s) = a.system {
            msgs.push(ChatMessage::new("system", s));
        }
        msgs.push(ChatMessage::new("user", a.prompt));
        Prompt::Chat(msgs)
    };
    let req = GenerateRequest::new(prompt)
        .with_sampling(a.sample.params())
        .with_max_tokens(a.sample.max_tokens)
        .with_stop(a.sample.stop.clone());
    if let Some(path) = &a.receipt {
        let text = verify_cmd::ask_with_receipt(
            ctx,
            &engine,
            entry.model_id,
            req,
            &a.sample.params(),
            path,
        )?;
        if a.json {
            let out = serde_json::json!({"text": text, "model": entry.name, "model_id": entry.model_id, "receipt": path});
            println!("{out}");
        } else {
            println!("{text}");
            eprintln!(
                "receipt: {} (check it with `flurry verify {}`)",
                path.display(),
                path.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.json {
        let c = engine.generate(req)?;
        let out = serde_json::json!({
            "text": c.text,
            "tokens": c.tokens,
            "finish_reason": c.finish_reason,
            "model": entry.name,
            "model_id": entry.model_id,
            "seed": a.sample.seed,
            "timings": c.timings,
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    let rx = engine.submit(req)?;
    let mut stdout = std::io::stdout().lock();
    for ev in rx {
        match ev {
            Event::Token { text, .. } => {
                stdout.write_all(text.as_bytes())?;
                stdout.flush()?;
            }
            Event::Prefill { .. } | Event::Commitments(_) => {}
            Event::Done { tail, .. } => {
                stdout.write_all(tail.as_bytes())?;
                writeln!(stdout)?;
                return Ok(ExitCode::SUCCESS);
            }
            Event::Error(e) => anyhow::bail!(e),
        }
    }
    anyhow::bail!("the engine stopped unexpectedly")
}
