//! Why the engine refused a request or failed.

use std::path::PathBuf;

/// Why the engine refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model file could not be loaded.
    #[error("cannot load model '{path}': {reason}")]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The model has no chat template, so it cannot chat.
    #[error("model '{0}' has no chat template; use /v1/completions with it")]
    NoChatTemplate(String),
    /// The template rejected the conversation.
    #[error("{0}")]
    Template(String),
    /// The prompt does not fit in a sequence's context (counting stops once it cannot).
    #[error(
        "the prompt takes at least {prompt_tokens} tokens but this model's context holds {context} (including at least one generated token)"
    )]
    PromptTooLong {
        /// Tokens the prompt takes at least.
        prompt_tokens: u32,
        /// Context per sequence.
        context: u32,
    },
    /// The queue of waiting requests is full.
    #[error("model '{0}' is busy: all sequences are in use and the queue is full")]
    QueueFull(String),
    /// The decode thread has stopped.
    #[error("the engine for model '{0}' has stopped")]
    Stopped(String),
    /// The request was dropped (its client left) before the engine took it.
    #[error("the request was cancelled")]
    Cancelled,
}
