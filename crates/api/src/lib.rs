//! OpenAI-compatible wire types shared by Rampart's engine and gateway.
//!
//! This crate knows the shape of requests, responses and errors on the wire and
//! how to validate a request's parameters; it knows nothing of transport or models.

pub mod chat;
pub mod completion;
pub mod error;
pub mod response;
pub mod sampling;
mod stage_errors;

pub use chat::{ChatCompletionRequest, ChatMessage, MessageContent};
pub use completion::{CompletionRequest, Prompt};
pub use error::{ApiError, ErrorKind};
pub use response::{FinishReason, Usage};
pub use sampling::{SamplingParams, StopSequences, StreamOptions};

use serde_json::error::Category;

/// Parses a JSON request body into `T`, reporting the path of the offending
/// parameter (e.g. `messages[0].content`) when a field has the wrong type.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if matches!(inner.classify(), Category::Syntax | Category::Eof) {
            return ApiError::invalid_request(format!("request body is not valid JSON: {inner}"), None);
        }
        let param = match path.as_str() {
            "." | "?" => flattened_param(body),
            _ => Some(path),
        };
        match param {
            Some(param) => ApiError::invalid_request(format!("invalid value for '{param}': {inner}"), Some(&param)),
            None => ApiError::invalid_request(format!("invalid request body: {inner}"), None),
        }
    })?;
    deserializer
        .end()
        .map_err(|err| ApiError::invalid_request(format!("request body is not valid JSON: {err}"), None))?;
    Ok(value)
}

/// serde loses the path of fields inside `#[serde(flatten)]`; parsing the
/// shared sampling fields alone recovers it. Runs only on the error path.
fn flattened_param(body: &[u8]) -> Option<String> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let err = serde_path_to_error::deserialize::<_, SamplingParams>(&mut deserializer).err()?;
    let path = err.path().to_string();
    (path != "." && path != "?").then_some(path)
}

/// Seconds since the Unix epoch, as OpenAI's `created` fields carry.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
