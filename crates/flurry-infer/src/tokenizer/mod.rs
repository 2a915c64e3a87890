//! Tokenizers built from GGUF metadata, matching llama.cpp token for token.
//!
//! Two vocabulary types are supported, chosen by `tokenizer.ggml.model`:
//!
//! - `gpt2`: byte-level BPE. The text is split into words by the pre-tokenizer named in
//!   `tokenizer.ggml.pre` (`default`, `gpt-2`, `smollm`, `starcoder`, `falcon` and the
//!   names llama.cpp treats like them; others are refused), each word's bytes are
//!   mapped through GPT-2's byte-to-unicode table and merged pair by pair, lowest merge
//!   rank first (`tokenizer.ggml.merges`, rank = index).
//! - `llama`: SentencePiece as llama.cpp's `llm_tokenizer_spm` runs it. Spaces become
//!   `▁`, the text is split into UTF-8 characters and adjacent pairs whose
//!   concatenation is a token are merged, highest score first (leftmost on ties);
//!   characters that end up in no token fall back to `<0xXX>` byte tokens.
//!
//! Before either runs, special-token texts are cut out of the input as llama.cpp's
//! `tokenizer_st_partition` does: user-defined tokens always, control and unknown
//! tokens only when `parse_special` is set; longer tokens claim their text first.
//! [`Tokenizer::encode_guarded`] also leaves control-token text inside given byte ranges
//! (a chat's message text) as ordinary text, so only a template makes control tokens.
//! Token attributes, end-of-generation tokens and the rendering of tokens as bytes
//! follow `llama-vocab.cpp` (llama-cpp-python 0.3.36), including its adjustments by
//! token text (for example `<end_of_turn>` is always a control, end-of-generation token).

mod unicode;
mod unicode_data;
mod vocab;

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use crate::gguf::{Gguf, Value};
use crate::{Error, Result};
use unicode::Split;
use vocab::{PushError, Vocab};

// llama.cpp's `llama_token_attr` bits.
const ATTR_UNKNOWN: u32 = 1 << 0;
const ATTR_UNUSED: u32 = 1 << 1;
const ATTR_NORMAL: u32 = 1 << 2;
const ATTR_CONTROL: u32 = 1 << 3;
const ATTR_USER_DEFINED: u32 = 1 << 4;
const ATTR_BYTE: u32 = 1 << 5;

/// SentencePiece's whitespace marker.
const SPACE_MARK: &str = "\u{2581}";
/// Marks a missing link in the symbol lists of the merge loops.
const NONE: usize = usize::MAX;

/// Token texts llama.cpp treats as end of generation whatever their type.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];

/// Pre-tokenizer names (`tokenizer.ggml.pre`) that use the plain GPT-2 regex.
const PRE_GPT2: &[&str] = &[
    "gpt-2",
    "phi-2",
    "jina-es",
    "jina-de",
    "gigachat",
    "jina-v2-es",
    "jina-v2-de",
    "a.x-4.0",
    "mellum",
    "modern-bert",
    "jina-v1-en",
    "jina-v2-code",
    "roberta-bpe",
    "mpt",
    "olmo",
    "jais",
    "trillion",
    "granite-docling",
    "exaone4",
];
/// Pre-tokenizer names that isolate every digit, then apply the GPT-2 regex.
const PRE_STARCODER: &[&str] = &[
    "starcoder",
    "refact",
    "command-r",
    "smollm",
    "codeshell",
    "exaone",
    "minerva-7b",
    "mellum2",
];

/// Which algorithm turns text into tokens.
enum Model {
    Bpe(Bpe),
    Spm(Spm),
}

struct Bpe {
    /// The pre-tokenizer's steps.
    steps: Vec<Split>,
    /// `(left, right)` → `(rank, merged)`.
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// The token of each byte's GPT-2 character.
    byte_tokens: [Option<u32>; 256],
}

struct Spm {
    scores: Vec<f32>,
    /// The `<0xXX>` token of each byte.
    byte_tokens: [Option<u32>; 256],
    add_space_prefix: bool,
}

/// A tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata.
///
/// Immutable once built: `Send + Sync`, shared through an `Arc`.
pub struct Tokenizer {
    model: Model,
    vocab: Vocab,
    attrs: Vec<u32>,
    /// Each token's bytes with special rendering on, concatenated; `piece_ends[i]` is
    /// the end of token `i`'s bytes.
    pieces: Vec<u8>,
    piece_ends: Vec<usize>,
    /// Control, user-defined and unknown tokens, for finding them in text.
    special_trie: Trie,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    /// End-of-generation tokens, ascending.
    eog: Vec<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field(
                "model",
                &match self.model {
                    Model::Bpe(_) => "gpt2",
                    Model::Spm(_) => "llama",
                },
            )
            .field("vocab_size", &self.vocab.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .field("eog", &self.eog)
            .finish()
    }
}

fn tok_err(message: impl Into<String>) -> Error {
    Error::Tokenizer(message.into())
}

/// An optional token id from metadata: `Ok(None)` when absent or negative.
fn meta_id(g: &Gguf, key: &str) -> Result<Option<u64>> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(i) if i < 0 => Ok(None),
            _ => g.get_u64(key).map(Some),
        },
    }
}

impl Tokenizer {
    /// Builds the tokenizer from `tokenizer.ggml.*` metadata, validating it: token,
    /// score and type arrays of one length, special token ids inside the vocabulary,
    /// merges made of vocabulary tokens.
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let model_name = g.get_str("tokenizer.ggml.model")?;
        let pre = g.opt_str("tokenizer.ggml.pre")?;
        let raw_tokens = g.get_str_array("tokenizer.ggml.tokens")?;
        let n = raw_tokens.len();
        if n == 0 {
            return Err(tok_err("tokenizer.ggml.tokens is empty"));
        }
        if n > i32::MAX as usize {
            return Err(tok_err(format!("vocabulary of {n} tokens is too large")));
        }

        let mut vocab = Vocab::with_capacity(n);
        for (i, t) in raw_tokens.iter().enumerate() {
            // llama.cpp renames empty tokens so that every text is distinct.
            let renamed;
            let text = if t.is_empty() {
                renamed = format!("[EMPTY_{i}]");
                renamed.as_str()
            } else {
                t
            };
            match vocab.push(text) {
                Ok(_) => {}
                Err(PushError::Duplicate(prev)) => {
                    return Err(tok_err(format!(
                        "tokenizer.ggml.tokens holds {text:?} twice (ids {prev} and {i})"
                    )));
                }
                Err(PushError::TooLarge) => {
                    return Err(tok_err(
                        "tokenizer.ggml.tokens holds more than 4 GiB of text",
                    ));
                }
            }
        }
        vocab.shrink_to_fit();
        drop(raw_tokens);

        let scores = match g.get("tokenizer.ggml.scores") {
            None => None,
            Some(_) => {
                let s = g.get_f32_array("tokenizer.ggml.scores")?;
                if s.len() != n {
                    return Err(tok_err(format!(
                        "tokenizer.ggml.scores has {} entries but there are {n} tokens",
                        s.len()
                    )));
                }
                Some(s)
            }
        };
        let mut attrs = match g.get("tokenizer.ggml.token_type") {
            None => vec![ATTR_NORMAL; n],
            Some(_) => {
                let types = g.get_i64_array("tokenizer.ggml.token_type")?;
                if types.len() != n {
                    return Err(tok_err(format!(
                        "tokenizer.ggml.token_type has {} entries but there are {n} tokens",
                        types.len()
                    )));
                }
                types
                    .iter()
                    .map(|&t| match t {
                        1 => ATTR_NORMAL,
                        2 => ATTR_UNKNOWN,
                        3 => ATTR_CONTROL,
                        4 => ATTR_USER_DEFINED,
                        5 => ATTR_UNUSED,
                        6 => ATTR_BYTE,
                        _ => 0,
                    })
                    .collect()
            }
        };

        let id_of = |s: &str| vocab.id(s);
        let default_id = |id: u32| (id < n as u32).then_some(id);
        let (model, mut bos, mut eos, mut unk, mut add_bos) = match model_name {
            "gpt2" => {
                let steps = match pre {
                    None | Some("default") => vec![
                        Split::PunctRuns(false),
                        Split::Gpt2,
                        Split::NumberRuns,
                        Split::Digits3,
                    ],
                    Some("falcon") => vec![Split::PunctRuns(true), Split::Gpt2, Split::Digits3],
                    Some(p) if PRE_GPT2.contains(&p) => vec![Split::Gpt2],
                    Some(p) if PRE_STARCODER.contains(&p) => vec![Split::EachNumber, Split::Gpt2],
                    Some(p) => {
                        return Err(tok_err(format!(
                            "unsupported pre-tokenizer {p:?} (tokenizer.ggml.pre); Flurry supports \
                             default, falcon, {}, {}",
                            PRE_GPT2.join(", "),
                            PRE_STARCODER.join(", ")
                        )));
                    }
                };
                let merges = parse_merges(g, &vocab)?;
                let chars = unicode::byte_chars();
                let byte_tokens = std::array::from_fn(|b| id_of(chars[b].encode_utf8(&mut [0; 4])));
                let bpe = Bpe {
                    steps,
                    merges,
                    byte_tokens,
                };
                (Model::Bpe(bpe), default_id(11), default_id(11), None, false)
            }
            "llama" => {
                let byte_tokens = std::array::from_fn(|b| {
                    id_of(&format!("<0x{b:02X}>")).or_else(|| {
                        // llama.cpp falls back to the byte itself as a token.
                        std::str::from_utf8(&[b as u8]).ok().and_then(id_of)
                    })
                });
                let add_space_prefix = g
                    .opt_bool("tokenizer.ggml.add_space_prefix")?
                    .unwrap_or(true);
                let spm = Spm {
                    scores: scores.unwrap_or_else(|| vec![0.0; n]),
                    byte_tokens,
                    add_space_prefix,
                };
                (
                    Model::Spm(spm),
                    default_id(1),
                    default_id(2),
                    default_id(0),
                    true,
                )
            }
            other => {
                return Err(tok_err(format!(
                    "unsupported tokenizer model {other:?} (tokenizer.ggml.model); Flurry \
                     supports gpt2 (byte-level BPE) and llama (SentencePiece)"
                )));
            }
        };

        // Special token ids: required in range for the ones that change behaviour,
        // ignored when out of range for the others (as llama.cpp does).
        let checked = |key: &str, default: Option<u32>| -> Result<Option<u32>> {
            match meta_id(g, key)? {
                None => Ok(default),
                Some(id) if id < n as u64 => Ok(Some(id as u32)),
                Some(id) => Err(tok_err(format!(
                    "{key} = {id} is outside the vocabulary of {n} tokens"
                ))),
            }
        };
        let lenient = |key: &str| -> Result<Option<u32>> {
            Ok(meta_id(g, key)?
                .filter(|&id| id < n as u64)
                .map(|id| id as u32))
        };
        bos = checked("tokenizer.ggml.bos_token_id", bos)?;
        eos = checked("tokenizer.ggml.eos_token_id", eos)?;
        unk = checked("tokenizer.ggml.unknown_token_id", unk)?;
        let mut eot = checked("tokenizer.ggml.eot_token_id", None)?;
        let mut eom = checked("tokenizer.ggml.eom_token_id", None)?;
        let mut fim_pre = lenient("tokenizer.ggml.fim_pre_token_id")?;
        let mut fim_suf = lenient("tokenizer.ggml.fim_suf_token_id")?;
        let mut fim_mid = lenient("tokenizer.ggml.fim_mid_token_id")?;
        fim_pre = lenient("tokenizer.ggml.prefix_token_id")?.or(fim_pre);
        fim_suf = lenient("tokenizer.ggml.suffix_token_id")?.or(fim_suf);
        fim_mid = lenient("tokenizer.ggml.middle_token_id")?.or(fim_mid);
        let mut fim_pad = lenient("tokenizer.ggml.fim_pad_token_id")?;
        let mut fim_rep = lenient("tokenizer.ggml.fim_rep_token_id")?;
        let mut fim_sep = lenient("tokenizer.ggml.fim_sep_token_id")?;

        if let Some(b) = g.opt_bool("tokenizer.ggml.add_bos_token")? {
            add_bos = b;
        }
        let add_eos = g.opt_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
        if add_bos && bos.is_none() {
            return Err(tok_err(
                "tokenizer.ggml.add_bos_token is set but there is no BOS token",
            ));
        }
        if add_eos && eos.is_none() {
            return Err(tok_err(
                "tokenizer.ggml.add_eos_token is set but there is no EOS token",
            ));
        }

        // Special tokens recognised by text, marked as control (llama.cpp's workaround
        // for converters that do not record them). The first match in id order wins.
        let detect = |slot: &mut Option<u32>, texts: &[&str], attrs: &mut [u32]| {
            if slot.is_some() {
                return;
            }
            if let Some(id) = texts.iter().filter_map(|t| vocab.id(t)).min() {
                *slot = Some(id);
                attrs[id as usize] |= ATTR_CONTROL;
            }
        };
        detect(&mut eot, EOT_TEXTS, &mut attrs);
        detect(&mut eom, &["<|eom_id|>"], &mut attrs);
        detect(&mut fim_pre, FIM_PRE_TEXTS, &mut attrs);
        detect(&mut fim_suf, FIM_SUF_TEXTS, &mut attrs);
        detect(&mut fim_mid, FIM_MID_TEXTS, &mut attrs);
        detect(&mut fim_pad, FIM_PAD_TEXTS, &mut attrs);
        detect(&mut fim_rep, FIM_REP_TEXTS, &mut attrs);
        detect(&mut fim_sep, FIM_SEP_TEXTS, &mut attrs);

        // Control tokens named "unused" are unused.
        for (t, a) in vocab.iter().zip(attrs.iter_mut()) {
            if *a & ATTR_CONTROL != 0 && *a & ATTR_UNUSED == 0 && t.contains("unused") {
                *a |= ATTR_UNUSED;
            }
        }

        // End-of-generation tokens.
        let mut eog: Vec<u32> = [fim_pad, fim_rep, fim_sep].into_iter().flatten().collect();
        for id in EOG_TEXTS.iter().filter_map(|t| vocab.id(t)) {
            eog.push(id);
            attrs[id as usize] |= ATTR_CONTROL;
        }
        // gpt-oss: always rendered.
        for t in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(id) = vocab.id(t) {
                attrs[id as usize] = ATTR_USER_DEFINED;
            }
        }
        eog.extend([eos, eot, eom].into_iter().flatten());
        eog.sort_unstable();
        eog.dedup();
        let with_text =
            |eog: &[u32], text: &str| eog.iter().copied().find(|&i| vocab.get(i) == Some(text));
        let has = |eog: &[u32], texts: &[&str]| texts.iter().any(|t| with_text(eog, t).is_some());
        // o200k_harmony / solar-open: "<|end|>" is not the end of generation there.
        if let Some(end) = with_text(&eog, "<|end|>") {
            let call = has(&eog, &["<|call|>", "<|calls|>"]);
            if call && has(&eog, &["<|return|>", "<|flush|>"]) {
                eog.retain(|&i| i != end);
                attrs[end as usize] = ATTR_USER_DEFINED;
            }
        }
        // gemma4 and plamo: "</s>" is an ordinary token.
        if let Some(s) = with_text(&eog, "</s>")
            && has(&eog, &["<|tool_response>", "<|plamo:eos|>"])
        {
            eog.retain(|&i| i != s);
            attrs[s as usize] = ATTR_NORMAL;
        }

        let mut special_trie = Trie::default();
        for (i, (t, &a)) in vocab.iter().zip(&attrs).enumerate() {
            if a & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN) != 0 {
                special_trie.insert(t.as_bytes(), i as u32);
            }
        }

        let mut tok = Self {
            model,
            vocab,
            attrs,
            pieces: Vec::new(),
            piece_ends: Vec::new(),
            special_trie,
            bos,
            eos,
            unk,
            add_bos,
            add_eos,
            eog,
        };
        tok.build_pieces();
        Ok(tok)
    }

    /// Renders every token (special rendering on) once, as llama.cpp's piece cache.
    fn build_pieces(&mut self) {
        let mut pieces = Vec::new();
        let mut ends = Vec::with_capacity(self.vocab.len());
        let byte_of = |t: &str| -> u8 {
            // strtol(text.substr(3, 2), 16)
            let hex: String = t
                .chars()
                .skip(3)
                .take(2)
                .take_while(|c| c.is_ascii_hexdigit())
                .collect();
            u8::from_str_radix(&hex, 16).unwrap_or(0)
        };
        for (t, &a) in self.vocab.iter().zip(&self.attrs) {
            if a & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED) != 0 {
                pieces.extend_from_slice(t.as_bytes());
            } else if a & ATTR_NORMAL != 0 {
                match self.model {
                    Model::Spm(_) => {
                        for (k, part) in t.split(SPACE_MARK).enumerate() {
                            if k > 0 {
                                pieces.push(b' ');
                            }
                            pieces.extend_from_slice(part.as_bytes());
                        }
                    }
                    Model::Bpe(_) => decode_byte_chars(t, &mut pieces),
                }
            } else if a & ATTR_BYTE != 0 {
                pieces.push(byte_of(t));
            }
            ends.push(pieces.len());
        }
        self.pieces = pieces;
        self.piece_ends = ends;
    }

    /// Tokenizes `text`. With `add_special`, prepends BOS when the vocabulary asks for
    /// it (`tokenizer.ggml.add_bos_token`; default on for `llama`, off for `gpt2`) and
    /// appends EOS when `tokenizer.ggml.add_eos_token` is set. With `parse_special`,
    /// control-token texts such as `<|im_start|>` become their tokens; without it they
    /// are tokenized as plain text (user-defined tokens are always recognised).
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        self.encode_guarded(text, add_special, parse_special, &[])
    }

    /// [`encode`](Self::encode) with special-token parsing on everywhere except inside
    /// the byte ranges `plain` (sorted or not): a control or unknown token whose text
    /// overlaps one of them is tokenized as ordinary text, as if that part of the input
    /// had been encoded with `parse_special` off. This is how a rendered chat prompt is
    /// tokenized: the template's own markers become control tokens, while the same
    /// marker text inside a message (typed by a user, or read from a mail or a file)
    /// cannot open a turn of its own. Text outside `plain` and text with no special
    /// token in it tokenize exactly as [`encode`](Self::encode) does: no fragment is cut
    /// at a range boundary, so BPE merges across it are unchanged.
    pub fn encode_guarded(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
        plain: &[std::ops::Range<usize>],
    ) -> Vec<u32> {
        let fragments = self.partition(text, parse_special, plain);
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        match &self.model {
            Model::Spm(spm) => {
                let mut prev_special = true;
                let mut buf = String::new();
                for f in fragments {
                    match f {
                        Fragment::Text(range) => {
                            buf.clear();
                            if spm.add_space_prefix && prev_special {
                                buf.push(' ');
                            }
                            buf.push_str(&text[range]);
                            let escaped = buf.replace(' ', SPACE_MARK);
                            self.spm_tokenize(spm, &escaped, &mut out);
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            Model::Bpe(bpe) => {
                let mut session = BpeSession::default();
                for f in fragments {
                    match f {
                        Fragment::Text(range) => {
                            let part = &text[range];
                            for word in unicode::pre_tokenize(part, &bpe.steps) {
                                session.word(bpe, part[word].as_bytes(), &mut out);
                            }
                        }
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    /// Byte ranges of `text` that [`encode`](Self::encode) with `parse_special` would
    /// turn into control or unknown tokens, plus every other occurrence of such a
    /// token's text (overlapping ones included, merged): whatever control-token text is
    /// in `text` overlaps one of them. Empty for ordinary text.
    pub fn control_spans(&self, text: &str) -> Vec<std::ops::Range<usize>> {
        let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
        for id in self.special_trie.occurring(text.as_bytes()) {
            if self.attrs[id as usize] & (ATTR_CONTROL | ATTR_UNKNOWN) == 0 {
                continue;
            }
            let needle = self.vocab.get(id).unwrap_or_default();
            if needle.is_empty() {
                continue;
            }
            let step = needle.chars().next().map_or(1, char::len_utf8);
            let mut from = 0;
            while let Some(at) = text[from..].find(needle) {
                let at = from + at;
                spans.push(at..at + needle.len());
                from = at + step;
            }
        }
        spans.sort_unstable_by_key(|r| (r.start, r.end));
        let mut merged: Vec<std::ops::Range<usize>> = Vec::with_capacity(spans.len());
        for r in spans {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        merged
    }

    /// Splits `text` around special-token texts (llama.cpp's `tokenizer_st_partition`);
    /// control and unknown tokens overlapping a range of `plain` stay text.
    fn partition(
        &self,
        text: &str,
        parse_special: bool,
        plain: &[std::ops::Range<usize>],
    ) -> Vec<Fragment> {
        if text.is_empty() {
            return Vec::new();
        }
        let mut fragments = vec![Fragment::Text(0..text.len())];
        // Only the special tokens that occur in the text can split it; llama.cpp tries
        // them longest first.
        let mut present = self.special_trie.occurring(text.as_bytes());
        present.retain(|&id| {
            parse_special || self.attrs[id as usize] & (ATTR_CONTROL | ATTR_UNKNOWN) == 0
        });
        present.sort_unstable_by_key(|&id| (Reverse(self.vocab.get(id).map_or(0, str::len)), id));
        for id in present {
            let needle = self.vocab.get(id).unwrap_or_default();
            if needle.is_empty() {
                continue;
            }
            let guarded =
                !plain.is_empty() && self.attrs[id as usize] & (ATTR_CONTROL | ATTR_UNKNOWN) != 0;
            let step = needle.chars().next().map_or(1, char::len_utf8);
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for f in fragments {
                let Fragment::Text(range) = f else {
                    next.push(f);
                    continue;
                };
                // `start`: where the current text fragment begins; `from`: where the
                // search goes on (past a guarded match, which stays inside the text).
                let (mut start, end) = (range.start, range.end);
                let mut from = start;
                loop {
                    let Some(at) = text[from..end].find(needle) else {
                        next.push(Fragment::Text(start..end));
                        break;
                    };
                    let at = from + at;
                    let hit = at..at + needle.len();
                    if guarded && plain.iter().any(|p| p.start < hit.end && hit.start < p.end) {
                        from = at + step;
                        continue;
                    }
                    if at > start {
                        next.push(Fragment::Text(start..at));
                    }
                    next.push(Fragment::Token(id));
                    start = hit.end;
                    from = start;
                    if start >= end {
                        break;
                    }
                }
            }
            fragments = next;
        }
        fragments
    }

    /// llama.cpp's `llm_tokenizer_spm_session::tokenize` on already escaped text.
    fn spm_tokenize(&self, spm: &Spm, text: &str, out: &mut Vec<u32>) {
        struct Sym {
            prev: usize,
            next: usize,
            start: usize,
            len: usize,
        }
        if text.is_empty() {
            return;
        }
        let mut syms: Vec<Sym> = Vec::with_capacity(text.len());
        for (i, (start, c)) in text.char_indices().enumerate() {
            let len = c.len_utf8();
            let next = if start + len == text.len() {
                NONE
            } else {
                i + 1
            };
            let prev = if i == 0 { NONE } else { i - 1 };
            syms.push(Sym {
                prev,
                next,
                start,
                len,
            });
        }
        let mut queue = BinaryHeap::new();
        let try_add =
            |syms: &[Sym], queue: &mut BinaryHeap<SpmBigram>, left: usize, right: usize| {
                if left == NONE || right == NONE {
                    return;
                }
                let (l, r) = (&syms[left], &syms[right]);
                let size = l.len + r.len;
                if let Some(id) = self.vocab.id(&text[l.start..l.start + size]) {
                    queue.push(SpmBigram {
                        score: spm.scores[id as usize],
                        left,
                        right,
                        size,
                    });
                }
            };
        for i in 1..syms.len() {
            try_add(&syms, &mut queue, i - 1, i);
        }
        while let Some(b) = queue.pop() {
            let (l, r) = (&syms[b.left], &syms[b.right]);
            if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
                continue;
            }
            let right_next = r.next;
            syms[b.left].len += syms[b.right].len;
            syms[b.right].len = 0;
            syms[b.left].next = right_next;
            if right_next != NONE {
                syms[right_next].prev = b.left;
            }
            try_add(&syms, &mut queue, syms[b.left].prev, b.left);
            try_add(&syms, &mut queue, b.left, right_next);
        }
        let mut i = 0;
        while i != NONE {
            let s = &syms[i];
            let piece = &text[s.start..s.start + s.len];
            match self.vocab.id(piece) {
                Some(id) => out.push(id),
                None => {
                    for &b in piece.as_bytes() {
                        // llama.cpp fails here when a byte has no token; use UNK instead.
                        out.extend(spm.byte_tokens[b as usize].or(self.unk));
                    }
                }
            }
            i = s.next;
        }
    }

    /// The bytes of one token, as llama.cpp's `token_to_piece` renders it (without
    /// stripping): byte-level BPE characters and `<0xXX>` tokens become raw bytes, `▁`
    /// a space. With `special` false, control and unknown tokens render as nothing.
    /// Out-of-range ids render as nothing. A token may hold part of a UTF-8 sequence.
    pub fn token_bytes(&self, id: u32, special: bool) -> Vec<u8> {
        self.piece(id, special).to_vec()
    }

    fn piece(&self, id: u32, special: bool) -> &[u8] {
        let i = id as usize;
        if i >= self.vocab.len() || (!special && self.attrs[i] & (ATTR_UNKNOWN | ATTR_CONTROL) != 0)
        {
            return &[];
        }
        let start = if i == 0 { 0 } else { self.piece_ends[i - 1] };
        &self.pieces[start..self.piece_ends[i]]
    }

    /// Decodes a whole sequence (invalid UTF-8 becomes U+FFFD), as llama-cpp-python's
    /// `detokenize`: the tokens' bytes concatenated, without the one leading space a
    /// SentencePiece text gets when the sequence starts with BOS.
    pub fn decode(&self, ids: &[u32], special: bool) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend_from_slice(self.piece(id, special));
        }
        if ids.first().is_some_and(|&id| Some(id) == self.bos) && bytes.first() == Some(&b' ') {
            bytes.remove(0);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether [`encode`](Self::encode) with `add_special` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether `id` ends generation: EOS, EOT, and tokens such as `<|im_end|>`,
    /// `<end_of_turn>`, `<|endoftext|>`, `<|eot_id|>` (llama.cpp's `is_eog`).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// The end-of-generation tokens, ascending.
    pub fn eog_tokens(&self) -> &[u32] {
        &self.eog
    }

    /// The raw vocabulary string of a token (`tokenizer.ggml.tokens`).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.get(id)
    }

    /// The token whose vocabulary string is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.id(text)
    }

    /// Whether a token is a control token (rendered only with special rendering on).
    pub fn is_control(&self, id: u32) -> bool {
        self.attrs
            .get(id as usize)
            .is_some_and(|a| a & ATTR_CONTROL != 0)
    }
}

/// Reads `tokenizer.ggml.merges` ("left right", rank = index) into a map keyed by
/// token ids; every part and every result must be a token.
fn parse_merges(g: &Gguf, vocab: &Vocab) -> Result<HashMap<(u32, u32), (u32, u32)>> {
    let key = "tokenizer.ggml.merges";
    let merges = match g.get(key) {
        None => return Err(tok_err(format!("{key} is missing (required for gpt2 BPE)"))),
        // An empty array is written with an integer item type.
        Some(Value::Array(items)) if items.is_empty() => return Ok(HashMap::new()),
        Some(_) => g.get_str_array(key)?,
    };
    let mut map = HashMap::with_capacity(merges.len());
    let mut joined = String::new();
    for (rank, m) in merges.iter().enumerate() {
        // llama.cpp splits at the first space after the first byte.
        let split = m.bytes().skip(1).position(|b| b == b' ').map(|p| p + 1);
        let Some(split) = split else {
            return Err(tok_err(format!(
                "merge #{rank} {m:?} is not \"left right\""
            )));
        };
        let (left, right) = (&m[..split], &m[split + 1..]);
        let find = |s: &str| {
            vocab.id(s).ok_or_else(|| {
                tok_err(format!(
                    "merge #{rank} {m:?} refers to {s:?}, which is not a token"
                ))
            })
        };
        joined.clear();
        joined.push_str(left);
        joined.push_str(right);
        let (l, r, merged) = (find(left)?, find(right)?, find(&joined)?);
        // The first rank of a repeated merge wins, as in llama.cpp.
        map.entry((l, r)).or_insert((rank as u32, merged));
    }
    Ok(map)
}

/// Undoes GPT-2's byte-to-unicode mapping (llama.cpp's `llama_decode_text`).
fn decode_byte_chars(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match unicode::char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                for b in c.encode_utf8(&mut [0; 4]).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
}

/// A piece of input after special-token partitioning.
enum Fragment {
    Text(std::ops::Range<usize>),
    Token(u32),
}

/// A candidate SentencePiece merge: the highest score first, then the leftmost.
struct SpmBigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl Ord for SpmBigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}
impl PartialOrd for SpmBigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for SpmBigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for SpmBigram {}

/// A candidate BPE merge: the lowest rank first, then the leftmost.
#[derive(PartialEq, Eq)]
struct BpeBigram {
    rank: u32,
    left: usize,
    right: usize,
    size: usize,
    merged: u32,
}

impl Ord for BpeBigram {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.rank, other.left).cmp(&(self.rank, self.left))
    }
}
impl PartialOrd for BpeBigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct BpeSym {
    prev: usize,
    next: usize,
    len: usize,
    id: Option<u32>,
}

/// Buffers reused across the words of one [`Tokenizer::encode`] call.
#[derive(Default)]
struct BpeSession {
    syms: Vec<BpeSym>,
    queue: BinaryHeap<BpeBigram>,
}

impl BpeSession {
    /// llama.cpp's `llm_tokenizer_bpe_session::tokenize` for one word. Symbols start as
    /// the word's bytes (one GPT-2 character each) and carry their token ids, so the
    /// merge table is keyed by id pairs instead of strings.
    fn word(&mut self, bpe: &Bpe, word: &[u8], out: &mut Vec<u32>) {
        let syms = &mut self.syms;
        syms.clear();
        self.queue.clear();
        for (i, &b) in word.iter().enumerate() {
            let next = if i + 1 == word.len() { NONE } else { i + 1 };
            let prev = if i == 0 { NONE } else { i - 1 };
            syms.push(BpeSym {
                prev,
                next,
                len: 1,
                id: bpe.byte_tokens[b as usize],
            });
        }
        let add =
            |syms: &[BpeSym], queue: &mut BinaryHeap<BpeBigram>, left: usize, right: usize| {
                if left == NONE || right == NONE {
                    return;
                }
                let (l, r) = (&syms[left], &syms[right]);
                if let (Some(a), Some(b)) = (l.id, r.id)
                    && let Some(&(rank, merged)) = bpe.merges.get(&(a, b))
                {
                    let size = l.len + r.len;
                    queue.push(BpeBigram {
                        rank,
                        left,
                        right,
                        size,
                        merged,
                    });
                }
            };
        for i in 1..syms.len() {
            add(syms, &mut self.queue, i - 1, i);
        }
        while let Some(b) = self.queue.pop() {
            let (l, r) = (&syms[b.left], &syms[b.right]);
            // Outdated: one side has merged since (sizes only grow).
            if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
                continue;
            }
            let right_next = r.next;
            syms[b.left].len = b.size;
            syms[b.left].id = Some(b.merged);
            syms[b.right].len = 0;
            syms[b.left].next = right_next;
            if right_next != NONE {
                syms[right_next].prev = b.left;
            }
            add(syms, &mut self.queue, syms[b.left].prev, b.left);
            add(syms, &mut self.queue, b.left, right_next);
        }
        let mut i = if syms.is_empty() { NONE } else { 0 };
        while i != NONE {
            // A byte whose character is not in the vocabulary yields nothing, as in
            // llama.cpp.
            out.extend(syms[i].id);
            i = syms[i].next;
        }
    }
}

/// A byte trie of special-token texts.
#[derive(Default)]
struct Trie {
    nodes: Vec<TrieNode>,
}

#[derive(Default)]
struct TrieNode {
    children: Vec<(u8, u32)>,
    token: Option<u32>,
}

impl Trie {
    fn insert(&mut self, key: &[u8], id: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut node = 0usize;
        for &b in key {
            node = match self.nodes[node].children.iter().find(|c| c.0 == b) {
                Some(&(_, child)) => child as usize,
                None => {
                    let child = self.nodes.len();
                    self.nodes.push(TrieNode::default());
                    self.nodes[node].children.push((b, child as u32));
                    child
                }
            };
        }
        self.nodes[node].token = Some(id);
    }

    /// Every token whose text occurs somewhere in `text`, without repeats.
    fn occurring(&self, text: &[u8]) -> Vec<u32> {
        let mut found = Vec::new();
        if self.nodes.is_empty() {
            return found;
        }
        for start in 0..text.len() {
            let mut node = 0usize;
            for &b in &text[start..] {
                match self.nodes[node].children.iter().find(|c| c.0 == b) {
                    Some(&(_, child)) => node = child as usize,
                    None => break,
                }
                found.extend(self.nodes[node].token);
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

/// Turns a stream of token ids into text, holding back bytes until they form whole
/// UTF-8 characters (a character can span several byte tokens).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
    special: bool,
}

impl StreamDecoder {
    /// A decoder that renders control tokens as nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that renders control tokens as their text when `special` is set.
    pub fn with_special(special: bool) -> Self {
        Self {
            pending: Vec::new(),
            special,
        }
    }

    /// Adds one token; returns the text completed by it (possibly empty). Invalid
    /// UTF-8 becomes U+FFFD, as in [`Tokenizer::decode`].
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> String {
        self.pending.extend_from_slice(tok.piece(id, self.special));
        let mut out = String::new();
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    let head = &self.pending[start..start + valid];
                    out.push_str(std::str::from_utf8(head).expect("checked valid"));
                    match e.error_len() {
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            start += valid;
                            break;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            start += valid + bad;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        out
    }

    /// Flushes whatever is held back (an incomplete character becomes U+FFFD).
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }
}
