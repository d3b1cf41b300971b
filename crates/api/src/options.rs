//! OpenAI's parameters beyond sampling: their types are checked for every
//! model (a wrongly typed `tools` is a 400 whoever serves it), and each says
//! whether the embedded engine honours what it asks. What it would not
//! honour is refused by name rather than ignored; backends receive the body
//! as sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ApiError;

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Tool {
    /// `function` (or another tool type the provider knows).
    #[serde(rename = "type")]
    pub kind: String,
    /// The function's name, description and parameters.
    #[serde(default)]
    pub function: Option<Map<String, Value>>,
}

/// `tool_choice` or `function_call`: `none`, `auto`, `required`, or a named tool.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged, expecting = "a string (\"none\", \"auto\", \"required\") or an object naming a tool")]
pub enum ToolChoice {
    /// `none`, `auto` or `required`.
    Mode(String),
    /// A named tool.
    Named(Map<String, Value>),
}

/// `response_format`: its members are OpenAI's, no others.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseFormat {
    /// `text`, `json_object` or `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The schema, with `json_schema`.
    #[serde(default)]
    pub json_schema: Option<Map<String, Value>>,
}

/// Chat parameters other than sampling. Unknown members are kept in `unknown`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct ChatOptions {
    /// The end user, for the provider's abuse monitoring: no effect on the answer.
    #[serde(default)]
    pub user: Option<String>,
    /// Tags for stored completions: no effect on the answer.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Whether the provider stores the completion.
    #[serde(default)]
    pub store: Option<bool>,
    /// The provider's processing tier.
    #[serde(default)]
    pub service_tier: Option<String>,
    /// A stable end-user identifier: no effect on the answer.
    #[serde(default)]
    pub safety_identifier: Option<String>,
    /// A prompt-cache key: no effect on the answer.
    #[serde(default)]
    pub prompt_cache_key: Option<String>,
    /// Return each token's log probability.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// 0 to 20 most likely tokens per position, with `logprobs`.
    #[serde(default)]
    pub top_logprobs: Option<u8>,
    /// Token id → bias (-100 to 100).
    #[serde(default)]
    pub logit_bias: Option<BTreeMap<String, f64>>,
    /// Tools the model may call.
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    /// Whether and which tool to call.
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    /// Whether several tools may be called at once.
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// The older form of `tools`.
    #[serde(default)]
    pub functions: Option<Vec<Map<String, Value>>>,
    /// The older form of `tool_choice`.
    #[serde(default)]
    pub function_call: Option<ToolChoice>,
    /// Text, a JSON object, or JSON following a schema.
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    /// Output types (`text`, `audio`).
    #[serde(default)]
    pub modalities: Option<Vec<String>>,
    /// Audio output settings.
    #[serde(default)]
    pub audio: Option<Map<String, Value>>,
    /// Predicted output.
    #[serde(default)]
    pub prediction: Option<Map<String, Value>>,
    /// A reasoning model's effort.
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    /// How long the answer should be.
    #[serde(default)]
    pub verbosity: Option<String>,
    /// Web search settings.
    #[serde(default)]
    pub web_search_options: Option<Map<String, Value>>,
    /// Members OpenAI does not define.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// Completions parameters other than sampling. Unknown members are kept in `unknown`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct CompletionOptions {
    /// The end user: no effect on the answer.
    #[serde(default)]
    pub user: Option<String>,
    /// Return the prompt with the answer.
    #[serde(default)]
    pub echo: Option<bool>,
    /// Text after the completion (insertion).
    #[serde(default)]
    pub suffix: Option<String>,
    /// Log probabilities of the 0 to 5 most likely tokens.
    #[serde(default)]
    pub logprobs: Option<u8>,
    /// Candidates generated server-side, the best returned.
    #[serde(default)]
    pub best_of: Option<u32>,
    /// Token id → bias (-100 to 100).
    #[serde(default)]
    pub logit_bias: Option<BTreeMap<String, f64>>,
    /// Members OpenAI does not define.
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// Rampart's own member, allowed beside OpenAI's everywhere.
const RAMPART_MEMBER: &str = "rampart";

fn check_logit_bias(bias: Option<&BTreeMap<String, f64>>) -> Result<(), ApiError> {
    for (token, value) in bias.into_iter().flatten() {
        if token.parse::<u32>().is_err() {
            return Err(ApiError::bad_parameter("logit_bias", format!("'{token}' is not a token id")));
        }
        if !(-100.0..=100.0).contains(value) {
            return Err(ApiError::bad_parameter(&format!("logit_bias.{token}"), "must be from -100 to 100"));
        }
    }
    Ok(())
}

fn unknown_member(unknown: &Map<String, Value>) -> Option<&str> {
    unknown.keys().map(String::as_str).find(|key| *key != RAMPART_MEMBER)
}

fn is_mode(choice: Option<&ToolChoice>, mode: &str) -> bool {
    matches!(choice, Some(ToolChoice::Mode(m)) if m == mode)
}

impl ChatOptions {
    /// Checks values beyond their types.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.top_logprobs.is_some_and(|n| n > 20) {
            return Err(ApiError::bad_parameter("top_logprobs", "must be from 0 to 20"));
        }
        check_logit_bias(self.logit_bias.as_ref())?;
        for (name, choice) in [("tool_choice", &self.tool_choice), ("function_call", &self.function_call)] {
            if let Some(ToolChoice::Mode(mode)) = choice
                && !["none", "auto", "required"].contains(&mode.as_str())
            {
                return Err(ApiError::bad_parameter(name, format!("'{mode}' is not one of none, auto, required")));
            }
        }
        if let Some(format) = &self.response_format {
            match format.kind.as_str() {
                "text" | "json_object" if format.json_schema.is_some() => {
                    return Err(ApiError::bad_parameter("response_format.json_schema", "is for type json_schema"));
                }
                "text" | "json_object" => {}
                "json_schema" if format.json_schema.is_some() => {}
                "json_schema" => return Err(ApiError::bad_parameter("response_format.json_schema", "is required")),
                other => {
                    return Err(ApiError::bad_parameter(
                        "response_format.type",
                        format!("'{other}' is not one of text, json_object, json_schema"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The first parameter the embedded engine would not honour as asked.
    pub fn not_honoured_by_embedded(&self) -> Option<&str> {
        let tools = self.tools.as_ref().is_some_and(|t| !t.is_empty());
        let functions = self.functions.as_ref().is_some_and(|f| !f.is_empty());
        let format = self.response_format.as_ref().is_some_and(|f| f.kind != "text");
        let modalities = self.modalities.as_ref().is_some_and(|m| m.iter().any(|m| m != "text"));
        let tier = self.service_tier.as_deref().is_some_and(|t| t != "auto" && t != "default");
        [
            ("logprobs", self.logprobs == Some(true)),
            ("top_logprobs", self.top_logprobs.is_some()),
            ("logit_bias", self.logit_bias.as_ref().is_some_and(|b| !b.is_empty())),
            ("tools", tools),
            ("tool_choice", self.tool_choice.is_some() && !is_mode(self.tool_choice.as_ref(), "none")),
            ("functions", functions),
            ("function_call", self.function_call.is_some() && !is_mode(self.function_call.as_ref(), "none")),
            ("response_format", format),
            ("modalities", modalities),
            ("audio", self.audio.is_some()),
            ("prediction", self.prediction.is_some()),
            ("reasoning_effort", self.reasoning_effort.is_some()),
            ("verbosity", self.verbosity.is_some()),
            ("web_search_options", self.web_search_options.is_some()),
            ("store", self.store == Some(true)),
            ("service_tier", tier),
        ]
        .into_iter()
        .find_map(|(name, asked)| asked.then_some(name))
        .or_else(|| unknown_member(&self.unknown))
    }
}

impl CompletionOptions {
    /// Checks values beyond their types.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.logprobs.is_some_and(|n| n > 5) {
            return Err(ApiError::bad_parameter("logprobs", "must be from 0 to 5"));
        }
        if self.best_of == Some(0) {
            return Err(ApiError::bad_parameter("best_of", "must be at least 1"));
        }
        check_logit_bias(self.logit_bias.as_ref())
    }

    /// The first parameter the embedded engine would not honour as asked.
    pub fn not_honoured_by_embedded(&self) -> Option<&str> {
        [
            ("echo", self.echo == Some(true)),
            ("suffix", self.suffix.as_ref().is_some_and(|s| !s.is_empty())),
            ("logprobs", self.logprobs.is_some()),
            ("best_of", self.best_of.is_some_and(|n| n > 1)),
            ("logit_bias", self.logit_bias.as_ref().is_some_and(|b| !b.is_empty())),
        ]
        .into_iter()
        .find_map(|(name, asked)| asked.then_some(name))
        .or_else(|| unknown_member(&self.unknown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(json: &str) -> ChatOptions {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn what_the_embedded_engine_does_not_do_is_named() {
        for (json, name) in [
            (r#"{"logprobs":true}"#, "logprobs"),
            (r#"{"top_logprobs":2}"#, "top_logprobs"),
            (r#"{"logit_bias":{"15":5}}"#, "logit_bias"),
            (r#"{"tools":[{"type":"function","function":{"name":"f"}}]}"#, "tools"),
            (r#"{"tool_choice":"required"}"#, "tool_choice"),
            (r#"{"response_format":{"type":"json_object"}}"#, "response_format"),
            (r#"{"store":true}"#, "store"),
            (r#"{"service_tier":"priority"}"#, "service_tier"),
            (r#"{"frobnicate":1}"#, "frobnicate"),
        ] {
            assert_eq!(chat(json).not_honoured_by_embedded(), Some(name), "{json}");
        }
        for json in [
            r#"{"logprobs":false,"tools":[],"tool_choice":"none","response_format":{"type":"text"}}"#,
            r#"{"user":"u","metadata":{"k":"v"},"store":false,"service_tier":"auto","parallel_tool_calls":true}"#,
            r#"{"rampart":{"label":"NATO SECRET"}}"#,
        ] {
            assert_eq!(chat(json).not_honoured_by_embedded(), None, "{json}");
        }
    }

    #[test]
    fn values_are_checked_whoever_serves() {
        for (json, param) in [
            (r#"{"top_logprobs":21}"#, "top_logprobs"),
            (r#"{"logit_bias":{"x":1}}"#, "logit_bias"),
            (r#"{"logit_bias":{"7":101}}"#, "logit_bias.7"),
            (r#"{"tool_choice":"sometimes"}"#, "tool_choice"),
            (r#"{"response_format":{"type":"yaml"}}"#, "response_format.type"),
            (r#"{"response_format":{"type":"json_schema"}}"#, "response_format.json_schema"),
        ] {
            assert_eq!(chat(json).validate().unwrap_err().param.as_deref(), Some(param), "{json}");
        }
        let completion: CompletionOptions = serde_json::from_str(r#"{"logprobs":6}"#).unwrap();
        assert_eq!(completion.validate().unwrap_err().param.as_deref(), Some("logprobs"));
        let completion: CompletionOptions = serde_json::from_str(r#"{"echo":true,"best_of":1}"#).unwrap();
        assert_eq!(completion.not_honoured_by_embedded(), Some("echo"));
    }

    #[test]
    fn a_response_format_has_openais_members_only() {
        let unknown = crate::parse_json::<ChatOptions>(br#"{"response_format":{"type":"text","schema":{}}}"#);
        assert_eq!(unknown.unwrap_err().param.as_deref(), Some("response_format.schema"));
        let misplaced = chat(r#"{"response_format":{"type":"text","json_schema":{}}}"#);
        assert_eq!(misplaced.validate().unwrap_err().param.as_deref(), Some("response_format.json_schema"));
    }
}
