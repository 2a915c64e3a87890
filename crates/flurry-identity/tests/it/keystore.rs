//! The keystore v3 format: the Web3 Secret Storage Definition's test vectors, roundtrips,
//! and rejection of wrong passphrases and bad files.

use flurry_identity::{Error, Identity, Keystore, ScryptParams};
use serde_json::Value;

const PASSWORD: &str = "testpassword";
const SECRET: &str = "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d";

/// The scrypt vector of the Web3 Secret Storage Definition (n = 262144, r = 1, p = 8).
const WIKI_SCRYPT: &str = r#"{
    "crypto" : {
        "cipher" : "aes-128-ctr",
        "cipherparams" : { "iv" : "83dbcc02d8ccb40e466191a123791e0e" },
        "ciphertext" : "d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c",
        "kdf" : "scrypt",
        "kdfparams" : {
            "dklen" : 32,
            "n" : 262144,
            "r" : 1,
            "p" : 8,
            "salt" : "ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19"
        },
        "mac" : "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097"
    },
    "id" : "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version" : 3
}"#;

/// The PBKDF2-SHA-256 vector of the Web3 Secret Storage Definition (c = 262144).
const WIKI_PBKDF2: &str = r#"{
    "crypto" : {
        "cipher" : "aes-128-ctr",
        "cipherparams" : { "iv" : "6087dab2f9fdbbfaddc31a909735c1e6" },
        "ciphertext" : "5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46",
        "kdf" : "pbkdf2",
        "kdfparams" : {
            "c" : 262144,
            "dklen" : 32,
            "prf" : "hmac-sha256",
            "salt" : "ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd"
        },
        "mac" : "517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2"
    },
    "id" : "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version" : 3
}"#;

fn wiki_identity() -> Identity {
    Identity::from_secret_bytes(&hex::decode(SECRET).unwrap()).unwrap()
}

/// Edits a JSON document and returns the text.
fn edit(json: &str, f: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(json).unwrap();
    f(&mut v);
    v.to_string()
}

#[test]
fn wiki_scrypt_vector_decrypts_to_its_key() {
    let id = Keystore::decrypt(WIKI_SCRYPT, PASSWORD).unwrap();
    assert_eq!(id, wiki_identity());
    assert_eq!(
        hex::encode(id.address_bytes()),
        "008aeeda4d805471df9b2a5b0f38a0c3bcba786b"
    );
}

#[test]
fn wiki_pbkdf2_vector_decrypts_to_its_key() {
    let id = Keystore::decrypt(WIKI_PBKDF2, PASSWORD).unwrap();
    assert_eq!(id, wiki_identity());
}

#[test]
fn wiki_vector_with_wrong_passphrase_is_wrong_passphrase() {
    let err = Keystore::decrypt(WIKI_PBKDF2, "testpassword!").unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase), "{err}");
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
}

#[test]
fn roundtrip_with_light_params() {
    let id = Identity::generate().unwrap();
    let ks = Keystore::encrypt(&id, "correct horse", ScryptParams::LIGHT).unwrap();
    let json = ks.to_json();
    let back = Keystore::decrypt(&json, "correct horse").unwrap();
    assert_eq!(back, id);
    assert_eq!(back.peer_id(), id.peer_id());
    assert_eq!(Keystore::from_json(&json).unwrap(), ks);
}

#[test]
fn encrypted_json_has_the_v3_shape() {
    let id = wiki_identity();
    let json = Keystore::encrypt(&id, PASSWORD, ScryptParams::LIGHT)
        .unwrap()
        .to_json();
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["version"], 3);
    assert_eq!(v["address"], "008aeeda4d805471df9b2a5b0f38a0c3bcba786b");
    let uuid = v["id"].as_str().unwrap();
    assert_eq!(uuid.len(), 36, "{uuid}");
    assert_eq!(uuid.as_bytes()[14], b'4', "version 4: {uuid}");
    assert!(
        matches!(uuid.as_bytes()[19], b'8' | b'9' | b'a' | b'b'),
        "{uuid}"
    );
    let c = &v["crypto"];
    assert_eq!(c["cipher"], "aes-128-ctr");
    assert_eq!(c["kdf"], "scrypt");
    assert_eq!(c["kdfparams"]["dklen"], 32);
    assert_eq!(c["kdfparams"]["n"], 4096);
    assert_eq!(c["kdfparams"]["r"], 8);
    assert_eq!(c["kdfparams"]["p"], 6);
    for (field, len) in [
        (&c["cipherparams"]["iv"], 32),
        (&c["ciphertext"], 64),
        (&c["kdfparams"]["salt"], 64),
        (&c["mac"], 64),
    ] {
        let s = field.as_str().unwrap();
        assert_eq!(s.len(), len, "{s}");
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
    // The secret is not in the file in the clear.
    assert!(!json.contains(SECRET));
}

#[test]
fn two_encryptions_differ() {
    let id = wiki_identity();
    let a = Keystore::encrypt(&id, PASSWORD, ScryptParams::LIGHT).unwrap();
    let b = Keystore::encrypt(&id, PASSWORD, ScryptParams::LIGHT).unwrap();
    assert_ne!(a.id(), b.id());
    assert_ne!(a.to_json(), b.to_json());
}

#[test]
fn default_params_are_geths_standard() {
    assert_eq!(ScryptParams::default(), ScryptParams::STANDARD);
    assert_eq!(
        ScryptParams::STANDARD,
        ScryptParams {
            log_n: 18,
            r: 8,
            p: 1
        }
    );
    assert_eq!(ScryptParams::LIGHT.log_n, 12);
}

#[test]
fn wrong_passphrase_is_a_specific_error() {
    let ks = Keystore::encrypt(&wiki_identity(), "right", ScryptParams::LIGHT).unwrap();
    assert!(matches!(ks.unlock("wrong"), Err(Error::WrongPassphrase)));
    assert!(matches!(ks.unlock(""), Err(Error::WrongPassphrase)));
    assert!(ks.unlock("right").is_ok());
}

#[test]
fn tampered_ciphertext_fails_the_mac() {
    let json = Keystore::encrypt(&wiki_identity(), "pw", ScryptParams::LIGHT)
        .unwrap()
        .to_json();
    let tampered = edit(&json, |v| {
        let ct = v["crypto"]["ciphertext"].as_str().unwrap();
        let flipped = if ct.starts_with('0') { "1" } else { "0" };
        v["crypto"]["ciphertext"] = format!("{flipped}{}", &ct[1..]).into();
    });
    assert!(matches!(
        Keystore::decrypt(&tampered, "pw"),
        Err(Error::WrongPassphrase)
    ));
}

#[test]
fn address_field_must_match_the_key() {
    let json = Keystore::encrypt(&wiki_identity(), "pw", ScryptParams::LIGHT)
        .unwrap()
        .to_json();
    let other = edit(&json, |v| {
        v["address"] = "7e5f4552091a69125d5dfcb7b8c2659029395bdf".into();
    });
    assert!(matches!(
        Keystore::decrypt(&other, "pw"),
        Err(Error::AddressMismatch { .. })
    ));
}

#[test]
fn geth_style_capitalised_crypto_is_accepted() {
    let json = Keystore::encrypt(&wiki_identity(), "pw", ScryptParams::LIGHT)
        .unwrap()
        .to_json();
    let geth = edit(&json, |v| {
        let crypto = v.as_object_mut().unwrap().remove("crypto").unwrap();
        v["Crypto"] = crypto;
        v["address"] = "0x008AEEDA4D805471DF9B2A5B0F38A0C3BCBA786B".into();
    });
    assert_eq!(Keystore::decrypt(&geth, "pw").unwrap(), wiki_identity());
}

#[test]
fn malformed_and_unsupported_files_are_rejected() {
    let json = Keystore::encrypt(&wiki_identity(), "pw", ScryptParams::LIGHT)
        .unwrap()
        .to_json();
    let malformed = [
        "not json".to_string(),
        "{}".to_string(),
        edit(&json, |v| {
            v.as_object_mut().unwrap().remove("crypto");
        }),
        edit(&json, |v| v["crypto"]["cipherparams"]["iv"] = "zz".into()),
        edit(&json, |v| v["crypto"]["cipherparams"]["iv"] = "00".into()),
        edit(&json, |v| v["crypto"]["ciphertext"] = "00ff".into()),
        edit(&json, |v| v["crypto"]["mac"] = "abc".into()),
        edit(&json, |v| v["crypto"]["kdfparams"]["n"] = 1000.into()),
        edit(&json, |v| {
            v["crypto"]["kdfparams"]
                .as_object_mut()
                .unwrap()
                .remove("r");
        }),
    ];
    for text in &malformed {
        let err = Keystore::decrypt(text, "pw").unwrap_err();
        assert!(matches!(err, Error::Malformed(_)), "{text}: {err}");
    }
    let unsupported = [
        edit(&json, |v| v["version"] = 2.into()),
        edit(&json, |v| v["crypto"]["cipher"] = "aes-128-cbc".into()),
        edit(&json, |v| v["crypto"]["kdf"] = "argon2".into()),
        // 128 · 2^30 · 8 bytes of scrypt memory: refused before any allocation.
        edit(&json, |v| {
            v["crypto"]["kdfparams"]["n"] = (1u64 << 30).into()
        }),
        edit(&json, |v| v["crypto"]["kdfparams"]["dklen"] = 16.into()),
    ];
    for text in &unsupported {
        let err = Keystore::decrypt(text, "pw").unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{text}: {err}");
    }
    let bad_prf = edit(WIKI_PBKDF2, |v| {
        v["crypto"]["kdfparams"]["prf"] = "hmac-sha512".into();
    });
    assert!(matches!(
        Keystore::decrypt(&bad_prf, PASSWORD),
        Err(Error::Unsupported(_))
    ));
}
