//! Text extraction per format: plain text, Markdown, HTML, PDF (text layer) and e-mail
//! (`.eml`, and every message of an `.mbox`), with the metadata search filters use.

use std::borrow::Cow;
use std::path::Path;

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
pub fn extract(
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
        let m = m.map_err(|e| format!("cannot read the mailbox: {e}"))?;
        let raw = m.contents();
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
        if rest.starts_with("<title")
            && let (Some(a), Some(b)) = (rest.find('>'), rest.find("</title"))
            && a < b
        {
            title = Some(decode_entities(html[i + a + 1..i + b].trim()));
        }
        if rest.starts_with("<!--") {
            i = rest.find("-->").map_or(html.len(), |j| i + j + 3);
            continue;
        }
        if rest.starts_with('<') {
            let end = rest.find('>').map_or(html.len(), |j| i + j + 1);
            let tag = &lower[i + 1..end.saturating_sub(1).max(i + 1)];
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
        let Some(semi) = after.find(';').filter(|n| *n <= 10) else {
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
