//! Fuzzes market offers as every node reads them from gossip: any bytes from any author
//! must give a verdict and an offer or a refusal, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let author = "16Uiu2HAmJoRxG5XJvEnPfDsCN6i8BxT3C2oMM9vXkbiNzSxmYrR9";
    let now = 1_800_000_000;
    let _ = flurry_market::verdict(Some(author), data, now);
    if let Ok(o) = flurry_market::SignedOffer::open(data, None, now) {
        let mut book = flurry_market::OfferBook::default();
        let _ = book.insert(o, now);
    }
});
