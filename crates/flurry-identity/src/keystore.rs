//! Ethereum keystore v3 ("Web3 Secret Storage") files.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ctr::cipher::{KeyIvInit, StreamCipher};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

use crate::{Error, Identity, Result, random_bytes};

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Largest scrypt memory accepted on decrypt: 128·n·r bytes ≤ 1 GiB (geth's
/// standard parameters need 256 MiB).
const MAX_SCRYPT_NR: u64 = 1 << 23;
/// Largest scrypt `p` accepted on decrypt (geth uses 1; the wiki vector 8).
const MAX_SCRYPT_P: u32 = 16;
/// Largest PBKDF2 iteration count accepted on decrypt.
const MAX_PBKDF2_C: u32 = 1 << 24;

/// scrypt cost parameters for [`Keystore::encrypt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScryptParams {
    /// log₂ of the CPU/memory cost `n`.
    pub log_n: u8,
    /// Block size `r`.
    pub r: u32,
    /// Parallelism `p`.
    pub p: u32,
}

impl ScryptParams {
    /// geth's standard parameters (n = 2¹⁸, r = 8, p = 1): 256 MiB and about a second.
    pub const STANDARD: Self = Self {
        log_n: 18,
        r: 8,
        p: 1,
    };
    /// geth's "light" parameters (n = 2¹², r = 8, p = 6): fast, for tests only.
    pub const LIGHT: Self = Self {
        log_n: 12,
        r: 8,
        p: 6,
    };
}

impl Default for ScryptParams {
    fn default() -> Self {
        Self::STANDARD
    }
}

/// An Ethereum keystore v3 file, as geth and MetaMask write it.
///
/// Make one with [`Keystore::encrypt`] or [`Keystore::from_json`]; get the key back with
/// [`Keystore::unlock`]. Decryption accepts the `scrypt` and `pbkdf2` (hmac-sha256) KDFs
/// and the `aes-128-ctr` cipher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keystore {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(alias = "Crypto")]
    crypto: CryptoJson,
    #[serde(default)]
    id: String,
    version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CryptoJson {
    cipher: String,
    cipherparams: CipherParams,
    ciphertext: String,
    kdf: String,
    kdfparams: KdfParams,
    mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CipherParams {
    iv: String,
}

/// The union of scrypt's and PBKDF2's parameters; which are required depends on `kdf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KdfParams {
    dklen: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prf: Option<String>,
    salt: String,
}

impl Keystore {
    /// Encrypts `identity` under `passphrase` with scrypt (`params`) and AES-128-CTR,
    /// with a fresh random salt, IV and UUID v4.
    pub fn encrypt(identity: &Identity, passphrase: &str, params: ScryptParams) -> Result<Self> {
        let mut salt = [0u8; 32];
        let mut iv = [0u8; 16];
        let mut uuid = [0u8; 16];
        random_bytes(&mut salt)?;
        random_bytes(&mut iv)?;
        random_bytes(&mut uuid)?;

        let scrypt_params = scrypt::Params::new(params.log_n, params.r, params.p)
            .map_err(|e| Error::Unsupported(format!("scrypt parameters: {e}")))?;
        let mut derived = Zeroizing::new([0u8; 32]);
        scrypt::scrypt(
            passphrase.as_bytes(),
            &salt,
            &scrypt_params,
            &mut derived[..],
        )
        .map_err(|e| Error::Unsupported(format!("scrypt: {e}")))?;

        let mut ciphertext = identity.secret_bytes();
        aes_ctr(&derived[..16], &iv, &mut ciphertext[..])?;
        let mac = mac(&derived[..], &ciphertext[..]);

        Ok(Self {
            address: Some(hex::encode(identity.address_bytes())),
            crypto: CryptoJson {
                cipher: "aes-128-ctr".into(),
                cipherparams: CipherParams {
                    iv: hex::encode(iv),
                },
                ciphertext: hex::encode(&ciphertext[..]),
                kdf: "scrypt".into(),
                kdfparams: KdfParams {
                    dklen: 32,
                    n: Some(1u64 << params.log_n),
                    p: Some(params.p),
                    r: Some(params.r),
                    c: None,
                    prf: None,
                    salt: hex::encode(salt),
                },
                mac: hex::encode(mac),
            },
            id: uuid_v4(uuid),
            version: 3,
        })
    }

    /// Parses a keystore file's JSON (its fields are checked by [`Keystore::unlock`]).
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| Error::Malformed(e.to_string()))
    }

    /// The keystore as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Only strings and integers: serialisation cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses `json` and decrypts it with `passphrase`; see [`Keystore::unlock`].
    pub fn decrypt(json: &str, passphrase: &str) -> Result<Identity> {
        Self::from_json(json)?.unlock(passphrase)
    }

    /// Decrypts the key with `passphrase`.
    ///
    /// A wrong passphrase gives [`Error::WrongPassphrase`]; a file with a missing or bad field
    /// [`Error::Malformed`]; a KDF or cipher this crate does not implement, or KDF costs
    /// beyond its limits (1 GiB of scrypt memory), [`Error::Unsupported`]. If the file
    /// names an address, the key must belong to it ([`Error::AddressMismatch`]).
    pub fn unlock(&self, passphrase: &str) -> Result<Identity> {
        if self.version != 3 {
            return Err(Error::Unsupported(format!(
                "version {}, expected 3",
                self.version
            )));
        }
        let c = &self.crypto;
        if c.cipher != "aes-128-ctr" {
            return Err(Error::Unsupported(format!(
                "cipher {:?}, expected \"aes-128-ctr\"",
                c.cipher
            )));
        }
        let iv = decode_hex("cipherparams.iv", &c.cipherparams.iv)?;
        if iv.len() != 16 {
            return Err(Error::Malformed(format!(
                "cipherparams.iv is {} bytes, expected 16",
                iv.len()
            )));
        }
        let ciphertext = decode_hex("ciphertext", &c.ciphertext)?;
        if ciphertext.len() != 32 {
            return Err(Error::Malformed(format!(
                "ciphertext is {} bytes, expected 32 (a secp256k1 key)",
                ciphertext.len()
            )));
        }
        let stated_mac = decode_hex("mac", &c.mac)?;
        if stated_mac.len() != 32 {
            return Err(Error::Malformed(format!(
                "mac is {} bytes, expected 32",
                stated_mac.len()
            )));
        }

        let derived = derive_key(&c.kdf, &c.kdfparams, passphrase)?;
        if !constant_time_eq(&mac(&derived, &ciphertext), &stated_mac) {
            return Err(Error::WrongPassphrase);
        }

        let mut secret = Zeroizing::new(ciphertext);
        aes_ctr(&derived[..16], &iv, &mut secret)?;
        let identity = Identity::from_secret_bytes(&secret)?;

        if let Some(stated) = &self.address {
            let stated = stated
                .strip_prefix("0x")
                .unwrap_or(stated)
                .to_ascii_lowercase();
            let actual = hex::encode(identity.address_bytes());
            if stated != actual {
                return Err(Error::AddressMismatch { stated, actual });
            }
        }
        Ok(identity)
    }

    /// The file's UUID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The address the file names (lowercase hex without `0x`), if any.
    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }

    /// Writes the keystore to `path` atomically with mode 0600, creating missing parent
    /// directories (mode 0700).
    ///
    /// The JSON goes to a temporary file in the same directory, is flushed to disk, then
    /// linked into place, so a crash leaves either no key file or a complete one. An
    /// existing file at `path` is never replaced: [`Error::AlreadyExists`].
    pub fn save(&self, path: &Path) -> Result<()> {
        if fs::symlink_metadata(path).is_ok() {
            return Err(Error::AlreadyExists {
                path: path.to_path_buf(),
            });
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        create_dir_private(&dir).map_err(write_err(&dir))?;

        let file_name = path.file_name().ok_or_else(|| Error::Write {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        })?;
        let mut tag = [0u8; 8];
        random_bytes(&mut tag)?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".{}.tmp", hex::encode(tag)));
        let tmp = dir.join(tmp_name);

        let result = write_new_private(&tmp, self.to_json().as_bytes())
            .map_err(write_err(&tmp))
            .and_then(|()| link_no_clobber(&tmp, path));
        // The temporary name is gone after a rename; after a hard link or a failure it
        // still exists. Either way, nothing should be left under it.
        let _ = fs::remove_file(&tmp);
        result?;
        sync_dir(&dir).map_err(write_err(&dir))
    }

    /// Reads the keystore file at `path` without decrypting it.
    pub fn read(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text).map_err(|e| match e {
            Error::Malformed(m) => Error::Malformed(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Reads the keystore file at `path` and decrypts it with `passphrase`.
    pub fn load(path: &Path, passphrase: &str) -> Result<Identity> {
        Self::read(path)?.unlock(passphrase)
    }
}

/// Maps an I/O error on `path` to [`Error::Write`].
fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error::Write { path, source }
}

/// Derives the 32-byte key (the first 32 bytes of `dklen`) from the passphrase.
fn derive_key(kdf: &str, params: &KdfParams, passphrase: &str) -> Result<Zeroizing<Vec<u8>>> {
    let missing = |name: &str| Error::Malformed(format!("kdfparams.{name} is missing for {kdf}"));
    if !(32..=64).contains(&params.dklen) {
        return Err(Error::Unsupported(format!(
            "kdfparams.dklen {}, expected 32 to 64",
            params.dklen
        )));
    }
    let salt = decode_hex("kdfparams.salt", &params.salt)?;
    let mut derived = Zeroizing::new(vec![0u8; params.dklen as usize]);
    match kdf {
        "scrypt" => {
            let n = params.n.ok_or_else(|| missing("n"))?;
            let r = params.r.ok_or_else(|| missing("r"))?;
            let p = params.p.ok_or_else(|| missing("p"))?;
            if n < 2 || !n.is_power_of_two() {
                return Err(Error::Malformed(format!(
                    "kdfparams.n {n} is not a power of two above 1"
                )));
            }
            if r == 0 || p == 0 {
                return Err(Error::Malformed(
                    "kdfparams.r and .p must be positive".into(),
                ));
            }
            if n.saturating_mul(u64::from(r)) > MAX_SCRYPT_NR || p > MAX_SCRYPT_P {
                return Err(Error::Unsupported(format!(
                    "scrypt n={n} r={r} p={p} exceeds this crate's limits \
                     (128·n·r ≤ 1 GiB, p ≤ {MAX_SCRYPT_P})"
                )));
            }
            let log_n = u8::try_from(n.trailing_zeros()).unwrap_or(u8::MAX);
            let scrypt_params = scrypt::Params::new(log_n, r, p)
                .map_err(|e| Error::Unsupported(format!("scrypt parameters: {e}")))?;
            scrypt::scrypt(passphrase.as_bytes(), &salt, &scrypt_params, &mut derived)
                .map_err(|e| Error::Unsupported(format!("scrypt: {e}")))?;
        }
        "pbkdf2" => {
            let c = params.c.ok_or_else(|| missing("c"))?;
            let prf = params.prf.as_deref().ok_or_else(|| missing("prf"))?;
            if prf != "hmac-sha256" {
                return Err(Error::Unsupported(format!(
                    "pbkdf2 prf {prf:?}, expected \"hmac-sha256\""
                )));
            }
            if c == 0 {
                return Err(Error::Malformed("kdfparams.c must be positive".into()));
            }
            if c > MAX_PBKDF2_C {
                return Err(Error::Unsupported(format!(
                    "pbkdf2 c={c} exceeds this crate's limit ({MAX_PBKDF2_C})"
                )));
            }
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(passphrase.as_bytes(), &salt, c, &mut derived);
        }
        other => {
            return Err(Error::Unsupported(format!(
                "kdf {other:?}, expected \"scrypt\" or \"pbkdf2\""
            )));
        }
    }
    derived.truncate(32);
    Ok(derived)
}

/// keccak256(derived[16..32] ‖ ciphertext).
fn mac(derived: &[u8], ciphertext: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(&derived[16..32]);
    hasher.update(ciphertext);
    let mut out = [0u8; 32];
    out.copy_from_slice(&hasher.finalize());
    out
}

/// AES-128-CTR (big-endian 128-bit counter) in place; encryption and decryption alike.
fn aes_ctr(key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<()> {
    let mut cipher = Aes128Ctr::new_from_slices(key, iv)
        .map_err(|_| Error::Malformed("AES key or IV of the wrong length".into()))?;
    cipher.apply_keystream(data);
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode_hex(field: &str, text: &str) -> Result<Vec<u8>> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(text).map_err(|e| Error::Malformed(format!("{field} is not hex: {e}")))
}

/// RFC 4122 version 4 UUID text from 16 random bytes.
fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn create_dir_private(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates `path` (which must not exist) with mode 0600, writes `data` and syncs it.
fn write_new_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

/// Puts `tmp` at `path` unless something is already there.
///
/// A hard link fails atomically if `path` exists. Where the file system has no hard links,
/// fall back to a rename after checking again (a narrow race, on such file systems only).
fn link_no_clobber(tmp: &Path, path: &Path) -> Result<()> {
    let exists = || Error::AlreadyExists {
        path: path.to_path_buf(),
    };
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists()),
        Err(_) => {
            if fs::symlink_metadata(path).is_ok() {
                return Err(exists());
            }
            fs::rename(tmp, path).map_err(|source| Error::Write {
                path: path.to_path_buf(),
                source,
            })
        }
    }
}

/// Makes a new directory entry durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v4_has_version_and_variant() {
        let id = uuid_v4([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = uuid_v4([0; 16]);
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
