//! The identify stage's layer: reads the credentials a request presents
//! (its connection's client certificate, and the identity headers, each
//! sent at most once) and leaves the [`Caller`] for the stages after it.

use std::sync::Arc;

use axum::extract::Request;
use http::{HeaderName, HeaderValue, header};
use rampart_api::ApiError;
use rampart_identity::{ASSERTION_HEADER, PeerCertificate};

use super::{Stage, earlier};
use crate::identify::{Credentials, unidentified};
use crate::request::single_header;
use crate::request_id::RequestId;
use crate::state::Shared;
use crate::trail::Notes;

/// The header carrying a peer site's assertion, as a header name.
static ASSERTION: HeaderName = HeaderName::from_static(ASSERTION_HEADER);

/// The identify stage.
#[derive(Clone)]
pub struct Identify {
    shared: Arc<Shared>,
    /// Whether a peer site may forward the request (with an assertion).
    forwardable: bool,
}

impl Identify {
    /// For inference requests, which peer sites may forward.
    pub fn inference(shared: &Arc<Shared>) -> Self {
        Self { shared: Arc::clone(shared), forwardable: true }
    }

    /// For requests about the site itself: a peer's assertion is not taken.
    pub fn site(shared: &Arc<Shared>) -> Self {
        Self { shared: Arc::clone(shared), forwardable: false }
    }
}

impl Stage for Identify {
    async fn enter(&self, request: &mut Request) -> Result<(), ApiError> {
        let headers = request.headers();
        let peer = request.extensions().get::<Arc<PeerCertificate>>().map(Arc::as_ref);
        let assertion = if self.forwardable { single_header(headers, &ASSERTION)? } else { None };
        let credentials = Credentials {
            peer,
            authorization: single_header(headers, &header::AUTHORIZATION)?.map(HeaderValue::as_bytes),
            assertion: assertion.map(HeaderValue::as_bytes),
            path: request.uri().path(),
            request_id: earlier::<RequestId>(request)?.as_str(),
        };
        // Without an assertion (never read where peers may not forward), the certificate or token identifies.
        let caller = self.shared.security.identification.identify_request(credentials).map_err(|e| unidentified(&e))?;
        earlier::<Notes>(request)?.note(|draft| {
            draft.identified(&caller.principal);
            if let Some(vouched) = &caller.vouched {
                draft.forwarded_by(&vouched.site);
            }
        });
        request.extensions_mut().insert(caller);
        Ok(())
    }
}
