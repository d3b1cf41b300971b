//! `POST /v1/chat/completions` requests.

use serde::{Deserialize, Serialize};

use crate::{ApiError, SamplingParams};

/// Roles a chat message may have.
pub const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

/// A chat completion request. Fields Rampart does not interpret are ignored
/// here and still reach an upstream server unchanged.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatCompletionRequest {
    /// The model id to use.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Sampling and streaming parameters.
    #[serde(flatten)]
    pub sampling: SamplingParams,
}

/// One message of a conversation.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text, as a string or a list of content parts; absent for tool calls.
    #[serde(default)]
    pub content: Option<MessageContent>,
}

/// Message content: a plain string or a list of typed parts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content parts (`{"type":"text","text":...}`, images, ...).
    Parts(Vec<ContentPart>),
}

/// One part of a multi-part message.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ContentPart {
    /// The part's type, e.g. `text` or `image_url`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default)]
    pub text: Option<String>,
}

impl MessageContent {
    /// The message's text: text parts joined in order.
    pub fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Parts(parts) => parts.iter().filter_map(|p| p.text.as_deref()).collect::<Vec<_>>().join(""),
        }
    }

    /// Whether the content has parts other than text (images, audio...).
    pub fn has_non_text_parts(&self) -> bool {
        matches!(self, Self::Parts(parts) if parts.iter().any(|p| p.kind != "text"))
    }
}

impl ChatCompletionRequest {
    /// Checks the request beyond its types: roles, emptiness, parameter ranges.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.model.is_empty() {
            return Err(ApiError::bad_parameter("model", "must not be empty"));
        }
        if self.messages.is_empty() {
            return Err(ApiError::bad_parameter("messages", "at least one message is required"));
        }
        for (i, message) in self.messages.iter().enumerate() {
            if !ROLES.contains(&message.role.as_str()) {
                return Err(ApiError::bad_parameter(
                    &format!("messages[{i}].role"),
                    format!("'{}' is not a role; allowed are {}", message.role, ROLES.join(", ")),
                ));
            }
        }
        self.sampling.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_json;

    #[test]
    fn parses_string_and_part_content() {
        let req: ChatCompletionRequest = parse_json(
            br#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],"temperature":0}"#,
        )
        .unwrap();
        assert_eq!(req.messages[0].content.as_ref().unwrap().text(), "hi");
        assert_eq!(req.messages[1].content.as_ref().unwrap().text(), "ab");
        assert_eq!(req.sampling.temperature, Some(0.0));
        req.validate().unwrap();
    }

    #[test]
    fn wrong_type_names_the_parameter_path() {
        let err = parse_json::<ChatCompletionRequest>(br#"{"model":"m","messages":[{"role":5}]}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].role"));
        let err =
            parse_json::<ChatCompletionRequest>(br#"{"model":"m","messages":[],"temperature":"hot"}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("temperature"));
    }

    #[test]
    fn malformed_json_is_reported_as_such() {
        let err = parse_json::<ChatCompletionRequest>(br#"{"model":"m","#).unwrap_err();
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
        assert_eq!(err.param, None);
    }

    #[test]
    fn missing_model_is_reported() {
        let err = parse_json::<ChatCompletionRequest>(br#"{"messages":[]}"#).unwrap_err();
        assert!(err.message.contains("model"), "{}", err.message);
    }

    #[test]
    fn unknown_role_is_rejected_with_its_path() {
        let req: ChatCompletionRequest =
            parse_json(br#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#).unwrap();
        assert_eq!(req.validate().unwrap_err().param.as_deref(), Some("messages[0].role"));
    }
}
