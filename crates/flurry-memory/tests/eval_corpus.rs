//! The evaluation set of `scripts/gen-memory-eval.py` (used by `examples/memory_bench.rs`):
//! its size and mix, that every question's answer is in its document's decoded text, that
//! the mail is real MIME (checked with Python's `email` package) and the PDFs real PDF
//! (xref offsets, stream lengths, text drawn with `Tj`), and that it is deterministic.
//! No embedding model needed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python3() -> bool {
    match Command::new("python3").arg("--version").output() {
        Ok(o) => o.status.success(),
        Err(_) => false,
    }
}

fn generate(out: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/gen-memory-eval.py");
    let o = Command::new("python3")
        .arg(&script)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The text of a PDF written like the generator writes them (uncompressed content
/// streams, one `(...) Tj` per line), after checking its structure: header, every xref
/// entry pointing at its object, every stream as long as its `/Length`.
fn pdf_text(b: &[u8]) -> String {
    assert!(b.starts_with(b"%PDF-1."), "no PDF header");
    let sx = find(b, b"startxref", b.len().saturating_sub(64)).expect("startxref");
    let xref: usize = latin1(&b[sx + 9..])
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let table = latin1(&b[xref..sx]);
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("xref"));
    let count: usize = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    for (i, entry) in lines.skip(1).take(count - 1).enumerate() {
        let offset: usize = entry[..10].parse().unwrap();
        let head = format!("{} 0 obj", i + 1);
        assert!(
            b[offset..].starts_with(head.as_bytes()),
            "xref entry {} points at {:?}",
            i + 1,
            latin1(&b[offset..offset + 12])
        );
    }
    let mut text = Vec::new();
    let mut at = 0;
    while let Some(s) = find(b, b"stream\n", at) {
        if b[..s].ends_with(b"end") {
            at = s + 7;
            continue;
        }
        let dict = latin1(&b[b[..s].iter().rposition(|&c| c == b'<').unwrap()..s]);
        let len: usize = dict
            .split("/Length")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let body = &b[s + 7..s + 7 + len];
        assert!(
            b[s + 7 + len..].starts_with(b"endstream"),
            "stream length wrong"
        );
        // Strings shown with Tj, unescaped.
        let mut i = 0;
        while i < body.len() {
            if body[i] != b'(' {
                i += 1;
                continue;
            }
            let mut s = Vec::new();
            i += 1;
            while body[i] != b')' {
                if body[i] == b'\\' {
                    i += 1;
                }
                s.push(body[i]);
                i += 1;
            }
            i += 1;
            assert!(latin1(&body[i..]).trim_start().starts_with("Tj"));
            text.push(latin1(&s));
        }
        at = s + 7 + len;
    }
    text.join("\n")
}

/// Python's `email` package decodes every message's text/plain part (charsets, base64,
/// quoted-printable, multipart) to what the generator's `expected/` file says.
const CHECK_MAIL: &str = r#"
import email, email.policy, mailbox, pathlib, sys
root = pathlib.Path(sys.argv[1])
norm = lambda s: " ".join(s.split())
def check(raw, name):
    m = email.message_from_bytes(raw, policy=email.policy.default)
    body = m.get_body(preferencelist=("plain",)).get_content()
    want = (root / "expected" / (name + ".txt")).read_text(encoding="utf-8")
    assert norm(body) == norm(want), name
    assert "=?" not in str(m["subject"]), name
    return str(m["subject"])
n, cjk = 0, 0
for p in sorted((root / "corpus").rglob("*.eml")):
    subject = check(p.read_bytes(), str(p.relative_to(root / "corpus")))
    n += 1
    cjk += any("\u4e00" <= c <= "\u9fff" for c in subject)
for p in sorted((root / "corpus").rglob("*.mbox")):
    for i, m in enumerate(mailbox.mbox(p)):
        check(m.as_bytes(), "%s#%d" % (p.relative_to(root / "corpus"), i))
        n += 1
print(n, cjk)
"#;

#[test]
fn evaluation_set_is_large_mixed_answerable_and_deterministic() {
    if !python3() {
        eprintln!(
            "SKIPPED: python3 is not installed; scripts/gen-memory-eval.py needs Python 3 (stdlib only)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a");
    generate(&out);
    let corpus = out.join("corpus");

    // Documents: files, with an mbox counting one per message.
    let files = flurry_memory::walk(std::slice::from_ref(&corpus));
    let mut by_ext: BTreeMap<String, usize> = BTreeMap::new();
    let mut messages: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for f in &files {
        let ext = f.extension().unwrap().to_string_lossy().into_owned();
        *by_ext.entry(ext.clone()).or_default() += 1;
        if ext == "mbox" {
            let text = std::fs::read_to_string(f).unwrap();
            let n = text.lines().filter(|l| l.starts_with("From ")).count();
            messages.insert(f.clone(), n);
        }
    }
    let documents = files.len() - messages.len() + messages.values().sum::<usize>();
    assert!(documents >= 200, "{documents} documents: {by_ext:?}");
    for ext in ["md", "txt", "html", "eml", "mbox", "pdf"] {
        assert!(by_ext.contains_key(ext), "no .{ext} file: {by_ext:?}");
    }
    assert!(by_ext["pdf"] >= 10, "{by_ext:?}");
    assert!(messages.values().all(|n| *n >= 3), "{messages:?}");

    // Real MIME: charsets, encodings, encoded-word subjects, multipart.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "eml" || e == "mbox"))
    {
        let raw = latin1(&std::fs::read(f).unwrap()).to_ascii_lowercase();
        for marker in [
            "charset=\"gb2312\"",
            "charset=\"gbk\"",
            "charset=\"gb18030\"",
            "charset=\"utf-8\"",
            "content-transfer-encoding: base64",
            "content-transfer-encoding: quoted-printable",
            "multipart/alternative",
            "subject: =?utf-8?b?",
            "subject: =?gbk?b?",
        ] {
            if raw.contains(marker) {
                *seen.entry(marker).or_default() += 1;
            }
        }
    }
    assert_eq!(seen.len(), 9, "{seen:?}");
    let o = Command::new("python3")
        .args(["-c", CHECK_MAIL])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mail does not decode to its expected text: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report = String::from_utf8_lossy(&o.stdout);
    let mut nums = report
        .split_whitespace()
        .map(|n| n.parse::<usize>().unwrap());
    let (mails, chinese_subjects) = (nums.next().unwrap(), nums.next().unwrap());
    assert_eq!(
        mails,
        by_ext["eml"] + messages.values().sum::<usize>(),
        "{report}"
    );
    assert!(chinese_subjects >= 8, "{report}");

    // Questions: enough of each type, each answered by its document's decoded text.
    let text = std::fs::read_to_string(out.join("questions.jsonl")).unwrap();
    let qs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(qs.len() >= 50, "{} questions", qs.len());
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    for q in &qs {
        let (question, doc, answer, kind) = (
            q["q"].as_str().unwrap(),
            q["doc"].as_str().unwrap(),
            q["answer"].as_str().unwrap(),
            q["type"].as_str().unwrap(),
        );
        assert!(!question.trim().is_empty() && !answer.trim().is_empty());
        *types.entry(kind.to_string()).or_default() += 1;
        let (file, message) = match doc.split_once('#') {
            Some((f, n)) => (f, Some(n.parse::<usize>().unwrap())),
            None => (doc, None),
        };
        let path = corpus.join(file);
        assert!(path.is_file(), "{doc} does not exist");
        if let Some(n) = message {
            assert!(n < messages[&path], "{doc}: no message {n}");
        }
        let raw = std::fs::read(&path).unwrap();
        let decoded = match path.extension().unwrap().to_str().unwrap() {
            "md" | "txt" => String::from_utf8(raw).unwrap(),
            "html" => {
                let (title, body) = flurry_memory::html_to_text(std::str::from_utf8(&raw).unwrap());
                format!("{}\n{body}", title.unwrap_or_default())
            }
            "pdf" => {
                let t = pdf_text(&raw);
                let side = std::fs::read_to_string(out.join("expected").join(format!("{doc}.txt")))
                    .unwrap();
                assert_eq!(
                    norm(&t),
                    norm(&side),
                    "{doc}: text layer differs from expected/"
                );
                t
            }
            // Decoded by Python above and compared with these files.
            "eml" | "mbox" => {
                std::fs::read_to_string(out.join("expected").join(format!("{doc}.txt"))).unwrap()
            }
            other => panic!("question about a .{other} file"),
        };
        assert!(
            norm(&decoded).contains(&norm(answer)),
            "{doc} does not contain the answer {answer:?} to {question:?}"
        );
        if kind == "chinese" {
            assert!(
                question
                    .chars()
                    .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{question}"
            );
        }
    }
    for (kind, min) in [("keyword", 15), ("paraphrase", 15), ("chinese", 10)] {
        assert!(types.get(kind).copied().unwrap_or(0) >= min, "{types:?}");
    }
    let mail_questions = qs
        .iter()
        .filter(|q| {
            let d = q["doc"].as_str().unwrap();
            d.ends_with(".eml") || d.contains(".mbox#")
        })
        .count();
    let pdf_questions = qs
        .iter()
        .filter(|q| q["doc"].as_str().unwrap().ends_with(".pdf"))
        .count();
    assert!(
        mail_questions >= 10 && pdf_questions >= 10,
        "{mail_questions} {pdf_questions}"
    );
    let queries = std::fs::read_to_string(out.join("latency-queries.txt")).unwrap();
    assert!(queries.lines().count() >= 200);

    // Same arguments, same bytes.
    let again = dir.path().join("b");
    generate(&again);
    for f in &files {
        let rel = f.strip_prefix(&corpus).unwrap();
        assert!(
            std::fs::read(f).unwrap() == std::fs::read(again.join("corpus").join(rel)).unwrap(),
            "{} differs between two runs",
            rel.display()
        );
    }
    assert_eq!(
        text,
        std::fs::read_to_string(again.join("questions.jsonl")).unwrap()
    );
}
