//! Turning [`ApiError`]s into HTTP responses in OpenAI's error format.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use rampart_api::ApiError;

/// An [`ApiError`] that axum can return. The response carries the error as
/// an extension too, for the audit stage to record its code.
pub struct ErrorResponse(pub ApiError);

impl From<ApiError> for ErrorResponse {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let err = self.0;
        let mut response = (err.status, err.to_json()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(seconds) = err.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(err);
        response
    }
}

/// An error as the event that ends a stream (`data: {"error":...}`), in OpenAI's format.
pub fn error_event(err: &ApiError) -> bytes::Bytes {
    let mut event = b"data: ".to_vec();
    event.extend_from_slice(&err.to_json());
    event.extend_from_slice(b"\n\n");
    bytes::Bytes::from(event)
}

/// The response for a route that does not exist.
pub async fn no_such_route(uri: http::Uri) -> ErrorResponse {
    ErrorResponse(ApiError::unknown_route(uri.path()))
}

/// The response for a known route called with the wrong method.
pub async fn wrong_method() -> ErrorResponse {
    ErrorResponse(ApiError::method_not_allowed())
}

/// Refuses an HTTP/1.1 request without a `Host` header (RFC 9112 §3.2 requires
/// one; HTTP/2 carries `:authority` instead), and any with two or a malformed
/// one, before anything else reads it.
pub async fn require_host(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let refused = |message: &str| {
        let refusal = ApiError::new(
            http::StatusCode::BAD_REQUEST,
            rampart_api::ErrorKind::InvalidRequestError,
            "missing_host",
            message,
        );
        ErrorResponse(refusal).into_response()
    };
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let (first, second) = (hosts.next(), hosts.next());
    if request.version() == http::Version::HTTP_11 && first.is_none() {
        return refused("an HTTP/1.1 request must carry a Host header (RFC 9112)");
    }
    // RFC 9112 §3.2: more than one Host, or one that is not a host[:port], is refused.
    let malformed = first.is_some_and(|host| host.as_bytes().iter().any(|b| b.is_ascii_whitespace() || *b == b','));
    if second.is_some() || malformed {
        return refused("a request carries exactly one Host header, a host name and optional port (RFC 9112)");
    }
    next.run(request).await
}
