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
    site_with(upstream, None, "NATO UNCLASSIFIED")
}

/// The same site, recording into `trail`, with this default label (the anonymous caller's clearance).
fn site_with(upstream: std::net::SocketAddr, trail: Option<crate::trail::Trail>, default_label: &str) -> axum::Router {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
insecure_dev = true
max_body_bytes = 4096
[labels]
default_label = "{default_label}"
[[backends]]
name = "mock"
url = "http://{upstream}/v1"
models = ["shared", "marked"]
accreditation = "NATO CONFIDENTIAL"
"#
    );
    let config = rampart_config::Config::parse(&text, std::path::Path::new(".")).expect("a valid configuration");
    let shared = std::sync::Arc::new(Shared::new(&config, Vec::new(), trail).expect("the site starts"));
    crate::router(Worker::new(shared))
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
        (
            "parse: member named twice inside a content part",
            chat(
                r#"{"model":"shared","messages":[{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}]}"#,
                &[],
            ),
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
    let (_mock, addr) = upstream().await;
    let (router, storage) = recorded_site(addr, "NATO UNCLASSIFIED");
    let (ok, _, _) = answer(&router, chat(&ask("Hi"), &[])).await;
    let (refused, _, _) = answer(&router, chat(&ask("ＮＡＴＯ ＳＥＣＲＥＴ"), &[])).await;
    assert_eq!((ok, refused), (StatusCode::OK, StatusCode::FORBIDDEN));
    // Both are durable in the journal by the time the answers were released.
    let entries = inference_entries(&storage);
    let seen: Vec<_> = entries.iter().map(|e| (e.allowed, e.status, e.request_label.as_deref())).collect();
    assert_eq!(seen, [(true, 200, Some("NATO UNCLASSIFIED")), (false, 403, Some("NATO SECRET"))]);
}

async fn get(router: &axum::Router, path: &str) -> (StatusCode, String) {
    let response = router.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn identify_refuses_what_it_cannot_believe_before_the_body_is_read() {
    let (mock, addr) = upstream().await;
    let router = site(addr);
    let refusals = [
        (
            "two Authorization headers",
            ("authorization", "Bearer a"),
            ("authorization", "Bearer b"),
            400,
            "duplicate_header",
        ),
        ("two assertions", ("rampart-assertion", "x"), ("rampart-assertion", "y"), 400, "duplicate_header"),
        ("an assertion with no federation", ("rampart-assertion", "x.y.z"), ("x-other", "1"), 401, "peer_not_trusted"),
    ];
    for (what, first, second, status, code) in refusals {
        // The body is over the limit: identify answers first, so it is never read.
        let (got, _, body) = answer(&router, chat(&ask(&"x".repeat(5000)), &[first, second])).await;
        assert_eq!((got.as_u16(), body["error"]["code"].as_str()), (status, Some(code)), "{what}: {body}");
    }
    assert_eq!(mock.stats.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_stage_left_out_fails_closed_and_nothing_is_served() {
    use axum::middleware::from_fn_with_state;
    use tower::ServiceBuilder;

    use super::StageLayer;
    use super::admit::Admit;
    use super::identify::Identify;
    use super::label::LabelStage;
    use super::parse::Parse;
    use super::place::Place;
    use super::record::{Count, Recording};
    use crate::request::Route;

    let (mock, addr) = upstream().await;
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ninsecure_dev = true\n[labels]\ndefault_label = \"NATO UNCLASSIFIED\"\n[[backends]]\nname = \"mock\"\nurl = \"http://{addr}/v1\"\nmodels = [\"shared\"]\n"
    );
    let config = rampart_config::Config::parse(&text, std::path::Path::new(".")).unwrap();
    let w = Worker::new(std::sync::Arc::new(Shared::new(&config, Vec::new(), None).unwrap()));
    let route = Route::ChatCompletions;
    // Every stage but authorize.
    let shared = &w.shared;
    let stages = ServiceBuilder::new()
        .layer(from_fn_with_state(Recording::new(&w, rampart_policy::Action::Infer, Count::Not), super::record::layer))
        .layer(StageLayer(Identify::inference(shared)))
        .layer(StageLayer(Admit(shared.clone())))
        .layer(StageLayer(Parse(shared.clone(), route)))
        .layer(StageLayer(LabelStage(shared.clone())))
        .layer(StageLayer(Place(shared.clone())));
    let router = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(super::serve::handler).route_layer(stages))
        .layer(axum::middleware::from_fn(crate::request_id::assign))
        .with_state(w);
    let (status, _, body) = answer(&router, chat(&ask("Hi"), &[])).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some("stage_missing")));
    assert_eq!(mock.stats.requests.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing unauthorized is served");
}

#[tokio::test]
async fn listings_routes_and_metrics_answer_in_openai_format() {
    let (_mock, addr) = upstream().await;
    let router = site(addr);
    let (status, listing) = get(&router, "/v1/models").await;
    let listing: Value = serde_json::from_str(&listing).unwrap();
    assert_eq!((status, listing["data"][0]["id"].as_str()), (StatusCode::OK, Some("shared")));
    let (status, body) = get(&router, "/v1/models/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("model_not_found"), "{body}");
    let (status, body) = get(&router, "/v2/anything").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("unknown_route"), "{body}");
    let (status, body) = get(&router, "/v1/chat/completions").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body.contains("method_not_allowed"), "{body}");
    // A dev site without identity lets anyone read its metrics.
    let (status, metrics) = get(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.contains(r#"rampart_requests_total{route="models",model="all",status="200"} 1"#), "{metrics}");
}

#[tokio::test]
async fn a_stream_counts_in_flight_until_its_last_event() {
    let (mock, addr) = upstream().await;
    let router = site(addr);
    let body = json!({"model": "shared", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let response = router.clone().oneshot(chat(&body.to_string(), &[])).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let in_flight =
        |metrics: &str| metrics.lines().find(|l| l.starts_with("rampart_in_flight_requests ")).map(str::to_owned);
    let (_, during) = get(&router, "/metrics").await;
    assert_eq!(in_flight(&during).as_deref(), Some("rampart_in_flight_requests 1"), "the stream is still open");
    let events = response.into_body().collect().await.unwrap().to_bytes();
    assert!(events.ends_with(b"data: [DONE]\n\n"), "{}", String::from_utf8_lossy(&events));
    let (_, after) = get(&router, "/metrics").await;
    assert_eq!(in_flight(&after).as_deref(), Some("rampart_in_flight_requests 0"));
    assert!(
        after.contains(r#"rampart_requests_total{route="chat_completions",model="shared",status="200"} 1"#),
        "{after}"
    );
    assert_eq!(mock.stats.streams_completed.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A dev site recording into an audit log in memory, and that log's storage.
fn recorded_site(
    upstream: std::net::SocketAddr,
    default_label: &str,
) -> (axum::Router, std::sync::Arc<dyn rampart_audit::storage::Storage>) {
    let (skey, _) = rampart_audit::keys::generate("oneshot.test").unwrap();
    let log = rampart_audit::log::Log::open(rampart_audit::memory::MemStorage::new(), skey).unwrap();
    let storage = log.shared_storage();
    (site_with(upstream, Some(crate::trail::Trail::start(log).unwrap()), default_label), storage)
}

/// The inference entries of the journal, in order.
fn inference_entries(
    storage: &std::sync::Arc<dyn rampart_audit::storage::Storage>,
) -> Vec<rampart_audit::entry::Entry> {
    journal_entries(storage)
        .iter()
        .map(|bytes| rampart_audit::entry::Entry::decode(bytes).unwrap())
        .filter(|entry| entry.action == "infer")
        .collect()
}

/// Every entry of the journal as recorded, in order.
pub(super) fn journal_entries(storage: &std::sync::Arc<dyn rampart_audit::storage::Storage>) -> Vec<Vec<u8>> {
    use rampart_audit::journal::{self, Record};
    let journal = storage.read_journal().unwrap().expect("a journal");
    journal::read(&journal)
        .into_iter()
        .flat_map(|record| match record {
            Record::Entries { entries, .. } => entries,
            Record::Base { .. } => Vec::new(),
        })
        .collect()
}

#[tokio::test]
async fn an_answer_marked_above_its_label_is_withheld_and_recorded() {
    let (mock, addr) = upstream().await;
    // The anonymous caller is cleared for NATO CONFIDENTIAL, and asks at NATO UNCLASSIFIED.
    let (router, storage) = recorded_site(addr, "NATO CONFIDENTIAL");
    let ask_marked = |stream: bool| {
        json!({"model": "marked", "stream": stream, "messages": [{"role": "user", "content": "When?"}]}).to_string()
    };
    let unclassified = [("rampart-label", "NATO UNCLASSIFIED")];

    // Asked at NATO UNCLASSIFIED, the model writes NATO CONFIDENTIAL: withheld whole.
    let response = router.clone().oneshot(chat(&ask_marked(false), &unclassified)).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.contains("answer_above_label") && !text.contains("convoy"), "{text}");

    // A stream is cut at the token completing the marking, and the model stopped.
    let response = router.clone().oneshot(chat(&ask_marked(true), &unclassified)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a stream's status is sent before the model writes");
    let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.contains("answer_above_label") && !text.contains("convoy") && !text.contains("[DONE]"), "{text}");
    let stopped = async {
        while mock.stats.cancelled.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), stopped).await.expect("the model was stopped");
    assert_eq!(mock.stats.streams_completed.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Asked at the answer's level, it is released, labelled at that level.
    let (status, label, body) = answer(&router, chat(&ask_marked(false), &[])).await;
    assert_eq!((status, label.as_deref()), (StatusCode::OK, Some("NATO CONFIDENTIAL")));
    assert_eq!(body["choices"][0]["message"]["content"], rampart_testkit::MARKED_TOKENS.concat());

    let seen: Vec<_> = inference_entries(&storage).iter().map(|e| (e.status, e.code.clone(), e.phase)).collect();
    use rampart_audit::entry::Phase;
    let withheld = Some("answer_above_label".to_owned());
    assert_eq!(
        seen,
        [
            (502, withheld.clone(), Phase::Complete),
            (200, None, Phase::Start),
            (200, withheld, Phase::End),
            (200, None, Phase::Complete)
        ]
    );
}
