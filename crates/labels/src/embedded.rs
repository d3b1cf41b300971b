//! Labels written out in text: a STANAG 4774 label element or a JSON label
//! pasted into a message is read as the label it states, categories and all
//! (a banner needle alone would see only its classification word).

use std::sync::Arc;

use crate::{Label, LabelJson, SecurityPolicy, stanag};

/// The needle that finds a 4774 label element: the end of each root's name.
pub(crate) const XML_NEEDLE: &str = "ConfidentialityLabel";
/// The needle that finds a JSON label: its classification member.
pub(crate) const JSON_NEEDLE: &str = "\"classification\"";

/// How far from its needle a written-out label is read, in bytes.
const MAX_EMBEDDED_BYTES: usize = 16 * 1024;
/// How many enclosing objects are tried as a JSON label, innermost first.
const MAX_ENCLOSING_OBJECTS: usize = 3;

/// The label of the 4774 element whose root name ends at `at + XML_NEEDLE.len()`.
pub(crate) fn xml_label(policy: &Arc<SecurityPolicy>, text: &str, at: usize) -> Option<Label> {
    let open = text[..at].rfind('<')?;
    let name = &text[open + 1..at + XML_NEEDLE.len()];
    // A start tag (`<originatorConfidentialityLabel`, `<s:ConfidentialityLabel`), not an end tag.
    if name.len() > 64 || name.starts_with('/') || name.contains(|c: char| c.is_whitespace() || c == '>') {
        return None;
    }
    let close = format!("</{name}>");
    let window = &text[open..floor_boundary(text, open + MAX_EMBEDDED_BYTES)];
    let end = window.find(&close)? + close.len();
    stanag::label_of_policy(policy, &window[..end]).ok()
}

/// The label of the JSON object around the classification member at `at`:
/// each enclosing `{` is tried, innermost first.
pub(crate) fn json_label(policy: &Arc<SecurityPolicy>, text: &str, at: usize) -> Option<Label> {
    let start = ceil_boundary(text, at.saturating_sub(MAX_EMBEDDED_BYTES));
    let mut depth = 0usize;
    let mut tried = 0;
    for (offset, byte) in text.as_bytes()[start..at].iter().enumerate().rev() {
        match byte {
            b'}' => depth += 1,
            b'{' if depth > 0 => depth -= 1,
            b'{' => {
                let object = &text[start + offset..floor_boundary(text, start + offset + MAX_EMBEDDED_BYTES)];
                if let Some(label) = parse_json_label(policy, object) {
                    return Some(label);
                }
                tried += 1;
                if tried == MAX_ENCLOSING_OBJECTS {
                    return None;
                }
            }
            _ => {}
        }
    }
    None
}

/// The JSON label at the start of `text` (whatever follows it), if it is one of `policy`.
fn parse_json_label(policy: &Arc<SecurityPolicy>, text: &str) -> Option<Label> {
    let json: LabelJson = serde_json::Deserializer::from_str(text).into_iter().next()?.ok()?;
    let named = json.policy.trim();
    if named != policy.name && named.strip_prefix("urn:oid:").unwrap_or(named) != policy.id {
        return None;
    }
    Label::new(Arc::clone(policy), &json.classification, json.categories).ok()
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}
