//! The answer's own markings. What a model writes is read for markings as a
//! request is (every view of [`rampart_labels::MarkingScanner`]): an answer
//! is labelled with its request's label, and one whose text carries a
//! marking that label does not dominate is not released.
//!
//! - A whole answer is replaced by `502 answer_above_label`.
//! - A stream ends at the event that completes such a marking: that event and
//!   everything after it are withheld, the model is stopped (its body is
//!   dropped), and the stream's last event is that error.
//!
//! Only what the model wrote is read: each choice's `text`, and the strings of
//! its `message` or `delta` but for `role`, `id` and `type`. A stream's text is
//! joined across events per choice, so a marking split between tokens is
//! still one marking; an event is held until it is complete.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use rampart_api::ApiError;
use rampart_labels::{Label, Policies};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::answer::StreamCut;
use crate::error::error_event;

/// Bytes of a choice's text kept from earlier events, so a marking written
/// over many tokens is found when its last token arrives.
const WINDOW: usize = 512;

/// Members of a message or delta that the model did not write.
const NOT_WRITTEN: [&str; 3] = ["role", "id", "type"];

/// The code of an answer withheld for its markings.
const CODE: &str = "answer_above_label";

/// An answer or a stream's event, as far as what the model wrote.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: u64,
    text: Option<Written>,
    message: Option<Written>,
    delta: Option<Written>,
}

impl Choice {
    /// What the model wrote in this choice.
    fn written(self) -> String {
        let mut text = String::new();
        for part in [self.text, self.message, self.delta].into_iter().flatten() {
            text.push_str(&part.0);
        }
        text
    }
}

/// The strings of a value but those of members the model did not write,
/// collected while it is parsed (no tree of it is built).
struct Written(String);

impl<'de> Deserialize<'de> for Written {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut text = String::new();
        Collect(&mut text).deserialize(deserializer)?;
        Ok(Written(text))
    }
}

struct Collect<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for Collect<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Collect<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        self.0.push_str(text);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        while items.next_element_seed(Collect(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<(), A::Error> {
        while let Some(written) = members.next_key_seed(IsWritten)? {
            match written {
                true => members.next_value_seed(Collect(&mut *self.0))?,
                false => drop(members.next_value::<de::IgnoredAny>()?),
            }
        }
        Ok(())
    }
}

/// Whether a member name is one the model writes the value of.
struct IsWritten;

impl<'de> DeserializeSeed<'de> for IsWritten {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for IsWritten {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<bool, E> {
        Ok(!NOT_WRITTEN.contains(&name))
    }
}

/// What a model writes, read choice by choice against the answer's label.
struct Reader<'a> {
    policies: &'a Policies,
    label: &'a Label,
    /// The recent text of each choice, by choice index.
    recent: &'a mut Vec<(u64, String)>,
}

impl Reader<'_> {
    /// Reads one more piece of choice `index`; `Err` with the marking found
    /// when the label does not dominate it.
    fn read(&mut self, index: u64, piece: &str) -> Result<(), Label> {
        if piece.is_empty() {
            return Ok(());
        }
        let at = match self.recent.iter().position(|(i, _)| *i == index) {
            Some(at) => at,
            None => {
                self.recent.push((index, String::new()));
                self.recent.len() - 1
            }
        };
        let text = &mut self.recent[at].1;
        text.push_str(piece);
        let found = self.policies.scan_markings(self.label.policy(), text);
        keep_tail(text, WINDOW);
        match found {
            Some(found) if !self.label.dominates(&found) => Err(found),
            _ => Ok(()),
        }
    }

    /// Reads one `data:` payload of a stream, or a whole answer. A payload
    /// that is not an answer of the API is read whole, as text.
    fn read_payload(&mut self, payload: &[u8]) -> Result<(), Label> {
        if payload == b"[DONE]" {
            return Ok(());
        }
        match serde_json::from_slice::<Answer>(payload) {
            Ok(answer) => answer.choices.into_iter().try_for_each(|choice| {
                let index = choice.index;
                self.read(index, &choice.written())
            }),
            Err(_) => self.read(u64::MAX, &String::from_utf8_lossy(payload)),
        }
    }
}

/// The error that replaces what is withheld; the marking found is logged, never answered.
pub fn withhold(label: &Label, found: &Label) -> ApiError {
    let label = label.banner();
    tracing::warn!(label, found = found.banner(), "an answer carrying a marking above its label was withheld");
    ApiError::answer_above_label(&label)
}

/// Keeps at most the last `keep` bytes of `text` (from a character boundary).
fn keep_tail(text: &mut String, keep: usize) {
    if text.len() > keep {
        let mut cut = text.len() - keep;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text.drain(..cut);
    }
}

/// Checks a whole answer (`body`, labelled `label`) before it is released.
pub fn check_answer(policies: &Policies, label: &Label, body: &[u8]) -> Result<(), ApiError> {
    let mut recent = Vec::new();
    let mut reader = Reader { policies, label, recent: &mut recent };
    reader.read_payload(body).map_err(|found| withhold(label, &found))
}

/// The end of the last complete event in `buf` (just past its blank line); 0 when none is.
fn complete_events(buf: &[u8]) -> usize {
    let lf = memchr::memmem::rfind(buf, b"\n\n").map(|at| at + 2);
    let crlf = memchr::memmem::rfind(buf, b"\r\n\r\n").map(|at| at + 4);
    lf.max(crlf).unwrap_or(0)
}

/// A streamed answer read event by event as it passes (see the module doc).
pub struct GuardedStream {
    /// The stream, until it ends or is cut.
    inner: Option<Body>,
    policies: Policies,
    label: Label,
    /// The recent text of each choice, by choice index.
    recent: Vec<(u64, String)>,
    /// The start of an event not yet complete, held until it is.
    pending: BytesMut,
    cut: StreamCut,
}

impl GuardedStream {
    /// Guards `inner`, a stream labelled `label`; a cut is noted in `cut`.
    pub fn new(inner: Body, policies: Policies, label: Label, cut: StreamCut) -> Self {
        Self { inner: Some(inner), policies, label, recent: Vec::new(), pending: BytesMut::new(), cut }
    }

    /// The complete `events` that may be sent: all of them, or those before
    /// the one completing a marking above the label followed by the error
    /// (and then the stream is over).
    fn release(&mut self, events: Bytes) -> Bytes {
        let mut reader = Reader { policies: &self.policies, label: &self.label, recent: &mut self.recent };
        let mut event_start = 0;
        let mut at = 0;
        for line in events.split_inclusive(|b| *b == b'\n') {
            let content = line.trim_ascii();
            if content.is_empty() {
                event_start = at + line.len();
            } else if let Some(payload) = content.strip_prefix(b"data:")
                && let Err(found) = reader.read_payload(payload.trim_ascii())
            {
                return self.cut_at(&events[..event_start], &found);
            }
            at += line.len();
        }
        events
    }

    fn cut_at(&mut self, sent: &[u8], found: &Label) -> Bytes {
        let error = withhold(&self.label, found);
        self.cut.set(CODE);
        self.inner = None;
        self.pending.clear();
        let mut out = BytesMut::from(sent);
        out.extend_from_slice(&error_event(&error));
        out.freeze()
    }
}

impl HttpBody for GuardedStream {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        loop {
            let Some(inner) = this.inner.as_mut() else { return Poll::Ready(None) };
            match ready!(Pin::new(inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        this.pending.extend_from_slice(&data);
                        let complete = complete_events(&this.pending);
                        if complete > 0 {
                            let events = this.pending.split_to(complete).freeze();
                            return Poll::Ready(Some(Ok(Frame::data(this.release(events)))));
                        }
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                None => {
                    this.inner = None;
                    if this.pending.is_empty() {
                        return Poll::Ready(None);
                    }
                    // An unterminated last event is read like any other.
                    let rest = std::mem::take(&mut this.pending).freeze();
                    return Poll::Ready(Some(Ok(Frame::data(this.release(rest)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_none() && self.pending.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use serde_json::{Value, json};

    use super::*;

    fn nato(marking: &str) -> Label {
        Policies::nato().parse_label(marking).unwrap()
    }

    fn chat_answer(content: &str) -> Vec<u8> {
        json!({"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":content}}]}).to_string().into()
    }

    fn event(content: &str) -> String {
        format!("data: {}\n\n", json!({"choices":[{"index":0,"delta":{"content":content}}]}))
    }

    /// What a guarded stream of `frames` sends, and what its cut says.
    async fn guarded(frames: Vec<String>, label: &str) -> (String, Option<&'static str>) {
        let body = Body::from_stream(futures_util::stream::iter(frames.into_iter().map(Ok::<_, std::io::Error>)));
        let cut = StreamCut::default();
        let stream = GuardedStream::new(body, Policies::nato(), nato(label), cut.clone());
        let sent = Body::new(stream).collect().await.unwrap().to_bytes();
        (String::from_utf8(sent.to_vec()).unwrap(), cut.get())
    }

    #[test]
    fn a_portion_marking_with_categories_in_an_answer_is_read_with_them() {
        let policies = Policies::nato();
        let label = nato("NATO CONFIDENTIAL");
        for content in
            ["(NC//REL TO GBR) The ford.", "(NC//ATOMAL) The ford.", "N.A.T.O C.O.N.F.I.D.E.N.T.I.A.L REL TO GBR"]
        {
            let refused = check_answer(&policies, &label, &chat_answer(content)).unwrap_err();
            assert_eq!(refused.code, Some(CODE), "{content}");
        }
        assert!(check_answer(&policies, &label, &chat_answer("(NC) The ford.")).is_ok());
    }

    #[test]
    fn a_whole_answer_above_its_label_is_withheld() {
        let policies = Policies::nato();
        let unclassified = nato("NATO UNCLASSIFIED");
        for content in ["(NS) The convoy moves at dawn.", "N A T O  S E C R E T", "ＮＡＴＯ ＳＥＣＲＥＴ: x"]
        {
            let err = check_answer(&policies, &unclassified, &chat_answer(content)).unwrap_err();
            assert_eq!(err.code, Some(CODE), "{content}");
            assert!(!err.message.contains("SECRET"), "the marking found is not named: {}", err.message);
        }
        assert!(check_answer(&policies, &nato("NATO SECRET"), &chat_answer("(NS) The convoy.")).is_ok());
        assert!(check_answer(&policies, &unclassified, &chat_answer("Hello there")).is_ok());
        // Tool calls and completions' text are what the model wrote too.
        let tool = json!({"choices":[{"index":0,"message":{"tool_calls":[{"id":"c","type":"function",
            "function":{"name":"note","arguments":"{\"text\":\"NATO CONFIDENTIAL\"}"}}]}}]});
        assert!(check_answer(&policies, &unclassified, tool.to_string().as_bytes()).is_err());
        let completion = json!({"choices":[{"index":0,"text":"NATO RESTRICTED"}]});
        assert!(check_answer(&policies, &unclassified, completion.to_string().as_bytes()).is_err());
        // An answer of no known shape is read whole.
        assert!(check_answer(&policies, &unclassified, b"NATO SECRET plain text").is_err());
        // What the model did not write is not read.
        let id = json!({"id":"NATO SECRET","model":"NATO SECRET","choices":[]});
        assert!(check_answer(&policies, &unclassified, id.to_string().as_bytes()).is_ok());
    }

    #[tokio::test]
    async fn a_stream_is_cut_at_the_event_completing_a_marking_split_between_tokens() {
        let frames =
            vec![event("The "), event("NATO SEC"), event("RET plan: "), event("dawn"), "data: [DONE]\n\n".into()];
        let (sent, cut) = guarded(frames, "NATO UNCLASSIFIED").await;
        assert_eq!(cut, Some(CODE));
        assert!(sent.contains("NATO SEC") && !sent.contains("RET plan") && !sent.contains("dawn"), "{sent}");
        assert!(!sent.contains("[DONE]"), "a cut stream does not claim to be done: {sent}");
        let last = sent.trim_end().rsplit("\n\n").next().unwrap();
        let error: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(error["error"]["code"], CODE);
    }

    #[tokio::test]
    async fn events_split_across_frames_are_read_whole_and_sent_unchanged() {
        let text = [event("Hello "), event("world"), "data: [DONE]\n\n".into()].concat();
        for split in 1..text.len() {
            let (sent, cut) = guarded(vec![text[..split].into(), text[split..].into()], "NATO UNCLASSIFIED").await;
            assert_eq!((sent.as_str(), cut), (text.as_str(), None), "split at {split}");
        }
        let marked = [event("(N"), event("S) x"), "data: [DONE]\n\n".into()].concat();
        for split in 1..marked.len() {
            let (sent, cut) = guarded(vec![marked[..split].into(), marked[split..].into()], "NATO RESTRICTED").await;
            assert_eq!(cut, Some(CODE), "split at {split}");
            assert!(!sent.contains("S) x"), "split at {split}: {sent}");
        }
    }

    #[tokio::test]
    async fn a_marking_the_label_dominates_passes_and_choices_are_read_apart() {
        let frames = vec![event("NATO CONFIDENTIAL "), event("report"), "data: [DONE]\n\n".into()];
        let (sent, cut) = guarded(frames, "NATO SECRET").await;
        assert_eq!(cut, None);
        assert!(sent.ends_with("data: [DONE]\n\n"));
        // Two choices interleaved: "NATO CONF" in one and "IDENTIAL" in the other are no marking.
        let two = |index: u64, content: &str| {
            format!("data: {}\n\n", json!({"choices":[{"index":index,"delta":{"content":content}}]}))
        };
        let (_, cut) = guarded(vec![two(0, "NATO CONF"), two(1, "IDENTIAL")], "NATO UNCLASSIFIED").await;
        assert_eq!(cut, None);
        let (_, cut) = guarded(vec![two(0, "NATO CONF"), two(1, "x"), two(0, "IDENTIAL")], "NATO UNCLASSIFIED").await;
        assert_eq!(cut, Some(CODE));
    }

    #[test]
    fn the_window_keeps_the_tail_on_a_character_boundary() {
        let mut text = "é".repeat(400);
        keep_tail(&mut text, WINDOW);
        assert!(text.len() <= WINDOW && text.chars().all(|c| c == 'é'));
    }
}
