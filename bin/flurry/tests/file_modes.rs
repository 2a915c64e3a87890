//! Files and folders of a node are owner-only from the first write, whatever the umask
//! of the shell that started it: `$FLURRY_HOME`, `keystore/` and `chain/` are 0700, and
//! the databases, their `-wal`/`-shm` files and the JSON files are 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("FLURRY_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".flurry/models"));
    assert!(
        dir.join("SmolLM2-135M-Instruct.Q4_1.gguf").is_file(),
        "run `make models` first"
    );
    dir
}

/// `flurry up` started from a shell with the common umask 022, on loopback without a
/// chain or peers; returns once it wrote `node.json`.
struct Up(std::process::Child);

impl Up {
    fn start(home: &Path) -> Self {
        let mut child = Command::new("sh")
            .args([
                "-c",
                "umask 022 && exec \"$0\" up --listen 127.0.0.1:0 --threads 1 --no-mdns --p2p-listen /ip4/127.0.0.1/tcp/0",
                env!("CARGO_BIN_EXE_flurry"),
            ])
            .env("FLURRY_HOME", home)
            .env("FLURRY_MODELS", models_dir())
            .env("FLURRY_TEST_LIGHT_KDF", "1")
            .env_remove("FLURRY_PASSPHRASE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..600 {
            if home.join("node.json").exists() {
                return Self(child);
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("flurry up exited: {status:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("flurry up did not start within 60 s");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every entry under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        }
        out.push(p);
    }
}

/// Checks that nothing under `home` (nor `home` itself) is open to group or others, and
/// that the databases with their WAL files and the JSON files are exactly 0600.
fn assert_private(home: &Path) {
    assert_eq!(mode(home), 0o700, "{}", home.display());
    let mut all = Vec::new();
    walk(home, &mut all);
    for p in &all {
        let m = mode(p);
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            assert_eq!(m, 0o700, "{}: {m:o}", p.display());
        } else {
            assert_eq!(m & 0o077, 0, "{} is open to others: {m:o}", p.display());
            if [".db", ".db-wal", ".db-shm", ".json"]
                .iter()
                .any(|s| name.ends_with(s))
            {
                assert_eq!(m, 0o600, "{}: {m:o}", p.display());
            }
        }
    }
    for f in [
        "history.db",
        "history.db-wal",
        "memory.db",
        "memory.db-wal",
        "keystore/node.json",
        "node.json",
    ] {
        assert!(home.join(f).exists(), "{f} missing: {all:?}");
    }
}

/// The attack: another local user reads the node's files. Started with umask 022 (the
/// usual default), the home and `keystore/` were 0755 and the databases 0644, so anyone
/// on the machine could copy the history and the key file.
#[test]
fn a_fresh_home_is_owner_only_under_umask_022() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("fresh").join("home");
    let _up = Up::start(&home);
    assert_private(&home);
}

/// A home left 0755 by an older version (or made with `mkdir`) is tightened at start.
#[test]
fn an_open_home_is_tightened_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("keystore")).unwrap();
    for d in [&home, &home.join("keystore")] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let _up = Up::start(&home);
    assert_private(&home);
}
