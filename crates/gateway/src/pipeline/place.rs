//! The place stage's layer: with `[[sites]]`, where the request may be
//! served (sites known to be down left out), left for the serve stage.

use std::sync::Arc;

use axum::extract::Request;
use rampart_api::ApiError;

use super::label::RequestLabel;
use super::{Stage, earlier};
use crate::identify::Caller;
use crate::placement::Plan;
use crate::request::Parsed;
use crate::state::Shared;

/// Where the request may be served; `None` without `[[sites]]` (here only).
#[derive(Clone)]
pub struct Placed(pub Option<Plan>);

/// The place stage.
#[derive(Clone)]
pub struct Place(pub Arc<Shared>);

impl Stage for Place {
    async fn enter(&self, request: &mut Request) -> Result<(), ApiError> {
        let shared = &self.0;
        let plan = match &shared.placement {
            None => None,
            Some(placement) => {
                let caller = earlier::<Caller>(request)?;
                let mut down = placement.down(shared.draining().is_some());
                if let Some(federation) = &shared.federation {
                    federation.mark_down(&mut down);
                }
                let (nation, forwarded) = (&caller.principal.nation, caller.vouched.is_some());
                let model = earlier::<Parsed>(request)?.model();
                Some(placement.plan(nation, &earlier::<RequestLabel>(request)?.0, model, &down, forwarded)?)
            }
        };
        request.extensions_mut().insert(Placed(plan));
        Ok(())
    }
}
