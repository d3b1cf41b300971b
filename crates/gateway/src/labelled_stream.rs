//! Response bodies that carry the answer's label: `rampart.label` added to a
//! JSON answer, or to the first event of an SSE stream, frame by frame with
//! no buffering of the stream.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::security::insert_member;

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
