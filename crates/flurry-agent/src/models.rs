//! The models a node serves: resolved from the model store, loaded on first use, and
//! unloaded (least recently used, idle) when more than `max_loaded` are wanted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flurry_infer::engine::{Engine, EngineConfig};
use flurry_infer::model::Model;
use flurry_infer::store::{ModelEntry, ModelStore};
use flurry_primitives::ModelId;
use serde::Serialize;

use crate::{Error, Result};

/// A model loaded into its own engine.
#[derive(Debug)]
pub struct LoadedModel {
    /// The store entry (name, ModelId, path, size).
    pub entry: ModelEntry,
    /// Its engine.
    pub engine: Engine,
    /// How long loading took.
    pub load_time: Duration,
    last_used: AtomicU64,
}

/// A summary of a loaded model.
#[derive(Debug, Clone, Serialize)]
pub struct LoadedInfo {
    /// Model name.
    pub name: String,
    /// Requests queued and running.
    pub queued: usize,
    /// Requests being generated.
    pub active: usize,
    /// Seconds spent loading.
    pub load_secs: f64,
    /// Context window per request.
    pub context_length: usize,
}

/// Resolves, loads and keeps models.
#[derive(Debug)]
pub struct ModelHost {
    store: ModelStore,
    engine: EngineConfig,
    default: String,
    max_loaded: usize,
    loaded: Mutex<Vec<Arc<LoadedModel>>>,
    /// Held while loading, so two requests for one model load it once.
    loading: Mutex<()>,
    /// The last model read without an engine ([`ModelHost::weights`]).
    bare: Mutex<Option<(ModelId, Arc<Model>)>>,
    epoch: Instant,
}

impl ModelHost {
    /// A host over `store`; `default` is the configured default model (a name, ModelId
    /// prefix or path, as in `flurry.toml`).
    pub fn new(
        store: ModelStore,
        engine: EngineConfig,
        default: String,
        max_loaded: usize,
    ) -> Self {
        Self {
            store,
            engine,
            default,
            max_loaded: max_loaded.max(1),
            loaded: Mutex::new(Vec::new()),
            loading: Mutex::new(()),
            bare: Mutex::new(None),
            epoch: Instant::now(),
        }
    }

    /// The configured default model spec.
    pub fn default_spec(&self) -> &str {
        &self.default
    }

    /// The model whose file has `model_id`, to read without running it (its tokenizer
    /// and template, an audit's re-execution): the loaded one when it is loaded, else
    /// mapped from the store without an engine (so no loaded model is unloaded for it)
    /// and kept for the next call, one at a time. `None` when the store does not hold
    /// it. Blocking.
    pub fn weights(&self, model_id: &ModelId) -> Result<Option<Arc<Model>>> {
        if let Some(m) = self.lock().iter().find(|m| m.entry.model_id == *model_id) {
            return Ok(Some(m.engine.model().clone()));
        }
        let mut bare = self.bare.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, m)) = bare.as_ref().filter(|(id, _)| id == model_id) {
            return Ok(Some(m.clone()));
        }
        let Some(entry) = self
            .store
            .list()?
            .into_iter()
            .find(|e| e.model_id == *model_id)
        else {
            return Ok(None);
        };
        let m = Arc::new(Model::load(&entry.path)?);
        *bare = Some((entry.model_id, m.clone()));
        Ok(Some(m))
    }

    /// Installed models.
    pub fn list(&self) -> Result<Vec<ModelEntry>> {
        Ok(self.store.list()?)
    }

    /// Resolves a model name from a client. Only installed models match (a name from
    /// `flurry model list`, optionally with Ollama's `:latest`, or a ModelId prefix of at
    /// least 8 hex digits); `None`, `""` and `"default"` mean the configured default,
    /// which may also be a path since it comes from the node's own config.
    pub fn resolve(&self, name: Option<&str>) -> Result<ModelEntry> {
        let name = name.map(str::trim).unwrap_or("");
        if name.is_empty() || name == "default" {
            return Ok(self.store.resolve(&self.default)?);
        }
        let bare = name.strip_suffix(":latest").unwrap_or(name);
        if let Some(m) = self.lock().iter().find(|m| m.entry.name == bare) {
            return Ok(m.entry.clone());
        }
        let all = self.store.list()?;
        if let Some(e) = all.iter().find(|e| e.name == bare) {
            return Ok(e.clone());
        }
        if bare.len() >= 8 && bare.chars().all(|c| c.is_ascii_hexdigit()) {
            let hits: Vec<_> = all
                .iter()
                .filter(|e| {
                    e.model_id
                        .to_string()
                        .starts_with(&bare.to_ascii_lowercase())
                })
                .collect();
            if hits.len() == 1 {
                return Ok(hits[0].clone());
            }
        }
        Err(Error::ModelNotFound(name.to_string()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<LoadedModel>>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stamp(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// The loaded model for a client's model name, loading it if needed. Blocking: call
    /// it off async executors.
    pub fn get(&self, name: Option<&str>) -> Result<Arc<LoadedModel>> {
        let entry = self.resolve(name)?;
        if let Some(m) = self.find(&entry) {
            return Ok(m);
        }
        let _guard = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = self.find(&entry) {
            return Ok(m);
        }
        self.evict_idle();
        let t0 = Instant::now();
        let model = Model::load(&entry.path)?;
        let engine = Engine::start(Arc::new(model), self.engine.clone())?;
        let load_time = t0.elapsed();
        tracing::info!(model = %entry.name, secs = load_time.as_secs_f64(), "model loaded");
        let m = Arc::new(LoadedModel {
            entry,
            engine,
            load_time,
            last_used: AtomicU64::new(self.stamp()),
        });
        self.lock().push(m.clone());
        Ok(m)
    }

    fn find(&self, entry: &ModelEntry) -> Option<Arc<LoadedModel>> {
        let loaded = self.lock();
        let m = loaded.iter().find(|m| m.entry.model_id == entry.model_id)?;
        m.last_used.store(self.stamp(), Ordering::Relaxed);
        Some(m.clone())
    }

    /// Unloads least recently used models that nobody is using until there is room for
    /// one more. A model in use is never unloaded, so the limit can be exceeded briefly.
    fn evict_idle(&self) {
        let mut loaded = self.lock();
        while loaded.len() >= self.max_loaded {
            let idle = loaded
                .iter()
                .enumerate()
                .filter(|(_, m)| Arc::strong_count(m) == 1)
                .min_by_key(|(_, m)| m.last_used.load(Ordering::Relaxed))
                .map(|(i, _)| i);
            match idle {
                Some(i) => {
                    let m = loaded.remove(i);
                    tracing::info!(model = %m.entry.name, "model unloaded");
                }
                None => break,
            }
        }
    }

    /// Models loaded now.
    pub fn loaded(&self) -> Vec<LoadedInfo> {
        self.lock()
            .iter()
            .map(|m| {
                let s = m.engine.stats();
                LoadedInfo {
                    name: m.entry.name.clone(),
                    queued: s.queued,
                    active: s.active,
                    load_secs: m.load_time.as_secs_f64(),
                    context_length: m.engine.context_length(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "SmolLM2-135M-Instruct.Q4_1";

    /// The model store; fails (never skips) when the default model is missing.
    fn models_dir() -> std::path::PathBuf {
        let dir = std::env::var_os("FLURRY_MODELS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".flurry/models")
            });
        assert!(
            dir.join(format!("{MODEL}.gguf")).is_file(),
            "model not found in {}: run `make models` first",
            dir.display()
        );
        dir
    }

    /// Reading a model's weights (a market buyer's tokenizer, an audit) starts no engine
    /// and unloads nothing; a loaded model is shared, not mapped twice.
    #[test]
    fn weights_are_read_without_an_engine_and_shared_with_a_loaded_model() {
        let host = ModelHost::new(
            ModelStore::new(models_dir()),
            EngineConfig::default().with_threads(1),
            MODEL.into(),
            1,
        );
        assert!(
            host.weights(&ModelId::from_bytes([7; 32]))
                .unwrap()
                .is_none()
        );
        let id = host.resolve(Some(MODEL)).unwrap().model_id;
        let bare = host.weights(&id).unwrap().expect("held");
        assert!(host.loaded().is_empty(), "no engine started");
        assert!(
            Arc::ptr_eq(&bare, &host.weights(&id).unwrap().unwrap()),
            "kept"
        );
        let loaded = host.get(Some(MODEL)).unwrap();
        let shared = host.weights(&id).unwrap().unwrap();
        assert!(Arc::ptr_eq(&shared, loaded.engine.model()));
    }
}
