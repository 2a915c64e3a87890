//! Fuzzes the HTML reader (tags, scripts, comments, `<title>`, entities): any bytes give
//! text or a clean error, never a panic, and the text is never longer than the page.
#![no_main]

use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(docs) = flurry_memory::extract("html", data, Path::new("f.html")) {
        assert!(docs[0].text.len() <= data.len());
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let (_, text) = flurry_memory::html_to_text(s);
        assert!(text.len() <= s.len());
    }
});
