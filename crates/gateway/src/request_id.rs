//! `x-request-id`: the site assigns its own to every request and sets it on
//! every response. A client's well-formed `x-request-id` is kept beside it
//! ([`ClientRequestId`], recorded in the audit entry), never used as the
//! site's: a caller cannot choose what the log files its request under. A
//! request carrying a peer site's assertion keeps the forwarding site's id,
//! which the identify stage checks against the assertion's `rid`, so that
//! both sites' entries share it.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;

/// The header name.
pub const HEADER: &str = "x-request-id";

/// The request id of the request being served (a request extension).
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

/// The `x-request-id` a client sent, when well-formed and not the site's id.
#[derive(Clone, Debug)]
pub struct ClientRequestId(pub String);

/// Whether a client-supplied id may be used: 1 to 128 characters of
/// letters, digits and `-_.:`, so it is safe in logs and headers.
pub fn is_well_formed(id: &[u8]) -> bool {
    (1..=128).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

fn generate() -> HeaderValue {
    let id = uuid::Uuid::new_v4();
    let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
    HeaderValue::from_str(id.simple().encode_lower(&mut buf)).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Middleware that assigns the request id and copies it onto the response.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let sent = request.headers().get(HEADER).filter(|v| is_well_formed(v.as_bytes())).cloned();
    let from_peer = request.headers().contains_key(rampart_identity::ASSERTION_HEADER);
    let id = match (sent, from_peer) {
        (Some(sent), true) => sent,
        (Some(sent), false) => {
            let client = sent.to_str().unwrap_or_default().to_owned();
            request.extensions_mut().insert(ClientRequestId(client));
            generate()
        }
        (None, _) => generate(),
    };
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    response.headers_mut().insert(HEADER, id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_safe_ids() {
        assert!(is_well_formed(b"abc-123_x.y:z"));
        assert!(!is_well_formed(b""));
        assert!(!is_well_formed(b"has space"));
        assert!(!is_well_formed(b"new\nline"));
        assert!(!is_well_formed(&[b'a'; 129]));
        assert!(is_well_formed(generate().as_bytes()));
    }
}
