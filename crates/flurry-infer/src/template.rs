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

    /// Renders a conversation into prompt text (special tokens appear as text and are
    /// parsed by the tokenizer).
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

    /// Where the template came from.
    pub fn source(&self) -> TemplateSource {
        self.source
    }

    /// The template text.
    pub fn text(&self) -> &str {
        &self.text
    }
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
