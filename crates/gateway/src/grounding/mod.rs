//! The ground stage: a chat request that names collections in
//! `rampart.collections` is answered from them. Between authorize and place,
//! its layer (`layer`) retrieves, with the user's last message, the portions
//! the caller may read (clearance, releasability, the declared label as a
//! ceiling, and the model's accreditation: no portion goes to a model not
//! accredited for it), puts them into the prompt numbered `[n]` with their
//! portion markings, before the user's last message, raises the request's label to the join of every portion
//! given, and has Cedar decide again at that label. On the way out (`answer`)
//! the answer gains `rampart.citations` (the portions it cites, in order of
//! first citation) and `rampart.grounding` (see `rampart_retrieval::ground`);
//! in strict mode, unsupported sentences are removed.
//!
//! This module is the stage's decision, free of HTTP: what the request asks,
//! the prompt it becomes, and what the answer shows.

mod answer;
mod layer;

pub use layer::Ground;

use rampart_api::{ApiError, ChatCompletionRequest};
use rampart_labels::Label;
use rampart_retrieval::ground::{Grounding, Source};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::labelling::may_name_extension;
use crate::library::Found;

/// Portions given to the model unless `rampart.top_k` says otherwise.
const DEFAULT_TOP_K: usize = 6;
/// The most portions one request may put into its prompt.
const MAX_TOP_K: usize = 20;
/// The most collections one request may name.
const MAX_COLLECTIONS: usize = 16;
/// The longest query retrieval is given: the start of the user's last message.
const MAX_QUERY: usize = 4096;

/// What the model is told about its sources, after them and before the question.
const INSTRUCTION: &str = "Using only the sources above, answer the question below. After each sentence, \
cite the sources it relies on by their numbers in square brackets, like [1]. If the sources do not answer \
it, say so.";

/// What happens to sentences the sources do not support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// They are kept and flagged in `rampart.grounding.unsupported` (the default).
    #[default]
    Flag,
    /// They are removed from the answer, and counted in `rampart.grounding.removed`.
    Strict,
}

/// What a chat request asks of grounding (`rampart.collections`, `top_k`, `grounding`).
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    /// The collections to answer from, each once.
    pub collections: Vec<String>,
    /// How many portions to put into the prompt.
    pub top_k: usize,
    /// What to do with unsupported sentences.
    pub mode: Mode,
}

impl Ask {
    /// What `body` asks of grounding, if it names collections. Grounding
    /// members without `collections`, or on a route other than chat, are refused.
    pub fn of(body: &[u8], chat: Option<&ChatCompletionRequest>) -> Result<Option<Self>, ApiError> {
        if !may_name_extension(body) {
            return Ok(None);
        }
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            rampart: Option<Extension>,
        }
        /// Rampart's members; `label` is the label stage's, the others this stage's.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Extension {
            #[serde(default, rename = "label")]
            _label: Option<serde::de::IgnoredAny>,
            collections: Option<Vec<String>>,
            top_k: Option<usize>,
            grounding: Option<Mode>,
        }
        let Some(extension) = rampart_api::parse_json::<Body>(body)?.rampart else { return Ok(None) };
        let Some(collections) = extension.collections else {
            return match (extension.top_k, extension.grounding) {
                (None, None) => Ok(None),
                _ => Err(ApiError::bad_parameter("rampart", "top_k and grounding need rampart.collections")),
            };
        };
        let Some(chat) = chat else {
            return Err(ApiError::bad_parameter("rampart.collections", "grounding is for /v1/chat/completions"));
        };
        if collections.is_empty() || collections.len() > MAX_COLLECTIONS {
            return Err(ApiError::bad_parameter(
                "rampart.collections",
                format!("name 1 to {MAX_COLLECTIONS} collections"),
            ));
        }
        if collections.iter().enumerate().any(|(i, name)| collections[..i].contains(name)) {
            return Err(ApiError::bad_parameter("rampart.collections", "a collection is named twice; name each once"));
        }
        let top_k = extension.top_k.unwrap_or(DEFAULT_TOP_K);
        if top_k == 0 || top_k > MAX_TOP_K {
            return Err(ApiError::bad_parameter("rampart.top_k", format!("must be 1 to {MAX_TOP_K}")));
        }
        if chat.sampling.n.is_some_and(|n| n > 1) {
            return Err(ApiError::bad_parameter("n", "a grounded answer has one choice; leave n at 1"));
        }
        let mode = extension.grounding.unwrap_or_default();
        if mode == Mode::Strict {
            // Strict mode checks the answer's text: nothing else may carry text it would remove.
            let options = &chat.options;
            if options.logprobs == Some(true) || options.top_logprobs.is_some() {
                return Err(ApiError::bad_parameter(
                    "logprobs",
                    "strict grounding returns no logprobs; leave them off",
                ));
            }
            if options.tools.as_ref().is_some_and(|t| !t.is_empty()) || options.functions.is_some() {
                return Err(ApiError::bad_parameter(
                    "tools",
                    "strict grounding checks text answers only; leave out tools",
                ));
            }
        }
        Ok(Some(Self { collections, top_k, mode }))
    }
}

/// What retrieval is asked: the start of the user's last message.
pub fn question(chat: &ChatCompletionRequest) -> Result<String, ApiError> {
    let text = chat
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .and_then(|m| m.content.as_ref())
        .map(|c| c.text())
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::bad_parameter("messages", "a grounded request needs a user message with text"))?;
    let mut end = text.len().min(MAX_QUERY);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Ok(text[..end].to_owned())
}

/// The portions given to the model, numbered from 1 in the order given.
pub struct Sources(pub Vec<Found>);

impl Sources {
    /// What goes before the question: each source as `[n]`, its portion
    /// marking, its document's title (when the caller may read it) and its
    /// text; then the instruction to cite them.
    pub fn prompt(&self) -> String {
        let mut text = String::from("Sources:");
        if self.0.is_empty() {
            text.push_str("\n(none: no portion you may read matches the question)");
        }
        for (i, found) in self.0.iter().enumerate() {
            text.push_str(&format!("\n[{}] {}", i + 1, found.label.portion()));
            if let Some(title) = &found.title {
                text.push_str(&format!(" {title}:"));
            }
            text.push(' ');
            text.push_str(found.text.trim());
        }
        text.push_str("\n\n");
        text.push_str(INSTRUCTION);
        text.push_str("\n\nQuestion: ");
        text
    }

    /// The join of `label` and every portion's label: the answer's label.
    pub fn answer_label(&self, label: &Label) -> Result<Label, ApiError> {
        self.0.iter().try_fold(label.clone(), |joined, found| {
            joined.join(&found.label).map_err(|e| ApiError::retrieval_failed(e.to_string()))
        })
    }

    /// The sources as the grounding check takes them.
    pub fn checked(&self) -> Vec<Source> {
        self.0.iter().enumerate().map(|(i, found)| Source { n: i + 1, text: found.text.clone() }).collect()
    }

    /// `rampart.citations`: the sources cited, in order of first citation.
    pub fn citations(&self, cited: &[usize]) -> Value {
        let cited = cited.iter().filter_map(|&n| Some((n, self.0.get(n.checked_sub(1)?)?)));
        Value::Array(
            cited
                .map(|(n, found)| {
                    let mut citation = json!({ "n": n });
                    if let (Some(citation), Value::Object(reference)) = (citation.as_object_mut(), found.reference()) {
                        citation.extend(reference);
                    }
                    citation
                })
                .collect(),
        )
    }
}

/// `rampart.grounding`, with `removed` when strict mode removed sentences.
pub fn grounding_json(grounding: &Grounding, mode: Mode) -> Value {
    let mut value = json!({
        "sentences": grounding.sentences,
        "cited": grounding.cited,
        "unsupported": grounding.unsupported,
        "unknown_citations": grounding.unknown_citations,
        "support": grounding.support,
    });
    if mode == Mode::Strict {
        value["removed"] = json!(grounding.unsupported.len());
    }
    value
}

/// The request body as the model is to be asked: the sources and the
/// instruction to cite them put before the user's last message (small models
/// answer from sources best when they come right before the question), and
/// without this stage's members, so that no site grounds it twice.
pub fn grounded_body(body: &[u8], sources: &Sources) -> Result<Vec<u8>, ApiError> {
    let unreadable = |e: serde_json::Error| ApiError::invalid_request(format!("the body could not be read: {e}"), None);
    let mut value: Value = serde_json::from_slice(body).map_err(unreadable)?;
    let prompt = sources.prompt();
    if let Some(rampart) = value.get_mut("rampart").and_then(Value::as_object_mut) {
        for member in ["collections", "top_k", "grounding"] {
            rampart.remove(member);
        }
    }
    let no_question = || ApiError::bad_parameter("messages", "a grounded request needs a user message with text");
    let question = value
        .get_mut("messages")
        .and_then(Value::as_array_mut)
        .and_then(|messages| messages.iter_mut().rev().find(|m| m["role"] == "user"))
        .ok_or_else(no_question)?;
    match &mut question["content"] {
        Value::String(text) => *text = format!("{prompt}{text}"),
        Value::Array(parts) => parts.insert(0, json!({"type": "text", "text": prompt})),
        _ => return Err(no_question()),
    }
    serde_json::to_vec(&value).map_err(unreadable)
}

#[cfg(test)]
mod tests;
