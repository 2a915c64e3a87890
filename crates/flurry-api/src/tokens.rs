//! API bearer tokens. `flurry token create` makes one; the file keeps only BLAKE3
//! hashes, so reading it does not reveal a token.
//!
//! Each token has scopes ([`Scope`]): `read` < `chat` < `admin`, each including the ones
//! before it. A record written before scopes existed (no `scopes` field) is `admin`, as
//! such tokens could do everything. A running node re-reads the file when it changes
//! ([`LiveTokens`]), so `flurry token revoke` takes effect without a restart.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Errors reading or writing the tokens file.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// File-system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not what this program writes.
    #[error("{}: not a tokens file ({message}); move it aside and run `flurry token create`", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Rng(String),
    /// `flurry token revoke` named no token, or several.
    #[error("{0}")]
    NoMatch(String),
}

/// What a token may do. Each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Reading routes: lists, search, status, models.
    Read,
    /// `read` plus generation: `/v1/chat/completions`, `/v1/completions`,
    /// `/v1/embeddings`, `/api/chat`, `/api/generate` and the conversations.
    Chat,
    /// Everything: ingest and forget, wallet and tickets, the circle, the network.
    Admin,
}

impl Scope {
    /// The name used in the tokens file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Chat => "chat",
            Scope::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Scope::Read),
            "chat" => Ok(Scope::Chat),
            "admin" => Ok(Scope::Admin),
            other => Err(format!("unknown scope {other:?}: use read, chat or admin")),
        }
    }
}

/// Records written before scopes existed could do everything.
fn legacy_scopes() -> Vec<Scope> {
    vec![Scope::Admin]
}

/// One stored token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// BLAKE3 of the token, hex.
    pub hash: String,
    /// Label given at creation.
    pub name: String,
    /// Unix seconds.
    pub created_at: u64,
    /// What the token may do; missing in files written before scopes = `admin`.
    #[serde(default = "legacy_scopes")]
    pub scopes: Vec<Scope>,
}

impl TokenRecord {
    /// The highest scope of this token (`read` when it has none).
    pub fn scope(&self) -> Scope {
        self.scopes.iter().copied().max().unwrap_or(Scope::Read)
    }

    /// A short public id: the first 8 hex digits of the hash (`flurry token list`).
    pub fn id(&self) -> &str {
        &self.hash[..self.hash.len().min(8)]
    }
}

/// The tokens file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenFile {
    /// Tokens, oldest first.
    pub tokens: Vec<TokenRecord>,
}

/// BLAKE3 of a token, hex.
pub fn hash_token(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// A new random token: `flurry_` and 32 hex digits (128 bits).
pub fn generate_token() -> Result<String, TokenError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| TokenError::Rng(e.to_string()))?;
    Ok(format!("flurry_{}", hex::encode(b)))
}

impl TokenFile {
    /// Reads the file; a missing file has no tokens.
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        match std::fs::read_to_string(path) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| TokenError::Malformed {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(TokenError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Adds a new token with `scopes`, saves the file (atomically, mode 0600) and
    /// returns the token.
    pub fn create(path: &Path, name: &str, scopes: &[Scope]) -> Result<String, TokenError> {
        let mut file = Self::load(path)?;
        let token = generate_token()?;
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            scopes.push(Scope::Chat);
        }
        file.tokens.push(TokenRecord {
            hash: hash_token(&token),
            name: name.to_string(),
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            scopes,
        });
        file.save(path)?;
        Ok(token)
    }

    /// Removes the token whose name is `key`, whose id (hash prefix, at least 6 hex
    /// digits) starts with `key`, or that is `key` itself; saves and returns it. Several
    /// matches are refused, so one command never revokes more than it says.
    pub fn revoke(path: &Path, key: &str) -> Result<TokenRecord, TokenError> {
        let mut file = Self::load(path)?;
        let key = key.trim();
        let whole = hash_token(key);
        let hit = |t: &TokenRecord| {
            t.name == key
                || t.hash == whole
                || (key.len() >= 6
                    && key.bytes().all(|b| b.is_ascii_hexdigit())
                    && t.hash.starts_with(&key.to_ascii_lowercase()))
        };
        let matches: Vec<usize> = (0..file.tokens.len())
            .filter(|&i| hit(&file.tokens[i]))
            .collect();
        match matches.as_slice() {
            [] => Err(TokenError::NoMatch(format!(
                "no token is named {key:?} or has an id starting with it: see `flurry token list`"
            ))),
            [i] => {
                let gone = file.tokens.remove(*i);
                file.save(path)?;
                Ok(gone)
            }
            many => Err(TokenError::NoMatch(format!(
                "{} tokens match {key:?}: revoke one at a time by its id (`flurry token list`)",
                many.len()
            ))),
        }
    }

    fn save(&self, path: &Path) -> Result<(), TokenError> {
        let io = |source| TokenError::Io {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_string_pretty(self).unwrap_or_default();
        write_private(path, json.as_bytes()).map_err(io)
    }

    /// Whether `token` is one of these.
    pub fn accepts(&self, token: &str) -> bool {
        self.find(token).is_some()
    }

    /// The record of `token`, if it is one of these.
    pub fn find(&self, token: &str) -> Option<&TokenRecord> {
        let h = hash_token(token);
        self.tokens.iter().find(|t| t.hash == h)
    }
}

/// What identifies one version of the file: every save renames a new inode into place.
type Stamp = (SystemTime, u64, u64);

/// The tokens file as a running node sees it: re-read whenever its modification time
/// size or inode changes (one `stat` per request), so a revoked token stops working at once.
#[derive(Debug, Default)]
pub struct LiveTokens {
    path: Option<PathBuf>,
    cache: Mutex<Option<(Option<Stamp>, TokenFile)>>,
}

impl LiveTokens {
    /// Follows the tokens file at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path: Some(path),
            cache: Mutex::new(None),
        }
    }

    /// The scope of `token` in the file as it is now; `None` = not a token (or the file
    /// cannot be read: then no file token is accepted, which fails closed).
    pub fn scope_of(&self, token: &str) -> Option<Scope> {
        let path = self.path.as_ref()?;
        let stamp = std::fs::metadata(path).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                m.len(),
                m.ino(),
            )
        });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = matches!(&*cache, Some((s, _)) if *s == stamp);
        if !fresh {
            let file = match TokenFile::load(path) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "the tokens file cannot be read: no file token is accepted");
                    TokenFile::default()
                }
            };
            *cache = Some((stamp, file));
        }
        cache
            .as_ref()
            .and_then(|(_, f)| f.find(token))
            .map(TokenRecord::scope)
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename) with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_accept_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens.json");
        let t1 = TokenFile::create(&p, "one", &[]).unwrap();
        let t2 = TokenFile::create(&p, "two", &[Scope::Admin]).unwrap();
        assert_ne!(t1, t2);
        assert!(t1.starts_with("flurry_") && t1.len() == 39);
        let f = TokenFile::load(&p).unwrap();
        assert!(f.accepts(&t1) && f.accepts(&t2));
        assert!(!f.accepts("flurry_00000000000000000000000000000000"));
        let raw = std::fs::read_to_string(&p).unwrap();
        assert!(!raw.contains(&t1[7..]), "the file must not hold the token");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn malformed_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens.json");
        std::fs::write(&p, "nope").unwrap();
        let e = TokenFile::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("tokens.json") && e.contains("flurry token create"),
            "{e}"
        );
    }

    /// Attack: a token stored before scopes existed must keep working (as admin), and a
    /// token revoked with `flurry token revoke` must stop working in a running node
    /// without a restart.
    #[test]
    fn scopes_legacy_and_live_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens.json");
        let legacy = generate_token().unwrap();
        std::fs::write(
            &p,
            format!(
                r#"{{"tokens":[{{"hash":"{}","name":"old","created_at":1}}]}}"#,
                hash_token(&legacy)
            ),
        )
        .unwrap();
        let live = LiveTokens::new(p.clone());
        assert_eq!(live.scope_of(&legacy), Some(Scope::Admin));
        let chat = TokenFile::create(&p, "bot", &[]).unwrap();
        assert_eq!(
            live.scope_of(&chat),
            Some(Scope::Chat),
            "default scope is chat"
        );
        let read = TokenFile::create(&p, "dash", &[Scope::Read]).unwrap();
        assert_eq!(live.scope_of(&read), Some(Scope::Read));
        let gone = TokenFile::revoke(&p, "bot").unwrap();
        assert_eq!(gone.name, "bot");
        assert_eq!(live.scope_of(&chat), None, "revoked without restart");
        let id = TokenFile::load(&p)
            .unwrap()
            .find(&read)
            .unwrap()
            .id()
            .to_string();
        TokenFile::revoke(&p, &id).unwrap();
        assert_eq!(live.scope_of(&read), None);
        assert!(TokenFile::revoke(&p, "nobody").is_err());
        assert_eq!(live.scope_of(&legacy), Some(Scope::Admin));
    }
}
