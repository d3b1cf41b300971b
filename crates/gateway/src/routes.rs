//! The HTTP routes: the inference routes (whose path is in `inference`),
//! model listing, the audit log, health, readiness and metrics.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Json};
use http::{HeaderMap, StatusCode, header};
use rampart_api::ApiError;
use rampart_identity::PeerCertificate;
use rampart_policy::Action;
use serde_json::json;

use crate::authorize::Authorization;
use crate::error::{no_such_route, wrong_method};
use crate::inference::{Arrival, inference};
use crate::request::Route;
use crate::request_id::RequestId;
use crate::security;
use crate::state::{ModelEntry, Worker};
use crate::trail::{self, Draft};

/// The complete router for one worker.
pub fn router(worker: Worker) -> Router {
    Router::new()
        .route("/v1/chat/completions", inference_route(Route::ChatCompletions))
        .route("/v1/completions", inference_route(Route::Completions))
        .route("/v1/embeddings", inference_route(Route::Embeddings))
        .route("/v1/models", get(list_models).fallback(wrong_method))
        .route("/v1/models/{id}", get(get_model).fallback(wrong_method))
        .route("/audit/{*path}", get(crate::audit_read::read).fallback(wrong_method))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(no_such_route)
        .layer(axum::middleware::from_fn(crate::request_id::assign))
        .with_state(worker)
}

/// The route for one inference endpoint.
fn inference_route(route: Route) -> MethodRouter<Worker> {
    post(
        move |State(w): State<Worker>,
              Extension(id): Extension<RequestId>,
              peer: Option<Extension<Arc<PeerCertificate>>>,
              headers: HeaderMap,
              body: Body| {
            let arrival = Arrival { route, id, peer: peer.map(|Extension(p)| p), headers, started: Instant::now() };
            inference(w, arrival, body)
        },
    )
    .fallback(wrong_method)
}

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

/// Answers a model-listing request through the audit trail: `answer` gets the
/// identified caller and returns the JSON to send.
async fn listing(
    w: &Worker,
    id: &RequestId,
    peer: Option<Extension<Arc<PeerCertificate>>>,
    headers: &HeaderMap,
    answer: impl FnOnce(&rampart_identity::Principal) -> Result<serde_json::Value, ApiError>,
) -> Response {
    let mut draft = Draft::new(id.as_str().to_owned(), Action::ListModels.name());
    let result = w.shared.security.identification.authenticate(headers, peer.as_deref().map(Arc::as_ref)).and_then(
        |principal| {
            draft.identified(&principal);
            answer(&principal)
        },
    );
    let result = result.map(|value| {
        draft.allowed();
        Json(value).into_response()
    });
    let response = trail::settle(w.shared.trail.as_ref(), draft, result).await;
    w.shared.metrics.request(Route::Models.metric_name(), "all", response.status().as_u16());
    response
}

async fn list_models(
    State(w): State<Worker>,
    Extension(id): Extension<RequestId>,
    peer: Option<Extension<Arc<PeerCertificate>>>,
    headers: HeaderMap,
) -> Response {
    listing(&w, &id, peer, &headers, |principal| {
        // Only the models this caller may use are listed.
        let data: Vec<_> = w
            .shared
            .model_ids
            .iter()
            .filter(|id| w.shared.security.authorization.may_list(principal, id))
            .map(|id| model_object(id, owner_of(&w, id)))
            .collect();
        Ok(json!({ "object": "list", "data": data }))
    })
    .await
}

async fn get_model(
    State(w): State<Worker>,
    Extension(request_id): Extension<RequestId>,
    Path(id): Path<String>,
    peer: Option<Extension<Arc<PeerCertificate>>>,
    headers: HeaderMap,
) -> Response {
    listing(&w, &request_id, peer, &headers, |principal| {
        // A model the caller may not use is answered as absent, revealing nothing.
        if w.shared.models.contains_key(&id) && w.shared.security.authorization.may_list(principal, &id) {
            Ok(model_object(&id, owner_of(&w, &id)))
        } else {
            Err(ApiError::model_not_found(&id))
        }
    })
    .await
}

async fn healthz() -> Response {
    Json(json!({ "status": "alive" })).into_response()
}

async fn readyz(State(w): State<Worker>) -> Response {
    let problems = w.shared.readiness_problems();
    if problems.is_empty() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "not_ready", "problems": problems }))).into_response()
    }
}

/// `GET /metrics`, for monitors and admins (the built-in policy); each read is
/// recorded like any decision. On an `insecure_dev` site without identity,
/// where every caller is the anonymous development principal, anyone may read them.
async fn metrics(
    State(w): State<Worker>,
    Extension(id): Extension<RequestId>,
    peer: Option<Extension<Arc<PeerCertificate>>>,
    headers: HeaderMap,
) -> Response {
    let exposition = |w: &Worker| {
        ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], w.shared.metrics.encode())
            .into_response()
    };
    if w.shared.security.identification.is_anonymous_dev() {
        return exposition(&w);
    }
    let mut draft = Draft::new(id.as_str().to_owned(), Action::ReadMetrics.name());
    let result = async {
        let peer = peer.as_deref().map(Arc::as_ref);
        security::admit(&w.shared.security, &headers, peer, &mut draft, Authorization::authorize_metrics)?;
        Ok(exposition(&w))
    }
    .await;
    trail::settle(w.shared.trail.as_ref(), draft, result).await
}

#[cfg(test)]
mod tests;
