//! The authorize stage's layers: Cedar's decision, noted in the audit draft
//! and enforced. Only this stage leaves [`Authorized`] on a request, and
//! every handler that serves anything takes it, so nothing is served that
//! this stage did not allow.

use std::sync::Arc;

use axum::extract::Request;
use rampart_api::ApiError;
use rampart_identity::Principal;
use rampart_labels::{Denial, Label};
use rampart_policy::{Action, Decision, Refusal};

use super::label::RequestLabel;
use super::{Stage, earlier};
use crate::authorize::{Authorization, enforce};
use crate::identify::Caller;
use crate::library::{RetrieveRequest, may_read, withheld};
use crate::request::Parsed;
use crate::state::Shared;
use crate::trail::Notes;

/// The mark of a request the authorize stage allowed (made only here).
#[derive(Clone)]
pub struct Authorized(());

/// The decision on a request about the site itself, rather than a model.
pub type SiteDecision = fn(&Authorization, &Principal) -> Decision;

/// The authorize stage of inference requests: the caller, the model and the request's label.
#[derive(Clone)]
pub struct AuthorizeInference(pub Arc<Shared>);

/// The authorize stage of requests about the site itself (its audit log, its metrics).
#[derive(Clone)]
pub struct AuthorizeSite(pub Arc<Shared>, pub SiteDecision);

impl Stage for AuthorizeInference {
    async fn enter(&self, request: &mut Request) -> Result<(), ApiError> {
        let principal = &earlier::<Caller>(request)?.principal;
        let model = earlier::<Parsed>(request)?.model();
        let label = &earlier::<RequestLabel>(request)?.0;
        let decision = self.0.security.authorization.authorize(principal, Action::Infer, model, label);
        allow(request, &decision)
    }
}

/// The retrieve route's authorize stage: Cedar decides on each collection, at the request's label.
#[derive(Clone)]
pub struct AuthorizeRetrieve(pub Arc<Shared>);

impl Stage for AuthorizeRetrieve {
    async fn enter(&self, request: &mut Request) -> Result<(), ApiError> {
        let principal = &earlier::<Caller>(request)?.principal;
        let RequestLabel(label, declared) = earlier::<RequestLabel>(request)?;
        // The request's own label first: a refusal of it says nothing of any collection.
        if let Err(denial) = principal.clearance.check(label) {
            let refusal = match denial {
                Denial::Permissive(_) => Refusal::NotReleasable,
                _ => Refusal::LabelExceedsClearance,
            };
            return allow(request, &Decision { refusal: Some(refusal), policies: Vec::new() });
        }
        let readable = |portion: &Label| may_read(&principal.clearance, declared.as_ref(), portion);
        let collections = &earlier::<RetrieveRequest>(request)?.collections;
        let notes = earlier::<Notes>(request)?;
        let decision = decide_collections(&self.0, principal, label, collections, &readable, notes)?;
        allow(request, &decision)
    }
}

/// Cedar's decision on retrieving from `collections` at `label`, the last
/// collection's unless one refuses. In the order asked, the first collection
/// that is not served, that a policy forbids, or that `readable` admits nothing
/// of is answered as one that does not exist: the same answer whatever the
/// reason and whatever the others are, so that no refusal confirms a
/// collection; the audit entry keeps the decision and the true reason.
pub fn decide_collections(
    shared: &Shared,
    principal: &Principal,
    label: &Label,
    collections: &[String],
    readable: &dyn Fn(&Label) -> bool,
    notes: &Notes,
) -> Result<Decision, ApiError> {
    let authorization = &shared.security.authorization;
    let library = &shared.library;
    let mut last = None;
    for collection in collections {
        let (decision, reason) = match library.contains(collection) {
            false => (None, Some("not served here")),
            true => {
                let decision = authorization.authorize_retrieve(principal, collection, label);
                let reason = match decision.refusal {
                    Some(Refusal::PolicyForbids) => Some("forbidden by policy"),
                    None if !library.readable_any(collection, readable) => Some("nothing readable"),
                    _ => None,
                };
                (Some(decision), reason)
            }
        };
        if let Some(reason) = reason {
            let retrieved = withheld(collections, collection, reason);
            notes.note(|draft| {
                if let Some(decision) = &decision {
                    draft.decided(decision);
                }
                draft.retrieved(retrieved);
            });
            return Err(ApiError::collection_not_found(collection));
        }
        let refused = decision.as_ref().is_some_and(|d| !d.allowed());
        last = decision;
        if refused {
            break;
        }
    }
    // The parse stage admits no request without a collection; were there one, it is refused.
    Ok(last.unwrap_or(Decision { refusal: Some(Refusal::PolicyError), policies: Vec::new() }))
}

impl Stage for AuthorizeSite {
    async fn enter(&self, request: &mut Request) -> Result<(), ApiError> {
        let decision = (self.1)(&self.0.security.authorization, &earlier::<Caller>(request)?.principal);
        allow(request, &decision)
    }
}

/// Notes `decision` and enforces it; allowed, the request gets the [`Authorized`] mark.
pub fn allow(request: &mut Request, decision: &Decision) -> Result<(), ApiError> {
    earlier::<Notes>(request)?.note(|draft| draft.decided(decision));
    enforce(decision)?;
    request.extensions_mut().insert(Authorized(()));
    Ok(())
}
