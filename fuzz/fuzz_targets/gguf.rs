//! Fuzzes the GGUF parser: any input must give `Ok` or a clean error, never a panic,
//! an out-of-bounds read or a huge allocation. Run with `make fuzz` (cargo-fuzz). The
//! same property runs in CI as a proptest (`crates/flurry-infer/tests/it/gguf.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = flurry_infer::gguf::parse_bytes(data);
});
