//! A small OpenAI-compatible server for tests, whose behaviour is chosen by
//! the requested model id:
//!
//! - any model: a chat completion whose text names the server, with usage;
//!   `stream: true` gives `stream_chunks` chunks then `[DONE]` (plus a usage
//!   chunk when `stream_options.include_usage` is set);
//! - `slow-stream`: 200 chunks, 50 ms apart (for disconnect tests);
//! - `slow-headers`: waits 30 s before answering (for timeouts and disconnects);
//! - `fail-503`: answers 503 with an OpenAI error;
//! - `html-500`: answers 500 with an HTML page;
//! - any model on a server whose name starts with `broken`: 503.
//!
//! [`Stats`] counts requests, completed streams and streams the client
//! abandoned (detected when the response body is dropped unfinished).

mod scripted;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub use scripted::{Script, spawn_scripted_tls};

/// What the server has seen.
#[derive(Default, Debug)]
pub struct Stats {
    /// Requests received on the API routes.
    pub requests: AtomicUsize,
    /// Streams sent to the end.
    pub streams_completed: AtomicUsize,
    /// Streams (or slow answers) abandoned by the client.
    pub cancelled: AtomicUsize,
    /// The last `x-request-id` header received, as its length (0 when none).
    pub last_request_id_len: AtomicUsize,
    /// The last body received on a completion route, as forwarded.
    pub last_body: std::sync::Mutex<Bytes>,
}

#[derive(Clone)]
struct Mock {
    name: Arc<str>,
    stats: Arc<Stats>,
}

/// Counts a cancellation when dropped before `finish` is called.
struct CancelGuard {
    stats: Arc<Stats>,
    finished: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if self.finished {
            self.stats.streams_completed.fetch_add(1, Ordering::SeqCst);
        } else {
            self.stats.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Chunks in a normal stream.
pub const STREAM_CHUNKS: usize = 5;

/// What model `marked` writes, token by token: a NATO CONFIDENTIAL marking
/// split between two tokens, then text that must not reach a caller below it.
pub const MARKED_TOKENS: [&str; STREAM_CHUNKS] = ["The ", "NATO CONF", "IDENTIAL convoy ", "moves at ", "dawn."];

/// A running mock server.
pub struct MockServer {
    /// What it has seen.
    pub stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl MockServer {
    /// Stops accepting, closes idle connections and waits until it is down:
    /// afterwards connections to its port are refused.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

fn app(name: &str, stats: &Arc<Stats>) -> Router {
    let mock = Mock { name: name.into(), stats: Arc::clone(stats) };
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .with_state(mock)
}

/// Serves HTTPS on `listener` with `tls` (which may require client certificates).
pub fn spawn_tls(listener: tokio::net::TcpListener, name: &str, tls: Arc<rustls::ServerConfig>) -> Arc<Stats> {
    let stats = Arc::new(Stats::default());
    serve_tls(listener, app(name, &stats), tls);
    stats
}

/// Serves `app` over HTTPS on `listener` with `tls`, in the current runtime.
fn serve_tls(listener: tokio::net::TcpListener, app: Router, tls: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    });
}

/// Serves on `listener` in the current runtime.
pub fn spawn(listener: tokio::net::TcpListener, name: &str) -> MockServer {
    let stats = Arc::new(Stats::default());
    let app = app(name, &stats);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    MockServer { stats, stop: Some(stop), task }
}

async fn models(State(mock): State<Mock>) -> Response {
    axum::Json(json!({"object":"list","data":[{"id": "mock","object":"model","owned_by": &*mock.name}]}))
        .into_response()
}

async fn embeddings(State(mock): State<Mock>) -> Response {
    mock.stats.requests.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5,1.0]}],"model":"embed","usage":{"prompt_tokens":3,"total_tokens":3}})).into_response()
}

fn sse(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

async fn chat(State(mock): State<Mock>, headers: HeaderMap, body: Bytes) -> Response {
    mock.stats.requests.fetch_add(1, Ordering::SeqCst);
    let id_len = headers.get("x-request-id").map_or(0, |v| v.len());
    mock.stats.last_request_id_len.store(id_len, Ordering::SeqCst);
    *mock.stats.last_body.lock().unwrap_or_else(|e| e.into_inner()) = body.clone();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = request["model"].as_str().unwrap_or("").to_owned();
    let streaming = request["stream"].as_bool().unwrap_or(false);
    let include_usage = request["stream_options"]["include_usage"].as_bool().unwrap_or(false);
    match model.as_str() {
        _ if mock.name.starts_with("broken") => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(
                    json!({"error":{"message":"broken backend","type":"server_error","param":null,"code":null}}),
                ),
            )
                .into_response();
        }
        "fail-503" => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(
                    json!({"error":{"message":"overloaded","type":"server_error","param":null,"code":"overloaded"}}),
                ),
            )
                .into_response();
        }
        "html-500" => {
            return (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/html")], "<html>oops</html>")
                .into_response();
        }
        "slow-headers" => {
            let mut guard = CancelGuard { stats: Arc::clone(&mock.stats), finished: false };
            tokio::time::sleep(Duration::from_secs(30)).await;
            guard.finished = true;
        }
        _ => {}
    }
    let text = match model.as_str() {
        "marked" => MARKED_TOKENS.concat(),
        _ => format!("Hello from {}", mock.name),
    };
    let usage = json!({"prompt_tokens": 11, "completion_tokens": STREAM_CHUNKS, "total_tokens": 11 + STREAM_CHUNKS});
    if !streaming {
        return axum::Json(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
            "system_fingerprint": &*mock.name,
            "choices": [{"index":0,"message":{"role":"assistant","content":text},"finish_reason":"stop","logprobs":null}],
            "usage": usage,
        }))
        .into_response();
    }
    let (chunks, delay) = match model.as_str() {
        "slow-stream" => (200, Duration::from_millis(50)),
        // Slow enough that a client stopping it after the second token stops it before the end.
        "marked" => (STREAM_CHUNKS, Duration::from_millis(100)),
        _ => (STREAM_CHUNKS, Duration::ZERO),
    };
    let name = Arc::clone(&mock.name);
    let guard = CancelGuard { stats: Arc::clone(&mock.stats), finished: false };
    let stream = async_stream(chunks, delay, model, name, include_usage.then_some(usage), guard);
    Response::builder().header(header::CONTENT_TYPE, "text/event-stream").body(Body::from_stream(stream)).unwrap()
}

fn async_stream(
    chunks: usize,
    delay: Duration,
    model: String,
    name: Arc<str>,
    usage: Option<Value>,
    guard: CancelGuard,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    futures_util::stream::unfold((0usize, guard), move |(i, mut guard)| {
        let (model, name, usage) = (model.clone(), Arc::clone(&name), usage.clone());
        async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let chunk = |delta: Value, finish: Value| {
                json!({"id":"chatcmpl-mock","object":"chat.completion.chunk","created":0,"model":model,"system_fingerprint":&*name,
                       "choices":[{"index":0,"delta":delta,"finish_reason":finish}]})
            };
            let usage_frames = usize::from(usage.is_some());
            let frame = if i < chunks {
                let content = match model.as_str() {
                    "marked" => MARKED_TOKENS[i].to_owned(),
                    _ => format!("t{i} "),
                };
                sse(&chunk(json!({"content": content}), Value::Null))
            } else if i == chunks {
                sse(&chunk(json!({}), json!("stop")))
            } else if i == chunks + usage_frames {
                sse(
                    &json!({"id":"chatcmpl-mock","object":"chat.completion.chunk","created":0,"model":model,"choices":[],"usage":usage}),
                )
            } else if i == chunks + usage_frames + 1 {
                guard.finished = true;
                Bytes::from_static(b"data: [DONE]\n\n")
            } else {
                return None;
            };
            Some((Ok(frame), (i + 1, guard)))
        }
    })
}
