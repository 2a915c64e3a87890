//! Fuzzes flurry-embed's safetensors reader (the embedding model's weights): any input
//! must give `Ok` or a clean error, never a panic, an out-of-bounds read or a huge
//! allocation, whatever its header length, offsets, dtypes and shapes say.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = flurry_embed::fuzz_safetensors(data);
});
