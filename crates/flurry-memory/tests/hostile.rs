//! Hostile documents: each test builds a file that attacked the node before extraction
//! ran in a limited child (a self-drawing PDF, a Flate bomb, runs of `&` as HTML and in a
//! mail) and ingests it next to a normal file through the real worker binary, a real
//! SQLCipher store and the real MiniLM model. The attack must cost that file only: the
//! call returns, the file is in `failed` with a reason, and the normal file is stored.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flurry_memory::{
    Extractor, Limits, MAX_PDF_INFLATED_BYTES, MemoryKey, MemoryStore, Summary, extract,
    ingest_with,
};

fn embedder() -> flurry_embed::Embedder {
    let models = std::env::var_os("FLURRY_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".flurry/models"));
    flurry_embed::Embedder::load(&models.join(flurry_embed::MODEL_DIR_NAME)).unwrap_or_else(|e| {
        panic!("{e}: run scripts/fetch-models.sh to install the embedding model")
    })
}

/// The worker built from this crate (`src/bin/flurry-extract.rs`), as the node runs
/// `flurry __extract`.
fn worker() -> Extractor {
    Extractor::child(env!("CARGO_BIN_EXE_flurry-extract"), Vec::<String>::new())
}

/// A PDF 1.4 from its objects (object `i` is `i+1 0 obj`), xref offsets exact; objects
/// are raw bytes so that streams can hold binary data.
fn pdf(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(o);
        out.extend_from_slice(b"\nendobj\n");
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

fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut o = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    o.extend_from_slice(data);
    o.extend_from_slice(b"\nendstream");
    o
}

const FONT: &str =
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>";

/// One page whose content draws Form XObject `/X`, and `/X`'s own resources name
/// itself as `/X` and its content is `/X Do`: pdf-extract follows the drawing with no
/// depth limit, so it recurses until the stack overflows (an abort, not a panic).
fn self_drawing_pdf() -> Vec<u8> {
    pdf(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 6 0 R >> /XObject << /X 5 0 R >> >> /Contents 4 0 R >>".to_vec(),
        stream("", b"BT /F1 12 Tf 72 720 Td (before the form) Tj ET /X Do"),
        stream(
            "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 6 0 R >> /XObject << /X 5 0 R >> >>",
            b"BT /F1 12 Tf (again) Tj ET /X Do",
        ),
        FONT.as_bytes().to_vec(),
    ])
}

/// zlib of `n` zero bytes, written in pieces (about 1000:1, so 1 GiB is about 1 MiB).
fn zeros_deflated(n: u64) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(block.len() as u64) as usize;
        z.write_all(&block[..k]).unwrap();
        left -= k as u64;
    }
    z.finish().unwrap()
}

/// A one-page PDF whose content stream is Flate data that inflates to `inflated` bytes
/// of zeros: lopdf inflates a stream completely into memory before pdf-extract reads it.
fn flate_bomb_pdf(inflated: u64) -> Vec<u8> {
    pdf(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>".to_vec(),
        stream("/Filter /FlateDecode", &zeros_deflated(inflated)),
        FONT.as_bytes().to_vec(),
    ])
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Ingests `dir` (which holds the hostile file and `z-normal.txt`) with `extractor` and
/// checks the outcome: the hostile file failed with a reason containing `reason`, the
/// normal file was stored.
fn ingest_dir(dir: &Path, extractor: &Extractor, hostile: &str, reason: &str) -> Summary {
    write(
        dir,
        "z-normal.txt",
        b"The allotment key hangs behind the blue door.\n",
    );
    let db = tempfile::tempdir().unwrap();
    let store = MemoryStore::open(
        &db.path().join("memory.db"),
        &MemoryKey::from_bytes([7; 32]),
    )
    .unwrap();
    let e = embedder();
    let s = ingest_with(
        &store,
        &e,
        &[dir.to_path_buf()],
        false,
        extractor,
        &mut |_, _, _| {},
    )
    .expect("ingestion returns even when a file attacks its reader");
    eprintln!("failed: {:?}", s.failed);
    let failed: Vec<_> = s
        .failed
        .iter()
        .filter(|(p, _)| p.ends_with(hostile))
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "{hostile} must be reported as failed: {s:?}"
    );
    assert!(
        failed[0].1.contains(reason),
        "reason for {hostile} must mention {reason:?}: {:?}",
        failed[0].1
    );
    let docs = store.list().unwrap();
    assert!(
        docs.iter().any(|d| d.path.ends_with("z-normal.txt")),
        "the normal file after the hostile one is ingested: {docs:?}"
    );
    s
}

/// Attack: a PDF whose Form XObject draws itself. Before, pdf-extract recursed until the
/// stack overflowed and the abort took the whole node (or `flurry ingest`) down; now the
/// extraction child dies, the file is reported, and the next file is ingested.
#[test]
fn self_drawing_pdf_crashes_only_its_child() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a-self.pdf", &self_drawing_pdf());
    ingest_dir(dir.path(), &worker(), "a-self.pdf", "stack overflow");
}

/// Attack: a 1 MiB PDF whose content stream inflates to 2 GiB. Before, lopdf inflated
/// it to the end in the node's memory; now the inflated size is counted before parsing
/// and the file is refused after reading at most `MAX_PDF_INFLATED_BYTES`.
#[test]
fn flate_bomb_pdf_is_refused_before_it_is_inflated() {
    let bomb = flate_bomb_pdf(2 << 30);
    assert!(
        bomb.len() < 4 << 20,
        "the bomb is small: {} bytes",
        bomb.len()
    );
    // The check itself, in this process: it must stop at the cap, not inflate 2 GiB.
    let t = Instant::now();
    let err = extract("pdf", &bomb, Path::new("bomb.pdf")).unwrap_err();
    assert!(err.contains("decompression bomb"), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "refusing took {:?}",
        t.elapsed()
    );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a-bomb.pdf", &bomb);
    ingest_dir(dir.path(), &worker(), "a-bomb.pdf", "decompression bomb");
}

/// Attack: Flate inside Flate (`/Filter [/FlateDecode /FlateDecode]`): the outer layer
/// inflates to a few MiB only, the inner one to 2 GiB. The count follows the layers.
#[test]
fn nested_flate_bomb_pdf_is_refused() {
    let inner = zeros_deflated(2 << 30);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&inner).unwrap();
    let outer = z.finish().unwrap();
    let bomb = pdf(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_vec(),
        stream("/Filter [/FlateDecode /FlateDecode]", &outer),
    ]);
    let err = extract("pdf", &bomb, Path::new("bomb.pdf")).unwrap_err();
    assert!(err.contains("decompression bomb"), "{err}");
    const { assert!(MAX_PDF_INFLATED_BYTES < 2 << 30) };
}

/// Attack the child's memory limit directly: a bomb below the inflate cap still needs
/// its inflated bytes in memory, so a worker limited to 64 MiB of address space dies of
/// it, and that is reported as a memory failure while ingestion goes on. (Filters the
/// count does not follow, like LZW, meet this limit.)
#[test]
fn memory_limit_stops_a_child_and_ingestion_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a-big.pdf", &flate_bomb_pdf(200 << 20));
    let tight = worker().with_limits(Limits::default().with_memory_bytes(64 << 20));
    ingest_dir(dir.path(), &tight, "a-big.pdf", "memory");
}

/// A child that outlives its deadline is killed and reported: the deadline is what
/// stops a parser that loops. A worker with a zero deadline cannot finish anything.
#[test]
fn deadline_kills_a_slow_child_and_ingestion_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a-slow.html",
        "<p>slow</p>".repeat(100_000).as_bytes(),
    );
    let hasty = worker().with_limits(Limits::default().with_deadline(Duration::ZERO));
    // With a zero deadline the normal file fails too; only the first file is checked here.
    let s = {
        write(dir.path(), "z-normal.txt", b"normal\n");
        let db = tempfile::tempdir().unwrap();
        let store = MemoryStore::open(
            &db.path().join("memory.db"),
            &MemoryKey::from_bytes([7; 32]),
        )
        .unwrap();
        ingest_with(
            &store,
            &embedder(),
            &[dir.path().to_path_buf()],
            false,
            &hasty,
            &mut |_, _, _| {},
        )
        .unwrap()
    };
    let slow = s.failed.iter().find(|(p, _)| p.ends_with("a-slow.html"));
    assert!(
        slow.is_some_and(|(_, r)| r.contains("took longer than")),
        "{s:?}"
    );
}

/// A program that is not an extraction worker is named in the error instead of
/// producing garbage documents.
#[test]
fn a_wrong_worker_program_is_reported() {
    let wrong = Extractor::child("/bin/true", Vec::<String>::new());
    let err = wrong
        .extract("text", b"hello", Path::new("a.txt"))
        .unwrap_err();
    assert!(err.contains("/bin/true"), "{err}");
    let missing = Extractor::child("/nonexistent/flurry", Vec::<String>::new());
    let err = missing
        .extract("text", b"hello", Path::new("a.txt"))
        .unwrap_err();
    assert!(err.contains("cannot start"), "{err}");
}

/// Attack: 8 000 000 `&` as an HTML page. Entity decoding searched the whole rest of
/// the text for a `;` at every `&`: 3.2e13 byte comparisons, hours. Now each search
/// looks 10 bytes ahead; the bound is generous (debug build, loaded machine).
#[test]
fn eight_million_ampersands_as_html_extract_in_linear_time() {
    let html = "&".repeat(8_000_000);
    let t = Instant::now();
    let docs = extract("html", html.as_bytes(), Path::new("amp.html")).unwrap();
    assert_eq!(docs[0].text.len(), 8_000_000);
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    // Through the worker too, and a page of a million `<title>` with no `</title>`
    // (the title search was quadratic in the same way).
    let titles = "<title>".repeat(1_000_000);
    let t = Instant::now();
    for (name, bytes) in [
        ("amp.html", html.as_bytes()),
        ("title.html", titles.as_bytes()),
    ] {
        worker()
            .extract("html", bytes, Path::new(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(
        t.elapsed() < Duration::from_secs(40),
        "took {:?}",
        t.elapsed()
    );
}

/// A mail whose HTML part is 8 000 000 `&`.
fn ampersand_mail() -> Vec<u8> {
    format!(
        "From: Mallory <mallory@example.org>\r\nTo: you@example.org\r\nSubject: hello\r\nDate: Tue, 10 Nov 2026 09:30:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{}\r\n",
        "&".repeat(8_000_000)
    )
    .into_bytes()
}

/// Attack: anyone who can mail the owner sends an HTML part of 8 000 000 `&`; the mail
/// reader runs the same entity decoding. It extracts in linear time, in a `.eml` and
/// inside an `.mbox`.
#[test]
fn eight_million_ampersands_in_a_mail_extract_in_linear_time() {
    let mail = ampersand_mail();
    let t = Instant::now();
    let docs = extract("email", &mail, Path::new("amp.eml")).unwrap();
    assert!(docs[0].text.contains(&"&".repeat(1000)));
    let mut mbox = b"From mallory@example.org Tue Nov 10 09:30:00 2026\n".to_vec();
    mbox.extend_from_slice(
        &mail
            .iter()
            .copied()
            .filter(|b| *b != b'\r')
            .collect::<Vec<_>>(),
    );
    let docs = extract("mbox", &mbox, Path::new("inbox.mbox")).unwrap();
    assert_eq!(docs.len(), 1);
    assert!(
        t.elapsed() < Duration::from_secs(40),
        "took {:?}",
        t.elapsed()
    );
    let docs = worker()
        .extract("email", &mail, Path::new("amp.eml"))
        .unwrap();
    assert_eq!(docs[0].title, "hello");
}

/// Input caps: a file over its kind's cap is refused before it is parsed, and a mailbox
/// message over the message cap is skipped while the others are read.
#[test]
fn files_over_their_caps_are_refused() {
    let big = vec![b'a'; (flurry_memory::MAX_FILE_BYTES + 1) as usize];
    let err = extract("text", &big, Path::new("big.txt")).unwrap_err();
    assert!(err.contains("larger than 32 MiB"), "{err}");
    let big_pdf = vec![b'%'; (flurry_memory::MAX_PDF_BYTES + 1) as usize];
    let err = extract("pdf", &big_pdf, Path::new("big.pdf")).unwrap_err();
    assert!(err.contains("larger than 64 MiB"), "{err}");
    let mut mbox =
        b"From a@example.org Mon Nov  2 10:00:00 2026\nFrom: a@example.org\nSubject: huge\n\n"
            .to_vec();
    mbox.extend(std::iter::repeat_n(b'x', flurry_memory::MAX_MESSAGE_BYTES));
    mbox.extend_from_slice(
        b"\n\nFrom b@example.org Mon Nov  2 10:01:00 2026\nFrom: b@example.org\nSubject: small\n\nhi\n",
    );
    let docs = extract("mbox", &mbox, Path::new("inbox.mbox")).unwrap();
    assert_eq!(docs.len(), 1, "the huge message is skipped");
    assert_eq!(docs[0].title, "small");
    assert_eq!(docs[0].part, Some(1));
}

/// What one child costs: spawning the worker for a small file stays far below the cost
/// of embedding it (measured here, not asserted tightly).
#[test]
fn a_child_per_file_is_cheap() {
    let w = worker();
    let t = Instant::now();
    for i in 0..20 {
        let docs = w
            .extract("text", format!("note {i}\n").as_bytes(), Path::new("n.txt"))
            .unwrap();
        assert_eq!(docs[0].text, format!("note {i}\n"));
    }
    let per = t.elapsed() / 20;
    eprintln!("one extraction child: {per:?}");
    assert!(per < Duration::from_secs(1), "{per:?} per child");
}
