//! Addresses, PeerIds and signatures.

use std::str::FromStr;

use flurry_identity::{
    Error, Identity, checksum_address, eip191_hash, keccak256, recover_message_address,
};

fn key(hex_secret: &str) -> Identity {
    Identity::from_secret_bytes(&hex::decode(hex_secret).unwrap()).unwrap()
}

fn small_key(n: u8) -> Identity {
    let mut secret = [0u8; 32];
    secret[31] = n;
    Identity::from_secret_bytes(&secret).unwrap()
}

#[test]
fn keccak256_is_ethereum_keccak_not_sha3() {
    // keccak256("") — NIST SHA3-256("") would be a7ffc6f8….
    assert_eq!(
        hex::encode(keccak256(b"")),
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    );
}

#[test]
fn addresses_of_small_keys_are_known() {
    assert_eq!(
        small_key(1).address(),
        "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    );
    assert_eq!(
        small_key(2).address(),
        "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"
    );
    assert_eq!(
        small_key(3).address(),
        "0x6813Eb9362372EEF6200f3b1dbC3f819671cBA69"
    );
}

#[test]
fn address_of_keystore_wiki_key_is_known() {
    let id = key("7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d");
    assert_eq!(
        hex::encode(id.address_bytes()),
        "008aeeda4d805471df9b2a5b0f38a0c3bcba786b"
    );
    assert_eq!(
        id.address().to_lowercase(),
        "0x008aeeda4d805471df9b2a5b0f38a0c3bcba786b"
    );
}

#[test]
fn eip55_spec_vectors() {
    for expected in [
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        "0xde709f2102306220921060314715629080e2fb77",
        "0x27b1fdb04752bbc536007a920d24acb045561c26",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ] {
        let bytes: [u8; 20] = hex::decode(expected[2..].to_lowercase())
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(checksum_address(&bytes), expected);
    }
}

#[test]
fn peer_id_is_libp2p_secp256k1_peer_id() {
    let id = small_key(1);
    let peer_id = id.peer_id();
    assert!(peer_id.starts_with("16Uiu2"), "{peer_id}");

    // Independent of our code path: identity multihash (0x00, length 37) of the protobuf
    // PublicKey { Type: Secp256k1 (2), Data: 33-byte compressed key }, and the key of
    // secret 1 is the generator G.
    let mut expected = vec![0x00, 0x25, 0x08, 0x02, 0x12, 0x21];
    expected.extend(
        hex::decode("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798").unwrap(),
    );
    let parsed = libp2p_identity::PeerId::from_str(&peer_id).unwrap();
    assert_eq!(parsed.to_bytes(), expected);
}

#[test]
fn peer_id_matches_libp2p_keypair() {
    for id in [
        small_key(1),
        small_key(2),
        key("7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"),
        Identity::generate().unwrap(),
    ] {
        let keypair = id.to_libp2p_keypair().unwrap();
        assert_eq!(id.peer_id(), keypair.public().to_peer_id().to_base58());
        assert!(id.peer_id().starts_with("16Uiu2"));
    }
    assert_ne!(small_key(1).peer_id(), small_key(2).peer_id());
}

#[test]
fn public_key_is_uncompressed_sec1() {
    let pk = small_key(1).public_key_uncompressed();
    assert_eq!(pk[0], 0x04);
    assert_eq!(
        hex::encode(&pk[1..33]),
        "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    );
}

#[test]
fn generate_gives_distinct_keys() {
    let a = Identity::generate().unwrap();
    let b = Identity::generate().unwrap();
    assert_ne!(a, b);
    assert_ne!(a.address(), b.address());
}

#[test]
fn invalid_secrets_are_rejected() {
    let order = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
    for bad in [
        vec![0u8; 32],
        vec![1u8; 31],
        vec![1u8; 33],
        hex::decode(order).unwrap(),
    ] {
        assert!(matches!(
            Identity::from_secret_bytes(&bad),
            Err(Error::InvalidKey)
        ));
    }
}

#[test]
fn debug_does_not_show_the_secret() {
    let id = key("7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d");
    let shown = format!("{id:?}");
    assert!(shown.contains(&id.address()), "{shown}");
    assert!(!shown.to_lowercase().contains("7a28b5ba"), "{shown}");
}

#[test]
fn eip191_hash_of_hello_world_is_known() {
    // web3.js `hashMessage("Hello World")`.
    assert_eq!(
        hex::encode(eip191_hash(b"Hello World")),
        "a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2"
    );
}

/// Hardhat's first development account signs "Hello World" with personal_sign.
const HARDHAT_0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const HARDHAT_0_ADDRESS: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const HELLO_SIG: &str = "65e72b1cf8e189569963750e10ccb88fe89389daeeb8b735277d59cd6885ee82\
                         3eb5a6982b540f185703492dab77b863a88ce01f27e21ade8b2879c10fc9e653\
                         1c";

#[test]
fn known_personal_sign_signature_recovers_its_signer() {
    let id = key(HARDHAT_0);
    assert_eq!(id.address(), HARDHAT_0_ADDRESS);
    let sig = hex::decode(HELLO_SIG).unwrap();
    assert_eq!(
        recover_message_address(b"Hello World", &sig).unwrap(),
        HARDHAT_0_ADDRESS
    );
    assert_ne!(
        recover_message_address(b"Hello World!", &sig).unwrap(),
        HARDHAT_0_ADDRESS
    );
}

#[test]
fn sign_message_is_deterministic_low_s_and_recoverable() {
    let id = key(HARDHAT_0);
    let sig = id.sign_message(b"Hello World");
    assert_eq!(sig, id.sign_message(b"Hello World"));
    assert!(sig[64] == 27 || sig[64] == 28);
    assert!(sig[32] < 0x80, "s must be in the lower half");
    assert_eq!(
        recover_message_address(b"Hello World", &sig).unwrap(),
        id.address()
    );
    // RFC 6979 gives the same signature as ethers/alloy.
    assert_eq!(hex::encode(sig), HELLO_SIG);

    let other = Identity::generate().unwrap();
    let sig = other.sign_message(b"flurry");
    assert_eq!(
        recover_message_address(b"flurry", &sig).unwrap(),
        other.address()
    );
}

#[test]
fn malformed_signatures_are_rejected() {
    let sig = key(HARDHAT_0).sign_message(b"x");
    assert!(matches!(
        recover_message_address(b"x", &sig[..64]),
        Err(Error::InvalidSignature(_))
    ));
    let mut bad_v = sig;
    bad_v[64] = 29;
    assert!(matches!(
        recover_message_address(b"x", &bad_v),
        Err(Error::InvalidSignature(_))
    ));
    assert!(matches!(
        recover_message_address(b"x", &[]),
        Err(Error::InvalidSignature(_))
    ));
}

#[test]
fn a_peer_id_gives_back_its_nodes_address() {
    for n in 1..=5u8 {
        let id = small_key(n);
        assert_eq!(
            flurry_identity::address_of_peer_id(&id.peer_id()).unwrap(),
            id.address()
        );
    }
    // Not a peer id, and an ed25519 key's peer id: refused.
    assert!(flurry_identity::address_of_peer_id("nope").is_err());
    let ed =
        libp2p_identity::PeerId::from_str("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
            .unwrap()
            .to_base58();
    assert!(flurry_identity::address_of_peer_id(&ed).is_err());
}
