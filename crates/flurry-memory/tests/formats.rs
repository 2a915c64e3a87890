//! Mail (`.eml`, `.mbox`, MIME, charsets) and PDF ingestion with the real MiniLM model and
//! a real SQLCipher store.

use std::path::{Path, PathBuf};

use flurry_memory::{Extractor, Filters, MemoryKey, MemoryStore, SearchMode, Summary, ingest_with};

fn embedder() -> flurry_embed::Embedder {
    let models = std::env::var_os("FLURRY_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".flurry/models"));
    flurry_embed::Embedder::load(&models.join(flurry_embed::MODEL_DIR_NAME)).unwrap_or_else(|e| {
        panic!("{e}: run scripts/fetch-models.sh to install the embedding model")
    })
}

/// A one-page PDF 1.4 with a real text layer (Helvetica, WinAnsi), xref offsets exact.
fn pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 72 720 Td 16 TL\n");
    for l in lines {
        let esc = l
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        content.push_str(&format!("({esc}) Tj T*\n"));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn gb2312(s: &str) -> Vec<u8> {
    let (b, _, bad) = encoding_rs::GBK.encode(s);
    assert!(!bad);
    b.into_owned()
}

/// A multipart/alternative mail in UTF-8 quoted-printable with an HTML part.
const ALICE: &str = "From: Alice Martin <alice@example.org>\r
To: Bob <bob@example.org>\r
Subject: Boiler service on Thursday\r
Date: Tue, 10 Nov 2026 09:30:00 +0100\r
MIME-Version: 1.0\r
Content-Type: multipart/alternative; boundary=\"XYZ\"\r
\r
--XYZ\r
Content-Type: text/plain; charset=utf-8\r
Content-Transfer-Encoding: quoted-printable\r
\r
Hi Bob, the technician from Calor=C3=A9 comes Thursday at 8 to service the =\r
boiler. The gate code is 4471.\r
--XYZ\r
Content-Type: text/html; charset=utf-8\r
\r
<p>Hi Bob, the technician from Calor&eacute; comes Thursday at 8.</p>\r
--XYZ--\r
";

fn chinese_mail() -> Vec<u8> {
    let subject = b64(&gb2312("项目会议改到周五"));
    let body = b64(&gb2312(
        "各位好：\n项目评审会议改到星期五下午三点，在二楼会议室。请带上预算表。\n王芳\n",
    ));
    format!(
        "From: =?GB2312?B?{}?= <wangfang@example.cn>\r\nTo: team@example.cn\r\nSubject: =?GB2312?B?{subject}?=\r\nDate: Wed, 11 Nov 2026 14:00:00 +0800\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n",
        b64(&gb2312("王芳"))
    )
    .into_bytes()
}

fn mbox_message(n: usize, subject: &str, body: &str) -> String {
    format!(
        "From sender{n}@example.org Mon Nov  2 10:0{n}:00 2026\nFrom: Sender {n} <sender{n}@example.org>\nSubject: {subject}\nDate: Mon, 2 Nov 2026 10:0{n}:00 +0000\n\n{body}\n\n"
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

fn run(store: &MemoryStore, e: &flurry_embed::Embedder, root: &Path) -> Summary {
    // Through the extraction worker built from this crate, as `flurry __extract` runs.
    let worker = Extractor::child(env!("CARGO_BIN_EXE_flurry-extract"), Vec::<String>::new());
    ingest_with(
        store,
        e,
        &[root.to_path_buf()],
        false,
        &worker,
        &mut |_, _, _| {},
    )
    .unwrap()
}

#[test]
fn mail_and_pdf_are_read_with_their_metadata() {
    let e = embedder();
    let src = tempfile::tempdir().unwrap();
    let d = src.path();
    write(d, "mail/alice.eml", ALICE.as_bytes());
    write(d, "mail/wang.eml", &chinese_mail());
    write(
        d,
        "mail/archive.mbox",
        (mbox_message(
            1,
            "Dentist appointment",
            "Your dentist appointment is moved to 3 December at 11:15.",
        ) + &mbox_message(
            2,
            "Library books",
            "The two library books are due back on Saturday.",
        ) + &mbox_message(3, "Tennis", "Court 7 is booked for Sunday morning."))
            .as_bytes(),
    );
    write(
        d,
        "docs/lease.pdf",
        &pdf(&[
            "Apartment lease agreement",
            "The monthly rent is 1250 euros, due on the fifth day of each month.",
            "The deposit (two months) is held by the landlord, Mr. Okafor.",
        ]),
    );
    write(d, "docs/scan.pdf", &pdf(&[]));
    write(
        d,
        "docs/broken.pdf",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R",
    );
    write(
        d,
        "mail/not-mail.eml",
        b"just some words without any header\n",
    );

    let dbdir = tempfile::tempdir().unwrap();
    let store = MemoryStore::open(
        &dbdir.path().join("memory.db"),
        &MemoryKey::from_bytes([3; 32]),
    )
    .unwrap();
    let s = run(&store, &e, d);
    // alice + wang + 3 mbox messages + lease.
    assert_eq!(s.added, 6, "{s:?}");
    let reason = |name: &str| {
        s.failed
            .iter()
            .find(|(p, _)| p.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not reported: {:?}", s.failed))
            .1
            .clone()
    };
    assert!(
        reason("scan.pdf").contains("no text layer"),
        "{}",
        reason("scan.pdf")
    );
    assert!(
        reason("broken.pdf").contains("PDF"),
        "{}",
        reason("broken.pdf")
    );
    assert!(
        reason("not-mail.eml").contains("not an e-mail"),
        "{}",
        reason("not-mail.eml")
    );
    assert_eq!(s.failed.len(), 3, "{:?}", s.failed);

    let docs = store.list().unwrap();
    let alice = docs.iter().find(|d| d.path.ends_with("alice.eml")).unwrap();
    assert_eq!(alice.kind, "email");
    assert_eq!(alice.title, "Boiler service on Thursday");
    assert_eq!(
        alice.sender.as_deref(),
        Some("Alice Martin <alice@example.org>")
    );
    assert_eq!(
        alice.date,
        Some(1_794_299_400),
        "Date header, not the file time"
    );
    let wang = docs.iter().find(|d| d.path.ends_with("wang.eml")).unwrap();
    assert_eq!(
        wang.title, "项目会议改到周五",
        "RFC 2047 GB2312 subject decoded"
    );
    assert_eq!(wang.sender.as_deref(), Some("王芳 <wangfang@example.cn>"));
    let messages: Vec<_> = docs
        .iter()
        .filter(|d| d.path.contains("archive.mbox#"))
        .collect();
    assert_eq!(messages.len(), 3);
    assert!(messages.iter().all(|m| m.kind == "email"));
    assert_eq!(
        docs.iter()
            .find(|d| d.path.ends_with("archive.mbox#1"))
            .unwrap()
            .title,
        "Library books"
    );
    assert_eq!(
        docs.iter()
            .find(|d| d.path.ends_with("lease.pdf"))
            .unwrap()
            .kind,
        "pdf"
    );

    let search = |q: &str, mode, f: &Filters| {
        let v = e.embed_one(q).unwrap();
        store.search(q, Some(&v), 3, mode, f).unwrap()
    };
    let any = Filters::default();
    // Quoted-printable decoded (é, soft line break joined).
    let hits = search("Caloré technician boiler", SearchMode::Bm25, &any);
    assert!(hits[0].path.ends_with("alice.eml"), "{hits:?}");
    assert!(
        hits[0].text.contains("service the boiler"),
        "{}",
        hits[0].text
    );
    assert!(
        hits[0].text.contains("From: Alice Martin"),
        "headers are part of the text"
    );
    // GB2312 base64 body decoded and indexed per character.
    let hits = search("预算表", SearchMode::Bm25, &any);
    assert!(
        !hits.is_empty() && hits[0].path.ends_with("wang.eml"),
        "{hits:?}"
    );
    assert!(hits[0].text.contains("二楼会议室"), "{}", hits[0].text);
    // A message of the mailbox, by meaning.
    let hits = search("when do I see the dentist", SearchMode::Hybrid, &any);
    assert!(hits[0].path.ends_with("archive.mbox#0"), "{hits:?}");
    // The PDF's text layer.
    let hits = search("how much is the rent", SearchMode::Hybrid, &any);
    assert!(hits[0].path.ends_with("lease.pdf"), "{hits:?}");
    assert!(hits[0].text.contains("1250 euros"), "{}", hits[0].text);
    // Sender and date filters.
    let from_wang = Filters {
        sender: Some("wangfang@".into()),
        ..Filters::default()
    };
    let hits = search("meeting", SearchMode::Hybrid, &from_wang);
    assert!(
        !hits.is_empty() && hits.iter().all(|h| h.path.ends_with("wang.eml")),
        "{hits:?}"
    );
    let november_tenth = Filters {
        since: Some(1_794_268_800),
        until: Some(1_794_355_200),
        ..Filters::default()
    };
    let hits = search("service", SearchMode::Hybrid, &november_tenth);
    assert!(
        !hits.is_empty() && hits.iter().all(|h| h.path.ends_with("alice.eml")),
        "{hits:?}"
    );

    // A mailbox grows: only the new message is embedded.
    let mut grown = std::fs::read(d.join("mail/archive.mbox")).unwrap();
    grown.extend_from_slice(
        mbox_message(4, "Plumber", "The plumber invoice is 180 euros.").as_bytes(),
    );
    write(d, "mail/archive.mbox", &grown);
    let s = run(&store, &e, d);
    assert_eq!((s.added, s.updated, s.removed), (1, 0, 0), "{s:?}");
    assert_eq!(s.unchanged, 6, "3 old messages + 2 mails + the PDF: {s:?}");
    // It is compacted to its first message: the others leave the store.
    write(
        d,
        "mail/archive.mbox",
        mbox_message(
            1,
            "Dentist appointment",
            "Your dentist appointment is moved to 3 December at 11:15.",
        )
        .as_bytes(),
    );
    let s = run(&store, &e, d);
    assert_eq!((s.added, s.updated, s.removed), (0, 0, 3), "{s:?}");
    let left: Vec<_> = store
        .list()
        .unwrap()
        .into_iter()
        .filter(|d| d.path.contains("archive.mbox"))
        .collect();
    assert_eq!(left.len(), 1);
    assert!(left[0].path.ends_with("#0"));
    // Forgetting the mailbox file forgets its messages.
    let mbox_path = std::fs::canonicalize(d.join("mail/archive.mbox")).unwrap();
    assert_eq!(store.forget(&mbox_path.to_string_lossy()).unwrap(), 1);
}
