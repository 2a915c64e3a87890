//! `flurry model list|import|info`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use flurry_infer::store::ModelInfo;
use indicatif::{ProgressBar, ProgressStyle};

use crate::Setup;

#[derive(Debug, Subcommand)]
pub(crate) enum ModelCommand {
    /// List the models in the store ($FLURRY_MODELS).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Copy a GGUF file into the store (validated and hashed first).
    Import {
        /// The GGUF file.
        file: PathBuf,
    },
    /// Show a model's architecture, size, quantisation, context, template and ModelId.
    Info {
        /// Name, ModelId prefix, or path.
        model: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(ctx: &Setup, cmd: ModelCommand) -> Result<ExitCode> {
    let store = ctx.store();
    match cmd {
        ModelCommand::List { json } => {
            let list = store.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                eprintln!(
                    "no models in {}: run `make models`, or `flurry model import FILE.gguf`",
                    store.dir().display()
                );
            } else {
                println!("{:<40} {:<14} {:>10}", "NAME", "ID", "SIZE");
                for e in list {
                    println!(
                        "{:<40} {:<14} {:>10}",
                        e.name,
                        e.model_id.short(),
                        human(e.size)
                    );
                }
            }
        }
        ModelCommand::Import { file } => {
            let size = std::fs::metadata(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?
                .len();
            let bar = ProgressBar::new(size).with_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")?
                    .progress_chars("=> "),
            );
            bar.set_message("importing");
            let e = store.import(&file, |n| bar.set_position(n))?;
            bar.finish_and_clear();
            println!("imported {} ({})", e.name, e.model_id);
        }
        ModelCommand::Info { model, json } => {
            let entry = store.resolve(&model)?;
            let info = ModelInfo::read(entry)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                let e = &info.entry;
                println!("name           {}", e.name);
                if let Some(n) = &info.display_name {
                    println!("display name   {n}");
                }
                println!("model id       {}", e.model_id);
                println!("path           {}", e.path.display());
                println!("size           {}", human(e.size));
                println!("architecture   {}", info.architecture);
                println!("parameters     {:.1}M", info.parameters as f64 / 1e6);
                println!("quantization   {}", info.quantization);
                if let Some(c) = info.context_length {
                    println!("context        {c}");
                }
                if let Some(l) = &info.license {
                    println!("license        {l}");
                }
                match &info.chat_template {
                    Some(t) => println!("chat template  (from file)\n{t}"),
                    None => println!("chat template  (none in file; built-in fallback)"),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.1} kB", b / 1e3)
    }
}
