//! `POST /v1/completions` requests.

use serde::{Deserialize, Serialize};

use crate::{ApiError, CompletionOptions, SamplingParams};

/// A text completion request.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CompletionRequest {
    /// The model id to use.
    pub model: String,
    /// The text to continue.
    pub prompt: Prompt,
    /// Sampling and streaming parameters.
    #[serde(flatten)]
    pub sampling: SamplingParams,
    /// The other parameters, and members OpenAI does not define.
    #[serde(flatten)]
    pub options: CompletionOptions,
}

/// `prompt`: a string or a list of strings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
pub enum Prompt {
    /// One prompt.
    One(String),
    /// Several prompts (one choice each).
    Many(Vec<String>),
}

impl CompletionRequest {
    /// Checks the request beyond its types.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.model.is_empty() {
            return Err(ApiError::bad_parameter("model", "must not be empty"));
        }
        match &self.prompt {
            Prompt::Many(prompts) if prompts.is_empty() => {
                return Err(ApiError::bad_parameter("prompt", "at least one prompt is required"));
            }
            Prompt::One(prompt) if prompt.is_empty() => {
                return Err(ApiError::bad_parameter("prompt", "must not be empty"));
            }
            Prompt::Many(prompts) if prompts.iter().any(String::is_empty) => {
                return Err(ApiError::bad_parameter("prompt", "no prompt may be empty"));
            }
            _ => {}
        }
        self.sampling.validate()?;
        self.options.validate()
    }

    /// The single prompt, or an error naming `prompt` when several were sent.
    pub fn single_prompt(&self) -> Result<&str, ApiError> {
        match &self.prompt {
            Prompt::One(p) => Ok(p),
            Prompt::Many(v) if v.len() == 1 => Ok(&v[0]),
            Prompt::Many(_) => Err(ApiError::bad_parameter("prompt", "this model takes one prompt per request")),
        }
    }
}
