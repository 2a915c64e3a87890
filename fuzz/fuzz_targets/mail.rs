//! Fuzzes the mail readers (mail-parser's MIME, charsets and encodings, the HTML parts,
//! and mbox splitting): the same bytes are read as one `.eml` and as a mailbox (with a
//! `From ` line in front when they lack one); any input gives documents or a clean error.
#![no_main]

use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = flurry_memory::extract("email", data, Path::new("f.eml"));
    let mut mbox;
    let bytes = if data.starts_with(b"From ") {
        data
    } else {
        mbox = b"From fuzz@example.org Mon Nov  2 10:00:00 2026\n".to_vec();
        mbox.extend_from_slice(data);
        &mbox
    };
    if let Ok(docs) = flurry_memory::extract("mbox", bytes, Path::new("f.mbox")) {
        assert!(docs.len() <= flurry_memory::MAX_MESSAGES);
    }
});
