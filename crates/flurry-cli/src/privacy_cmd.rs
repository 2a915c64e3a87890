//! `flurry privacy policy|scrub|entities|eval`: the privacy router's policy and its
//! scrubber, by hand.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use flurry_memory::{MemoryKey, MemoryStore};
use flurry_node::PassphraseOptions;
use flurry_privacy::{EntityList, Kind, Scrubbed, Scrubber, Span};
use serde::Deserialize;
use serde_json::json;

use crate::Setup;

/// A rule for a destination, as the command line writes it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum RuleArg {
    /// Nothing goes there: the request runs here or fails.
    Never,
    /// Personal data is replaced by placeholders, and put back in the answer.
    Scrubbed,
    /// It goes as typed.
    AsIs,
}

impl From<RuleArg> for flurry_privacy::Rule {
    fn from(r: RuleArg) -> Self {
        match r {
            RuleArg::Never => Self::Never,
            RuleArg::Scrubbed => Self::Scrubbed,
            RuleArg::AsIs => Self::AsIs,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum PrivacyCommand {
    /// Show or set what may leave the node for each destination ([privacy] in
    /// flurry.toml; a running node applies it to the next request).
    Policy {
        /// What a request sent to a member of your circle may carry.
        #[arg(long, value_enum)]
        circle: Option<RuleArg>,
        /// What a request sent to a seller on the open market may carry.
        #[arg(long, value_enum)]
        market: Option<RuleArg>,
        /// Print JSON: {"circle", "market"}.
        #[arg(long)]
        json: bool,
    },
    /// Show what would leave the node: TEXT with personal data replaced by placeholders,
    /// and each entity found (kind, byte span, which layer found it).
    Scrub {
        /// The text ("-" reads standard input).
        text: String,
        /// Print JSON: {"text", "entities": [{"type", "start", "end", "text", "placeholder", "source"}]}.
        #[arg(long)]
        json: bool,
        /// Use patterns and name cues only, not the entities learned from your memory.
        #[arg(long)]
        no_memory: bool,
        /// File holding the key passphrase (mode 0600). Also: FLURRY_PASSPHRASE.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List the entities learned from your memory (names, addresses, ids, projects).
    Entities {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// File holding the key passphrase (mode 0600). Also: FLURRY_PASSPHRASE.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Measure the scrubber on a labelled set: DIR/eval.jsonl (texts with their
    /// entities) and DIR/memory/ (the owner's documents it learns from). Prints recall
    /// and precision per entity type, and the time to scrub a 2,000-token prompt.
    Eval {
        /// The set (see tests/privacy/README.md for the format).
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(ctx: &Setup, c: PrivacyCommand) -> Result<ExitCode> {
    match c {
        PrivacyCommand::Policy {
            circle,
            market,
            json,
        } => {
            let file = ctx.paths.config_file();
            if circle.is_some() || market.is_some() {
                flurry_config::set_privacy(&file, circle.map(Into::into), market.map(Into::into))?;
            }
            let p = flurry_config::FileConfig::load(&file)?.privacy;
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                let show = |r: flurry_privacy::Rule| match r {
                    flurry_privacy::Rule::Never => "never (stays on this node)",
                    flurry_privacy::Rule::Scrubbed => "scrubbed (personal data replaced)",
                    flurry_privacy::Rule::AsIs => "as-is (sent as typed)",
                };
                println!("circle: {}", show(p.circle));
                println!("market: {}", show(p.market));
                println!(
                    "A request can only tighten this: \"privacy\": \"local-only\" or \"scrubbed\" in the API."
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        PrivacyCommand::Scrub {
            text,
            json,
            no_memory,
            password_file,
        } => {
            let text = if text == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading the text from standard input")?;
                s
            } else {
                text
            };
            let list = if no_memory {
                EntityList::new()
            } else {
                learned(ctx, password_file)?
            };
            let scrubber = Scrubber::new(&list);
            let (out, found) = scrubber.scrub(&mut Scrubbed::new(), &text)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"text": out, "entities": found}))?
                );
            } else {
                println!("{out}");
                for f in &found {
                    eprintln!(
                        "  {:<12} {:>5}..{:<5} {:?} (from {})",
                        f.placeholder,
                        f.start,
                        f.end,
                        f.text,
                        serde_json::to_value(f.source)?.as_str().unwrap_or("")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PrivacyCommand::Entities {
            json,
            password_file,
        } => {
            let list = learned(ctx, password_file)?;
            if json {
                let items: Vec<_> = list
                    .iter()
                    .map(|(k, t)| json!({"type": k, "text": t}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"entities": items}))?
                );
            } else if list.is_empty() {
                println!(
                    "No entities learned: the memory is empty. Add documents with `flurry ingest PATH`."
                );
            } else {
                for (k, t) in list.iter() {
                    println!("{:<8} {t}", k.as_str());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PrivacyCommand::Eval { dir, json } => eval(&dir, json),
    }
}

/// The entities learned from this node's memory (empty, with a note, when it has none).
fn learned(ctx: &Setup, password_file: Option<PathBuf>) -> Result<EntityList> {
    let db = ctx.paths.memory_db();
    let mut list = EntityList::new();
    if !db.exists() {
        eprintln!(
            "note: no memory yet ({}), so only patterns and name cues are used",
            db.display()
        );
        return Ok(list);
    }
    let id = flurry_node::unlock(&ctx.paths, &PassphraseOptions::from_env(password_file))?;
    let store = MemoryStore::open(&db, &MemoryKey::from_identity(&id))?;
    store.for_each_document(|p, t| list.learn_document(p, t))?;
    Ok(list)
}

#[derive(Debug, Deserialize)]
struct Labelled {
    id: String,
    #[serde(default)]
    lang: String,
    text: String,
    entities: Vec<Gold>,
}

#[derive(Debug, Deserialize)]
struct Gold {
    #[serde(rename = "type")]
    kind: String,
    /// Unicode code point offsets (Python's).
    start: usize,
    end: usize,
}

/// Byte offset of code point `i` in `s`.
fn byte_at(s: &str, i: usize) -> usize {
    s.char_indices().nth(i).map_or(s.len(), |(b, _)| b)
}

#[derive(Default, serde::Serialize)]
struct Tally {
    gold: usize,
    found: usize,
    predicted: usize,
    correct: usize,
}

impl Tally {
    fn recall(&self) -> f64 {
        if self.gold == 0 {
            1.0
        } else {
            self.found as f64 / self.gold as f64
        }
    }
    fn precision(&self) -> f64 {
        if self.predicted == 0 {
            1.0
        } else {
            self.correct as f64 / self.predicted as f64
        }
    }
}

/// A gold entity counts as found when predicted spans cover at least this share of its
/// non-space bytes: enough that what is left cannot name it.
const COVERED: f64 = 0.6;

fn eval(dir: &Path, json_out: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let mut list = EntityList::new();
    let memory = dir.join("memory");
    let mut docs = 0;
    if !memory.is_dir() {
        bail!(
            "{} is not a folder: put the owner's documents there",
            memory.display()
        );
    }
    for path in flurry_memory::walk(std::slice::from_ref(&memory)) {
        let Some(kind) = flurry_memory::kind_of(&path) else {
            continue;
        };
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        match flurry_memory::extract(kind, &bytes, &path) {
            Ok(parts) => {
                for p in parts {
                    list.learn_document(&path.to_string_lossy(), &p.text);
                    docs += 1;
                }
            }
            Err(e) => eprintln!("skipped {}: {e}", path.display()),
        }
    }
    let learn_ms = started.elapsed().as_secs_f64() * 1e3;
    let scrubber = Scrubber::new(&list);
    let set = dir.join("eval.jsonl");
    let raw =
        std::fs::read_to_string(&set).with_context(|| format!("reading {}", set.display()))?;
    let mut texts = Vec::new();
    for (i, line) in raw
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let t: Labelled = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not a labelled text", set.display(), i + 1))?;
        texts.push(t);
    }
    if texts.is_empty() {
        bail!("{} holds no labelled text", set.display());
    }
    let mut by_gold: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_pred: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_lang: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut misses = Vec::new();
    let mut false_alarms = Vec::new();
    for t in &texts {
        let spans: Vec<Span> = scrubber.find(&t.text)?;
        let gold: Vec<(String, usize, usize)> = t
            .entities
            .iter()
            .map(|g| {
                (
                    g.kind.clone(),
                    byte_at(&t.text, g.start),
                    byte_at(&t.text, g.end),
                )
            })
            .collect();
        for (kind, s, e) in &gold {
            let wanted: Vec<usize> = (*s..*e)
                .filter(|&i| !t.text.as_bytes()[i].is_ascii_whitespace())
                .collect();
            let covered = wanted
                .iter()
                .filter(|&&i| spans.iter().any(|p| p.start <= i && i < p.end))
                .count();
            let hit = !wanted.is_empty() && covered as f64 >= COVERED * wanted.len() as f64;
            for tally in [
                by_gold.entry(kind.clone()).or_default(),
                by_lang.entry(t.lang.clone()).or_default(),
                &mut total,
            ] {
                tally.gold += 1;
                tally.found += usize::from(hit);
            }
            if !hit {
                misses.push(json!({"id": t.id, "type": kind, "text": &t.text[*s..*e]}));
            }
        }
        for p in &spans {
            let ok = gold.iter().any(|(_, s, e)| p.start < *e && *s < p.end);
            for tally in [
                by_pred.entry(p.kind.as_str().to_string()).or_default(),
                by_lang.entry(t.lang.clone()).or_default(),
                &mut total,
            ] {
                tally.predicted += 1;
                tally.correct += usize::from(ok);
            }
            if !ok {
                false_alarms
                    .push(json!({"id": t.id, "type": p.kind, "text": &t.text[p.start..p.end]}));
            }
        }
    }
    // Speed: a prompt of about 2,000 tokens (English: ~4 bytes a token; Chinese: one
    // character a token), scrubbed with the learned entities, median of 21 runs.
    let mut prompt = String::new();
    let mut tokens = 0usize;
    for t in texts.iter().cycle() {
        if tokens >= 2000 {
            break;
        }
        prompt.push_str(&t.text);
        prompt.push_str("\n\n");
        tokens += t
            .text
            .chars()
            .map(|c| if c.is_ascii() { 1 } else { 4 })
            .sum::<usize>()
            / 4;
    }
    let mut runs = Vec::new();
    for _ in 0..21 {
        let t0 = Instant::now();
        let _ = scrubber.scrub(&mut Scrubbed::new(), &prompt)?;
        runs.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    runs.sort_by(f64::total_cmp);
    let scrub_ms = runs[runs.len() / 2];
    let build = Instant::now();
    let _ = Scrubber::new(&list);
    let build_ms = build.elapsed().as_secs_f64() * 1e3;
    let per_kind: BTreeMap<&str, serde_json::Value> = Kind::ALL
        .iter()
        .map(|k| {
            let g = by_gold.get(k.as_str());
            let p = by_pred.get(k.as_str());
            (
                k.as_str(),
                json!({
                    "gold": g.map_or(0, |t| t.gold),
                    "recall": g.map(Tally::recall),
                    "predicted": p.map_or(0, |t| t.predicted),
                    "precision": p.map(Tally::precision),
                }),
            )
        })
        .collect();
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "texts": texts.len(),
                "memory_documents": docs,
                "entities_learned": list.len(),
                "learned": list.iter().map(|(k, t)| json!({"type": k, "text": t})).collect::<Vec<_>>(),
                "recall": total.recall(),
                "precision": total.precision(),
                "per_type": per_kind,
                "per_language": by_lang.iter().map(|(l, t)| (l.clone(), json!({"recall": t.recall(), "precision": t.precision(), "gold": t.gold}))).collect::<BTreeMap<_, _>>(),
                "scrub_ms_2000_tokens": scrub_ms,
                "prompt_bytes": prompt.len(),
                "learn_ms": learn_ms,
                "build_ms": build_ms,
                "misses": misses,
                "false_alarms": false_alarms,
            }))?
        );
    } else {
        println!(
            "{} texts, {} memory documents, {} entities learned",
            texts.len(),
            docs,
            list.len()
        );
        println!(
            "{:<8} {:>5} {:>7} {:>6} {:>9}",
            "type", "gold", "recall", "found", "precision"
        );
        for k in Kind::ALL {
            let g = by_gold.get(k.as_str());
            let p = by_pred.get(k.as_str());
            if g.is_none() && p.is_none() {
                continue;
            }
            println!(
                "{:<8} {:>5} {:>7} {:>6} {:>9}",
                k.as_str(),
                g.map_or(0, |t| t.gold),
                g.map_or("-".into(), |t| format!("{:.3}", t.recall())),
                p.map_or(0, |t| t.predicted),
                p.map_or("-".into(), |t| format!("{:.3}", t.precision())),
            );
        }
        for (l, t) in &by_lang {
            println!(
                "language {l}: recall {:.3}, precision {:.3}",
                t.recall(),
                t.precision()
            );
        }
        println!(
            "scrub a ~2,000-token prompt ({} bytes): {scrub_ms:.2} ms (median of 21); learn {learn_ms:.0} ms; build {build_ms:.1} ms",
            prompt.len()
        );
        println!(
            "recall={:.4} precision={:.4}",
            total.recall(),
            total.precision()
        );
    }
    Ok(ExitCode::SUCCESS)
}
