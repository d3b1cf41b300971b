//! A grounded answer on its way out: `rampart.citations` and
//! `rampart.grounding` added to a JSON answer, or in a stream's last event
//! before `[DONE]`; in strict mode, unsupported sentences removed — in a
//! stream, each sentence is held until it is complete and checked.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::response::{IntoResponse as _, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use http::header;
use http_body_util::BodyExt as _;
use rampart_api::ApiError;
use rampart_retrieval::ground::{Checker, GroundError, Grounding, Sentence, sentences};
use serde_json::{Value, json};

use super::{Mode, Sources, grounding_json};
use crate::error::{ErrorResponse, error_event};

/// How a grounded answer's sentences are embedded: by the site's embedding model.
pub type Embed = Box<dyn FnMut(&[&str]) -> Result<Vec<Vec<f32>>, GroundError> + Send>;

/// A checker whose embeddings come from the site's embedding model.
type SiteChecker = Checker<Embed>;

/// What the ground stage kept of a request for its answer.
pub struct Grounded {
    sources: Sources,
    mode: Mode,
    /// Shared with the blocking task that checks each piece of the answer.
    checker: Arc<Mutex<SiteChecker>>,
}

impl Grounded {
    /// The answer to a request given `sources`, its sentences embedded by `embed`.
    pub fn new(sources: Sources, mode: Mode, embed: Embed) -> Self {
        let checker = Arc::new(Mutex::new(Checker::new(sources.checked(), embed)));
        Self { sources, mode, checker }
    }

    /// The `rampart` members the answer gains.
    fn members(&self, sentences: &[Sentence]) -> (Value, Value) {
        let grounding = Grounding::of(sentences);
        (self.sources.citations(&grounding.cited_sources), grounding_json(&grounding, self.mode))
    }
}

/// The answer with its citations and grounding; an answer that is not a
/// success is passed on as it is.
pub async fn finish(grounded: Grounded, response: Response) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let streamed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if streamed {
        return Response::from_parts(parts, Body::from_stream(stream(grounded, body)));
    }
    match whole(grounded, body).await {
        Ok(body) => Response::from_parts(parts, Body::from(body)),
        Err(err) => ErrorResponse(err).into_response(),
    }
}

/// Checks the sentences of `answer` off the event loop (embedding is CPU
/// work): those complete, all of them once `ended`; and where the rest begins.
async fn check(grounded: &Grounded, answer: String, ended: bool) -> Result<(Vec<Sentence>, usize), ApiError> {
    let checker = Arc::clone(&grounded.checker);
    let failed = |e: &dyn std::fmt::Display| ApiError::retrieval_failed(format!("grounding: {e}"));
    tokio::task::spawn_blocking(move || {
        let mut checker = checker.lock().map_err(|_| GroundError("a check failed before".into()))?;
        let (spans, rest) = sentences(&answer, ended);
        let checked: Result<Vec<_>, _> = spans.into_iter().map(|span| checker.check(&answer, span)).collect();
        checked.map(|checked| (checked, rest))
    })
    .await
    .map_err(|e| failed(&e))?
    .map_err(|e| failed(&e))
}

/// The text of `answer` but its unsupported sentences.
fn supported_text(answer: &str, sentences: &[Sentence]) -> String {
    sentences.iter().filter(|s| s.supported).map(|s| &answer[s.span.clone()]).collect()
}

/// A whole JSON answer, checked: its first choice's message.
async fn whole(grounded: Grounded, body: Body) -> Result<Bytes, ApiError> {
    let unreadable = |e: &dyn std::fmt::Display| ApiError::upstream_error(format!("the answer could not be read: {e}"));
    let bytes = body.collect().await.map_err(|e| unreadable(&e))?.to_bytes();
    let mut value: Value = serde_json::from_slice(&bytes).map_err(|e| unreadable(&e))?;
    let content = value.pointer("/choices/0/message/content").and_then(Value::as_str).unwrap_or_default().to_owned();
    let (checked, _) = check(&grounded, content.clone(), true).await?;
    if grounded.mode == Mode::Strict
        && let Some(message) = value.pointer_mut("/choices/0/message")
    {
        message["content"] = Value::String(supported_text(&content, &checked));
    }
    let (citations, grounding) = grounded.members(&checked);
    add_members(&mut value, citations, grounding);
    serde_json::to_vec(&value).map(Bytes::from).map_err(|e| unreadable(&e))
}

/// Adds citations and grounding to the answer's `rampart` member.
fn add_members(value: &mut Value, citations: Value, grounding: Value) {
    if !value.get("rampart").is_some_and(Value::is_object) {
        value["rampart"] = json!({});
    }
    value["rampart"]["citations"] = citations;
    value["rampart"]["grounding"] = grounding;
}

/// Where a stream is.
struct Streaming {
    grounded: Grounded,
    inner: axum::body::BodyDataStream,
    /// Bytes of an event not yet complete.
    partial: BytesMut,
    /// The answer's text so far (flag mode), or its text not yet checked (strict mode).
    text: String,
    /// Sentences checked so far (strict mode).
    checked: Vec<Sentence>,
    /// The last event's `id`, `created` and `model`, for the last event.
    last: Value,
    done: bool,
}

/// A stream of the answer's events, checked as they pass.
fn stream(grounded: Grounded, body: Body) -> impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Send {
    let state = Streaming {
        grounded,
        inner: body.into_data_stream(),
        partial: BytesMut::new(),
        text: String::new(),
        checked: Vec::new(),
        last: Value::Null,
        done: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        match state.inner.next().await {
            Some(Ok(data)) => {
                state.partial.extend_from_slice(&data);
                let out = match state.events().await {
                    Ok(out) => out,
                    Err(err) => {
                        state.done = true;
                        error_event(&err)
                    }
                };
                Some((Ok(out), state))
            }
            Some(Err(err)) => {
                state.done = true;
                Some((Err(err), state))
            }
            None => {
                state.done = true;
                // Whatever was not a complete event is passed on as it came.
                let rest = state.partial.split().freeze();
                Some((Ok(rest), state))
            }
        }
    })
}

impl Streaming {
    /// The complete events received so far, as they are to be sent.
    async fn events(&mut self) -> Result<Bytes, ApiError> {
        let mut out = BytesMut::new();
        while let Some(end) = memchr::memmem::find(&self.partial, b"\n\n") {
            let event = self.partial.split_to(end + 2).freeze();
            out.extend_from_slice(&self.event(event).await?);
        }
        Ok(out.freeze())
    }

    /// One event, as it is to be sent.
    async fn event(&mut self, event: Bytes) -> Result<Bytes, ApiError> {
        let Some(payload) = event.strip_prefix(b"data:").map(<[u8]>::trim_ascii) else { return Ok(event) };
        if payload == b"[DONE]" {
            let last = self.last_event().await?;
            let mut out = BytesMut::from(&last[..]);
            out.extend_from_slice(&event);
            return Ok(out.freeze());
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(payload) else { return Ok(event) };
        for member in ["id", "created", "model"] {
            if let Some(v) = value.get(member) {
                self.last[member] = v.clone();
            }
        }
        let piece = value.pointer("/choices/0/delta/content").and_then(Value::as_str);
        self.text.push_str(piece.unwrap_or_default());
        if self.grounded.mode == Mode::Flag {
            return Ok(event);
        }
        // The event that ends the choice releases the last of its text, so none comes after it.
        let ended = value.pointer("/choices/0/finish_reason").is_some_and(|r| !r.is_null());
        if piece.is_none() && !ended {
            return Ok(event);
        }
        let released = self.check_complete(ended).await?;
        if let Some(delta) = value.pointer_mut("/choices/0/delta").and_then(Value::as_object_mut) {
            delta.insert("content".into(), Value::String(released));
        }
        Ok(data_event(&value))
    }

    /// Strict mode: checks the sentences of the held text that are complete
    /// (all of it once `ended`) and gives the supported ones, to be released.
    async fn check_complete(&mut self, ended: bool) -> Result<String, ApiError> {
        let (checked, rest) = check(&self.grounded, self.text.clone(), ended).await?;
        let released = supported_text(&self.text, &checked);
        self.checked.extend(checked);
        self.text.drain(..rest);
        Ok(released)
    }

    /// The event before `[DONE]`: the last of the held text (strict mode), the citations and the grounding.
    async fn last_event(&mut self) -> Result<Bytes, ApiError> {
        let choices = match self.grounded.mode {
            Mode::Strict => {
                let released = self.check_complete(true).await?;
                json!([{"index": 0, "delta": {"content": released}, "finish_reason": null}])
            }
            Mode::Flag => {
                let text = std::mem::take(&mut self.text);
                self.checked = check(&self.grounded, text, true).await?.0;
                json!([])
            }
        };
        let (citations, grounding) = self.grounded.members(&self.checked);
        let mut value = self.last.take();
        if !value.is_object() {
            value = json!({});
        }
        value["object"] = json!("chat.completion.chunk");
        value["choices"] = choices;
        add_members(&mut value, citations, grounding);
        Ok(data_event(&value))
    }
}

fn data_event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
