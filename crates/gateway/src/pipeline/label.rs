//! The label stage's layer: the request's effective label (see `labelling`),
//! joined with the label a forwarding peer site computed, left for the
//! stages after it.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use rampart_api::ApiError;
use rampart_labels::Label;

use super::admit::Admitted;
use super::earlier;
use crate::error::ErrorResponse;
use crate::identify::Caller;
use crate::labelled_stream::LABEL_HEADER;
use crate::request::single_header;
use crate::state::Worker;
use crate::trail::Notes;

/// The request's effective label.
#[derive(Clone)]
pub struct RequestLabel(pub Label);

/// The label stage's layer.
pub async fn layer(State(w): State<Worker>, mut request: Request, next: Next) -> Result<Response, ErrorResponse> {
    let declared = single_header(request.headers(), &LABEL_HEADER)?.map(HeaderValue::as_bytes);
    let body = &earlier::<Admitted>(&request)?.0;
    let mut label = w.shared.security.labelling.request_label(declared, body).map_err(ApiError::from)?;
    if let Some(vouched) = &earlier::<Caller>(&request)?.vouched {
        // The higher of what the forwarding site saw and what this site sees.
        label = label.join(&vouched.label).map_err(|e| ApiError::invalid_request(e.to_string(), None))?;
    }
    earlier::<Notes>(&request)?.note(|draft| draft.labelled(label.banner()));
    request.extensions_mut().insert(RequestLabel(label));
    Ok(next.run(request).await)
}
