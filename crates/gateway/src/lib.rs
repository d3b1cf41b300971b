//! Rampart's gateway: the OpenAI-compatible HTTP API in front of the embedded
//! engine and of upstream OpenAI-compatible servers.
//!
//! Every inference request walks the same stages, in this order, each a
//! tower layer of its own (in `pipeline`) over a decision of its own (the
//! module named beside it, free of HTTP); `router` below composes them,
//! exactly as they run:
//!
//! ```text
//! request id  request_id  every request and its answer get an id
//! audit       trail       outermost: the entry is durable before any answer is released
//! identify    identify    who is asking; nothing of an unidentified caller's request is read
//! admit       admit       draining, content type, body limit; the body is read
//! parse       request     the body as an OpenAI request; unscannable content refused
//! label       labelling   declared label joined with every marking in the body
//! authorize   authorize   Cedar: clearance, releasability, accreditation, operator policies
//! ground      grounding   with rampart.collections: retrieval into the prompt, label raised,
//!                         Cedar again; the answer's citations and grounding on the way out
//! place       placement   which sites may serve it (residency, owner rules, health)
//! serve       dispatch    the embedded engine, a backend, or a peer site; the answer labelled
//! ```
//!
//! Requests about the site itself (model listings, its audit log, its
//! metrics, the web console's calls) walk request id → audit → identify →
//! authorize → their handler; the console's page and settings are open.
//! A new stage (quota, retrieval, admission checks) is a decision module and
//! a layer in `pipeline`, added to `router` at its place in this order.
//! Metrics split each request's time into upstream time and Rampart's own
//! overhead. Logs and metrics never carry prompt or completion text.

mod admit;
mod answer;
mod answer_markings;
mod audit_read;
mod authorize;
mod backend;
mod body_text;
mod breaker;
mod connection;
mod console;
mod dispatch;
mod embedded;
mod error;
mod facility;
mod federation;
mod grounding;
mod health;
mod identify;
mod labelled_stream;
mod labelling;
mod library;
mod metrics;
mod peer_answer;
mod pipeline;
mod placement;
mod proxy;
mod request;
pub mod request_id;
mod routes;
mod security;
mod server;
mod start;
mod state;
mod tls;
mod trail;
mod upstream_stream;
mod weights;

pub use security::load_policies;
pub use start::serve;

use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{MethodRouter, get, post};
use rampart_policy::Action;
use tower::ServiceBuilder;

use crate::authorize::Authorization;
use crate::error::{no_such_route, wrong_method};
use crate::grounding::Ground;
use crate::pipeline::StageLayer;
use crate::pipeline::admit::Admit;
use crate::pipeline::authorize::{AuthorizeInference, AuthorizeRetrieve, AuthorizeSite, SiteDecision};
use crate::pipeline::identify::Identify;
use crate::pipeline::label::LabelStage;
use crate::pipeline::parse::Parse;
use crate::pipeline::place::Place;
use crate::pipeline::record::{Count, Recording};
use crate::pipeline::retrieve::ParseRetrieve;
use crate::request::Route;
use crate::state::Worker;

/// The complete router for one worker.
fn router(worker: Worker) -> Router {
    let w = &worker;
    let metrics = if w.shared.security.identification.is_anonymous_dev() {
        // Every caller is the anonymous development principal: anyone may read them, unrecorded.
        get(routes::open_metrics).fallback(wrong_method)
    } else {
        about_the_site(get(routes::metrics), w, Action::ReadMetrics, Some(Authorization::authorize_metrics))
    };
    Router::new()
        .route("/v1/chat/completions", inference(w, Route::ChatCompletions))
        .route("/v1/completions", inference(w, Route::Completions))
        .route("/v1/embeddings", inference(w, Route::Embeddings))
        .route("/v1/retrieve", retrieval(w))
        .route("/v1/models", about_the_site(get(routes::list_models), w, Action::ListModels, None))
        .route("/v1/models/{id}", about_the_site(get(routes::get_model), w, Action::ListModels, None))
        .route(
            "/audit/{*path}",
            about_the_site(get(audit_read::read), w, Action::ReadAudit, Some(Authorization::authorize_audit_read)),
        )
        .merge(console_routes(w))
        .route("/metrics", metrics)
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .fallback(no_such_route)
        .layer(from_fn(request_id::assign))
        .with_state(worker)
}

/// The web console: its page and settings, open; its calls, identified, decided and recorded.
fn console_routes(w: &Worker) -> Router<Worker> {
    if !w.shared.console.enabled {
        return Router::new();
    }
    let call = |handler: MethodRouter<Worker>| {
        about_the_site(handler, w, Action::UseConsole, Some(Authorization::authorize_console))
    };
    Router::new()
        .route("/console", get(console::to_page).fallback(wrong_method))
        .route("/console/", get(console::page).fallback(wrong_method))
        .route("/console/settings.json", get(console::settings).fallback(wrong_method))
        .route("/console/{file}", get(console::file).fallback(wrong_method))
        .route("/console/api/session", call(get(console::session)))
        .route("/console/api/banner", call(post(console::banner)))
}

/// An inference route: its request walks every stage, outermost first.
fn inference(w: &Worker, route: Route) -> MethodRouter<Worker> {
    let shared = &w.shared;
    let stages = ServiceBuilder::new()
        .layer(from_fn_with_state(Recording::new(w, Action::Infer, Count::ByModel(route)), pipeline::record::layer))
        .layer(StageLayer(Identify::inference(shared)))
        .layer(StageLayer(Admit(Arc::clone(shared))))
        .layer(StageLayer(Parse(Arc::clone(shared), route)))
        .layer(StageLayer(LabelStage(Arc::clone(shared))))
        .layer(StageLayer(AuthorizeInference(Arc::clone(shared))))
        .layer(StageLayer(Ground(w.clone())))
        .layer(StageLayer(Place(Arc::clone(shared))));
    post(pipeline::serve::handler).route_layer(stages).fallback(wrong_method)
}

/// The retrieve route: audit, identify, admit, parse, label, authorize (each
/// collection), then retrieval of only what the caller may read.
fn retrieval(w: &Worker) -> MethodRouter<Worker> {
    let shared = &w.shared;
    let stages = ServiceBuilder::new()
        .layer(from_fn_with_state(Recording::new(w, Action::Retrieve, Count::Not), pipeline::record::layer))
        .layer(StageLayer(Identify::site(shared)))
        .layer(StageLayer(Admit(Arc::clone(shared))))
        .layer(StageLayer(ParseRetrieve))
        .layer(StageLayer(LabelStage(Arc::clone(shared))))
        .layer(StageLayer(AuthorizeRetrieve(Arc::clone(shared))));
    post(pipeline::retrieve::handler).route_layer(stages).fallback(wrong_method)
}

/// A route about the site itself: audit, identify and, when it is not a
/// listing (each model of which is decided on its own), authorize.
fn about_the_site(
    handler: MethodRouter<Worker>,
    w: &Worker,
    action: Action,
    decide: Option<SiteDecision>,
) -> MethodRouter<Worker> {
    let count = if action == Action::ListModels { Count::AllModels(Route::Models) } else { Count::Not };
    let stages = ServiceBuilder::new()
        .layer(from_fn_with_state(Recording::new(w, action, count), pipeline::record::layer))
        .layer(StageLayer(Identify::site(&w.shared)))
        .option_layer(decide.map(|decide| StageLayer(AuthorizeSite(Arc::clone(&w.shared), decide))));
    handler.route_layer(stages).fallback(wrong_method)
}
