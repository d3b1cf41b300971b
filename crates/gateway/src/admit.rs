//! The admit stage: whether the site takes the request at all (not while it
//! drains, unless only a peer site can serve it), that its body is JSON, and
//! that the body fits the site's limit; then the body is read.

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use rampart_api::ApiError;
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
    /// site drains and could only serve the request itself; `content_type`
    /// and `declared_length` are what its headers say.
    pub async fn admit(
        &self,
        refuse_draining: bool,
        content_type: Option<&str>,
        declared_length: Option<u64>,
        body: Body,
    ) -> Result<Bytes, ApiError> {
        if refuse_draining {
            return Err(ApiError::site_draining());
        }
        check_content_type(content_type.unwrap_or(""))?;
        let limit = self.max_body_bytes;
        if declared_length.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::request_too_large(limit));
        }
        match http_body_util::Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::request_too_large(limit)),
            Err(err) => Err(ApiError::invalid_request(format!("the request body could not be read: {err}"), None)),
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
        let admission = Admission { max_body_bytes: 16 };
        let body = admission.admit(false, JSON, None, Body::from("{\"a\":1}")).await.unwrap();
        assert_eq!(&body[..], b"{\"a\":1}");
        let exact = admission.admit(false, Some("Application/JSON"), Some(16), Body::from("x".repeat(16))).await;
        assert_eq!(exact.unwrap().len(), 16, "a body of exactly the limit is taken");
    }

    #[tokio::test]
    async fn what_the_site_does_not_take_is_refused_with_its_reason() {
        let admission = Admission { max_body_bytes: 4 };
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
}
