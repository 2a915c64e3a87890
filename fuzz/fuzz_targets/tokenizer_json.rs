//! Fuzzes flurry-embed's `tokenizer.json` loader (BERT WordPiece): any input must give a
//! tokenizer or a clean error, never a panic; a tokenizer it accepts must then encode
//! text without panicking and only give ids inside its vocabulary.
#![no_main]

use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(tok) = flurry_embed::Tokenizer::from_json(data, Path::new("tokenizer.json")) else {
        return;
    };
    let texts = [
        "",
        "Hello, world! Don't stop.",
        "caf\u{e9} na\u{ef}ve \u{4e2d}\u{6587} \u{1f600} \t\n",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ];
    for text in texts {
        let ids = tok.encode(text, 256);
        assert!(ids.len() <= 256);
        if let Some(max) = tok.max_id() {
            assert!(ids.iter().all(|&id| id <= max), "{ids:?} > {max}");
        }
    }
});
