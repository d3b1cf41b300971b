//! The web console's routes. The page and its settings are open: they hold
//! nothing of the site's but its consent notice and banner colours. The two
//! calls only the page makes — who the caller is, and the banner for the
//! labels on its screen — are identified, decided by Cedar (`use_console`)
//! and recorded, like every other request.

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use rampart_api::ApiError;
use rampart_identity::AuthMethod;
use rampart_labels::{Label, Policies};
use serde_json::{Value, json};

use crate::error::ErrorResponse;
use crate::identify::Caller;
use crate::pipeline::Earlier;
use crate::pipeline::authorize::Authorized;
use crate::state::Worker;

/// The page may load only its own files and call only its own origin.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";
/// The most labels one banner request may join.
const MAX_LABELS: usize = 256;

/// `GET /console/`: the page.
pub async fn page() -> Response {
    file(Path(String::new())).await
}

/// `GET /console/{file}`: one of its files.
pub async fn file(Path(name): Path<String>) -> Response {
    match rampart_console::asset(&name) {
        Some(asset) => with_page_headers(([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()),
        None => with_page_headers(ErrorResponse(ApiError::unknown_route(&format!("/console/{name}"))).into_response()),
    }
}

/// `GET /console`: the page lives under `/console/`, where its files resolve.
pub async fn to_page() -> Response {
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, "/console/")]).into_response()
}

/// `GET /console/settings.json`: the notice to accept, and the banner of the site's default label.
pub async fn settings(State(w): State<Worker>) -> Response {
    let console = &w.shared.console;
    let default_label = w.shared.security.labelling.default_label();
    let body = json!({ "notice": console.notice, "banner": console.banner(default_label) });
    with_page_headers(axum::Json(body).into_response())
}

/// `GET /console/api/session`: who the caller is, and the banner of the site's default label.
pub async fn session(
    State(w): State<Worker>,
    Earlier(caller): Earlier<Caller>,
    Earlier(_): Earlier<Authorized>,
) -> Response {
    let principal = &caller.principal;
    let default_label = w.shared.security.labelling.default_label();
    let method = match principal.method {
        AuthMethod::Certificate => "certificate",
        AuthMethod::Token => "token",
        AuthMethod::AnonymousDev => "anonymous_dev",
        AuthMethod::Assertion => "assertion",
    };
    let clearance = principal.clearance.to_json();
    let highest = clearance.classifications.last().cloned().unwrap_or_default();
    let body = json!({
        "subject": principal.subject,
        "nation": principal.nation,
        "roles": principal.roles,
        "method": method,
        "clearance": clearance,
        "clearance_marking": format!("{} {highest}", clearance.policy),
        "label": default_label.to_json(),
        "marking": default_label.banner(),
        "banner": w.shared.console.banner(default_label),
    });
    with_page_headers(axum::Json(body).into_response())
}

/// `POST /console/api/banner` `{"labels": [...]}`: the banner of the join of
/// the labels on the page's screen (each a marking or a JSON label).
pub async fn banner(
    State(w): State<Worker>,
    Earlier(_): Earlier<Authorized>,
    request: Request,
) -> Result<Response, ErrorResponse> {
    let (parts, body) = request.into_parts();
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let length = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    // Read within the site's body limits; a draining site still draws banners.
    let (bytes, _turn) = w.shared.admission.admit(false, content_type, length, body).await?;
    let labels = banner_labels(w.shared.security.labels(), &bytes)?;
    let mut joined = labels[0].clone();
    for label in &labels[1..] {
        joined = joined.join(label).map_err(|e| ApiError::invalid_label("labels", &e.to_string()))?;
    }
    Ok(with_page_headers(axum::Json(w.shared.console.banner(&joined)).into_response()))
}

/// The labels of a banner request's body: one to `MAX_LABELS`, each read by the site's policies.
fn banner_labels(policies: &Policies, body: &[u8]) -> Result<Vec<Label>, ApiError> {
    let bad = |message: &str| ApiError::invalid_request(message, Some("labels"));
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::invalid_request("the body is not JSON of the form {\"labels\": [...]}", None))?;
    let Some(items) = value.get("labels").and_then(Value::as_array) else {
        return Err(bad("'labels' must be an array of labels"));
    };
    if items.is_empty() || items.len() > MAX_LABELS {
        return Err(bad(&format!("'labels' must hold from 1 to {MAX_LABELS} labels")));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let param = format!("labels[{i}]");
            let text = match item {
                Value::String(text) => text.clone(),
                Value::Object(_) => item.to_string(),
                _ => return Err(ApiError::invalid_label(&param, "a label is a marking or a JSON label object")),
            };
            policies.parse_label(&text).map_err(|e| ApiError::invalid_label(&param, &e.to_string()))
        })
        .collect()
}

/// What every console answer carries: no framing, no sniffing, no referrer, no caching, and the page's CSP.
fn with_page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        (header::HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
