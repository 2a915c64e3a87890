//! Placeholders out, originals back.

use std::collections::HashMap;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use serde::Serialize;

use crate::fold::{Folded, fold};
use crate::names::{CN_COMPOUND_SURNAMES, CN_SURNAMES, CN_TITLES, WORD_NAMES};
use crate::{EntityList, Error, Kind, MAX_TEXT_BYTES, Source, Span, names, patterns};

/// Finds personal data with all three layers and swaps it for placeholders.
#[derive(Debug, Clone)]
pub struct Scrubber {
    /// Matches the folded variants of the owner's entities.
    matcher: Option<AhoCorasick>,
    /// For each matcher pattern: its kind and the entity it stands for.
    variants: Vec<(Kind, u32)>,
    /// Known people whose given name is also a word ("Will", "Rose", "May"): matched
    /// only capitalised and where a word would not be.
    cased: Option<AhoCorasick>,
    cased_of: Vec<u32>,
    entities: usize,
}

/// Words before a month or a verb that make "May" or "Will" not a name.
const NOT_BEFORE_WORD_NAME: &[&str] = &[
    "in", "on", "of", "since", "until", "by", "from", "early", "late", "mid", "this", "next",
    "last", "each", "every", "through", "till", "before", "after", "during", "end", "i", "you",
    "we", "they", "it", "he", "she", "who", "which", "that", "what", "free", "good", "ill", "the",
    "a", "to",
];

/// Whether the capitalised word at `start..end` of `text` stands for a person: not
/// where a capital is owed to the sentence (unless a colon or comma after it makes it a
/// speaker or an address), not a month before a day or year.
fn word_name_at(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    if (start > 0 && b[start - 1].is_ascii_alphanumeric())
        || (end < b.len() && b[end].is_ascii_alphanumeric())
    {
        return false;
    }
    let after = text[end..].trim_start_matches([' ', '\t']);
    if after.starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    let speaker = after.starts_with([':', '：', ',', '，', ')', '|']) || after.starts_with("'s");
    let before = text[..start].trim_end_matches([' ', '\t']);
    let sentence_start = before.is_empty()
        || before.ends_with([
            '.', '!', '?', '\n', '"', '“', '。', '！', '？', '-', '(', '#', '|', ':', '：',
        ])
        || before.ends_with("\n-");
    if sentence_start {
        return speaker || before.ends_with([':', '：', '(', '|', '-']);
    }
    let prev = before
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("")
        .to_lowercase();
    !NOT_BEFORE_WORD_NAME.contains(&prev.as_str())
}

/// One entity found and replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// What it is.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Byte offset in the original text.
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
    /// The original text.
    pub text: String,
    /// What replaced it.
    pub placeholder: String,
    /// Which layer found it.
    pub source: Source,
}

/// The placeholders of one conversation: the same entity gets the same placeholder in
/// every message, and [`Scrubbed::restore`] turns them back.
#[derive(Debug, Clone, Default)]
pub struct Scrubbed {
    /// Placeholder → original.
    originals: HashMap<String, String>,
    /// (kind, identity) → placeholder.
    keys: HashMap<(Kind, String), String>,
    counts: HashMap<Kind, u32>,
}

pub(crate) fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// The ways the owner may write an entity: the whole of it, and for names their parts
/// and forms of address.
fn variants(kind: Kind, text: &str) -> Vec<String> {
    let full = fold(text);
    let mut out = vec![full.clone()];
    match kind {
        Kind::Person if full.chars().all(is_han) => {
            let chars: Vec<char> = full.chars().collect();
            let surname_len = if CN_COMPOUND_SURNAMES.iter().any(|s| full.starts_with(s)) {
                2
            } else {
                1
            };
            let surname: String = chars[..surname_len].iter().collect();
            if surname_len == 2 || CN_SURNAMES.contains(surname.as_str()) {
                for t in CN_TITLES.split('|') {
                    out.push(format!("{surname}{t}"));
                }
                if surname_len == 1 {
                    for p in ["小", "老", "阿"] {
                        out.push(format!("{p}{surname}"));
                    }
                }
                let given: String = chars[surname_len..].iter().collect();
                if given.chars().count() == 2 && !WORD_NAMES.contains(&given.as_str()) {
                    out.push(given);
                }
            }
        }
        Kind::Person => {
            let all: Vec<&str> = full.split(' ').filter(|p| !p.is_empty()).collect();
            for p in full.split([' ', '-']) {
                let n = p.chars().count();
                let alone = n >= 4 || (n == 3 && names::is_given_name(p));
                if alone && !WORD_NAMES.contains(&p) && !names::is_not_name(p) {
                    out.push(p.to_string());
                }
            }
            if let [first, last] = all.as_slice() {
                out.push(format!("{last} {first}"));
                out.push(format!("{last}, {first}"));
                out.push(format!("{last}/{first}"));
                out.push(format!("{first}/{last}"));
            }
        }
        Kind::Address => {
            if let Some((street, _)) = full.split_once(',')
                && street.chars().count() >= 8
                && street.chars().any(|c| c.is_ascii_digit())
            {
                out.push(street.to_string());
            }
        }
        _ => {}
    }
    out.retain(|v| v.chars().count() >= 2 && (v.chars().any(is_han) || v.len() >= 3));
    out
}

impl Scrubber {
    /// A scrubber that knows the owner's `entities`.
    pub fn new(entities: &EntityList) -> Scrubber {
        let mut patterns = Vec::new();
        let mut variants_of = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, (kind, text)) in entities.iter().enumerate() {
            for v in variants(kind, text) {
                if seen.insert(v.clone()) {
                    patterns.push(v);
                    variants_of.push((kind, i as u32));
                }
            }
        }
        let mut cased_words = Vec::new();
        let mut cased_of = Vec::new();
        for (i, (kind, text)) in entities.iter().enumerate() {
            if kind != Kind::Person || text.chars().any(is_han) {
                continue;
            }
            if let Some(first) = text.split(' ').next()
                && text.contains(' ')
                && WORD_NAMES.contains(&first.to_lowercase().as_str())
                && first.chars().next().is_some_and(char::is_uppercase)
                && !cased_words.iter().any(|w: &String| w == first)
            {
                cased_words.push(first.to_string());
                cased_of.push(i as u32);
            }
        }
        let cased = (!cased_words.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&cased_words)
                .expect("the given-name matcher builds")
        });
        let matcher = (!patterns.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .expect("the entity matcher builds")
        });
        Scrubber {
            matcher,
            variants: variants_of,
            cased,
            cased_of,
            entities: entities.len(),
        }
    }

    /// How many of the owner's entities it knows.
    pub fn entities(&self) -> usize {
        self.entities
    }

    /// The personal data in `text`, overlapping finds merged, in order.
    pub fn find(&self, text: &str) -> Result<Vec<Span>, Error> {
        Ok(self.find_keyed(text)?.into_iter().map(|(s, _)| s).collect())
    }

    /// Spans with the identity of the entity each stands for (for placeholders).
    fn find_keyed(&self, text: &str) -> Result<Vec<(Span, String)>, Error> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(Error::TooLarge {
                size: text.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        // (span, priority, identity)
        let mut all: Vec<(Span, u8, Option<u32>)> = Vec::new();
        all.extend(patterns::find(text).into_iter().map(|s| (s, 3, None)));
        if let Some(m) = &self.matcher {
            let folded = Folded::new(text);
            let f = folded.text.as_bytes();
            for hit in m.find_iter(&folded.text) {
                let (s, e) = (hit.start(), hit.end());
                let alnum = |b: u8| b.is_ascii_alphanumeric();
                if (alnum(f[s]) && s > 0 && alnum(f[s - 1]))
                    || (alnum(f[e - 1]) && e < f.len() && alnum(f[e]))
                {
                    continue;
                }
                let (kind, id) = self.variants[hit.pattern().as_usize()];
                let (start, end) = folded.original(s, e);
                all.push((
                    Span {
                        kind,
                        start,
                        end,
                        source: Source::Memory,
                    },
                    2,
                    Some(id),
                ));
            }
        }
        if let Some(m) = &self.cased {
            for hit in m.find_iter(text) {
                if word_name_at(text, hit.start(), hit.end()) {
                    all.push((
                        Span {
                            kind: Kind::Person,
                            start: hit.start(),
                            end: hit.end(),
                            source: Source::Memory,
                        },
                        2,
                        Some(self.cased_of[hit.pattern().as_usize()]),
                    ));
                }
            }
        }
        all.extend(names::find(text).into_iter().map(|s| (s, 1, None)));
        all.sort_by_key(|(s, p, _)| (s.start, std::cmp::Reverse(s.end), std::cmp::Reverse(*p)));
        // Merge overlaps: the union is replaced, named after its strongest find.
        let mut merged: Vec<(Span, (u8, usize), Option<u32>)> = Vec::new();
        for (s, p, id) in all {
            let strength = (p, s.end - s.start);
            match merged.last_mut() {
                Some((last, best, last_id)) if s.start < last.end => {
                    if strength > *best {
                        last.kind = s.kind;
                        last.source = s.source;
                        *best = strength;
                        *last_id = id;
                    }
                    last.end = last.end.max(s.end);
                }
                _ => merged.push((s, strength, id)),
            }
        }
        Ok(merged
            .into_iter()
            .map(|(s, _, id)| {
                let key = match id {
                    Some(id) if s.source == Source::Memory => format!("#{id}"),
                    _ => fold(&text[s.start..s.end]),
                };
                (s, key)
            })
            .collect())
    }

    /// `text` with every entity replaced by its placeholder in `session`, and what was
    /// replaced.
    pub fn scrub(&self, session: &mut Scrubbed, text: &str) -> Result<(String, Vec<Found>), Error> {
        let spans = self.find_keyed(text)?;
        let mut out = String::with_capacity(text.len());
        let mut found = Vec::with_capacity(spans.len());
        let mut at = 0;
        for (s, key) in spans {
            let original = &text[s.start..s.end];
            let placeholder = session.placeholder(s.kind, key, original);
            out.push_str(&text[at..s.start]);
            out.push_str(&placeholder);
            at = s.end;
            found.push(Found {
                kind: s.kind,
                start: s.start,
                end: s.end,
                text: original.to_string(),
                placeholder,
                source: s.source,
            });
        }
        out.push_str(&text[at..]);
        Ok((out, found))
    }
}

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    Regex::new(&format!(r"[<\[]?\b(?:{})_\d+\b[>\]]?", kinds.join("|"))).expect("valid")
});
static PARTIAL_TAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[<\[]?[A-Z][A-Z_]*\d*$|[<\[]$").expect("valid"));

impl Scrubbed {
    /// An empty session.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many distinct entities were replaced.
    pub fn len(&self) -> usize {
        self.originals.len()
    }

    /// Whether nothing was replaced.
    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }

    fn placeholder(&mut self, kind: Kind, key: String, original: &str) -> String {
        if let Some(p) = self.keys.get(&(kind, key.clone())) {
            return p.clone();
        }
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        let p = format!("<{}_{}>", kind.as_str(), n);
        self.keys.insert((kind, key), p.clone());
        self.originals.insert(p.clone(), original.to_string());
        p
    }

    /// `text` with this session's placeholders turned back into the originals (also
    /// when a model wrote them without or with other brackets: `PERSON_1`, `[PERSON_1]`).
    pub fn restore(&self, text: &str) -> String {
        if self.originals.is_empty() {
            return text.to_string();
        }
        PLACEHOLDER
            .replace_all(text, |c: &regex::Captures<'_>| {
                let m = &c[0];
                let core = m
                    .trim_start_matches(['<', '['])
                    .trim_end_matches(['>', ']']);
                match self.originals.get(&format!("<{core}>")) {
                    Some(o) => o.clone(),
                    None => m.to_string(),
                }
            })
            .into_owned()
    }

    /// A restorer for an answer that arrives in pieces.
    pub fn restorer(&self) -> Restorer {
        Restorer {
            session: self.clone(),
            pending: String::new(),
        }
    }
}

/// Restores a streamed answer: holds back a piece that may be the start of a
/// placeholder until it is complete.
#[derive(Debug, Clone)]
pub struct Restorer {
    session: Scrubbed,
    pending: String,
}

/// The longest placeholder a restorer waits for.
const MAX_PLACEHOLDER: usize = 24;

impl Restorer {
    /// Takes the next piece; returns what can be shown now.
    pub fn push(&mut self, piece: &str) -> String {
        self.pending.push_str(piece);
        let hold = PARTIAL_TAIL
            .find(&self.pending)
            .filter(|m| m.end() - m.start() <= MAX_PLACEHOLDER && !self.session.is_empty())
            .map_or(self.pending.len(), |m| m.start());
        let ready: String = self.pending[..hold].to_string();
        self.pending.drain(..hold);
        self.session.restore(&ready)
    }

    /// The rest, at the end of the answer.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        self.session.restore(&rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Scrubber {
        let mut l = EntityList::new();
        l.add(Kind::Person, "José Núñez");
        l.add(Kind::Person, "王建国");
        l.add(Kind::Person, "Alice Martin");
        l.add(Kind::Project, "Bluefin");
        l.add(Kind::Address, "12 Elm Road, Oxford OX1 2JD");
        Scrubber::new(&l)
    }

    #[test]
    fn memory_entities_in_other_forms() {
        let s = owner();
        let t = "Ask jose nunez and 王总 about project BLUEFIN; alice knows 12 Elm Road. 小王 too.";
        let (out, found) = s.scrub(&mut Scrubbed::new(), t).unwrap();
        for gone in [
            "jose",
            "nunez",
            "王总",
            "BLUEFIN",
            "alice",
            "12 Elm Road",
            "小王",
        ] {
            assert!(!out.contains(gone), "{gone} left in {out}");
        }
        assert!(found.iter().all(|f| t[f.start..f.end] == f.text));
        assert!(
            out.contains("<PERSON_1>") && out.contains("<PROJECT_1>"),
            "{out}"
        );
    }

    #[test]
    fn placeholders_are_consistent_and_restore() {
        let s = owner();
        let mut session = Scrubbed::new();
        let (a, _) = s
            .scrub(&mut session, "Alice Martin wrote to bob@example.com.")
            .unwrap();
        let (b, _) = s
            .scrub(&mut session, "Did Alice Martin call bob@example.com back?")
            .unwrap();
        assert_eq!(a, "<PERSON_1> wrote to <EMAIL_1>.");
        assert_eq!(b, "Did <PERSON_1> call <EMAIL_1> back?");
        let answer = "Yes, <PERSON_1> called EMAIL_1 and [PERSON_1]; <PERSON_9> is unknown.";
        assert_eq!(
            session.restore(answer),
            "Yes, Alice Martin called bob@example.com and Alice Martin; <PERSON_9> is unknown."
        );
        // The same, arriving token by token, split inside placeholders.
        let mut r = session.restorer();
        let mut streamed = String::new();
        for piece in [
            "Yes, <PER",
            "SON",
            "_1> called EMAIL",
            "_1",
            " and [PERSON_1]; <PERSON_9",
            "> is unknown.",
        ] {
            streamed.push_str(&r.push(piece));
        }
        streamed.push_str(&r.finish());
        assert_eq!(streamed, session.restore(answer));
    }

    #[test]
    fn refuses_oversized_text() {
        let big = "a".repeat(MAX_TEXT_BYTES + 1);
        assert!(matches!(owner().find(&big), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn word_names_only_where_they_name() {
        let mut l = EntityList::new();
        l.add(Kind::Person, "Will Harris");
        l.add(Kind::Person, "May Okafor");
        let s = Scrubber::new(&l);
        let found = |t: &str| -> Vec<String> {
            s.find(t)
                .unwrap()
                .iter()
                .map(|p| t[p.start..p.end].to_string())
                .collect()
        };
        assert_eq!(
            found("I will ask Will: is May coming in May 2025?"),
            ["Will", "May"]
        );
        assert_eq!(found("Will: yes. Will you?"), ["Will"]);
        assert!(found("will may mark").is_empty());
    }

    #[test]
    fn romanised_chinese_names_and_project_cues() {
        let s = Scrubber::new(&EntityList::new());
        let found = |t: &str| -> Vec<(Kind, String)> {
            s.find(t)
                .unwrap()
                .iter()
                .map(|p| (p.kind, t[p.start..p.end].to_string()))
                .collect()
        };
        assert_eq!(
            found("paid Haoran Tang in Hong Kong for the Marigold standup"),
            [
                (Kind::Person, "Haoran Tang".to_string()),
                (Kind::Project, "Marigold".to_string())
            ]
        );
        assert_eq!(
            found("后端开发（银杏组）"),
            [(Kind::Project, "银杏".to_string())]
        );
    }
}
