//! `GET /audit/...`: the log published read-only, in the C2SP tlog-tiles
//! layout, to principals the policy lets read it (the built-in policy: the
//! `auditor` role). Each read is itself recorded.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::header;
use rampart_api::ApiError;
use rampart_audit::log::CHECKPOINT;
use rampart_audit::tiles::is_log_path;

use crate::error::ErrorResponse;
use crate::pipeline::Earlier;
use crate::pipeline::authorize::Authorized;
use crate::state::Worker;

/// Serves one file of the log.
pub async fn read(
    State(w): State<Worker>,
    Path(path): Path<String>,
    Earlier(_): Earlier<Authorized>,
) -> Result<Response, ErrorResponse> {
    let trail = w.shared.trail.as_ref().ok_or_else(|| ApiError::audit_file_not_found(&path))?;
    if !is_log_path(&path) {
        return Err(ApiError::audit_file_not_found(&path).into());
    }
    let data = match trail.read_published(&path).await {
        Ok(Some(data)) => data,
        Ok(None) => return Err(ApiError::audit_file_not_found(&path).into()),
        Err(err) => {
            tracing::error!(path, error = %err, "an audit log file could not be read");
            return Err(ApiError::audit_unreadable().into());
        }
    };
    let is_checkpoint = path == CHECKPOINT;
    let content_type = if is_checkpoint { "text/plain; charset=utf-8" } else { "application/octet-stream" };
    // The checkpoint changes with every batch; tiles of full width never change.
    let cache = if is_checkpoint || path.contains(".p/") { "no-cache" } else { "max-age=31536000, immutable" };
    Ok(([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], data).into_response())
}
