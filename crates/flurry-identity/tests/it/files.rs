//! Saving and loading key files; password files.

use std::fs;
use std::path::Path;

use flurry_identity::{Error, Identity, Keystore, ScryptParams, read_password_file};

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn save_then_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("node.json");
    let id = Identity::generate().unwrap();
    Keystore::encrypt(&id, "pw", ScryptParams::LIGHT)
        .unwrap()
        .save(&path)
        .unwrap();
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    assert_eq!(Keystore::load(&path, "pw").unwrap(), id);
    assert!(matches!(
        Keystore::load(&path, "nope"),
        Err(Error::WrongPassphrase)
    ));
    // No temporary file is left behind.
    let names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["node.json"]);
}

#[test]
fn save_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.json");
    let first = Identity::generate().unwrap();
    let second = Identity::generate().unwrap();
    Keystore::encrypt(&first, "pw", ScryptParams::LIGHT)
        .unwrap()
        .save(&path)
        .unwrap();
    let before = fs::read(&path).unwrap();

    let err = Keystore::encrypt(&second, "pw", ScryptParams::LIGHT)
        .unwrap()
        .save(&path)
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("already exists"), "{message}");
    assert!(message.contains("refusing to overwrite"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");

    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(Keystore::load(&path, "pw").unwrap(), first);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn load_of_missing_or_garbage_file_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.json");
    assert!(matches!(
        Keystore::load(&missing, "pw"),
        Err(Error::Read { .. })
    ));
    let garbage = dir.path().join("garbage.json");
    fs::write(&garbage, "{").unwrap();
    let err = Keystore::load(&garbage, "pw").unwrap_err();
    assert!(matches!(err, Error::Malformed(_)), "{err}");
    assert!(err.to_string().contains("garbage.json"), "{err}");
}

#[test]
fn password_file_first_line_is_the_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw");
    fs::write(&path, "s3cret pass\r\nsecond line\n").unwrap();
    #[cfg(unix)]
    set_mode(&path, 0o600);
    assert_eq!(read_password_file(&path).unwrap().as_str(), "s3cret pass");

    fs::write(&path, "no newline").unwrap();
    assert_eq!(read_password_file(&path).unwrap().as_str(), "no newline");
}

#[cfg(unix)]
#[test]
fn password_file_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw");
    fs::write(&path, "s3cret\n").unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        set_mode(&path, mode);
        let err = read_password_file(&path).unwrap_err();
        assert!(matches!(err, Error::InsecurePasswordFile { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("chmod 600"), "{message}");
    }
    set_mode(&path, 0o400);
    assert_eq!(read_password_file(&path).unwrap().as_str(), "s3cret");
}

#[test]
fn missing_password_file_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        read_password_file(&dir.path().join("absent")),
        Err(Error::Read { .. })
    ));
}
