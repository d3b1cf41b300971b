//! The identify stage's layer: reads the credentials a request presents
//! (its connection's client certificate, and the identity headers, each
//! sent at most once) and leaves the [`Caller`] for the stages after it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderName, HeaderValue, header};
use rampart_identity::{ASSERTION_HEADER, PeerCertificate};

use super::earlier;
use crate::error::ErrorResponse;
use crate::identify::{Caller, Credentials, unidentified};
use crate::request::single_header;
use crate::state::Worker;
use crate::trail::Notes;

/// The header carrying a peer site's assertion, as a header name.
static ASSERTION: HeaderName = HeaderName::from_static(ASSERTION_HEADER);

/// The identify stage of inference requests, which peer sites may forward (with an assertion).
pub async fn inference(State(w): State<Worker>, request: Request, next: Next) -> Result<Response, ErrorResponse> {
    identify(&w, request, next, true).await
}

/// The identify stage of requests about the site itself: a peer's assertion is not taken.
pub async fn site(State(w): State<Worker>, request: Request, next: Next) -> Result<Response, ErrorResponse> {
    identify(&w, request, next, false).await
}

async fn identify(w: &Worker, mut request: Request, next: Next, forwardable: bool) -> Result<Response, ErrorResponse> {
    let headers = request.headers();
    let peer = request.extensions().get::<Arc<PeerCertificate>>().map(Arc::as_ref);
    let assertion = if forwardable { single_header(headers, &ASSERTION)? } else { None };
    let credentials = Credentials {
        peer,
        authorization: single_header(headers, &header::AUTHORIZATION)?.map(HeaderValue::as_bytes),
        assertion: assertion.map(HeaderValue::as_bytes),
    };
    let identification = &w.shared.security.identification;
    let caller = if forwardable {
        identification.identify_request(credentials)
    } else {
        identification.identify(credentials).map(|principal| Caller { principal, vouched: None })
    }
    .map_err(|e| unidentified(&e))?;
    earlier::<Notes>(&request)?.note(|draft| {
        draft.identified(&caller.principal);
        if let Some(vouched) = &caller.vouched {
            draft.forwarded_by(&vouched.site);
        }
    });
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}
