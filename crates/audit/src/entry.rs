//! What one audit entry records, and its canonical encoding.
//!
//! An entry is compact JSON with every field present, in this order (`null`
//! when absent), no floating-point numbers and no whitespace, so the same
//! record always has the same bytes and the same leaf hash. `v` is the format
//! version. Prompts and completions are never recorded: only SHA-256 digests
//! of the request and response bodies.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The entry format this build writes.
pub const VERSION: u32 = 1;

/// Which part of a request an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The whole request: decision and outcome (non-streaming answers and refusals).
    Complete,
    /// The decision, made durable before a stream starts.
    Start,
    /// The outcome of a stream.
    End,
}

/// The caller, as identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    /// Certificate subject or token `sub`.
    pub subject: String,
    /// ISO 3166 alpha-3.
    pub nation: String,
    /// Roles.
    pub roles: Vec<String>,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Format version ([`VERSION`]).
    pub v: u32,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The request id (`x-request-id`).
    pub request_id: String,
    /// Which part of the request this records.
    pub phase: Phase,
    /// The caller; `None` when it could not be identified.
    pub caller: Option<Caller>,
    /// `infer`, `list_models`, `read_audit`, `admin`.
    pub action: String,
    /// The model asked for.
    pub model: Option<String>,
    /// The backend or engine that served it.
    pub backend: Option<String>,
    /// The request's effective label (banner marking).
    pub request_label: Option<String>,
    /// The answer's label (banner marking).
    pub response_label: Option<String>,
    /// Whether the request was allowed.
    pub allowed: bool,
    /// Ids of the policies that decided it.
    pub policies: Vec<String>,
    /// The refusal or error code, when there is one.
    pub code: Option<String>,
    /// The HTTP status returned.
    pub status: u16,
    /// Prompt tokens, when known.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens, when known.
    pub completion_tokens: Option<u64>,
    /// Microseconds from arrival to this record.
    pub duration_us: u64,
    /// SHA-256 (hex) of the request body.
    pub request_sha256: Option<String>,
    /// SHA-256 (hex) of the response body (for streams, of every byte sent).
    pub response_sha256: Option<String>,
    /// The peer site this site forwarded the request to (which served it, or answered the error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_to: Option<String>,
    /// The peer site that forwarded the request here, vouching for its caller and label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_by: Option<String>,
    /// The `x-request-id` the client sent, when it sent one (the site's id is `request_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    /// What a retrieval read: the collections asked, and the portions returned with their labels
    /// (never their text, nor the query's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieved: Option<Retrieved>,
}

/// The portions a retrieval returned, for its entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retrieved {
    /// The collections searched.
    pub collections: Vec<String>,
    /// Each portion returned: `collection/document#portion` and its label (banner marking), in rank order.
    pub portions: Vec<RetrievedPortion>,
    /// A collection answered to the caller exactly as an unknown one, and the
    /// true reason (`forbidden by policy`, `nothing readable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<Withheld>,
}

/// A collection a retrieval answered as unknown, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withheld {
    /// The collection.
    pub collection: String,
    /// Why: `forbidden by policy` or `nothing readable`.
    pub reason: String,
}

/// One portion a retrieval returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrievedPortion {
    /// `collection/document#portion`.
    pub id: String,
    /// Its label, as a banner marking.
    pub label: String,
}

impl Entry {
    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising a struct of strings, integers, booleans and options cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads an entry, refusing unknown fields and formats this build does not know.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let entry: Entry = serde_json::from_slice(bytes).map_err(|e| DecodeError::NotAnEntry(e.to_string()))?;
        if entry.v != VERSION {
            return Err(DecodeError::UnknownFormat(entry.v));
        }
        Ok(entry)
    }
}

/// Why bytes of the log are not an entry this build reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not an entry at all (or one with fields no entry has).
    #[error("not an audit entry: {0}")]
    NotAnEntry(String),
    /// An entry of a format version this build does not know.
    #[error("entry format {0} is not known to this build (it reads {VERSION})")]
    UnknownFormat(u32),
}

/// SHA-256 of `bytes`, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `bytes` in lowercase hex (for digests computed piece by piece).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry {
            v: VERSION,
            time_ms: 1_795_000_000_123,
            request_id: "req-1".into(),
            phase: Phase::Complete,
            caller: Some(Caller { subject: "gbr-secret".into(), nation: "GBR".into(), roles: vec!["analyst".into()] }),
            action: "infer".into(),
            model: Some("smollm2".into()),
            backend: Some("embedded".into()),
            request_label: Some("NATO SECRET".into()),
            response_label: Some("NATO SECRET".into()),
            allowed: true,
            policies: vec!["rampart/infer".into()],
            code: None,
            status: 200,
            prompt_tokens: Some(12),
            completion_tokens: Some(7),
            duration_us: 5400,
            request_sha256: Some(sha256_hex(b"{}")),
            response_sha256: None,
            forwarded_to: None,
            forwarded_by: None,
            retrieved: None,
            client_request_id: None,
        }
    }

    #[test]
    fn the_encoding_is_canonical_and_round_trips() {
        let entry = sample();
        let bytes = entry.encode();
        assert_eq!(Entry::decode(&bytes).unwrap(), entry);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with(r#"{"v":1,"time_ms":1795000000123,"request_id":"req-1","phase":"complete","caller":{"subject":"gbr-secret""#), "{text}");
        assert!(text.contains(r#""code":null"#) && !text.contains(": ") && !text.contains(", "), "{text}");
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn federation_fields_appear_only_when_set() {
        let local = String::from_utf8(sample().encode()).unwrap();
        assert!(!local.contains("forwarded"), "{local}");
        let forwarded = Entry { forwarded_to: Some("usa-east".into()), ..sample() };
        let text = String::from_utf8(forwarded.encode()).unwrap();
        assert!(text.ends_with(r#""forwarded_to":"usa-east"}"#), "{text}");
        assert_eq!(Entry::decode(text.as_bytes()).unwrap(), forwarded);
    }

    #[test]
    fn unknown_fields_and_versions_are_refused() {
        let text = String::from_utf8(sample().encode()).unwrap();
        assert_eq!(
            Entry::decode(text.replacen("\"v\":1", "\"v\":2", 1).as_bytes()),
            Err(DecodeError::UnknownFormat(2))
        );
        let leaked = Entry::decode(text.replacen("{", "{\"prompt\":\"secret\",", 1).as_bytes());
        assert!(matches!(leaked, Err(DecodeError::NotAnEntry(_))), "{leaked:?}");
    }
}
