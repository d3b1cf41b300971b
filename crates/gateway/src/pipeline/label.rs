//! The label stage's layer: the request's effective label (see `labelling`),
//! joined with the label a forwarding peer site computed, left for the
//! stages after it.

use std::sync::Arc;

use axum::extract::Request;
use http::HeaderValue;
use rampart_api::ApiError;
use rampart_labels::Label;

use super::admit::Admitted;
use super::{Stage, earlier};
use crate::admit::ReadingTurn;
use crate::identify::Caller;
use crate::labelled_stream::LABEL_HEADER;
use crate::labelling::Labelled;
use crate::request::single_header;
use crate::state::Shared;
use crate::trail::Notes;

/// The request's effective label, and the label it declares (if any).
#[derive(Clone)]
pub struct RequestLabel(pub Label, pub Option<Label>);

/// The label stage.
#[derive(Clone)]
pub struct LabelStage(pub Arc<Shared>);

impl Stage for LabelStage {
    async fn enter(&self, request: &mut Request) -> Result<(), ApiError> {
        let declared = single_header(request.headers(), &LABEL_HEADER)?.map(HeaderValue::as_bytes);
        let body = &earlier::<Admitted>(request)?.0;
        let Labelled { effective: mut label, declared } = self.0.security.labelling.request_label(declared, body)?;
        if let Some(vouched) = &earlier::<Caller>(request)?.vouched {
            // The higher of what the forwarding site saw and what this site sees.
            label = label.join(&vouched.label).map_err(|e| ApiError::invalid_request(e.to_string(), None))?;
        }
        earlier::<Notes>(request)?.note(|draft| draft.labelled(label.banner()));
        request.extensions_mut().insert(RequestLabel(label, declared));
        // Understood: the next request's body may be read.
        request.extensions_mut().remove::<ReadingTurn>();
        Ok(())
    }
}
