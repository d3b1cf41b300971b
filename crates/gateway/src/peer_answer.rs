//! What a peer site's answer must be before this site releases it to its own
//! caller. A peer is trusted with nothing about this site's callers: its
//! answer, success or error, goes through every check a local answer goes
//! through, and more, since a compromised peer may write anything anywhere.
//!
//! - One `Rampart-Label` header that parses; a success's must dominate the
//!   request's label (the peer joined it with what it read). An error without
//!   one is labelled with the request's label.
//! - The caller's clearance, releasability included, must read that label.
//! - A JSON body naming a member twice, or whose `rampart.label` differs from
//!   the header, is refused: the two could say different things to different readers.
//! - Every string of a JSON body (not only what a model writes), a text body
//!   whole, and a stream's events as they pass are read for markings; one the
//!   answer's label does not dominate withholds the answer (`502
//!   answer_above_label`), and a stream is cut there, as a local one is.

use axum::body::Body;
use axum::response::Response;
use http::header;
use http_body_util::BodyExt as _;
use rampart_api::ApiError;
use rampart_identity::Principal;
use rampart_labels::{Label, Policies};

use crate::answer::StreamCut;
use crate::answer_markings::{GuardedStream, withhold};
use crate::body_text::body_text;
use crate::labelled_stream::LABEL_HEADER;
use crate::labelling::declared_body_label;
use crate::request::single_header;

/// The largest peer answer read whole (a stream is read as it passes).
const MAX_PEER_ANSWER: usize = 64 * 1024 * 1024;

/// Checks a peer's answer to `principal`'s request labelled `label`, and
/// returns it ready to release, labelled with the label it was checked at.
pub async fn accept(
    policies: &Policies,
    response: Response,
    label: &Label,
    principal: &Principal,
) -> Result<Response, ApiError> {
    let (mut parts, body) = response.into_parts();
    let declared = single_header(&parts.headers, &LABEL_HEADER)
        .map_err(|_| ApiError::peer_label_invalid())?
        .map(|value| value.to_str().ok().and_then(|text| policies.parse_label(text).ok()));
    let answer_label = match (parts.status.is_success(), declared) {
        (_, Some(None)) => return Err(ApiError::peer_label_invalid()),
        (true, Some(Some(theirs))) if theirs.dominates(label) => theirs,
        (true, _) => return Err(ApiError::peer_label_invalid()),
        (false, Some(Some(theirs))) => theirs.join(label).map_err(|_| ApiError::peer_label_invalid())?,
        (false, None) => label.clone(),
    };
    if principal.clearance.check(&answer_label).is_err() {
        tracing::warn!(
            answer = answer_label.banner(),
            "a peer site's answer above the caller's clearance was withheld"
        );
        return Err(ApiError::peer_answer_above_clearance());
    }
    let banner = http::HeaderValue::from_str(&answer_label.banner()).map_err(|_| ApiError::peer_label_invalid())?;
    parts.headers.insert(LABEL_HEADER.clone(), banner);
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("text/event-stream") {
        let cut = StreamCut::default();
        parts.extensions.insert(cut.clone());
        let guarded = GuardedStream::new(body, policies.clone(), answer_label, cut);
        return Ok(Response::from_parts(parts, Body::new(guarded)));
    }
    let bytes = http_body_util::Limited::new(body, MAX_PEER_ANSWER)
        .collect()
        .await
        .map_err(|err| ApiError::upstream_error(format!("the peer site's answer could not be read: {err}")))?
        .to_bytes();
    check_body(policies, &answer_label, content_type.starts_with("application/json"), &bytes)?;
    if !parts.status.is_success() {
        // A peer's refusal names its own operators' policies: the caller hears the code, not the ids.
        let body = restated_refusal(&bytes);
        parts.headers.insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        parts.headers.remove(header::CONTENT_LENGTH);
        return Ok(Response::from_parts(parts, Body::from(body)));
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// A peer's error restated in OpenAI's format with its type, code and
/// parameter but a message of this site's: the peer's own message may name
/// its operators' policies, which are not for callers of other nations.
fn restated_refusal(bytes: &[u8]) -> Vec<u8> {
    #[derive(serde::Deserialize)]
    struct Peer {
        error: PeerError,
    }
    #[derive(serde::Deserialize)]
    struct PeerError {
        r#type: Option<String>,
        code: Option<String>,
        param: Option<String>,
    }
    let safe = |text: Option<String>| text.filter(|t| t.len() <= 64 && t.bytes().all(|b| b.is_ascii_graphic()));
    let error = serde_json::from_slice::<Peer>(bytes).ok().map(|p| p.error);
    let code = error.as_ref().and_then(|e| safe(e.code.clone())).unwrap_or_else(|| "peer_refused".to_owned());
    let kind =
        error.as_ref().and_then(|e| safe(e.r#type.clone())).unwrap_or_else(|| "invalid_request_error".to_owned());
    let param = error.and_then(|e| safe(e.param));
    let message = format!("the peer site that would serve this request refused it ({code})");
    serde_json::to_vec(&serde_json::json!({"error": {"message": message, "type": kind, "param": param, "code": code}}))
        .unwrap_or_default()
}

/// Reads a whole peer answer labelled `label` for what it must not hold.
fn check_body(policies: &Policies, label: &Label, json: bool, bytes: &[u8]) -> Result<(), ApiError> {
    let text = match json {
        true => {
            let text = body_text(bytes).map_err(|_| ApiError::peer_label_invalid())?;
            match declared_body_label(policies, bytes) {
                Ok(None) => {}
                Ok(Some(theirs)) if theirs == *label => {}
                _ => return Err(ApiError::peer_label_invalid()),
            }
            text
        }
        false => String::from_utf8_lossy(bytes).into_owned(),
    };
    match policies.scan_markings(label.policy(), &text) {
        Some(found) if !label.dominates(&found) => Err(withhold(label, &found)),
        _ => Ok(()),
    }
}
