//! An SSE answer whose end is recorded in the audit log: every byte sent is
//! hashed, and the closing `data: [DONE]` event is held until the end entry
//! is durable. A stream abandoned by its client is recorded as such.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use rampart_audit::entry::{self, Phase};
use rampart_audit::recorder::{Recorder, Unavailable};
use sha2::{Digest as _, Sha256};

use super::{Draft, Outcome};
use crate::answer::{AnswerUsage, StreamCut};

const DONE: &[u8] = b"data: [DONE]";

/// Sent instead of `[DONE]` when the end of a stream cannot be recorded.
const UNRECORDED: &[u8] = b"data: {\"error\":{\"message\":\"the end of this answer could not be recorded in the audit log; do not rely on it\",\"type\":\"server_error\",\"param\":null,\"code\":\"audit_unavailable\"}}\n\n";

type Recording = Pin<Box<dyn Future<Output = Result<u64, Unavailable>> + Send>>;

/// The audited body of a stream.
pub struct AuditedStream {
    inner: Body,
    recorder: Recorder,
    draft: Draft,
    /// What the end entry will say; taken when it is written.
    end: Option<Outcome>,
    usage: AnswerUsage,
    /// Why the stream was ended before its model finished, if it was.
    cut: StreamCut,
    digest: Sha256,
    /// The frame with `[DONE]`, waiting for the end entry.
    held: Option<Bytes>,
    recording: Option<Recording>,
    finished: bool,
}

impl AuditedStream {
    /// Wraps a stream whose start entry is already durable.
    pub fn new(
        inner: Body,
        recorder: Recorder,
        draft: Draft,
        end: Outcome,
        usage: AnswerUsage,
        cut: StreamCut,
    ) -> Self {
        Self {
            inner,
            recorder,
            draft,
            end: Some(end),
            usage,
            cut,
            digest: Sha256::new(),
            held: None,
            recording: None,
            finished: false,
        }
    }

    /// The encoded end entry, once; `None` after it has been taken.
    fn end_entry(&mut self, code: Option<&str>) -> Option<Vec<u8>> {
        let mut outcome = self.end.take()?;
        outcome.code = code.map(str::to_owned);
        outcome.tokens = self.usage.get();
        outcome.response_sha256 = Some(entry::hex(&std::mem::take(&mut self.digest).finalize()));
        Some(self.draft.entry(Phase::End, 200, outcome).encode())
    }

    fn start_recording(&mut self, code: Option<&str>) {
        if let Some(entry) = self.end_entry(code) {
            let recorder = self.recorder.clone();
            self.recording = Some(Box::pin(async move { recorder.record(entry).await }));
        }
        self.finished = true;
    }
}

impl HttpBody for AuditedStream {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(recording) = &mut this.recording {
                let result = ready!(recording.as_mut().poll(cx));
                this.recording = None;
                let held = this.held.take();
                return Poll::Ready(match result {
                    Ok(_) => held.map(|data| Ok(Frame::data(data))),
                    Err(err) => {
                        tracing::error!(error = %err, "the end of a stream could not be recorded");
                        Some(Ok(Frame::data(Bytes::from_static(UNRECORDED))))
                    }
                });
            }
            if this.finished {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if memchr::memmem::find(&data, DONE).is_some() => {
                        this.digest.update(&data);
                        this.held = Some(data);
                        this.start_recording(None);
                    }
                    Ok(data) => {
                        this.digest.update(&data);
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Some(Err(err)) => {
                    if let Some(entry) = this.end_entry(Some("stream_error")) {
                        this.recorder.record_detached(entry);
                    }
                    this.finished = true;
                    return Poll::Ready(Some(Err(err)));
                }
                None => {
                    let cut = this.cut.get();
                    this.start_recording(cut);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished && self.recording.is_none() && self.held.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for AuditedStream {
    fn drop(&mut self) {
        // The client went away before the end: the answer was not delivered whole.
        if let Some(entry) = self.end_entry(Some("client_disconnected")) {
            self.recorder.record_detached(entry);
        }
    }
}
