//! The router driven in-process (`oneshot`, no server, no sockets of its
//! own) in front of the testkit upstream: each stage's refusal reaches the
//! client in OpenAI's format, and what passes every stage is served and labelled.

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::state::{Shared, Worker};

/// A dev site (no identity, no audit log) in front of the testkit upstream at `upstream`.
fn site(upstream: std::net::SocketAddr) -> axum::Router {
    site_with(upstream, None)
}

/// The same site, recording into `trail`.
fn site_with(upstream: std::net::SocketAddr, trail: Option<crate::trail::Trail>) -> axum::Router {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
insecure_dev = true
max_body_bytes = 4096
[labels]
default_label = "NATO UNCLASSIFIED"
[[backends]]
name = "mock"
url = "http://{upstream}/v1"
models = ["shared"]
accreditation = "NATO CONFIDENTIAL"
"#
    );
    let config = rampart_config::Config::parse(&text, std::path::Path::new(".")).expect("a valid configuration");
    let shared = std::sync::Arc::new(Shared::new(&config, Vec::new(), trail).expect("the site starts"));
    super::router(Worker::new(shared))
}

async fn upstream() -> (rampart_testkit::MockServer, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (rampart_testkit::spawn(listener, "mock"), addr)
}

fn chat(body: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::post("/v1/chat/completions").header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

async fn answer(router: &axum::Router, request: Request<Body>) -> (StatusCode, Option<String>, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let label = response.headers().get("rampart-label").map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, label, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn ask(text: &str) -> String {
    json!({"model": "shared", "messages": [{"role": "user", "content": text}]}).to_string()
}

#[tokio::test]
async fn what_passes_every_stage_is_served_and_labelled() {
    let (mock, addr) = upstream().await;
    let router = site(addr);
    let (status, label, body) = answer(&router, chat(&ask("Hi"), &[])).await;
    assert_eq!((status, label.as_deref()), (StatusCode::OK, Some("NATO UNCLASSIFIED")), "{body}");
    assert_eq!(body["rampart"]["label"]["classification"], "UNCLASSIFIED");
    // The anonymous development caller is cleared for the default label only.
    let (status, _, body) = answer(&router, chat(&ask("(NC) the convoy"), &[])).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("label_exceeds_clearance")));
    assert_eq!(mock.stats.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn each_stage_refuses_in_openai_format() {
    let (mock, addr) = upstream().await;
    let router = site(addr);
    let refusals = [
        (
            "admit: content type",
            Request::post("/v1/chat/completions").body(Body::from(ask("Hi"))).unwrap(),
            415,
            "unsupported_media_type",
        ),
        ("admit: body limit", chat(&ask(&"x".repeat(5000)), &[]), 413, "request_too_large"),
        (
            "parse: bad parameter",
            chat(r#"{"model":"shared","messages":[{"role":"robot","content":"x"}]}"#, &[]),
            400,
            "invalid_parameter",
        ),
        (
            "parse: unscannable part",
            chat(
                r#"{"model":"shared","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}"#,
                &[],
            ),
            400,
            "unscannable_content",
        ),
        (
            "parse: token-id embeddings",
            Request::post("/v1/embeddings")
                .header("content-type", "application/json")
                .body(Body::from(r#"{"model":"shared","input":[1,2,3]}"#))
                .unwrap(),
            400,
            "unscannable_content",
        ),
        (
            "parse: unknown model",
            chat(r#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#, &[]),
            404,
            "model_not_found",
        ),
        (
            "label: repeated header",
            chat(&ask("Hi"), &[("rampart-label", "NATO UNCLASSIFIED"), ("rampart-label", "NATO SECRET")]),
            400,
            "duplicate_header",
        ),
        (
            "label: member named twice",
            chat(r#"{"model":"shared","messages":[{"role":"user","content":"a","name":"x","name":"y"}]}"#, &[]),
            400,
            "duplicate_member",
        ),
        ("label: invalid declaration", chat(&ask("Hi"), &[("rampart-label", "NATO PURPLE")]), 400, "invalid_label"),
        ("authorize: above the clearance", chat(&ask("ＮＡＴＯ ＳＥＣＲＥＴ"), &[]), 403, "label_exceeds_clearance"),
    ];
    for (stage, request, status, code) in refusals {
        let (got, _, body) = answer(&router, request).await;
        assert_eq!((got.as_u16(), body["error"]["code"].as_str()), (status, Some(code)), "{stage}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{stage}: {body}");
    }
    assert_eq!(mock.stats.requests.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing refused reached the backend");
}

#[tokio::test]
async fn every_answer_and_refusal_is_in_the_audit_log_before_it_is_released() {
    use rampart_audit::entry::Entry;
    use rampart_audit::journal::{self, Record};
    use rampart_audit::storage::Storage as _;

    let (_mock, addr) = upstream().await;
    let (skey, _) = rampart_audit::keys::generate("oneshot.test").unwrap();
    let log = rampart_audit::log::Log::open(rampart_audit::memory::MemStorage::new(), skey).unwrap();
    let storage = log.shared_storage();
    let router = site_with(addr, Some(crate::trail::Trail::start(log).unwrap()));
    let (ok, _, _) = answer(&router, chat(&ask("Hi"), &[])).await;
    let (refused, _, _) = answer(&router, chat(&ask("ＮＡＴＯ ＳＥＣＲＥＴ"), &[])).await;
    assert_eq!((ok, refused), (StatusCode::OK, StatusCode::FORBIDDEN));
    // Both are durable in the journal by the time the answers were released.
    let journal = storage.read_journal().unwrap().expect("a journal");
    let entries: Vec<Entry> = journal::read(&journal)
        .into_iter()
        .flat_map(|record| match record {
            Record::Entries { entries, .. } => entries,
            Record::Base { .. } => Vec::new(),
        })
        .map(|bytes| Entry::decode(&bytes).unwrap())
        .filter(|entry| entry.action == "infer")
        .collect();
    let seen: Vec<_> = entries.iter().map(|e| (e.allowed, e.status, e.request_label.as_deref())).collect();
    assert_eq!(seen, [(true, 200, Some("NATO UNCLASSIFIED")), (false, 403, Some("NATO SECRET"))]);
}
