//! The admit stage: whether the site takes the request at all (not while it
//! drains, unless only a peer site can serve it), that its body is JSON, and
//! that the body fits the site's limit; then, when its turn comes, the body is
//! read within the site's time for it. A bounded number of bodies are read
//! and understood at once, so a flood of large ones holds bounded memory.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use rampart_api::ApiError;
use rampart_config::Config;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The admit stage's settings, resolved from the configuration at start-up.
#[derive(Debug, Clone)]
pub struct Admission {
    /// `server.max_body_bytes`.
    pub max_body_bytes: usize,
    /// `server.body_read_timeout_secs`: for the turn to read, and for the reading.
    pub body_read_timeout: Duration,
    /// Turns at reading a body (`server.max_bodies_in_flight`).
    turns: Arc<Semaphore>,
}

/// A turn at reading and understanding a request body; the next waiting
/// request's turn comes when it and its clones (a request's extensions are
/// cloneable) are dropped.
#[derive(Debug, Clone)]
pub struct ReadingTurn {
    _permit: Arc<OwnedSemaphorePermit>,
}

impl Admission {
    /// The settings of `config`.
    pub fn new(config: &Config) -> Self {
        let server = &config.server;
        Self::with(
            server.max_body_bytes,
            Duration::from_secs(server.body_read_timeout_secs),
            server.max_bodies_in_flight,
        )
    }

    /// Settings of their own.
    pub fn with(max_body_bytes: usize, body_read_timeout: Duration, bodies_in_flight: usize) -> Self {
        Self { max_body_bytes, body_read_timeout, turns: Arc::new(Semaphore::new(bodies_in_flight)) }
    }

    /// Admits a request and reads its body. `refuse_draining` is set when the
    /// site drains and could only serve the request itself; `content_type`
    /// and `declared_length` are what its headers say. The turn returned is
    /// held until the body is understood.
    pub async fn admit(
        &self,
        refuse_draining: bool,
        content_type: Option<&str>,
        declared_length: Option<u64>,
        body: Body,
    ) -> Result<(Bytes, ReadingTurn), ApiError> {
        if refuse_draining {
            return Err(ApiError::site_draining());
        }
        check_content_type(content_type.unwrap_or(""))?;
        let limit = self.max_body_bytes;
        if declared_length.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::request_too_large(limit));
        }
        let seconds = self.body_read_timeout.as_secs();
        let turn = tokio::time::timeout(self.body_read_timeout, Arc::clone(&self.turns).acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| ApiError::reading_full(seconds))?;
        let read = tokio::time::timeout(self.body_read_timeout, http_body_util::Limited::new(body, limit).collect());
        match read.await {
            Err(_) => Err(ApiError::body_too_slow(seconds)),
            Ok(Ok(collected)) => Ok((collected.to_bytes(), ReadingTurn { _permit: Arc::new(turn) })),
            Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::request_too_large(limit)),
            Ok(Err(err)) => Err(ApiError::invalid_request(format!("the request body could not be read: {err}"), None)),
        }
    }
}

fn check_content_type(content_type: &str) -> Result<(), ApiError> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    let shown = if content_type.is_empty() { "none".to_owned() } else { format!("'{essence}'") };
    Err(ApiError::unsupported_media_type(&shown))
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    const JSON: Option<&str> = Some("application/json; charset=utf-8");

    #[tokio::test]
    async fn a_json_body_within_the_limit_is_read() {
        let admission = Admission::with(16, Duration::from_secs(5), 2);
        let (body, _turn) = admission.admit(false, JSON, None, Body::from("{\"a\":1}")).await.unwrap();
        assert_eq!(&body[..], b"{\"a\":1}");
        let exact = admission.admit(false, Some("Application/JSON"), Some(16), Body::from("x".repeat(16))).await;
        assert_eq!(exact.unwrap().0.len(), 16, "a body of exactly the limit is taken");
    }

    #[tokio::test]
    async fn what_the_site_does_not_take_is_refused_with_its_reason() {
        let admission = Admission::with(4, Duration::from_secs(5), 1);
        let draining = admission.admit(true, JSON, None, Body::from("{}")).await.unwrap_err();
        assert_eq!(draining.code, Some("site_draining"));
        let declared = admission.admit(false, JSON, Some(100), Body::from("{}")).await.unwrap_err();
        assert_eq!((declared.status, declared.code), (StatusCode::PAYLOAD_TOO_LARGE, Some("request_too_large")));
        let streamed = admission.admit(false, JSON, None, Body::from("{\"long\":1}")).await.unwrap_err();
        assert_eq!(streamed.code, Some("request_too_large"));
        let wrong = admission.admit(false, Some("text/plain"), None, Body::from("{}")).await.unwrap_err();
        assert_eq!((wrong.status, wrong.code), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")));
        assert!(wrong.message.contains("'text/plain'"), "{}", wrong.message);
        let none = admission.admit(false, None, None, Body::from("{}")).await.unwrap_err();
        assert!(none.message.contains("got none"), "{}", none.message);
    }

    #[tokio::test]
    async fn a_slow_body_times_out_and_a_request_waits_its_turn_no_longer_than_a_body_has() {
        let admission = Admission::with(1024, Duration::from_millis(200), 1);
        // A body that never ends.
        let silent = Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
        let slow = admission.admit(false, JSON, None, silent).await.unwrap_err();
        assert_eq!((slow.status, slow.code), (StatusCode::REQUEST_TIMEOUT, Some("request_timeout")));
        // While one turn is held, the next request waits, then is refused.
        let (_body, turn) = admission.admit(false, JSON, None, Body::from("{}")).await.unwrap();
        let busy = admission.admit(false, JSON, None, Body::from("{}")).await.unwrap_err();
        assert_eq!((busy.status, busy.code), (StatusCode::SERVICE_UNAVAILABLE, Some("site_busy")));
        drop(turn);
        assert!(admission.admit(false, JSON, None, Body::from("{}")).await.is_ok(), "the turn came back");
    }
}
