//! The admit stage's layer: whether the site takes the request (not while it
//! drains, unless only a peer site could serve it), then its body, read
//! within the site's limit and left for the stages after it.

use std::sync::Arc;

use axum::extract::Request;
use bytes::Bytes;
use http::header;
use rampart_api::ApiError;

use super::{Stage, earlier};
use rampart_identity::IdentityError;

use crate::identify::{Caller, unidentified};
use crate::state::Shared;
use crate::trail::Notes;

/// The request's body, as the admit stage read it.
#[derive(Clone)]
pub struct Admitted(pub Bytes);

/// The admit stage.
#[derive(Clone)]
pub struct Admit(pub Arc<Shared>);

impl Stage for Admit {
    async fn enter(&self, request: &mut Request) -> Result<(), ApiError> {
        let shared = &self.0;
        let vouched_body = earlier::<Caller>(request)?.vouched.as_ref().map(|v| v.body.clone());
        let forwarded = vouched_body.is_some();
        let notes = earlier::<Notes>(request)?.clone();
        // A draining site still forwards to its peers; what only it could serve is refused.
        let refuse_draining = shared.draining().is_some() && (forwarded || shared.federation.is_none());
        let body = std::mem::take(request.body_mut());
        let headers = request.headers();
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let declared_length =
            headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let (bytes, turn) = shared.admission.admit(refuse_draining, content_type, declared_length, body).await?;
        // A peer's assertion holds for the body it was made for, and no other.
        if vouched_body.is_some_and(|digest| digest != rampart_identity::body_digest(&bytes)) {
            let mismatch = IdentityError::InvalidAssertion("made for another body than this request's".into());
            return Err(unidentified(&mismatch));
        }
        if let Some(trail) = &shared.trail {
            let digest = trail.request_digest(&bytes);
            notes.note(|draft| draft.request_digest(digest));
        }
        request.extensions_mut().insert(Admitted(bytes));
        // The request's turn at being read and understood, until the label stage has read its labels.
        request.extensions_mut().insert(turn);
        Ok(())
    }
}
