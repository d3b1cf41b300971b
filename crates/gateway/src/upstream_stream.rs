//! A streamed upstream answer on its way to the client: frames pass through
//! as they arrive; the usage chunk, if any, is noticed for metrics; the
//! backend's concurrency slot is held until the stream ends or the client
//! leaves (dropping this drops the upstream body, which cancels the request).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;

use crate::answer::{AnswerUsage, Tokens};
use crate::metrics::{InFlight, Metrics};

/// Bytes of the previous frame kept, so a key split across frames is found.
const CARRY: usize = 48;

/// Finds the last `prompt_tokens`/`completion_tokens` values in SSE data.
#[derive(Default)]
pub(crate) struct UsageScan {
    carry: Vec<u8>,
    prompt: Option<u64>,
    completion: Option<u64>,
}

fn last_number_after(haystack: &[u8], key: &[u8]) -> Option<u64> {
    let at = memchr::memmem::rfind(haystack, key)? + key.len();
    let rest = &haystack[at..];
    let rest = &rest[rest.iter().take_while(|b| b.is_ascii_whitespace() || **b == b':').count()..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits == rest.len() {
        return None; // no number, or one that may continue in the next frame
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

impl UsageScan {
    /// Searches the previous frame's tail plus this frame, so a key or number
    /// split across frames is still found; keeps the last `CARRY` bytes.
    pub(crate) fn feed(&mut self, data: &[u8]) {
        let mut window = std::mem::take(&mut self.carry);
        window.extend_from_slice(data);
        if let Some(n) = last_number_after(&window, b"\"prompt_tokens\"") {
            self.prompt = Some(n);
        }
        if let Some(n) = last_number_after(&window, b"\"completion_tokens\"") {
            self.completion = Some(n);
        }
        let keep = window.len().saturating_sub(CARRY);
        window.drain(..keep);
        self.carry = window;
    }

    pub(crate) fn usage(&self) -> (u64, u64) {
        (self.prompt.unwrap_or(0), self.completion.unwrap_or(0))
    }

    /// The counts, once a prompt count has been seen.
    fn found(&self) -> Option<Tokens> {
        self.prompt.map(|prompt| Tokens { prompt, completion: self.completion.unwrap_or(0) })
    }
}

/// The streamed body of an upstream answer.
pub struct MeteredStream {
    inner: Incoming,
    scan: UsageScan,
    metrics: Arc<Metrics>,
    model: String,
    usage: AnswerUsage,
    _permit: OwnedSemaphorePermit,
    _in_flight: InFlight,
}

impl MeteredStream {
    /// Wraps an upstream body; holds the backend's slot and the in-flight
    /// count until it ends, and notes the stream's token counts in `usage`.
    pub fn new(
        inner: Incoming,
        metrics: Arc<Metrics>,
        model: String,
        permit: OwnedSemaphorePermit,
        in_flight: InFlight,
        usage: AnswerUsage,
    ) -> Self {
        Self { inner, scan: UsageScan::default(), metrics, model, usage, _permit: permit, _in_flight: in_flight }
    }
}

impl Body for MeteredStream {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            self.scan.feed(data);
            if let Some(tokens) = self.scan.found() {
                self.usage.set(tokens);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        let (prompt, completion) = self.scan.usage();
        self.metrics.tokens(&self.model, prompt, completion);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_usage_even_when_split_across_frames() {
        let chunk = br#"data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":345,"total_tokens":357}}"#;
        for split in 1..chunk.len() {
            let mut scan = UsageScan::default();
            scan.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n");
            scan.feed(&chunk[..split]);
            scan.feed(&chunk[split..]);
            scan.feed(b"\n\ndata: [DONE]\n\n");
            assert_eq!(scan.usage(), (12, 345), "split at {split}");
        }
    }

    #[test]
    fn no_usage_counts_nothing() {
        let mut scan = UsageScan::default();
        scan.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"tokens\"}}]}\n\n");
        assert_eq!(scan.usage(), (0, 0));
    }
}
