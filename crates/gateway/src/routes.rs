//! The HTTP routes and the shared path of every inference request: content
//! type, body limit, parsing, model lookup, then the engine or a backend.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Json};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use rampart_api::{ApiError, ChatCompletionRequest, CompletionRequest, ErrorKind, parse_json};
use rampart_identity::PeerCertificate;
use rampart_policy::Action;
use serde::Deserialize;
use serde_json::json;

use crate::error::{no_such_route, wrong_method};
use crate::metrics::InFlight;
use crate::request_id::RequestId;
use crate::security::{self, Security};
use crate::state::{ModelEntry, Worker};
use crate::trail::{self, Draft};
use crate::{embedded, proxy};

/// The API routes Rampart serves or forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/completions`
    Completions,
    /// `POST /v1/embeddings`
    Embeddings,
    /// `GET /v1/models` (forwarded only as a health probe)
    Models,
}

impl Route {
    /// Routes that have an upstream path.
    pub const FORWARDED: [Route; 4] = [Route::ChatCompletions, Route::Completions, Route::Embeddings, Route::Models];

    /// Path appended to a backend's base URL.
    pub fn upstream_path(self) -> &'static str {
        match self {
            Route::ChatCompletions => "/chat/completions",
            Route::Completions => "/completions",
            Route::Embeddings => "/embeddings",
            Route::Models => "/models",
        }
    }

    /// Index into [`Route::FORWARDED`].
    pub fn forwarded_index(self) -> usize {
        self as usize
    }

    /// Label used in metrics.
    pub fn metric_name(self) -> &'static str {
        match self {
            Route::ChatCompletions => "chat_completions",
            Route::Completions => "completions",
            Route::Embeddings => "embeddings",
            Route::Models => "models",
        }
    }
}

/// A parsed inference request.
pub enum Parsed {
    /// Chat completion.
    Chat(ChatCompletionRequest),
    /// Text completion.
    Completion(CompletionRequest),
    /// Embeddings.
    Embeddings(EmbeddingsRequest),
}

/// The fields of an embeddings request Rampart checks.
#[derive(Debug, Deserialize)]
pub struct EmbeddingsRequest {
    /// The model id.
    pub model: String,
    /// Text or tokens to embed.
    pub input: serde_json::Value,
}

impl EmbeddingsRequest {
    /// The texts to embed (token-id inputs have none).
    pub fn input_texts(&self) -> Vec<&str> {
        match &self.input {
            serde_json::Value::String(s) => vec![s.as_str()],
            serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

impl Parsed {
    fn parse(route: Route, body: &[u8]) -> Result<Self, ApiError> {
        Ok(match route {
            Route::ChatCompletions => {
                let request: ChatCompletionRequest = parse_json(body)?;
                request.validate()?;
                Parsed::Chat(request)
            }
            Route::Completions => {
                let request: CompletionRequest = parse_json(body)?;
                request.validate()?;
                Parsed::Completion(request)
            }
            Route::Embeddings | Route::Models => {
                let request: EmbeddingsRequest = parse_json(body)?;
                if request.input.is_null() || request.input.as_array().is_some_and(Vec::is_empty) || request.input == ""
                {
                    return Err(ApiError::bad_parameter("input", "must not be empty"));
                }
                Parsed::Embeddings(request)
            }
        })
    }

    fn model(&self) -> &str {
        match self {
            Parsed::Chat(r) => &r.model,
            Parsed::Completion(r) => &r.model,
            Parsed::Embeddings(r) => &r.model,
        }
    }

    fn streaming(&self) -> bool {
        match self {
            Parsed::Chat(r) => r.sampling.streaming(),
            Parsed::Completion(r) => r.sampling.streaming(),
            Parsed::Embeddings(_) => false,
        }
    }
}

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
              body: Body| { inference(w, route, id, peer.map(|Extension(p)| p), headers, body) },
    )
    .fallback(wrong_method)
}

/// Serves one inference request and records its metrics.
async fn inference(
    w: Worker,
    route: Route,
    id: RequestId,
    peer: Option<Arc<PeerCertificate>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let in_flight = w.shared.metrics.in_flight();
    let mut model = String::new();
    let mut draft = Draft::new(id.as_str().to_owned(), Action::Infer.name());
    let result = async {
        // Identity first: nothing of an unidentified caller's request is read.
        let (principal, vouched) = w.shared.security.authenticate_request(&headers, peer.as_deref())?;
        draft.identified(&principal);
        if let Some(vouched) = &vouched {
            draft.forwarded_by(&vouched.site);
        }
        // A draining site still forwards to its peers; what only it could serve is refused.
        let draining = w.shared.draining().is_some();
        if draining && (vouched.is_some() || w.shared.federation.is_none()) {
            return Err(ApiError::site_draining());
        }
        check_content_type(&headers)?;
        let bytes = read_body(body, &headers, w.shared.config.server.max_body_bytes).await?;
        draft.body(&bytes);
        let parsed = Parsed::parse(route, &bytes)?;
        model = parsed.model().to_owned();
        draft.model(&model);
        let entry = w.shared.models.get(&model).ok_or_else(|| ApiError::model_not_found(&model))?;
        let mut label = w.shared.security.request_label(&headers, &parsed, &bytes)?;
        if let Some(vouched) = &vouched {
            // The higher of what the forwarding site saw and what this site sees.
            label = label.join(&vouched.label).map_err(|e| ApiError::invalid_request(e.to_string(), None))?;
        }
        draft.labelled(label.banner());
        let decision = w.shared.security.authorize(&principal, Action::Infer, &model, &label);
        draft.decided(&decision);
        security::enforce(&decision)?;
        let plan = match &w.shared.placement {
            Some(placement) => {
                let mut down = placement.down(draining);
                if let Some(federation) = &w.shared.federation {
                    federation.mark_down(&mut down);
                }
                Some(placement.plan(&principal.nation, &label, &model, &down, vouched.is_some())?)
            }
            None => None,
        };
        let serve = Serve { route, model: &model, streaming: parsed.streaming(), bytes, id: &id, started };
        let local = plan.as_ref().is_none_or(|p| p.local);
        let peers = match (&plan, &w.shared.federation) {
            (Some(plan), Some(federation)) if vouched.is_none() => federation.candidates(&plan.eligible),
            _ => Vec::new(),
        };
        if local {
            let served = serve_here(&w, entry, &serve, parsed, in_flight).await;
            match served {
                Ok(response) => return Ok(security::label_response(response, &label)),
                Err(err) if peers.is_empty() || !err.status.is_server_error() => return Err(err),
                Err(err) => {
                    let code = err.code.unwrap_or_default();
                    tracing::warn!(
                        request_id = id.as_str(),
                        code,
                        "this site could not serve the request; trying peer sites"
                    );
                }
            }
        }
        let federation = w.shared.federation.as_ref().ok_or_else(|| ApiError::site_not_eligible("placement"))?;
        let upstreams = proxy::Upstreams::Peers { federation, principal: &principal, label: &label };
        let call = serve.call(serve.bytes.clone());
        let response = proxy::forward(&w, call, upstreams, &peers, w.shared.metrics.in_flight()).await?;
        w.shared.security.accept_peer_answer(response, &label)
    }
    .await;
    if let Err(err) = &result
        && err.status.is_server_error()
    {
        tracing::warn!(request_id = id.as_str(), route = route.metric_name(), status = err.status.as_u16(), error = %err.message, "request failed");
    }
    let response = trail::settle(w.shared.trail.as_ref(), draft, result).await;
    let metric_model = w.shared.metric_model(&model);
    w.shared.metrics.request(route.metric_name(), metric_model, response.status().as_u16());
    response
}

/// One parsed request, ready to be served here or forwarded.
struct Serve<'a> {
    route: Route,
    model: &'a str,
    streaming: bool,
    bytes: Bytes,
    id: &'a RequestId,
    started: Instant,
}

impl<'a> Serve<'a> {
    fn call(&'a self, body: Bytes) -> proxy::Call<'a> {
        let (route, model, streaming, id, started) = (self.route, self.model, self.streaming, self.id, self.started);
        proxy::Call { route, model, body, streaming, id, started }
    }
}

/// Serves a request on this site: its engine or its backends.
async fn serve_here(
    w: &Worker,
    entry: &ModelEntry,
    serve: &Serve<'_>,
    parsed: Parsed,
    in_flight: InFlight,
) -> Result<Response, ApiError> {
    match entry {
        ModelEntry::Remote(backends) => {
            let call = serve.call(security::without_extension(serve.bytes.clone()));
            proxy::forward(w, call, proxy::Upstreams::Local, backends, in_flight).await
        }
        ModelEntry::Embedded(engine) => {
            embedded::serve(w, engine, serve.route, parsed, serve.id, serve.started, in_flight).await
        }
        // Placement lists this site for a model it does not serve only when misconfigured.
        ModelEntry::Peers => Err(ApiError::site_not_eligible("model")),
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    let shown = if content_type.is_empty() { "none".to_owned() } else { format!("'{essence}'") };
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::InvalidRequestError,
        "unsupported_media_type",
        format!("the body must be JSON sent with 'Content-Type: application/json' (got {shown})"),
    ))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::InvalidRequestError,
        "request_too_large",
        format!("the request body is larger than this site's limit of {limit} bytes (server.max_body_bytes)"),
    )
}

async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Err(err) => Err(ApiError::invalid_request(format!("the request body could not be read: {err}"), None)),
    }
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
    let result = w.shared.security.authenticate(headers, peer.as_deref().map(Arc::as_ref)).and_then(|principal| {
        draft.identified(&principal);
        answer(&principal)
    });
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
            .filter(|id| w.shared.security.may_list(principal, id))
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
        if w.shared.models.contains_key(&id) && w.shared.security.may_list(principal, &id) {
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
    if w.shared.security.is_anonymous_dev() {
        return exposition(&w);
    }
    let mut draft = Draft::new(id.as_str().to_owned(), Action::ReadMetrics.name());
    let result = async {
        let peer = peer.as_deref().map(Arc::as_ref);
        security::admit(&w.shared.security, &headers, peer, &mut draft, Security::authorize_metrics)?;
        Ok(exposition(&w))
    }
    .await;
    trail::settle(w.shared.trail.as_ref(), draft, result).await
}
