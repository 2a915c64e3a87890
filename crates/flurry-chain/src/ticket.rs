//! Probabilistic micropayment tickets: encoding, hashing, signing and the win rule,
//! exactly as `TicketBroker` checks them (docs/contracts.md has the byte layout and a
//! test vector).

use alloy::primitives::{Address, B256, Bytes, Signature, U256, U512, keccak256};
use alloy::sol_types::SolValue;
use flurry_identity::Identity;
use serde::{Deserialize, Serialize};

use crate::bindings::TicketBroker;

/// `n / 2` of secp256k1: a canonical signature has `s` at most this.
const HALF_N: U256 = U256::from_be_slice(&[
    0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0x5D, 0x57, 0x6E, 0x73, 0x57, 0xA4, 0x50, 0x1D, 0xDF, 0xE9, 0x2F, 0x46, 0x68, 0x1B, 0x20, 0xA0,
]);

/// Where tickets are redeemable: the chain and the broker contract. Part of every ticket
/// hash, so a ticket cannot be replayed on another chain or deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The `TicketBroker` address.
    pub broker: Address,
}

/// A ticket, field for field the contract's `Ticket` struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Who is paid when the ticket wins.
    pub recipient: Address,
    /// Whose escrow pays; must be the signer.
    pub sender: Address,
    /// Wei paid when the ticket wins.
    pub face_value: U256,
    /// Wins when `keccak256(sig ‖ recipientRand) < win_prob` (probability `win_prob / 2^256`).
    pub win_prob: U256,
    /// Distinguishes tickets that share the other fields.
    pub sender_nonce: U256,
    /// Unix seconds; redeemable while the block time is at most this.
    pub expiration_time: u64,
    /// `keccak256(recipientRand)`, committed by the recipient before the sender signs.
    pub recipient_rand_hash: B256,
    /// Opaque data bound by the signature (e.g. a job id).
    pub aux_data: Bytes,
}

/// A ticket with the sender's 65-byte signature (`r ‖ s ‖ v`, `v` ∈ {27, 28}, low `s`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTicket {
    /// The ticket.
    pub ticket: Ticket,
    /// EIP-191 signature of [`Ticket::hash`].
    pub sig: Bytes,
}

/// What a recipient advertises so that senders can pay it: the ticket terms plus the
/// hash of a fresh random value only the recipient knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketParams {
    /// Chain and broker the tickets must be for.
    pub domain: Domain,
    /// The recipient's address.
    pub recipient: Address,
    /// The sender these parameters were issued to: the recipient refuses tickets made
    /// from them by anyone else.
    pub sender: Address,
    /// Face value of each ticket, wei.
    pub face_value: U256,
    /// Win probability numerator over 2^256.
    pub win_prob: U256,
    /// Commitment to the recipient's random value.
    pub recipient_rand_hash: B256,
    /// Tickets must expire at exactly this time (unix seconds).
    pub expiration_time: u64,
}

impl TicketParams {
    /// Expected value of one ticket in wei (rounded down).
    pub fn ticket_value(&self) -> U256 {
        expected_value(self.face_value, self.win_prob)
    }
}

/// Why a signature is not acceptable to the broker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not 65 bytes.
    #[error("signature is {0} bytes, expected 65")]
    Length(usize),
    /// `v` is not 27 or 28.
    #[error("signature v = {0}, expected 27 or 28")]
    V(u8),
    /// `s` above `n/2` (the malleable twin of a valid signature).
    #[error("signature has a high s value (not canonical)")]
    HighS,
    /// No public key recovers from it.
    #[error("no key recovers from the signature")]
    Unrecoverable,
}

impl Ticket {
    /// The hash the sender signs: keccak256 of ten ABI words (chain id, broker, recipient,
    /// sender, face value, win probability, nonce, expiry, rand hash, keccak(auxData)).
    pub fn hash(&self, domain: &Domain) -> B256 {
        let words = (
            U256::from(domain.chain_id),
            domain.broker,
            self.recipient,
            self.sender,
            self.face_value,
            self.win_prob,
            self.sender_nonce,
            U256::from(self.expiration_time),
            self.recipient_rand_hash,
            keccak256(&self.aux_data),
        );
        keccak256(words.abi_encode())
    }

    /// Signs the ticket with `identity` (which must be `self.sender` for the broker to
    /// accept it).
    pub fn sign(self, identity: &Identity, domain: &Domain) -> SignedTicket {
        let sig = identity.sign_message(self.hash(domain).as_slice());
        SignedTicket {
            ticket: self,
            sig: Bytes::copy_from_slice(&sig),
        }
    }

    /// The contract's struct, for calls.
    pub fn to_sol(&self) -> TicketBroker::Ticket {
        TicketBroker::Ticket {
            recipient: self.recipient,
            sender: self.sender,
            faceValue: self.face_value,
            winProb: self.win_prob,
            senderNonce: self.sender_nonce,
            expirationTime: U256::from(self.expiration_time),
            recipientRandHash: self.recipient_rand_hash,
            auxData: self.aux_data.clone(),
        }
    }
}

impl SignedTicket {
    /// The address that signed the ticket, accepting only what the broker accepts.
    pub fn signer(&self, domain: &Domain) -> Result<Address, SignatureError> {
        recover_signer(self.ticket.hash(domain), &self.sig)
    }

    /// Whether the ticket wins once the recipient reveals `recipient_rand`.
    pub fn wins(&self, recipient_rand: U256) -> bool {
        is_winning(&self.sig, recipient_rand, self.ticket.win_prob)
    }
}

/// Recovers the signer of an EIP-191 signature over `hash`, with the broker's rules:
/// exactly 65 bytes, `v` ∈ {27, 28}, low `s`.
pub fn recover_signer(hash: B256, sig: &[u8]) -> Result<Address, SignatureError> {
    let raw: &[u8; 65] = sig
        .try_into()
        .map_err(|_| SignatureError::Length(sig.len()))?;
    let v = raw[64];
    if v != 27 && v != 28 {
        return Err(SignatureError::V(v));
    }
    let s = U256::from_be_slice(&raw[32..64]);
    if s > HALF_N {
        return Err(SignatureError::HighS);
    }
    let parsed = Signature::from_raw_array(raw).map_err(|_| SignatureError::Unrecoverable)?;
    parsed
        .recover_address_from_msg(hash.as_slice())
        .map_err(|_| SignatureError::Unrecoverable)
}

/// The win rule: `uint256(keccak256(sig ‖ rand)) < win_prob`.
pub fn is_winning(sig: &[u8], recipient_rand: U256, win_prob: U256) -> bool {
    let mut buf = Vec::with_capacity(sig.len() + 32);
    buf.extend_from_slice(sig);
    buf.extend_from_slice(&recipient_rand.to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(&buf).0) < win_prob
}

/// `keccak256(abi.encodePacked(uint256 rand))`, the commitment in a ticket.
pub fn rand_hash(recipient_rand: U256) -> B256 {
    keccak256(recipient_rand.to_be_bytes::<32>())
}

/// `face_value * win_prob / 2^256`, rounded down.
pub fn expected_value(face_value: U256, win_prob: U256) -> U256 {
    let product: U512 = face_value.widening_mul(win_prob);
    let high: U512 = product >> 256usize;
    U256::from_limbs_slice(&high.as_limbs()[..4])
}

/// The `win_prob` for a probability of `1 / n` (`n ≥ 1`): `floor((2^256 - 1) / n)`.
pub fn win_prob_one_in(n: u64) -> U256 {
    U256::MAX / U256::from(n.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    fn vector_ticket() -> (Ticket, Domain) {
        let domain = Domain {
            chain_id: 31337,
            broker: address!("1000000000000000000000000000000000000001"),
        };
        let ticket = Ticket {
            recipient: address!("2222222222222222222222222222222222222222"),
            sender: address!("1111111111111111111111111111111111111111"),
            face_value: U256::from(10u64).pow(U256::from(18)),
            win_prob: U256::from(1) << 255,
            sender_nonce: U256::from(7),
            expiration_time: 1_800_000_000,
            recipient_rand_hash: rand_hash(U256::from(42)),
            aux_data: Bytes::from_static(&[0xca, 0xfe]),
        };
        (ticket, domain)
    }

    fn alice() -> Identity {
        let mut secret = [0u8; 32];
        secret[29..].copy_from_slice(&[0x0a, 0x11, 0xce]);
        Identity::from_secret_bytes(&secret).unwrap()
    }

    /// The vector of docs/contracts.md, also checked on chain by the forge test
    /// `test_ticketHash_knownVector`.
    #[test]
    fn matches_the_contract_test_vector() {
        let (ticket, domain) = vector_ticket();
        assert_eq!(
            ticket.recipient_rand_hash.to_string(),
            "0xbeced09521047d05b8960b7e7bcc1d1292cf3e4b2a6b63f48335cbde5f7545d2"
        );
        assert_eq!(
            ticket.hash(&domain).to_string(),
            "0x12f26fb9774935f3f6d3f1b863cdf156851ce42b3fb8e494bb6abe6a110e9d4c"
        );
        let key = alice();
        assert_eq!(key.address(), "0xe05fcC23807536bEe418f142D19fa0d21BB0cfF7");
        let signed = ticket.sign(&key, &domain);
        assert_eq!(
            signed.sig.to_string(),
            "0x32ca49895a6e2c07082e58beae3f1a549d2633f41d752a891477545bac3653ec164f6c5f0de29bac65d75bb4c579e5d39863148ea3c20c891922a7fd77254a4e1c"
        );
        assert_eq!(
            keccak256([signed.sig.as_ref(), &U256::from(42).to_be_bytes::<32>()].concat())
                .to_string(),
            "0x78a61e348c45fd0ea88357f882dfbe126f92f437ec2f4067b5f72fbcdcd8a75a"
        );
        assert!(signed.wins(U256::from(42)));
        assert_eq!(
            signed.signer(&domain).unwrap(),
            key.address().parse::<Address>().unwrap()
        );
    }

    #[test]
    fn non_canonical_signatures_are_refused() {
        let (ticket, domain) = vector_ticket();
        let signed = ticket.sign(&alice(), &domain);
        let h = signed.ticket.hash(&domain);
        // The high-s twin: s' = n - s, v flipped. It recovers the same key in plain
        // ecrecover, which is why the broker (and we) must refuse it.
        let n = HALF_N * U256::from(2) + U256::from(1);
        let s = U256::from_be_slice(&signed.sig[32..64]);
        let mut twin = signed.sig.to_vec();
        twin[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        twin[64] = if twin[64] == 27 { 28 } else { 27 };
        assert_eq!(recover_signer(h, &twin), Err(SignatureError::HighS));
        let mut v01 = signed.sig.to_vec();
        v01[64] -= 27;
        assert_eq!(recover_signer(h, &v01), Err(SignatureError::V(v01[64])));
        assert_eq!(
            recover_signer(h, &signed.sig[..64]),
            Err(SignatureError::Length(64))
        );
        // Another hash recovers another (wrong) address, never the signer.
        let other = recover_signer(B256::repeat_byte(1), &signed.sig).unwrap();
        assert_ne!(other, alice().address().parse::<Address>().unwrap());
    }

    #[test]
    fn expected_value_and_probabilities() {
        let face = U256::from(10u64).pow(U256::from(16)); // 0.01 ETH
        assert_eq!(expected_value(face, U256::ZERO), U256::ZERO);
        // 1/100 of 0.01 ETH is 1e14 wei, less the rounding of win_prob_one_in.
        let ev = expected_value(face, win_prob_one_in(100));
        assert!(ev <= U256::from(10u64).pow(U256::from(14)));
        assert!(ev >= U256::from(10u64).pow(U256::from(14)) - U256::from(1));
        assert_eq!(
            expected_value(U256::from(1000), U256::from(1) << 255),
            U256::from(500)
        );
        assert_eq!(
            expected_value(U256::MAX, U256::MAX),
            U256::MAX - U256::from(1)
        );
        // The win rule is a strict comparison: win_prob 0 never wins.
        assert!(!is_winning(&[0u8; 65], U256::ZERO, U256::ZERO));
        assert!(is_winning(&[0u8; 65], U256::ZERO, U256::MAX));
    }
}
