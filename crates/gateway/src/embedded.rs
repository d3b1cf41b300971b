//! Serving a request with the in-process engine: OpenAI JSON answers, or SSE
//! streams token by token. Dropping the response (the client left) drops the
//! event receiver, which frees the engine's sequence at its next step.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream;
use http::header;
use rampart_api::response::{
    AssistantMessage, ChatChoice, ChatChunk, ChatCompletion, ChunkChoice, ChunkDelta, TextChoice, TextCompletion,
};
use rampart_api::{ApiError, FinishReason, MessageContent, SamplingParams, Usage, unix_now};
use rampart_engine::{Engine, EngineError, Event, GenerateRequest, PromptInput, Sampling};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::answer::{AnswerUsage, ServedBy, Tokens};
use crate::metrics::{InFlight, Metrics};
use crate::request::{Parsed, Route};
use crate::request_id::RequestId;
use crate::state::Worker;

fn engine_error(err: EngineError, prompt_param: &str) -> ApiError {
    let message = err.to_string();
    match err {
        EngineError::NoChatTemplate(_) => ApiError::model_cannot_chat(message),
        EngineError::Template(_) => ApiError::bad_parameter("messages", message),
        EngineError::PromptTooLong { .. } => ApiError::context_length_exceeded(prompt_param, message),
        EngineError::QueueFull(_) => ApiError::engine_busy(message),
        EngineError::Stopped(_) | EngineError::Cancelled | EngineError::Load { .. } => {
            ApiError::engine_unavailable(message)
        }
    }
}

fn sampling(params: &SamplingParams) -> Result<Sampling, ApiError> {
    if params.n.is_some_and(|n| n > 1) {
        return Err(ApiError::bad_parameter("n", "the embedded engine returns one choice per request; send n = 1"));
    }
    if let Some(member) = params.stream_options.as_ref().and_then(|o| o.other.keys().next()) {
        return Err(ApiError::unsupported_parameter(&format!("stream_options.{member}")));
    }
    Ok(Sampling {
        temperature: params.temperature.unwrap_or(1.0),
        top_p: params.top_p.unwrap_or(1.0),
        top_k: params.top_k.unwrap_or(0),
        min_p: params.min_p.unwrap_or(0.0),
        // A seed is any integer; llama.cpp takes 32 bits of it.
        seed: params.seed.map_or_else(|| uuid::Uuid::new_v4().as_u128() as u32, |s| s as u32),
        max_tokens: params.token_limit(),
        stop: params.stop_strings(),
        presence_penalty: params.presence_penalty.unwrap_or(0.0),
        frequency_penalty: params.frequency_penalty.unwrap_or(0.0),
    })
}

/// What kind of answer is being produced.
#[derive(Clone, Copy)]
enum Shape {
    Chat,
    Text,
}

/// Serves a parsed request with the engine.
pub async fn serve(
    worker: &Worker,
    engine: &Engine,
    route: Route,
    parsed: Parsed,
    id: &RequestId,
    started: Instant,
    in_flight: InFlight,
) -> Result<Response, ApiError> {
    let (prompt, params, shape, prompt_param) = match parsed {
        Parsed::Chat(request) => {
            if let Some(param) = request.options.not_honoured_by_embedded() {
                return Err(ApiError::unsupported_parameter(param));
            }
            let mut messages = Vec::with_capacity(request.messages.len());
            for (i, message) in request.messages.iter().enumerate() {
                // The template is told a role and a text: a name or tool call would not reach the model.
                if let Some(member) = message.other.keys().next() {
                    return Err(ApiError::unsupported_parameter(&format!("messages[{i}].{member}")));
                }
                let content = message.content.as_ref();
                if let Some(MessageContent::Parts(parts)) = content {
                    for (j, part) in parts.iter().enumerate() {
                        if let Some(member) = part.other.keys().next() {
                            return Err(ApiError::unsupported_parameter(&format!(
                                "messages[{i}].content[{j}].{member}"
                            )));
                        }
                    }
                }
                if content.is_some_and(|c| c.has_non_text_parts()) {
                    return Err(ApiError::bad_parameter(
                        &format!("messages[{i}].content"),
                        "this model accepts text content only",
                    ));
                }
                messages.push((message.role.clone(), content.map(|c| c.text()).unwrap_or_default()));
            }
            (PromptInput::Chat(messages), request.sampling, Shape::Chat, "messages")
        }
        Parsed::Completion(request) => {
            if let Some(param) = request.options.not_honoured_by_embedded() {
                return Err(ApiError::unsupported_parameter(param));
            }
            (PromptInput::Text(request.single_prompt()?.to_owned()), request.sampling, Shape::Text, "prompt")
        }
        Parsed::Embeddings(request) => {
            return Err(ApiError::bad_parameter(
                "model",
                format!("model '{}' generates text and does not serve embeddings", request.model),
            ));
        }
    };
    let request = GenerateRequest { prompt, sampling: sampling(&params)? };
    let sent = Instant::now();
    let mut generation = engine.submit(request).await.map_err(|e| engine_error(e, prompt_param))?;
    let first = generation.events.recv().await;
    let upstream = sent.elapsed();
    worker.shared.metrics.latency(route.metric_name(), upstream, started.elapsed().saturating_sub(upstream));
    let usage = AnswerUsage::default();
    let answer = Answer {
        id: format!("{}-{}", if matches!(shape, Shape::Chat) { "chatcmpl" } else { "cmpl" }, id.as_str()),
        created: unix_now(),
        shape,
        cost: Cost {
            metrics: Arc::clone(&worker.shared.metrics),
            model: engine.name().to_owned(),
            usage: usage.clone(),
            prompt: generation.prompt_tokens,
            generated: Arc::clone(&generation.generated),
            counted: AtomicBool::new(false),
        },
    };
    let mut response = if params.streaming() {
        answer.stream(first, generation.events, params.include_usage(), in_flight)
    } else {
        answer.complete(first, generation.events).await?
    };
    response.extensions_mut().insert(ServedBy::Here("embedded".to_owned()));
    response.extensions_mut().insert(usage);
    Ok(response)
}

/// Identity of one answer, the same in every chunk.
struct Answer {
    id: String,
    created: u64,
    shape: Shape,
    /// What it costs, counted once.
    cost: Cost,
}

/// What an answer cost, in the metrics and for its audit entry: its own
/// counts once it is done or, if it is dropped before (its client left), its
/// prompt and the tokens generated so far.
struct Cost {
    metrics: Arc<Metrics>,
    /// The model, as answers name it.
    model: String,
    /// Token counts for the audit entry of a stream.
    usage: AnswerUsage,
    prompt: u32,
    generated: Arc<AtomicU32>,
    /// Set once the answer's own counts were noted.
    counted: AtomicBool,
}

impl Cost {
    /// Notes an answer's own token counts.
    fn count(&self, usage: &Usage) {
        self.counted.store(true, Ordering::Relaxed);
        self.metrics.tokens(&self.model, usage.prompt_tokens.into(), usage.completion_tokens.into());
        self.usage.set(Tokens { prompt: usage.prompt_tokens.into(), completion: usage.completion_tokens.into() });
    }
}

impl Drop for Cost {
    fn drop(&mut self) {
        if !self.counted.load(Ordering::Relaxed) {
            let completion = self.generated.load(Ordering::Relaxed);
            self.metrics.tokens(&self.model, self.prompt.into(), completion.into());
            self.usage.set(Tokens { prompt: self.prompt.into(), completion: completion.into() });
        }
    }
}

/// Said when the engine's event channel closes before `Done`.
const ENGINE_STOPPED: &str = "the engine stopped before finishing";

impl Answer {
    async fn complete(self, first: Option<Event>, mut events: UnboundedReceiver<Event>) -> Result<Response, ApiError> {
        let mut text = String::new();
        let mut next = first;
        let (finish_reason, usage) = loop {
            match next {
                Some(Event::Text(t)) => text.push_str(&t),
                Some(Event::Done { finish_reason, usage }) => break (finish_reason, usage),
                Some(Event::Failed(message)) => return Err(ApiError::engine_failed(message)),
                None => return Err(ApiError::engine_failed(ENGINE_STOPPED.to_owned())),
            }
            next = events.recv().await;
        };
        self.cost.count(&usage);
        let body = match self.shape {
            Shape::Chat => serde_json::to_vec(&ChatCompletion {
                id: self.id,
                object: "chat.completion",
                created: self.created,
                model: self.cost.model.clone(),
                choices: vec![ChatChoice {
                    index: 0,
                    message: AssistantMessage { role: "assistant", content: text },
                    finish_reason,
                    logprobs: None,
                }],
                usage,
            }),
            Shape::Text => self.text_completion(Some((&text, Some(finish_reason))), Some(usage)),
        }
        .map_err(|e| ApiError::engine_failed(e.to_string()))?;
        Ok(Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap_or_default())
    }

    /// A `text_completion` body: a whole answer, or one streamed chunk.
    fn text_completion(
        &self,
        choice: Option<(&str, Option<FinishReason>)>,
        usage: Option<Usage>,
    ) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&TextCompletion {
            id: &self.id,
            object: "text_completion",
            created: self.created,
            model: &self.cost.model,
            choices: choice
                .map(|(text, finish_reason)| TextChoice { index: 0, text, finish_reason, logprobs: None })
                .into_iter()
                .collect(),
            usage,
        })
    }

    fn sse(json: Result<Vec<u8>, serde_json::Error>) -> Bytes {
        let mut out = b"data: ".to_vec();
        out.extend(
            json.unwrap_or_else(|_| br#"{"error":{"message":"serialization failed","type":"server_error"}}"#.to_vec()),
        );
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    }

    fn chunk(
        &self,
        content: Option<&str>,
        role: bool,
        finish_reason: Option<FinishReason>,
        usage: Option<Usage>,
    ) -> Bytes {
        let with_choice = usage.is_none();
        Self::sse(match self.shape {
            Shape::Chat => serde_json::to_vec(&ChatChunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.cost.model,
                choices: if with_choice {
                    vec![ChunkChoice {
                        index: 0,
                        delta: ChunkDelta { role: role.then_some("assistant"), content },
                        finish_reason,
                        logprobs: None,
                    }]
                } else {
                    Vec::new()
                },
                usage,
            }),
            Shape::Text => self.text_completion(with_choice.then_some((content.unwrap_or(""), finish_reason)), usage),
        })
    }

    /// The SSE frames for one event; `None` once the stream is over.
    fn frames(&self, event: Option<Event>, include_usage: bool) -> (Vec<Bytes>, bool) {
        match event {
            Some(Event::Text(text)) => (vec![self.chunk(Some(&text), false, None, None)], false),
            Some(Event::Done { finish_reason, usage }) => {
                self.cost.count(&usage);
                let mut frames = vec![self.chunk(None, false, Some(finish_reason), None)];
                if include_usage {
                    frames.push(self.chunk(None, false, None, Some(usage)));
                }
                frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
                (frames, true)
            }
            Some(Event::Failed(message)) => (vec![Self::sse(Ok(ApiError::engine_failed(message).to_json()))], true),
            None => (vec![Self::sse(Ok(ApiError::engine_failed(ENGINE_STOPPED.to_owned()).to_json()))], true),
        }
    }

    fn stream(
        self,
        first: Option<Event>,
        events: UnboundedReceiver<Event>,
        include_usage: bool,
        in_flight: InFlight,
    ) -> Response {
        let opening = match self.shape {
            Shape::Chat => vec![self.chunk(Some(""), true, None, None)],
            Shape::Text => Vec::new(),
        };
        let (mut frames, done) = self.frames(first, include_usage);
        frames.splice(0..0, opening);
        let state = (self, events, frames.into_iter(), done, in_flight);
        let body = stream::unfold(state, move |(answer, mut events, mut pending, mut done, in_flight)| async move {
            loop {
                if let Some(frame) = pending.next() {
                    return Some((
                        Ok::<_, std::convert::Infallible>(frame),
                        (answer, events, pending, done, in_flight),
                    ));
                }
                if done {
                    return None;
                }
                let (frames, finished) = answer.frames(events.recv().await, include_usage);
                pending = frames.into_iter();
                done = finished;
            }
        });
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from_stream(body))
            .unwrap_or_default()
    }
}
