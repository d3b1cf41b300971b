//! JSON Lines: one document per line,
//! `{"id","title","label","portions":[{"label","text"}]}`, where a label is
//! Rampart's JSON form or a marking (`"NATO SECRET"`). A portion without a
//! label takes the document's, as an unmarked paragraph does; `title_label`
//! (default: the document's label) says who may see the title.

use rampart_labels::{Label, LabelError, Policies};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::document::{Document, DocumentError, Portion};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: String,
    title: String,
    label: Box<RawValue>,
    #[serde(default)]
    title_label: Option<Box<RawValue>>,
    portions: Vec<LinePortion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinePortion {
    #[serde(default)]
    label: Option<Box<RawValue>>,
    text: String,
}

/// A label as written: a marking string, or Rampart's JSON form read by the
/// strict parser straight from the line's text (a tree would keep the last of
/// two repeated members, and a repeated classification would lower the label).
fn label_of(policies: &Policies, raw: &RawValue) -> Result<Label, LabelError> {
    match serde_json::from_str::<String>(raw.get()) {
        Ok(marking) => policies.parse_label(&marking),
        Err(_) => policies.parse_label_json(raw.get()),
    }
}

/// A JSON error without the text it was reading: where, of what kind, and
/// the name of a member this form does not have.
fn describe(error: &serde_json::Error) -> String {
    let message = error.to_string();
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        // Named only when it looks like a member's name: it could be any text of the file.
        let plausible = (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        return match plausible {
            true => format!("unknown member '{name}' at column {}", error.column()),
            false => format!("an unknown member at column {}", error.column()),
        };
    }
    let kind = match error.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "not a document of this form",
        serde_json::error::Category::Eof => "cut short",
    };
    format!("{kind} at column {}", error.column())
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
                "{}; expected {{\"id\",\"title\",\"label\",\"portions\":[{{\"label\",\"text\"}}]}}, \
                 each member once",
                describe(&e)
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
