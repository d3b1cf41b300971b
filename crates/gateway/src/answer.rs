//! What is known of an answer once something has served it: its token
//! counts and what served it, carried in response extensions from the
//! serving stage to the audit stage.

use std::sync::{Arc, Mutex};

/// Token counts of an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Tokens of the prompt.
    pub prompt: u64,
    /// Tokens generated.
    pub completion: u64,
}

/// Token counts of an answer, noted by whatever serves it (the engine, or the
/// relay of a backend's answer or stream) and read for its audit entry, so a
/// stream's entry has them even when the client asked for no usage chunk.
#[derive(Clone, Default)]
pub struct AnswerUsage(Arc<Mutex<Option<Tokens>>>);

impl AnswerUsage {
    /// Notes the counts; a stream may report them more than once, the last wins.
    pub fn set(&self, tokens: Tokens) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens);
    }

    /// The counts, once noted.
    pub fn get(&self) -> Option<Tokens> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What served an answer.
#[derive(Clone)]
pub enum ServedBy {
    /// A backend of this site (its name), or `embedded`.
    Here(String),
    /// The peer site (its id) the request was forwarded to.
    Peer(String),
}

/// Why a stream was ended before its model finished, noted by the body that
/// ended it and read for the stream's end entry.
#[derive(Clone, Default)]
pub struct StreamCut(Arc<std::sync::OnceLock<&'static str>>);

impl StreamCut {
    /// Notes the error code the stream ended with; the first one noted stays.
    pub fn set(&self, code: &'static str) {
        let _ = self.0.set(code);
    }

    /// The code, if the stream was cut.
    pub fn get(&self) -> Option<&'static str> {
        self.0.get().copied()
    }
}
