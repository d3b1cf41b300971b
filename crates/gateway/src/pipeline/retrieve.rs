//! The retrieve route's stages (see `library`): its parse stage and its
//! terminal handler; its authorize stage, Cedar on every collection asked, is
//! `authorize::AuthorizeRetrieve`. The handler ranks only the portions the
//! caller may read — their clearance, releasability included, and the label
//! the request declares, if it declares one, as a ceiling — and labels the
//! answer with the join of the request's label and every portion returned.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse as _, Response};
use rampart_api::ApiError;
use rampart_labels::Label;
use serde_json::json;

use super::admit::Admitted;
use super::authorize::Authorized;
use super::label::RequestLabel;
use super::{Earlier, Stage, earlier};
use crate::error::ErrorResponse;
use crate::identify::Caller;
use crate::labelled_stream::label_response;
use crate::library::{Found, RetrieveRequest, may_read, retrieved};
use crate::state::Worker;
use crate::trail::Notes;

/// The retrieve route's parse stage: the body as a [`RetrieveRequest`].
#[derive(Clone)]
pub struct ParseRetrieve;

impl Stage for ParseRetrieve {
    async fn enter(&self, request: &mut Request) -> Result<(), ApiError> {
        // Collections not served here are answered by the authorize stage, in order with the others.
        let ask = RetrieveRequest::parse(&earlier::<Admitted>(request)?.0)?;
        request.extensions_mut().insert(ask);
        Ok(())
    }
}

/// The retrieve route's handler.
pub async fn handler(
    State(w): State<Worker>,
    Earlier(caller): Earlier<Caller>,
    Earlier(ask): Earlier<RetrieveRequest>,
    Earlier(RequestLabel(label, declared)): Earlier<RequestLabel>,
    Earlier(_): Earlier<Authorized>,
    Earlier(notes): Earlier<Notes>,
) -> Result<Response, ErrorResponse> {
    let Ok(_running) = Arc::clone(&w.retrievals).try_acquire_owned() else {
        return Err(ApiError::retrievals_saturated().into());
    };
    let clearance = caller.principal.clearance.clone();
    let may_read = move |portion: &Label| may_read(&clearance, declared.as_ref(), portion);
    let shared = Arc::clone(&w.shared);
    let searched = tokio::task::spawn_blocking(move || {
        let found = shared.library.retrieve(&ask.collections, &ask.query, &may_read, ask.top_k())?;
        Ok::<_, ApiError>((ask.collections, found))
    })
    .await
    .map_err(|e| ApiError::retrieval_failed(e.to_string()))?;
    let (collections, found) = searched?;
    let policies = w.shared.security.labels();
    // Text leaving the site is read for markings like any other: a stored portion holding one
    // above its label (a store edited after ingest) is never released.
    if found.iter().any(|f| policies.scan_markings(f.label.policy(), &f.text).is_some_and(|m| !f.label.dominates(&m))) {
        return Err(ApiError::retrieval_failed(
            "a stored portion holds a marking above its label; re-ingest the collection".into(),
        )
        .into());
    }
    notes.note(|draft| draft.retrieved(retrieved(&collections, &found)));
    let mut answer_label = label;
    for portion in &found {
        answer_label = answer_label.join(&portion.label).map_err(|e| ApiError::retrieval_failed(e.to_string()))?;
    }
    let body = json!({ "results": found.iter().map(result_json).collect::<Vec<_>>() });
    let response = axum::Json(body).into_response();
    Ok(label_response(response, &answer_label, policies).await?)
}

/// One result as the API shows it: the portion named, its score and its text.
fn result_json(found: &Found) -> serde_json::Value {
    let mut result = found.reference();
    result["score"] = json!(found.score);
    result["text"] = json!(found.text);
    result
}
