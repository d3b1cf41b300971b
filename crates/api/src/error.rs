//! Errors in OpenAI's format: `{"error":{"message","type","param","code"}}`.

use http::StatusCode;
use serde::Serialize;

/// The `type` of an OpenAI error, which clients use to classify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request was malformed or asked for something impossible.
    InvalidRequestError,
    /// The caller could not be identified.
    AuthenticationError,
    /// The caller is known but may not do this.
    PermissionError,
    /// The named resource (a model, a route) does not exist.
    NotFoundError,
    /// Too many requests: retry later.
    RateLimitError,
    /// Rampart or an upstream failed.
    ServerError,
}

/// An error returned to API clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status of the response.
    pub status: StatusCode,
    /// Human-readable explanation; never echoes prompt or completion text.
    pub message: String,
    /// Classification for clients.
    pub kind: ErrorKind,
    /// The request parameter at fault, as a path (e.g. `messages[0].role`).
    pub param: Option<String>,
    /// A stable machine-readable code (e.g. `model_not_found`).
    pub code: Option<&'static str>,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: ErrorKind,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    /// A new error with the given status, kind, code and message.
    pub fn new(status: StatusCode, kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), kind, param: None, code: Some(code), retry_after: None }
    }

    /// 400: a malformed body or a bad parameter.
    pub fn invalid_request(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: ErrorKind::InvalidRequestError,
            param: param.map(str::to_owned),
            code: Some(if param.is_some() { "invalid_parameter" } else { "invalid_request" }),
            retry_after: None,
        }
    }

    /// 400 for a parameter with an impossible value.
    pub fn bad_parameter(param: &str, message: impl Into<String>) -> Self {
        Self::invalid_request(format!("invalid value for '{param}': {}", message.into()), Some(param))
    }

    /// 400 for a header that decides identity or label, sent more than once.
    pub fn duplicate_header(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequestError,
            "duplicate_header",
            format!("the {name} header is sent more than once; send it once"),
        )
        .with_param(name)
    }

    /// 400 for a body naming a member twice in one object (at JSON path `path`).
    pub fn duplicate_member(path: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequestError,
            "duplicate_member",
            format!("the body names '{path}' more than once; parsers differ on which one counts, so name it once"),
        )
        .with_param(path)
    }

    /// 400 for content the label stage cannot check for markings (`what`, at `param`).
    pub fn unscannable_content(param: &str, what: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequestError,
            "unscannable_content",
            format!("{what} cannot be checked for security markings, so it is not accepted; send text"),
        )
        .with_param(param)
    }

    /// 400 for a declared security label that is not valid (`param`: where it was declared).
    pub fn invalid_label(param: &str, reason: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequestError,
            "invalid_label",
            format!("the declared security label is not valid: {reason}"),
        )
        .with_param(param)
    }

    /// 404 for a model this site does not serve.
    pub fn model_not_found(model: &str) -> Self {
        let mut err = Self::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFoundError,
            "model_not_found",
            format!("the model '{model}' does not exist on this site; GET /v1/models lists the models you can use"),
        );
        err.param = Some("model".to_owned());
        err
    }

    /// The site takes no new requests while its facility (power, cooling,
    /// physical security) is degraded; the reason stays with the operators.
    pub fn site_draining() -> Self {
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::ServerError,
            "site_draining",
            "this site is not taking new requests while its facility is degraded; send the request to another site"
                .to_owned(),
        );
        err.retry_after = Some(30);
        err
    }

    /// No site may serve the request; `classes` names the kinds of rule that
    /// excluded the sites (model, accreditation, residency, owner, health), never a rule.
    pub fn no_eligible_site(classes: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::ServerError,
            "no_eligible_site",
            format!("no site may serve this request: every site is excluded by {classes} rules"),
        )
    }

    /// This site may not serve the request (the `class` of rule says why) but
    /// another site may: answered to a request a peer forwarded here, which is
    /// never sent on.
    pub fn site_not_eligible(class: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::ServerError,
            "site_not_eligible",
            format!("this site may not serve this request ({class} rules); another site of the alliance may"),
        )
    }

    /// Every site that the rules allow failed or refused to take the request
    /// (`tried` of them); `why` says what each did (unreachable, its own rules, ...).
    pub fn eligible_sites_unavailable(tried: usize, why: &str) -> Self {
        let sites = if tried == 1 {
            "the 1 site its rules allow was".to_owned()
        } else {
            format!("all {tried} sites its rules allow were")
        };
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::ServerError,
            "no_eligible_site",
            format!("no site may serve this request now: {sites} tried ({why})"),
        );
        err.retry_after = Some(5);
        err
    }

    /// Names the parameter at fault.
    #[must_use]
    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    /// Sets the `Retry-After` hint.
    #[must_use]
    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The JSON body of this error.
    pub fn to_json(&self) -> Vec<u8> {
        let envelope = Envelope {
            error: Body { message: &self.message, kind: self.kind, param: self.param.as_deref(), code: self.code },
        };
        serde_json::to_vec(&envelope).unwrap_or_else(|_| {
            br#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#.to_vec()
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_in_openai_shape() {
        let err = ApiError::bad_parameter("temperature", "must be between 0 and 2");
        let json: serde_json::Value = serde_json::from_slice(&err.to_json()).unwrap();
        assert_eq!(json["error"]["type"], "invalid_request_error");
        assert_eq!(json["error"]["param"], "temperature");
        assert_eq!(json["error"]["code"], "invalid_parameter");
        assert!(json["error"]["message"].as_str().unwrap().contains("between 0 and 2"));
    }

    #[test]
    fn model_not_found_is_404() {
        let err = ApiError::model_not_found("nope");
        assert_eq!(err.status, StatusCode::NOT_FOUND);
        assert_eq!(err.code, Some("model_not_found"));
    }
}
