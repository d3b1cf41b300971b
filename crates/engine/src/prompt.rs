//! The prompt as tokens. Only the chat template places control tokens: the
//! text of a caller's messages, or of a completions prompt, is tokenized as
//! plain text, so `<|im_end|>` written there is those characters, never the
//! token that ends a turn. Tokenizing takes time linear in the prompt, stops
//! as soon as the prompt cannot fit the context, and stops when the request
//! is cancelled.
//!
//! Pieces are tokenized one by one (llama.cpp marks no text as plain within
//! one call). A SentencePiece vocabulary that prefixes a space to the text it
//! is given does so to each caller text too; byte-level BPE vocabularies (the
//! default model's) tokenize the pieces exactly as the whole.

use std::sync::atomic::{AtomicBool, Ordering};

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::error::EngineError;
use crate::template::{ChatTemplate, Part, TemplateMessage};

/// What to generate from.
#[derive(Debug, Clone)]
pub enum PromptInput {
    /// A conversation, rendered with the model's chat template.
    Chat(Vec<(String, String)>),
    /// Raw text to continue.
    Text(String),
}

/// What a prompt is tokenized against.
pub(crate) struct Tokenizer<'a> {
    /// The model's vocabulary.
    pub(crate) model: &'a LlamaModel,
    /// The chat template, if the model has one.
    pub(crate) template: Option<&'a ChatTemplate>,
    /// Tokens a sequence holds.
    pub(crate) context: u32,
    /// Bytes of the vocabulary's longest token: a text of `n` bytes takes at
    /// least `n / longest_token` tokens.
    pub(crate) longest_token: usize,
}

/// A piece of the prompt and whether control tokens may be read in it.
struct Piece<'a> {
    text: &'a str,
    template_text: bool,
}

impl Tokenizer<'_> {
    /// The prompt's tokens, or why it was not tokenized: it cannot fit the
    /// context (with the tokens counted so far, at least), the template refused
    /// it, or `cancelled` turned true.
    pub(crate) fn tokenize(
        &self,
        prompt: &PromptInput,
        model_name: &str,
        cancelled: &AtomicBool,
    ) -> Result<Vec<LlamaToken>, EngineError> {
        let rendered;
        let pieces: Vec<Piece> = match prompt {
            PromptInput::Text(text) => vec![Piece { text, template_text: false }],
            PromptInput::Chat(messages) => {
                let template = self.template.ok_or_else(|| EngineError::NoChatTemplate(model_name.to_owned()))?;
                let as_given: Vec<TemplateMessage> = messages
                    .iter()
                    .map(|(role, content)| TemplateMessage { role: role.clone(), content: content.clone() })
                    .collect();
                rendered = template.render_parts(&as_given).map_err(EngineError::Template)?;
                rendered
                    .iter()
                    .map(|part| match part {
                        Part::Template(text) => Piece { text, template_text: true },
                        Part::Content(n) => Piece { text: &messages[*n].1, template_text: false },
                    })
                    .collect()
            }
        };
        let vocab = self.model.vocab();
        let context = self.context as usize;
        let mut tokens = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            if cancelled.load(Ordering::Relaxed) {
                return Err(EngineError::Cancelled);
            }
            let fewest = tokens.len() + piece.text.len().div_ceil(self.longest_token);
            if fewest >= context {
                return Err(self.too_long(fewest));
            }
            vocab.tokenize_into(piece.text.as_bytes(), &mut tokens, i == 0, piece.template_text);
            if tokens.len() >= context {
                return Err(self.too_long(tokens.len()));
            }
        }
        // A template that writes the BOS text itself plus llama.cpp's own BOS gives two.
        if tokens.len() >= 2 && tokens[0] == vocab.bos() && tokens[1] == vocab.bos() {
            tokens.remove(0);
        }
        Ok(tokens)
    }

    fn too_long(&self, at_least: usize) -> EngineError {
        EngineError::PromptTooLong { prompt_tokens: u32::try_from(at_least).unwrap_or(u32::MAX), context: self.context }
    }
}

/// Bytes of the longest token text in `model`'s vocabulary (at least 1).
pub(crate) fn longest_token(model: &LlamaModel) -> usize {
    let vocab = model.vocab();
    vocab.tokens().map(|token| vocab.token_to_piece(token, true, None).len()).max().unwrap_or(1).max(1)
}
