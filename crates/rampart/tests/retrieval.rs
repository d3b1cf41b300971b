//! `POST /v1/retrieve` on the running binary over TLS, with the development
//! PKI's analysts and the example reports embedded by the real model: a GBR
//! SECRET analyst and a DEU CONFIDENTIAL analyst ask the same question and get
//! different portions; nothing DEU may not read reaches its answer, its label
//! or the audit log.

mod common;

use std::process::Command;

use common::site::*;
use common::{binary, embedding_model};
use serde_json::{Value, json};

/// Ingests the example reports into `pki/collections` as `exercise`, with the real embedding model.
fn ingest(pki: &std::path::Path) {
    let config = pki.join("ingest.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ninsecure_dev = true\n[collections]\ndir = \"collections\"\nembedding_model = \"{}\"\n",
        embedding_model().display()
    );
    std::fs::write(&config, text).unwrap();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/collections/exercise");
    let out = Command::new(binary())
        .args(["collection", "ingest", "--config", config.to_str().unwrap(), "exercise", examples.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

async fn ask(site: &Site, who: &str, query: &str) -> (u16, String, Value) {
    let response = site
        .client(None)
        .post(site.url("/v1/retrieve"))
        .bearer_auth(site.token(who))
        .json(&json!({"collections": ["exercise"], "query": query, "top_k": 5}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let label = response.headers().get("rampart-label").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, label, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn two_analysts_ask_the_same_question_and_each_gets_only_what_they_may_read() {
    let extra =
        format!("[collections]\ndir = \"collections\"\nembedding_model = \"{}\"\n", embedding_model().display());
    let site = Site::start_with(ingest, &extra).await;
    let query = "Where is the opposing force reserve battalion?";
    let (status, gbr_label, gbr) = ask(&site, "gbr-secret", query).await;
    assert_eq!(status, 200, "{gbr}");
    let (status, deu_label, deu) = ask(&site, "deu-confidential", query).await;
    assert_eq!(status, 200, "{deu}");
    let ids = |body: &Value| -> Vec<String> {
        body["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
    };
    let secret = ids(&gbr)[0].clone();
    assert!(secret.starts_with("lantern-intsum-03#"), "{gbr}");
    assert_ne!(ids(&gbr), ids(&deu), "different portions for different clearances");
    assert!(!ids(&deu).contains(&secret));
    // Portion ids are opaque: none tells its place among portions DEU was not shown.
    for id in ids(&deu).iter().chain(ids(&gbr).iter()) {
        let (_, portion) = id.split_once('#').unwrap();
        assert!(portion.len() == 16 && portion.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    assert!(gbr_label.starts_with("NATO SECRET"), "{gbr_label}");
    // Those who audit or watch the site do not retrieve: the collection is answered as unknown to them.
    for who in ["auditor", "monitor"] {
        let (status, _, body) = ask(&site, who, query).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("collection_not_found")), "{who}: {body}");
        assert_eq!(body["error"]["message"], "no collection 'exercise' is served here");
    }
    assert_eq!(deu_label, "NATO CONFIDENTIAL", "the join of what DEU got: {deu}");

    // Nothing DEU is not cleared for, nor releasable to DEU, in its answer.
    let policies = rampart_labels::Policies::nato();
    let ceiling = policies.parse_label("NATO CONFIDENTIAL").unwrap();
    for result in deu["results"].as_array().unwrap() {
        let label = policies.parse_label_json(&result["label"].to_string()).unwrap();
        assert!(ceiling.dominates(&label), "{result}");
        let released = label.categories().get("Releasable To");
        assert!(released.is_none_or(|nations| nations.contains("DEU")), "{result}");
    }
    let text = deu.to_string();
    for secret in ["reserve armoured battalion", "3rd Mechanised Brigade", "Releasable To"] {
        assert!(!text.contains(secret), "{secret} reached DEU: {text}");
    }

    // The audit log records both retrievals by portion id and label, never text.
    let mut entries: Vec<Value> = Vec::new();
    let mut log = String::new();
    for _ in 0..100 {
        let out = Command::new(binary())
            .args(["audit", "show", site.pki.join("audit").to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        log = String::from_utf8_lossy(&out.stdout).into_owned();
        entries = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["action"] == "retrieve")
            .collect();
        if entries.len() == 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100)); // until the log publishes the second
    }
    assert_eq!(entries.len(), 4, "{log}");
    let deu_entry = entries.iter().find(|e| e["caller"]["nation"] == "DEU").unwrap();
    let portions = deu_entry["retrieved"]["portions"].as_array().unwrap();
    assert_eq!(portions.len(), ids(&deu).len());
    for portion in portions {
        let label = policies.parse_label(portion["label"].as_str().unwrap()).unwrap();
        assert!(ceiling.dominates(&label), "{deu_entry}");
    }
    assert!(!log.contains("Drevno") && !log.contains("opposing force"), "no text or query in the log");
}
