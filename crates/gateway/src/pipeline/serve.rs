//! The serve stage's handler, terminal: takes what every stage before it
//! left (refusing the request if any is missing) and serves it here or at a
//! peer site (see `dispatch`).

use axum::extract::State;
use axum::response::Response;
use rampart_api::ApiError;

use super::Earlier;
use super::admit::Admitted;
use super::authorize::Authorized;
use super::label::RequestLabel;
use super::place::Placed;
use super::record::Arrived;
use crate::dispatch::{self, Allowed};
use crate::error::ErrorResponse;
use crate::identify::Caller;
use crate::proxy::Call;
use crate::request::Parsed;
use crate::request_id::RequestId;
use crate::state::Worker;

/// The serve stage's handler.
#[allow(clippy::too_many_arguments)] // one argument per stage before it, in their order
pub async fn handler(
    State(w): State<Worker>,
    Earlier(id): Earlier<RequestId>,
    Earlier(arrived): Earlier<Arrived>,
    Earlier(caller): Earlier<Caller>,
    Earlier(Admitted(body)): Earlier<Admitted>,
    Earlier(parsed): Earlier<Parsed>,
    Earlier(RequestLabel(label, _)): Earlier<RequestLabel>,
    Earlier(_): Earlier<Authorized>,
    Earlier(Placed(plan)): Earlier<Placed>,
) -> Result<Response, ErrorResponse> {
    let model = parsed.model().to_owned();
    let entry = w.shared.models.get(&model).ok_or_else(|| ApiError::model_not_found(&model))?;
    let streaming = parsed.streaming();
    let call = Call { route: parsed.route(), model: &model, body, streaming, id: &id, started: arrived.started };
    let forwarded = caller.vouched.is_some();
    let allowed = Allowed { parsed, entry, principal: &caller.principal, label: &label, plan, forwarded };
    Ok(dispatch::serve(&w, call, allowed, arrived.in_flight).await?)
}
