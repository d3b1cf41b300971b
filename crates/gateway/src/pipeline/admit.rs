//! The admit stage's layer: whether the site takes the request (not while it
//! drains, unless only a peer site could serve it), then its body, read
//! within the site's limit and left for the stages after it.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::header;

use super::earlier;
use crate::error::ErrorResponse;
use crate::identify::Caller;
use crate::state::Worker;
use crate::trail::Notes;

/// The request's body, as the admit stage read it.
#[derive(Clone)]
pub struct Admitted(pub Bytes);

/// The admit stage's layer.
pub async fn layer(State(w): State<Worker>, request: Request, next: Next) -> Result<Response, ErrorResponse> {
    let forwarded = earlier::<Caller>(&request)?.vouched.is_some();
    let notes = earlier::<Notes>(&request)?.clone();
    // A draining site still forwards to its peers; what only it could serve is refused.
    let refuse_draining = w.shared.draining().is_some() && (forwarded || w.shared.federation.is_none());
    let (mut parts, body) = request.into_parts();
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let declared_length =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let bytes = w.shared.admission.admit(refuse_draining, content_type, declared_length, body).await?;
    notes.note(|draft| draft.body(&bytes));
    parts.extensions.insert(Admitted(bytes));
    Ok(next.run(Request::from_parts(parts, Body::empty())).await)
}
