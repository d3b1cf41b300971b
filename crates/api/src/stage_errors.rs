//! Named errors of the gateway's stages, beyond a bad body or parameter (in
//! `error`): the route and transport, identity and policy refusals, the audit
//! log, upstream backends and peer sites, the embedded engine. Every error
//! the gateway answers with is built here, so a code means one thing.

use http::StatusCode;

use crate::error::{ApiError, ErrorKind};

impl ApiError {
    /// 404 for a path that is no route of the API.
    pub fn unknown_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFoundError,
            "unknown_route",
            format!("no route {path}; the API is under /v1"),
        )
    }

    /// 405 for a known route called with another HTTP method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::InvalidRequestError,
            "method_not_allowed",
            "this route does not accept that HTTP method",
        )
    }

    /// 415 for a body not sent as JSON (`shown`: the content type received, or `none`).
    pub fn unsupported_media_type(shown: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::InvalidRequestError,
            "unsupported_media_type",
            format!("the body must be JSON sent with 'Content-Type: application/json' (got {shown})"),
        )
    }

    /// 413 for a body over the site's limit of `limit` bytes.
    pub fn request_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::InvalidRequestError,
            "request_too_large",
            format!("the request body is larger than this site's limit of {limit} bytes (server.max_body_bytes)"),
        )
    }

    /// 400: a parameter the model's engine would not honour as asked.
    pub fn unsupported_parameter(param: &str) -> Self {
        // A member's name is the caller's text: long ones are not echoed whole.
        let param = &shortened(param);
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequestError,
            "unsupported_parameter",
            format!(
                "'{param}' is not supported by this model (Rampart's embedded engine), so the request is refused rather than answered without it; docs/api.md lists what each engine honours"
            ),
        )
        .with_param(param)
    }

    /// 408: the request's body did not arrive within the site's time for it.
    pub fn body_too_slow(seconds: u64) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorKind::InvalidRequestError,
            "request_timeout",
            format!("the request body did not arrive within {seconds} s (server.body_read_timeout_secs)"),
        )
    }

    /// 503: the site is reading as many request bodies as it may at once, and
    /// none finished within the time a body has.
    pub fn reading_full(seconds: u64) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::ServerError,
            "site_busy",
            format!(
                "the site is reading as many requests as it may at once (server.max_bodies_in_flight) and none finished within {seconds} s; retry"
            ),
        )
        .with_retry_after(1)
    }

    /// The caller could not be identified (401, `code` says why), or the
    /// site cannot identify anyone right now (`site_fault`: 503).
    pub fn unidentified(code: &'static str, message: String, site_fault: bool) -> Self {
        if site_fault {
            Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorKind::ServerError, code, message)
        } else {
            Self::new(StatusCode::UNAUTHORIZED, ErrorKind::AuthenticationError, code, message)
        }
    }

    /// 403: the policy refused the request (`code`: the rule); the message
    /// names the rule and the policies that decided, never the request's content.
    pub fn refused(code: &'static str, message: String) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorKind::PermissionError, code, message)
    }

    /// 503: the request's audit entry cannot be made durable, so it is not served.
    pub fn audit_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::ServerError,
            "audit_unavailable",
            "this request was not served because the audit log cannot be written; the site operator has been alerted",
        )
    }

    /// 503: a file of the published audit log cannot be read right now.
    pub fn audit_unreadable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::ServerError,
            "audit_unavailable",
            "the audit log cannot be read right now",
        )
    }

    /// 404 for a path that is no file of the published audit log.
    pub fn audit_file_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFoundError,
            "not_found",
            format!("the audit log has no file '{path}' (paths follow C2SP tlog-tiles: checkpoint, tile/...)"),
        )
    }

    /// 500: a stage found the result of a stage that runs before it missing
    /// (the stages composed out of order); the request is refused, never served.
    pub fn stage_missing() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::ServerError,
            "stage_missing",
            "this request was refused: a check it must pass did not run; the site operator has been alerted",
        )
    }

    /// 502: an upstream answer failed in the way `detail` describes.
    pub fn upstream_error(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, ErrorKind::ServerError, "upstream_error", detail)
    }

    /// 429: this worker is running as many retrievals as it may at once.
    pub fn retrievals_saturated() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::RateLimitError,
            "too_many_retrievals",
            "this site is running as many retrievals as it may at once; retry shortly",
        )
        .with_retry_after(1)
    }

    /// 503: every backend serving `model` is at its concurrency limit.
    pub fn upstream_saturated(model: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::ServerError,
            "upstream_saturated",
            format!("every backend serving '{model}' is at its concurrency limit; retry shortly"),
        )
        .with_retry_after(1)
    }

    /// 502: no backend serving `model` could be reached (`tried`: how many, in words).
    pub fn upstream_unreachable(model: &str, tried: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            ErrorKind::ServerError,
            "upstream_unreachable",
            format!("no backend serving '{model}' could be reached ({tried} tried)"),
        )
    }

    /// 504: no backend serving `model` answered within `limit_ms`.
    pub fn upstream_timeout(model: &str, limit_ms: u128, tried: &str) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::ServerError,
            "upstream_timeout",
            format!("no backend serving '{model}' answered within {limit_ms} ms ({tried} tried)"),
        )
    }

    /// 403: a peer site's answer is labelled above what the caller may read, so it is withheld.
    pub fn peer_answer_above_clearance() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ErrorKind::PermissionError,
            "peer_answer_above_clearance",
            "the peer site's answer is labelled above what the caller may read, so it was not released",
        )
    }

    /// 502: a peer site answered without a label covering the request's, so its answer is withheld.
    pub fn peer_label_invalid() -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            ErrorKind::ServerError,
            "peer_label_invalid",
            "the peer site's answer does not carry a label covering this request's, so it was not released",
        )
    }

    /// 502: the model's answer carries a marking above the request's label
    /// (`label`, its banner), so it is withheld; the marking found is not named.
    pub fn answer_above_label(label: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            ErrorKind::ServerError,
            "answer_above_label",
            format!(
                "the model's answer carries a marking above this request's label ({label}), so it was withheld; \
                 a caller cleared for more may send the request again with a Rampart-Label that covers it"
            ),
        )
    }

    /// 404: no collection of this name is served here.
    pub fn collection_not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFoundError,
            "collection_not_found",
            format!("no collection '{name}' is served here"),
        )
        .with_param("collections")
    }

    /// 500: retrieval failed (the index or the embedding model).
    pub fn retrieval_failed(message: String) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::ServerError, "retrieval_failed", message)
    }

    /// 500: this site could not sign the assertion a peer site needs.
    pub fn assertion_failed() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::ServerError,
            "assertion_failed",
            "this site could not sign the assertion a peer site needs",
        )
    }

    /// 400: the model has no chat template, so it cannot answer chat requests.
    pub fn model_cannot_chat(message: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidRequestError, "model_cannot_chat", message)
    }

    /// 400: the prompt (at `param`) is longer than the model's context.
    pub fn context_length_exceeded(param: &str, message: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidRequestError, "context_length_exceeded", message)
            .with_param(param)
    }

    /// 429: the embedded engine's queue is full.
    pub fn engine_busy(message: String) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, ErrorKind::RateLimitError, "engine_busy", message).with_retry_after(1)
    }

    /// 503: the embedded engine is stopped or its model did not load.
    pub fn engine_unavailable(message: String) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorKind::ServerError, "engine_unavailable", message)
    }

    /// 500: the embedded engine failed while generating.
    pub fn engine_failed(message: String) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::ServerError, "engine_failed", message)
    }
}

/// `text` when short; otherwise its first 64 characters and an ellipsis.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_member_name_is_not_echoed_whole() {
        let name = "k".repeat(100_000);
        let refused = ApiError::unsupported_parameter(&name);
        assert_eq!(refused.param.as_deref().map(|p| p.chars().count()), Some(65));
        assert!(refused.message.len() < 400, "{}", refused.message);
        assert_eq!(ApiError::unsupported_parameter("logprobs").param.as_deref(), Some("logprobs"));
    }

    #[test]
    fn a_value_sent_is_never_quoted_back() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":"PROMPT TEXT"}"#;
        let refused = crate::parse_json::<crate::ChatCompletionRequest>(body).unwrap_err();
        assert!(!refused.message.contains("PROMPT"), "{}", refused.message);
        assert!(refused.message.contains("a string"), "{}", refused.message);
    }

    #[test]
    fn each_error_has_the_status_kind_and_code_clients_branch_on() {
        let cases = [
            (ApiError::unknown_route("/x"), 404, ErrorKind::NotFoundError, "unknown_route"),
            (ApiError::method_not_allowed(), 405, ErrorKind::InvalidRequestError, "method_not_allowed"),
            (ApiError::unsupported_media_type("none"), 415, ErrorKind::InvalidRequestError, "unsupported_media_type"),
            (ApiError::request_too_large(4), 413, ErrorKind::InvalidRequestError, "request_too_large"),
            (ApiError::unsupported_parameter("logprobs"), 400, ErrorKind::InvalidRequestError, "unsupported_parameter"),
            (ApiError::body_too_slow(30), 408, ErrorKind::InvalidRequestError, "request_timeout"),
            (ApiError::reading_full(30), 503, ErrorKind::ServerError, "site_busy"),
            (
                ApiError::unidentified("token_expired", "x".into(), false),
                401,
                ErrorKind::AuthenticationError,
                "token_expired",
            ),
            (
                ApiError::unidentified("directory_unavailable", "x".into(), true),
                503,
                ErrorKind::ServerError,
                "directory_unavailable",
            ),
            (ApiError::refused("not_releasable", "x".into()), 403, ErrorKind::PermissionError, "not_releasable"),
            (ApiError::audit_unavailable(), 503, ErrorKind::ServerError, "audit_unavailable"),
            (ApiError::audit_file_not_found("tile/x"), 404, ErrorKind::NotFoundError, "not_found"),
            (ApiError::stage_missing(), 500, ErrorKind::ServerError, "stage_missing"),
            (ApiError::upstream_error("x"), 502, ErrorKind::ServerError, "upstream_error"),
            (ApiError::upstream_saturated("m"), 503, ErrorKind::ServerError, "upstream_saturated"),
            (ApiError::upstream_timeout("m", 5, "1 backend"), 504, ErrorKind::ServerError, "upstream_timeout"),
            (ApiError::engine_busy("x".into()), 429, ErrorKind::RateLimitError, "engine_busy"),
            (ApiError::answer_above_label("NATO UNCLASSIFIED"), 502, ErrorKind::ServerError, "answer_above_label"),
            (ApiError::collection_not_found("x"), 404, ErrorKind::NotFoundError, "collection_not_found"),
        ];
        for (err, status, kind, code) in cases {
            assert_eq!((err.status.as_u16(), err.kind, err.code), (status, kind, Some(code)), "{err}");
            assert!(!err.message.is_empty());
        }
        assert_eq!(ApiError::upstream_saturated("m").retry_after, Some(1));
        assert_eq!(ApiError::context_length_exceeded("messages", "x".into()).param.as_deref(), Some("messages"));
    }
}
