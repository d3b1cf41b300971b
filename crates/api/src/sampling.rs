//! Sampling parameters common to chat and text completions, and their validation.

use serde::{Deserialize, Serialize};

use crate::ApiError;

/// The most stop sequences a request may carry (OpenAI's limit).
pub const MAX_STOP_SEQUENCES: usize = 4;

/// `stop`: one string or a list of strings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
pub enum StopSequences {
    /// A single stop string.
    One(String),
    /// Several stop strings.
    Many(Vec<String>),
}

impl StopSequences {
    /// The stop strings as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

/// `stream_options` of a streaming request.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct StreamOptions {
    /// Send a final chunk carrying `usage` before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
    /// Other members (vLLM's `continuous_usage_stats`, ...): a backend may take them; the embedded engine refuses them.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// Parameters that shape generation, shared by `/v1/chat/completions` and `/v1/completions`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct SamplingParams {
    /// Answer as server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Options for streaming.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// 0 to 2; 0 is greedy. Default 1.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling, in (0, 1].
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Keep only the k most likely tokens (0 disables).
    #[serde(default)]
    pub top_k: Option<i32>,
    /// Minimum probability relative to the most likely token, in [0, 1].
    #[serde(default)]
    pub min_p: Option<f32>,
    /// Seed for reproducible sampling.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Most tokens to generate.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Newer name for `max_tokens` in chat completions; wins when both are set.
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    /// Strings that end generation; not included in the output.
    #[serde(default)]
    pub stop: Option<StopSequences>,
    /// -2 to 2: penalise tokens that already appeared.
    #[serde(default)]
    pub presence_penalty: Option<f32>,
    /// -2 to 2: penalise tokens by how often they appeared.
    #[serde(default)]
    pub frequency_penalty: Option<f32>,
    /// Number of choices; only 1 is supported by the embedded engine.
    #[serde(default)]
    pub n: Option<u32>,
}

fn check_range(param: &str, value: Option<f32>, low: f32, high: f32) -> Result<(), ApiError> {
    match value {
        Some(v) if !(low..=high).contains(&v) || v.is_nan() => {
            Err(ApiError::bad_parameter(param, format!("{v} is out of range; allowed is {low} to {high}")))
        }
        _ => Ok(()),
    }
}

impl SamplingParams {
    /// Whether the answer is to be streamed.
    pub fn streaming(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether a streamed answer ends with a usage chunk.
    pub fn include_usage(&self) -> bool {
        self.stream_options.as_ref().is_some_and(|o| o.include_usage)
    }

    /// The effective token limit (`max_completion_tokens` over `max_tokens`).
    pub fn token_limit(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// The stop strings, empty when none were given.
    pub fn stop_strings(&self) -> Vec<String> {
        self.stop.as_ref().map(StopSequences::to_vec).unwrap_or_default()
    }

    /// Checks every parameter's range, naming the first one at fault.
    pub fn validate(&self) -> Result<(), ApiError> {
        check_range("temperature", self.temperature, 0.0, 2.0)?;
        check_range("top_p", self.top_p, 0.0, 1.0)?;
        check_range("min_p", self.min_p, 0.0, 1.0)?;
        check_range("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        check_range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        if self.top_p == Some(0.0) {
            return Err(ApiError::bad_parameter("top_p", "must be greater than 0"));
        }
        if matches!(self.top_k, Some(k) if k < 0) {
            return Err(ApiError::bad_parameter("top_k", "must be 0 (disabled) or more"));
        }
        for (name, value) in [("max_tokens", self.max_tokens), ("max_completion_tokens", self.max_completion_tokens)] {
            if value == Some(0) {
                return Err(ApiError::bad_parameter(name, "must be at least 1"));
            }
        }
        if self.n == Some(0) {
            return Err(ApiError::bad_parameter("n", "must be at least 1"));
        }
        if self.stream_options.is_some() && !self.streaming() {
            return Err(ApiError::bad_parameter("stream_options", "is only allowed when 'stream' is true"));
        }
        if let Some(stop) = &self.stop {
            let stops = stop.to_vec();
            if stops.len() > MAX_STOP_SEQUENCES {
                return Err(ApiError::bad_parameter(
                    "stop",
                    format!("at most {MAX_STOP_SEQUENCES} stop sequences are allowed"),
                ));
            }
            if stops.iter().any(String::is_empty) {
                return Err(ApiError::bad_parameter("stop", "stop sequences must not be empty"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> SamplingParams {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn accepts_defaults() {
        assert!(params("{}").validate().is_ok());
    }

    #[test]
    fn rejects_each_out_of_range_parameter_by_name() {
        for (json, param) in [
            (r#"{"temperature":2.5}"#, "temperature"),
            (r#"{"top_p":0}"#, "top_p"),
            (r#"{"top_p":1.5}"#, "top_p"),
            (r#"{"min_p":-0.1}"#, "min_p"),
            (r#"{"top_k":-1}"#, "top_k"),
            (r#"{"max_tokens":0}"#, "max_tokens"),
            (r#"{"presence_penalty":3}"#, "presence_penalty"),
            (r#"{"frequency_penalty":-3}"#, "frequency_penalty"),
            (r#"{"n":0}"#, "n"),
            (r#"{"stop":["a","b","c","d","e"]}"#, "stop"),
            (r#"{"stop":""}"#, "stop"),
            (r#"{"stream_options":{"include_usage":true}}"#, "stream_options"),
        ] {
            let err = params(json).validate().unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{json}");
        }
    }

    #[test]
    fn max_completion_tokens_wins() {
        let p = params(r#"{"max_tokens":5,"max_completion_tokens":7}"#);
        assert_eq!(p.token_limit(), Some(7));
    }
}
