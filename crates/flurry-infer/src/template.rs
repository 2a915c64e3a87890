//! Chat templates: the model's own `tokenizer.chat_template` (Jinja, rendered with
//! minijinja the way Hugging Face renders it: `trim_blocks`, `lstrip_blocks`, Python
//! string methods, `raise_exception`), or a built-in fallback chosen by architecture
//! when the file has none or its template does not compile: the Gemma turn format for
//! gemma models, ChatML otherwise.

use serde::{Deserialize, Serialize};

use crate::gguf::Gguf;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

const GEMMA: &str = include_str!("templates/gemma.jinja");
const CHATML: &str = include_str!("templates/chatml.jinja");

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Where a template came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateSource {
    /// `tokenizer.chat_template` in the GGUF file.
    Gguf,
    /// Built-in Gemma turn format.
    FallbackGemma,
    /// Built-in ChatML.
    FallbackChatml,
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
    source: TemplateSource,
    text: String,
    bos: String,
    eos: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source", &self.source)
            .finish()
    }
}

impl ChatTemplate {
    /// The template for a model file.
    pub fn from_gguf(g: &Gguf, tok: &Tokenizer) -> Result<Self> {
        let arch = g.opt_str("general.architecture")?.unwrap_or_default();
        let special = |id: Option<u32>| {
            id.map(|i| String::from_utf8_lossy(&tok.token_bytes(i, true)).into_owned())
                .unwrap_or_default()
        };
        let (bos, eos) = (special(tok.bos()), special(tok.eos()));
        if let Some(Ok(t)) = g
            .opt_str("tokenizer.chat_template")?
            .map(|text| Self::compile(text, TemplateSource::Gguf, &bos, &eos))
        {
            return Ok(t);
        }
        let (text, source) = if arch.starts_with("gemma") {
            (GEMMA, TemplateSource::FallbackGemma)
        } else {
            (CHATML, TemplateSource::FallbackChatml)
        };
        Self::compile(text, source, &bos, &eos)
    }

    /// Compiles template text.
    pub fn compile(text: &str, source: TemplateSource, bos: &str, eos: &str) -> Result<Self> {
        let mut env = minijinja::Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .map_err(|e| Error::Template(e.to_string()))?,
        );
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template_owned("chat", text.to_string())
            .map_err(|e| Error::Template(format!("cannot compile: {e}")))?;
        Ok(Self {
            env,
            source,
            text: text.to_string(),
            bos: bos.into(),
            eos: eos.into(),
        })
    }

    /// Renders a conversation into prompt text. The text does not say which special-token
    /// text came from the template and which from a message: to make a prompt, use
    /// [`tokenize`](Self::tokenize), never `encode(render(..), .., true)`.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        if messages.is_empty() {
            return Err(Error::Template("a chat needs at least one message".into()));
        }
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| Error::Template(e.to_string()))?;
        tmpl.render(minijinja::context! {
            messages => messages_value(messages),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos.as_str(),
            eos_token => self.eos.as_str(),
        })
        .map_err(|e| Error::Template(format!("cannot render: {e}")))
    }

    /// Renders a conversation and tokenizes it so that only the template's own text can
    /// produce control tokens: a `<|im_start|>` or `<start_of_turn>` written by the
    /// template is a control token, the same text inside a message (from an API client,
    /// a peer, a mail or a document in memory) is ordinary text. Prompts without
    /// control-token text in their messages tokenize exactly as
    /// `tok.encode(&self.render(..)?, false, true)`, the way llama.cpp tokenizes them.
    ///
    /// How: before rendering, each control-token text in a message (and each
    /// [`SENTINEL_OPEN`] character, so that a message cannot forge a sentinel) is
    /// replaced by a sentinel, `U+FDD0 index U+FDD1`; after rendering, the sentinels are
    /// put back and their byte ranges handed to [`Tokenizer::encode_guarded`] as plain
    /// text. Noncharacters are neither whitespace nor cased, so template filters such as
    /// `trim` treat a sentinel as they treat the text it stands for.
    pub fn tokenize(
        &self,
        tok: &Tokenizer,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>> {
        let mut saved: Vec<String> = Vec::new();
        let defused: Vec<ChatMessage> = messages
            .iter()
            .map(|m| ChatMessage {
                role: defuse(tok, &m.role, &mut saved),
                content: defuse(tok, &m.content, &mut saved),
            })
            .collect();
        let rendered = self.render(&defused, add_generation_prompt)?;
        let (text, plain) = restore(&rendered, &saved);
        Ok(tok.encode_guarded(&text, false, true, &plain))
    }

    /// Where the template came from.
    pub fn source(&self) -> TemplateSource {
        self.source
    }

    /// The template text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Opens a sentinel standing for message text that must stay plain (a noncharacter:
/// never produced by a tokenizer or a template).
pub const SENTINEL_OPEN: char = '\u{FDD0}';
/// Closes a sentinel.
const SENTINEL_CLOSE: char = '\u{FDD1}';

/// `s` with each control-token text (and each [`SENTINEL_OPEN`]) replaced by a sentinel
/// numbering the original text in `saved`.
fn defuse(tok: &Tokenizer, s: &str, saved: &mut Vec<String>) -> String {
    let mut spans = tok.control_spans(s);
    spans.extend(
        s.match_indices(SENTINEL_OPEN)
            .map(|(at, m)| at..at + m.len()),
    );
    if spans.is_empty() {
        return s.to_string();
    }
    spans.sort_unstable_by_key(|r| (r.start, r.end));
    let mut out = String::with_capacity(s.len() + 8 * spans.len());
    let mut at = 0;
    for r in spans {
        if r.end <= at {
            continue;
        }
        // Spans from the two sources can overlap; a later one takes what is left.
        let start = r.start.max(at);
        out.push_str(&s[at..start]);
        out.push(SENTINEL_OPEN);
        out.push_str(&saved.len().to_string());
        out.push(SENTINEL_CLOSE);
        saved.push(s[start..r.end].to_string());
        at = r.end;
    }
    out.push_str(&s[at..]);
    out
}

/// `rendered` with the sentinels replaced by their saved text, and the byte ranges of
/// that text in the result.
fn restore(rendered: &str, saved: &[String]) -> (String, Vec<std::ops::Range<usize>>) {
    if saved.is_empty() {
        return (rendered.to_string(), Vec::new());
    }
    let mut out = String::with_capacity(rendered.len());
    let mut plain = Vec::new();
    let mut rest = rendered;
    while let Some(i) = rest.find(SENTINEL_OPEN) {
        out.push_str(&rest[..i]);
        let after = &rest[i + SENTINEL_OPEN.len_utf8()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let index = after[..digits].parse::<usize>().ok();
        match (
            index.and_then(|n| saved.get(n)),
            after[digits..].starts_with(SENTINEL_CLOSE),
        ) {
            (Some(text), true) => {
                plain.push(out.len()..out.len() + text.len());
                out.push_str(text);
                rest = &after[digits + SENTINEL_CLOSE.len_utf8()..];
            }
            // A template that cut a sentinel apart: keep what it wrote.
            _ => {
                out.push(SENTINEL_OPEN);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (out, plain)
}

fn messages_value(messages: &[ChatMessage]) -> minijinja::Value {
    messages
        .iter()
        .map(|m| {
            minijinja::Value::from_pairs([
                ("role", minijinja::Value::from(m.role.as_str())),
                ("content", minijinja::Value::from(m.content.as_str())),
            ])
        })
        .collect::<Vec<_>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_fallback_renders() {
        let t = ChatTemplate::compile(CHATML, TemplateSource::FallbackChatml, "", "").unwrap();
        let out = t.render(&[ChatMessage::new("user", "hi")], true).unwrap();
        assert_eq!(
            out,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn gemma_fallback_merges_system() {
        let t =
            ChatTemplate::compile(GEMMA, TemplateSource::FallbackGemma, "<bos>", "<eos>").unwrap();
        let out = t
            .render(
                &[
                    ChatMessage::new("system", "Be brief."),
                    ChatMessage::new("user", " hi "),
                ],
                true,
            )
            .unwrap();
        assert_eq!(
            out,
            "<bos><start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t = ChatTemplate::compile(
            "{{ raise_exception('nope') }}",
            TemplateSource::Gguf,
            "",
            "",
        )
        .unwrap();
        let err = t
            .render(&[ChatMessage::new("user", "x")], true)
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn pycompat_methods_work() {
        let t = ChatTemplate::compile(
            "{{ messages[0]['content'].strip().startswith('a') }}",
            TemplateSource::Gguf,
            "",
            "",
        )
        .unwrap();
        // Booleans print as Python prints them, as in Hugging Face's Jinja rendering.
        let out = t
            .render(&[ChatMessage::new("user", " abc ")], false)
            .unwrap();
        assert_eq!(out, "True");
    }
}
