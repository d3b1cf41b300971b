//! The request path as tower layers, one module per stage; the crate root
//! composes them in the order they run. Each stage's layer reads what the
//! stages before it left on the request (extensions), notes what it learned
//! in the request's audit draft, calls its stage's decision (a module of its
//! own, free of HTTP), and either refuses the request in OpenAI's format or
//! leaves its result for the stages after it. A stage that finds an earlier
//! stage's result missing, as it would if the stages were composed out of
//! order, refuses the request: the pipeline fails closed.

pub mod admit;
pub mod authorize;
pub mod identify;
pub mod label;
pub mod parse;
pub mod place;
pub mod record;
pub mod serve;

#[cfg(test)]
mod tests;

use axum::extract::{FromRequestParts, Request};
use http::request::Parts;
use rampart_api::ApiError;

use crate::error::ErrorResponse;

/// What an earlier stage left on the request, taken by a handler (an axum
/// extractor; the extension is moved out, so each is taken once). Missing,
/// the request is refused with `500 stage_missing`.
pub struct Earlier<T>(pub T);

impl<S: Send + Sync, T: Clone + Send + Sync + 'static> FromRequestParts<S> for Earlier<T> {
    type Rejection = ErrorResponse;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.remove::<T>().map(Earlier).ok_or_else(|| ErrorResponse(missing::<T>()))
    }
}

/// What an earlier stage left on `request`, for a stage's layer.
pub fn earlier<T: Clone + Send + Sync + 'static>(request: &Request) -> Result<&T, ApiError> {
    request.extensions().get::<T>().ok_or_else(missing::<T>)
}

fn missing<T>() -> ApiError {
    let missing = std::any::type_name::<T>();
    tracing::error!(missing, "a stage ran without the result of a stage it depends on; the request is refused");
    ApiError::stage_missing()
}
