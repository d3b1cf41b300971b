//! Response bodies and streaming chunks, as the embedded engine produces them.

use serde::{Deserialize, Serialize};

/// Token accounting of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Usage {
    /// Tokens in the prompt as the model saw it (after templating).
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// The sum of both.
    pub total_tokens: u32,
}

impl Usage {
    /// Usage from prompt and completion counts.
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Self { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its answer or a stop sequence was met.
    Stop,
    /// The token limit or the context was reached.
    Length,
}

/// The message of a chat choice.
#[derive(Debug, Clone, Serialize)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The generated text.
    pub content: String,
}

/// One choice of a chat completion.
#[derive(Debug, Clone, Serialize)]
pub struct ChatChoice {
    /// Index of the choice.
    pub index: u32,
    /// The answer.
    pub message: AssistantMessage,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Not computed: always null.
    pub logprobs: Option<()>,
}

/// A complete, non-streamed chat completion.
#[derive(Debug, Clone, Serialize)]
pub struct ChatCompletion {
    /// `chatcmpl-...`
    pub id: String,
    /// Always `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model that answered.
    pub model: String,
    /// The choices (one).
    pub choices: Vec<ChatChoice>,
    /// Token accounting.
    pub usage: Usage,
}

/// The delta of a streamed chat chunk.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChunkDelta<'a> {
    /// `assistant` in the first chunk only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// New text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
}

/// One choice of a streamed chat chunk.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkChoice<'a> {
    /// Index of the choice.
    pub index: u32,
    /// What is new.
    pub delta: ChunkDelta<'a>,
    /// Set in the last content chunk.
    pub finish_reason: Option<FinishReason>,
    /// Not computed: always null.
    pub logprobs: Option<()>,
}

/// A streamed chat chunk (`chat.completion.chunk`).
#[derive(Debug, Clone, Serialize)]
pub struct ChatChunk<'a> {
    /// Same id in every chunk of one answer.
    pub id: &'a str,
    /// Always `chat.completion.chunk`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model that answers.
    pub model: &'a str,
    /// Zero (usage chunk) or one choice.
    pub choices: Vec<ChunkChoice<'a>>,
    /// Present only in the final usage chunk, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One choice of a text completion or of its streamed chunk.
#[derive(Debug, Clone, Serialize)]
pub struct TextChoice<'a> {
    /// Index of the choice.
    pub index: u32,
    /// Generated text (or the new part of it, when streaming).
    pub text: &'a str,
    /// Why generation ended; null in intermediate chunks.
    pub finish_reason: Option<FinishReason>,
    /// Not computed: always null.
    pub logprobs: Option<()>,
}

/// A text completion or one of its streamed chunks (`text_completion`).
#[derive(Debug, Clone, Serialize)]
pub struct TextCompletion<'a> {
    /// `cmpl-...`
    pub id: &'a str,
    /// Always `text_completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model that answered.
    pub model: &'a str,
    /// The choices (one, or none in a usage chunk).
    pub choices: Vec<TextChoice<'a>>,
    /// Token accounting (in the full answer, or the last chunk when asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}
