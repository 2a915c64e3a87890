//! The BERT WordPiece tokenizer of a `tokenizer.json` (HF tokenizers): added (special)
//! tokens matched on the raw text, then `BertNormalizer` (clean text, spaces around CJK
//! ideographs, accent stripping, lowercasing), `BertPreTokenizer` (split on whitespace,
//! punctuation isolated) and greedy longest-match-first `WordPiece`.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::Error;
use crate::unicode_data::{CATEGORY_RANGES, DECOMPOSED_WITHOUT_MARKS};

const OTHER: u32 = 0x01;
const NONSPACING: u32 = 0x02;
const PUNCTUATION: u32 = 0x04;

/// A BERT WordPiece tokenizer read from a `tokenizer.json`.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: HashMap<String, u32>,
    /// Tokens matched verbatim in the raw text before normalization (the `added_tokens`
    /// with `normalized: false`), longest first.
    added: Vec<(String, u32)>,
    unk: u32,
    cls: u32,
    sep: u32,
    prefix: String,
    max_chars_per_word: usize,
    clean_text: bool,
    chinese_chars: bool,
    strip_accents: bool,
    lowercase: bool,
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::Tokenizer {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

impl Tokenizer {
    /// Reads and validates a `tokenizer.json` file.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&bytes, path)
    }

    /// Parses `tokenizer.json` content; `path` only names the source in errors.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self, Error> {
        let root: Value =
            serde_json::from_slice(bytes).map_err(|e| bad(path, format!("not JSON: {e}")))?;
        let model = root
            .get("model")
            .ok_or_else(|| bad(path, "no `model` object"))?;
        let kind = model.get("type").and_then(Value::as_str);
        if kind != Some("WordPiece") {
            return Err(bad(
                path,
                format!("model type {kind:?}, expected \"WordPiece\""),
            ));
        }
        let vocab_json = model
            .get("vocab")
            .and_then(Value::as_object)
            .ok_or_else(|| bad(path, "`model.vocab` is not an object"))?;
        let mut vocab = HashMap::with_capacity(vocab_json.len());
        for (token, id) in vocab_json {
            let id = id
                .as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| bad(path, format!("vocab entry {token:?}: id {id} is not a u32")))?;
            vocab.insert(token.clone(), id);
        }
        let string_field = |key: &str, default: &str| -> Result<String, Error> {
            match model.get(key) {
                None | Some(Value::Null) => Ok(default.to_string()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(v) => Err(bad(
                    path,
                    format!("`model.{key}` is {v}, expected a string"),
                )),
            }
        };
        let unk_token = string_field("unk_token", "[UNK]")?;
        let prefix = string_field("continuing_subword_prefix", "##")?;
        let max_chars_per_word = match model.get("max_input_chars_per_word") {
            None | Some(Value::Null) => 100,
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| bad(path, format!("`max_input_chars_per_word` is {v}")))?,
        };
        let id_of = |token: &str| {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| bad(path, format!("token {token:?} is not in the vocabulary")))
        };
        let unk = id_of(&unk_token)?;
        let cls = id_of("[CLS]")?;
        let sep = id_of("[SEP]")?;

        let (mut clean_text, mut chinese_chars, mut strip_accents, mut lowercase) =
            (false, false, false, false);
        match root.get("normalizer") {
            None | Some(Value::Null) => {}
            Some(n) => {
                let kind = n.get("type").and_then(Value::as_str);
                if kind != Some("BertNormalizer") {
                    return Err(bad(
                        path,
                        format!("normalizer type {kind:?}, expected \"BertNormalizer\""),
                    ));
                }
                let flag = |key: &str, default: bool| -> Result<Option<bool>, Error> {
                    match n.get(key) {
                        None => Ok(Some(default)),
                        Some(Value::Null) => Ok(None),
                        Some(Value::Bool(b)) => Ok(Some(*b)),
                        Some(v) => Err(bad(path, format!("`normalizer.{key}` is {v}"))),
                    }
                };
                clean_text = flag("clean_text", true)?.unwrap_or(true);
                chinese_chars = flag("handle_chinese_chars", true)?.unwrap_or(true);
                lowercase = flag("lowercase", true)?.unwrap_or(true);
                // `strip_accents: null` follows `lowercase`, as in BERT.
                strip_accents = flag("strip_accents", lowercase)?.unwrap_or(lowercase);
            }
        }
        match root.get("pre_tokenizer") {
            None | Some(Value::Null) => {}
            Some(p) => {
                let kind = p.get("type").and_then(Value::as_str);
                if kind != Some("BertPreTokenizer") {
                    return Err(bad(
                        path,
                        format!("pre_tokenizer type {kind:?}, expected \"BertPreTokenizer\""),
                    ));
                }
            }
        }
        let mut added = Vec::new();
        if let Some(list) = root.get("added_tokens") {
            let list = list
                .as_array()
                .ok_or_else(|| bad(path, "`added_tokens` is not an array"))?;
            for t in list {
                let content = t.get("content").and_then(Value::as_str);
                let id = t
                    .get("id")
                    .and_then(Value::as_u64)
                    .and_then(|id| u32::try_from(id).ok());
                let (Some(content), Some(id)) = (content, id) else {
                    return Err(bad(
                        path,
                        format!("added token {t} lacks `content` or `id`"),
                    ));
                };
                let normalized = t.get("normalized").and_then(Value::as_bool).unwrap_or(true);
                if !content.is_empty() && !normalized {
                    added.push((content.to_string(), id));
                }
            }
        }
        added.sort_by_key(|t| std::cmp::Reverse(t.0.len()));
        Ok(Tokenizer {
            vocab,
            added,
            unk,
            cls,
            sep,
            prefix,
            max_chars_per_word,
            clean_text,
            chinese_chars,
            strip_accents,
            lowercase,
        })
    }

    /// The id of `[CLS]`.
    pub fn cls(&self) -> u32 {
        self.cls
    }

    /// The id of `[SEP]`.
    pub fn sep(&self) -> u32 {
        self.sep
    }

    /// The number of entries of the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The largest token id, if the vocabulary is not empty.
    pub fn max_id(&self) -> Option<u32> {
        self.vocab
            .values()
            .chain(self.added.iter().map(|(_, id)| id))
            .copied()
            .max()
    }

    /// Token ids of `text` without `[CLS]`/`[SEP]` and without truncation.
    pub fn encode_words(&self, text: &str) -> Vec<u32> {
        self.encode_words_up_to(text, usize::MAX)
    }

    /// The first ids of `text` (at least `limit` of them if the text has that many,
    /// maybe a few more): the work stops once there are enough, so a huge text costs
    /// no more than its beginning.
    fn encode_words_up_to(&self, text: &str, limit: usize) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut rest = text;
        while !rest.is_empty() && ids.len() < limit {
            match self.find_added(rest) {
                Some((at, len, id)) => {
                    self.encode_plain(&rest[..at], &mut ids, limit);
                    ids.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    self.encode_plain(rest, &mut ids, limit);
                    break;
                }
            }
        }
        ids
    }

    /// `[CLS]`, the ids of `text`, `[SEP]`, truncated to at most `max_len` ids (the
    /// words are cut, `[CLS]` and `[SEP]` are kept; `max_len` is at least 2).
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let keep = max_len.max(2) - 2;
        let mut words = self.encode_words_up_to(text, keep);
        words.truncate(keep);
        let mut ids = Vec::with_capacity(words.len() + 2);
        ids.push(self.cls);
        ids.extend(words);
        ids.push(self.sep);
        ids
    }

    /// The leftmost (then longest) added token in `text`: byte offset, length, id.
    fn find_added(&self, text: &str) -> Option<(usize, usize, u32)> {
        if self.added.is_empty() {
            return None;
        }
        for (at, _) in text.char_indices() {
            let tail = &text[at..];
            // `added` is sorted longest first.
            if let Some((s, id)) = self
                .added
                .iter()
                .find(|(s, _)| tail.starts_with(s.as_str()))
            {
                return Some((at, s.len(), *id));
            }
        }
        None
    }

    /// Normalizes, pre-tokenizes and WordPiece-encodes a text without added tokens,
    /// one character at a time, until `ids` holds at least `limit` ids.
    fn encode_plain(&self, text: &str, ids: &mut Vec<u32>, limit: usize) {
        let mut word = String::new();
        let mut normalized = String::new();
        for c in text.chars() {
            if ids.len() >= limit {
                return;
            }
            normalized.clear();
            self.normalize_char(c, &mut normalized);
            for c in normalized.chars() {
                if c.is_whitespace() {
                    self.wordpiece(&word, ids);
                    word.clear();
                } else if is_bert_punctuation(c) {
                    self.wordpiece(&word, ids);
                    word.clear();
                    word.push(c);
                    self.wordpiece(&word, ids);
                    word.clear();
                } else {
                    word.push(c);
                }
            }
        }
        self.wordpiece(&word, ids);
    }

    /// `BertNormalizer` of one character (clean text, CJK spacing, accent stripping,
    /// lowercasing, in the order of HF tokenizers), appended to `out`.
    fn normalize_char(&self, c: char, out: &mut String) {
        if self.clean_text {
            let cp = c as u32;
            if cp == 0 || cp == 0xFFFD || is_control(c) {
                return;
            }
            if is_bert_whitespace(c) {
                out.push(' ');
                return;
            }
        }
        if self.chinese_chars && is_chinese_char(c) {
            out.push(' ');
            self.push_folded(c, out);
            out.push(' ');
        } else {
            self.push_folded(c, out);
        }
    }

    /// Pushes `c` with accents stripped (NFD, then non-spacing marks removed) and
    /// lowercased, as configured.
    fn push_folded(&self, c: char, out: &mut String) {
        let push_lower = |c: char, out: &mut String| {
            if self.lowercase {
                out.extend(c.to_lowercase());
            } else {
                out.push(c);
            }
        };
        if !self.strip_accents {
            push_lower(c, out);
            return;
        }
        let cp = c as u32;
        if let Some(jamo) = hangul_jamo(cp) {
            for j in jamo.into_iter().flatten() {
                push_lower(j, out);
            }
        } else if let Ok(i) = DECOMPOSED_WITHOUT_MARKS.binary_search_by_key(&cp, |&(k, _)| k) {
            for d in DECOMPOSED_WITHOUT_MARKS[i].1.chars() {
                push_lower(d, out);
            }
        } else if flags(cp) & NONSPACING == 0 {
            push_lower(c, out);
        }
    }

    /// Greedy longest-match-first WordPiece of one word; `[UNK]` for a word that is too
    /// long or has a part that matches nothing.
    fn wordpiece(&self, word: &str, ids: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        if word.chars().count() > self.max_chars_per_word {
            ids.push(self.unk);
            return;
        }
        let start_len = ids.len();
        let mut start = 0;
        let mut piece = String::new();
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while start < end {
                piece.clear();
                if start > 0 {
                    piece.push_str(&self.prefix);
                }
                piece.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(&piece) {
                    found = Some(id);
                    break;
                }
                // Step back one character.
                end = word[..end]
                    .char_indices()
                    .next_back()
                    .map_or(start, |(i, _)| i);
            }
            match found {
                Some(id) => {
                    ids.push(id);
                    start = end;
                }
                None => {
                    ids.truncate(start_len);
                    ids.push(self.unk);
                    return;
                }
            }
        }
    }
}

/// The class flags of a code point (see `unicode_data.rs`).
fn flags(cp: u32) -> u32 {
    let i = CATEGORY_RANGES.partition_point(|&packed| packed >> 8 <= cp);
    if i == 0 {
        0
    } else {
        CATEGORY_RANGES[i - 1] & 0xFF
    }
}

/// HF tokenizers' `is_whitespace` of the BERT normalizer.
fn is_bert_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// HF tokenizers' `is_control`: other (C*) except tab, newline and carriage return.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && flags(c as u32) & OTHER != 0
}

/// `BertPreTokenizer`'s punctuation: ASCII punctuation or Unicode P*.
fn is_bert_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || flags(c as u32) & PUNCTUATION != 0
}

/// The CJK ideograph blocks of BERT's `_is_chinese_char`.
fn is_chinese_char(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B820..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

/// The canonical decomposition of a Hangul syllable into two or three jamo.
fn hangul_jamo(cp: u32) -> Option<[Option<char>; 3]> {
    const S_BASE: u32 = 0xAC00;
    const S_COUNT: u32 = 11172;
    const N_COUNT: u32 = 588;
    const T_COUNT: u32 = 28;
    let s = cp.checked_sub(S_BASE).filter(|&s| s < S_COUNT)?;
    let l = char::from_u32(0x1100 + s / N_COUNT);
    let v = char::from_u32(0x1161 + (s % N_COUNT) / T_COUNT);
    let t = s % T_COUNT;
    let t = if t == 0 {
        None
    } else {
        char::from_u32(0x11A7 + t)
    };
    Some([l, v, t])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Tokenizer {
        let json = serde_json::json!({
            "added_tokens": [
                {"id": 0, "content": "[PAD]", "normalized": false},
                {"id": 1, "content": "[UNK]", "normalized": false},
                {"id": 2, "content": "[CLS]", "normalized": false},
                {"id": 3, "content": "[SEP]", "normalized": false},
            ],
            "normalizer": {"type": "BertNormalizer", "clean_text": true,
                "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "model": {"type": "WordPiece", "unk_token": "[UNK]",
                "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "cafe": 4,
                    "naive": 5, "un": 6, "##aff": 7, "##able": 8, "!": 9, "中": 10,
                    "文": 11, "\u{1100}": 12, "##\u{1161}": 13}}
        });
        Tokenizer::from_json(json.to_string().as_bytes(), Path::new("tiny.json")).unwrap()
    }

    #[test]
    fn basic_pipeline() {
        let t = tiny();
        assert_eq!(t.encode_words("Café NAÏVE!"), vec![4, 5, 9]);
        assert_eq!(t.encode_words("unaffable"), vec![6, 7, 8]);
        assert_eq!(t.encode_words("unaffablex"), vec![1]);
        assert_eq!(t.encode_words("中文"), vec![10, 11]);
        assert_eq!(t.encode_words("가"), vec![12, 13]);
        assert_eq!(t.encode_words("cafe[SEP]naive"), vec![4, 3, 5]);
        assert_eq!(t.encode_words(" \u{0} \t\u{FFFD}"), Vec::<u32>::new());
        assert_eq!(t.encode("", 256), vec![2, 3]);
        assert_eq!(t.encode("cafe cafe cafe", 4), vec![2, 4, 4, 3]);
        let long = "a".repeat(101);
        assert_eq!(t.encode_words(&long), vec![1]);
        let many = "cafe naive ".repeat(1000);
        let all = t.encode_words(&many);
        assert_eq!(all.len(), 2000);
        for n in [2, 3, 10, 256] {
            let ids = t.encode(&many, n);
            assert_eq!(ids.len(), n);
            assert_eq!(ids[1..n - 1], all[..n - 2]);
        }
    }
}
