//! Facility health: a degraded facility drains the site (no new requests, not
//! ready) while running streams finish, an unreadable status file drains it
//! too, and it takes requests again only after a steady healthy spell.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use serde_json::json;

const OK: &str = r#"{"power": "ok", "cooling": "ok", "alarms": []}"#;

async fn readiness(rampart: &Rampart) -> (u16, String) {
    let response = reqwest::get(rampart.url("/readyz")).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Readiness once the site has stopped being ready (or after 5 s).
async fn readiness_once_drained(rampart: &Rampart) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while readiness(rampart).await.0 == 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    readiness(rampart).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_degraded_facility_drains_the_site_and_it_recovers_after_a_steady_spell() {
    let (_upstream, addr) = mock("upstream").await;
    let signals = tempfile::tempdir().unwrap();
    let status = signals.path().join("facility.json");
    std::fs::write(&status, OK).unwrap();
    let config = format!(
        "{}{}\n[facility]\nstatus_file = \"{}\"\npoll_ms = 50\nrecover_after_secs = 1\n",
        server_section(""),
        backend("upstream", addr, &["m", "slow-stream"], ""),
        status.display()
    );
    let rampart = Rampart::start(&config).await;
    rampart.wait_ready().await;
    let client = reqwest::Client::new();
    let ask = || client.post(rampart.url("/v1/chat/completions")).json(&chat_body("m", json!({}))).send();
    assert_eq!(ask().await.unwrap().status(), 200);

    // A stream is running when the cooling degrades and an alarm goes off.
    let stream = client
        .post(rampart.url("/v1/chat/completions"))
        .json(&chat_body("slow-stream", json!({"stream": true})))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut chunks = stream.bytes_stream();
    chunks.next().await.unwrap().unwrap();
    std::fs::write(&status, r#"{"power": "ok", "cooling": "degraded", "alarms": ["intrusion, fence 3"]}"#).unwrap();
    let (code, body) = readiness_once_drained(&rampart).await;
    assert_eq!(code, 503);
    assert!(body.contains("facility: draining (cooling degraded, 1 physical alarm)"), "{body}");
    assert!(!body.contains("fence"), "an alarm's text is not published: {body}");
    let refused = ask().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let refused: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "site_draining", "{refused}");
    assert!(!refused.to_string().contains("cooling"), "callers are not told the facility's state: {refused}");
    // The running stream goes on.
    for _ in 0..10 {
        chunks.next().await.unwrap().unwrap();
    }
    drop(chunks);

    // Good signals again: the site recovers only after a steady second of them.
    std::fs::write(&status, OK).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, body) = readiness(&rampart).await;
    assert_eq!(code, 503, "not before the recovery spell: {body}");
    assert!(body.contains("recovering"), "{body}");
    rampart.wait_ready().await;
    assert_eq!(ask().await.unwrap().status(), 200);

    // A report that cannot be read is no proof of health.
    std::fs::write(&status, "{\"power\": ").unwrap();
    let (code, body) = readiness_once_drained(&rampart).await;
    assert_eq!(code, 503);
    assert!(body.contains("unusable"), "{body}");
    assert_eq!(ask().await.unwrap().status(), 503);
}
