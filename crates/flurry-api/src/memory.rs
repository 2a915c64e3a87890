//! `/api/memory/*`: the node's private memory: search by keywords and meaning, ingest
//! files, list, read and forget documents.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use flurry_memory::{Filters, MemoryStore, SearchMode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::json::ApiJson;

/// Most paths one ingest request names.
const MAX_INGEST_PATHS: usize = 256;

/// Most results one search returns.
const MAX_K: usize = 50;

/// Where `POST /api/memory/ingest` learns which folders it may read. Anything outside
/// them is refused, so that an API client (or a web page that reaches the API) cannot
/// make the node read the owner's other files.
#[derive(Debug, Clone, Default)]
pub enum MemoryRoots {
    /// No folder: the API ingests nothing (the default).
    #[default]
    None,
    /// These folders (tests and embedders).
    Fixed(Vec<PathBuf>),
    /// `[memory] roots` of this config file, read again at every ingest request, so that
    /// `flurry memory roots add PATH` takes effect on a running node.
    ConfigFile(PathBuf),
}

impl MemoryRoots {
    /// The folders now, canonical (symlinks resolved); roots that do not exist (or are
    /// not folders) are left out. Blocking.
    pub fn resolve(&self) -> Result<Vec<PathBuf>, String> {
        let listed = match self {
            Self::None => Vec::new(),
            Self::Fixed(r) => r.clone(),
            Self::ConfigFile(path) => {
                flurry_config::FileConfig::load(path)
                    .map_err(|e| e.to_string())?
                    .memory
                    .roots
            }
        };
        Ok(listed
            .iter()
            .filter(|r| r.is_absolute())
            .filter_map(|r| std::fs::canonicalize(r).ok())
            .filter(|r| r.is_dir())
            .collect())
    }
}

/// The one answer for a path the API may not ingest: the same whether the path exists
/// or not, so that the refusal tells nothing about the disk outside the roots.
fn not_allowed(i: usize) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "paths[{i}] is not inside a folder this node ingests from over the API: on the node, run `flurry memory roots add PATH` to allow a folder, or `flurry ingest PATH` to ingest it once"
        ),
    )
    .param(&format!("paths[{i}]"))
    .code("path_not_allowed")
}

/// The canonical form of `path` when it lies inside one of `roots` (canonical too).
/// Canonicalizing first resolves `..` and every symlink, so a link inside a root that
/// points outside it is judged by where it points.
fn inside_roots(path: &FsPath, roots: &[PathBuf]) -> Option<PathBuf> {
    let canon = std::fs::canonicalize(path).ok()?;
    roots.iter().any(|r| canon.starts_with(r)).then_some(canon)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchQuery {
    q: String,
    k: Option<usize>,
    mode: Option<String>,
    path: Option<String>,
    kind: Option<String>,
    sender: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
}

fn store(st: &AppState) -> Result<Arc<MemoryStore>, ApiError> {
    st.memory.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node's memory is not open (see the node log)",
        )
        .code("memory_unavailable")
    })
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

pub(crate) async fn search(
    State(st): State<AppState>,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let store = store(&st)?;
    if q.q.trim().is_empty() {
        return Err(ApiError::bad_field("q", "the query is empty"));
    }
    let k = q.k.unwrap_or(5);
    if k == 0 || k > MAX_K {
        return Err(ApiError::bad_field("k", format!("k must be 1 to {MAX_K}")));
    }
    let mode = match q.mode.as_deref() {
        None | Some("hybrid") => SearchMode::Hybrid,
        Some("bm25") => SearchMode::Bm25,
        Some("vector") => SearchMode::Vector,
        Some(other) => {
            return Err(ApiError::bad_field(
                "mode",
                format!("mode {other:?} is not hybrid, bm25 or vector"),
            ));
        }
    };
    let embeddings = st.embeddings.clone();
    let filters = Filters {
        path_prefix: q.path,
        kind: q.kind,
        since: q.since,
        until: q.until,
        sender: q.sender,
    };
    let hits = tokio::task::spawn_blocking(move || {
        let vector = match (mode, embeddings) {
            (SearchMode::Bm25, _) | (_, None) => None,
            (_, Some(e)) => Some(e.get()?.embed_one(&q.q).map_err(internal)?),
        };
        store
            .search(&q.q, vector.as_deref(), k, mode, &filters)
            .map_err(internal)
    })
    .await
    .map_err(internal)??;
    Ok(Json(json!({ "results": hits })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngestRequest {
    paths: Vec<String>,
    #[serde(default)]
    prune: bool,
}

/// Clears the ingestion flag when the request ends, however it ends.
struct IngestSlot(AppState);

impl Drop for IngestSlot {
    fn drop(&mut self) {
        self.0.ingesting.store(false, Ordering::Release);
    }
}

/// `POST /api/memory/ingest`: ingests files and directories on this node's disk (absolute
/// paths), as `flurry ingest` does; answers with the run's summary.
pub(crate) async fn ingest(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<IngestRequest>,
) -> Result<Json<Value>, ApiError> {
    let store = store(&st)?;
    if req.paths.is_empty() || req.paths.len() > MAX_INGEST_PATHS {
        return Err(ApiError::bad_field(
            "paths",
            format!("give 1 to {MAX_INGEST_PATHS} paths"),
        ));
    }
    for (i, p) in req.paths.iter().enumerate() {
        if !FsPath::new(p).is_absolute() {
            return Err(ApiError::bad_field(
                &format!("paths[{i}]"),
                format!("{p:?} is not an absolute path (the node resolves no relative paths)"),
            ));
        }
    }
    // Only folders the owner listed; the walker then follows no symlink, so nothing under
    // a root leads outside it.
    let roots = st.memory_roots.clone();
    let asked = req.paths.clone();
    let paths = tokio::task::spawn_blocking(move || {
        let roots = roots.resolve().map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read [memory] roots ({e}); fix the config file"),
            )
            .code("memory_unavailable")
        })?;
        asked
            .iter()
            .enumerate()
            .map(|(i, p)| inside_roots(FsPath::new(p), &roots).ok_or_else(|| not_allowed(i)))
            .collect::<Result<Vec<PathBuf>, ApiError>>()
    })
    .await
    .map_err(internal)??;
    let Some(embeddings) = st.embeddings.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node has no embedding model configured",
        )
        .code("memory_unavailable"));
    };
    if st.ingesting.swap(true, Ordering::AcqRel) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "an ingestion is already running on this node; try again when it ends",
        )
        .code("ingest_busy"));
    }
    let slot = IngestSlot(st.clone());
    let extractor = st.extractor.clone();
    let summary = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let embedder = embeddings.get().map_err(internal)?;
        flurry_memory::ingest_with(
            &store,
            embedder.as_ref(),
            &paths,
            req.prune,
            &extractor,
            &mut |_, _, _| {},
        )
        .map_err(internal)
    })
    .await
    .map_err(internal)??;
    let failed: Vec<Value> = summary
        .failed
        .iter()
        .map(|(path, reason)| json!({"path": path, "reason": reason}))
        .collect();
    Ok(Json(json!({
        "added": summary.added,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
        "removed": summary.removed,
        "chunks": summary.chunks,
        "bytes": summary.bytes,
        "failed": failed,
    })))
}

/// `GET /api/memory/documents`: every stored document.
pub(crate) async fn documents(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = store(&st)?;
    let docs = tokio::task::spawn_blocking(move || store.list().map_err(internal))
        .await
        .map_err(internal)??;
    Ok(Json(json!({ "documents": docs })))
}

fn doc_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_field("id", format!("{id:?} is not a document id")))
}

/// `GET /api/memory/documents/{id}`: a document and its chunks (what a citation links to).
pub(crate) async fn document(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = store(&st)?;
    let id = doc_id(&id)?;
    let found = tokio::task::spawn_blocking(move || store.document(id).map_err(internal))
        .await
        .map_err(internal)??;
    let Some((info, chunks)) = found else {
        return Err(
            ApiError::new(StatusCode::NOT_FOUND, format!("no document {id} in memory"))
                .code("document_not_found"),
        );
    };
    let mut v = serde_json::to_value(info).unwrap_or_default();
    v["chunks"] = serde_json::to_value(chunks).unwrap_or_default();
    Ok(Json(v))
}

/// `DELETE /api/memory/documents/{id}`: forgets a document for real.
pub(crate) async fn forget(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let store = store(&st)?;
    let id = doc_id(&id)?;
    let history = st.agent.history.clone();
    let n = tokio::task::spawn_blocking(move || {
        let path = store.document(id).map_err(internal)?.map(|(d, _)| d.path);
        let n = store.forget(&id.to_string()).map_err(internal)?;
        if n > 0 {
            // The answers' citations hold snippets of the document: they go with it.
            history
                .forget_citations(&[id], path.as_slice())
                .map_err(internal)?;
        }
        Ok::<_, ApiError>(n)
    })
    .await
    .map_err(internal)??;
    if n == 0 {
        return Err(
            ApiError::new(StatusCode::NOT_FOUND, format!("no document {id} in memory"))
                .code("document_not_found"),
        );
    }
    Ok(StatusCode::NO_CONTENT)
}
