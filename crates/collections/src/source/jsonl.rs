//! JSON Lines: one document per line,
//! `{"id","title","label","portions":[{"label","text"}]}`, where a label is
//! Rampart's JSON form or a marking (`"NATO SECRET"`). A portion without a
//! label takes the document's, as an unmarked paragraph does; `title_label`
//! (default: the document's label) says who may see the title.

use rampart_labels::{Label, LabelError, Policies};
use serde::Deserialize;
use serde_json::Value;

use crate::document::{Document, DocumentError, Portion};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: String,
    title: String,
    label: Value,
    #[serde(default)]
    title_label: Option<Value>,
    portions: Vec<LinePortion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinePortion {
    #[serde(default)]
    label: Option<Value>,
    text: String,
}

fn label_of(policies: &Policies, value: &Value) -> Result<Label, LabelError> {
    match value {
        Value::String(text) => policies.parse_label(text),
        other => policies.parse_label_json(&other.to_string()),
    }
}

/// The documents of a JSON Lines file (`file`, for errors).
pub fn read(policies: &Policies, file: &str, text: &str) -> Result<Vec<Document>, DocumentError> {
    let mut documents = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let origin = format!("{file}:{}", index + 1);
        let fail = |reason: String| DocumentError::at(&origin, reason);
        let parsed: Line = serde_json::from_str(line).map_err(|e| {
            fail(format!(
                "not a document ({e}); expected {{\"id\",\"title\",\"label\",\"portions\":[{{\"label\",\"text\"}}]}}"
            ))
        })?;
        let label = label_of(policies, &parsed.label).map_err(|e| fail(format!("label: {e}")))?;
        let title_label = match &parsed.title_label {
            Some(value) => label_of(policies, value).map_err(|e| fail(format!("title_label: {e}")))?,
            None => label.clone(),
        };
        let mut portions = Vec::with_capacity(parsed.portions.len());
        for (n, portion) in parsed.portions.into_iter().enumerate() {
            let portion_label = match &portion.label {
                Some(value) => label_of(policies, value).map_err(|e| fail(format!("portions[{n}].label: {e}")))?,
                None => label.clone(),
            };
            if portion.text.trim().is_empty() {
                return Err(fail(format!("portions[{n}] has no text")));
            }
            let origin = format!("{origin} portions[{n}]");
            portions.push(Portion { label: portion_label, text: portion.text, origin, embedding: Vec::new() });
        }
        documents.push(Document {
            id: parsed.id,
            title: parsed.title,
            title_label,
            label,
            portions,
            origin: origin.clone(),
            version: 1,
        });
    }
    Ok(documents)
}
