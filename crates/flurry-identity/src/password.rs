//! Passphrases from password files.

use std::path::Path;

use zeroize::Zeroizing;

use crate::{Error, Result};

/// Reads a passphrase from `path`: its first line, without the line ending (as geth's
/// `--password` does). The rest of the file is ignored; an empty file is an empty passphrase.
///
/// On Unix the file must not be accessible by group or others (`mode & 0o077 == 0`,
/// e.g. `chmod 600`), else [`Error::InsecurePasswordFile`]. The check follows symlinks,
/// so it applies to the file that is actually read.
pub fn read_password_file(path: &Path) -> Result<Zeroizing<String>> {
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(read_err)?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o077 != 0 {
            return Err(Error::InsecurePasswordFile {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(read_err)?);
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::PasswordNotUtf8 {
        path: path.to_path_buf(),
    })?;
    let line = text.split('\n').next().unwrap_or_default();
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(Zeroizing::new(line.to_owned()))
}
