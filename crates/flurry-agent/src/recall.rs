//! Retrieval from the node's private memory for chat: the passages that answer a message,
//! put in the prompt within the model's context budget, and returned as citations.

use std::sync::Arc;

use flurry_infer::engine::Prompt;
use flurry_infer::template::ChatMessage;
use flurry_memory::{Filters, Hit, MemoryStore, SearchMode};
use flurry_privacy::{EntityList, Scrubber};
use serde::{Deserialize, Serialize};

use crate::{EmbedHost, Error, LoadedModel, Result};

/// Passages retrieved per message, at most.
pub const MAX_PASSAGES: usize = 4;
/// Most prompt tokens memory may take; also at most a quarter of the model's context.
pub const MAX_MEMORY_TOKENS: usize = 1200;
/// A passage is used when its cosine similarity to the message reaches this…
const MIN_COSINE: f32 = 0.30;
/// …or when it is among the best keyword matches and at least this similar.
const MIN_COSINE_KEYWORD: f32 = 0.15;
/// Keyword ranks (from 0) that count as "among the best".
const TOP_KEYWORD_RANKS: usize = 3;

/// Where an answer's passage came from: a chunk of a stored document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    /// The number the prompt gave the passage (`[1]`, `[2]`, …).
    pub index: usize,
    /// The document's source (a path, or `file.mbox#N` for a message of a mailbox).
    pub document: String,
    /// The document's id in the memory store (`flurry memory forget ID`).
    pub doc_id: i64,
    /// Its title (mail subject, first heading, file name).
    pub title: String,
    /// The chunk's number within the document, from 0.
    pub chunk: i64,
    /// Byte range of the chunk in the document's text.
    pub start: i64,
    /// End of the range.
    pub end: i64,
    /// Retrieval score (reciprocal-rank fusion; higher is better).
    pub score: f64,
    /// A short excerpt.
    pub snippet: String,
    /// The document was forgotten after the answer was written: only the number, the
    /// id and the chunk remain; the path, title and excerpt were erased.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forgotten: bool,
}

impl Citation {
    /// What is left of the citation once its document is forgotten: a link that says
    /// the source is gone, with nothing of the document's text, title or path.
    pub fn tombstone(&self) -> Citation {
        Citation {
            index: self.index,
            document: String::new(),
            doc_id: self.doc_id,
            title: String::new(),
            chunk: self.chunk,
            start: 0,
            end: 0,
            score: 0.0,
            snippet: String::new(),
            forgotten: true,
        }
    }
}

/// A passage for the prompt and its citation.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// Where it came from.
    pub citation: Citation,
    /// Its text.
    pub text: String,
}

/// Searches the memory for chat turns.
#[derive(Debug)]
pub struct Recall {
    store: Arc<MemoryStore>,
    embed: Arc<EmbedHost>,
    /// The scrubber learned from the memory, and the memory's fingerprint then.
    owner: std::sync::Mutex<Option<LearnedScrubber>>,
}

/// A scrubber and the fingerprint of the memory it was learned from.
type LearnedScrubber = ((i64, i64, i64), Arc<Scrubber>);

impl Recall {
    /// Retrieval over `store`, embedding queries with `embed`.
    pub fn new(store: Arc<MemoryStore>, embed: Arc<EmbedHost>) -> Self {
        Self {
            store,
            embed,
            owner: std::sync::Mutex::default(),
        }
    }

    /// The privacy scrubber with the owner's entities learned from this memory; learned
    /// again when the memory has changed since. Blocking (reads every chunk the first
    /// time and after each change).
    pub fn scrubber(&self) -> Result<Arc<Scrubber>> {
        let memory = |e: flurry_memory::Error| Error::Memory(e.to_string());
        let version = self.store.fingerprint().map_err(memory)?;
        let mut cache = self.owner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((v, s)) = cache.as_ref()
            && *v == version
        {
            return Ok(s.clone());
        }
        let started = std::time::Instant::now();
        let mut list = EntityList::new();
        self.store
            .for_each_document(|p, t| list.learn_document(p, t))
            .map_err(memory)?;
        let s = Arc::new(Scrubber::new(&list));
        tracing::info!(
            entities = list.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "learned the owner's entities from the memory for the privacy router"
        );
        *cache = Some((version, s.clone()));
        Ok(s)
    }

    /// The passages that are relevant to `query`, best first, whose text fits the
    /// memory budget of `model` (counted with its own tokenizer). Empty when nothing
    /// stored is close enough: memory is used only when it helps. Blocking.
    pub fn passages(&self, query: &str, model: &LoadedModel) -> Result<Vec<Passage>> {
        let empty = self
            .store
            .is_empty()
            .map_err(|e| Error::Memory(e.to_string()))?;
        if query.trim().is_empty() || empty {
            return Ok(Vec::new());
        }
        let vector = self
            .embed
            .get()?
            .embed_one(query)
            .map_err(|e| Error::Embed(e.to_string()))?;
        let hits = self
            .store
            .search(
                query,
                Some(&vector),
                MAX_PASSAGES * 2,
                SearchMode::Hybrid,
                &Filters::default(),
            )
            .map_err(|e| Error::Memory(e.to_string()))?;
        let budget = MAX_MEMORY_TOKENS.min(model.engine.context_length() / 4);
        let mut used = 0;
        let mut out = Vec::new();
        for hit in hits.into_iter().filter(relevant) {
            if out.len() == MAX_PASSAGES {
                break;
            }
            let text = format!("{} ({})\n{}", hit.title, hit.path, hit.text);
            let n = model.engine.tokenize(&Prompt::Raw(text.clone()))?.len();
            if used + n > budget {
                continue;
            }
            used += n;
            out.push(Passage {
                citation: Citation {
                    index: out.len() + 1,
                    document: hit.path,
                    doc_id: hit.doc_id,
                    title: hit.title,
                    chunk: hit.ord,
                    start: hit.start,
                    end: hit.end,
                    score: hit.score,
                    snippet: hit.snippet,
                    forgotten: false,
                },
                text,
            });
        }
        Ok(out)
    }
}

/// Whether a search hit is close enough to the message to be worth the prompt space.
fn relevant(h: &Hit) -> bool {
    let cos = h.cosine.unwrap_or(f32::MIN);
    cos >= MIN_COSINE
        || (h.keyword_rank.is_some_and(|r| r < TOP_KEYWORD_RANKS) && cos >= MIN_COSINE_KEYWORD)
}

/// Puts `passages` into the conversation as (part of) its system message, numbered as
/// their citations are. Nothing changes when there are none.
pub fn with_memory(msgs: &mut Vec<ChatMessage>, passages: &[Passage]) {
    if passages.is_empty() {
        return;
    }
    let mut block = String::from(
        "Below are passages from the user's own notes, files and mail, found in their private memory for this message. \
         If they answer the question, answer from them and cite the passage number in brackets, like [1]. \
         If they do not, answer normally.\n",
    );
    for p in passages {
        block.push_str(&format!("\n[{}] {}\n", p.citation.index, p.text.trim()));
    }
    match msgs.first_mut() {
        Some(m) if m.role == "system" => {
            m.content = format!("{}\n\n{block}", m.content.trim_end());
        }
        _ => msgs.insert(0, ChatMessage::new("system", block)),
    }
}

/// The citations of `passages`.
pub fn citations(passages: &[Passage]) -> Vec<Citation> {
    passages.iter().map(|p| p.citation.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(cosine: Option<f32>, keyword_rank: Option<usize>) -> Hit {
        Hit {
            doc_id: 1,
            path: "/n.md".into(),
            title: "n".into(),
            chunk_id: 1,
            ord: 0,
            start: 0,
            end: 1,
            score: 0.0,
            snippet: String::new(),
            cosine,
            keyword_rank,
            text: "x".into(),
        }
    }

    #[test]
    fn relevance_needs_meaning_or_a_top_keyword_match() {
        assert!(relevant(&hit(Some(0.45), None)));
        assert!(!relevant(&hit(Some(0.2), None)), "weak meaning alone");
        assert!(relevant(&hit(Some(0.2), Some(0))), "top keyword match");
        assert!(!relevant(&hit(Some(0.2), Some(5))), "a low keyword rank");
        assert!(
            !relevant(&hit(Some(0.05), Some(0))),
            "keyword match, unrelated meaning"
        );
        assert!(
            !relevant(&hit(None, Some(0))),
            "not ranked by meaning at all"
        );
    }

    fn passage(index: usize, text: &str) -> Passage {
        Passage {
            citation: Citation {
                index,
                document: format!("/d{index}"),
                doc_id: index as i64,
                title: format!("t{index}"),
                chunk: 0,
                start: 0,
                end: 1,
                score: 0.0,
                snippet: String::new(),
                forgotten: false,
            },
            text: text.into(),
        }
    }

    #[test]
    fn passages_join_the_system_message_numbered_as_cited() {
        let mut msgs = vec![ChatMessage::new("user", "q")];
        with_memory(&mut msgs, &[]);
        assert_eq!(msgs.len(), 1, "no passages: the prompt is unchanged");

        with_memory(&mut msgs, &[passage(1, "alpha"), passage(2, "beta")]);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].role, "system");
        let sys = &msgs[0].content;
        let (a, b) = (
            sys.find("[1] alpha").unwrap(),
            sys.find("[2] beta").unwrap(),
        );
        assert!(a < b, "{sys}");

        let mut msgs = vec![
            ChatMessage::new("system", "Be brief."),
            ChatMessage::new("user", "q"),
        ];
        with_memory(&mut msgs, &[passage(1, "alpha")]);
        assert_eq!(msgs.len(), 2, "merged into the existing system message");
        assert!(msgs[0].content.starts_with("Be brief.\n\n"));
        assert!(msgs[0].content.contains("[1] alpha"));
        assert_eq!(
            citations(&[passage(1, "a"), passage(2, "b")])
                .iter()
                .map(|c| c.index)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
    }
}
