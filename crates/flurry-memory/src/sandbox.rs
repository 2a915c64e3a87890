//! Extraction in a child process. The PDF, HTML and mail readers are third-party or
//! hand-written parsers fed with bytes from anyone who can put a file in a folder or send
//! the owner a mail. A stack overflow aborts a process and no `catch_unwind` stops it, a
//! decompression bomb exhausts memory, a pathological input spins: so each file is
//! extracted by a short-lived child (the `flurry` binary's hidden `__extract` subcommand,
//! [`worker_main`]) that limits itself (address space, CPU seconds, no core dumps, no
//! file writes) and that the parent kills at a wall-clock deadline. A child that dies
//! or is killed becomes one file's error; ingestion goes on with the next file.
//!
//! One child per file: it costs a few milliseconds (fork, exec, a page-cached binary),
//! small next to embedding the file's chunks, and no state (or leaked memory) of one
//! hostile file can reach the next.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::extract::{Extracted, MAX_TOTAL_TEXT_BYTES, extract, max_file_bytes};

/// The subcommand of the `flurry` binary that runs [`worker_main`].
pub const WORKER_SUBCOMMAND: &str = "__extract";

/// First line of a worker's answer, so that a program that is not an extraction worker
/// (a wrong path, an old binary) is told apart from a parser's failure.
const MAGIC: &[u8] = b"flurry-extract/1\n";

/// The most a worker may write: the capped text, JSON-escaped, and the metadata.
const MAX_OUTPUT_BYTES: usize = 2 * MAX_TOTAL_TEXT_BYTES + (1 << 20);

/// What the worker's stderr is kept of (it says why a parser died).
const MAX_STDERR_BYTES: usize = 16 << 10;

/// Limits of one extraction child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Address space of the child (`RLIMIT_AS`), bytes. Default 2 GiB: a 64 MiB PDF
    /// with its objects and inflated content streams fits; a bomb does not.
    pub memory_bytes: u64,
    /// CPU seconds (`RLIMIT_CPU`), plus one second per 4 MiB of input. Default 30.
    pub cpu_secs: u64,
    /// Wall-clock deadline after which the parent kills the child, plus one second per
    /// 4 MiB of input. Default 30 s.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 2 << 30,
            cpu_secs: 30,
            deadline: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// The limits with `memory_bytes` instead.
    pub fn with_memory_bytes(mut self, bytes: u64) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// The limits with `cpu_secs` instead.
    pub fn with_cpu_secs(mut self, secs: u64) -> Self {
        self.cpu_secs = secs;
        self
    }

    /// The limits with `deadline` instead.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Extra time for large inputs: a 256 MiB mailbox legitimately takes longer than a
    /// note.
    fn slack(bytes: usize) -> u64 {
        (bytes >> 22) as u64
    }
}

#[derive(Debug, Clone)]
enum Mode {
    Child {
        program: PathBuf,
        args: Vec<OsString>,
    },
    InProcess,
}

/// How ingestion turns a file's bytes into documents: in a limited child process (the
/// default) or, where explicitly chosen for trusted input, in this process.
#[derive(Debug, Clone)]
pub struct Extractor {
    mode: Mode,
    limits: Limits,
}

impl Default for Extractor {
    /// This program run as `PROGRAM __extract` ([`Extractor::current_exe`]).
    fn default() -> Self {
        Extractor::current_exe()
    }
}

impl Extractor {
    /// A child running this very program with the [`WORKER_SUBCOMMAND`] argument: right
    /// for the `flurry` binary (the node, `flurry ingest`). On Linux the program is
    /// `/proc/self/exe`, which still names this binary after it was rebuilt or removed.
    pub fn current_exe() -> Self {
        let proc_exe = Path::new("/proc/self/exe");
        let program = if proc_exe.exists() {
            proc_exe.to_path_buf()
        } else {
            std::env::current_exe().unwrap_or_else(|_| PathBuf::from("flurry"))
        };
        Extractor::child(program, [WORKER_SUBCOMMAND])
    }

    /// A child running `program args…` that calls [`worker_main`] with the arguments
    /// that follow.
    pub fn child<I, S>(program: impl Into<PathBuf>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Extractor {
            mode: Mode::Child {
                program: program.into(),
                args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            },
            limits: Limits::default(),
        }
    }

    /// Extraction in the calling process, with the input caps but without the child's
    /// limits: a parser crash or a memory blow-up takes this process down. Only for
    /// trusted input (benchmarks on generated text, fuzzing).
    pub fn in_process() -> Self {
        Extractor {
            mode: Mode::InProcess,
            limits: Limits::default(),
        }
    }

    /// The extractor with other limits for its children.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits of its children.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The documents in a file's bytes, as [`crate::extract()`] gives them; a child that
    /// crashed, ran out of memory or time, or answered nonsense is an error naming what
    /// happened.
    pub fn extract(
        &self,
        kind: &str,
        bytes: &[u8],
        path: &Path,
    ) -> std::result::Result<Vec<Extracted>, String> {
        match &self.mode {
            Mode::InProcess => extract(kind, bytes, path),
            Mode::Child { program, args } => {
                let name = path.file_name().unwrap_or_default();
                run_child(program, args, self.limits, kind, bytes, name)
            }
        }
    }
}

/// One document on the wire between worker and parent.
#[derive(Serialize, Deserialize)]
struct WireDoc {
    part: Option<usize>,
    kind: String,
    title: String,
    text: String,
    sender: Option<String>,
    date: Option<i64>,
    hash: String,
    bytes: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Answer {
    Ok(Vec<WireDoc>),
    Err(String),
}

fn static_kind(kind: &str) -> Option<&'static str> {
    ["text", "markdown", "html", "pdf", "email"]
        .into_iter()
        .find(|k| *k == kind)
}

fn reader_name(kind: &str) -> &'static str {
    match kind {
        "pdf" => "PDF reader",
        "html" => "HTML reader",
        "email" | "mbox" => "mail reader",
        _ => "text reader",
    }
}

fn run_child(
    program: &Path,
    args: &[OsString],
    limits: Limits,
    kind: &str,
    bytes: &[u8],
    name: &OsStr,
) -> std::result::Result<Vec<Extracted>, String> {
    let slack = Limits::slack(bytes.len());
    let deadline = limits.deadline + Duration::from_secs(slack);
    let mut cmd = Command::new(program);
    cmd.args(args)
        .arg("--kind")
        .arg(kind)
        .arg("--name")
        .arg(name)
        .arg("--memory-bytes")
        .arg(limits.memory_bytes.to_string())
        .arg("--cpu-secs")
        .arg((limits.cpu_secs + slack).to_string())
        // The parser needs nothing from the environment, and the node's environment may
        // hold a passphrase (FLURRY_PASSPHRASE) or tokens.
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(v) = std::env::var_os("LD_LIBRARY_PATH") {
        cmd.env("LD_LIBRARY_PATH", v);
    }
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start the extraction worker {}: {e}",
            program.display()
        )
    })?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("the extraction worker's pipes could not be opened".into());
    };
    let (status, timed_out, out, err) = std::thread::scope(|s| {
        // A child that dies early closes its stdin: the write fails and the thread ends.
        s.spawn(move || {
            let _ = stdin.write_all(bytes);
        });
        let out = s.spawn(move || read_capped(stdout, MAX_OUTPUT_BYTES + 1, false));
        let err = s.spawn(move || read_capped(stderr, MAX_STDERR_BYTES, true));
        let started = Instant::now();
        let mut nap = Duration::from_millis(1);
        let (status, timed_out) = loop {
            match child.try_wait() {
                Ok(Some(st)) => break (Some(st), false),
                Ok(None) if started.elapsed() >= deadline => {
                    let _ = child.kill();
                    break (child.wait().ok(), true);
                }
                Ok(None) => {
                    std::thread::sleep(nap);
                    nap = (nap * 2).min(Duration::from_millis(20));
                }
                Err(_) => {
                    let _ = child.kill();
                    break (child.wait().ok(), false);
                }
            }
        };
        let out = out.join().unwrap_or_default();
        let err = err.join().unwrap_or_default();
        (status, timed_out, out, err)
    });
    let reader = reader_name(kind);
    if timed_out {
        return Err(format!(
            "extraction took longer than {} s (a hostile or pathological file?); the {reader} was stopped and the file skipped",
            deadline.as_secs()
        ));
    }
    match parse_answer(&out) {
        Some(answer) => answer,
        None => Err(explain_failure(
            status, &err, &out, reader, program, limits, slack,
        )),
    }
}

/// Reads up to `cap` bytes; with `drain`, reads and drops the rest so the writer never
/// blocks on a full pipe.
fn read_capped(r: impl Read, cap: usize, drain: bool) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut r = r;
    let _ = r.by_ref().take(cap as u64).read_to_end(&mut buf);
    if drain {
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    }
    buf
}

fn parse_answer(out: &[u8]) -> Option<std::result::Result<Vec<Extracted>, String>> {
    let json = out.strip_prefix(MAGIC)?;
    if json.len() > MAX_OUTPUT_BYTES {
        return Some(Err(format!(
            "the extraction worker wrote more than {} MiB; the file was skipped",
            MAX_OUTPUT_BYTES >> 20
        )));
    }
    Some(match serde_json::from_slice::<Answer>(json).ok()? {
        Answer::Err(e) => Err(e),
        Answer::Ok(docs) => docs
            .into_iter()
            .map(|d| {
                Ok(Extracted {
                    part: d.part,
                    kind: static_kind(&d.kind).ok_or_else(|| {
                        format!("the extraction worker named an unknown kind {:?}", d.kind)
                    })?,
                    title: d.title,
                    text: d.text,
                    sender: d.sender,
                    date: d.date,
                    hash: d.hash,
                    bytes: d.bytes,
                })
            })
            .collect(),
    })
}

fn explain_failure(
    status: Option<ExitStatus>,
    stderr: &[u8],
    stdout: &[u8],
    reader: &str,
    program: &Path,
    limits: Limits,
    slack: u64,
) -> String {
    use std::os::unix::process::ExitStatusExt;
    let err = String::from_utf8_lossy(stderr);
    if err.contains("has overflowed its stack") {
        return format!(
            "the {reader} crashed on this file (stack overflow: a document that refers to itself or nests too deeply?); the file was skipped"
        );
    }
    if err.contains("memory allocation of") {
        return format!(
            "the {reader} needed more than {} MiB of memory on this file (a decompression bomb?); it was stopped and the file skipped",
            limits.memory_bytes >> 20
        );
    }
    let signal = status.and_then(|s| s.signal());
    if signal == Some(libc::SIGXCPU) {
        return format!(
            "the {reader} used more than {} s of CPU time on this file; it was stopped and the file skipped",
            limits.cpu_secs + slack
        );
    }
    if signal == Some(libc::SIGKILL) {
        return format!(
            "the {reader} was killed on this file (over its {} s of CPU time, or the system ran out of memory); the file was skipped",
            limits.cpu_secs + slack
        );
    }
    if let Some(sig) = signal {
        return format!("the {reader} crashed on this file (signal {sig}); the file was skipped");
    }
    if (!stdout.is_empty() && !stdout.starts_with(MAGIC)) || status.is_some_and(|s| s.success()) {
        return format!(
            "{} did not answer as a flurry extraction worker (`{WORKER_SUBCOMMAND}`); is it the flurry binary?",
            program.display()
        );
    }
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    format!(
        "the extraction worker failed on this file ({}): {last}",
        status.map_or("no exit status".into(), |s| s.to_string())
    )
}

/// Sets this process's limit `res` to `soft`/`hard` (never above the hard limit already
/// in place, which an unprivileged process cannot raise).
#[allow(unsafe_code)]
fn limit_self(
    res: Resource,
    soft: libc::rlim_t,
    hard: libc::rlim_t,
) -> std::result::Result<(), String> {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct it is given, which lives on this stack.
    if unsafe { libc::getrlimit(res, &mut cur) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    let hard = if cur.rlim_max == libc::RLIM_INFINITY {
        hard
    } else {
        hard.min(cur.rlim_max)
    };
    let new = libc::rlimit {
        rlim_cur: soft.min(hard),
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct it is given and changes only this process's
    // limits, which may always be lowered.
    if unsafe { libc::setrlimit(res, &new) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

/// Makes the kernel kill this child when the node that started it dies, so that no
/// extraction outlives an aborted node.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent() {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent() {}

/// The extraction child: limits itself, reads a file's bytes from `input` (capped),
/// extracts them and writes the documents to `output`. `args` are what follows the
/// subcommand: `--kind KIND --name FILE_NAME --memory-bytes N --cpu-secs N`.
///
/// The `flurry` binary runs this for `flurry __extract …`; it is not meant to be typed.
pub fn worker_main(args: &[OsString], input: &mut dyn Read, output: &mut dyn Write) -> ExitCode {
    let answer = work(args, input);
    let mut buf = MAGIC.to_vec();
    if serde_json::to_writer(&mut buf, &answer).is_err() {
        return ExitCode::FAILURE;
    }
    if output
        .write_all(&buf)
        .and_then(|()| output.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn work(args: &[OsString], input: &mut dyn Read) -> Answer {
    let mut kind = None;
    let mut name = OsString::new();
    let mut memory = Limits::default().memory_bytes;
    let mut cpu = Limits::default().cpu_secs;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            return Answer::Err(format!("extraction worker: {flag:?} needs a value"));
        };
        let number = || value.to_str().and_then(|v| v.parse::<u64>().ok());
        match flag.to_str() {
            Some("--kind") => kind = value.to_str().map(str::to_string),
            Some("--name") => name = value.clone(),
            Some("--memory-bytes") => memory = number().unwrap_or(memory),
            Some("--cpu-secs") => cpu = number().unwrap_or(cpu),
            _ => return Answer::Err(format!("extraction worker: unknown argument {flag:?}")),
        }
    }
    let Some(kind) = kind else {
        return Answer::Err("extraction worker: --kind is missing".into());
    };
    die_with_parent();
    for (res, soft, hard) in [
        (libc::RLIMIT_AS, memory, memory),
        // SIGXCPU at the soft limit, SIGKILL a second later if it is ignored.
        (libc::RLIMIT_CPU, cpu, cpu + 1),
        (libc::RLIMIT_CORE, 0, 0),
        // The parsers have no business writing files.
        (libc::RLIMIT_FSIZE, 0, 0),
    ] {
        if let Err(e) = limit_self(res, soft, hard) {
            return Answer::Err(format!(
                "extraction worker: cannot limit itself ({e}); the file was not read"
            ));
        }
    }
    let cap = max_file_bytes(&kind);
    let mut bytes = Vec::new();
    if let Err(e) = input.take(cap + 1).read_to_end(&mut bytes) {
        return Answer::Err(format!("extraction worker: reading the file: {e}"));
    }
    match extract(&kind, &bytes, Path::new(&name)) {
        Ok(docs) => Answer::Ok(
            docs.into_iter()
                .map(|d| WireDoc {
                    part: d.part,
                    kind: d.kind.to_string(),
                    title: d.title,
                    text: d.text,
                    sender: d.sender,
                    date: d.date,
                    hash: d.hash,
                    bytes: d.bytes,
                })
                .collect(),
        ),
        Err(e) => Answer::Err(e),
    }
}
