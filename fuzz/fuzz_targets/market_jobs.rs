//! Fuzzes the frames of `/flurry/market/1` as a seller and a buyer read them from a
//! stranger: any bytes must decode to a message or a refusal, never a panic, and what
//! decodes must price without overflow.
#![no_main]

use flurry_market::job::{Ask, JobFrame, Prices, Reply, prompt_estimate, upfront};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(Ask::Job { request, skip, .. }) = flurry_net::infer::decode::<Ask>(data) {
        let p = Prices {
            output: u128::MAX,
            prompt: u128::MAX,
        };
        let _ = prompt_estimate(&request);
        let _ = upfront(&p, &request, skip, u32::MAX);
        let _ = request.validate();
    }
    let _ = flurry_net::infer::decode::<Reply>(data);
    if let Ok(f) = flurry_net::infer::decode::<JobFrame>(data) {
        let _ = f.into_infer();
    }
});
