//! The offer book: the live offers a buyer has heard, one per seller and model, bounded.

use std::collections::HashMap;

use crate::Refused;
use crate::offer::SignedOffer;

/// Offers kept at most, from all sellers.
pub const MAX_OFFERS: usize = 1024;
/// Models one seller may offer at once.
pub const MAX_PER_SELLER: usize = 8;

/// Live offers by (seller peer id, ModelId).
#[derive(Debug, Default)]
pub struct OfferBook {
    offers: HashMap<(String, String), SignedOffer>,
}

impl OfferBook {
    /// Keeps `offer` (already checked with [`SignedOffer::open`]) unless an offer of the
    /// same seller and model with a later sequence number is kept, the seller already
    /// offers [`MAX_PER_SELLER`] models, or the book is full of live offers.
    ///
    /// # Errors
    /// Why it was not kept.
    pub fn insert(&mut self, offer: SignedOffer, now: u64) -> Result<(), Refused> {
        let o = &offer.offer;
        let key = (o.peer_id.clone(), o.model_id.clone());
        if let Some(old) = self.offers.get(&key) {
            if old.offer.seq >= o.seq {
                return Err(Refused(format!(
                    "an offer with sequence {} >= {} is kept already",
                    old.offer.seq, o.seq
                )));
            }
            self.offers.insert(key, offer);
            return Ok(());
        }
        self.prune(now);
        let of_seller = self.offers.keys().filter(|(p, _)| *p == key.0).count();
        if of_seller >= MAX_PER_SELLER {
            return Err(Refused(format!(
                "{} offers {MAX_PER_SELLER} models already",
                key.0
            )));
        }
        if self.offers.len() >= MAX_OFFERS {
            return Err(Refused(format!(
                "the offer book is full ({MAX_OFFERS} live offers)"
            )));
        }
        self.offers.insert(key, offer);
        Ok(())
    }

    /// Drops expired offers.
    pub fn prune(&mut self, now: u64) {
        self.offers.retain(|_, o| o.offer.expires > now);
    }

    /// Drops the offer of `peer_id` for `model_id` (a sale that stopped).
    pub fn remove(&mut self, peer_id: &str, model_id: &str) {
        self.offers
            .remove(&(peer_id.to_string(), model_id.to_string()));
    }

    /// The live offers, for `model` (a name or a ModelId) when given, cheapest first.
    pub fn live(&self, model: Option<&str>, now: u64) -> Vec<SignedOffer> {
        let mut out: Vec<SignedOffer> = self
            .offers
            .values()
            .filter(|o| o.offer.expires > now)
            .filter(|o| model.is_none_or(|m| o.offer.model == m || o.offer.model_id == m))
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            (a.offer.price(), a.offer.prompt_price(), &a.offer.peer_id).cmp(&(
                b.offer.price(),
                b.offer.prompt_price(),
                &b.offer.peer_id,
            ))
        });
        out
    }

    /// Offers kept, live or not yet pruned.
    pub fn len(&self) -> usize {
        self.offers.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.offers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offer::{OFFER_VERSION, Offer};
    use flurry_identity::Identity;

    const NOW: u64 = 1_800_000_000;

    fn offer(id: &Identity, model: u8, price: u128, seq: u64) -> SignedOffer {
        Offer {
            v: OFFER_VERSION,
            peer_id: id.peer_id(),
            address: id.address(),
            model: format!("m{model}"),
            model_id: format!("{model:02x}").repeat(32),
            profile: "flurry-det-1".into(),
            price_wei_per_mtok: price.to_string(),
            prompt_price_wei_per_mtok: "0".into(),
            max_jobs: 1,
            expires: NOW + 60,
            seq,
        }
        .sign(id)
    }

    #[test]
    fn later_offers_replace_earlier_ones_and_the_cheapest_comes_first() {
        let (a, b) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        let mut book = OfferBook::default();
        book.insert(offer(&a, 1, 50, 1), NOW).unwrap();
        book.insert(offer(&b, 1, 20, 1), NOW).unwrap();
        // A replay of an older offer does not bring back an old price.
        book.insert(offer(&a, 1, 10, 2), NOW).unwrap();
        assert!(book.insert(offer(&a, 1, 50, 1), NOW).is_err());
        let live = book.live(Some("m1"), NOW);
        assert_eq!(
            live.iter().map(|o| o.offer.price()).collect::<Vec<_>>(),
            vec![10, 20]
        );
        assert!(book.live(Some("m2"), NOW).is_empty());
        assert!(
            book.live(None, NOW + 60).is_empty(),
            "expired offers are not live"
        );
        book.remove(&a.peer_id(), &"01".repeat(32));
        assert_eq!(book.live(None, NOW).len(), 1);
        assert_eq!(book.live(None, NOW)[0].offer.peer_id, b.peer_id());
    }

    #[test]
    fn one_seller_cannot_fill_the_book() {
        let spammer = Identity::generate().unwrap();
        let mut book = OfferBook::default();
        for m in 0..MAX_PER_SELLER as u8 {
            book.insert(offer(&spammer, m, 1, 1), NOW).unwrap();
        }
        let e = book.insert(offer(&spammer, 200, 1, 1), NOW).unwrap_err();
        assert!(e.0.contains("models already"), "{e}");
        let honest = Identity::generate().unwrap();
        book.insert(offer(&honest, 1, 1, 1), NOW).unwrap();
        assert_eq!(book.len(), MAX_PER_SELLER + 1);
    }

    #[test]
    fn a_full_book_refuses_new_sellers_until_offers_expire() {
        let mut book = OfferBook::default();
        let ids: Vec<Identity> = (0..MAX_OFFERS / MAX_PER_SELLER)
            .map(|_| Identity::generate().unwrap())
            .collect();
        for id in &ids {
            for m in 0..MAX_PER_SELLER as u8 {
                book.insert(offer(id, m, 1, 1), NOW).unwrap();
            }
        }
        let late = Identity::generate().unwrap();
        let e = book.insert(offer(&late, 1, 1, 1), NOW).unwrap_err();
        assert!(e.0.contains("full"), "{e}");
        book.insert(offer(&late, 1, 1, 1), NOW + 60).unwrap();
        assert_eq!(book.len(), 1);
    }
}
