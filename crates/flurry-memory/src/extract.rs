//! Text extraction per format: plain text, Markdown, HTML, PDF (text layer) and e-mail
//! (`.eml`, and every message of an `.mbox`), with the metadata search filters use.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// PDFs larger than this are refused before they are read.
pub const MAX_PDF_BYTES: u64 = 64 << 20;
/// Text, Markdown, HTML and `.eml` files larger than this are refused before they are read.
pub const MAX_FILE_BYTES: u64 = 32 << 20;
/// Mailboxes larger than this are refused before they are read.
pub const MAX_MBOX_BYTES: u64 = 256 << 20;
/// A mailbox message larger than this is skipped (the rest of the mailbox is read).
pub const MAX_MESSAGE_BYTES: usize = 32 << 20;
/// A mailbox with more messages than this is refused.
pub const MAX_MESSAGES: usize = 200_000;
/// A document whose extracted text is longer than this (bytes of UTF-8) is refused.
pub const MAX_TEXT_BYTES: usize = 32 << 20;
/// A file whose documents hold more text than this in all is refused.
pub const MAX_TOTAL_TEXT_BYTES: usize = 256 << 20;
/// A PDF whose Flate streams inflate to more than this in all is refused before it is
/// parsed: the PDF reader inflates every stream completely, so a few kilobytes of
/// compressed zeros would otherwise become gigabytes in memory.
pub const MAX_PDF_INFLATED_BYTES: u64 = 256 << 20;

/// The size cap of a file of this kind (see the `MAX_*_BYTES` constants).
pub fn max_file_bytes(kind: &str) -> u64 {
    match kind {
        "pdf" => MAX_PDF_BYTES,
        "mbox" => MAX_MBOX_BYTES,
        _ => MAX_FILE_BYTES,
    }
}

/// One document extracted from a file (a mailbox gives one per message).
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// `None` for the file itself; `Some(i)` for message `i` (from 0) of a mailbox, stored
    /// as `path#i`.
    pub part: Option<usize>,
    /// `text`, `markdown`, `html`, `pdf` or `email`.
    pub kind: &'static str,
    /// Title: mail subject, first heading, `<title>`, or the file name.
    pub title: String,
    /// The text that is chunked and indexed.
    pub text: String,
    /// Mail sender (`Name <address>`).
    pub sender: Option<String>,
    /// Mail date, unix seconds.
    pub date: Option<i64>,
    /// BLAKE3 of the bytes this document came from.
    pub hash: String,
    /// Their size.
    pub bytes: u64,
}

/// The format of a file by its extension (a file with no extension that starts like a
/// mailbox, as Thunderbird's `Inbox` does, is a mailbox), or `None` when unsupported.
pub fn kind_of(path: &Path) -> Option<&'static str> {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        let mut head = [0u8; 5];
        let n = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .unwrap_or(0);
        return (n == 5 && &head == b"From ").then_some("mbox");
    };
    Some(match ext.to_ascii_lowercase().as_str() {
        "txt" | "text" | "log" => "text",
        "md" | "markdown" => "markdown",
        "html" | "htm" => "html",
        "pdf" => "pdf",
        "eml" => "email",
        "mbox" | "mbx" => "mbox",
        _ => return None,
    })
}

/// The documents in a file's bytes for its format; an error says why the file is
/// skipped (binary, not UTF-8, corrupt PDF, no text layer, not a mail message…).
///
/// This runs third-party parsers on untrusted bytes in the calling process: ingestion
/// calls it through [`crate::Extractor`], which runs it in a child process with limits.
/// The caps (`MAX_*`) are applied here, so every caller gets them.
pub fn extract(
    kind: &str,
    bytes: &[u8],
    path: &Path,
) -> std::result::Result<Vec<Extracted>, String> {
    let cap = max_file_bytes(kind);
    if bytes.len() as u64 > cap {
        return Err(format!(
            "larger than {} MiB, the limit for this kind of file; split it or leave it out",
            cap >> 20
        ));
    }
    let docs = extract_uncapped(kind, bytes, path)?;
    let mut total = 0usize;
    for d in &docs {
        if d.text.len() > MAX_TEXT_BYTES {
            return Err(format!(
                "its text is longer than {} MiB; split the document",
                MAX_TEXT_BYTES >> 20
            ));
        }
        total += d.text.len();
    }
    if total > MAX_TOTAL_TEXT_BYTES {
        return Err(format!(
            "it holds more than {} MiB of text; split it",
            MAX_TOTAL_TEXT_BYTES >> 20
        ));
    }
    Ok(docs)
}

fn extract_uncapped(
    kind: &str,
    bytes: &[u8],
    path: &Path,
) -> std::result::Result<Vec<Extracted>, String> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let whole = |kind: &'static str, title: String, text: String| Extracted {
        part: None,
        kind,
        title,
        text,
        sender: None,
        date: None,
        hash: blake3::hash(bytes).to_hex().to_string(),
        bytes: bytes.len() as u64,
    };
    match kind {
        "pdf" => {
            let text = pdf_text(bytes)?;
            Ok(vec![whole("pdf", file_name, text)])
        }
        "email" => {
            let mut doc = mail(bytes)?;
            doc.hash = blake3::hash(bytes).to_hex().to_string();
            doc.bytes = bytes.len() as u64;
            Ok(vec![doc])
        }
        "mbox" => mbox(bytes),
        _ => {
            if bytes.iter().take(8192).any(|b| *b == 0) {
                return Err("binary file (contains NUL bytes)".into());
            }
            let text = std::str::from_utf8(bytes)
                .map_err(|e| format!("not valid UTF-8 text ({e}); re-save it as UTF-8"))?
                .trim_start_matches('\u{feff}');
            Ok(vec![match kind {
                "html" => {
                    let (title, body) = html_to_text(text);
                    whole("html", title.unwrap_or(file_name), body)
                }
                "markdown" => {
                    let title = text
                        .lines()
                        .find_map(|l| l.strip_prefix("# "))
                        .map(|t| t.trim().to_string())
                        .unwrap_or(file_name);
                    whole("markdown", title, text.to_string())
                }
                _ => whole("text", file_name, text.to_string()),
            }])
        }
    }
}

/// The text layer of a PDF, whitespace tidied. The parser is third-party code reading
/// untrusted bytes, so a panic in it is caught and reported as a corrupt file.
fn pdf_text(bytes: &[u8]) -> std::result::Result<String, String> {
    if !bytes.starts_with(b"%PDF-") {
        return Err("not a PDF (no %PDF- header)".into());
    }
    check_inflated_size(bytes, MAX_PDF_INFLATED_BYTES)?;
    let out = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes))
        .map_err(|_| "corrupt PDF (the PDF reader gave up on it)".to_string())?
        .map_err(|e| format!("corrupt or unsupported PDF: {e}"))?;
    let text = tidy_lines(&out);
    if text.trim().is_empty() {
        return Err("the PDF has no text layer (a scan? OCR is not supported)".into());
    }
    Ok(text)
}

/// Lines with inner runs of spaces collapsed; runs of blank lines become one blank line
/// (paragraph breaks survive for the chunker).
fn tidy_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank = 0;
    for line in s.lines() {
        let l = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if l.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(&l);
    }
    out
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> Option<String> {
    let list: Vec<String> = a?
        .iter()
        .map(|x| match (x.name(), x.address()) {
            (Some(n), Some(a)) => format!("{n} <{a}>"),
            (Some(n), None) => n.to_string(),
            (None, Some(a)) => a.to_string(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    (!list.is_empty()).then(|| list.join(", "))
}

/// One message: headers kept as metadata and as the first lines of the text (so "the
/// mail from Alice about…" matches), then every text body part, charsets decoded (HTML
/// parts through the same HTML reader as `.html` files).
fn mail(bytes: &[u8]) -> std::result::Result<Extracted, String> {
    use mail_parser::{MessageParser, PartType};
    let msg = MessageParser::default()
        .parse(bytes)
        .filter(|m| m.subject().is_some() || m.from().is_some() || m.date().is_some())
        .ok_or("not an e-mail message (no Subject, From or Date header)")?;
    let subject = msg.subject().map(str::trim).unwrap_or("").to_string();
    let sender = addresses(msg.from());
    let to = addresses(msg.to());
    let date = msg.date().map(|d| d.to_timestamp());
    let mut text = String::new();
    for (name, value) in [
        ("Subject", Some(subject.clone()).filter(|s| !s.is_empty())),
        ("From", sender.clone()),
        ("To", to),
        ("Date", msg.date().map(|d| d.to_rfc3339())),
    ] {
        if let Some(v) = value {
            text.push_str(&format!("{name}: {v}\n"));
        }
    }
    let mut body = String::new();
    for i in 0..msg.text_body_count() {
        let Some(part) = msg.text_part(i as u32) else {
            continue;
        };
        let piece: Cow<'_, str> = match &part.body {
            PartType::Text(t) => Cow::Borrowed(t.as_ref()),
            PartType::Html(h) => Cow::Owned(html_to_text(h).1),
            _ => continue,
        };
        if !body.is_empty() {
            body.push_str("\n\n");
        }
        body.push_str(piece.trim());
    }
    if body.contains('\u{fffd}')
        && body.chars().filter(|c| *c == '\u{fffd}').count() * 20 > body.chars().count()
    {
        return Err("the mail body does not decode in its declared charset".into());
    }
    text.push('\n');
    text.push_str(&body.replace("\r\n", "\n"));
    Ok(Extracted {
        part: None,
        kind: "email",
        title: if subject.is_empty() {
            "(no subject)".into()
        } else {
            subject
        },
        text,
        sender,
        date,
        hash: String::new(),
        bytes: 0,
    })
}

/// Every message of an mbox file, each a document of its own; a message that does not
/// parse is skipped (the rest of the mailbox is still read).
fn mbox(bytes: &[u8]) -> std::result::Result<Vec<Extracted>, String> {
    if !bytes.starts_with(b"From ") {
        return Err("not an mbox mailbox (it does not start with a \"From \" line)".into());
    }
    let mut out = Vec::new();
    let iter = mail_parser::mailbox::mbox::MessageIterator::new(std::io::Cursor::new(bytes));
    for (i, m) in iter.enumerate() {
        if i >= MAX_MESSAGES {
            return Err(format!(
                "the mailbox holds more than {MAX_MESSAGES} messages; split it (most mail clients can archive by year)"
            ));
        }
        let m = m.map_err(|e| format!("cannot read the mailbox: {e}"))?;
        let raw = m.contents();
        if raw.len() > MAX_MESSAGE_BYTES {
            continue;
        }
        if let Ok(mut doc) = mail(raw) {
            doc.part = Some(i);
            doc.hash = blake3::hash(raw).to_hex().to_string();
            doc.bytes = raw.len() as u64;
            out.push(doc);
        }
    }
    if out.is_empty() {
        return Err("the mailbox holds no readable message".into());
    }
    Ok(out)
}

/// Visible text of an HTML page (scripts, styles and tags removed, entities decoded,
/// block elements on their own lines) and its `<title>`.
pub fn html_to_text(html: &str) -> (Option<String>, String) {
    let mut out = String::with_capacity(html.len() / 2);
    let mut title = None;
    // Only the first `<title` is looked at: searching for `</title` again at every
    // `<title` would make a page of repeated `<title>` quadratic.
    let mut title_seen = false;
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while i < html.len() {
        let rest = &lower[i..];
        if rest.starts_with("<script") || rest.starts_with("<style") {
            let close = if rest.starts_with("<script") {
                "</script"
            } else {
                "</style"
            };
            i = rest.find(close).map_or(html.len(), |j| i + j + close.len());
            if let Some(j) = lower[i..].find('>') {
                i += j + 1;
            }
            continue;
        }
        if !title_seen
            && rest.starts_with("<title")
            && let (Some(a), Some(b)) = (rest.find('>'), rest.find("</title"))
            && a < b
        {
            title = Some(decode_entities(html[i + a + 1..i + b].trim()));
        }
        title_seen |= rest.starts_with("<title");
        if rest.starts_with("<!--") {
            i = rest.find("-->").map_or(html.len(), |j| i + j + 3);
            continue;
        }
        if rest.starts_with('<') {
            // An unclosed tag runs to the end; `len - 1` could fall inside a character.
            let (tag_end, end) = rest
                .find('>')
                .map_or((html.len(), html.len()), |j| (i + j, i + j + 1));
            let tag = &lower[i + 1..tag_end.max(i + 1)];
            let name = tag
                .trim_start_matches('/')
                .split(|c: char| !c.is_ascii_alphanumeric())
                .next()
                .unwrap_or("");
            if matches!(
                name,
                "p" | "br"
                    | "div"
                    | "li"
                    | "tr"
                    | "h1"
                    | "h2"
                    | "h3"
                    | "h4"
                    | "h5"
                    | "h6"
                    | "title"
                    | "section"
                    | "article"
                    | "pre"
                    | "blockquote"
            ) {
                out.push('\n');
            }
            i = end;
            continue;
        }
        let next = rest.find('<').map_or(html.len(), |j| i + j);
        out.push_str(&decode_entities(&html[i..next]));
        i = next;
    }
    let text = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    (title, text)
}

/// Numeric references and the named entities common in Western and typographic text.
fn named_entity(e: &str) -> Option<char> {
    if let Some(hex) = e.strip_prefix("#x").or_else(|| e.strip_prefix("#X")) {
        return u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
    }
    if let Some(dec) = e.strip_prefix('#') {
        return dec.parse().ok().and_then(char::from_u32);
    }
    const TABLE: &[(&str, char)] = &[
        ("aacute", 'á'),
        ("agrave", 'à'),
        ("acirc", 'â'),
        ("auml", 'ä'),
        ("atilde", 'ã'),
        ("aring", 'å'),
        ("aelig", 'æ'),
        ("ccedil", 'ç'),
        ("eacute", 'é'),
        ("egrave", 'è'),
        ("ecirc", 'ê'),
        ("euml", 'ë'),
        ("iacute", 'í'),
        ("igrave", 'ì'),
        ("icirc", 'î'),
        ("iuml", 'ï'),
        ("ntilde", 'ñ'),
        ("oacute", 'ó'),
        ("ograve", 'ò'),
        ("ocirc", 'ô'),
        ("ouml", 'ö'),
        ("otilde", 'õ'),
        ("oslash", 'ø'),
        ("uacute", 'ú'),
        ("ugrave", 'ù'),
        ("ucirc", 'û'),
        ("uuml", 'ü'),
        ("yacute", 'ý'),
        ("szlig", 'ß'),
        ("Eacute", 'É'),
        ("Auml", 'Ä'),
        ("Ouml", 'Ö'),
        ("Uuml", 'Ü'),
        ("Ccedil", 'Ç'),
        ("Ntilde", 'Ñ'),
        ("copy", '©'),
        ("reg", '®'),
        ("trade", '™'),
        ("euro", '€'),
        ("pound", '£'),
        ("yen", '¥'),
        ("cent", '¢'),
        ("sect", '§'),
        ("deg", '°'),
        ("middot", '·'),
        ("mdash", '—'),
        ("ndash", '–'),
        ("hellip", '…'),
        ("laquo", '«'),
        ("raquo", '»'),
        ("lsquo", '‘'),
        ("rsquo", '’'),
        ("ldquo", '“'),
        ("rdquo", '”'),
        ("bull", '•'),
        ("times", '×'),
        ("divide", '÷'),
        ("shy", '\u{ad}'),
    ];
    TABLE.iter().find(|(n, _)| *n == e).map(|(_, c)| *c)
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(a) = rest.find('&') {
        out.push_str(&rest[..a]);
        let after = &rest[a..];
        // An entity name is short: look for its `;` in the next 10 bytes only, so a run
        // of `&` without `;` stays linear (searching the whole rest was quadratic).
        let Some(semi) = after.bytes().take(11).position(|b| b == b';') else {
            out.push('&');
            rest = &after[1..];
            continue;
        };
        let ent = &after[1..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some(' '),
            e => named_entity(e),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Refuses a PDF whose Flate streams inflate to more than `cap` bytes in all, without
/// holding the inflated bytes. Every stream body (the bytes after a `stream` keyword and
/// its end of line) is inflated into a counter as the PDF reader would (zlib, raw deflate
/// when the zlib header is broken, and Flate inside Flate), so neither a wrong `/Length`
/// nor a fake `endstream` hides a bomb. Other filters (LZW, ASCII85 in front of Flate)
/// are left to the extraction child's memory limit and deadline.
pub(crate) fn check_inflated_size(pdf: &[u8], cap: u64) -> std::result::Result<(), String> {
    let too_big = || {
        format!(
            "the PDF's compressed streams inflate to more than {} MiB (a decompression bomb?); it was not read",
            cap >> 20
        )
    };
    let mut total = 0u64;
    let mut from = 0;
    while let Some(at) = find(&pdf[from..], b"stream") {
        let kw = from + at;
        from = kw + 6;
        if kw >= 3 && &pdf[kw - 3..kw] == b"end" {
            continue;
        }
        let body = match &pdf[from..] {
            [b'\r', b'\n', ..] => &pdf[from + 2..],
            [b'\n' | b'\r', ..] => &pdf[from + 1..],
            _ => continue,
        };
        let n = inflated_len(body, cap - total);
        total += n;
        if total >= cap {
            return Err(too_big());
        }
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Bytes that `data` inflates to (all Flate layers counted), stopping once `budget` is
/// reached; what does not inflate counts as 0.
fn inflated_len(data: &[u8], budget: u64) -> u64 {
    let n = drain_counted(
        &mut BufReader::new(flate2::read::ZlibDecoder::new(data)),
        budget,
        0,
    );
    if n > 0 || data.len() <= 2 {
        return n;
    }
    // lopdf retries a stream whose zlib header or checksum is broken as raw deflate.
    drain_counted(
        &mut BufReader::new(flate2::read::DeflateDecoder::new(&data[2..])),
        budget,
        0,
    )
}

/// Reads `r` to its end (or its first error) counting bytes, up to `budget`; when its
/// output starts like a zlib stream, the inner stream's inflated bytes count as well
/// (a `/Filter [/FlateDecode /FlateDecode]` bomb), and then the rest of `r` is read.
fn drain_counted(r: &mut dyn BufRead, budget: u64, depth: u8) -> u64 {
    let nested = depth < 3
        && r.fill_buf().is_ok_and(|h| {
            h.len() >= 2 && h[0] & 0x0f == 8 && (u16::from(h[0]) << 8 | u16::from(h[1])) % 31 == 0
        });
    let mut n = 0u64;
    if nested {
        let counted = std::cell::Cell::new(0u64);
        let deep = drain_counted(
            &mut BufReader::new(flate2::read::ZlibDecoder::new(Counting {
                inner: &mut *r,
                n: &counted,
            })),
            budget,
            depth + 1,
        );
        n = deep.saturating_add(counted.get());
    }
    while n < budget {
        let got = match r.fill_buf() {
            Ok([]) | Err(_) => return n,
            Ok(b) => b.len(),
        };
        r.consume(got);
        n += got as u64;
    }
    budget
}

/// A reader that counts what passes through it.
struct Counting<'a, R> {
    inner: R,
    n: &'a std::cell::Cell<u64>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let got = self.inner.read(buf)?;
        self.n.set(self.n.get() + got as u64);
        Ok(got)
    }
}
