//! Offers: what a seller publishes, signed by its node key, and the checks a buyer makes
//! before believing one.

use serde::{Deserialize, Serialize};

use crate::Refused;

/// The offer format this node writes and reads.
pub const OFFER_VERSION: u32 = 1;
/// Largest offer (JSON of [`SignedOffer`]) published or accepted.
pub const MAX_OFFER_BYTES: usize = 2048;
/// An offer expires at most this long after it is read (sellers re-sign well before).
pub const MAX_LIFETIME_SECS: u64 = 3600;
/// Concurrent jobs one offer may announce.
pub const MAX_JOBS: u32 = 1024;
/// Domain separation of the signed bytes (an offer signature is never a valid signature
/// of anything else the node signs).
const DOMAIN: &[u8] = b"flurry market offer v1\n";

/// One model for sale by one node, at one price, until `expires`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// [`OFFER_VERSION`].
    pub v: u32,
    /// The seller's libp2p peer id.
    pub peer_id: String,
    /// The seller's Ethereum address (the same key as `peer_id`), EIP-55.
    pub address: String,
    /// The model's name on the seller.
    pub model: String,
    /// The model's ModelId: BLAKE3 root of the GGUF file, 64 hex digits.
    pub model_id: String,
    /// The engine's determinism profile (outputs are bit-identical across nodes with the
    /// same profile and model).
    pub profile: String,
    /// Price of generated tokens, wei per million tokens (decimal).
    pub price_wei_per_mtok: String,
    /// Price of prompt tokens, wei per million tokens (decimal).
    pub prompt_price_wei_per_mtok: String,
    /// Jobs the seller runs at once, at most.
    pub max_jobs: u32,
    /// Unix seconds after which the offer is void.
    pub expires: u64,
    /// Sequence number (unix milliseconds when signed): a later offer replaces an
    /// earlier one of the same seller and model.
    pub seq: u64,
}

/// An offer and its EIP-191 signature by the seller's node key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedOffer {
    /// The offer.
    pub offer: Offer,
    /// `0x` and 65 bytes `r ‖ s ‖ v` in hex.
    pub signature: String,
}

fn signed_bytes(offer: &Offer) -> Vec<u8> {
    let mut out = DOMAIN.to_vec();
    // Field order is the struct's: the encoding is canonical for a given offer.
    out.extend_from_slice(&serde_json::to_vec(offer).unwrap_or_default());
    out
}

impl Offer {
    /// Signs the offer with the node key (which must be the offer's `peer_id`).
    pub fn sign(self, identity: &flurry_identity::Identity) -> SignedOffer {
        let sig = identity.sign_message(&signed_bytes(&self));
        SignedOffer {
            offer: self,
            signature: format!("0x{}", hex::encode(sig)),
        }
    }

    /// The price of generated tokens in wei per million tokens.
    pub fn price(&self) -> u128 {
        self.price_wei_per_mtok.parse().unwrap_or(u128::MAX)
    }

    /// The price of prompt tokens in wei per million tokens.
    pub fn prompt_price(&self) -> u128 {
        self.prompt_price_wei_per_mtok.parse().unwrap_or(u128::MAX)
    }
}

fn refuse(why: impl Into<String>) -> Refused {
    Refused(why.into())
}

fn check_price(field: &str, value: &str) -> Result<(), Refused> {
    if value.is_empty() || value.len() > 39 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse(format!(
            "{field} must be a whole number of wei per million tokens"
        )));
    }
    value
        .parse::<u128>()
        .map(|_| ())
        .map_err(|_| refuse(format!("{field} is out of range")))
}

impl SignedOffer {
    /// Encodes the offer for gossip; refuses one over [`MAX_OFFER_BYTES`].
    ///
    /// # Errors
    /// When the encoding is too large.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Refused> {
        let bytes = serde_json::to_vec(self).map_err(|e| refuse(e.to_string()))?;
        if bytes.len() > MAX_OFFER_BYTES {
            return Err(refuse(format!(
                "an offer of {} bytes is over the {MAX_OFFER_BYTES}-byte limit",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// Decodes and checks an offer received from `source` (the gossip author) at unix
    /// time `now`: size, format, version, fields, expiry, that `source` is the seller,
    /// that the address is the peer id's key, and the signature.
    ///
    /// # Errors
    /// Why the offer is not believed.
    pub fn open(bytes: &[u8], source: Option<&str>, now: u64) -> Result<Self, Refused> {
        let signed = Self::open_untimed(bytes, source)?;
        signed.timely(now)?;
        Ok(signed)
    }

    /// [`SignedOffer::open`] without the expiry checks: what is wrong with the offer
    /// itself, whatever the reader's clock says (gossip validation penalises the
    /// publisher only for that).
    ///
    /// # Errors
    /// Why the offer is not believed.
    pub fn open_untimed(bytes: &[u8], source: Option<&str>) -> Result<Self, Refused> {
        if bytes.len() > MAX_OFFER_BYTES {
            return Err(refuse(format!(
                "an offer of {} bytes is over the {MAX_OFFER_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let signed: SignedOffer =
            serde_json::from_slice(bytes).map_err(|e| refuse(format!("not an offer: {e}")))?;
        signed.check_untimed(source)?;
        Ok(signed)
    }

    /// Whether the offer is live at unix time `now` and expires at most
    /// [`MAX_LIFETIME_SECS`] ahead.
    ///
    /// # Errors
    /// Expired, or too far ahead.
    pub fn timely(&self, now: u64) -> Result<(), Refused> {
        let o = &self.offer;
        if o.expires <= now {
            return Err(refuse("the offer has expired"));
        }
        if o.expires > now + MAX_LIFETIME_SECS {
            return Err(refuse(format!(
                "the offer runs {} s ahead; at most {MAX_LIFETIME_SECS} s are accepted",
                o.expires - now
            )));
        }
        Ok(())
    }

    /// The checks of [`SignedOffer::open`] on a decoded offer.
    ///
    /// # Errors
    /// Why the offer is not believed.
    pub fn check(&self, source: Option<&str>, now: u64) -> Result<(), Refused> {
        self.check_untimed(source)?;
        self.timely(now)
    }

    fn check_untimed(&self, source: Option<&str>) -> Result<(), Refused> {
        let o = &self.offer;
        if o.v != OFFER_VERSION {
            return Err(refuse(format!(
                "offer version {} (this node reads {OFFER_VERSION})",
                o.v
            )));
        }
        if let Some(s) = source
            && s != o.peer_id
        {
            return Err(refuse(format!(
                "an offer of {} published by {s}: sellers publish their own offers",
                o.peer_id
            )));
        }
        let owner = flurry_identity::address_of_peer_id(&o.peer_id)
            .map_err(|e| refuse(format!("seller: {e}")))?;
        if !owner.eq_ignore_ascii_case(&o.address) {
            return Err(refuse(format!(
                "the address {} is not the key of peer {}",
                o.address, o.peer_id
            )));
        }
        if o.model.is_empty() || o.model.len() > 128 || o.model.chars().any(char::is_control) {
            return Err(refuse(
                "the model name must have 1 to 128 printable characters",
            ));
        }
        if o.model_id.len() != 64
            || !o
                .model_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(refuse("the ModelId must be 64 lowercase hex digits"));
        }
        if o.profile.is_empty()
            || o.profile.len() > 64
            || !o.profile.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(refuse(
                "the determinism profile must have 1 to 64 visible ASCII characters",
            ));
        }
        check_price("price_wei_per_mtok", &o.price_wei_per_mtok)?;
        check_price("prompt_price_wei_per_mtok", &o.prompt_price_wei_per_mtok)?;
        if o.max_jobs == 0 || o.max_jobs > MAX_JOBS {
            return Err(refuse(format!("max_jobs must be 1 to {MAX_JOBS}")));
        }
        let sig = self
            .signature
            .strip_prefix("0x")
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| refuse("the signature is not 0x-prefixed hex"))?;
        let signer = flurry_identity::recover_message_address(&signed_bytes(o), &sig)
            .map_err(|e| refuse(e.to_string()))?;
        if !signer.eq_ignore_ascii_case(&o.address) {
            return Err(refuse(format!(
                "the offer is signed by {signer}, not by the seller {}",
                o.address
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flurry_identity::Identity;

    const NOW: u64 = 1_800_000_000;

    pub(crate) fn offer(id: &Identity, price: u128) -> Offer {
        Offer {
            v: OFFER_VERSION,
            peer_id: id.peer_id(),
            address: id.address(),
            model: "gemma-3-270m-q4_k_m".into(),
            model_id: "ab".repeat(32),
            profile: "flurry-det-1".into(),
            price_wei_per_mtok: price.to_string(),
            prompt_price_wei_per_mtok: "1000".into(),
            max_jobs: 2,
            expires: NOW + 600,
            seq: NOW * 1000,
        }
    }

    fn reopen(s: &SignedOffer, source: Option<&str>) -> Result<SignedOffer, Refused> {
        SignedOffer::open(&s.to_bytes().unwrap(), source, NOW)
    }

    #[test]
    fn a_signed_offer_opens() {
        let id = Identity::generate().unwrap();
        let s = offer(&id, 5).sign(&id);
        let pid = id.peer_id();
        assert_eq!(reopen(&s, Some(&pid)).unwrap(), s);
    }

    #[test]
    fn tampered_offers_are_refused() {
        let id = Identity::generate().unwrap();
        let pid = id.peer_id();
        let s = offer(&id, 5).sign(&id);
        // A cheaper price after signing.
        let mut t = s.clone();
        t.offer.price_wei_per_mtok = "1".into();
        let e = reopen(&t, Some(&pid)).unwrap_err();
        assert!(e.0.contains("signed by"), "{e}");
        // Another model id.
        let mut t = s.clone();
        t.offer.model_id = "cd".repeat(32);
        assert!(reopen(&t, Some(&pid)).is_err());
        // A garbled signature.
        let mut t = s.clone();
        t.signature = "0x1234".into();
        assert!(reopen(&t, Some(&pid)).is_err());
    }

    #[test]
    fn an_offer_in_someone_elses_name_is_refused() {
        let (seller, mallory) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        // Mallory signs an offer naming the seller's peer id and address.
        let forged = offer(&seller, 5).sign(&mallory);
        let e = reopen(&forged, Some(&seller.peer_id())).unwrap_err();
        assert!(e.0.contains("signed by"), "{e}");
        // Her own peer id with the seller's address (to collect its reputation).
        let mut o = offer(&mallory, 5);
        o.address = seller.address();
        let e = reopen(&o.sign(&mallory), Some(&mallory.peer_id())).unwrap_err();
        assert!(e.0.contains("is not the key"), "{e}");
        // Re-publishing the seller's genuine offer under her own name.
        let genuine = offer(&seller, 5).sign(&seller);
        let e = reopen(&genuine, Some(&mallory.peer_id())).unwrap_err();
        assert!(e.0.contains("publish their own"), "{e}");
    }

    #[test]
    fn bad_fields_expiry_and_size_are_refused() {
        let id = Identity::generate().unwrap();
        type Change = Box<dyn Fn(&mut Offer)>;
        let bad: Vec<(&str, Change)> = vec![
            ("version", Box::new(|o| o.v = 2)),
            ("expired", Box::new(|o| o.expires = NOW)),
            (
                "far future",
                Box::new(|o| o.expires = NOW + MAX_LIFETIME_SECS + 1),
            ),
            (
                "negative price",
                Box::new(|o| o.price_wei_per_mtok = "-1".into()),
            ),
            (
                "huge price",
                Box::new(|o| o.price_wei_per_mtok = "9".repeat(39)),
            ),
            ("no jobs", Box::new(|o| o.max_jobs = 0)),
            ("too many jobs", Box::new(|o| o.max_jobs = MAX_JOBS + 1)),
            ("model id", Box::new(|o| o.model_id = "AB".repeat(32))),
            ("model name", Box::new(|o| o.model = "a\u{0}b".into())),
            ("profile", Box::new(|o| o.profile = String::new())),
        ];
        for (what, f) in bad {
            let mut o = offer(&id, 5);
            f(&mut o);
            assert!(reopen(&o.sign(&id), None).is_err(), "{what} was accepted");
        }
        let mut o = offer(&id, 5);
        o.model = "m".repeat(128);
        o.profile = "p".repeat(64);
        let s = o.sign(&id);
        assert!(reopen(&s, None).is_ok());
        let huge = vec![b' '; MAX_OFFER_BYTES + 1];
        assert!(SignedOffer::open(&huge, None, NOW).is_err());
        let extra = br#"{"offer":{},"signature":"0x","tip":1}"#;
        assert!(SignedOffer::open(extra, None, NOW).is_err());
    }

    #[test]
    fn gossip_rejects_offences_and_ignores_what_may_be_honest() {
        use crate::verdict;
        use flurry_net::Verdict;
        let id = Identity::generate().unwrap();
        let pid = id.peer_id();
        let good = offer(&id, 5).sign(&id);
        let bytes = |s: &SignedOffer| s.to_bytes().unwrap();
        assert_eq!(verdict(Some(&pid), &bytes(&good), NOW), Verdict::Accept);
        // Stale, or from a clock far behind: ignored, not blamed.
        assert_eq!(
            verdict(Some(&pid), &bytes(&good), NOW + 601),
            Verdict::Ignore
        );
        // A newer format: ignored.
        let newer = br#"{"offer":{"v":2,"anything":true},"signature":"0x"}"#;
        assert_eq!(verdict(Some(&pid), newer, NOW), Verdict::Ignore);
        // Tampered, misattributed, garbage: rejected.
        let mut t = good.clone();
        t.offer.price_wei_per_mtok = "1".into();
        assert_eq!(verdict(Some(&pid), &bytes(&t), NOW), Verdict::Reject);
        let other = Identity::generate().unwrap().peer_id();
        assert_eq!(verdict(Some(&other), &bytes(&good), NOW), Verdict::Reject);
        assert_eq!(verdict(Some(&pid), b"junk", NOW), Verdict::Reject);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_are_refused_without_panicking(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000)) {
            proptest::prop_assert!(SignedOffer::open(&bytes, None, NOW).is_err());
        }
    }
}
