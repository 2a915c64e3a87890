//! A local development chain: anvil from the pinned foundry toolchain, on a free
//! loopback port, optionally keeping its state in a file across restarts.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// Where the anvil binary is: `configured` (from `[chain] anvil`), else `$FLURRY_ANVIL`,
/// else the pinned anvil that `make chain-deps` installs in the checkout this binary was
/// built from (so an installed `flurry` run with no environment still finds it), else
/// `anvil` on `PATH`.
pub fn find_anvil(configured: Option<&Path>) -> Result<PathBuf> {
    let candidates = configured
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .into_iter()
        .chain(std::env::var_os("FLURRY_ANVIL").map(PathBuf::from))
        .chain(std::iter::once(checkout_anvil()));
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("anvil"))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::AnvilMissing {
            checkout: checkout_dir(),
        })
}

/// The source checkout this binary was built from (`make` installs the chain tools
/// there).
pub fn checkout_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    dir.canonicalize().unwrap_or(dir)
}

fn checkout_anvil() -> PathBuf {
    checkout_dir().join("contracts/node_modules/.bin/anvil")
}

/// A running anvil. Dropping it kills the process; [`LocalChain::stop`] lets it save its
/// state first.
#[derive(Debug)]
pub struct LocalChain {
    child: Child,
    url: String,
}

impl LocalChain {
    /// Starts `anvil` on a free port of 127.0.0.1 and waits until it accepts
    /// connections (at most 20 s). With `state`, the chain is loaded from that file if it
    /// exists and saved to it every second and at exit.
    pub fn spawn(anvil: &Path, state: Option<&Path>) -> Result<Self> {
        let port = free_port()?;
        let mut cmd = Command::new(anvil);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--chain-id", "31337"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // With a state file, anvil's output goes to a log beside it (never to a pipe
        // nobody reads, which would stall anvil once full).
        let log = state.map(|s| s.with_extension("log"));
        if let Some(state) = state {
            if let Some(dir) = state.parent() {
                std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            cmd.arg("--state")
                .arg(state)
                .args(["--state-interval", "1"]);
        }
        if let Some(log) = &log {
            let open = || {
                std::fs::File::create(log).map_err(|source| Error::Io {
                    path: log.clone(),
                    source,
                })
            };
            cmd.stdout(open()?).stderr(open()?);
        }
        die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::AnvilMissing {
                    checkout: checkout_dir(),
                }
            } else {
                Error::AnvilStart(format!("{}: {e}", anvil.display()))
            }
        })?;
        let mut chain = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = chain.child.try_wait() {
                let tail = log
                    .as_deref()
                    .and_then(|l| std::fs::read_to_string(l).ok())
                    .map(|t| t.lines().rev().take(5).collect::<Vec<_>>().join(" | "))
                    .unwrap_or_default();
                return Err(Error::AnvilStart(format!("exited with {status}: {tail}")));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(chain);
            }
            if Instant::now() > deadline {
                return Err(Error::AnvilStart(format!(
                    "no answer on {} after 20 s",
                    chain.url
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The RPC URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops anvil with SIGTERM, so that it writes its state file, and waits up to 5 s
    /// before killing it.
    pub fn stop(mut self) {
        terminate(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Drop kills it.
    }
}

impl Drop for LocalChain {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Asks the kernel to send anvil SIGTERM when the thread that started it ends, so a
/// node killed with SIGKILL leaves no chain running (anvil saves its state on SIGTERM).
/// Start it from a thread that lives as long as the node (the main thread).
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // prctl(2), which is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends SIGTERM to `pid` (via kill(1), which every Unix has).
pub(crate) fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Stops an anvil left running by an earlier process (a node killed with SIGKILL), if
/// `pid` is still an anvil.
pub fn stop_stale_anvil(pid: u32) {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() == "anvil" {
        terminate(pid);
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|source| Error::Io {
        path: PathBuf::from("127.0.0.1:0"),
        source,
    })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| Error::Io {
            path: PathBuf::from("127.0.0.1:0"),
            source,
        })
}
