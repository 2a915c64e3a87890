//! Fuzzes job bundles as `flurry verify` reads them from anyone: any bytes must parse to
//! a bundle or a refusal, and the model-free checks must name a failure or pass, never
//! panic (hostile counts, signatures, finish codes, chunk lists).
#![no_main]

use flurry_verify::bundle::Bundle;
use flurry_verify::check::check_signed;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Bundle::from_json(data) {
        let _ = check_signed(&b);
    }
});
