//! The serve stage, terminal: a request allowed and placed is served by this
//! site (its embedded engine or its backends) or, when the placement says so
//! or this site fails, forwarded to an eligible peer site. A peer's answer is
//! released only after every check a local answer gets (see `peer_answer`).

use axum::response::Response;
use rampart_api::ApiError;
use rampart_identity::Principal;
use rampart_labels::Label;

use crate::labelled_stream::label_response;
use crate::labelling::without_extension;
use crate::metrics::InFlight;
use crate::placement::Plan;
use crate::proxy::{self, Call, Upstreams};
use crate::request::Parsed;
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
    crate::peer_answer::accept(w.shared.security.labels(), response, label, principal).await
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
