//! The authorize stage's layers: Cedar's decision, noted in the audit draft
//! and enforced. Only this stage leaves [`Authorized`] on a request, and
//! every handler that serves anything takes it, so nothing is served that
//! this stage did not allow.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use rampart_identity::Principal;
use rampart_policy::{Action, Decision};

use super::earlier;
use super::label::RequestLabel;
use crate::authorize::{Authorization, enforce};
use crate::error::ErrorResponse;
use crate::identify::Caller;
use crate::request::Parsed;
use crate::state::Worker;
use crate::trail::Notes;

/// The mark of a request the authorize stage allowed (made only here).
#[derive(Clone)]
pub struct Authorized(());

/// The decision on a request about the site itself, rather than a model.
pub type SiteDecision = fn(&Authorization, &Principal) -> Decision;

/// The authorize stage of inference requests: the caller, the model and the request's label.
pub async fn inference(State(w): State<Worker>, request: Request, next: Next) -> Result<Response, ErrorResponse> {
    let principal = &earlier::<Caller>(&request)?.principal;
    let model = earlier::<Parsed>(&request)?.model();
    let label = &earlier::<RequestLabel>(&request)?.0;
    let decision = w.shared.security.authorization.authorize(principal, Action::Infer, model, label);
    allow(request, next, &decision).await
}

/// The authorize stage of requests about the site itself (its audit log, its metrics).
pub async fn site(
    State((w, decide)): State<(Worker, SiteDecision)>,
    request: Request,
    next: Next,
) -> Result<Response, ErrorResponse> {
    let decision = decide(&w.shared.security.authorization, &earlier::<Caller>(&request)?.principal);
    allow(request, next, &decision).await
}

async fn allow(mut request: Request, next: Next, decision: &Decision) -> Result<Response, ErrorResponse> {
    earlier::<Notes>(&request)?.note(|draft| draft.decided(decision));
    enforce(decision)?;
    request.extensions_mut().insert(Authorized(()));
    Ok(next.run(request).await)
}
