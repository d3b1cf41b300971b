//! The parse stage's layer: the admitted body as the OpenAI request of its
//! route, for a model this site knows; content the label stage could not
//! read is refused here.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use rampart_api::ApiError;

use super::admit::Admitted;
use super::earlier;
use crate::error::ErrorResponse;
use crate::request::{Parsed, Route};
use crate::state::Worker;
use crate::trail::Notes;

/// The parse stage's layer, for requests to `route`.
pub async fn layer(
    State((w, route)): State<(Worker, Route)>,
    mut request: Request,
    next: Next,
) -> Result<Response, ErrorResponse> {
    let parsed = Parsed::parse(route, &earlier::<Admitted>(&request)?.0)?;
    let model = parsed.model();
    earlier::<Notes>(&request)?.note(|draft| draft.model(model));
    if !w.shared.models.contains_key(model) {
        return Err(ApiError::model_not_found(model).into());
    }
    request.extensions_mut().insert(parsed);
    Ok(next.run(request).await)
}
