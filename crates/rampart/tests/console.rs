//! The web console on the running binary over TLS, driven in Debian's headless
//! Chromium by tests/console/console.mjs (playwright-core): the consent notice,
//! sign-in, a grounded answer streamed from the real model under a banner
//! raised to its label, a refusal in words, and every request to the same
//! origin. Its HTTP contract (open page, strict headers, identified calls) is
//! checked here too.

mod common;

use std::path::Path;
use std::process::Command;

use common::audit_entries;
use common::site::*;
use serde_json::{Value, json};

const NOTICE: &str = "You are accessing a NATO information system provided for authorised use only.";

/// The JSON body of the answer to `request`.
async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

fn console_section() -> String {
    format!("[console]\nnotice = \"{NOTICE}\"\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn analysts_use_the_console_in_a_real_browser() {
    let site = grounded_site(&console_section()).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/console/console.mjs");
    let mut node = Command::new("node");
    node.arg(&script)
        .env("RAMPART_URL", site.url(""))
        .env("RAMPART_NOTICE", NOTICE)
        .env("RAMPART_TOKEN_GBR", site.token("gbr-secret"))
        .env("RAMPART_TOKEN_DEU", site.token("deu-confidential"))
        .env("RAMPART_COLLECTION", "exercise");
    if let Some(dir) = std::env::var_os("RAMPART_SCREENSHOTS") {
        node.env("RAMPART_SCREENSHOTS", dir);
    }
    let out = node.output().expect("node runs (scripts/setup installs it, and the browser test's packages)");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(printed.lines().filter(|l| l.starts_with("ok: ")).count(), 6, "{printed}");
    // Each sign-in and banner was decided and recorded like any request.
    let entries = audit_entries(&site.pki.join("audit"));
    let console: Vec<_> = entries.iter().filter(|e| e.action == "use_console").collect();
    assert!(console.iter().any(|e| e.status == 200), "sign-ins are in the audit log");
    assert!(console.iter().any(|e| e.status == 401), "the refused token is in the audit log");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_is_open_and_strict_and_its_calls_are_identified() {
    let site = Site::start_with(|_| {}, &console_section()).await;
    let client = site.client(None);
    let page = client.get(site.url("/console/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .get(site.url("/console"))
        .send()
        .await
        .unwrap();
    assert_eq!((redirect.status().as_u16(), redirect.headers()["location"].to_str().unwrap()), (308, "/console/"));
    for missing in ["/console/../rampart.toml", "/console/nothing.js", "/console/%2e%2e%2fsite.toml"] {
        let response = client.get(site.url(missing)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{missing}");
    }

    let settings = json_of(client.get(site.url("/console/settings.json"))).await;
    assert_eq!(settings["notice"], NOTICE);
    assert_eq!(settings["banner"]["marking"], "NATO UNCLASSIFIED");
    assert_eq!(
        (settings["banner"]["background"].as_str(), settings["banner"]["text"].as_str()),
        (Some("#007a33"), Some("#ffffff"))
    );

    // The calls: unidentified, refused; identified, answered.
    let anonymous = client.get(site.url("/console/api/session")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let session =
        json_of(client.get(site.url("/console/api/session")).bearer_auth(site.token("deu-confidential"))).await;
    assert_eq!((session["subject"].as_str(), session["nation"].as_str()), (Some("deu-confidential"), Some("DEU")));
    assert_eq!(session["clearance_marking"], "NATO CONFIDENTIAL");
    assert_eq!(session["method"], "token");
    let by_certificate =
        json_of(site.client(Some(&site.client_cert("gbr-secret"))).get(site.url("/console/api/session"))).await;
    assert_eq!(
        (by_certificate["subject"].as_str(), by_certificate["method"].as_str()),
        (Some("gbr-secret"), Some("certificate"))
    );

    let banner = |labels: Value| {
        let client = client.clone();
        let token = site.token("gbr-secret");
        let url = site.url("/console/api/banner");
        async move {
            let response = client.post(url).bearer_auth(token).json(&json!({ "labels": labels })).send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, joined) = banner(
        json!(["NATO RESTRICTED", {"policy": "NATO", "classification": "SECRET", "categories": {"Context": ["NATO"]}}]),
    )
    .await;
    assert_eq!(status, 200, "{joined}");
    assert_eq!((joined["marking"].as_str(), joined["background"].as_str()), (Some("NATO SECRET"), Some("#c8102e")));
    let (status, refused) = banner(json!(["NATO SECRET", "NATO SORTA SECRET"])).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str(), refused["error"]["param"].as_str()),
        (400, Some("invalid_label"), Some("labels[1]"))
    );
    for bad in [json!([]), json!("NATO SECRET"), json!([17])] {
        let (status, refused) = banner(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {refused}");
        assert!(refused["error"]["message"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_may_turn_the_console_off_or_recolour_its_banners() {
    let off = Site::start_with(|_| {}, "[console]\nenabled = false\n").await;
    let response = off.client(None).get(off.url("/console/")).send().await.unwrap();
    assert_eq!(response.status(), 404);

    let recoloured = Site::start_with(|_| {}, "[console.banners]\nUNCLASSIFIED = \"#fce83a\"\n").await;
    let settings = json_of(recoloured.client(None).get(recoloured.url("/console/settings.json"))).await;
    assert_eq!(
        (settings["banner"]["background"].as_str(), settings["banner"]["text"].as_str()),
        (Some("#fce83a"), Some("#000000"))
    );
}
