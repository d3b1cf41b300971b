//! Response bodies that carry the answer's label: `rampart.label` added to a
//! JSON answer, or to the first event of an SSE stream, frame by frame with
//! no buffering of the stream.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use rampart_labels::Label;

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

/// A JSON body (already whole in memory) with the label member added.
pub struct LabelJsonBody {
    inner: Body,
    member: Bytes,
    collected: BytesMut,
    done: bool,
}

impl LabelJsonBody {
    /// Wraps a JSON body.
    pub fn new(inner: Body, member: Bytes) -> Self {
        Self { inner, member, collected: BytesMut::new(), done: false }
    }
}

impl HttpBody for LabelJsonBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.collected.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    self.done = true;
                    let body = std::mem::take(&mut self.collected).freeze();
                    let labelled = insert_member(&body, b"", &self.member).unwrap_or(body);
                    return Poll::Ready(Some(Ok(Frame::data(labelled))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The `"rampart":{"label":...}` member added to answers.
pub fn label_member(label: &Label) -> Bytes {
    let json = serde_json::json!({ "label": label.to_json() });
    Bytes::from(format!("\"rampart\":{json}"))
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

/// Labels an answer: the `Rampart-Label` header (banner marking), and
/// `rampart.label` (JSON form) in a JSON body or in the first SSE event.
pub fn label_response(response: axum::response::Response, label: &Label) -> axum::response::Response {
    let (mut parts, body) = response.into_parts();
    if let Ok(value) = HeaderValue::from_str(&label.banner()) {
        parts.headers.insert(LABEL_HEADER.clone(), value);
    }
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let body = if !parts.status.is_success() {
        body
    } else if content_type.starts_with("text/event-stream") {
        Body::new(LabelFirstEvent::new(body, label_member(label)))
    } else if content_type.starts_with("application/json") {
        Body::new(LabelJsonBody::new(body, label_member(label)))
    } else {
        body
    };
    axum::response::Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

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
        let label = rampart_labels::Policies::nato().parse_label("NATO SECRET").unwrap();
        let json = axum::response::Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"id":"x"}"#))
            .unwrap();
        let json = label_response(json, &label);
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
        let text = label_response(stream, &label).into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(text.to_vec()).unwrap();
        assert!(text.starts_with("data: {\"rampart\":{\"label\":"), "{text}");
        assert_eq!(text.matches("\"rampart\"").count(), 1, "only the first event: {text}");
    }
}
