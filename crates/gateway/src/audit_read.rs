//! `GET /audit/...`: the log published read-only, in the C2SP tlog-tiles
//! layout, to principals the policy lets read it (the built-in policy: the
//! `auditor` role). Each read is itself recorded.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use rampart_api::{ApiError, ErrorKind};
use rampart_audit::log::CHECKPOINT;
use rampart_audit::tiles::is_log_path;
use rampart_identity::PeerCertificate;
use rampart_policy::Action;

use crate::authorize::Authorization;
use crate::request_id::RequestId;
use crate::security;
use crate::state::Worker;
use crate::trail::{self, Draft};

fn not_found(path: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorKind::NotFoundError,
        "not_found",
        format!("the audit log has no file '{path}' (paths follow C2SP tlog-tiles: checkpoint, tile/...)"),
    )
}

/// Serves one file of the log.
pub async fn read(
    State(w): State<Worker>,
    Extension(id): Extension<RequestId>,
    peer: Option<Extension<Arc<PeerCertificate>>>,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Response {
    let mut draft = Draft::new(id.as_str().to_owned(), Action::ReadAudit.name());
    let result = async {
        let peer = peer.as_deref().map(Arc::as_ref);
        security::admit(&w.shared.security, &headers, peer, &mut draft, Authorization::authorize_audit_read)?;
        let trail = w.shared.trail.as_ref().ok_or_else(|| not_found(&path))?;
        if !is_log_path(&path) {
            return Err(not_found(&path));
        }
        let data = match trail.read_published(&path).await {
            Ok(Some(data)) => data,
            Ok(None) => return Err(not_found(&path)),
            Err(err) => {
                tracing::error!(path, error = %err, "an audit log file could not be read");
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorKind::ServerError,
                    "audit_unavailable",
                    "the audit log cannot be read right now",
                ));
            }
        };
        let is_checkpoint = path == CHECKPOINT;
        let content_type = if is_checkpoint { "text/plain; charset=utf-8" } else { "application/octet-stream" };
        // The checkpoint changes with every batch; tiles of full width never change.
        let cache = if is_checkpoint || path.contains(".p/") { "no-cache" } else { "max-age=31536000, immutable" };
        Ok(([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], data).into_response())
    }
    .await;
    trail::settle(w.shared.trail.as_ref(), draft, result).await
}
