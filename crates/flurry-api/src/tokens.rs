//! API bearer tokens. `flurry token create` makes one; the file keeps only BLAKE3
//! hashes, so reading it does not reveal a token.

use std::io::Write;
use std::path::{Path, PathBuf};

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

    /// Adds a new token, saves the file (atomically, mode 0600) and returns the token.
    pub fn create(path: &Path, name: &str) -> Result<String, TokenError> {
        let mut file = Self::load(path)?;
        let token = generate_token()?;
        file.tokens.push(TokenRecord {
            hash: hash_token(&token),
            name: name.to_string(),
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        });
        file.save(path)?;
        Ok(token)
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
        let h = hash_token(token);
        self.tokens.iter().any(|t| t.hash == h)
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
        let t1 = TokenFile::create(&p, "one").unwrap();
        let t2 = TokenFile::create(&p, "two").unwrap();
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
}
