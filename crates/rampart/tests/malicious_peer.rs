//! A compromised peer: a server holding a real site certificate (`deu-south`)
//! that answers whatever the test scripts. The site in front of the caller
//! (`gbr-north`, a real process) must check the peer's answers as it checks
//! its own: nothing above the caller's clearance or outside its nation's
//! releasability is released, in an answer, a stream or an error body.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::site::{dev_init, pki_client, pki_token};
use common::{Rampart, cli, free_port, mock, site_pin};
use rampart_identity::{AssertedRequest, AssertionSigner, AuthMethod, Principal};
use rampart_labels::{Clearance, Policies};
use rampart_testkit::{Script, spawn_scripted_tls};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

fn config(pki: &Path, port: u16, peer_port: u16, backend: std::net::SocketAddr) -> String {
    let dir = pki.display();
    let pin = site_pin(&pki.join("sites/deu-south.pem"));
    format!(
        r#"[server]
listen = "127.0.0.1:{port}"
[server.tls]
cert = "{dir}/sites/gbr-north.pem"
key = "{dir}/sites/gbr-north.key"

[identity]
jwks = "{dir}/jwks.json"
issuer = "rampart-dev"
audience = "rampart"
client_ca = ["{dir}/ca.pem"]
directory = "{dir}/directory.toml"

[labels]
default_label = "NATO UNCLASSIFIED"

[audit]
dir = "{dir}/gbr-north/audit"
signing_key = "{dir}/gbr-north/audit-key"

[proxy]
health_interval_ms = 200

[federation]
cert = "{dir}/sites/gbr-north.pem"
key = "{dir}/sites/gbr-north.key"
ca = "{dir}/ca.pem"

[site]
id = "gbr-north"

[[sites]]
id = "gbr-north"
jurisdiction = "GBR"
operators = ["GBR"]
security_level = 4
accreditation = "NATO SECRET"
backends = ["local"]

[[sites]]
id = "deu-south"
jurisdiction = "DEU"
operators = ["DEU"]
security_level = 4
accreditation = "NATO SECRET"
models = ["peer-model"]
peer = "https://127.0.0.1:{peer_port}"
key_sha256 = ["{pin}"]

[[backends]]
name = "local"
url = "http://{backend}/v1"
models = ["local-model"]
accreditation = "NATO SECRET"
"#
    )
}

/// The peer's TLS: the deu-south site certificate and key of the PKI at `pki`.
fn peer_tls(pki: &Path) -> Arc<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(pki.join("sites/deu-south.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(pki.join("sites/deu-south.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}

/// The `rid` claim of an assertion (its payload read without checking: the site checks it).
fn token_rid(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["rid"].as_str().unwrap().to_owned()
}

/// What the peer answers (what, status, headers, body), and what the caller must get (status, code).
type Case<'a> = (&'a str, u16, Vec<(&'a str, &'a str)>, String, u16, &'a str);

fn completion(content: &str, extra: serde_json::Value) -> String {
    let mut answer = json!({
        "id": "chatcmpl-peer", "object": "chat.completion", "created": 0, "model": "peer-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    });
    for (key, value) in extra.as_object().unwrap() {
        answer[key] = value.clone();
    }
    answer.to_string()
}

fn event(content: &str) -> String {
    let chunk =
        json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": content}}]});
    format!("data: {chunk}\n\n")
}

/// A second certificate in deu-south's name from the same CA, with its own key,
/// in `PKI/impostor/sites/deu-south.pem` and `.key`; returns `PKI/impostor`.
fn impostor(pki: &Path) -> std::path::PathBuf {
    let dir = pki.join("impostor");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["ca.pem", "ca.key"] {
        std::fs::copy(pki.join(file), dir.join(file)).unwrap();
    }
    cli(&[&"dev", &"site-cert", &dir, &"--site", &"deu-south", &"--nation", &"DEU"]);
    dir
}

/// The site gbr-north (a real process) whose peer deu-south is played by a
/// scripted server: (the PKI's directory, the site, the script, the site's port, its backend).
async fn start() -> (tempfile::TempDir, Rampart, Script, u16, rampart_testkit::MockServer) {
    start_with_peer(false).await
}

/// As [`start`]; with `impostor`, the scripted peer holds a second deu-south
/// certificate from the same CA (see [`impostor`]) instead of the real one.
async fn start_with_peer(impostor: bool) -> (tempfile::TempDir, Rampart, Script, u16, rampart_testkit::MockServer) {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = pki_dir.path();
    dev_init(pki);
    for (site, nation) in [("gbr-north", "GBR"), ("deu-south", "DEU")] {
        let issued = cli(&[&"dev", &"site-cert", &pki, &"--site", &site, &"--nation", &nation]);
        assert!(issued.status.success(), "{}", String::from_utf8_lossy(&issued.stderr));
    }
    let peer_pki = if impostor { self::impostor(pki) } else { pki.to_owned() };
    std::fs::create_dir_all(pki.join("gbr-north")).unwrap();
    cli(&[&"audit", &"keygen", &"--name", &"rampart.test/gbr-north", &"--out", &pki.join("gbr-north/audit-key")]);

    let script = Script::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer_port = listener.local_addr().unwrap().port();
    spawn_scripted_tls(listener, peer_tls(&peer_pki), script.clone());
    let (backend, addr) = mock("local").await;
    let port = free_port();
    let path = pki.join("gbr-north/rampart.toml");
    std::fs::write(&path, config(pki, port, peer_port, addr)).unwrap();
    let site = Rampart::start_file(&path, port, tempfile::tempdir().unwrap(), "https").await;
    (pki_dir, site, script, port, backend)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compromised_peer_cannot_release_what_the_caller_may_not_read() {
    let (pki_dir, site, script, port, _backend) = start().await;
    let pki = pki_dir.path();
    let client = pki_client(pki, None);
    let ask = |who: &str, stream: bool| {
        client
            .post(format!("https://127.0.0.1:{port}/v1/chat/completions"))
            .bearer_auth(pki_token(pki, who))
            .json(
                &json!({"model": "peer-model", "stream": stream, "messages": [{"role": "user", "content": "Report?"}]}),
            )
            .send()
    };
    let json_type = ("content-type", "application/json");
    let secret_text = "The reserve battalion is at Orlen";

    // An honest answer, labelled as asked, is released.
    script.answer(200, &[json_type, ("rampart-label", "NATO UNCLASSIFIED")], &completion("All quiet.", json!({})));
    let honest = ask("deu-confidential", false).await.unwrap();
    assert_eq!(honest.status(), 200);
    assert_eq!(honest.headers()["rampart-label"], "NATO UNCLASSIFIED");

    let cases: Vec<Case> = vec![
        (
            "a label above the caller's clearance",
            200,
            vec![json_type, ("rampart-label", "NATO SECRET")],
            completion(secret_text, json!({})),
            403,
            "peer_answer_above_clearance",
        ),
        (
            "a releasability the caller's nation is not in",
            200,
            vec![json_type, ("rampart-label", "NATO CONFIDENTIAL REL TO GBR")],
            completion(secret_text, json!({})),
            403,
            "peer_answer_above_clearance",
        ),
        (
            "a special category the caller does not hold",
            200,
            vec![json_type, ("rampart-label", "NATO RESTRICTED ATOMAL")],
            completion(secret_text, json!({})),
            403,
            "peer_answer_above_clearance",
        ),
        (
            "a 203 above the caller's clearance",
            203,
            vec![json_type, ("rampart-label", "NATO SECRET")],
            completion(secret_text, json!({})),
            403,
            "peer_answer_above_clearance",
        ),
        (
            "text marked above the answer's label",
            200,
            vec![json_type, ("rampart-label", "NATO UNCLASSIFIED")],
            completion(&format!("NATO SECRET {secret_text}"), json!({})),
            502,
            "answer_above_label",
        ),
        (
            "a marking outside what a model writes",
            200,
            vec![json_type, ("rampart-label", "NATO UNCLASSIFIED")],
            completion("All quiet.", json!({"system_fingerprint": format!("(NS//REL TO GBR) {secret_text}")})),
            502,
            "answer_above_label",
        ),
        (
            "an HTML answer marked above its label",
            200,
            vec![("content-type", "text/html"), ("rampart-label", "NATO UNCLASSIFIED")],
            format!("<p>NATO SECRET</p><p>{secret_text}</p>"),
            502,
            "answer_above_label",
        ),
        (
            "two label headers",
            200,
            vec![json_type, ("rampart-label", "NATO UNCLASSIFIED"), ("rampart-label", "NATO SECRET")],
            completion(secret_text, json!({})),
            502,
            "peer_label_invalid",
        ),
        (
            "a body label that differs from the header",
            200,
            vec![json_type, ("rampart-label", "NATO UNCLASSIFIED")],
            completion(secret_text, json!({"rampart": {"label": {"policy": "NATO", "classification": "SECRET"}}})),
            502,
            "peer_label_invalid",
        ),
        (
            "a body naming a member twice",
            200,
            vec![json_type, ("rampart-label", "NATO UNCLASSIFIED")],
            format!(r#"{{"choices":[{{"index":0,"message":{{"content":"ok","content":"{secret_text}"}}}}]}}"#),
            502,
            "peer_label_invalid",
        ),
        (
            "an error body marked above its label",
            403,
            vec![json_type],
            json!({"error": {"message": format!("NATO SECRET {secret_text}"), "type": "x", "code": "x"}}).to_string(),
            502,
            "answer_above_label",
        ),
        (
            "an error labelled above the caller's clearance",
            400,
            vec![json_type, ("rampart-label", "NATO SECRET")],
            json!({"error": {"message": secret_text, "type": "x", "code": "x"}}).to_string(),
            403,
            "peer_answer_above_clearance",
        ),
    ];
    for (what, status, headers, body, want_status, want_code) in &cases {
        script.answer(*status, headers, body);
        let answer = ask("deu-confidential", false).await.unwrap();
        let got = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        assert_eq!(got, *want_status, "{what}: {text}");
        assert!(text.contains(&format!("\"code\":\"{want_code}\"")), "{what}: {text}");
        assert!(!text.contains("Orlen"), "{what}: the peer's text reached the caller: {text}");
    }

    // A peer's refusal reaches the caller with its code, never the peer's policy ids.
    let refusal = json!({"error": {"message": "forbidden (decided by policy deu-ops-secret-rule-7)", "type": "permission_error", "code": "policy_forbids", "param": null}});
    script.answer(403, &[json_type, ("rampart-label", "NATO UNCLASSIFIED")], &refusal.to_string());
    let refused = ask("deu-confidential", false).await.unwrap();
    assert_eq!(refused.status(), 403);
    let text = refused.text().await.unwrap();
    assert!(text.contains("\"code\":\"policy_forbids\"") && !text.contains("deu-ops-secret-rule-7"), "{text}");

    // A stream labelled below what it writes is cut where the marking completes.
    let stream = [event("NATO SEC"), event("RET "), event(secret_text), "data: [DONE]\n\n".to_owned()].concat();
    script.answer(200, &[("content-type", "text/event-stream"), ("rampart-label", "NATO UNCLASSIFIED")], &stream);
    let cut = ask("deu-confidential", true).await.unwrap();
    let text = cut.text().await.unwrap();
    assert!(text.contains("answer_above_label") && !text.contains("[DONE]") && !text.contains("Orlen"), "{text}");
    // And one labelled above the caller is refused before its first byte.
    script.answer(200, &[("content-type", "text/event-stream"), ("rampart-label", "NATO SECRET")], &stream);
    let refused = ask("deu-confidential", true).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(!refused.text().await.unwrap().contains("Orlen"));

    // The audit entry of a refused answer says why.
    let audit = pki.join("gbr-north/audit");
    let recorded = common::eventually(10, || {
        common::audit_entries(&audit).iter().any(|e| e.code.as_deref() == Some("peer_answer_above_clearance"))
    })
    .await;
    assert!(recorded, "the refusal is in the audit log with its reason");
    drop(site);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compromised_peer_vouches_only_within_its_bounds_once_for_one_request() {
    let (pki_dir, site, _script, port, _backend) = start().await;
    let pki = pki_dir.path();
    // The test is deu-south: its site certificate on the connection, its key signing assertions.
    let client = pki_client(pki, Some(&pki.join("sites/deu-south")));
    let key = std::fs::read(pki.join("sites/deu-south.key")).unwrap();
    let signer = AssertionSigner::from_pem("deu-south", &key, std::time::Duration::from_secs(30)).unwrap();
    let labels = Policies::nato();
    let analyst = |nation: &str, cleared: &str| Principal {
        subject: format!("{}-analyst", nation.to_lowercase()),
        nation: nation.to_owned(),
        roles: vec!["analyst".to_owned()],
        clearance: Clearance::from_ceiling(&labels.parse_label(cleared).unwrap()),
        method: AuthMethod::Assertion,
    };
    let label = labels.parse_label("NATO UNCLASSIFIED").unwrap();
    let body =
        |text: &str| json!({"model": "local-model", "messages": [{"role": "user", "content": text}]}).to_string();
    let assert_for = |principal: &Principal, id: &str, route: &str, body: &str| {
        let request = AssertedRequest { id, route, body: body.as_bytes() };
        signer.sign("gbr-north", principal, &label, &request).unwrap()
    };
    let send = |token: String, sent: String, bearer: bool| {
        // The request carries the id it was asserted for, as a forwarding site sends it.
        let rid = token_rid(&token);
        let mut request = client
            .post(format!("https://127.0.0.1:{port}/v1/chat/completions"))
            .header("rampart-assertion", token)
            .header("x-request-id", rid)
            .header("content-type", "application/json")
            .body(sent);
        if bearer {
            request = request.bearer_auth(pki_token(pki, "deu-confidential"));
        }
        request.send()
    };
    let deu = analyst("DEU", "NATO CONFIDENTIAL");
    let asked = body("Hello");

    let token = assert_for(&deu, "r1", "/chat/completions", &asked);
    let served = send(token.clone(), asked.clone(), false).await.unwrap();
    assert_eq!(served.status(), 200, "{}", served.text().await.unwrap());
    let other_id = assert_for(&deu, "r7", "/chat/completions", &asked);
    let refused = client
        .post(format!("https://127.0.0.1:{port}/v1/chat/completions"))
        .header("rampart-assertion", other_id)
        .header("x-request-id", "not-r7")
        .header("content-type", "application/json")
        .body(asked.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.text().await.unwrap().contains("another request id"));
    let cases = [
        ("the same assertion again", token, asked.clone(), false, "already used"),
        ("another body", assert_for(&deu, "r2", "/chat/completions", &asked), body("Other"), false, "another body"),
        ("another route", assert_for(&deu, "r3", "/completions", &asked), asked.clone(), false, "another route"),
        (
            "beside a bearer token",
            assert_for(&deu, "r4", "/chat/completions", &asked),
            asked.clone(),
            true,
            "ambiguous",
        ),
        (
            "a nation it may not vouch for",
            assert_for(&analyst("GBR", "NATO CONFIDENTIAL"), "r5", "/chat/completions", &asked),
            asked.clone(),
            false,
            "callers of nation GBR",
        ),
        (
            "a clearance above its accreditation",
            assert_for(&analyst("DEU", "COSMIC TOP SECRET"), "r6", "/chat/completions", &asked),
            asked.clone(),
            false,
            "above NATO SECRET",
        ),
    ];
    for (what, token, sent, bearer, why) in cases {
        let refused = send(token, sent, bearer).await.unwrap();
        let status = refused.status().as_u16();
        let text = refused.text().await.unwrap();
        assert_eq!(status, 401, "{what}: {text}");
        assert!(text.contains("invalid_assertion") && text.contains(why), "{what}: {text}");
    }
    drop(site);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_certificate_in_a_peers_name_is_not_the_peer() {
    // Inbound: the impostor connects with its certificate and signs with its own key.
    let (pki_dir, site, _script, port, _backend) = start().await;
    let pki = pki_dir.path();
    let impostor = impostor(pki);
    let client = pki_client(pki, Some(&impostor.join("sites/deu-south")));
    let key = std::fs::read(impostor.join("sites/deu-south.key")).unwrap();
    let signer = AssertionSigner::from_pem("deu-south", &key, std::time::Duration::from_secs(30)).unwrap();
    let labels = Policies::nato();
    let analyst = Principal {
        subject: "deu-analyst".into(),
        nation: "DEU".into(),
        roles: vec!["analyst".into()],
        clearance: Clearance::from_ceiling(&labels.parse_label("NATO CONFIDENTIAL").unwrap()),
        method: AuthMethod::Assertion,
    };
    let body = json!({"model": "local-model", "messages": [{"role": "user", "content": "Hello"}]}).to_string();
    let request = AssertedRequest { id: "r1", route: "/chat/completions", body: body.as_bytes() };
    let token = signer.sign("gbr-north", &analyst, &labels.parse_label("NATO UNCLASSIFIED").unwrap(), &request);
    let refused = client
        .post(format!("https://127.0.0.1:{port}/v1/chat/completions"))
        .header("rampart-assertion", token.unwrap())
        .header("x-request-id", "r1")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let text = refused.text().await.unwrap();
    assert!(text.contains("peer_not_trusted") && text.contains("does not pin"), "{text}");
    drop(site);

    // Outbound: the peer deu-south is played by the impostor; nothing it says reaches the caller.
    let (pki_dir, site, script, port, _backend) = start_with_peer(true).await;
    let pki = pki_dir.path();
    script.answer(
        200,
        &[("content-type", "application/json"), ("rampart-label", "NATO UNCLASSIFIED")],
        &completion("Forwarded to the impostor", json!({})),
    );
    let answer = pki_client(pki, None)
        .post(format!("https://127.0.0.1:{port}/v1/chat/completions"))
        .bearer_auth(pki_token(pki, "deu-confidential"))
        .json(&json!({"model": "peer-model", "messages": [{"role": "user", "content": "Report?"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    let text = answer.text().await.unwrap();
    assert!(text.contains("no_eligible_site") && text.contains("unreachable"), "{text}");
    assert!(!text.contains("impostor"), "{text}");
    drop(site);
}
