//! Every string of a request body, for the label stage to look for markings
//! in: member names and values at any depth (tool arguments, tool and
//! function descriptions, names, `stop`, `metadata`, `user`, `prediction`,
//! refusal parts, ...), and the strings of any string that is itself JSON
//! (tool-call arguments are JSON in a string). What a backend or the model
//! could read is read here too, so no field is left unscanned. The `text`
//! members of a list of parts, and the contents of a list of messages, are
//! also read joined, as the model reads them, so a marking split across two
//! parts or two messages is still one marking.
//!
//! A body naming a member twice in one object is refused: parsers differ on
//! which of the two wins, so the gateway and a backend could read different
//! requests from the same bytes.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// How deep JSON inside strings is unwrapped (a string holding JSON holding a string holding JSON...).
const MAX_NESTED_JSON: u8 = 4;

/// Why a body's text could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// A member named twice in one object, at this JSON path.
    DuplicateMember(String),
    /// Not valid JSON.
    Malformed(String),
}

/// The strings of `body`, each followed by a newline, except those of the
/// top-level `rampart` member (the declared label, which is read as a label
/// and never forwarded).
pub fn body_text(body: &[u8]) -> Result<String, Unreadable> {
    let mut collector = Collector { text: String::with_capacity(body.len()), path: Vec::new(), duplicate: None };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let walked = Walk::new(&mut collector, true, 0).deserialize(&mut deserializer).and_then(|_| deserializer.end());
    match (walked, collector.duplicate) {
        (_, Some(path)) => Err(Unreadable::DuplicateMember(path)),
        (Err(err), None) => Err(Unreadable::Malformed(err.to_string())),
        (Ok(()), None) => Ok(collector.text),
    }
}

struct Collector {
    text: String,
    /// Where the walk is, for naming a duplicate member.
    path: Vec<Step>,
    duplicate: Option<String>,
}

enum Step {
    Member(String),
    Index(usize),
}

impl Collector {
    fn push(&mut self, text: &str, nested: u8) {
        self.text.push_str(text);
        self.text.push('\n');
        let trimmed = text.trim_start();
        if nested < MAX_NESTED_JSON && (trimmed.starts_with('{') || trimmed.starts_with('[')) {
            self.push_nested(text, nested + 1);
        }
    }

    /// The strings of a string that parses as JSON; a string that does not is text like any other.
    fn push_nested(&mut self, text: &str, nested: u8) {
        let mut inner = Collector { text: String::new(), path: Vec::new(), duplicate: None };
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let walked =
            Walk::new(&mut inner, true, nested).deserialize(&mut deserializer).and_then(|_| deserializer.end());
        // A nested member named twice has both its values collected, so nothing is missed.
        if walked.is_ok() || inner.duplicate.is_some() {
            self.text.push_str(&inner.text);
        }
    }

    fn path_text(&self) -> String {
        let mut out = String::new();
        for step in &self.path {
            match step {
                Step::Member(name) if out.is_empty() => out.push_str(name),
                Step::Member(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

/// Walks one JSON value, collecting its strings when `collect` is set. The
/// walk of a value returns the string itself when `keep` is set, and the
/// `text` member of an object.
struct Walk<'c> {
    collector: &'c mut Collector,
    collect: bool,
    nested: u8,
    keep: bool,
}

impl<'c> Walk<'c> {
    fn new(collector: &'c mut Collector, collect: bool, nested: u8) -> Self {
        Self { collector, collect, nested, keep: false }
    }
}

/// A part's text, as the walk of a value returns it.
type Kept = Option<String>;

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Kept;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Kept, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Kept;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Kept, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Kept, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Kept, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Kept, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Kept, E> {
        Ok(None)
    }

    fn visit_str<E>(self, text: &str) -> Result<Kept, E> {
        if self.collect {
            self.collector.push(text, self.nested);
        }
        Ok(self.keep.then(|| text.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kept, A::Error> {
        let mut texts: Vec<String> = Vec::new();
        let mut index = 0;
        loop {
            self.collector.path.push(Step::Index(index));
            let element = seq.next_element_seed(Walk::new(self.collector, self.collect, self.nested))?;
            self.collector.path.pop();
            match element {
                None => break,
                Some(Some(text)) => texts.push(text),
                Some(None) => {}
            }
            index += 1;
        }
        let joined = texts.join("\n");
        if self.collect && texts.len() > 1 {
            self.collector.push(&joined, self.nested);
        }
        Ok((self.keep && !joined.is_empty()).then_some(joined))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kept, A::Error> {
        let mut kept = None;
        // A set, not a list: checking each name against a list would cost the square of the members.
        let mut seen: HashSet<String> = HashSet::new();
        let top = self.collector.path.is_empty() && self.nested == 0;
        while let Some(name) = map.next_key::<String>()? {
            self.collector.path.push(Step::Member(name.clone()));
            if seen.contains(&name) {
                self.collector.duplicate = Some(self.collector.path_text());
                return Err(de::Error::custom("a member is named twice"));
            }
            let collect = self.collect && !(top && name == "rampart");
            if collect {
                self.collector.push(&name, self.nested);
            }
            // A part's text and a message's content are also read joined with their neighbours'.
            let keep = name == "text" || name == "content";
            let value = map.next_value_seed(Walk { keep, ..Walk::new(self.collector, collect, self.nested) })?;
            if keep {
                kept = value;
            }
            self.collector.path.pop();
            seen.insert(name);
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_at_any_depth_is_collected() {
        let body = br#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"{\"q\":\"deep\"}"}}]}],"stop":["halt"],"metadata":{"key":"value"}}"#;
        let text = body_text(body).unwrap();
        for word in ["m", "assistant", "f", "deep", "halt", "key", "value", "tool_calls", "arguments"] {
            assert!(text.lines().any(|line| line == word), "{word} in {text:?}");
        }
    }

    #[test]
    fn the_texts_of_a_list_of_parts_are_also_read_joined() {
        let text = body_text(br#"[{"type":"text","text":"NATO SEC"},{"type":"text","text":"RET"}]"#).unwrap();
        assert!(text.contains("NATO SEC\nRET\n"), "{text:?}");
    }

    #[test]
    fn the_contents_of_a_list_of_messages_are_also_read_joined() {
        let body = br#"{"messages":[{"role":"user","content":"NATO SEC"},{"role":"system","content":[{"type":"text","text":"RET"}]}]}"#;
        assert!(body_text(body).unwrap().contains("NATO SEC\nRET"), "{:?}", body_text(body));
    }

    #[test]
    fn the_declared_label_is_not_collected() {
        let text = body_text(br#"{"rampart":{"label":"NATO SECRET"},"model":"m"}"#).unwrap();
        assert_eq!(text, "model\nm\n");
        // Only the top-level member is the declared label.
        let text = body_text(br#"{"metadata":{"rampart":"NATO SECRET"}}"#).unwrap();
        assert!(text.contains("NATO SECRET"), "{text:?}");
    }

    #[test]
    fn a_member_named_twice_is_refused_with_its_path() {
        let twice = body_text(br#"{"messages":[{"role":"user","content":"a","content":"b"}]}"#);
        assert_eq!(twice, Err(Unreadable::DuplicateMember("messages[0].content".into())));
        let label = body_text(br#"{"rampart":{"label":"a","label":"b"}}"#);
        assert_eq!(label, Err(Unreadable::DuplicateMember("rampart.label".into())));
        // Escapes are decoded before names are compared.
        let escaped = body_text(br#"{"model":"a","m\u006fdel":"b"}"#);
        assert_eq!(escaped, Err(Unreadable::DuplicateMember("model".into())));
    }

    #[test]
    fn malformed_json_and_trailing_bytes_are_refused() {
        assert!(matches!(body_text(br#"{"model":"#), Err(Unreadable::Malformed(_))));
        assert!(matches!(body_text(br#"{} {}"#), Err(Unreadable::Malformed(_))));
    }

    #[test]
    fn json_nested_in_strings_is_unwrapped_a_few_levels_deep() {
        let body =
            serde_json::json!({"a": serde_json::json!({"b": serde_json::json!(["inner"]).to_string()}).to_string()});
        let text = body_text(body.to_string().as_bytes()).unwrap();
        assert!(text.lines().any(|line| line == "inner"), "{text:?}");
        // Not JSON after all: kept as text.
        let text = body_text(br#"{"a":"[not json"}"#).unwrap();
        assert!(text.contains("[not json"));
    }
}
