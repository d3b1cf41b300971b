//! A server that answers whatever its test scripts, whatever it is asked: for
//! playing a compromised peer site that holds a real site certificate. It
//! answers `GET /healthz` with 200 so that it is probed healthy.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;

/// The answer a scripted server gives: status, headers (repeats kept), body.
#[derive(Clone, Debug, Default)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// The script of a scripted server, changed by the test between requests.
#[derive(Clone, Debug, Default)]
pub struct Script(Arc<Mutex<Answer>>);

impl Script {
    /// From now on, answer every request with this status, these headers and this body.
    pub fn answer(&self, status: u16, headers: &[(&str, &str)], body: &str) {
        let answer = Answer {
            status,
            headers: headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
            body: body.to_owned(),
        };
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = answer;
    }

    fn response(&self) -> Response {
        let answer = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let mut response = Response::new(Body::from(answer.body));
        *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
        for (name, value) in &answer.headers {
            if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

/// Serves `script` over HTTPS on `listener` with `tls`.
pub fn spawn_scripted_tls(listener: tokio::net::TcpListener, tls: Arc<rustls::ServerConfig>, script: Script) {
    let app = Router::new().route("/healthz", get(|| async { "ok" })).fallback(move || {
        let script = script.clone();
        async move { script.response() }
    });
    super::serve_tls(listener, app, tls);
}
