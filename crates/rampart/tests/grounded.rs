//! Grounded chat on the running binary over TLS: the real default model, the
//! real embedding model and index, the development PKI's analysts, and the
//! example reports plus one NATO SECRET report carrying a canary. Two analysts
//! ask the same question of the same collection: each gets only citations it
//! may read, an answer labelled with everything its model saw, and nothing
//! above it in its answer, citations or prompt (read from the audit log).

mod common;

use common::site::*;
use common::{audit_entries, sse_events};
use rampart_labels::Policies;
use serde_json::{Value, json};

const QUESTION: &str = "Where did the 3rd Mechanised Brigade cross the river Kalna?";

fn grounded(extension: Value) -> Value {
    json!({
        "model": "smollm2", "temperature": 0, "seed": 7, "max_tokens": 96,
        "messages": [{"role": "user", "content": QUESTION}],
        "rampart": extension,
    })
}

async fn chat(site: &Site, who: &str, body: Value) -> Answer {
    site.chat(&site.client(None), Some(&site.token(who)), None, body).await
}

fn citation_ids(answer: &Value) -> Vec<String> {
    answer["rampart"]["citations"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

/// The portions each grounded chat put into its prompt, by caller nation, from the audit log.
fn prompted(site: &Site) -> Vec<(String, Vec<String>, String)> {
    audit_entries(&site.pki.join("audit"))
        .into_iter()
        .filter(|e| e.action == "infer" && e.retrieved.is_some())
        .map(|e| {
            let retrieved = e.retrieved.unwrap();
            let labels = retrieved.portions.into_iter().map(|p| p.label).collect();
            (e.caller.unwrap().nation, labels, e.response_label.unwrap_or_default())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_analysts_get_answers_grounded_only_in_what_they_may_read() {
    let site = grounded_site("").await;
    let policies = Policies::nato();
    let extension = json!({"collections": ["exercise"], "top_k": 4});

    let gbr = chat(&site, "gbr-secret", grounded(extension.clone())).await;
    assert_eq!(gbr.status, 200, "{}", gbr.body);
    let deu = chat(&site, "deu-confidential", grounded(extension)).await;
    assert_eq!(deu.status, 200, "{}", deu.body);

    // GBR's model saw the SECRET portions, so its answer is labelled at least that.
    let gbr_label = policies.parse_label(gbr.label.as_deref().unwrap()).unwrap();
    assert!(gbr_label.banner().starts_with("NATO SECRET"), "{:?}", gbr.label);
    let deu_label = policies.parse_label(deu.label.as_deref().unwrap()).unwrap();
    let deu_ceiling = policies.parse_label("NATO CONFIDENTIAL").unwrap();
    assert!(deu_ceiling.dominates(&deu_label), "{:?}", deu.label);
    assert_eq!(gbr.body["rampart"]["label"], serde_json::to_value(gbr_label.to_json()).unwrap());

    // Different citations; nothing DEU may not read in its answer, citations or counts.
    let deu_text = deu.body.to_string();
    assert!(!deu_text.contains(CANARY) && !deu_text.contains("Releasable To"), "{deu_text}");
    for citation in deu.body["rampart"]["citations"].as_array().unwrap() {
        let label = policies.parse_label_json(&citation["label"].to_string()).unwrap();
        assert!(deu_ceiling.dominates(&label), "{citation}");
    }
    assert_ne!(
        (citation_ids(&gbr.body), &gbr.body["choices"][0]["message"]["content"]),
        (citation_ids(&deu.body), &deu.body["choices"][0]["message"]["content"])
    );
    let grounding = &deu.body["rampart"]["grounding"];
    let sentences = grounding["sentences"].as_u64().unwrap();
    assert!(grounding["cited"].as_u64().unwrap() <= sentences, "{grounding}");
    assert!(grounding["unsupported"].as_array().unwrap().iter().all(|i| i.as_u64().unwrap() < sentences));

    // The prompts, as the audit log records them: DEU's held nothing above DEU; each answer's
    // label is the join of the request's label and every portion its model saw.
    let mut entries = Vec::new();
    assert!(eventually_published(&site, &mut entries, 2).await, "{entries:?}");
    for (nation, labels, answer_label) in &entries {
        let mut join = policies.parse_label("NATO UNCLASSIFIED").unwrap();
        for label in labels {
            let label = policies.parse_label(label).unwrap();
            if nation == "DEU" {
                assert!(deu_ceiling.dominates(&label), "{label:?}");
                let released = label.categories().get("Releasable To");
                assert!(released.is_none_or(|nations| nations.contains("DEU")), "{label:?}");
            }
            join = join.join(&label).unwrap();
        }
        assert_eq!(&join.banner(), answer_label, "{nation}");
        assert!(!labels.is_empty(), "{nation}: portions went into the prompt");
    }
    let gbr_saw = entries.iter().find(|(n, ..)| n == "GBR").unwrap();
    assert!(gbr_saw.1.iter().any(|l| l.starts_with("NATO SECRET")), "{gbr_saw:?}");
}

async fn eventually_published(site: &Site, entries: &mut Vec<(String, Vec<String>, String)>, n: usize) -> bool {
    for _ in 0..100 {
        *entries = prompted(site);
        if entries.len() >= n {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_grounding_removes_the_sentences_flagged_and_a_stream_carries_the_same() {
    let site = grounded_site("").await;
    let flagged = chat(&site, "gbr-secret", grounded(json!({"collections": ["exercise"]}))).await;
    assert_eq!(flagged.status, 200, "{}", flagged.body);
    let strict = chat(&site, "gbr-secret", grounded(json!({"collections": ["exercise"], "grounding": "strict"}))).await;
    assert_eq!(strict.status, 200, "{}", strict.body);

    // The same answer (temperature 0), checked the same way; strict keeps only supported sentences.
    let flag_grounding = &flagged.body["rampart"]["grounding"];
    let strict_grounding = &strict.body["rampart"]["grounding"];
    let unsupported = flag_grounding["unsupported"].as_array().unwrap();
    assert!(!unsupported.is_empty(), "a small model's answer has an unsupported sentence: {}", flagged.body);
    assert_eq!(strict_grounding["unsupported"], flag_grounding["unsupported"]);
    assert_eq!(strict_grounding["removed"].as_u64(), Some(unsupported.len() as u64));
    assert!(flag_grounding.get("removed").is_none());
    let full = flagged.body["choices"][0]["message"]["content"].as_str().unwrap();
    let kept = strict.body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(kept.len() < full.len(), "strict removed text: {kept:?} of {full:?}");
    let (spans, _) = rampart_retrieval::ground::sentences(full, true);
    let expected: String = spans
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !unsupported.iter().any(|u| u.as_u64() == Some(*i as u64)))
        .map(|(_, span)| &full[span])
        .collect();
    assert_eq!(kept, expected);

    // Streamed, strict: the same kept text, sentence by sentence; citations and grounding in the
    // last event before [DONE].
    let mut body = grounded(json!({"collections": ["exercise"], "grounding": "strict"}));
    body["stream"] = json!(true);
    let response = site
        .client(None)
        .post(site.url("/v1/chat/completions"))
        .bearer_auth(site.token("gbr-secret"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, kept);
    let last = chunks.last().unwrap();
    assert_eq!(last["rampart"]["grounding"], *strict_grounding);
    assert_eq!(last["rampart"]["citations"], strict.body["rampart"]["citations"]);
    assert!(chunks[0]["rampart"]["label"].is_object(), "the label is in the first event");
}

#[tokio::test(flavor = "multi_thread")]
async fn grounding_refuses_what_it_cannot_do_in_openai_format() {
    let site = grounded_site("").await;
    let cases = [
        (json!({"collections": ["nowhere"]}), 404, "collection_not_found"),
        (json!({"collections": ["exercise"], "top_k": 99}), 400, "invalid_parameter"),
        (json!({"collections": ["exercise"], "grounding": "maybe"}), 400, "invalid_parameter"),
    ];
    for (extension, status, code) in cases {
        let answer = chat(&site, "gbr-secret", grounded(extension.clone())).await;
        assert_eq!((answer.status, answer.code()), (status, code), "{extension}: {}", answer.body);
        assert!(!answer.message().contains(QUESTION), "no error echoes the prompt");
    }
    // Those who audit the site get no answer from its collections.
    let auditor = chat(&site, "auditor", grounded(json!({"collections": ["exercise"]}))).await;
    assert!([403, 404].contains(&auditor.status), "{}", auditor.body);
    assert!(auditor.body.get("rampart").is_none(), "{}", auditor.body);
}
