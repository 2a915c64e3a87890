//! Properties of the format readers on arbitrary bytes (the CI side of the `pdf`, `html`
//! and `mail` fuzz targets in `fuzz/`): they return documents or a clean error, never
//! panic, and their output is capped.

use std::path::Path;

use flurry_memory::{MAX_TEXT_BYTES, extract, html_to_text};
use proptest::prelude::*;

/// Bytes that look a little like each format, so the cases get past the first check.
fn shaped(prefix: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        &b"<"[..],
        b">",
        b"&",
        b";",
        b"&amp;",
        b"&#x10FFFF;",
        b"&#99999999999;",
        b"<title>",
        b"</title>",
        b"<script>",
        b"<!--",
        b"-->",
        b"\r\n",
        b"\n\n",
        b"Subject: x\n",
        b"From: a@b\n",
        b"Content-Type: multipart/mixed; boundary=b\n",
        b"--b\n",
        b"Content-Type: text/html\n\n",
        b"Content-Transfer-Encoding: base64\n",
        b"=?utf-8?B?w6k=?=",
        b"\nFrom x@y Mon Nov  2 10:00:00 2026\n",
        b"stream\n",
        b"endstream",
        b"obj << /Length 5 >>",
        b"\x78\x9c",
        b"\xff\xfe\x00",
    ]);
    (
        prop::collection::vec(pieces, 0..40),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(move |(p, tail)| {
            let mut v = prefix.to_vec();
            for x in p {
                v.extend_from_slice(x);
            }
            v.extend_from_slice(&tail);
            v
        })
}

/// Attack found by the property below: an unclosed tag whose last character is not ASCII
/// (`<é`) sliced the page inside that character and panicked; as a mail's HTML part this
/// took down `flurry ingest` (and, before the extraction child, the ingest request).
#[test]
fn unclosed_tag_ending_in_a_multibyte_character_does_not_panic() {
    let (_, text) = html_to_text("<é");
    assert_eq!(text, "");
    let mail = "From: a@example.org\r\nSubject: s\r\nContent-Type: text/html\r\n\r\nhi <b\u{e9}";
    let docs = extract("email", mail.as_bytes(), Path::new("m.eml")).unwrap();
    assert!(docs[0].text.contains("hi"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_reader_returns_or_errs_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        for kind in ["text", "markdown", "html", "email", "mbox", "pdf"] {
            if let Ok(docs) = extract(kind, &bytes, Path::new("f")) {
                prop_assert!(docs.iter().all(|d| d.text.len() <= MAX_TEXT_BYTES));
            }
        }
    }

    #[test]
    fn html_text_is_never_longer_than_the_page(bytes in shaped(b"")) {
        let page = String::from_utf8_lossy(&bytes);
        let (title, text) = html_to_text(&page);
        prop_assert!(text.len() <= page.len());
        prop_assert!(title.map_or(0, |t| t.len()) <= page.len());
    }

    #[test]
    fn mail_and_mbox_return_or_err_cleanly(bytes in shaped(b"From: a@example.org\nSubject: s\n")) {
        let _ = extract("email", &bytes, Path::new("f.eml"));
        let mut mbox = b"From a@example.org Mon Nov  2 10:00:00 2026\n".to_vec();
        mbox.extend_from_slice(&bytes);
        if let Ok(docs) = extract("mbox", &mbox, Path::new("f.mbox")) {
            prop_assert!(!docs.is_empty());
        }
    }

    #[test]
    fn pdf_returns_or_errs_cleanly(bytes in shaped(b"%PDF-1.4\n")) {
        let _ = extract("pdf", &bytes, Path::new("f.pdf"));
    }
}
