//! Creating and unlocking the node key.

use std::io::IsTerminal;
use std::path::PathBuf;

use flurry_config::Paths;
use flurry_identity::{Identity, Keystore, ScryptParams};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Where a passphrase comes from, in order of preference.
#[derive(Debug, Clone, Default)]
pub struct PassphraseOptions {
    /// `--password-file`.
    pub password_file: Option<PathBuf>,
    /// `FLURRY_PASSPHRASE`.
    pub env: Option<String>,
    /// Whether a terminal prompt may be shown.
    pub interactive: bool,
}

impl PassphraseOptions {
    /// From a `--password-file` flag and the environment; prompts only on a terminal.
    pub fn from_env(password_file: Option<PathBuf>) -> Self {
        Self {
            password_file,
            env: flurry_config::passphrase_from_env(),
            interactive: std::io::stdin().is_terminal(),
        }
    }

    fn given(&self) -> Result<Option<Zeroizing<String>>> {
        if let Some(p) = &self.password_file {
            return Ok(Some(flurry_identity::read_password_file(p)?));
        }
        Ok(self.env.clone().map(Zeroizing::new))
    }
}

/// How the key was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// Read from the keystore.
    Unlocked,
    /// Created now with a given or prompted passphrase.
    Created,
    /// Created now with a generated passphrase saved in this file.
    CreatedWithGeneratedPassword(PathBuf),
}

fn prompt(confirm: bool) -> Result<Zeroizing<String>> {
    let p = Zeroizing::new(
        rpassword::prompt_password("Passphrase for the node key: ").map_err(Error::Prompt)?,
    );
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("Repeat the passphrase: ").map_err(Error::Prompt)?,
        );
        if *again != *p {
            return Err(Error::PassphraseMismatch);
        }
    }
    Ok(p)
}

fn create(paths: &Paths, pass: &str, params: ScryptParams) -> Result<Identity> {
    let id = Identity::generate()?;
    Keystore::encrypt(&id, pass, params)?.save(&paths.keystore_file())?;
    Ok(id)
}

/// `flurry init`: creates the key, refusing to replace one. The passphrase comes from
/// the password file, `FLURRY_PASSPHRASE`, or a prompt (asked twice).
pub fn init(paths: &Paths, opts: &PassphraseOptions, params: ScryptParams) -> Result<Identity> {
    let file = paths.keystore_file();
    if file.exists() {
        return Err(Error::KeyExists { path: file });
    }
    let pass = match opts.given()? {
        Some(p) => p,
        None if opts.interactive => prompt(true)?,
        None => return Err(Error::NoPassphrase),
    };
    create(paths, &pass, params)
}

/// Unlocks the node key for `flurry up`, creating it first when there is none: with the
/// given passphrase, or else a generated one saved (mode 0600) next to the key.
pub fn unlock_or_create(
    paths: &Paths,
    opts: &PassphraseOptions,
    params: ScryptParams,
) -> Result<(Identity, KeyOrigin)> {
    let file = paths.keystore_file();
    let generated = paths.generated_password_file();
    if !file.exists() {
        if let Some(p) = opts.given()? {
            return Ok((create(paths, &p, params)?, KeyOrigin::Created));
        }
        let pass = random_passphrase()?;
        flurry_api::tokens::write_private(&generated, format!("{}\n", *pass).as_bytes()).map_err(
            |source| Error::Io {
                path: generated.clone(),
                source,
            },
        )?;
        let id = create(paths, &pass, params)?;
        return Ok((id, KeyOrigin::CreatedWithGeneratedPassword(generated)));
    }
    let pass = match opts.given()? {
        Some(p) => p,
        None if generated.exists() => flurry_identity::read_password_file(&generated)?,
        None if opts.interactive => prompt(false)?,
        None => return Err(Error::NoPassphrase),
    };
    Ok((Keystore::load(&file, &pass)?, KeyOrigin::Unlocked))
}

/// Reads the public identity (PeerId and address) without the passphrase when possible:
/// the keystore holds the address but not the public key, so the key is unlocked.
pub fn unlock(paths: &Paths, opts: &PassphraseOptions) -> Result<Identity> {
    let file = paths.keystore_file();
    if !file.exists() {
        return Err(Error::NoKey { path: file });
    }
    let generated = paths.generated_password_file();
    let pass = match opts.given()? {
        Some(p) => p,
        None if generated.exists() => flurry_identity::read_password_file(&generated)?,
        None if opts.interactive => prompt(false)?,
        None => return Err(Error::NoPassphrase),
    };
    Ok(Keystore::load(&file, &pass)?)
}

fn random_passphrase() -> Result<Zeroizing<String>> {
    let mut b = Zeroizing::new([0u8; 24]);
    getrandom::fill(&mut *b).map_err(|e| Error::Rng(e.to_string()))?;
    Ok(Zeroizing::new(hex::encode(*b)))
}
