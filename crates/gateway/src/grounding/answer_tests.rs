//! A grounded answer on its way out, whole and streamed, from answers written here.

use axum::body::Body;
use axum::response::Response;
use http::header;
use http_body_util::BodyExt as _;
use rampart_labels::Policies;
use serde_json::{Value, json};

use super::*;
use crate::library::Found;

fn sources() -> Sources {
    let policies = Policies::nato();
    let found = |portion: &str, marking: &str, text: &str| Found {
        collection: "reports".into(),
        document: "r1".into(),
        title: None,
        portion: portion.into(),
        label: policies.parse_label(marking).unwrap(),
        score: 1.0,
        text: text.into(),
    };
    Sources(vec![
        found("a", "NATO SECRET", "The brigade crossed the Kalna at the Orlen ford at dawn."),
        found("b", "NATO RESTRICTED", "Fuel is sufficient for five days."),
    ])
}

fn grounded(mode: Mode) -> Grounded {
    Grounded::new(sources(), mode, Box::new(|_: &[&str]| Ok(Vec::new())))
}

const ANSWER: &str =
    "The brigade crossed the Kalna at the Orlen ford [1]. It was raining heavily. Fuel lasts five days [2].";

async fn text_of(response: Response) -> String {
    String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test]
async fn a_whole_answer_gains_citations_and_strict_mode_removes_what_nothing_supports() {
    for mode in [Mode::Flag, Mode::Strict] {
        let answer = json!({"id": "x", "rampart": {"label": {"policy": "NATO"}},
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}}]});
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, answer.to_string().len())
            .body(Body::from(answer.to_string()))
            .unwrap();
        let response = finish(grounded(mode), response).await;
        assert!(response.headers().get(header::CONTENT_LENGTH).is_none(), "the length changed");
        let body: Value = serde_json::from_str(&text_of(response).await).unwrap();
        let rampart = &body["rampart"];
        assert_eq!(rampart["label"], json!({"policy": "NATO"}), "the label stays");
        let numbers: Vec<u64> =
            rampart["citations"].as_array().unwrap().iter().map(|c| c["n"].as_u64().unwrap()).collect();
        assert_eq!(numbers, [1, 2]);
        assert_eq!(rampart["grounding"]["unsupported"], json!([1]));
        assert_eq!(rampart["grounding"]["sentences"], 3);
        let content = body["choices"][0]["message"]["content"].as_str().unwrap();
        match mode {
            Mode::Flag => assert_eq!(content, ANSWER),
            Mode::Strict => {
                assert_eq!(content, "The brigade crossed the Kalna at the Orlen ford [1]. Fuel lasts five days [2].");
                assert_eq!(rampart["grounding"]["removed"], 1);
            }
        }
    }
}

/// `ANSWER` streamed a few characters at a time, events split across frames.
fn stream_of(answer: &str) -> Body {
    let mut events = vec!["data: {\"id\":\"c1\",\"rampart\":{\"label\":{}},\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n".to_owned()];
    let chars: Vec<char> = answer.chars().collect();
    for piece in chars.chunks(7) {
        let piece: String = piece.iter().collect();
        events.push(format!(
            "data: {}\n\n",
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": piece}}]})
        ));
    }
    events.push(
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n".to_owned(),
    );
    events.push("data: [DONE]\n\n".to_owned());
    let all = events.concat();
    // Frames that cut events anywhere.
    let frames: Vec<Result<bytes::Bytes, std::io::Error>> =
        all.as_bytes().chunks(13).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect();
    Body::from_stream(futures_util::stream::iter(frames))
}

#[tokio::test]
async fn a_stream_ends_with_citations_and_in_strict_mode_never_sends_an_unsupported_sentence() {
    for mode in [Mode::Flag, Mode::Strict] {
        let response =
            Response::builder().header(header::CONTENT_TYPE, "text/event-stream").body(stream_of(ANSWER)).unwrap();
        let text = text_of(finish(grounded(mode), response).await).await;
        let events: Vec<&str> = text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")).collect();
        assert_eq!(events.last(), Some(&"[DONE]"));
        let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
        let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        let last = chunks.last().unwrap();
        assert_eq!(last["id"], "c1");
        assert_eq!(last["object"], "chat.completion.chunk");
        assert_eq!(last["rampart"]["grounding"]["unsupported"], json!([1]), "{last}");
        assert_eq!(last["rampart"]["citations"].as_array().unwrap().len(), 2);
        assert!(chunks[0]["rampart"]["label"].is_object(), "the first event keeps the label");
        match mode {
            Mode::Flag => assert_eq!(content, ANSWER),
            Mode::Strict => {
                assert_eq!(content, "The brigade crossed the Kalna at the Orlen ford [1]. Fuel lasts five days [2].");
                assert!(!text.contains("raining"), "the unsupported sentence is never sent");
                let finish = chunks.iter().position(|c| c["choices"][0]["finish_reason"] == "stop").unwrap();
                assert_eq!(chunks[finish]["choices"][0]["delta"]["content"], "Fuel lasts five days [2].");
                assert!(
                    chunks[finish + 1..]
                        .iter()
                        .all(|c| c["choices"][0]["delta"]["content"].as_str().unwrap_or("").is_empty())
                );
            }
        }
    }
}

#[tokio::test]
async fn an_error_answer_passes_as_it_is() {
    let response = Response::builder().status(404).body(Body::from("{\"error\":{}}")).unwrap();
    let response = finish(grounded(Mode::Strict), response).await;
    assert_eq!(response.status(), 404);
    assert_eq!(text_of(response).await, "{\"error\":{}}");
}
