//! The handlers of the routes about the site itself: model listing, health,
//! readiness and metrics. Their stages (and the inference routes') are
//! composed in the crate root.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use rampart_api::ApiError;
use serde_json::json;

use crate::error::ErrorResponse;
use crate::identify::Caller;
use crate::pipeline::Earlier;
use crate::pipeline::authorize::Authorized;
use crate::state::{ModelEntry, Worker};
use crate::trail::Notes;

fn model_object(id: &str, owner: &str) -> serde_json::Value {
    json!({ "id": id, "object": "model", "created": 0, "owned_by": owner })
}

fn owner_of(w: &Worker, id: &str) -> &'static str {
    match w.shared.models.get(id) {
        Some(ModelEntry::Embedded(_)) => "rampart-embedded",
        Some(ModelEntry::Peers) => "rampart-peer-site",
        _ => "rampart-upstream",
    }
}

/// `GET /v1/models`: only the models this caller may use are listed (each
/// decided on its own, so the listing itself is allowed).
pub async fn list_models(
    State(w): State<Worker>,
    Earlier(caller): Earlier<Caller>,
    Earlier(notes): Earlier<Notes>,
) -> Json<serde_json::Value> {
    let data: Vec<_> = w
        .shared
        .model_ids
        .iter()
        .filter(|id| w.shared.security.authorization.may_list(&caller.principal, id))
        .map(|id| model_object(id, owner_of(&w, id)))
        .collect();
    notes.note(|draft| draft.allowed());
    Json(json!({ "object": "list", "data": data }))
}

/// `GET /v1/models/{id}`: a model the caller may not use is answered as absent, revealing nothing.
pub async fn get_model(
    State(w): State<Worker>,
    Path(id): Path<String>,
    Earlier(caller): Earlier<Caller>,
    Earlier(notes): Earlier<Notes>,
) -> Result<Json<serde_json::Value>, ErrorResponse> {
    if w.shared.models.contains_key(&id) && w.shared.security.authorization.may_list(&caller.principal, &id) {
        notes.note(|draft| draft.allowed());
        Ok(Json(model_object(&id, owner_of(&w, &id))))
    } else {
        Err(ApiError::model_not_found(&id).into())
    }
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Response {
    Json(json!({ "status": "alive" })).into_response()
}

/// `GET /readyz`: whether every model can be served, with the reasons when not.
pub async fn readyz(State(w): State<Worker>) -> Response {
    let problems = w.shared.readiness_problems();
    if problems.is_empty() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "not_ready", "problems": problems }))).into_response()
    }
}

/// `GET /metrics`, for monitors and admins (the built-in policy); each read is recorded like any decision.
pub async fn metrics(State(w): State<Worker>, Earlier(_): Earlier<Authorized>, headers: HeaderMap) -> Response {
    exposition(&w, &headers)
}

/// `GET /metrics` on an `insecure_dev` site without identity, where every
/// caller is the anonymous development principal: anyone may read them.
pub async fn open_metrics(State(w): State<Worker>, headers: HeaderMap) -> Response {
    exposition(&w, &headers)
}

/// OpenMetrics to a scraper that asks for it, Prometheus text 0.0.4 otherwise.
fn exposition(w: &Worker, headers: &HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.contains("application/openmetrics-text") {
        let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        return ([(header::CONTENT_TYPE, kind)], w.shared.metrics.encode_openmetrics()).into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], w.shared.metrics.encode()).into_response()
}
