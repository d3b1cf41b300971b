//! Identity, labels and policy against the running binary: a development PKI
//! made by `rampart dev init`, real mutual-TLS handshakes (valid, expired,
//! wrong CA, revoked, unknown subject, a CRL past its nextUpdate), bearer tokens (valid, bad signature,
//! expired, wrong audience), label refusals, labelled answers, model listing
//! filtered by policy, and directory reloads that keep connections open.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::site::*;
use common::*;
use futures_util::StreamExt;
use rampart_identity::Audience;
use rampart_identity::dev::{issue_client_certificate, write_crl, write_crl_until};
use serde_json::{Value, json};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Writes a client certificate for `name` from the site's CA under `stem` (.pem/.key).
fn issue(pki: &Path, stem: &str, name: &str, nation: &str, validity: (SystemTime, SystemTime), serial: u64) {
    let (cert, key) = issue_client_certificate(pki, name, nation, validity, serial).unwrap();
    std::fs::write(pki.join(format!("{stem}.pem")), cert).unwrap();
    std::fs::write(pki.join(format!("{stem}.key")), key).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_init_writes_the_contract_layout() {
    let dir = tempfile::tempdir().unwrap();
    dev_init(dir.path());
    for file in [
        "rampart.toml",
        "ca.pem",
        "server.pem",
        "server.key",
        "token-key.pem",
        "jwks.json",
        "directory.toml",
        "audit-key",
        "audit.vkey",
    ] {
        assert!(dir.path().join(file).is_file(), "{file}");
    }
    for principal in ["gbr-secret", "usa-secret", "deu-confidential", "auditor", "monitor"] {
        for file in
            [format!("clients/{principal}.pem"), format!("clients/{principal}.key"), format!("tokens/{principal}.jwt")]
        {
            assert!(dir.path().join(&file).is_file(), "{file}");
        }
    }
    let check = Command::new(binary()).args(["config", "check"]).arg(dir.path().join("rampart.toml")).output().unwrap();
    // The generated configuration is valid except for the model file, which this test does not fetch.
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success() || stderr.contains("unused.gguf"), "config check: {stderr}");
    // The token key is standard PKCS#8 that OpenSSL reads (and Python's cryptography, and jsonwebtoken).
    let pkey =
        Command::new("openssl").args(["pkey", "-noout", "-in"]).arg(dir.path().join("token-key.pem")).output().unwrap();
    assert!(pkey.status.success(), "openssl: {}", String::from_utf8_lossy(&pkey.stderr));
    let again = Command::new(binary()).args(["dev", "init"]).arg(dir.path()).output().unwrap();
    assert!(!again.status.success(), "an existing PKI is never overwritten");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_tokens_are_verified() {
    let site = Site::start(|_| {}).await;
    let client = site.client(None);

    let ok = site.chat(&client, Some(&site.token("gbr-secret")), None, ask("shared", "Hi")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["choices"][0]["message"]["content"], "Hello from upstream");

    let none = site.chat(&client, None, None, ask("shared", "Hi")).await;
    assert_eq!((none.status, none.code()), (401, "missing_credentials"));
    assert_eq!(none.body["error"]["type"], "authentication_error");

    // Signed by another issuer's key with the same key id.
    let other = tempfile::tempdir().unwrap();
    dev_init(other.path());
    let forged = std::fs::read_to_string(other.path().join("tokens/gbr-secret.jwt")).unwrap();
    let bad = site.chat(&client, Some(forged.trim()), None, ask("shared", "Hi")).await;
    assert_eq!((bad.status, bad.code()), (401, "invalid_token"));
    assert!(bad.message().contains("signature"), "{}", bad.message());

    // Tokens that are not JWTs, or whose parts cannot be read: told what a token must be, in words
    // a caller knows (no library or Rust type names).
    for garbage in ["abc", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJFZERTQSJ9.bm90IGpzb24.c2ln"] {
        let refused = site.chat(&client, Some(garbage), None, ask("shared", "Hi")).await;
        assert_eq!((refused.status, refused.code()), (401, "invalid_token"), "{garbage}");
        let message = refused.message();
        for internal in ["struct", "enum", "variant", "Base64", "JSON error", "InvalidToken", "`", "f64"] {
            assert!(!message.contains(internal), "{garbage}: {message}");
        }
    }

    // Expired beyond the 30 s leeway.
    let expired = site.mint(|c| {
        c.exp = now() - 120;
        c.nbf = Some(now() - 600);
    });
    let late = site.chat(&client, Some(&expired), None, ask("shared", "Hi")).await;
    assert_eq!((late.status, late.code()), (401, "token_expired"));

    let elsewhere = site.mint(|c| c.aud = "another-site".into());
    let wrong = site.chat(&client, Some(&elsewhere), None, ask("shared", "Hi")).await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_token"));
    assert!(wrong.message().contains("audience"), "{}", wrong.message());

    // RFC 7519: an audience array holding this site's is for this site; one without it is not.
    let shared = site.mint(|c| c.aud = Audience::Many(vec!["another-site".into(), "rampart".into()]));
    let ok = site.chat(&client, Some(&shared), None, ask("shared", "Hi")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let others = site.mint(|c| c.aud = Audience::Many(vec!["another-site".into(), "a-third".into()]));
    let wrong = site.chat(&client, Some(&others), None, ask("shared", "Hi")).await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_token"));
    // RFC 9110: the scheme is case-insensitive.
    let token = site.token("gbr-secret");
    for scheme in ["bearer", "BEARER"] {
        let response = client
            .post(site.url("/v1/chat/completions"))
            .header("Authorization", format!("{scheme} {token}"))
            .json(&ask("shared", "Hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }

    let issuer = site.mint(|c| c.iss = "someone-else".into());
    let wrong = site.chat(&client, Some(&issuer), None, ask("shared", "Hi")).await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_token"));

    let early = site.mint(|c| c.nbf = Some(now() + 3600));
    let wrong = site.chat(&client, Some(&early), None, ask("shared", "Hi")).await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_token"));

    let stateless = site.mint(|c| c.nat = "Britain".into());
    let wrong = site.chat(&client, Some(&stateless), None, ask("shared", "Hi")).await;
    assert_eq!((wrong.status, wrong.code()), (401, "bad_credential"));

    let response = client
        .post(site.url("/v1/chat/completions"))
        .header("Authorization", "Basic Zm9vOmJhcg==")
        .json(&ask("shared", "Hi"));
    let basic = Answer::of(response.send().await.unwrap()).await;
    assert_eq!((basic.status, basic.code()), (401, "invalid_token"));
    assert!(!site.rampart.logs().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_are_verified() {
    let expired =
        (SystemTime::now() - Duration::from_secs(2 * 86_400), SystemTime::now() - Duration::from_secs(86_400));
    let valid = (SystemTime::now() - Duration::from_secs(3600), SystemTime::now() + Duration::from_secs(86_400));
    let site = Site::start(|pki| {
        issue(pki, "expired", "gbr-secret", "GBR", expired, 500);
        issue(pki, "revoked", "usa-secret", "USA", valid, 501);
        issue(pki, "stranger", "stranger", "FRA", valid, 502);
        write_crl(pki, &[501]).unwrap();
    })
    .await;

    let gbr = site.client(Some(&site.client_cert("gbr-secret")));
    let ok = site.chat(&gbr, None, None, ask("shared", "Hi")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.label.as_deref(), Some("NATO UNCLASSIFIED"));

    // Clearance from the directory: DEU is cleared only to CONFIDENTIAL.
    let deu = site.client(Some(&site.client_cert("deu-confidential")));
    let refused = site.chat(&deu, None, Some("NATO SECRET"), ask("shared", "Hi")).await;
    assert_eq!((refused.status, refused.code()), (403, "label_exceeds_clearance"));
    let allowed = site.chat(&deu, None, Some("NATO CONFIDENTIAL"), ask("shared", "Hi")).await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);

    // Handshakes that fail: expired, revoked, issued by another CA.
    for stem in ["expired", "revoked"] {
        let client = site.client(Some(&site.pki.join(stem)));
        let result = client.post(site.url("/v1/chat/completions")).json(&ask("shared", "Hi")).send().await;
        assert!(result.is_err(), "a {stem} certificate is refused in the handshake: {result:?}");
    }
    let other = tempfile::tempdir().unwrap();
    dev_init(other.path());
    let foreign = site.client(Some(&other.path().join("clients/gbr-secret")));
    let result = foreign.post(site.url("/v1/chat/completions")).json(&ask("shared", "Hi")).send().await;
    assert!(result.is_err(), "a certificate from another CA is refused: {result:?}");

    // A valid certificate whose subject the directory does not know.
    let stranger = site.client(Some(&site.pki.join("stranger")));
    let unknown = site.chat(&stranger, None, None, ask("shared", "Hi")).await;
    assert_eq!((unknown.status, unknown.code()), (401, "unknown_subject"));
    let logs = site.rampart.logs();
    for reason in ["Expired", "Revoked"] {
        assert!(logs.contains(reason), "the refusal is logged with its reason ({reason}): {logs}");
    }
    // The other CA has the same name, so its signature is what fails.
    assert!(logs.contains("BadSignature") || logs.contains("UnknownIssuer"), "{logs}");
    assert!(!logs.contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn labels_decide_and_answers_carry_them() {
    let site = Site::start(|_| {}).await;
    let client = site.client(None);
    let gbr = site.token("gbr-secret");
    let deu = site.token("deu-confidential");

    // The default label, in the header and in the body.
    let plain = site.chat(&client, Some(&gbr), None, ask("shared", "Hi")).await;
    assert_eq!(plain.label.as_deref(), Some("NATO UNCLASSIFIED"));
    assert_eq!(plain.body["rampart"]["label"]["classification"], "UNCLASSIFIED");
    assert_eq!(plain.body["choices"][0]["message"]["content"], "Hello from upstream", "the answer is intact");

    let secret = site.chat(&client, Some(&gbr), Some("NATO SECRET"), ask("shared", "Hi")).await;
    assert_eq!((secret.status, secret.label.as_deref()), (200, Some("NATO SECRET")));

    let over = site.chat(&client, Some(&deu), Some("NATO SECRET"), ask("shared", "the launch codes")).await;
    assert_eq!((over.status, over.code()), (403, "label_exceeds_clearance"));
    assert_eq!(over.body["error"]["type"], "permission_error");
    assert!(over.message().contains("rampart/label-exceeds-clearance"), "names the policy: {}", over.message());
    assert!(!over.body.to_string().contains("launch"), "never echoes content");
    // Above DEU's clearance but releasable to DEU: only the clearance is named.
    let releasable = site.chat(&client, Some(&deu), Some("NATO SECRET Releasable To DEU"), ask("shared", "Hi")).await;
    assert_eq!((releasable.status, releasable.code()), (403, "label_exceeds_clearance"));
    assert!(!releasable.message().contains("not-releasable"), "{}", releasable.message());

    let for_usa =
        r#"{"policy":"NATO","classification":"SECRET","categories":{"Context":["NATO"],"Releasable To":["USA"]}}"#;
    let foreign = site.chat(&client, Some(&gbr), Some(for_usa), ask("shared", "Hi")).await;
    assert_eq!((foreign.status, foreign.code()), (403, "not_releasable"));
    let usa = site.chat(&client, Some(&site.token("usa-secret")), Some(for_usa), ask("shared", "Hi")).await;
    assert_eq!(usa.status, 200, "{}", usa.body);
    assert_eq!(usa.body["rampart"]["label"]["categories"]["Releasable To"], json!(["USA"]));

    // Cleared higher than the model's accreditation.
    let top = site.mint(|c| c.clearance.classifications = vec!["TOP SECRET".into()]);
    let beyond = site.chat(&client, Some(&top), Some("COSMIC TOP SECRET"), ask("shared", "Hi")).await;
    assert_eq!((beyond.status, beyond.code()), (403, "label_exceeds_accreditation"));

    // Markings in the text raise the label.
    let marked = ask("shared", "Summarise this:\n(NS) The convoy leaves at dawn.");
    let raised = site.chat(&client, Some(&deu), None, marked.clone()).await;
    assert_eq!((raised.status, raised.code()), (403, "label_exceeds_clearance"));
    let raised = site.chat(&client, Some(&gbr), None, marked).await;
    assert_eq!((raised.status, raised.label.as_deref()), (200, Some("NATO SECRET")));

    // A label in the body; a header saying the same is accepted, one saying otherwise refused.
    let mut body = ask("shared", "Hi");
    body["rampart"] = json!({"label": "NATO CONFIDENTIAL"});
    let declared = site.chat(&client, Some(&gbr), None, body.clone()).await;
    assert_eq!((declared.status, declared.label.as_deref()), (200, Some("NATO CONFIDENTIAL")));
    let same = site.chat(&client, Some(&gbr), Some("NATO CONFIDENTIAL"), body.clone()).await;
    assert_eq!((same.status, same.label.as_deref()), (200, Some("NATO CONFIDENTIAL")));
    let differ = site.chat(&client, Some(&gbr), Some("NATO RESTRICTED"), body).await;
    assert_eq!((differ.status, differ.code()), (400, "invalid_label"));

    let bad = site.chat(&client, Some(&gbr), Some("NATO PURPLE"), ask("shared", "Hi")).await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_label"));
    assert_eq!(bad.body["error"]["param"], "Rampart-Label");

    // Streams: the label leads the first event.
    let stream = client
        .post(site.url("/v1/chat/completions"))
        .bearer_auth(&gbr)
        .header("Rampart-Label", "NATO SECRET")
        .json(&json!({"model": "shared", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["rampart-label"], "NATO SECRET");
    let events = sse_events(&stream.text().await.unwrap());
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["rampart"]["label"]["classification"], "SECRET");
    assert_eq!(first["choices"][0]["delta"]["content"], "t0 ");
    assert!(events[1..events.len() - 1].iter().all(|e| !e.contains("\"rampart\"")), "only the first event");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_policies_filter_models() {
    let site = Site::start(|_| {}).await;
    let client = site.client(None);
    let list = |token: String| {
        let request = client.get(site.url("/v1/models")).bearer_auth(token);
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            let mut ids: Vec<String> =
                body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(list(site.token("gbr-secret")).await, ["gbr-only", "marked", "shared", "slow-stream"]);
    assert_eq!(list(site.token("usa-secret")).await, ["marked", "shared", "slow-stream"]);

    let usa = site.token("usa-secret");
    let refused = site.chat(&client, Some(&usa), None, ask("gbr-only", "Hi")).await;
    assert_eq!((refused.status, refused.code()), (403, "policy_forbids"));
    assert!(refused.message().contains("gbr-only-model"), "{}", refused.message());
    let hidden = client.get(site.url("/v1/models/gbr-only")).bearer_auth(&usa).send().await.unwrap();
    assert_eq!(hidden.status(), 404, "a model the caller may not use is not shown");
    let allowed = site.chat(&client, Some(&site.token("gbr-secret")), None, ask("gbr-only", "Hi")).await;
    assert_eq!(allowed.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_directory_reloads_without_dropping_connections() {
    let site = Site::start(|_| {}).await;
    let gbr = site.client(Some(&site.client_cert("gbr-secret")));
    let directory = site.pki.join("directory.toml");
    let original = std::fs::read_to_string(&directory).unwrap();

    // A long stream on the connection that will see the change.
    let stream = gbr
        .post(site.url("/v1/chat/completions"))
        .json(&json!({"model": "slow-stream", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.version(), reqwest::Version::HTTP_2, "one multiplexed connection");
    let mut body = stream.bytes_stream();
    assert!(body.next().await.is_some());

    // Demote gbr-secret to CONFIDENTIAL and signal.
    let demoted = original.replacen(r#"classifications = ["SECRET"]"#, r#"classifications = ["CONFIDENTIAL"]"#, 1);
    assert_ne!(demoted, original);
    std::fs::write(&directory, &demoted).unwrap();
    let pid = site.rampart.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let mut refused = None;
    for _ in 0..100 {
        let answer = site.chat(&gbr, None, Some("NATO SECRET"), ask("shared", "Hi")).await;
        if answer.status == 403 {
            refused = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refused.expect("the demotion takes effect").code(), "label_exceeds_clearance");

    // A broken directory fails closed for certificate callers (503), and the file watch picks up the fix.
    std::fs::write(&directory, "subjects = [").unwrap();
    let mut broken = None;
    for _ in 0..100 {
        let answer = site.chat(&gbr, None, None, ask("shared", "Hi")).await;
        if answer.status != 200 {
            broken = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let broken = broken.expect("the broken file is noticed");
    assert_eq!((broken.status, broken.code()), (503, "directory_unavailable"));
    let ready = site.client(None).get(site.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while certificate callers cannot be identified");
    assert!(ready.text().await.unwrap().contains("directory"));
    std::fs::write(&directory, &original).unwrap();
    let mut restored = false;
    for _ in 0..100 {
        if site.chat(&gbr, None, Some("NATO SECRET"), ask("shared", "Hi")).await.status == 200 {
            restored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(restored, "the watch reloads the fixed file without a signal");
    let ready = site.client(None).get(site.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "ready again");

    // The stream that was open throughout finishes normally.
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.expect("the stream is not cut"));
    }
    assert!(String::from_utf8_lossy(&rest).ends_with("data: [DONE]\n\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_revoked_while_serving_is_refused_after_sighup() {
    let site = Site::start(|_| {}).await;
    // usa-secret's certificate has serial 101 (dev init numbers them from 100 in principal order).
    let usa = || site.client(Some(&site.client_cert("usa-secret")));
    assert_eq!(site.chat(&usa(), None, None, ask("shared", "Hi")).await.status, 200);

    write_crl(&site.pki, &[101]).unwrap();
    let pid = site.rampart.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let mut refused = false;
    for _ in 0..100 {
        if usa().post(site.url("/v1/chat/completions")).json(&ask("shared", "Hi")).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "new handshakes with the revoked certificate fail: {}", site.rampart.logs());
    assert!(site.rampart.logs().contains("CRLs reloaded"));
    // Others are unaffected.
    let gbr = site.client(Some(&site.client_cert("gbr-secret")));
    assert_eq!(site.chat(&gbr, None, None, ask("shared", "Hi")).await.status, 200);

    // A broken CRL keeps the previous settings: the revocation still holds.
    std::fs::write(site.pki.join("crl.pem"), "not a CRL").unwrap();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let failed = eventually(5, || site.rampart.logs().contains("TLS reload failed")).await;
    assert!(failed, "{}", site.rampart.logs());
    assert!(usa().post(site.url("/v1/chat/completions")).json(&ask("shared", "Hi")).send().await.is_err());
    assert_eq!(site.chat(&gbr, None, None, ask("shared", "Hi")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crl_past_its_next_update_refuses_certificates_until_a_fresh_one_is_installed() {
    let site = Site::start(|pki| {
        write_crl_until(pki, &[], SystemTime::now() - Duration::from_secs(3600)).unwrap();
    })
    .await;
    let gbr = || site.client(Some(&site.client_cert("gbr-secret")));
    // A valid, unrevoked certificate: the stale CRL cannot vouch for it, so the handshake fails.
    let result = gbr().post(site.url("/v1/chat/completions")).json(&ask("shared", "Hi")).send().await;
    assert!(result.is_err(), "a certificate covered by a stale CRL is refused: {result:?}");
    assert!(site.rampart.logs().contains("past its nextUpdate"), "the stale CRL is named at start-up");
    // The server logs the refusal just after the client has seen it.
    let logged = eventually(5, || site.rampart.logs().contains("ExpiredRevocationList")).await;
    assert!(logged, "the refusal is logged with its reason: {}", site.rampart.logs());
    // A token caller does not depend on the CRL.
    let token = site.chat(&site.client(None), Some(&site.token("gbr-secret")), None, ask("shared", "Hi")).await;
    assert_eq!(token.status, 200, "{}", token.body);

    write_crl(&site.pki, &[]).unwrap();
    let pid = site.rampart.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let mut served = false;
    for _ in 0..100 {
        if let Ok(response) = gbr().post(site.url("/v1/chat/completions")).json(&ask("shared", "Hi")).send().await {
            assert_eq!(response.status(), 200);
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "a fresh CRL and a reload restore certificate callers: {}", site.rampart.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_for_monitors_and_admins_and_every_read_is_recorded() {
    let site = Site::start(|_| {}).await;
    let client = site.client(None);
    let scrape = |token: Option<String>| {
        let request = client.get(site.url("/metrics"));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
    };
    let anonymous = Answer::of(scrape(None).await.unwrap()).await;
    assert_eq!((anonymous.status, anonymous.code()), (401, "missing_credentials"));
    let analyst = Answer::of(scrape(Some(site.token("gbr-secret"))).await.unwrap()).await;
    assert_eq!((analyst.status, analyst.code()), (403, "policy_forbids"));
    let monitor = scrape(Some(site.token("monitor"))).await.unwrap();
    assert_eq!(monitor.status(), 200);
    assert!(monitor.text().await.unwrap().contains("# TYPE rampart_requests_total counter"));

    let dir = site.pki.join("audit");
    let mut reads = Vec::new();
    let recorded = eventually(10, || {
        reads = audit_entries(&dir).into_iter().filter(|e| e.action == "read_metrics").collect();
        reads.len() == 3
    })
    .await;
    assert!(recorded, "every read of /metrics is in the audit log: {reads:?}");
    let outcomes: Vec<(u16, bool, Option<&str>)> =
        reads.iter().map(|e| (e.status, e.allowed, e.code.as_deref())).collect();
    assert_eq!(
        outcomes,
        [(401, false, Some("missing_credentials")), (403, false, Some("policy_forbids")), (200, true, None)]
    );
    assert_eq!(reads[2].policies, ["rampart/monitors-read-metrics"]);
}
