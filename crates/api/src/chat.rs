//! `POST /v1/chat/completions` requests.

use serde::{Deserialize, Serialize};

use serde_json::{Map, Value};

use crate::{ApiError, ChatOptions, SamplingParams};

/// Roles a chat message may have.
pub const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

/// A chat completion request. Every member reaches an upstream server as sent;
/// the embedded engine refuses what it would not honour.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatCompletionRequest {
    /// The model id to use.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Sampling and streaming parameters.
    #[serde(flatten)]
    pub sampling: SamplingParams,
    /// The other parameters, and members OpenAI does not define.
    #[serde(flatten)]
    pub options: ChatOptions,
}

/// One message of a conversation.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text, as a string or a list of content parts; absent for tool calls.
    #[serde(default)]
    pub content: Option<MessageContent>,
    /// Its other members (`name`, `tool_calls`, `tool_call_id`, ...).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Message content: a plain string or a list of typed parts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged, expecting = "a string or an array of content parts")]
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
    /// Its other members (`cache_control`, ...): a backend may take them; the embedded engine refuses them.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl MessageContent {
    /// The message's text: text parts joined in order.
    pub fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Parts(parts) => parts.iter().filter_map(|p| p.text.as_deref()).collect::<Vec<_>>().join(""),
        }
    }

    /// Whether it holds nothing: an empty string or no parts.
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Text(s) => s.is_empty(),
            // Parts of text with none in any of them say nothing either.
            Self::Parts(parts) => parts.iter().all(|p| p.kind == "text" && p.text.as_deref().is_none_or(str::is_empty)),
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
            // An assistant's turn may have been empty, or only called tools; no other may.
            let empty = message.content.as_ref().is_none_or(MessageContent::is_empty);
            if empty && message.role != "assistant" {
                return Err(ApiError::bad_parameter(&format!("messages[{i}].content"), "must not be empty"));
            }
        }
        self.sampling.validate()?;
        self.options.validate()
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
    fn errors_name_the_member_and_say_what_it_should_be_in_json_terms() {
        let err = |body: &str| parse_json::<ChatCompletionRequest>(body.as_bytes()).unwrap_err();
        const HI: &str = r#""messages":[{"role":"user","content":"hi"}]"#;
        for (body, param, says) in [
            (format!(r#"{{"model":"m",{HI},"user":5}}"#), "user", "expected a string"),
            (format!(r#"{{"model":"m",{HI},"max_tokens":"many"}}"#), "max_tokens", "expected a whole number from 0"),
            (format!(r#"{{"model":"m",{HI},"tools":{{}}}}"#), "tools", "expected an array"),
            (format!(r#"{{"model":"m",{HI},"metadata":[1]}}"#), "metadata", "expected an object"),
            (format!(r#"{{"model":"m",{HI},"stop":5}}"#), "stop", "a string or an array of strings"),
            (format!(r#"{{"model":"m",{HI},"tool_choice":5}}"#), "tool_choice", "an object naming a tool"),
            (
                r#"{"model":"m","messages":[{"role":"user","content":5}]}"#.into(),
                "messages[0].content",
                "a string or an array of content parts",
            ),
            (r#"{"model":"m","messages":["hi"]}"#.into(), "messages[0]", "expected an object"),
        ] {
            let err = err(&body);
            assert_eq!(err.param.as_deref(), Some(param), "{body}: {}", err.message);
            assert!(err.message.contains(says), "{body}: {}", err.message);
            for rust in ["u32", "u8", "i64", "f32", "struct", "enum", "Map", "Vec", "Option", "Chat"] {
                assert!(!err.message.contains(rust), "{body}: {} names {rust}", err.message);
            }
        }
        let twice = err(&format!(r#"{{"model":"m","model":"n",{HI}}}"#));
        assert_eq!((twice.code, twice.param.as_deref()), (Some("duplicate_member"), Some("model")));
        let nested = err(r#"{"model":"m","messages":[{"role":"user","role":"system","content":"x"}]}"#);
        assert_eq!((nested.code, nested.param.as_deref()), (Some("duplicate_member"), Some("messages[0].role")));
    }

    #[test]
    fn a_message_without_text_is_refused_unless_it_is_the_assistants() {
        for body in [
            r#"{"model":"m","messages":[{"role":"user","content":""}]}"#,
            r#"{"model":"m","messages":[{"role":"user"}]}"#,
            r#"{"model":"m","messages":[{"role":"system","content":[]}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":""},{"type":"text"}]}]}"#,
        ] {
            let req: ChatCompletionRequest = parse_json(body.as_bytes()).unwrap();
            assert_eq!(req.validate().unwrap_err().param.as_deref(), Some("messages[0].content"), "{body}");
        }
        let req: ChatCompletionRequest = parse_json(
            br#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":""},{"role":"user","content":"b"}]}"#,
        )
        .unwrap();
        assert!(req.validate().is_ok());
    }

    #[test]
    fn unknown_role_is_rejected_with_its_path() {
        let req: ChatCompletionRequest =
            parse_json(br#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#).unwrap();
        assert_eq!(req.validate().unwrap_err().param.as_deref(), Some("messages[0].role"));
    }
}
