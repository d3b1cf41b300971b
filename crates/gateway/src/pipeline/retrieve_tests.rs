//! The retrieve route driven in-process over collections of the example
//! reports, embedded with the real model: what a reader gets, the declared
//! ceiling, Cedar on a collection, errors, and the audit entry.

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use rampart_collections::{CollectionStore as _, FsStore, Summary, source};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::state::{Shared, Worker};

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

/// A dev site (the anonymous caller cleared for NATO SECRET) with collections
/// `exercise` and `closed` (the same reports), the second closed by an operator
/// policy, and `secret` (the SECRET portions only).
fn site(dir: &std::path::Path) -> (axum::Router, std::sync::Arc<dyn rampart_audit::storage::Storage>) {
    let (router, storage, _) = site_with_worker(dir);
    (router, storage)
}

fn site_with_worker(
    dir: &std::path::Path,
) -> (axum::Router, std::sync::Arc<dyn rampart_audit::storage::Storage>, Worker) {
    let model = repo("models/all-MiniLM-L6-v2");
    let policies = rampart_labels::Policies::nato();
    let embedder = rampart_retrieval::Embedder::load(&model).expect("the embedding model (scripts/test fetches it)");
    let files = source::files(&[repo("examples/collections/exercise")]).unwrap();
    let mut documents: Vec<_> =
        files.iter().flat_map(|f| source::read(&policies, f, &Default::default()).unwrap()).collect();
    for portion in documents.iter_mut().flat_map(|d| &mut d.portions) {
        portion.embedding = embedder.embed(&[&portion.text]).unwrap().remove(0);
    }
    let store = FsStore::new(dir.join("collections"), policies.clone());
    let mut secret_only = documents.clone();
    for document in &mut secret_only {
        document.portions.retain(|p| p.label.classification() == "SECRET");
    }
    secret_only.retain(|d| !d.portions.is_empty());
    // A title above its only portion.
    let titled_file = dir.join("titled.md");
    std::fs::write(
        &titled_file,
        "NATO SECRET\n\n# (NS) Operation KESTREL title\n\n(NU) The Kalna ford at Orlen is muddy in spring.\n\nNATO SECRET\n",
    )
    .unwrap();
    let titled = source::read(&policies, &titled_file, &Default::default()).unwrap();
    for (name, documents) in
        [("exercise", &documents), ("closed", &documents), ("secret", &secret_only), ("titled", &titled)]
    {
        let mut pending = Some(documents.clone());
        store
            .update(name, &mut |c| {
                c.upsert(pending.take().unwrap_or_default(), &mut Summary::default());
                Ok(())
            })
            .unwrap();
    }
    let policy = dir.join("closed.cedar");
    std::fs::write(
        &policy,
        "@id(\"closed-collection\")\nforbid (principal, action == Rampart::Action::\"retrieve\", resource == Rampart::Collection::\"closed\");\n",
    )
    .unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ninsecure_dev = true\n[labels]\ndefault_label = \"NATO SECRET\"\n\
         [policy]\nfiles = [\"{}\"]\n[collections]\ndir = \"{}\"\nembedding_model = \"{}\"\n",
        policy.display(),
        dir.join("collections").display(),
        model.display()
    );
    let config = rampart_config::Config::parse(&text, std::path::Path::new(".")).expect("a valid configuration");
    let (skey, _) = rampart_audit::keys::generate("oneshot.test").unwrap();
    let log = rampart_audit::log::Log::open(rampart_audit::memory::MemStorage::new(), skey).unwrap();
    let storage = log.shared_storage();
    let trail = crate::trail::Trail::start(log).unwrap();
    let shared = std::sync::Arc::new(Shared::new(&config, Vec::new(), Some(trail)).expect("the site starts"));
    let worker = Worker::new(shared);
    (crate::router(worker.clone()), storage, worker)
}

async fn retrieve(router: &axum::Router, body: Value, label: Option<&str>) -> (StatusCode, Option<String>, Value) {
    let mut request = Request::post("/v1/retrieve").header("content-type", "application/json");
    if let Some(label) = label {
        request = request.header("rampart-label", label);
    }
    let response = router.clone().oneshot(request.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let status = response.status();
    let label = response.headers().get("rampart-label").map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, label, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The banner of the join of `request` and every result's label.
fn join_of(body: &Value, request: &str) -> String {
    let policies = rampart_labels::Policies::nato();
    let mut label = policies.parse_label(request).unwrap();
    for result in body["results"].as_array().unwrap() {
        label = label.join(&policies.parse_label_json(&result["label"].to_string()).unwrap()).unwrap();
    }
    label.banner()
}

fn ids(body: &Value) -> Vec<String> {
    body["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_reader_retrieves_only_what_they_may_read_labelled_with_all_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let (router, storage) = site(dir.path());
    let ask = json!({"collections": ["exercise"], "query": "Where is the opposing force's reserve armoured battalion?", "top_k": 4});

    let (status, label, body) = retrieve(&router, ask.clone(), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = &body["results"][0];
    let secret_id = ids(&body)[0].clone();
    let (document, portion) = secret_id.split_once('#').unwrap();
    assert_eq!(document, "lantern-intsum-03", "{body}");
    assert!(portion.len() == 16 && portion.bytes().all(|b| b.is_ascii_hexdigit()), "an opaque portion id: {body}");
    assert_eq!(first["portion"].as_str(), Some(portion));
    assert_eq!((first["marking"].as_str(), first["document"].as_str()), (Some("(NS)"), Some("lantern-intsum-03")));
    assert_eq!(first["title"], "STEADFAST LANTERN 26 — intelligence summary, day 3");
    assert!(first["text"].as_str().unwrap().contains("reserve armoured battalion"));
    assert_eq!(label, Some(join_of(&body, "NATO SECRET")), "the join of the request's label and everything returned");
    assert_eq!(body["rampart"]["label"]["classification"], "SECRET");

    // Declaring NATO CONFIDENTIAL caps what is retrieved: nothing above it, and the answer's label with it.
    let (status, label, body) = retrieve(&router, ask.clone(), Some("NATO CONFIDENTIAL")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!ids(&body).is_empty() && !ids(&body).contains(&secret_id), "{body}");
    assert!(!body.to_string().contains("reserve armoured battalion"), "the SECRET portion's text: {body}");
    let marking = |r: &Value| r["marking"].as_str().unwrap().to_owned();
    assert!(
        body["results"].as_array().unwrap().iter().all(|r| ["(NU)", "(NR)", "(NC)"].contains(&marking(r).as_str()))
    );
    assert_eq!(label, Some(join_of(&body, "NATO CONFIDENTIAL")));

    // The audit entry names the portions and their labels, never their text or the query.
    let entries = super::tests::journal_entries(&storage);
    let text: Vec<String> = entries.iter().map(|e| String::from_utf8_lossy(e).into_owned()).collect();
    let capped = text.iter().rfind(|e| e.contains("\"action\":\"retrieve\"")).unwrap();
    let entry = rampart_audit::entry::Entry::decode(capped.as_bytes()).unwrap();
    let retrieved = entry.retrieved.expect("what was retrieved");
    assert_eq!(retrieved.collections, ["exercise"]);
    assert_eq!(retrieved.portions.len(), ids(&body).len());
    assert!(retrieved.portions[0].id.starts_with("exercise/"), "{:?}", retrieved.portions);
    assert!(
        !capped.contains("Drevno") && !capped.contains("armoured") && !capped.contains("exercise document"),
        "{capped}"
    );
}

#[tokio::test]
async fn unknown_closed_and_malformed_requests_are_refused_in_openai_format() {
    let dir = tempfile::tempdir().unwrap();
    let (router, storage) = site(dir.path());
    let (status, _, body) = retrieve(&router, json!({"collections": ["nope"], "query": "x"}), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("collection_not_found")));
    // A collection the caller may not retrieve from (Cedar), or may read nothing of, is answered
    // exactly as one that does not exist; the audit entry keeps the true reason.
    let unknown = |name: &str| json!({"error": {"message": format!("no collection '{name}' is served here"), "type": "not_found_error", "param": "collections", "code": "collection_not_found"}});
    let (status, _, body) = retrieve(&router, json!({"collections": ["closed"], "query": "river"}), None).await;
    assert_eq!((status, &body), (StatusCode::NOT_FOUND, &unknown("closed")));
    let (status, _, body) = retrieve(&router, json!({"collections": ["nope"], "query": "river"}), None).await;
    assert_eq!((status, &body), (StatusCode::NOT_FOUND, &unknown("nope")));
    let ask = json!({"collections": ["exercise", "secret"], "query": "river"});
    let (status, _, body) = retrieve(&router, ask, Some("NATO CONFIDENTIAL")).await;
    assert_eq!((status, &body), (StatusCode::NOT_FOUND, &unknown("secret")));
    let entries = super::tests::journal_entries(&storage);
    let decoded: Vec<_> = entries.iter().map(|e| rampart_audit::entry::Entry::decode(e).unwrap()).collect();
    let closed = decoded.iter().find(|e| e.retrieved.as_ref().is_some_and(|r| r.collections == ["closed"])).unwrap();
    assert!(!closed.allowed && closed.policies.contains(&"closed-collection".to_owned()), "{closed:?}");
    let why = |e: &rampart_audit::entry::Entry| e.retrieved.as_ref().and_then(|r| r.withheld.clone()).map(|w| w.reason);
    assert_eq!(why(closed).as_deref(), Some("forbidden by policy"));
    // Whatever else is named, and in whichever order, the first collection refused is named.
    for order in [["secret", "nope"], ["nope", "secret"]] {
        let ask = json!({"collections": order, "query": "river"});
        let (status, _, body) = retrieve(&router, ask, Some("NATO CONFIDENTIAL")).await;
        assert_eq!((status, &body), (StatusCode::NOT_FOUND, &unknown(order[0])));
    }
    let entries = super::tests::journal_entries(&storage);
    let decoded: Vec<_> = entries.iter().map(|e| rampart_audit::entry::Entry::decode(e).unwrap()).collect();
    let secret = decoded.iter().rfind(|e| why(e).as_deref() == Some("nothing readable")).unwrap();
    assert_eq!(
        (why(secret).as_deref(), secret.code.as_deref()),
        (Some("nothing readable"), Some("collection_not_found"))
    );
    for bad in [
        json!({"collections": ["exercise", "exercise"], "query": "x"}),
        json!({"collections": ["exercise"], "query": "x", "rampart": {"lable": "NATO UNCLASSIFIED"}}),
        json!({"collections": ["exercise"], "query": "x", "rampart": {"collections": ["exercise"]}}),
        json!([{"collections": ["exercise"], "query": "x"}]),
        json!({"collections": [], "query": "x"}),
        json!({"collections": ["exercise"], "query": "  "}),
        json!({"collections": ["exercise"], "query": "x", "top_k": 0}),
        json!({"collections": ["exercise"], "query": "x", "k": 3}),
    ] {
        let (status, _, body) = retrieve(&router, bad.clone(), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"]["message"].is_string());
    }
    // A query carrying a marking above the caller is refused, not searched.
    let (status, _, body) =
        retrieve(&router, json!({"collections": ["exercise"], "query": "COSMIC TOP SECRET plans"}), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("label_exceeds_clearance")));
}

#[tokio::test]
async fn a_worker_runs_a_bounded_number_of_retrievals_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (router, _, worker) = site_with_worker(dir.path());
    let ask = json!({"collections": ["exercise"], "query": "river"});
    let busy = worker.retrievals.clone().try_acquire_many_owned(crate::state::RETRIEVALS_PER_WORKER as u32).unwrap();
    let response = router
        .clone()
        .oneshot(
            Request::post("/v1/retrieve")
                .header("content-type", "application/json")
                .body(Body::from(ask.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    drop(busy);
    let (status, _, body) = retrieve(&router, ask, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_title_above_its_portion_is_not_returned_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (router, _) = site(dir.path());
    let ask = json!({"collections": ["titled"], "query": "Is the ford at Orlen muddy?"});
    // No ceiling declared: the caller may read the title, but its portion's label does not cover it.
    let (status, _, body) = retrieve(&router, ask, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["marking"], "(NU)", "{body}");
    assert!(body["results"][0]["title"].is_null(), "{body}");
    assert!(!body.to_string().contains("KESTREL"), "{body}");
}
