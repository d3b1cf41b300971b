//! The serve stage, terminal: a request allowed and placed is served by this
//! site (its embedded engine or its backends) or, when the placement says so
//! or this site fails, forwarded to an eligible peer site. A peer's answer is
//! released only when it carries a label covering the request's.

use axum::response::Response;
use rampart_api::ApiError;
use rampart_identity::Principal;
use rampart_labels::{Label, Policies};

use crate::labelled_stream::{LABEL_HEADER, label_response};
use crate::labelling::without_extension;
use crate::metrics::InFlight;
use crate::placement::Plan;
use crate::proxy::{self, Call, Upstreams};
use crate::request::{Parsed, single_header};
use crate::state::{ModelEntry, Worker};

/// What the serve stage needs of the stages before it.
pub struct Allowed<'a> {
    /// The parsed request.
    pub parsed: Parsed,
    /// How the model is served here.
    pub entry: &'a ModelEntry,
    /// The identified caller.
    pub principal: &'a Principal,
    /// The request's effective label.
    pub label: &'a Label,
    /// Where the request may be served, with `[[sites]]`.
    pub plan: Option<Plan>,
    /// Whether a peer site forwarded this request (then it is never sent on).
    pub forwarded: bool,
}

/// Serves `call` here or at a peer site; the answer carries the request's label.
pub async fn serve(
    w: &Worker,
    call: Call<'_>,
    allowed: Allowed<'_>,
    in_flight: InFlight,
) -> Result<Response, ApiError> {
    let Allowed { parsed, entry, principal, label, plan, forwarded } = allowed;
    let local = plan.as_ref().is_none_or(|p| p.local);
    let peers = match (&plan, &w.shared.federation) {
        (Some(plan), Some(federation)) if !forwarded => federation.candidates(&plan.eligible),
        _ => Vec::new(),
    };
    if local {
        match serve_here(w, entry, &call, parsed, in_flight.clone()).await {
            Ok(response) => return label_response(response, label, w.shared.security.labels()).await,
            Err(err) if peers.is_empty() || !err.status.is_server_error() => return Err(err),
            Err(err) => {
                let code = err.code.unwrap_or_default();
                tracing::warn!(
                    request_id = call.id.as_str(),
                    code,
                    "this site could not serve the request; trying peer sites"
                );
            }
        }
    }
    let federation = w.shared.federation.as_ref().ok_or_else(|| ApiError::site_not_eligible("placement"))?;
    let upstreams = Upstreams::Peers { federation, principal, label };
    let response = proxy::forward(w, call, upstreams, &peers, in_flight).await?;
    accept_peer_answer(w.shared.security.labels(), response, label)
}

/// Releases a peer site's answer only when, if successful, it carries a
/// label at least as high as this request's (the peer joined the label it
/// was sent with its own reading, and labelled its body itself).
fn accept_peer_answer(labels: &Policies, response: Response, label: &Label) -> Result<Response, ApiError> {
    if !response.status().is_success() {
        return Ok(response);
    }
    let theirs = single_header(response.headers(), &LABEL_HEADER).ok().flatten().and_then(|v| v.to_str().ok());
    match theirs.map(|text| labels.parse_label(text)) {
        Some(Ok(theirs)) if theirs.dominates(label) => Ok(response),
        _ => Err(ApiError::peer_label_invalid()),
    }
}

/// Serves a request on this site: its engine or its backends (without the `rampart` member).
async fn serve_here(
    w: &Worker,
    entry: &ModelEntry,
    call: &Call<'_>,
    parsed: Parsed,
    in_flight: InFlight,
) -> Result<Response, ApiError> {
    match entry {
        ModelEntry::Remote(backends) => {
            let local = Call { body: without_extension(call.body.clone()), ..*call };
            proxy::forward(w, local, Upstreams::Local, backends, in_flight).await
        }
        ModelEntry::Embedded(engine) => {
            crate::embedded::serve(w, engine, call.route, parsed, call.id, call.started, in_flight).await
        }
        // Placement lists this site for a model it does not serve only when misconfigured.
        ModelEntry::Peers => Err(ApiError::site_not_eligible("model")),
    }
}
