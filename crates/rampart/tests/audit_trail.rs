//! The audit log on the request path of the running binary: every answer,
//! refusal and stream is in the log with the digests of what was sent, the
//! log verifies, a log that cannot be written refuses service (503 and not
//! ready) and recovers by itself, and auditors read it over HTTPS.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::site::Site;
use common::*;
use futures_util::StreamExt;
use rampart_audit::entry::{Entry, Phase, sha256_hex};
use rampart_audit::storage::FsStorage;
use rampart_audit::{keys, verify};
use serde_json::json;

/// A new audit signing key made by the CLI; returns (key path, verifier key).
pub fn audit_key(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("audit.key");
    let output = Command::new(binary())
        .args(["audit", "keygen", "--name", "test.example/audit", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    (key, String::from_utf8(output.stdout).unwrap().trim().to_owned())
}

/// Every published entry of the log in `dir`, after checking that it verifies.
fn published(dir: &Path, vkey: &str) -> Vec<Entry> {
    let storage = FsStorage::new(dir).unwrap();
    let report = verify::verify(&storage, vkey, &mut |_, _| {}).expect("the log verifies");
    let mut entries = Vec::new();
    verify::for_each_entry(&storage, report.size, 0, &mut |_, bytes| entries.push(Entry::decode(bytes).unwrap()))
        .unwrap();
    entries
}

/// The published entries of the log in `dir` once `ready` holds for them:
/// the site publishes what it commits within about 100 ms.
fn entries_when(dir: &Path, vkey: &str, ready: impl Fn(&[Entry]) -> bool) -> Vec<Entry> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let entries = published(dir, vkey);
        if ready(&entries) || std::time::Instant::now() > deadline {
            return entries;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

struct Audited {
    rampart: Rampart,
    keys: tempfile::TempDir,
    vkey: String,
    _upstream: rampart_testkit::MockServer,
}

impl Audited {
    async fn start() -> Self {
        let (upstream, addr) = mock("upstream").await;
        let keys = tempfile::tempdir().unwrap();
        let (key, vkey) = audit_key(keys.path());
        let config = format!(
            "{}{}\n[audit]\ndir = \"audit\"\nsigning_key = \"{}\"\n",
            server_section(""),
            backend("upstream", addr, &["m"], ""),
            key.display()
        );
        let rampart = Rampart::start(&config).await;
        Self { rampart, keys, vkey, _upstream: upstream }
    }

    fn log_dir(&self) -> PathBuf {
        self.rampart.dir.path().join("audit")
    }

    fn entries_when(&self, ready: impl Fn(&[Entry]) -> bool) -> Vec<Entry> {
        entries_when(&self.log_dir(), &self.vkey, ready)
    }
}

fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_refusals_and_streams_are_recorded_with_digests_of_what_was_sent() {
    let site = Audited::start().await;
    let client = reqwest::Client::new();
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hello"}]});
    let sent = serde_json::to_vec(&chat).unwrap();

    let answer = client
        .post(site.rampart.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(sent.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer_id = request_id(&answer);
    let answer_body = answer.bytes().await.unwrap();

    let mut stream_request = chat.clone();
    stream_request["stream"] = json!(true);
    stream_request["stream_options"] = json!({"include_usage": true});
    let stream = client.post(site.rampart.url("/v1/chat/completions")).json(&stream_request).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let stream_id = request_id(&stream);
    let mut streamed = Vec::new();
    let mut chunks = stream.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        streamed.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&streamed).contains("data: [DONE]"));

    let bad = client
        .post(site.rampart.url("/v1/chat/completions"))
        .header("x-request-id", "client-7")
        .json(&json!({"model": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad_id = request_id(&bad);
    assert_ne!(bad_id, "client-7", "the site assigns its own id");
    let listing = client.get(site.rampart.url("/v1/models")).send().await.unwrap();
    assert_eq!(listing.status(), 200);

    let entries = site.entries_when(|entries| entries.iter().any(|e| e.action == "list_models"));
    let find = |id: &str, phase: Phase| {
        entries.iter().find(|e| e.request_id == id && e.phase == phase).unwrap_or_else(|| panic!("{id} {phase:?}"))
    };
    let complete = find(&answer_id, Phase::Complete);
    assert_eq!((complete.status, complete.allowed, complete.action.as_str()), (200, true, "infer"));
    assert_eq!(complete.backend.as_deref(), Some("upstream"));
    assert_eq!(complete.client_request_id, None, "no id was sent");
    let refused = entries.iter().find(|e| e.request_id == bad_id).unwrap();
    assert_eq!(refused.client_request_id.as_deref(), Some("client-7"), "the client's id is recorded beside the site's");
    assert_eq!(complete.model.as_deref(), Some("m"));
    // The request's digest is keyed by the site: a reader of the log cannot confirm a guessed
    // request by hashing it, and the holder of the signing key finds its entry.
    let body_file = site.keys.path().join("sent.json");
    std::fs::write(&body_file, &sent).unwrap();
    let digest = Command::new(binary())
        .args(["audit", "digest", "--signing-key"])
        .arg(site.keys.path().join("audit.key"))
        .arg(&body_file)
        .output()
        .unwrap();
    assert!(digest.status.success(), "{}", String::from_utf8_lossy(&digest.stderr));
    let digest = String::from_utf8(digest.stdout).unwrap().trim().to_owned();
    assert_eq!(complete.request_sha256.as_deref(), Some(digest.as_str()));
    assert_ne!(digest, sha256_hex(&sent));
    assert_eq!(complete.response_sha256.as_deref(), Some(sha256_hex(&answer_body).as_str()));
    assert_eq!(complete.request_label.as_deref(), Some("NATO UNCLASSIFIED"));
    assert_eq!(complete.response_label.as_deref(), Some("NATO UNCLASSIFIED"));
    assert!(complete.policies.contains(&"rampart/infer".to_owned()), "{:?}", complete.policies);
    assert!(complete.prompt_tokens.is_some() && complete.completion_tokens.is_some());
    assert!(complete.caller.is_some());

    let start = find(&stream_id, Phase::Start);
    let end = find(&stream_id, Phase::End);
    assert!(start.response_sha256.is_none() && start.allowed);
    assert_eq!(end.response_sha256.as_deref(), Some(sha256_hex(&streamed).as_str()), "every byte sent");
    assert_eq!(end.code, None);
    assert!(end.prompt_tokens.is_some() && end.completion_tokens.is_some(), "the usage chunk's counts");
    let refused = find(&bad_id, Phase::Complete);
    assert_eq!((refused.status, refused.allowed), (400, false));
    assert!(refused.code.is_some());
    assert!(entries.iter().any(|e| e.action == "list_models" && e.status == 200));
    // Never the text of a prompt or an answer.
    let mut dirs = vec![site.log_dir()];
    while let Some(dir) = dirs.pop() {
        for file in std::fs::read_dir(dir).unwrap() {
            let path = file.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let data = std::fs::read(&path).unwrap();
                assert!(!String::from_utf8_lossy(&data).contains("hello"), "no prompt text in {}", path.display());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_that_cannot_be_written_refuses_service_then_recovers_by_itself() {
    let site = Audited::start().await;
    let client = reqwest::Client::new();
    let chat = |stream: bool| json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "x"}]});
    let ok = client.post(site.rampart.url("/v1/chat/completions")).json(&chat(false)).send().await.unwrap();
    assert_eq!(ok.status(), 200);

    site.entries_when(|entries| !entries.is_empty()); // Published: the tile directory exists.

    // The tile directory becomes a plain file: every write under it fails
    // (this holds for root too, unlike a permission change). The journal still
    // takes batches until the next publication fails, so the answers committed
    // before then are acknowledged (they are durable); after it nothing is served.
    let tiles = site.log_dir().join("tile");
    let moved = site.log_dir().join("tile.moved");
    std::fs::rename(&tiles, &moved).unwrap();
    std::fs::write(&tiles, b"not a directory").unwrap();
    let mut acknowledged_while_failing = 0;
    let refused = loop {
        let answer = client.post(site.rampart.url("/v1/chat/completions")).json(&chat(false)).send().await.unwrap();
        if answer.status() != 200 || acknowledged_while_failing == 100 {
            break answer;
        }
        acknowledged_while_failing += 1;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "audit_unavailable", "{body}");
    let refused = client.post(site.rampart.url("/v1/chat/completions")).json(&chat(true)).send().await.unwrap();
    assert_eq!(refused.status(), 503, "a stream is refused too");
    let ready = client.get(site.rampart.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert!(ready["problems"].to_string().contains("audit log"), "{ready}");

    std::fs::remove_file(&tiles).unwrap();
    std::fs::rename(&moved, &tiles).unwrap();
    // No request needed: the log is probed and readiness comes back.
    site.rampart.wait_ready().await;
    let ok = client.post(site.rampart.url("/v1/chat/completions")).json(&chat(false)).send().await.unwrap();
    assert_eq!(ok.status(), 200);

    let mut expected = vec!["infer"; 1 + acknowledged_while_failing];
    expected.extend(["audit_resumed", "infer"]);
    let entries = site.entries_when(|entries| entries.len() >= expected.len());
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, expected, "refused requests left no entry");
    assert!(entries.iter().all(|e| e.status == 200 || e.action == "audit_resumed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn auditors_read_the_log_over_https_and_others_may_not() {
    let site = Site::start(|_| {}).await;
    let client = site.client(None);
    let vkey = std::fs::read_to_string(site.pki.join("audit.vkey")).unwrap().trim().to_owned();
    assert!(keys::is_verifier_key(&vkey), "{vkey}");
    let answer = site.chat(&client, Some(&site.token("gbr-secret")), None, common::site::ask("shared", "hi")).await;
    assert_eq!(answer.status, 200);

    let get =
        |path: &str, who: &str| client.get(site.url(&format!("/audit/{path}"))).bearer_auth(site.token(who)).send();
    // The answer's entry is published (under a new checkpoint) within about 100 ms of its commit.
    let mut size = 0;
    for _ in 0..250 {
        let checkpoint = get("checkpoint", "auditor").await.unwrap();
        assert_eq!(checkpoint.status(), 200);
        let signed = checkpoint.bytes().await.unwrap();
        size = keys::open_checkpoint(&vkey, &signed).expect("signed by the site").size();
        if size >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(size >= 1, "the checkpoint covers the answer");

    let refused = get("checkpoint", "gbr-secret").await.unwrap();
    assert_eq!(refused.status(), 403);
    let refused: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["type"], "permission_error", "{refused}");
    for path in ["site.toml", "tile%2F..%2F..%2Fsite.toml", ".checkpoint.tmp", "tile/0/1", "journal"] {
        assert_eq!(get(path, "auditor").await.unwrap().status(), 404, "{path}");
    }
    let unauthenticated = client.get(site.url("/audit/checkpoint")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let bundle = get(&format!("tile/entries/000.p/{size}"), "auditor").await.unwrap();
    assert_eq!(bundle.status(), 200, "partial bundles stay published as the log grows");

    // The reads are themselves in the log, refused ones too.
    let read = |allowed: bool, status: u16| {
        move |e: &Entry| e.action == "read_audit" && e.allowed == allowed && e.status == status
    };
    let entries = entries_when(&site.pki.join("audit"), &vkey, |entries| {
        entries.iter().any(read(true, 200)) && entries.iter().any(read(false, 403))
    });
    assert!(entries.iter().any(read(true, 200)));
    assert!(entries.iter().any(read(false, 403)));
}
