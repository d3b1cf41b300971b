//! The ground stage's decision: what a request asks, the prompt it becomes.

use rampart_api::ChatCompletionRequest;
use rampart_labels::Policies;
use serde_json::{Value, json};

use super::*;

fn chat(body: &Value) -> ChatCompletionRequest {
    serde_json::from_value(body.clone()).unwrap()
}

fn ask(body: Value) -> Result<Option<Ask>, ApiError> {
    let request = chat(&body);
    Ask::of(body.to_string().as_bytes(), Some(&request))
}

fn base() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "Where did the convoy go?"}]})
}

#[test]
fn collections_ask_for_grounding_with_documented_defaults() {
    assert_eq!(ask(base()).unwrap(), None);
    let mut body = base();
    body["rampart"] = json!({"collections": ["reports"], "label": "NATO SECRET"});
    assert_eq!(ask(body).unwrap(), Some(Ask { collections: vec!["reports".into()], top_k: 6, mode: Mode::Flag }));
    let mut body = base();
    body["rampart"] = json!({"collections": ["a", "b"], "top_k": 3, "grounding": "strict"});
    assert_eq!(
        ask(body).unwrap(),
        Some(Ask { collections: vec!["a".into(), "b".into()], top_k: 3, mode: Mode::Strict })
    );
}

#[test]
fn every_wrong_grounding_member_is_refused_naming_it() {
    let cases = [
        (json!({"collections": []}), "rampart.collections"),
        (json!({"collections": ["a", "a"]}), "rampart.collections"),
        (json!({"collections": "a"}), "rampart.collections"),
        (json!({"collections": ["a"], "top_k": 0}), "rampart.top_k"),
        (json!({"collections": ["a"], "top_k": 21}), "rampart.top_k"),
        (json!({"collections": ["a"], "grounding": "loose"}), "rampart.grounding"),
        (json!({"collections": ["a"], "colections": 1}), "rampart"),
        (json!({"top_k": 3}), "rampart"),
    ];
    for (extension, param) in cases {
        let mut body = base();
        body["rampart"] = extension.clone();
        let err = ask(body).expect_err(&extension.to_string());
        assert_eq!(err.status, http::StatusCode::BAD_REQUEST, "{extension}");
        assert!(err.param.as_deref().unwrap_or(&err.message).contains(param), "{extension}: {err:?}");
    }
    for (member, value) in [
        ("logprobs", json!(true)),
        ("top_logprobs", json!(2)),
        ("tools", json!([{"type": "function", "function": {"name": "f"}}])),
    ] {
        let mut strict = base();
        strict["rampart"] = json!({"collections": ["a"], "grounding": "strict"});
        strict[member] = value.clone();
        let param = if member == "tools" { "tools" } else { "logprobs" };
        assert_eq!(ask(strict).unwrap_err().param.as_deref(), Some(param), "{member}");
        let mut flag = base();
        flag["rampart"] = json!({"collections": ["a"]});
        flag[member] = value;
        assert!(ask(flag).unwrap().is_some(), "flag mode keeps {member}");
    }
    let mut two = base();
    two["rampart"] = json!({"collections": ["a"]});
    two["n"] = json!(2);
    assert_eq!(ask(two).unwrap_err().param.as_deref(), Some("n"));
    let completion = json!({"model": "m", "prompt": "x", "rampart": {"collections": ["a"]}});
    let err = Ask::of(completion.to_string().as_bytes(), None).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("rampart.collections"));
}

#[test]
fn the_question_is_the_last_user_message() {
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": [{"type": "text", "text": "second "}, {"type": "text", "text": "part"}]},
    ]});
    assert_eq!(question(&chat(&body)).unwrap(), "second part");
    let none = json!({"model": "m", "messages": [{"role": "system", "content": "x"}]});
    assert_eq!(question(&chat(&none)).unwrap_err().param.as_deref(), Some("messages"));
    let long = json!({"model": "m", "messages": [{"role": "user", "content": "é".repeat(3000)}]});
    assert_eq!(question(&chat(&long)).unwrap().len(), 4096);
}

fn found(policies: &Policies, marking: &str, text: &str) -> Found {
    Found {
        collection: "reports".into(),
        document: "r1".into(),
        title: Some("Exercise report".into()),
        portion: "p1".into(),
        label: policies.parse_label(marking).unwrap(),
        score: 1.0,
        text: text.into(),
    }
}

#[test]
fn the_prompt_numbers_and_marks_each_source_and_the_body_loses_the_stage_members() {
    let policies = Policies::nato();
    let sources = Sources(vec![
        found(&policies, "NATO SECRET", "The convoy left at dawn."),
        found(&policies, "NATO RESTRICTED", "Fuel was low."),
    ]);
    let prompt = sources.prompt();
    assert!(prompt.contains("\n[1] (NS) Exercise report: The convoy left at dawn.\n"), "{prompt}");
    assert!(prompt.contains("\n[2] (NR) Exercise report: Fuel was low.\n"), "{prompt}");
    assert!(prompt.ends_with("Question: "), "{prompt}");
    let label = policies.parse_label("NATO UNCLASSIFIED").unwrap();
    assert_eq!(sources.answer_label(&label).unwrap().banner(), "NATO SECRET");

    let mut body = base();
    body["messages"].as_array_mut().unwrap().push(json!({"role": "assistant", "content": "A first answer."}));
    body["messages"].as_array_mut().unwrap().push(json!({"role": "user", "content": "And the fuel?"}));
    body["rampart"] = json!({"collections": ["reports"], "top_k": 2, "grounding": "strict", "label": "NATO SECRET"});
    let grounded: Value =
        serde_json::from_slice(&grounded_body(body.to_string().as_bytes(), &sources).unwrap()).unwrap();
    assert_eq!(grounded["rampart"], json!({"label": "NATO SECRET"}));
    assert_eq!(grounded["messages"][0], body["messages"][0], "earlier turns unchanged");
    assert_eq!(grounded["messages"][1], body["messages"][1]);
    assert_eq!(grounded["messages"][2]["content"], format!("{prompt}And the fuel?"));

    let mut parts = base();
    parts["messages"][0]["content"] = json!([{"type": "text", "text": "Where?"}]);
    let grounded: Value =
        serde_json::from_slice(&grounded_body(parts.to_string().as_bytes(), &sources).unwrap()).unwrap();
    assert_eq!(
        grounded["messages"][0]["content"],
        json!([{"type": "text", "text": prompt}, {"type": "text", "text": "Where?"}])
    );

    let citations = sources.citations(&[2, 9, 1]);
    let numbers: Vec<u64> = citations.as_array().unwrap().iter().map(|c| c["n"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [2, 1], "cited ones only, in order of first citation");
    assert_eq!(citations[0]["marking"], "(NR)");
    assert_eq!(citations[0]["id"], "r1#p1");
}
