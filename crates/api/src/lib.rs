//! OpenAI-compatible wire types shared by Rampart's engine and gateway.
//!
//! This crate knows the shape of requests, responses and errors on the wire and
//! how to validate a request's parameters; it knows nothing of transport or models.

pub mod chat;
pub mod completion;
pub mod error;
pub mod options;
pub mod response;
pub mod sampling;
mod stage_errors;

pub use chat::{ChatCompletionRequest, ChatMessage, MessageContent};
pub use completion::{CompletionRequest, Prompt};
pub use error::{ApiError, ErrorKind};
pub use options::{ChatOptions, CompletionOptions};
pub use response::{FinishReason, Usage};
pub use sampling::{SamplingParams, StopSequences, StreamOptions};

use serde_json::error::Category;

/// Parses a JSON request body into `T`, reporting the path of the offending
/// parameter (e.g. `messages[0].content`) when a field has the wrong type, in
/// words a caller knows (never a Rust type's name), and a member named twice
/// as `duplicate_member`.
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
        let said = inner.to_string();
        if let Some(member) = said.strip_prefix("duplicate field `").and_then(|rest| rest.split('`').next()) {
            let at = param.map_or_else(|| member.to_owned(), |p| format!("{p}.{member}"));
            return ApiError::duplicate_member(&at);
        }
        let said = plain_words(&said);
        match param {
            Some(param) => ApiError::invalid_request(format!("invalid value for '{param}': {said}"), Some(&param)),
            None => ApiError::invalid_request(format!("invalid request body: {said}"), None),
        }
    })?;
    deserializer
        .end()
        .map_err(|err| ApiError::invalid_request(format!("request body is not valid JSON: {err}"), None))?;
    Ok(value)
}

/// serde's message in the caller's words: JSON types, not Rust ones.
fn plain_words(said: &str) -> String {
    const WORDS: [(&str, &str); 12] = [
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u32", "expected a whole number from 0 to 4294967295"),
        ("expected u64", "expected a whole number of 0 or more"),
        ("expected usize", "expected a whole number of 0 or more"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected an object"),
        ("expected a borrowed string", "expected a string"),
    ];
    let mut said = WORDS.iter().fold(said.to_owned(), |said, (rust, json)| said.replace(rust, json));
    // `invalid type: string "..."` quotes what the caller sent, which may be any text: never echoed.
    while let Some(at) = said.find("string \"") {
        let quoted = at + "string ".len();
        let end = said[quoted + 1..].find('"').map_or(said.len(), |n| quoted + n + 2);
        said.replace_range(at..end, "a string");
    }
    // `expected struct ChatMessage` names a Rust type: a JSON object is what is meant.
    while let Some(at) = said.find("expected struct ") {
        let name_end =
            said[at + 16..].find(|c: char| !c.is_alphanumeric() && c != '_').map_or(said.len(), |n| at + 16 + n);
        said.replace_range(at..name_end, "expected an object");
    }
    said
}

/// serde loses the path of fields inside `#[serde(flatten)]`; parsing the
/// flattened members alone recovers it. Runs only on the error path.
fn flattened_param(body: &[u8]) -> Option<String> {
    fn path_of<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<String> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let err = serde_path_to_error::deserialize::<_, T>(&mut deserializer).err()?;
        let path = err.path().to_string();
        (path != "." && path != "?").then_some(path)
    }
    path_of::<SamplingParams>(body)
        .or_else(|| path_of::<ChatOptions>(body))
        .or_else(|| path_of::<CompletionOptions>(body))
}

/// Seconds since the Unix epoch, as OpenAI's `created` fields carry.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
