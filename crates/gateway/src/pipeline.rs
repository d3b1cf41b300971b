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
pub mod retrieve;
pub mod serve;

#[cfg(test)]
mod retrieve_tests;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use rampart_api::ApiError;
use tower::{Layer, Service};

use crate::error::ErrorResponse;

/// A stage that acts on a request before the stages inside it: it refuses
/// the request, or leaves its result on it and lets it on.
pub trait Stage: Clone + Send + Sync + 'static {
    /// Runs the stage on `request`.
    fn enter(&self, request: &mut Request) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// A stage that also acts on the answer on its way out, with what it kept of
/// its request. Every [`Stage`] is one that keeps nothing and leaves answers as they are.
pub trait AnswerStage: Clone + Send + Sync + 'static {
    /// What the stage keeps of a request for its answer.
    type Kept: Send + 'static;

    /// Runs the stage on `request`.
    fn enter(&self, request: &mut Request) -> impl Future<Output = Result<Self::Kept, ApiError>> + Send;

    /// Runs the stage on the answer to a request it let on.
    fn leave(&self, kept: Self::Kept, answer: Response) -> impl Future<Output = Response> + Send;
}

impl<St: Stage> AnswerStage for St {
    type Kept = ();

    fn enter(&self, request: &mut Request) -> impl Future<Output = Result<(), ApiError>> + Send {
        Stage::enter(self, request)
    }

    async fn leave(&self, (): (), answer: Response) -> Response {
        answer
    }
}

/// A [`Stage`] or [`AnswerStage`] as a tower layer. Written here rather than with
/// `axum::middleware::from_fn` because that boxes a `Next` and splits and
/// rebuilds the request at every stage, which measurably slowed the request path.
#[derive(Clone)]
pub struct StageLayer<St>(pub St);

impl<St: Clone, S> Layer<S> for StageLayer<St> {
    type Service = StageService<St, S>;

    fn layer(&self, inner: S) -> Self::Service {
        StageService { stage: self.0.clone(), inner }
    }
}

/// The service of a [`StageLayer`].
#[derive(Clone)]
pub struct StageService<St, S> {
    stage: St,
    inner: S,
}

impl<St, S> Service<Request> for StageService<St, S>
where
    St: AnswerStage,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let stage = self.stage.clone();
        // The service made ready answers this request; its clone waits for the next (tower's convention).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(async move {
            match AnswerStage::enter(&stage, &mut request).await {
                Ok(kept) => {
                    let answer = inner.call(request).await?;
                    Ok(stage.leave(kept, answer).await)
                }
                Err(err) => Ok(ErrorResponse(err).into_response()),
            }
        })
    }
}

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
