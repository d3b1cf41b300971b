//! The audit stage, outermost after the request id: opens the request's
//! draft entry for the stages inside to note what they learn, and releases
//! the answer only once its entry is durable (see `trail`). It also counts
//! the request in the metrics, by its final status.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rampart_api::ApiError;
use rampart_policy::Action;

use super::earlier;
use crate::error::ErrorResponse;
use crate::metrics::InFlight;
use crate::request::Route;
use crate::request_id::{ClientRequestId, RequestId};
use crate::state::Worker;
use crate::trail::{self, Draft, Notes};

/// How a route's requests are counted in `rampart_requests`.
#[derive(Clone, Copy)]
pub enum Count {
    /// Not counted (requests about the site itself).
    Not,
    /// By route and the model asked for.
    ByModel(Route),
    /// By route, as for every model (listings).
    AllModels(Route),
}

/// The audit stage's settings for one route.
#[derive(Clone)]
pub struct Recording {
    worker: Worker,
    action: Action,
    count: Count,
}

impl Recording {
    /// Requests recorded as `action`, counted as `count` says.
    pub fn new(worker: &Worker, action: Action, count: Count) -> Self {
        Self { worker: worker.clone(), action, count }
    }
}

/// When a request arrived and its place in the in-flight gauge, for the serve stage.
#[derive(Clone)]
pub struct Arrived {
    /// When the audit stage took it.
    pub started: Instant,
    /// Held by a streamed answer until it ends.
    pub in_flight: InFlight,
}

/// The audit stage's layer.
pub async fn layer(State(recording): State<Recording>, mut request: Request, next: Next) -> Response {
    let shared = &recording.worker.shared;
    let in_flight = shared.metrics.in_flight();
    let id = match earlier::<RequestId>(&request) {
        Ok(id) => id.as_str().to_owned(),
        Err(err) => return ErrorResponse(err).into_response(),
    };
    let mut draft = Draft::new(id, recording.action.name());
    if let Some(client) = request.extensions().get::<ClientRequestId>() {
        draft.client_request_id(&client.0);
    }
    let notes = Notes::new(draft);
    request.extensions_mut().insert(notes.clone());
    request.extensions_mut().insert(Arrived { started: Instant::now(), in_flight: in_flight.clone() });
    let response = next.run(request).await;
    let draft = notes.into_draft();
    if let Some(err) = response.extensions().get::<ApiError>()
        && err.status.is_server_error()
    {
        tracing::warn!(request_id = draft.request_id(), action = recording.action.name(), status = err.status.as_u16(), error = %err.message, "request failed");
    }
    let model = draft.model_asked().map(str::to_owned);
    let response = trail::release(shared.trail.as_ref(), draft, response).await;
    let status = response.status().as_u16();
    match recording.count {
        Count::Not => {}
        Count::ByModel(route) => {
            shared.metrics.request(route.metric_name(), shared.metric_model(model.as_deref().unwrap_or("")), status);
        }
        Count::AllModels(route) => shared.metrics.request(route.metric_name(), "all", status),
    }
    response
}
