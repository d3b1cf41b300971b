//! The ground stage's layer: on the way in, retrieval, the prompt and the
//! label raised to what the model will see, with Cedar's decision at that
//! label; on the way out, the answer's citations and grounding (`answer`).

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use rampart_api::ApiError;
use rampart_labels::Label;
use rampart_policy::Action;

use super::answer::{self, Embed, Grounded};
use super::{Ask, Sources, grounded_body, question};
use crate::identify::Caller;
use crate::library::{may_read, retrieved};
use crate::pipeline::admit::Admitted;
use crate::pipeline::authorize::{allow, decide_collections};
use crate::pipeline::label::RequestLabel;
use crate::pipeline::{AnswerStage, earlier};
use crate::request::{Parsed, Route};
use crate::state::Worker;
use crate::trail::Notes;

/// The ground stage.
#[derive(Clone)]
pub struct Ground(pub Worker);

impl AnswerStage for Ground {
    type Kept = Option<Grounded>;

    async fn enter(&self, request: &mut Request) -> Result<Option<Grounded>, ApiError> {
        let parsed = earlier::<Parsed>(request)?;
        let chat = match parsed {
            Parsed::Chat(chat) => Some(chat.as_ref()),
            _ => None,
        };
        let Some(ask) = Ask::of(&earlier::<Admitted>(request)?.0, chat)? else { return Ok(None) };
        let query = question(chat.ok_or_else(ApiError::stage_missing)?)?;
        let model = parsed.model().to_owned();
        let shared = Arc::clone(&self.0.shared);
        let principal = &earlier::<Caller>(request)?.principal;
        let RequestLabel(label, declared) = earlier::<RequestLabel>(request)?.clone();
        // What the caller may read, below the label it declares, and what the model is accredited for.
        let clearance = principal.clearance.clone();
        let ceiling = declared.clone();
        let readable = {
            let shared = Arc::clone(&shared);
            let model = model.clone();
            move |portion: &Label| {
                may_read(&clearance, ceiling.as_ref(), portion)
                    && shared.security.authorization.accredited(&model, portion)
            }
        };
        let notes = earlier::<Notes>(request)?.clone();
        let decision = decide_collections(&shared, principal, &label, &ask.collections, &readable, &notes)?;
        allow(request, &decision)?;

        let Ok(_running) = Arc::clone(&self.0.retrievals).try_acquire_owned() else {
            return Err(ApiError::retrievals_saturated());
        };
        let collections = ask.collections.clone();
        let searched =
            tokio::task::spawn_blocking(move || shared.library.retrieve(&collections, &query, &readable, ask.top_k))
                .await
                .map_err(|e| ApiError::retrieval_failed(e.to_string()))??;
        notes.note(|draft| draft.retrieved(retrieved(&ask.collections, &searched)));
        let sources = Sources(searched);
        let answer_label = sources.answer_label(&label)?;

        // The request becomes what the model is asked, at the label of all it will see.
        let body = Bytes::from(grounded_body(&earlier::<Admitted>(request)?.0, &sources)?);
        let grounded = Parsed::parse(Route::ChatCompletions, &body)?;
        let principal = &earlier::<Caller>(request)?.principal;
        let decision = self.0.shared.security.authorization.authorize(principal, Action::Infer, &model, &answer_label);
        allow(request, &decision)?;
        let extensions = request.extensions_mut();
        extensions.insert(Admitted(body));
        extensions.insert(grounded);
        extensions.insert(RequestLabel(answer_label, declared));
        let shared = Arc::clone(&self.0.shared);
        let embed: Embed = Box::new(move |texts: &[&str]| shared.library.embed(texts));
        Ok(Some(Grounded::new(sources, ask.mode, embed)))
    }

    async fn leave(&self, kept: Option<Grounded>, response: Response) -> Response {
        match kept {
            Some(grounded) => answer::finish(grounded, response).await,
            None => response,
        }
    }
}
