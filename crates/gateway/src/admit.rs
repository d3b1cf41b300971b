//! The admit stage: whether the site takes the request at all (not while it
//! drains, unless only a peer site can serve it), that its body is JSON, and
//! that the body fits the site's limit; then the body is read.

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use rampart_api::{ApiError, ErrorKind};
use rampart_config::Config;

/// The admit stage's settings, resolved from the configuration at start-up.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    /// `server.max_body_bytes`.
    pub max_body_bytes: usize,
}

impl Admission {
    /// The settings of `config`.
    pub fn new(config: &Config) -> Self {
        Self { max_body_bytes: config.server.max_body_bytes }
    }

    /// Admits a request and reads its body. `refuse_draining` is set when the
    /// site drains and could only serve the request itself.
    pub async fn admit(&self, refuse_draining: bool, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
        if refuse_draining {
            return Err(ApiError::site_draining());
        }
        check_content_type(headers)?;
        read_body(body, headers, self.max_body_bytes).await
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    let shown = if content_type.is_empty() { "none".to_owned() } else { format!("'{essence}'") };
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::InvalidRequestError,
        "unsupported_media_type",
        format!("the body must be JSON sent with 'Content-Type: application/json' (got {shown})"),
    ))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::InvalidRequestError,
        "request_too_large",
        format!("the request body is larger than this site's limit of {limit} bytes (server.max_body_bytes)"),
    )
}

async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Err(err) => Err(ApiError::invalid_request(format!("the request body could not be read: {err}"), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_headers(length: Option<usize>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json; charset=utf-8".parse().unwrap());
        if let Some(length) = length {
            headers.insert(header::CONTENT_LENGTH, length.into());
        }
        headers
    }

    #[tokio::test]
    async fn a_json_body_within_the_limit_is_read() {
        let admission = Admission { max_body_bytes: 16 };
        let body = admission.admit(false, &json_headers(None), Body::from("{\"a\":1}")).await.unwrap();
        assert_eq!(&body[..], b"{\"a\":1}");
    }

    #[tokio::test]
    async fn what_the_site_does_not_take_is_refused_with_its_reason() {
        let admission = Admission { max_body_bytes: 4 };
        let draining = admission.admit(true, &json_headers(None), Body::from("{}")).await.unwrap_err();
        assert_eq!(draining.code, Some("site_draining"));
        let declared = admission.admit(false, &json_headers(Some(100)), Body::from("{}")).await.unwrap_err();
        assert_eq!((declared.status, declared.code), (StatusCode::PAYLOAD_TOO_LARGE, Some("request_too_large")));
        let streamed = admission.admit(false, &json_headers(None), Body::from("{\"long\":1}")).await.unwrap_err();
        assert_eq!(streamed.code, Some("request_too_large"));
        let mut text = HeaderMap::new();
        text.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        let wrong = admission.admit(false, &text, Body::from("{}")).await.unwrap_err();
        assert_eq!((wrong.status, wrong.code), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")));
    }
}
