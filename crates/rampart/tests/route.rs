//! `rampart route explain` on the example of three allied sites: the eligible
//! sites, and for each excluded one the class of rule that excluded it.

mod common;

use std::process::Command;

use common::binary;
use serde_json::{Value, json};

const SITES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sites.toml");

fn explain(args: &[&str]) -> Result<Value, String> {
    let out =
        Command::new(binary()).args(["route", "explain", "--config", SITES, "--json"]).args(args).output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn residency_placement_accreditation_and_health_each_exclude_sites() {
    let ask =
        |nat: &str, label: &str, model: &str| explain(&["--nat", nat, "--label", label, "--model", model]).unwrap();
    // A USA-owned model for a GBR request at NATO SECRET: GBR residency keeps it home, where the
    // owner does not allow it; the DEU site does not serve it.
    assert_eq!(
        ask("GBR", "NATO SECRET", "usa-frontier"),
        json!({"eligible": [], "excluded": {"gbr-north": "owner", "usa-east": "residency", "deu-south": "model"}})
    );
    assert_eq!(
        ask("USA", "NATO SECRET", "usa-frontier"),
        json!({"eligible": ["usa-east"], "excluded": {"gbr-north": "owner", "deu-south": "model"}})
    );
    // DEU requests stay in the EU.
    assert_eq!(
        ask("DEU", "NATO RESTRICTED", "open-model"),
        json!({"eligible": ["deu-south"], "excluded": {"gbr-north": "residency", "usa-east": "residency"}})
    );
    // Below GBR's residency threshold an open model may run anywhere accredited.
    assert_eq!(ask("GBR", "NATO RESTRICTED", "open-model")["eligible"], json!(["gbr-north", "usa-east", "deu-south"]));
    assert_eq!(
        ask("USA", "NATO SECRET", "open-model"),
        json!({"eligible": ["gbr-north", "usa-east"], "excluded": {"deu-south": "accreditation"}})
    );
    let down = explain(&["--nat", "USA", "--label", "NATO SECRET", "--model", "usa-frontier", "--down", "usa-east"]);
    assert_eq!(down.unwrap()["excluded"]["usa-east"], "health");
}

#[test]
fn bad_arguments_are_named() {
    let err = explain(&["--nat", "gb", "--label", "NATO SECRET", "--model", "open-model"]).unwrap_err();
    assert!(err.contains("--nat 'gb'"), "{err}");
    let err = explain(&["--nat", "GBR", "--label", "BOGUS", "--model", "open-model"]).unwrap_err();
    assert!(err.contains("--label 'BOGUS'"), "{err}");
    let err = explain(&["--nat", "GBR", "--label", "NATO SECRET", "--model", "open-model", "--down", "x"]).unwrap_err();
    assert!(err.contains("--down 'x'"), "{err}");
}

/// The dev site `gbr-north` with a USA peer that is down; USA keeps its
/// requests from NATO CONFIDENTIAL up at home, DEU keeps all of its in the EU.
const ALLIANCE: &str = r#"
[site]
id = "gbr-north"

[[sites]]
id = "gbr-north"
jurisdiction = "GBR"
operators = ["GBR"]
security_level = 4
accreditation = "NATO SECRET"
backends = ["upstream"]

[[sites]]
id = "usa-east"
jurisdiction = "USA"
operators = ["USA"]
security_level = 5
accreditation = "NATO SECRET"
models = ["shared"]
peer = "https://127.0.0.1:1"                # nothing listens there: the peer is down
key_sha256 = ["0000000000000000000000000000000000000000000000000000000000000000"]

[federation]
cert = "server.pem"
key = "server.key"
ca = "ca.pem"

[[residency]]
nation = "USA"
from_label = "NATO CONFIDENTIAL"
jurisdictions = ["USA"]

[[residency]]
nation = "DEU"
jurisdictions = ["EU"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_site_serves_only_the_requests_it_is_eligible_for() {
    use common::site::{Site, ask};
    let site = Site::start_with(|_| {}, ALLIANCE).await;
    let client = site.client(None);
    let chat = |who: &'static str, label: &'static str| {
        let (site, client) = (&site, &client);
        async move { site.chat(client, Some(&site.token(who)), Some(label), ask("shared", "hi")).await }
    };
    assert_eq!(chat("gbr-secret", "NATO SECRET").await.status, 200);
    // Below its residency threshold a USA request may be served here.
    assert_eq!(chat("usa-secret", "NATO RESTRICTED").await.status, 200);
    // At NATO SECRET it must stay in the USA: only the peer may serve it, and the peer is down.
    let refused = chat("usa-secret", "NATO SECRET").await;
    assert_eq!((refused.status, refused.code()), (503, "no_eligible_site"), "{}", refused.body);
    assert!(refused.message().contains("was tried (unreachable)"), "{}", refused.message());
    // DEU requests stay in the EU, where no site is.
    let refused = chat("deu-confidential", "NATO RESTRICTED").await;
    assert_eq!((refused.status, refused.code()), (503, "no_eligible_site"), "{}", refused.body);
    assert!(refused.message().contains("residency") && !refused.message().contains("EU"), "{}", refused.message());
}
