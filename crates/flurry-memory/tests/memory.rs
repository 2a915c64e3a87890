//! The memory store with the real MiniLM model and a real SQLCipher database.

use std::path::PathBuf;

use flurry_memory::{Extractor, Filters, MemoryKey, MemoryStore, SearchMode, ingest_with};

/// The extraction worker built from this crate, standing in for `flurry __extract`.
fn worker() -> Extractor {
    Extractor::child(env!("CARGO_BIN_EXE_flurry-extract"), Vec::<String>::new())
}

fn embedder() -> flurry_embed::Embedder {
    let models = std::env::var_os("FLURRY_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".flurry/models"));
    let dir = models.join(flurry_embed::MODEL_DIR_NAME);
    flurry_embed::Embedder::load(&dir).unwrap_or_else(|e| {
        panic!("{e}: run scripts/fetch-models.sh to install the embedding model")
    })
}

fn key(b: u8) -> MemoryKey {
    MemoryKey::from_bytes([b; 32])
}

/// A small corpus in a temp dir.
fn corpus() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let w = |name: &str, body: &[u8]| {
        let p = d.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    };
    w(
        "notes/bread.md",
        b"# Sourdough\n\nMix flour, water and starter. Let the dough rise overnight, then bake at 230 degrees for 40 minutes.\n",
    );
    w(
        "notes/bike.txt",
        b"The bicycle chain needs oil every 300 km. Replace the chain when it stretches by 0.5 percent.\n",
    );
    w(
        "web/trip.html",
        b"<html><head><title>Lisbon trip</title><style>p{color:red}</style></head><body><p>We visited the Bel&eacute;m tower &amp; ate past&eacute;is de nata.</p><script>var secret='nope';</script></body></html>",
    );
    w(
        "notes/park-zh.md",
        "# 散步\n\n我喜欢在春天去公园散步，看樱花。\n".as_bytes(),
    );
    w("notes/tax.txt", b"Tax return deadline: file the 2026 return before April 30. Receipts are in the blue folder.\n");
    w("notes/.gitignore", b"private-ignored.txt\n");
    w(
        "notes/private-ignored.txt",
        b"this file is ignored and must never be ingested: kumquat\n",
    );
    w("bin/blob.txt", &[0u8, 159, 146, 150, 0, 1, 2]);
    w("bad/latin1.txt", &[b'c', b'a', b'f', 0xe9, b'\n']);
    w("misc/photo.jpg", b"\xff\xd8\xff\xe0 not really a jpeg");
    d
}

#[test]
fn ingests_searches_forgets_and_keeps_everything_encrypted() {
    let e = embedder();
    let src = corpus();
    let dbdir = tempfile::tempdir().unwrap();
    let db = dbdir.path().join("memory.db");
    let store = MemoryStore::open(&db, &key(7)).unwrap();
    let root = vec![src.path().to_path_buf()];
    let mut seen = 0;
    let s = ingest_with(&store, &e, &root, false, &worker(), &mut |_, _, _| {
        seen += 1
    })
    .unwrap();
    assert_eq!(s.added, 5, "{s:?}");
    assert!(seen >= 8, "progress is reported per file");
    let failed: Vec<&str> = s.failed.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(s.failed.len(), 3, "{:?}", s.failed);
    assert!(failed.iter().any(|p| p.ends_with("blob.txt")));
    assert!(failed.iter().any(|p| p.ends_with("latin1.txt")));
    assert!(failed.iter().any(|p| p.ends_with("photo.jpg")));
    let reason = &s
        .failed
        .iter()
        .find(|(p, _)| p.ends_with("blob.txt"))
        .unwrap()
        .1;
    assert!(reason.contains("binary"), "{reason}");
    let docs = store.list().unwrap();
    assert!(
        docs.iter().all(|d| !d.path.contains("private-ignored")),
        ".gitignore honoured"
    );
    let trip = docs.iter().find(|d| d.path.ends_with("trip.html")).unwrap();
    assert_eq!(trip.title, "Lisbon trip");

    let search = |q: &str, mode| {
        let v = e.embed_one(q).unwrap();
        store
            .search(q, Some(&v), 3, mode, &Filters::default())
            .unwrap()
    };
    // Meaning without shared words: only the vector side can find it.
    let hits = search("How long should I cook my loaf?", SearchMode::Vector);
    assert!(hits[0].path.ends_with("bread.md"), "{hits:?}");
    let hits = search("How long should I cook my loaf?", SearchMode::Hybrid);
    assert!(hits[0].path.ends_with("bread.md"), "{hits:?}");
    // Exact words: BM25.
    let hits = search("chain oil", SearchMode::Bm25);
    assert!(hits[0].path.ends_with("bike.txt"), "{hits:?}");
    assert!(
        hits[0].snippet.to_lowercase().contains("chain"),
        "{}",
        hits[0].snippet
    );
    // Chinese words are indexed per character.
    let hits = search("公园", SearchMode::Bm25);
    assert!(
        !hits.is_empty() && hits[0].path.ends_with("park-zh.md"),
        "{hits:?}"
    );
    // HTML entities decoded, scripts and styles dropped.
    let hits = search("Belém pastéis", SearchMode::Bm25);
    assert!(hits[0].path.ends_with("trip.html"), "{hits:?}");
    assert!(
        !hits[0].text.contains("secret") && !hits[0].text.contains("color"),
        "{}",
        hits[0].text
    );
    // Filters.
    let v = e.embed_one("deadline").unwrap();
    let only_web = Filters {
        path_prefix: Some(src.path().join("web").to_string_lossy().into_owned()),
        ..Filters::default()
    };
    let hits = store
        .search("deadline", Some(&v), 5, SearchMode::Hybrid, &only_web)
        .unwrap();
    assert!(hits.iter().all(|h| h.path.contains("/web/")), "{hits:?}");
    let markdown = Filters {
        kind: Some("markdown".into()),
        ..Filters::default()
    };
    let hits = store
        .search("deadline", Some(&v), 5, SearchMode::Hybrid, &markdown)
        .unwrap();
    assert!(hits.iter().all(|h| h.path.ends_with(".md")), "{hits:?}");

    // Incremental: nothing changed → nothing re-embedded.
    let s2 = ingest_with(&store, &e, &root, false, &worker(), &mut |_, _, _| {}).unwrap();
    assert_eq!((s2.added, s2.updated, s2.unchanged), (0, 0, 5), "{s2:?}");
    // A changed file is re-chunked; a deleted one is pruned.
    std::fs::write(
        src.path().join("notes/bike.txt"),
        "Tyre pressure: 4 bar for the city bike.\n",
    )
    .unwrap();
    std::fs::remove_file(src.path().join("notes/tax.txt")).unwrap();
    let s3 = ingest_with(&store, &e, &root, true, &worker(), &mut |_, _, _| {}).unwrap();
    assert_eq!(
        (s3.added, s3.updated, s3.unchanged, s3.removed),
        (0, 1, 3, 1),
        "{s3:?}"
    );
    assert!(
        search("chain oil", SearchMode::Bm25)
            .iter()
            .all(|h| !h.path.ends_with("bike.txt"))
    );
    assert!(
        search("tyre pressure", SearchMode::Bm25)[0]
            .path
            .ends_with("bike.txt")
    );

    // Forget removes the document from the full-text index and the vectors.
    let (_, chunks_before, fts_before) = store.counts().unwrap();
    let bread = store
        .list()
        .unwrap()
        .into_iter()
        .find(|d| d.path.ends_with("bread.md"))
        .unwrap();
    assert_eq!(store.forget(&bread.id.to_string()).unwrap(), 1);
    let (docs_after, chunks_after, fts_after) = store.counts().unwrap();
    assert_eq!(docs_after, 3);
    assert_eq!(chunks_before - chunks_after, bread.chunks);
    assert_eq!(fts_before - fts_after, bread.chunks);
    assert!(search("sourdough flour", SearchMode::Bm25).is_empty());
    assert!(
        search("How long should I cook my loaf?", SearchMode::Vector)
            .iter()
            .all(|h| !h.path.ends_with("bread.md"))
    );
    // Forget by directory.
    assert_eq!(
        store
            .forget(&src.path().join("web").to_string_lossy())
            .unwrap(),
        1
    );
    drop(store);

    // At rest: no ingested text in any file of the database (main, WAL, shared memory).
    for entry in std::fs::read_dir(dbdir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for needle in [
            "Tyre pressure",
            "bicycle",
            "樱花",
            "Lisbon",
            "SQLite format 3",
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle:?} readable in the raw database"
            );
        }
    }
    // Another key cannot open it, and says so.
    let err = MemoryStore::open(&db, &key(8)).unwrap_err().to_string();
    assert!(err.contains("does not open with this node's key"), "{err}");
    let store = MemoryStore::open(&db, &key(7)).unwrap();
    assert_eq!(store.counts().unwrap().0, 2);
}

#[test]
fn chunks_stay_within_the_model_window_and_cover_the_text() {
    let e = embedder();
    let para = "Flurry keeps your notes on your own machine. ".repeat(40);
    let zh = "我的笔记只保存在我自己的电脑上。".repeat(60);
    let text = format!("{para}\n\n{zh}\n\nShort tail.");
    let count = |t: &str| flurry_memory::Embed::count_tokens(&e, t);
    let ranges = flurry_memory::chunk(&text, &count);
    assert!(ranges.len() >= 3, "{ranges:?}");
    for (a, b) in &ranges {
        assert!(
            count(&text[*a..*b]) <= 254,
            "chunk {a}..{b} exceeds the window"
        );
    }
    // In order, without gaps that hold text.
    let mut pos = 0;
    for (a, b) in &ranges {
        assert!(
            text[pos..*a].trim().is_empty(),
            "text lost between {pos} and {a}"
        );
        pos = *b;
    }
    assert!(text[pos..].trim().is_empty());
}

/// The vectors a store keeps in memory follow writes by itself and by other connections
/// (another process ingesting while the node searches).
#[test]
fn kept_vectors_follow_writes_from_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.db");
    let node = MemoryStore::open(&db, &key(5)).unwrap();
    let cli = MemoryStore::open(&db, &key(5)).unwrap();
    let axis = |i: usize| {
        let mut v = vec![0.0f32; 384];
        v[i] = 1.0;
        v
    };
    let put = |store: &MemoryStore, path: &str, i: usize| {
        store
            .put(
                &flurry_memory::NewDocument {
                    path: path.into(),
                    kind: "text".into(),
                    hash: path.into(),
                    bytes: 1,
                    title: path.into(),
                    sender: None,
                    date: None,
                },
                &[flurry_memory::NewChunk {
                    start: 0,
                    end: 1,
                    text: path.into(),
                    embedding: axis(i),
                }],
            )
            .unwrap()
    };
    let top = |store: &MemoryStore, i: usize| {
        store
            .search(
                "",
                Some(&axis(i)),
                1,
                SearchMode::Vector,
                &Filters::default(),
            )
            .unwrap()
            .first()
            .map(|h| h.path.clone())
    };
    put(&node, "/a", 0);
    assert_eq!(top(&node, 0).as_deref(), Some("/a"));
    // Another connection adds a document: the node's next search sees it.
    put(&cli, "/b", 1);
    assert_eq!(top(&node, 1).as_deref(), Some("/b"));
    // And forgets one.
    assert_eq!(cli.forget("/b").unwrap(), 1);
    assert_eq!(top(&node, 1).as_deref(), Some("/a"), "only /a is left");
    // Its own writes too.
    put(&node, "/c", 2);
    assert_eq!(top(&node, 2).as_deref(), Some("/c"));
    node.forget("/c").unwrap();
    assert_ne!(top(&node, 2).as_deref(), Some("/c"));
    // A filter applies to the kept vectors.
    put(&node, "/dir/d", 3);
    let only_dir = Filters {
        path_prefix: Some("/dir/".into()),
        ..Filters::default()
    };
    let hits = node
        .search("", Some(&axis(0)), 5, SearchMode::Vector, &only_dir)
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].path, "/dir/d");
}
