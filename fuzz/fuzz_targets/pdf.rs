//! Fuzzes PDF extraction (the inflate-size check, lopdf, pdf-extract) in-process with
//! the input caps: any input must give documents or a clean error. A stack overflow or
//! an abort found here is contained in the node by the extraction child
//! (`flurry __extract`), but is still worth a report upstream. Inputs that do not start
//! with `%PDF-` get the header, so the fuzzer spends its time past it.
#![no_main]

use std::path::Path;

static QUIET_PANICS: std::sync::Once = std::sync::Once::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // libfuzzer-sys aborts on any panic through its hook; the node catches pdf-extract's
    // panics and reports a corrupt PDF, so the fuzzer does too (a panic that escapes
    // `extract` still aborts: libfuzzer-sys treats it as a crash).
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let mut pdf;
    let bytes = if data.starts_with(b"%PDF-") {
        data
    } else {
        pdf = b"%PDF-1.4\n".to_vec();
        pdf.extend_from_slice(data);
        &pdf
    };
    if let Ok(docs) = flurry_memory::extract("pdf", bytes, Path::new("f.pdf")) {
        assert!(
            docs.iter()
                .all(|d| d.text.len() <= flurry_memory::MAX_TEXT_BYTES)
        );
    }
});
