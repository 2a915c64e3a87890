//! Model sharing (`docs/sharing.md`): a node publishes models of its store, and peers
//! pull them by ModelId from every node that has them at once, checking every 1 MiB
//! piece against the BLAKE3 tree whose root is the ModelId.
//!
//! - [`pieces`]: the piece layer and its checks (BLAKE3's own tree, `blake3::hazmat`).
//! - [`proto`]: the `/flurry/model/1` wire format.
//! - [`serve`]: the shelf of published models and the bounded, paced server.
//! - [`pull`]: the multi-peer, resumable, verifying puller.
//! - [`Sharing`]: the node's side of it: publishing (the shelf, a DHT provider record, a
//!   gossip announcement on [`MODELS_TOPIC`]), the announcements heard, names resolved
//!   only through their publishers' announcements, and pulls landed in the store.

pub mod pieces;
pub mod proto;
pub mod pull;
pub mod serve;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flurry_infer::store::{ModelEntry, ModelInfo, ModelStore};
use flurry_net::{Net, Verdict};
use flurry_primitives::ModelId;
use serde::{Deserialize, Serialize};

pub use pieces::{Layer, PIECE};
pub use proto::MODEL_PROTOCOL;
pub use pull::{OnProgress, Progress, PullError, Pulled, Source};
pub use serve::{Admit, ServeLimits, Shelf};

/// The gossip topic of model announcements.
pub const MODELS_TOPIC: &str = "flurry/models/1";
/// An announcement's bytes, at most.
pub const MAX_ANNOUNCEMENT_BYTES: usize = 2048;
/// Announcements kept, at most (the oldest go first).
pub const MAX_HEARD: usize = 4096;
/// How often a node announces what it publishes.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(60);
/// How long an announcement counts without being repeated.
pub const HEARD_FOR: Duration = Duration::from_secs(600);
const ANNOUNCEMENT_VERSION: u32 = 1;

/// Errors of sharing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model store said no.
    #[error(transparent)]
    Store(#[from] flurry_infer::Error),
    /// A model outside the store.
    #[error(
        "{0} is not in the model store: import it first (`flurry model import FILE`), then publish it by name"
    )]
    NotInStore(String),
    /// The file's hash is not the id the store had cached for it.
    #[error(
        "{name}: the file hashes to {actual}, not the id the store had for it ({cached}); it changed on disk"
    )]
    Changed {
        /// The model.
        name: String,
        /// The cached id.
        cached: ModelId,
        /// The file's hash.
        actual: ModelId,
    },
    /// Too many models published.
    #[error(
        "{} models are published already; unpublish one first",
        serve::MAX_SHELF
    )]
    ShelfFull,
    /// A name no announcement maps, or maps to several models.
    #[error("{0}")]
    Unresolved(String),
    /// A pull of this model is running already.
    #[error("model {0} is being pulled already")]
    Busy(ModelId),
    /// The pull failed.
    #[error(transparent)]
    Pull(#[from] PullError),
    /// The pulled file is not a model.
    #[error("the peers' file for {model} is not a valid model ({reason}); it was deleted")]
    NotAModel {
        /// The id asked for.
        model: ModelId,
        /// What the reader said.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The network said no.
    #[error(transparent)]
    Net(#[from] flurry_net::Error),
}

/// What a publisher says of a model it serves (gossiped; its author is the publisher).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Announcement {
    /// Format version (1).
    pub v: u32,
    /// The model.
    pub model: ModelId,
    /// Its name at the publisher.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// `general.architecture`.
    pub architecture: String,
    /// Tensor types, most common first.
    pub quantization: String,
    /// `general.license`, when the file names one.
    pub licence: Option<String>,
}

impl Announcement {
    /// Parses and bounds an announcement's bytes.
    ///
    /// # Errors
    /// Oversized, malformed or out-of-range fields, with the reason.
    pub fn parse(data: &[u8]) -> Result<Self, String> {
        if data.len() > MAX_ANNOUNCEMENT_BYTES {
            return Err(format!(
                "{} bytes is over the announcement limit",
                data.len()
            ));
        }
        let a: Self = serde_json::from_slice(data).map_err(|e| e.to_string())?;
        if a.v != ANNOUNCEMENT_VERSION {
            return Err(format!("version {}", a.v));
        }
        if !valid_name(&a.name) {
            return Err(format!("bad name {:?}", a.name));
        }
        if a.size == 0 || pieces::piece_count(a.size) > pieces::MAX_PIECES {
            return Err(format!("size {}", a.size));
        }
        for (what, s) in [
            ("architecture", Some(&a.architecture)),
            ("quantization", Some(&a.quantization)),
            ("licence", a.licence.as_ref()),
        ] {
            if s.is_some_and(|s| s.len() > 128 || s.chars().any(char::is_control)) {
                return Err(format!("bad {what}"));
            }
        }
        Ok(a)
    }
}

/// A model name others may use: 1-64 of `A-Za-z0-9._-`, not starting with a dot.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The gossip validator of [`MODELS_TOPIC`].
pub fn verdict(source: Option<&str>, data: &[u8]) -> Verdict {
    if source.is_none() {
        return Verdict::Reject;
    }
    match Announcement::parse(data) {
        Ok(_) => Verdict::Accept,
        Err(_) => Verdict::Reject,
    }
}

/// An announcement heard from a publisher.
#[derive(Debug, Clone, Serialize)]
pub struct Heard {
    /// The publisher's peer id (the gossip author).
    pub publisher: String,
    /// What it said.
    #[serde(flatten)]
    pub announcement: Announcement,
    /// Seconds since it was last heard.
    pub age_secs: u64,
    #[serde(skip)]
    at: Instant,
}

/// A published model, as `flurry model published` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// The model.
    pub model: ModelId,
    /// Its name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// Its pieces.
    pub pieces: u64,
}

/// How a pull ended.
#[derive(Debug, Clone, Serialize)]
pub struct Landed {
    /// The model as it is now in the store.
    pub entry: ModelEntry,
    /// The transfer, or `None` when the store had it already.
    pub pulled: Option<Pulled>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PublishedFile {
    models: Vec<PublishedRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PublishedRecord {
    model: ModelId,
    name: String,
}

/// The node's model sharing.
pub struct Sharing {
    net: Net,
    store: ModelStore,
    shelf: Arc<Shelf>,
    published_file: PathBuf,
    heard: Mutex<HashMap<(String, ModelId), Heard>>,
    pulling: Mutex<HashSet<ModelId>>,
    announcements: Mutex<HashMap<ModelId, Vec<u8>>>,
}

impl std::fmt::Debug for Sharing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharing").finish_non_exhaustive()
    }
}

impl Sharing {
    /// Starts serving `/flurry/model/1` from `store`, follows the announcements topic,
    /// publishes again what `published_file` lists, and announces it every
    /// [`ANNOUNCE_EVERY`]. Must run inside a Tokio runtime.
    ///
    /// # Errors
    /// When the protocol or the topic cannot be taken.
    pub async fn start(
        net: Net,
        store: ModelStore,
        published_file: PathBuf,
        limits: ServeLimits,
        admit: Admit,
    ) -> Result<Arc<Self>, Error> {
        let incoming = net.accept_streams(MODEL_PROTOCOL)?;
        let shelf = Arc::new(Shelf::default());
        tokio::spawn(serve::serve(incoming, shelf.clone(), limits, admit));
        net.subscribe_validated(MODELS_TOPIC, Arc::new(verdict))
            .await?;
        let me = Arc::new(Self {
            net,
            store,
            shelf,
            published_file,
            heard: Mutex::new(HashMap::new()),
            pulling: Mutex::new(HashSet::new()),
            announcements: Mutex::new(HashMap::new()),
        });
        let records = std::fs::read(&me.published_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<PublishedFile>(&b).ok())
            .map(|f| f.models)
            .unwrap_or_default();
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            for r in records {
                let Some(me) = weak.upgrade() else { return };
                if let Err(e) = me.publish(&r.model.to_string()).await {
                    tracing::warn!(model = %r.model, name = %r.name, "not published again: {e}");
                }
            }
            loop {
                tokio::time::sleep(ANNOUNCE_EVERY).await;
                let Some(me) = weak.upgrade() else { return };
                me.announce_all().await;
            }
        });
        Ok(me)
    }

    async fn announce_all(&self) {
        let all: Vec<_> = self
            .announcements
            .lock()
            .expect("announcements")
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (model, bytes) in all {
            if let Err(e) = self.net.publish(MODELS_TOPIC, bytes).await {
                tracing::debug!(%model, "announcement not sent: {e}");
            }
            if let Err(e) = self.net.provide(model.as_bytes()).await {
                tracing::debug!(%model, "provider record not stored: {e}");
            }
        }
    }

    /// Publishes a model of the store (by name or ModelId prefix): hashes it piece by
    /// piece (its id is taken from the file, never from the store's cache), puts it on
    /// the shelf, records it for the next start, and announces it.
    ///
    /// # Errors
    /// A model not in the store, a file whose hash changed, a full shelf.
    pub async fn publish(&self, spec: &str) -> Result<Announcement, Error> {
        let store = self.store.clone();
        let spec = spec.to_string();
        let (entry, info, layer) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
            let entry = store.resolve(&spec)?;
            if entry.path.parent() != Some(store.dir()) {
                return Err(Error::NotInStore(spec));
            }
            let info = ModelInfo::read(entry.clone())?;
            let layer = Layer::of_file(&entry.path).map_err(|source| Error::Io {
                path: entry.path.clone(),
                source,
            })?;
            Ok((entry, info, layer))
        })
        .await
        .map_err(|e| Error::Io {
            path: self.store.dir().to_path_buf(),
            source: std::io::Error::other(e),
        })??;
        let actual = layer.root();
        if actual != entry.model_id {
            return Err(Error::Changed {
                name: entry.name,
                cached: entry.model_id,
                actual,
            });
        }
        let name = if valid_name(&entry.name) {
            entry.name.clone()
        } else {
            format!("model-{}", actual.short())
        };
        let a = Announcement {
            v: ANNOUNCEMENT_VERSION,
            model: actual,
            name: name.clone(),
            size: layer.len,
            architecture: info.architecture.chars().take(128).collect(),
            quantization: info.quantization.chars().take(128).collect(),
            licence: info.license.map(|l| l.chars().take(128).collect()),
        };
        let bytes = serde_json::to_vec(&a).unwrap_or_default();
        Announcement::parse(&bytes).map_err(Error::Unresolved)?;
        if !self.shelf.put(
            actual,
            serve::Shelved {
                name,
                path: entry.path.clone(),
                layer: Arc::new(layer),
            },
        ) {
            return Err(Error::ShelfFull);
        }
        self.announcements
            .lock()
            .expect("announcements")
            .insert(actual, bytes.clone());
        self.save()?;
        if let Err(e) = self.net.provide(actual.as_bytes()).await {
            tracing::debug!(model = %actual, "provider record not stored: {e}");
        }
        if let Err(e) = self.net.publish(MODELS_TOPIC, bytes).await {
            tracing::debug!(model = %actual, "announcement not sent yet: {e}");
        }
        Ok(a)
    }

    /// Stops serving a model; whether it was published.
    ///
    /// # Errors
    /// When the record cannot be saved.
    pub fn unpublish(&self, model: &ModelId) -> Result<bool, Error> {
        let was = self.shelf.remove(model);
        self.announcements
            .lock()
            .expect("announcements")
            .remove(model);
        self.save()?;
        Ok(was)
    }

    fn save(&self) -> Result<(), Error> {
        let f = PublishedFile {
            models: self
                .shelf
                .list()
                .into_iter()
                .map(|(model, s)| PublishedRecord {
                    model,
                    name: s.name,
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&f).unwrap_or_default();
        flurry_infer::store::write_atomic(&self.published_file, &bytes).map_err(|source| {
            Error::Io {
                path: self.published_file.clone(),
                source,
            }
        })
    }

    /// The models this node publishes.
    pub fn published(&self) -> Vec<Published> {
        self.shelf
            .list()
            .into_iter()
            .map(|(model, s)| Published {
                model,
                name: s.name,
                size: s.layer.len,
                pieces: s.layer.pieces(),
            })
            .collect()
    }

    /// Takes an announcement heard on [`MODELS_TOPIC`].
    pub fn on_gossip(&self, source: Option<&str>, data: &[u8]) {
        let Some(publisher) = source else { return };
        let Ok(a) = Announcement::parse(data) else {
            return;
        };
        let mut heard = self.heard.lock().expect("heard");
        let key = (publisher.to_string(), a.model);
        if heard.len() >= MAX_HEARD && !heard.contains_key(&key) {
            heard.retain(|_, h| h.at.elapsed() < HEARD_FOR);
            if heard.len() >= MAX_HEARD {
                let oldest = heard
                    .iter()
                    .min_by_key(|(_, h)| h.at)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    heard.remove(&k);
                }
            }
        }
        heard.insert(
            key,
            Heard {
                publisher: publisher.to_string(),
                announcement: a,
                age_secs: 0,
                at: Instant::now(),
            },
        );
    }

    /// The announcements heard within [`HEARD_FOR`], by name then publisher.
    pub fn announced(&self) -> Vec<Heard> {
        let mut v: Vec<Heard> = self
            .heard
            .lock()
            .expect("heard")
            .values()
            .filter(|h| h.at.elapsed() < HEARD_FOR)
            .cloned()
            .map(|mut h| {
                h.age_secs = h.at.elapsed().as_secs();
                h
            })
            .collect();
        v.sort_by(|a, b| {
            (&a.announcement.name, &a.publisher).cmp(&(&b.announcement.name, &b.publisher))
        });
        v
    }

    /// What `spec` names: a whole ModelId, or a name that the announcements heard (from
    /// `from` only, when given) map to exactly one model. A name is never taken from a
    /// peer's say-so alone when two publishers disagree.
    ///
    /// # Errors
    /// An unknown or ambiguous name.
    pub fn resolve(
        &self,
        spec: &str,
        from: Option<&str>,
    ) -> Result<(ModelId, Option<String>), Error> {
        let heard = self.announced();
        if spec.len() == 64
            && let Ok(id) = spec.parse::<ModelId>()
        {
            let name = heard
                .iter()
                .find(|h| h.announcement.model == id && from.is_none_or(|f| f == h.publisher))
                .map(|h| h.announcement.name.clone());
            return Ok((id, name));
        }
        let mut ids: Vec<(ModelId, Vec<&str>)> = Vec::new();
        for h in heard
            .iter()
            .filter(|h| h.announcement.name == spec && from.is_none_or(|f| f == h.publisher))
        {
            match ids.iter_mut().find(|(id, _)| *id == h.announcement.model) {
                Some((_, pubs)) => pubs.push(&h.publisher),
                None => ids.push((h.announcement.model, vec![h.publisher.as_str()])),
            }
        }
        match ids.len() {
            0 => Err(Error::Unresolved(format!(
                "no publisher{} has announced a model named {spec:?} ({} announcements heard); pull it by its ModelId, or check the name with `flurry model announced`",
                from.map(|f| format!(" {f}")).unwrap_or_default(),
                heard.len()
            ))),
            1 => Ok((ids[0].0, Some(spec.to_string()))),
            _ => Err(Error::Unresolved(format!(
                "publishers announce different models named {spec:?}: {}; pull by ModelId, or pick a publisher with --from PEER",
                ids.iter()
                    .map(|(id, p)| format!("{id} by {}", p.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
        }
    }

    /// The peers to pull `model` from: `from` alone when given, else every publisher
    /// heard and every DHT provider.
    pub async fn sources(&self, model: &ModelId, from: Option<&str>) -> Vec<Source> {
        if let Some(f) = from {
            return vec![Source {
                peer: f.to_string(),
                addrs: Vec::new(),
            }];
        }
        let me = self.net.peer_id().to_string();
        let mut peers: Vec<String> = self
            .announced()
            .into_iter()
            .filter(|h| h.announcement.model == *model)
            .map(|h| h.publisher)
            .collect();
        if let Ok(more) = self.net.providers(model.as_bytes()).await {
            peers.extend(more);
        }
        let mut seen = HashSet::new();
        peers
            .into_iter()
            .filter(|p| *p != me && seen.insert(p.clone()))
            .map(|peer| Source {
                peer,
                addrs: Vec::new(),
            })
            .collect()
    }

    /// Pulls `spec` (a ModelId or an announced name) into the store; a model the store
    /// has already is not pulled again.
    ///
    /// # Errors
    /// An unresolved name, no sources, a failed pull, or a file that is not a model.
    pub async fn pull(
        &self,
        spec: &str,
        from: Option<&str>,
        progress: OnProgress,
    ) -> Result<Landed, Error> {
        let (model, name) = self.resolve(spec, from)?;
        if let Some(entry) = self.held(&model).await? {
            return Ok(Landed {
                entry,
                pulled: None,
            });
        }
        if !self.pulling.lock().expect("pulling").insert(model) {
            return Err(Error::Busy(model));
        }
        let result = self.pull_new(model, name, from, progress).await;
        self.pulling.lock().expect("pulling").remove(&model);
        result
    }

    async fn held(&self, model: &ModelId) -> Result<Option<ModelEntry>, Error> {
        let store = self.store.clone();
        let model = *model;
        let list = tokio::task::spawn_blocking(move || store.list())
            .await
            .map_err(|e| Error::Io {
                path: self.store.dir().to_path_buf(),
                source: std::io::Error::other(e),
            })??;
        Ok(list.into_iter().find(|e| e.model_id == model))
    }

    async fn pull_new(
        &self,
        model: ModelId,
        name: Option<String>,
        from: Option<&str>,
        progress: OnProgress,
    ) -> Result<Landed, Error> {
        let sources = self.sources(&model, from).await;
        let dir = pulls_dir(self.store.dir());
        let pulled = pull::pull(&self.net, model, sources, &dir, progress).await?;
        let store = self.store.clone();
        let part = pulled.path.clone();
        let name = name.unwrap_or_else(|| format!("model-{}", model.short()));
        let entry = tokio::task::spawn_blocking(move || store.adopt(&part, &name, model))
            .await
            .map_err(|e| Error::Io {
                path: pulled.path.clone(),
                source: std::io::Error::other(e),
            })?
            .map_err(|e| match e {
                flurry_infer::Error::Io { path, source } => Error::Io { path, source },
                other => Error::NotAModel {
                    model,
                    reason: other.to_string(),
                },
            })?;
        Ok(Landed {
            entry,
            pulled: Some(pulled),
        })
    }
}

/// Where partial pulls live: inside the store, so landing one is a rename.
pub fn pulls_dir(store: &Path) -> PathBuf {
    store.join(".pulls")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_are_bounded_and_names_are_plain() {
        let a = Announcement {
            v: 1,
            model: ModelId::from_bytes([1; 32]),
            name: "smollm2-135m".into(),
            size: 10,
            architecture: "llama".into(),
            quantization: "Q8_0".into(),
            licence: Some("Apache-2.0".into()),
        };
        let ok = serde_json::to_vec(&a).unwrap();
        assert_eq!(Announcement::parse(&ok).unwrap(), a);
        assert_eq!(verdict(Some("p"), &ok), Verdict::Accept);
        assert_eq!(
            verdict(None, &ok),
            Verdict::Reject,
            "no author, no publisher"
        );
        for bad in [
            Announcement {
                name: "../etc/passwd".into(),
                ..a.clone()
            },
            Announcement {
                name: ".hidden".into(),
                ..a.clone()
            },
            Announcement {
                name: String::new(),
                ..a.clone()
            },
            Announcement {
                name: "x".repeat(65),
                ..a.clone()
            },
            Announcement {
                size: 0,
                ..a.clone()
            },
            Announcement {
                size: u64::MAX,
                ..a.clone()
            },
            Announcement { v: 2, ..a.clone() },
            Announcement {
                licence: Some("\u{1b}[31m".into()),
                ..a.clone()
            },
            Announcement {
                architecture: "a".repeat(129),
                ..a.clone()
            },
        ] {
            let bytes = serde_json::to_vec(&bad).unwrap();
            assert!(Announcement::parse(&bytes).is_err(), "{bad:?}");
            assert_eq!(verdict(Some("p"), &bytes), Verdict::Reject);
        }
        let mut extra: serde_json::Value = serde_json::from_slice(&ok).unwrap();
        extra["path"] = "/etc/passwd".into();
        assert!(Announcement::parse(&serde_json::to_vec(&extra).unwrap()).is_err());
        assert!(Announcement::parse(&vec![b' '; MAX_ANNOUNCEMENT_BYTES + 1]).is_err());
    }
}
