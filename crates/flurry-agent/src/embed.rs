//! The node's embedding model (all-MiniLM-L6-v2), loaded on first use and kept.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use flurry_embed::Embedder;

use crate::Error;

/// Loads the embedding model from the model store on first use; later calls share it.
#[derive(Debug)]
pub struct EmbedHost {
    dir: PathBuf,
    loaded: Mutex<Option<Arc<Embedder>>>,
}

impl EmbedHost {
    /// The model in `models/all-MiniLM-L6-v2`.
    pub fn new(models: &std::path::Path) -> Self {
        Self {
            dir: models.join(flurry_embed::MODEL_DIR_NAME),
            loaded: Mutex::new(None),
        }
    }

    /// The model's name as clients use it.
    pub fn name(&self) -> &'static str {
        flurry_embed::MODEL_DIR_NAME
    }

    /// Whether `model` names this embedding model (`all-MiniLM-L6-v2`, optionally with
    /// the `sentence-transformers/` prefix).
    pub fn answers_to(&self, model: &str) -> bool {
        let m = model
            .strip_prefix("sentence-transformers/")
            .unwrap_or(model);
        m.eq_ignore_ascii_case(flurry_embed::MODEL_DIR_NAME)
    }

    /// The loaded model (loads it the first time; blocking).
    pub fn get(&self) -> Result<Arc<Embedder>, Error> {
        let mut slot = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = slot.as_ref() {
            return Ok(e.clone());
        }
        let e = Arc::new(Embedder::load(&self.dir).map_err(|e| Error::Embed(e.to_string()))?);
        *slot = Some(e.clone());
        Ok(e)
    }
}
