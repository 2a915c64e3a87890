//! The model store: a directory of GGUF files (`$FLURRY_MODELS`) shared by every node
//! home on the machine, and [`ModelId`]s.
//!
//! A model's id is the BLAKE3 root hash of its file. Hashing 250 MB takes a fraction
//! of a second, but listing should not re-read every file, so ids are cached in
//! `.ids/<file>.json` keyed by size and modification time. Imports copy into a
//! temporary file, hash while copying, sync, and rename, so a crash never leaves a
//! half-written model under a real name.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flurry_primitives::ModelId;
use serde::{Deserialize, Serialize};

use crate::gguf::{Gguf, Value};
use crate::{Error, Result};

const READ_CHUNK: usize = 1 << 20;

/// One model in the store (or a file named directly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelEntry {
    /// Name: the file name without `.gguf`.
    pub name: String,
    /// Full path of the file.
    pub path: PathBuf,
    /// File size in bytes.
    pub size: u64,
    /// BLAKE3 root of the file.
    pub model_id: ModelId,
}

/// Summary of a model file for `flurry model info`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The store entry.
    #[serde(flatten)]
    pub entry: ModelEntry,
    /// `general.architecture`.
    pub architecture: String,
    /// `general.name`, if present.
    pub display_name: Option<String>,
    /// Total parameters.
    pub parameters: u64,
    /// Quantisation: tensor types by parameter count, most common first.
    pub quantization: String,
    /// Trained context length.
    pub context_length: Option<u64>,
    /// `general.license`, if present.
    pub license: Option<String>,
    /// The chat template in the file, if any.
    pub chat_template: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct CachedId {
    size: u64,
    mtime_ns: u128,
    model_id: ModelId,
}

/// A model store directory.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

impl ModelStore {
    /// A store rooted at `dir` (created on first import).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every `*.gguf` in the store, sorted by name.
    pub fn list(&self) -> Result<Vec<ModelEntry>> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|source| Error::Io {
                path: self.dir.clone(),
                source,
            })?;
            let path = ent.path();
            if path.extension().is_some_and(|e| e == "gguf") && path.is_file() {
                out.push(self.entry(&path)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The entry for a file, using the id cache when the file is unchanged.
    pub fn entry(&self, path: &Path) -> Result<ModelEntry> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = fs::metadata(path).map_err(io)?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let name = model_name(path);
        let cache = self
            .dir
            .join(".ids")
            .join(format!("{}.json", file_name(path)));
        let in_store = path.parent() == Some(self.dir.as_path());
        let cached = in_store
            .then(|| fs::read_to_string(&cache).ok())
            .flatten()
            .and_then(|text| serde_json::from_str::<CachedId>(&text).ok())
            .filter(|c| c.size == meta.len() && c.mtime_ns == mtime_ns);
        if let Some(c) = cached {
            return Ok(ModelEntry {
                name,
                path: path.to_path_buf(),
                size: c.size,
                model_id: c.model_id,
            });
        }
        let model_id = hash_file(path, |_| {})?;
        if in_store {
            // The cache is an optimisation: failing to write it is not an error.
            let c = CachedId {
                size: meta.len(),
                mtime_ns,
                model_id,
            };
            let _ = write_atomic(
                &cache,
                serde_json::to_string(&c).unwrap_or_default().as_bytes(),
            );
        }
        Ok(ModelEntry {
            name,
            path: path.to_path_buf(),
            size: meta.len(),
            model_id,
        })
    }

    /// Copies a GGUF file into the store after validating it. `progress` receives
    /// bytes copied so far. Importing a file already in the store is a no-op.
    pub fn import(&self, src: &Path, mut progress: impl FnMut(u64)) -> Result<ModelEntry> {
        Gguf::open(src)?; // refuse anything that is not a valid model
        let dest = self.dir.join(file_name(src));
        if dest.exists() {
            let existing = self.entry(&dest)?;
            if existing.model_id == hash_file(src, |_| {})? {
                return Ok(existing);
            }
            return Err(Error::InvalidRequest(format!(
                "a different model named {} is already in the store: rename the file before importing",
                existing.name
            )));
        }
        let dio = |source| Error::Io {
            path: self.dir.clone(),
            source,
        };
        fs::create_dir_all(&self.dir).map_err(dio)?;
        let sio = |source| Error::Io {
            path: src.to_path_buf(),
            source,
        };
        let mut input = fs::File::open(src).map_err(sio)?;
        let tmp = self.dir.join(format!(".{}.partial", file_name(src)));
        let mut out = fs::File::create(&tmp).map_err(dio)?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut done = 0u64;
        let result = (|| -> std::io::Result<()> {
            loop {
                let n = input.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
                done += n as u64;
                progress(done);
            }
            out.sync_all()?;
            fs::rename(&tmp, &dest)?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(dio(e));
        }
        sync_dir(&self.dir);
        let model_id: ModelId = hasher.finalize().into();
        let entry = self.entry(&dest)?;
        debug_assert_eq!(entry.model_id, model_id);
        Ok(entry)
    }

    /// Lands a finished file that lies inside the store's directory (a completed pull)
    /// as `<name>.gguf`, after checking that it is a valid model whose BLAKE3 is
    /// `expected`; a file that is not is deleted. When another model has the name, it
    /// lands as `<name>-<short id>.gguf`; when the same model is there, the file is
    /// dropped and the existing entry returned. The rename is atomic and the directory
    /// synced.
    pub fn adopt(&self, file: &Path, name: &str, expected: ModelId) -> Result<ModelEntry> {
        let refuse = |e: Error| {
            let _ = fs::remove_file(file);
            Err(e)
        };
        if let Err(e) = Gguf::open(file) {
            return refuse(e);
        }
        let io = |source| Error::Io {
            path: file.to_path_buf(),
            source,
        };
        let mut hasher = blake3::Hasher::new();
        hasher.update_mmap_rayon(file).map_err(io)?;
        let actual: ModelId = hasher.finalize().into();
        if actual != expected {
            return refuse(Error::InvalidRequest(format!(
                "the file hashes to {actual}, not {expected}"
            )));
        }
        let mut dest = self.dir.join(format!("{name}.gguf"));
        if dest.exists() {
            let existing = self.entry(&dest)?;
            if existing.model_id == expected {
                let _ = fs::remove_file(file);
                return Ok(existing);
            }
            dest = self.dir.join(format!("{name}-{}.gguf", expected.short()));
        }
        fs::rename(file, &dest).map_err(io)?;
        sync_dir(&self.dir);
        let meta = fs::metadata(&dest).map_err(io)?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let cache = self
            .dir
            .join(".ids")
            .join(format!("{}.json", file_name(&dest)));
        let c = CachedId {
            size: meta.len(),
            mtime_ns,
            model_id: actual,
        };
        let _ = write_atomic(
            &cache,
            serde_json::to_string(&c).unwrap_or_default().as_bytes(),
        );
        Ok(ModelEntry {
            name: model_name(&dest),
            path: dest,
            size: meta.len(),
            model_id: actual,
        })
    }

    /// Finds a model by path, exact name, case-insensitive name, or ModelId prefix
    /// (at least 4 hex characters).
    pub fn resolve(&self, spec: &str) -> Result<ModelEntry> {
        let as_path = Path::new(spec);
        if (spec.ends_with(".gguf") || spec.contains('/')) && as_path.is_file() {
            return self.entry(as_path);
        }
        let all = self.list()?;
        let spec_name = spec.strip_suffix(".gguf").unwrap_or(spec);
        if let Some(e) = all.iter().find(|e| e.name == spec_name) {
            return Ok(e.clone());
        }
        let lower = spec_name.to_lowercase();
        let by_name: Vec<_> = all
            .iter()
            .filter(|e| e.name.to_lowercase() == lower)
            .collect();
        if by_name.len() == 1 {
            return Ok(by_name[0].clone());
        }
        if spec.len() >= 4 && spec.chars().all(|c| c.is_ascii_hexdigit()) {
            let hits: Vec<_> = all
                .iter()
                .filter(|e| e.model_id.matches_prefix(spec))
                .collect();
            match hits.len() {
                0 => {}
                1 => return Ok(hits[0].clone()),
                _ => {
                    let names: Vec<_> = hits.iter().map(|e| e.name.as_str()).collect();
                    return Err(Error::AmbiguousModel(spec.into(), names.join(", ")));
                }
            }
        }
        Err(Error::ModelNotFound(spec.into()))
    }
}

impl ModelInfo {
    /// Reads a model's summary from its header (no weights are loaded).
    pub fn read(entry: ModelEntry) -> Result<Self> {
        let g = Gguf::open(&entry.path)?;
        let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
        for t in g.tensors() {
            *by_type.entry(t.dtype.name()).or_default() += t.elements();
        }
        let mut types: Vec<_> = by_type.into_iter().collect();
        types.sort_by_key(|t| std::cmp::Reverse(t.1));
        let arch = g.get_str("general.architecture")?.to_string();
        let ctx = g.opt_u64(&format!("{arch}.context_length"))?;
        let s = |k: &str| match g.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        Ok(Self {
            parameters: g.tensors().iter().map(|t| t.elements()).sum(),
            quantization: types.iter().map(|(t, _)| *t).collect::<Vec<_>>().join("+"),
            display_name: s("general.name"),
            license: s("general.license"),
            chat_template: s("tokenizer.chat_template"),
            context_length: ctx,
            architecture: arch,
            entry,
        })
    }
}

/// BLAKE3 of a file, streamed in 1 MiB reads; `progress` gets bytes hashed so far.
pub fn hash_file(path: &Path, mut progress: impl FnMut(u64)) -> Result<ModelId> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::File::open(path).map_err(io)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut done = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(done);
    }
    Ok(hasher.finalize().into())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn model_name(p: &Path) -> String {
    let n = file_name(p);
    n.strip_suffix(".gguf").map(str::to_string).unwrap_or(n)
}

/// Writes `data` to `path` crash-safely: a temporary file beside it, synced, renamed
/// into place, and the directory synced; a crash leaves the old file or the new one.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = dir {
        sync_dir(dir);
    }
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GgmlType;
    use crate::gguf::write_gguf;

    fn tiny(path: &Path, tag: &str) {
        let mut f = fs::File::create(path).unwrap();
        write_gguf(
            &mut f,
            &[
                ("general.architecture".into(), Value::String("llama".into())),
                ("general.name".into(), Value::String(tag.into())),
            ],
            &[("t".into(), vec![32], GgmlType::F32, vec![0u8; 128])],
        )
        .unwrap();
    }

    #[test]
    fn import_list_resolve() {
        let src = tempfile::tempdir().unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(store_dir.path().join("models"));
        assert!(store.list().unwrap().is_empty());
        let a = src.path().join("Alpha.gguf");
        tiny(&a, "a");
        let e = store.import(&a, |_| {}).unwrap();
        assert_eq!(e.name, "Alpha");
        assert_eq!(e.model_id, ModelId::of_bytes(&fs::read(&a).unwrap()));
        // Idempotent.
        assert_eq!(store.import(&a, |_| {}).unwrap(), e);
        assert_eq!(store.list().unwrap(), vec![e.clone()]);
        assert_eq!(store.resolve("Alpha").unwrap(), e);
        assert_eq!(store.resolve("alpha").unwrap(), e);
        assert_eq!(store.resolve(&e.model_id.to_string()[..6]).unwrap(), e);
        assert_eq!(
            store.resolve(a.to_str().unwrap()).unwrap().model_id,
            e.model_id
        );
        assert!(matches!(
            store.resolve("beta"),
            Err(Error::ModelNotFound(_))
        ));
        let info = ModelInfo::read(e).unwrap();
        assert_eq!(info.architecture, "llama");
        assert_eq!(info.parameters, 32);
        assert_eq!(info.quantization, "F32");
    }

    #[test]
    fn import_refuses_invalid_and_conflicting_files() {
        let src = tempfile::tempdir().unwrap();
        let store = ModelStore::new(src.path().join("models"));
        let bad = src.path().join("bad.gguf");
        fs::write(&bad, b"not a model").unwrap();
        assert!(
            store
                .import(&bad, |_| {})
                .unwrap_err()
                .to_string()
                .contains("not a GGUF file")
        );
        assert!(!store.dir().join("bad.gguf").exists());
        let a = src.path().join("x.gguf");
        tiny(&a, "one");
        store.import(&a, |_| {}).unwrap();
        let other = src.path().join("other");
        fs::create_dir(&other).unwrap();
        let b = other.join("x.gguf");
        tiny(&b, "two");
        assert!(
            store
                .import(&b, |_| {})
                .unwrap_err()
                .to_string()
                .contains("already in the store")
        );
    }
}
