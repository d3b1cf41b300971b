//! Forwarding to upstream backends or peer sites: pick one, retry on another
//! when one fails before its first byte (bounded), and pass the answer
//! through — streams chunk by chunk, never buffered whole.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use rampart_api::ApiError;
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;

use rampart_identity::{ASSERTION_HEADER, AssertedRequest, Principal};
use rampart_labels::Label;

use crate::answer::{AnswerUsage, ServedBy, Tokens};
use crate::backend::{Backend, UpstreamClient};
use crate::federation::Federation;
use crate::metrics::InFlight;
use crate::request::Route;
use crate::request_id::{self, RequestId};
use crate::state::Worker;
use crate::upstream_stream::MeteredStream;

/// Largest non-streamed upstream answer Rampart accepts.
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

/// One request to forward.
pub struct Call<'a> {
    /// The API route.
    pub route: Route,
    /// The requested (configured) model id.
    pub model: &'a str,
    /// The client's body, forwarded unchanged.
    pub body: Bytes,
    /// Whether the client asked for a stream.
    pub streaming: bool,
    /// The request id, passed on to the backend.
    pub id: &'a RequestId,
    /// When Rampart received the request.
    pub started: Instant,
}

/// Where a call may go: this site's backends, or its peer sites.
pub enum Upstreams<'a> {
    /// This site's backends.
    Local,
    /// Peer sites, each sent an assertion of the caller and label.
    Peers {
        /// The peers and this site's signer.
        federation: &'a Federation,
        /// The caller, as this site identified it.
        principal: &'a Principal,
        /// The request's label, as this site computed it.
        label: &'a Label,
    },
}

impl Upstreams<'_> {
    fn pool<'w>(&'w self, worker: &'w Worker) -> (&'w [Backend], &'w [UpstreamClient]) {
        match self {
            Upstreams::Local => (&worker.shared.backends, &worker.clients),
            Upstreams::Peers { federation, .. } => (federation.backends(), &worker.peer_clients),
        }
    }

    fn is_peers(&self) -> bool {
        matches!(self, Upstreams::Peers { .. })
    }

    /// Whether an answer with `status` before the first byte is worth another try elsewhere:
    /// a gateway error, or a peer that did not accept this site's assertion.
    fn retryable(&self, status: StatusCode) -> bool {
        matches!(status.as_u16(), 502..=504) || (self.is_peers() && status == 401)
    }
}

/// Why an attempt failed before the first byte.
enum Failure {
    Saturated,
    Unreachable,
    Timeout(Duration),
    Status(StatusCode),
}

impl Failure {
    /// Why a peer site could not take the request, as the caller is told.
    fn peer_reason(&self) -> String {
        match self {
            Failure::Saturated => "at its limit of requests in flight".to_owned(),
            Failure::Unreachable => "unreachable".to_owned(),
            Failure::Timeout(limit) => format!("no answer within {} ms", limit.as_millis()),
            Failure::Status(status) => format!("answered {}", status.as_u16()),
        }
    }

    fn into_error(self, model: &str, attempts: usize) -> ApiError {
        let tried = if attempts == 1 { "1 backend".to_owned() } else { format!("{attempts} backends") };
        match self {
            Failure::Saturated => ApiError::upstream_saturated(model),
            Failure::Unreachable => ApiError::upstream_unreachable(model, &tried),
            Failure::Timeout(limit) => ApiError::upstream_timeout(model, limit.as_millis(), &tried),
            Failure::Status(status) => ApiError::upstream_error(format!(
                "the backends serving '{model}' failed with status {} ({tried} tried)",
                status.as_u16()
            )),
        }
    }
}

/// The largest refusal body read from a peer to learn why it refused.
const MAX_PEER_REFUSAL_BODY: usize = 16 * 1024;

/// Why a peer that answered `status` (retryable) did not take the request, in
/// the words of [`Failure::peer_reason`]: a refusal by its own placement rules
/// (`no_eligible_site`, `site_not_eligible`) or draining is named as such, read
/// from the code of its error body; its message is not repeated.
async fn peer_refusal(status: StatusCode, body: Incoming) -> String {
    #[derive(Deserialize)]
    struct Refusal {
        error: RefusalError,
    }
    #[derive(Deserialize)]
    struct RefusalError {
        code: Option<String>,
    }
    if status == StatusCode::UNAUTHORIZED {
        return "did not accept this site's assertion (401)".to_owned();
    }
    let read = tokio::time::timeout(
        Duration::from_secs(1),
        http_body_util::Limited::new(body, MAX_PEER_REFUSAL_BODY).collect(),
    );
    let code = match read.await {
        Ok(Ok(collected)) => serde_json::from_slice::<Refusal>(&collected.to_bytes()).ok().and_then(|r| r.error.code),
        _ => None,
    };
    match code.as_deref() {
        Some("no_eligible_site" | "site_not_eligible") => "refused by its own placement rules".to_owned(),
        Some("site_draining") => "draining (its facility's health)".to_owned(),
        _ => format!("answered {}", status.as_u16()),
    }
}

/// The backends to try, in order: of two healthy candidates drawn at random
/// the one with the shorter expected wait (latency average × requests in
/// flight) first, then the rest by health and expected wait; backends whose
/// circuit breaker is open are left out. At most `attempts` (`1 + proxy.retries`).
fn attempt_order(backends: &[Backend], candidates: &[usize], attempts: usize) -> Vec<usize> {
    let wait = |i: usize| backends[i].breaker.latency_us().max(1) * (backends[i].in_flight() as u64 + 1);
    let mut order = candidates.to_vec();
    order.sort_by_key(|&i| (!backends[i].is_healthy(), wait(i)));
    let healthy = order.iter().take_while(|&&i| backends[i].is_healthy()).count();
    if healthy >= 2 {
        // Power of two choices: sending every request to the single best
        // backend would overload it between two updates of its figures.
        let a = fastrand::usize(..healthy);
        let b = (a + 1 + fastrand::usize(..healthy - 1)) % healthy;
        let pick = if wait(order[a]) <= wait(order[b]) { a } else { b };
        order[..=pick].rotate_right(1);
    }
    let now = Instant::now();
    // `admits` hands out a half-open breaker's single probe, so it is asked only until the list is full.
    let mut admitted = Vec::with_capacity(attempts);
    for index in order {
        if admitted.len() == attempts {
            break;
        }
        if backends[index].breaker.admits(now) {
            admitted.push(index);
        }
    }
    admitted
}

fn upstream_request(
    backend: &Backend,
    call: &Call<'_>,
    upstreams: &Upstreams<'_>,
) -> Result<Request<Full<Bytes>>, ApiError> {
    let mut request = Request::new(Full::new(call.body.clone()));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = backend.uri(call.route).clone();
    let headers = request.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(request_id::HEADER, call.id.0.clone());
    if call.streaming {
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/event-stream"));
    }
    if let Some(auth) = &backend.authorization {
        headers.insert(header::AUTHORIZATION, auth.clone());
    }
    if let Upstreams::Peers { federation, principal, label } = upstreams {
        let request = AssertedRequest { id: call.id.as_str(), route: call.route.upstream_path(), body: &call.body };
        let assertion = federation.assertion(backend, principal, label, &request)?;
        headers.insert(ASSERTION_HEADER, assertion);
    }
    Ok(request)
}

/// Forwards a call to the first of `candidates` (indexes into `upstreams`) that answers.
pub async fn forward(
    worker: &Worker,
    call: Call<'_>,
    upstreams: Upstreams<'_>,
    candidates: &[usize],
    in_flight: InFlight,
) -> Result<Response, ApiError> {
    let (backends, clients) = upstreams.pool(worker);
    let order = attempt_order(backends, candidates, worker.shared.settings.attempts);
    let attempts = order.len();
    let peers = upstreams.is_peers();
    let mut failure = Failure::Unreachable;
    // Why each peer tried could not take the request, told to the caller if none could.
    let mut peer_failures = Vec::new();
    for (n, &index) in order.iter().enumerate() {
        let backend = &backends[index];
        let Some(permit) = backend.try_acquire() else {
            failure = Failure::Saturated;
            peer_failures.push(failure.peer_reason());
            continue;
        };
        let sent = Instant::now();
        let limit = backend.first_byte_timeout();
        let request = upstream_request(backend, &call, &upstreams)?;
        match tokio::time::timeout(limit, clients[index].request(request)).await {
            Err(_) => {
                tracing::warn!(request_id = call.id.as_str(), backend = %backend.name, "backend did not answer in time");
                backend.breaker.failed(Instant::now());
                failure = Failure::Timeout(limit);
                peer_failures.push(failure.peer_reason());
            }
            Ok(Err(err)) => {
                backend.set_healthy(false, &err.to_string());
                backend.breaker.failed(Instant::now());
                failure = Failure::Unreachable;
                peer_failures.push(failure.peer_reason());
            }
            Ok(Ok(response)) => {
                backend.set_healthy(true, "");
                let status = response.status();
                let retryable = upstreams.retryable(status);
                if retryable {
                    backend.breaker.failed(Instant::now());
                } else {
                    backend.breaker.succeeded(sent.elapsed());
                }
                // A peer's refusal is its own; the caller hears only that the sites allowed were unavailable.
                if retryable && (n + 1 < attempts || peers) {
                    tracing::warn!(request_id = call.id.as_str(), backend = %backend.name, status = status.as_u16(), "upstream failed; trying another");
                    failure = Failure::Status(status);
                    if peers {
                        peer_failures.push(peer_refusal(status, response.into_body()).await);
                    }
                    continue;
                }
                let upstream = sent.elapsed();
                worker.shared.metrics.latency(
                    call.route.metric_name(),
                    upstream,
                    call.started.elapsed().saturating_sub(upstream),
                );
                let mut response = relay(worker, &call, response, permit, in_flight).await?;
                let served_by =
                    if peers { ServedBy::Peer(backend.name.clone()) } else { ServedBy::Here(backend.name.clone()) };
                response.extensions_mut().insert(served_by);
                return Ok(response);
            }
        }
    }
    if peers {
        peer_failures.sort();
        peer_failures.dedup();
        return Err(ApiError::eligible_sites_unavailable(attempts, &peer_failures.join("; ")));
    }
    Err(failure.into_error(call.model, attempts))
}

/// Passes a backend's answer to the client.
async fn relay(
    worker: &Worker,
    call: &Call<'_>,
    response: hyper::Response<Incoming>,
    permit: OwnedSemaphorePermit,
    in_flight: InFlight,
) -> Result<Response, ApiError> {
    let (parts, body) = response.into_parts();
    let content_type = parts.headers.get(header::CONTENT_TYPE).cloned();
    let is_stream =
        content_type.as_ref().and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/event-stream"));
    let mut builder = Response::builder().status(parts.status);
    // A peer site's label is checked by the caller of `forward`; a backend's is overwritten.
    // Every value is kept, so that a label sent twice is seen (and refused) there.
    for name in [&header::RETRY_AFTER, &crate::labelled_stream::LABEL_HEADER] {
        for value in parts.headers.get_all(name) {
            builder = builder.header(name, value);
        }
    }
    let usage = AnswerUsage::default();
    if is_stream {
        let stream = MeteredStream::new(
            body,
            Arc::clone(&worker.shared.metrics),
            call.model.to_owned(),
            permit,
            in_flight,
            usage.clone(),
        );
        return Ok(builder
            .extension(usage)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::new(stream))
            .unwrap_or_default());
    }
    let bytes = http_body_util::Limited::new(body, MAX_UPSTREAM_BODY)
        .collect()
        .await
        .map_err(|err| ApiError::upstream_error(format!("the backend's answer could not be read: {err}")))?
        .to_bytes();
    drop(permit);
    let is_json =
        content_type.as_ref().and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if !parts.status.is_success() && !is_json {
        // Not an OpenAI error body (an HTML page from a proxy, say): say so in our format.
        let mut err = ApiError::upstream_error(format!(
            "the backend answered with status {} and a body that is not JSON",
            parts.status.as_u16()
        ));
        if parts.status.is_client_error() {
            err.status = parts.status;
        }
        return Err(err);
    }
    if parts.status.is_success()
        && let Some(Tokens { prompt, completion }) = usage_of(&bytes)
    {
        worker.shared.metrics.tokens(call.model, prompt, completion);
        usage.set(Tokens { prompt, completion });
    }
    Ok(builder
        .extension(usage)
        .header(header::CONTENT_TYPE, content_type.unwrap_or(HeaderValue::from_static("application/json")))
        .body(Body::from(bytes))
        .unwrap_or_default())
}

/// The `usage` of an OpenAI answer; `completion_tokens` may be absent (embeddings).
fn usage_of(json: &[u8]) -> Option<Tokens> {
    #[derive(Deserialize)]
    struct Counts {
        prompt_tokens: u64,
        #[serde(default)]
        completion_tokens: u64,
    }
    #[derive(Deserialize)]
    struct WithUsage {
        usage: Option<Counts>,
    }
    let usage = serde_json::from_slice::<WithUsage>(json).ok()?.usage?;
    Some(Tokens { prompt: usage.prompt_tokens, completion: usage.completion_tokens })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Backends `b0`, `b1`, ... of one model, each answering its first byte after `latency_ms`.
    fn backends(latency_ms: &[u64]) -> Vec<Backend> {
        latency_ms
            .iter()
            .enumerate()
            .map(|(i, &ms)| {
                let text = format!(
                    "[server]\nlisten = \"127.0.0.1:0\"\ninsecure_dev = true\n[[backends]]\nname = \"b{i}\"\nurl = \"http://127.0.0.1:9/v1\"\nmodels = [\"m\"]\n"
                );
                let config = rampart_config::Config::parse(&text, std::path::Path::new(".")).unwrap();
                let backend = Backend::new(config.backends[0].clone()).unwrap();
                backend.set_healthy(true, "");
                backend.breaker.succeeded(Duration::from_millis(ms));
                backend
            })
            .collect()
    }

    #[test]
    fn two_healthy_backends_are_tried_the_faster_first() {
        let pool = backends(&[40, 5]);
        for _ in 0..50 {
            assert_eq!(attempt_order(&pool, &[0, 1], 2), [1, 0]);
        }
    }

    #[test]
    fn unhealthy_backends_come_last_and_open_breakers_not_at_all() {
        let pool = backends(&[1, 2, 3, 4]);
        pool[0].set_healthy(false, "test");
        let now = Instant::now();
        for _ in 0..10 {
            pool[3].breaker.failed(now);
        }
        for _ in 0..50 {
            let order = attempt_order(&pool, &[0, 1, 2, 3], 4);
            assert_eq!(order.len(), 3, "the open breaker's backend is left out: {order:?}");
            assert_eq!(order[2], 0, "the unhealthy backend is tried last: {order:?}");
            assert!(order[..2].contains(&1) && order[..2].contains(&2), "{order:?}");
        }
    }

    #[test]
    fn no_more_attempts_than_retries_allow_and_only_candidates() {
        let pool = backends(&[3, 1, 2]);
        for _ in 0..50 {
            let order = attempt_order(&pool, &[0, 2], 1);
            assert_eq!(order.len(), 1);
            assert!([0, 2].contains(&order[0]), "backend 1 is not a candidate: {order:?}");
        }
        assert!(attempt_order(&pool, &[], 3).is_empty());
    }

    #[test]
    fn a_failure_before_the_first_byte_names_what_happened() {
        let saturated = Failure::Saturated.into_error("m", 2);
        assert_eq!((saturated.code, saturated.retry_after), (Some("upstream_saturated"), Some(1)));
        let timeout = Failure::Timeout(Duration::from_millis(250)).into_error("m", 1);
        assert!(timeout.message.contains("250 ms (1 backend tried)"), "{}", timeout.message);
        let status = Failure::Status(StatusCode::BAD_GATEWAY).into_error("m", 3);
        assert!(status.message.contains("status 502 (3 backends tried)"), "{}", status.message);
    }

    #[test]
    fn usage_is_read_from_an_answer_when_it_has_one() {
        let chat = br#"{"id":"x","usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#;
        assert_eq!(usage_of(chat), Some(Tokens { prompt: 7, completion: 3 }));
        assert_eq!(usage_of(br#"{"usage":{"prompt_tokens":4}}"#), Some(Tokens { prompt: 4, completion: 0 }));
        assert_eq!(usage_of(br#"{"id":"x"}"#), None);
        assert_eq!(usage_of(b"not json"), None);
    }
}
