//! The shared request types every stage reads: the route, the parsed
//! request, and the request's headers that must be sent at most once.

use http::{HeaderMap, HeaderName, HeaderValue};
use rampart_api::{ApiError, ChatCompletionRequest, CompletionRequest, MessageContent, parse_json};
use serde::Deserialize;

use crate::body_text::{Unreadable, body_text};

/// The content part types whose every string the label stage reads; any
/// other part (images, audio, files) is refused, since its content cannot be
/// checked for markings.
pub const SCANNABLE_PARTS: [&str; 2] = ["text", "refusal"];

/// A header that decides who is asking or at what label, sent at most once:
/// a second copy is refused rather than one of the two believed.
pub fn single_header<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h HeaderValue>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::duplicate_header(name.as_str()));
    }
    Ok(first)
}

/// The API routes Rampart serves or forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/completions`
    Completions,
    /// `POST /v1/embeddings`
    Embeddings,
    /// `GET /v1/models` (forwarded only as a health probe)
    Models,
}

impl Route {
    /// Routes that have an upstream path.
    pub const FORWARDED: [Route; 4] = [Route::ChatCompletions, Route::Completions, Route::Embeddings, Route::Models];

    /// Path appended to a backend's base URL.
    pub fn upstream_path(self) -> &'static str {
        match self {
            Route::ChatCompletions => "/chat/completions",
            Route::Completions => "/completions",
            Route::Embeddings => "/embeddings",
            Route::Models => "/models",
        }
    }

    /// Index into [`Route::FORWARDED`].
    pub fn forwarded_index(self) -> usize {
        self as usize
    }

    /// Label used in metrics.
    pub fn metric_name(self) -> &'static str {
        match self {
            Route::ChatCompletions => "chat_completions",
            Route::Completions => "completions",
            Route::Embeddings => "embeddings",
            Route::Models => "models",
        }
    }
}

/// A parsed inference request.
#[derive(Clone)]
pub enum Parsed {
    /// Chat completion.
    Chat(Box<ChatCompletionRequest>),
    /// Text completion.
    Completion(Box<CompletionRequest>),
    /// Embeddings.
    Embeddings(EmbeddingsRequest),
}

/// The fields of an embeddings request Rampart checks.
#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddingsRequest {
    /// The model id.
    pub model: String,
    /// Text or tokens to embed.
    pub input: serde_json::Value,
}

impl EmbeddingsRequest {
    /// Refuses token-id inputs: what they say cannot be checked for markings.
    fn check_scannable(&self) -> Result<(), ApiError> {
        let text = match &self.input {
            serde_json::Value::String(_) => true,
            serde_json::Value::Array(items) => items.iter().all(serde_json::Value::is_string),
            _ => false,
        };
        if text { Ok(()) } else { Err(ApiError::unscannable_content("input", "token ids")) }
    }
}

/// Refuses content parts whose content the label stage cannot read.
fn check_scannable_parts(request: &ChatCompletionRequest) -> Result<(), ApiError> {
    for (i, message) in request.messages.iter().enumerate() {
        let Some(MessageContent::Parts(parts)) = &message.content else { continue };
        if let Some((j, part)) = parts.iter().enumerate().find(|(_, p)| !SCANNABLE_PARTS.contains(&p.kind.as_str())) {
            let what = format!("a content part of type '{}'", part.kind);
            return Err(ApiError::unscannable_content(&format!("messages[{i}].content[{j}]"), &what));
        }
    }
    Ok(())
}

impl Parsed {
    /// Parses and validates a request body for `route`; refuses content the label stage cannot read.
    /// A member named twice anywhere is `duplicate_member` with its path, even where serde's
    /// untagged forms (a message's content) would hide it.
    pub fn parse(route: Route, body: &[u8]) -> Result<Self, ApiError> {
        Self::parse_checked(route, body).map_err(|err| match body_text(body) {
            Err(Unreadable::DuplicateMember(path)) if err.code != Some("duplicate_member") => {
                ApiError::duplicate_member(&path)
            }
            _ => err,
        })
    }

    fn parse_checked(route: Route, body: &[u8]) -> Result<Self, ApiError> {
        Ok(match route {
            Route::ChatCompletions => {
                let request: ChatCompletionRequest = parse_json(body)?;
                request.validate()?;
                check_scannable_parts(&request)?;
                Parsed::Chat(Box::new(request))
            }
            Route::Completions => {
                let request: CompletionRequest = parse_json(body)?;
                request.validate()?;
                Parsed::Completion(Box::new(request))
            }
            Route::Embeddings | Route::Models => {
                let request: EmbeddingsRequest = parse_json(body)?;
                if request.input.is_null() || request.input.as_array().is_some_and(Vec::is_empty) || request.input == ""
                {
                    return Err(ApiError::bad_parameter("input", "must not be empty"));
                }
                request.check_scannable()?;
                Parsed::Embeddings(request)
            }
        })
    }

    /// The model asked for.
    pub fn model(&self) -> &str {
        match self {
            Parsed::Chat(r) => &r.model,
            Parsed::Completion(r) => &r.model,
            Parsed::Embeddings(r) => &r.model,
        }
    }

    /// The route it was sent to.
    pub fn route(&self) -> Route {
        match self {
            Parsed::Chat(_) => Route::ChatCompletions,
            Parsed::Completion(_) => Route::Completions,
            Parsed::Embeddings(_) => Route::Embeddings,
        }
    }

    /// Whether the answer is streamed.
    pub fn streaming(&self) -> bool {
        match self {
            Parsed::Chat(r) => r.sampling.streaming(),
            Parsed::Completion(r) => r.sampling.streaming(),
            Parsed::Embeddings(_) => false,
        }
    }
}
