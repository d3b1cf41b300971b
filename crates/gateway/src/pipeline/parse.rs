//! The parse stage's layer: the admitted body as the OpenAI request of its
//! route, for a model this site knows; content the label stage could not
//! read is refused here.

use std::sync::Arc;

use axum::extract::Request;
use rampart_api::ApiError;

use super::admit::Admitted;
use super::{Stage, earlier};
use crate::request::{Parsed, Route};
use crate::state::Shared;
use crate::trail::Notes;

/// The parse stage, for requests to a route.
#[derive(Clone)]
pub struct Parse(pub Arc<Shared>, pub Route);

impl Stage for Parse {
    async fn enter(&self, request: &mut Request) -> Result<(), ApiError> {
        let parsed = Parsed::parse(self.1, &earlier::<Admitted>(request)?.0)?;
        let model = parsed.model();
        earlier::<Notes>(request)?.note(|draft| draft.model(model));
        if !self.0.models.contains_key(model) {
            return Err(ApiError::model_not_found(model));
        }
        request.extensions_mut().insert(parsed);
        Ok(())
    }
}
