//! The path of every inference request: one stage after another, each in a
//! module of its own, in the order the security argument needs.
//!
//! ```text
//! request id   request_id   (middleware) every request and its answer get an id
//! audit        trail        outermost: the entry is durable before any answer is released
//! identify     identify     who is asking; nothing of an unidentified caller's request is read
//! admit        admit        draining, content type, body limit; the body is read
//! parse        request      the body as an OpenAI request; unscannable content refused
//! label        labelling    declared label joined with every marking in the body
//! authorize    authorize    Cedar: clearance, releasability, accreditation, operator policies
//! place        placement    which sites may serve it (residency, owner rules, health)
//! serve        dispatch     the embedded engine, a backend, or a peer site; the answer labelled
//! ```
//!
//! A new stage (quota, retrieval, admission checks) is a module of its own,
//! called from [`walk`] at its place in this order.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue};
use rampart_api::ApiError;
use rampart_identity::PeerCertificate;
use rampart_labels::Label;
use rampart_policy::Action;

use crate::authorize;
use crate::dispatch::{self, Allowed};
use crate::identify::Vouched;
use crate::labelled_stream::LABEL_HEADER;
use crate::metrics::InFlight;
use crate::placement::Plan;
use crate::proxy::Call;
use crate::request::{Parsed, Route, single_header};
use crate::request_id::RequestId;
use crate::state::Worker;
use crate::trail::{self, Draft};

/// One inference request as it arrived.
pub struct Arrival {
    /// The route called.
    pub route: Route,
    /// Its request id.
    pub id: RequestId,
    /// The client certificate of its connection, if any.
    pub peer: Option<Arc<PeerCertificate>>,
    /// Its headers.
    pub headers: HeaderMap,
    /// When it arrived.
    pub started: Instant,
}

/// Serves one inference request through every stage, records it in the audit
/// log and its metrics.
pub async fn inference(w: Worker, arrival: Arrival, body: Body) -> Response {
    let in_flight = w.shared.metrics.in_flight();
    let mut model = String::new();
    let mut draft = Draft::new(arrival.id.as_str().to_owned(), Action::Infer.name());
    let result = walk(&w, &arrival, body, &mut draft, &mut model, in_flight).await;
    let route = arrival.route;
    if let Err(err) = &result
        && err.status.is_server_error()
    {
        tracing::warn!(request_id = arrival.id.as_str(), route = route.metric_name(), status = err.status.as_u16(), error = %err.message, "request failed");
    }
    let response = trail::settle(w.shared.trail.as_ref(), draft, result).await;
    let metric_model = w.shared.metric_model(&model);
    w.shared.metrics.request(route.metric_name(), metric_model, response.status().as_u16());
    response
}

/// The stages after the audit stage, in order; each notes what it learned in `draft`.
async fn walk(
    w: &Worker,
    arrival: &Arrival,
    body: Body,
    draft: &mut Draft,
    model: &mut String,
    in_flight: InFlight,
) -> Result<Response, ApiError> {
    let Arrival { route, id, peer, headers, started } = arrival;
    // Identify.
    let (principal, vouched) = w.shared.security.identification.authenticate_request(headers, peer.as_deref())?;
    draft.identified(&principal);
    if let Some(vouched) = &vouched {
        draft.forwarded_by(&vouched.site);
    }
    // Admit: a draining site still forwards to its peers; what only it could serve is refused.
    let draining = w.shared.draining().is_some();
    let refuse_draining = draining && (vouched.is_some() || w.shared.federation.is_none());
    let bytes = w.shared.admission.admit(refuse_draining, headers, body).await?;
    draft.body(&bytes);
    // Parse.
    let parsed = Parsed::parse(*route, &bytes)?;
    model.push_str(parsed.model());
    draft.model(model);
    let entry = w.shared.models.get(model.as_str()).ok_or_else(|| ApiError::model_not_found(model))?;
    // Label.
    let label = label(w, headers, &bytes, vouched.as_ref())?;
    draft.labelled(label.banner());
    // Authorize.
    let decision = w.shared.security.authorization.authorize(&principal, Action::Infer, model, &label);
    draft.decided(&decision);
    authorize::enforce(&decision)?;
    // Place.
    let plan = place(w, &principal.nation, &label, model, draining, vouched.is_some())?;
    // Serve.
    let call = Call { route: *route, model, body: bytes, streaming: parsed.streaming(), id, started: *started };
    let allowed = Allowed { parsed, entry, principal: &principal, label: &label, plan, forwarded: vouched.is_some() };
    dispatch::serve(w, call, allowed, in_flight).await
}

/// The label stage: the request's own label, joined with the one a forwarding peer site computed.
fn label(w: &Worker, headers: &HeaderMap, body: &[u8], vouched: Option<&Vouched>) -> Result<Label, ApiError> {
    let declared = single_header(headers, &LABEL_HEADER)?.map(HeaderValue::as_bytes);
    let label = w.shared.security.labelling.request_label(declared, body)?;
    match vouched {
        // The higher of what the forwarding site saw and what this site sees.
        Some(vouched) => label.join(&vouched.label).map_err(|e| ApiError::invalid_request(e.to_string(), None)),
        None => Ok(label),
    }
}

/// The place stage: with `[[sites]]`, where the request may be served (sites known to be down left out).
fn place(
    w: &Worker,
    nation: &str,
    label: &Label,
    model: &str,
    draining: bool,
    forwarded: bool,
) -> Result<Option<Plan>, ApiError> {
    let Some(placement) = &w.shared.placement else { return Ok(None) };
    let mut down = placement.down(draining);
    if let Some(federation) = &w.shared.federation {
        federation.mark_down(&mut down);
    }
    placement.plan(nation, label, model, &down, forwarded).map(Some)
}
