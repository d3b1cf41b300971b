//! The label stage: a request's effective label is the high-water mark of its
//! declared label (the `Rampart-Label` header and `rampart.label` in the body;
//! the site's default label if neither) and of every marking found in any
//! string of its body, disguised or not.

use bytes::Bytes;
use rampart_api::ApiError;
use rampart_labels::{Label, LabelError, Policies};
use serde::Deserialize;

use crate::body_text::{Unreadable, body_text};

/// Why a request's label could not be established; the request is refused.
#[derive(Debug)]
pub enum LabelRefusal {
    /// The declared label at `param` is not a label of this site.
    Invalid {
        /// Where the label was declared: `Rampart-Label` or `rampart.label`.
        param: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The body names a member twice (at this JSON path), so what it says is ambiguous.
    DuplicateMember(String),
    /// The body is not valid JSON.
    Malformed(String),
    /// The body is JSON but not an object.
    NotAnObject,
    /// Rampart's `rampart` member is not an object of its members.
    Extension {
        /// The member at fault.
        param: String,
        /// What it should be.
        reason: String,
    },
}

impl LabelRefusal {
    fn invalid(param: &'static str, reason: &dyn std::fmt::Display) -> Self {
        LabelRefusal::Invalid { param, reason: reason.to_string() }
    }
}

impl From<LabelRefusal> for ApiError {
    fn from(refusal: LabelRefusal) -> Self {
        match refusal {
            LabelRefusal::Invalid { param, reason } => ApiError::invalid_label(param, &reason),
            LabelRefusal::DuplicateMember(path) => ApiError::duplicate_member(&path),
            LabelRefusal::Extension { param, reason } => ApiError::bad_parameter(&param, reason),
            LabelRefusal::NotAnObject => {
                ApiError::invalid_request("the request body must be a JSON object".to_owned(), None)
            }
            LabelRefusal::Malformed(reason) => {
                ApiError::invalid_request(format!("the request body is not valid JSON: {reason}"), None)
            }
        }
    }
}

/// A request's labels.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The high-water mark of what it declares (or the site's default label)
    /// and of every marking in its body.
    pub effective: Label,
    /// The label it declares, if it declares one: for retrieval, a ceiling.
    pub declared: Option<Label>,
}

/// The label stage's settings: the site's policies and default label.
pub struct Labelling {
    policies: Policies,
    default_label: Label,
}

impl Labelling {
    /// The stage for a site with these policies and default label.
    pub fn new(policies: Policies, default_label: Label) -> Self {
        Self { policies, default_label }
    }

    /// The security policies labels are read with.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The label of a request that declares none and holds no marking.
    pub fn default_label(&self) -> &Label {
        &self.default_label
    }

    /// The labels of a request whose `Rampart-Label` header (if it has one,
    /// sent once) is `declared` and whose JSON body is `body`.
    pub fn request_label(&self, declared: Option<&[u8]>, body: &[u8]) -> Result<Labelled, LabelRefusal> {
        // First: a body naming a member twice is refused before any of it is believed.
        let text = body_text(body).map_err(|e| match e {
            Unreadable::DuplicateMember(path) => LabelRefusal::DuplicateMember(path),
            Unreadable::Malformed(reason) => LabelRefusal::Malformed(reason),
        })?;
        // A body is a JSON object on every route (or empty, where a route takes none).
        if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|first| *first != b'{') {
            return Err(LabelRefusal::NotAnObject);
        }
        let header = "Rampart-Label";
        let from_header = match declared {
            Some(bytes) => {
                let text = std::str::from_utf8(bytes).map_err(|e| LabelRefusal::invalid(header, &e))?;
                Some(self.policies.parse_label(text).map_err(|e| LabelRefusal::invalid(header, &e))?)
            }
            None => None,
        };
        let member = "rampart.label";
        let from_body = match body_label(body)? {
            Some(value) => {
                Some(label_from_value(&self.policies, &value).map_err(|e| LabelRefusal::invalid(member, &e))?)
            }
            None => None,
        };
        let declared = match (from_header, from_body) {
            // Two declarations that disagree are refused: which one the caller meant is unknown.
            (Some(h), Some(b)) if h != b => {
                return Err(LabelRefusal::invalid(
                    member,
                    &"differs from the Rampart-Label header; send one label, or the same in both",
                ));
            }
            (Some(one), Some(_)) => Some(one),
            (Some(one), None) | (None, Some(one)) => Some(one),
            (None, None) => None,
        };
        let label = declared.clone().unwrap_or_else(|| self.default_label.clone());
        let effective = match self.policies.scan_markings(label.policy(), &text) {
            Some(found) => label.join(&found).map_err(|e| LabelRefusal::invalid(member, &e))?,
            None => label,
        };
        Ok(Labelled { effective, declared })
    }
}

/// A `rampart.label` value: a marking string, or the JSON form as an object.
fn label_from_value(policies: &Policies, value: &serde_json::Value) -> Result<Label, LabelError> {
    match value {
        serde_json::Value::String(text) => policies.parse_label(text),
        other => policies.parse_label_json(&other.to_string()),
    }
}

/// The label a JSON body declares in `rampart.label`, if it declares one;
/// `Err` when that member is not a label of these policies.
pub fn declared_body_label(policies: &Policies, body: &[u8]) -> Result<Option<Label>, LabelError> {
    let value = body_label(body).map_err(|e| LabelError::Invalid(ApiError::from(e).message))?;
    value.map(|value| label_from_value(policies, &value)).transpose()
}

/// Whether `body` may have a `rampart` member: its name written out, or any
/// `\u` escape (which could spell it). A body without either is not parsed for one.
pub fn may_name_extension(body: &[u8]) -> bool {
    memchr::memmem::find(body, b"rampart").is_some() || memchr::memmem::find(body, b"\\u").is_some()
}

/// Rampart's members of a request body's `rampart` object: `label` read here,
/// the others by the ground stage (`grounding::Ask`).
const RAMPART_MEMBERS: [&str; 4] = ["label", "collections", "top_k", "grounding"];

/// `rampart.label` of a request body, if it has one. A misspelt member
/// (`lable`) is refused, never ignored: ignoring it would drop the ceiling the
/// caller meant to declare.
fn body_label(body: &[u8]) -> Result<Option<serde_json::Value>, LabelRefusal> {
    if !may_name_extension(body) {
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Extension {
        rampart: Option<serde_json::Value>,
    }
    let unreadable = |e: serde_json::Error| LabelRefusal::Malformed(e.to_string());
    let Some(rampart) = serde_json::from_slice::<Extension>(body).map_err(unreadable)?.rampart else {
        return Ok(None);
    };
    let serde_json::Value::Object(mut members) = rampart else {
        return Err(LabelRefusal::Extension {
            param: "rampart".into(),
            reason: format!("must be an object of Rampart's members ({})", RAMPART_MEMBERS.join(", ")),
        });
    };
    if let Some(unknown) = members.keys().find(|name| !RAMPART_MEMBERS.contains(&name.as_str())) {
        let name: String = unknown.chars().take(64).collect();
        return Err(LabelRefusal::Extension {
            param: format!("rampart.{name}"),
            reason: format!("not one of Rampart's members ({})", RAMPART_MEMBERS.join(", ")),
        });
    }
    match members.remove("label") {
        Some(label @ (serde_json::Value::String(_) | serde_json::Value::Object(_))) => Ok(Some(label)),
        Some(serde_json::Value::Null) | None => Ok(None),
        Some(_) => Err(LabelRefusal::invalid("rampart.label", &"a marking string or a JSON label object")),
    }
}

/// The body forwarded upstream: without Rampart's own `rampart` member, which
/// upstream servers do not know, however its name is escaped (re-encoded only
/// when the member may be there).
pub fn without_extension(body: Bytes) -> Bytes {
    if !may_name_extension(&body) {
        return body;
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut map)) => match map.remove("rampart") {
            Some(_) => serde_json::to_vec(&map).map(Bytes::from).unwrap_or(body),
            None => body,
        },
        _ => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage() -> Labelling {
        let policies = Policies::nato();
        let default_label = policies.parse_label("NATO UNCLASSIFIED").unwrap();
        Labelling::new(policies, default_label)
    }

    fn level(declared: Option<&str>, body: serde_json::Value) -> String {
        let label = stage().request_label(declared.map(str::as_bytes), body.to_string().as_bytes()).unwrap().effective;
        label.banner()
    }

    #[test]
    fn markings_anywhere_in_the_body_raise_the_label() {
        let bodies = [
            serde_json::json!({"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"q\":\"NATO SECRET\"}"}}]}]}),
            serde_json::json!({"model":"m","messages":[{"role":"user","content":"hi","name":"NATO SECRET"}]}),
            serde_json::json!({"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f","description":"NATO SECRET"}}]}),
            serde_json::json!({"model":"m","messages":[],"stop":["NATO SECRET"]}),
            serde_json::json!({"model":"m","messages":[],"metadata":{"k":"NATO SECRET"}}),
            serde_json::json!({"model":"m","messages":[],"user":"NATO SECRET"}),
            serde_json::json!({"model":"m","messages":[],"prediction":{"type":"content","content":"NATO SECRET"}}),
            serde_json::json!({"model":"m","messages":[{"role":"assistant","content":[{"type":"refusal","refusal":"NATO SECRET"}]}]}),
            serde_json::json!({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"NATO SEC"},{"type":"text","text":"RET"}]}]}),
            serde_json::json!({"model":"m","messages":[],"metadata":{"NATO SECRET":"key"}}),
        ];
        for body in bodies {
            assert_eq!(level(None, body.clone()), "NATO SECRET", "{body}");
        }
    }

    #[test]
    fn the_declared_label_joins_what_is_found() {
        let body = serde_json::json!({"model":"m","rampart":{"label":"NATO CONFIDENTIAL"},"messages":[{"role":"user","content":"(NS) x"}]});
        assert_eq!(level(Some("NATO CONFIDENTIAL"), body), "NATO SECRET");
        assert_eq!(level(None, serde_json::json!({"model":"m"})), "NATO UNCLASSIFIED");
    }

    #[test]
    fn a_header_and_a_body_label_that_differ_are_refused() {
        let body = br#"{"model":"m","rampart":{"label":"NATO CONFIDENTIAL"}}"#;
        let refused = stage().request_label(Some(b"NATO RESTRICTED"), body);
        assert!(matches!(refused, Err(LabelRefusal::Invalid { param: "rampart.label", .. })));
        let same = stage().request_label(Some(b"NATO CONFIDENTIAL"), body).unwrap();
        assert_eq!(same.effective.banner(), "NATO CONFIDENTIAL");
    }

    #[test]
    fn unknown_rampart_members_and_bodies_that_are_no_object_are_refused() {
        let typo = stage().request_label(None, br#"{"model":"m","rampart":{"lable":"NATO SECRET"}}"#);
        assert!(matches!(&typo, Err(LabelRefusal::Extension { param, .. }) if param == "rampart.lable"), "{typo:?}");
        for shape in [r#"["NATO RESTRICTED"]"#, r#""NATO SECRET""#, "7"] {
            let body = format!(r#"{{"model":"m","rampart":{shape}}}"#);
            let refused = stage().request_label(None, body.as_bytes());
            assert!(matches!(&refused, Err(LabelRefusal::Extension { param, .. }) if param == "rampart"), "{shape}");
        }
        let listed = stage().request_label(None, br#"{"model":"m","rampart":{"label":["NATO SECRET"]}}"#);
        assert!(matches!(listed, Err(LabelRefusal::Invalid { param: "rampart.label", .. })));
        for body in [&br#"[{"model":"m"}]"#[..], b"\"text\"", b" 7", b"null"] {
            assert!(matches!(stage().request_label(None, body), Err(LabelRefusal::NotAnObject)), "{body:?}");
        }
    }

    #[test]
    fn an_ambiguous_or_invalid_declaration_is_refused() {
        let twice = br#"{"model":"m","rampart":{"label":{"policy":"NATO","classification":"SECRET","classification":"CONFIDENTIAL"}}}"#;
        assert!(
            matches!(stage().request_label(None, twice), Err(LabelRefusal::DuplicateMember(path)) if path == "rampart.label.classification")
        );
        let bad = stage().request_label(Some(b"NATO PURPLE"), b"{}");
        assert!(matches!(bad, Err(LabelRefusal::Invalid { param: "Rampart-Label", .. })));
        let bad = stage().request_label(None, br#"{"rampart":{"label":"NATO PURPLE"}}"#);
        assert!(matches!(bad, Err(LabelRefusal::Invalid { param: "rampart.label", .. })));
    }

    #[test]
    fn the_extension_is_removed_however_its_name_is_written() {
        for body in [r#"{"model":"m","rampart":{"label":"x"}}"#, r#"{"model":"m","r\u0061mpart":{"label":"x"}}"#] {
            assert_eq!(&without_extension(Bytes::from(body.to_owned()))[..], br#"{"model":"m"}"#, "{body}");
        }
        let untouched = Bytes::from_static(br#"{"model":"m","x":"\u00e9"}"#);
        assert_eq!(without_extension(untouched.clone()), untouched, "re-encoded only without the member");
    }
}
