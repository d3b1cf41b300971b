//! `x-request-id`: accepted from the client when well-formed, generated
//! otherwise, and set on every response.

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
    let id = match request.headers().get(HEADER) {
        Some(value) if is_well_formed(value.as_bytes()) => value.clone(),
        _ => generate(),
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
