//! Answers that carry their label: `rampart.label` added to a JSON answer,
//! or to the first event of an SSE stream, frame by frame with no buffering
//! of the stream; what the model wrote is checked against it on the way.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, header};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use rampart_api::ApiError;
use rampart_labels::{Label, Policies};

use crate::answer::StreamCut;
use crate::answer_markings::{GuardedStream, check_answer};

/// The request and response header that carries a label.
pub static LABEL_HEADER: HeaderName = HeaderName::from_static("rampart-label");

/// An SSE body whose first `data: {...}` event gains the label member.
pub struct LabelFirstEvent {
    inner: Body,
    member: Option<Bytes>,
}

impl LabelFirstEvent {
    /// Wraps a stream.
    pub fn new(inner: Body, member: Bytes) -> Self {
        Self { inner, member: Some(member) }
    }
}

impl HttpBody for LabelFirstEvent {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        let Some(member) = self.member.as_ref() else { return Poll::Ready(frame) };
        let Some(Ok(frame)) = frame else { return Poll::Ready(frame) };
        let frame = match frame.into_data() {
            Ok(data) => match insert_member(&data, b"data:", member) {
                Some(labelled) => {
                    self.member = None;
                    Frame::data(labelled)
                }
                None => Frame::data(data),
            },
            Err(frame) => frame,
        };
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// The `"rampart":{"label":...}` member added to answers.
pub fn label_member(label: &Label) -> Bytes {
    let mut member = b"\"rampart\":{\"label\":".to_vec();
    // Written straight from the label's JSON form, without a JSON tree in between; it cannot fail.
    let _ = serde_json::to_writer(&mut member, &label.to_json());
    member.push(b'}');
    Bytes::from(member)
}

/// Inserts `member` as the first member of the first JSON object in `data`
/// (right after its `{`): valid whether or not the object is complete in
/// this piece, so it works on a streamed frame too. `None` if no object starts here.
pub fn insert_member(data: &[u8], after: &[u8], member: &[u8]) -> Option<Bytes> {
    let start = memchr::memmem::find(data, after)?;
    let brace = start + after.len() + data[start + after.len()..].iter().position(|b| !b.is_ascii_whitespace())?;
    if data[brace] != b'{' {
        return None;
    }
    let rest = &data[brace + 1..];
    let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let mut out = Vec::with_capacity(data.len() + member.len() + 1);
    out.extend_from_slice(&data[..=brace]);
    out.extend_from_slice(member);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Some(Bytes::from(out))
}

/// Labels an answer and checks what the model wrote against the label (see
/// `answer_markings`): the `Rampart-Label` header (banner marking), and
/// `rampart.label` (JSON form) in a JSON body or in the first SSE event. A
/// whole answer is read before it is released; a stream as it passes.
pub async fn label_response(response: Response, label: &Label, policies: &Policies) -> Result<Response, ApiError> {
    let (mut parts, body) = response.into_parts();
    if let Ok(value) = HeaderValue::from_str(&label.banner()) {
        parts.headers.insert(LABEL_HEADER.clone(), value);
    }
    if !parts.status.is_success() {
        return Ok(Response::from_parts(parts, body));
    }
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("text/event-stream") {
        let cut = StreamCut::default();
        parts.extensions.insert(cut.clone());
        let labelled = Body::new(LabelFirstEvent::new(body, label_member(label)));
        let guarded = GuardedStream::new(labelled, policies.clone(), label.clone(), cut);
        return Ok(Response::from_parts(parts, Body::new(guarded)));
    }
    let json = content_type.starts_with("application/json");
    let bytes = body
        .collect()
        .await
        .map_err(|err| ApiError::upstream_error(format!("the answer could not be read: {err}")))?
        .to_bytes();
    check_answer(policies, label, &bytes)?;
    let body = match json {
        true => insert_member(&bytes, b"", &label_member(label)).unwrap_or(bytes),
        false => bytes,
    };
    Ok(Response::from_parts(parts, Body::from(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_goes_first_in_the_first_object() {
        let member = b"\"rampart\":{}";
        assert_eq!(&insert_member(br#"{"id":1}"#, b"", member).unwrap()[..], br#"{"rampart":{},"id":1}"#);
        assert_eq!(&insert_member(b"  { }", b"", member).unwrap()[..], b"  {\"rampart\":{} }");
        assert_eq!(&insert_member(b"data: {\"a\":1", b"data:", member).unwrap()[..], b"data: {\"rampart\":{},\"a\":1");
        assert_eq!(insert_member(b"data: [DONE]", b"data:", member), None, "no object, no member");
        assert_eq!(insert_member(b": keep-alive", b"data:", member), None);
    }

    #[tokio::test]
    async fn a_labelled_answer_carries_the_label_in_header_body_and_first_event() {
        let policies = Policies::nato();
        let label = policies.parse_label("NATO SECRET").unwrap();
        let json = axum::response::Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"id":"x"}"#))
            .unwrap();
        let json = label_response(json, &label, &policies).await.unwrap();
        assert_eq!(json.headers()[&LABEL_HEADER], "NATO SECRET");
        let body: serde_json::Value =
            serde_json::from_slice(&json.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(
            (body["id"].as_str(), body["rampart"]["label"]["classification"].as_str()),
            (Some("x"), Some("SECRET"))
        );
        let events = Body::from_stream(futures_util::stream::iter([
            Ok::<_, std::io::Error>(Bytes::from("data: {\"n\":1}\n\n")),
            Ok(Bytes::from("data: {\"n\":2}\n\ndata: [DONE]\n\n")),
        ]));
        let stream =
            axum::response::Response::builder().header(header::CONTENT_TYPE, "text/event-stream").body(events).unwrap();
        let text =
            label_response(stream, &label, &policies).await.unwrap().into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(text.to_vec()).unwrap();
        assert!(text.starts_with("data: {\"rampart\":{\"label\":"), "{text}");
        assert_eq!(text.matches("\"rampart\"").count(), 1, "only the first event: {text}");
    }
}
