//! The place stage's layer: with `[[sites]]`, where the request may be
//! served (sites known to be down left out), left for the serve stage.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::earlier;
use super::label::RequestLabel;
use crate::error::ErrorResponse;
use crate::identify::Caller;
use crate::placement::Plan;
use crate::request::Parsed;
use crate::state::Worker;

/// Where the request may be served; `None` without `[[sites]]` (here only).
#[derive(Clone)]
pub struct Placed(pub Option<Plan>);

/// The place stage's layer.
pub async fn layer(State(w): State<Worker>, mut request: Request, next: Next) -> Result<Response, ErrorResponse> {
    let plan = match &w.shared.placement {
        None => None,
        Some(placement) => {
            let caller = earlier::<Caller>(&request)?;
            let mut down = placement.down(w.shared.draining().is_some());
            if let Some(federation) = &w.shared.federation {
                federation.mark_down(&mut down);
            }
            let (nation, forwarded) = (&caller.principal.nation, caller.vouched.is_some());
            let model = earlier::<Parsed>(&request)?.model();
            Some(placement.plan(nation, &earlier::<RequestLabel>(&request)?.0, model, &down, forwarded)?)
        }
    };
    request.extensions_mut().insert(Placed(plan));
    Ok(next.run(request).await)
}
