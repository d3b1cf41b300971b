//! Three allied sites as real processes on loopback, each with its own backend
//! process, two nations with different residency rules, federation over mutual
//! TLS with signed assertions. Under load, one site's backend is killed with
//! SIGKILL and another site's facility degrades. Requests that still have an
//! eligible site must all succeed; requests left without one get a clear 503;
//! and the three audit logs must show that no request was served by a site
//! its rules exclude.
//!
//! This file is its own program (`harness = false`): started with
//! `RAMPART_MOCK_BACKEND_PORT` set it is a backend, so that a backend can be
//! killed as a process.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::site::{dev_init, pki_client as client, pki_token as token};
use common::{Rampart, audit_entries, cli, free_port, site_pin, sse_events};
use rampart_audit::entry::Entry;
use rampart_config::Config;
use rampart_labels::Policies;
use rampart_router::{SiteSet, Topology};
use serde_json::{Value, json};

const MOCK_PORT: &str = "RAMPART_MOCK_BACKEND_PORT";
const FRA_POLICY: &str = r#"
@id("fra-no-usa-callers")
forbid (principal, action, resource) when { principal.nation == "USA" };
"#;
const HEALTHY: &str = r#"{"power": "ok", "cooling": "ok", "alarms": []}"#;

/// The sites: id, jurisdiction.
const SITES: [(&str, &str); 3] = [("gbr-north", "GBR"), ("deu-south", "DEU"), ("fra-west", "FRA")];

fn main() {
    if let Ok(port) = std::env::var(MOCK_PORT) {
        return serve_backend(port.parse().expect("a port"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(three_sites_under_load_never_serve_outside_their_rules());
    println!("federation: ok");
}

fn serve_backend(port: u16) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let _server = rampart_testkit::spawn(listener, "backend");
        std::future::pending::<()>().await;
    });
}

/// A backend process, killed when dropped.
struct Backend {
    child: Child,
    port: u16,
}

impl Backend {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new(std::env::current_exe().unwrap())
            .env(MOCK_PORT, port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("the backend starts");
        Self { child, port }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Site {
    id: &'static str,
    rampart: Rampart,
    config: PathBuf,
    status: PathBuf,
    audit: PathBuf,
    backend: Backend,
}

/// The configuration of site `me`: every site, the rules, its own backend and facility.
fn config_of(me: &str, pki: &Path, ports: &HashMap<&str, u16>, backend: u16) -> String {
    // fra-west's own policy refuses USA callers, which its peers do not know.
    let policy = if me == "fra-west" {
        std::fs::write(pki.join(me).join("policy.cedar"), FRA_POLICY).unwrap();
        format!("[policy]\nfiles = [\"{}\"]\n", pki.join(me).join("policy.cedar").display())
    } else {
        String::new()
    };
    let mut sites = String::new();
    for (id, jurisdiction) in SITES {
        let place = if id == me {
            "backends = [\"local\"]".to_owned()
        } else {
            // Each site forwards its callers of any of the nations here, so each peer may vouch for them.
            format!(
                "models = [\"open-model\"]\npeer = \"https://127.0.0.1:{}\"\n\
                 key_sha256 = [\"{}\"]\nmay_assert_nations = [\"GBR\", \"DEU\", \"FRA\", \"USA\"]",
                ports[id],
                site_pin(&pki.join("sites").join(format!("{id}.pem")))
            )
        };
        sites.push_str(&format!(
            "[[sites]]\nid = \"{id}\"\njurisdiction = \"{jurisdiction}\"\noperators = [\"{jurisdiction}\"]\n\
             security_level = 4\naccreditation = \"NATO SECRET\"\n{place}\n\n"
        ));
    }
    let dir = pki.display();
    format!(
        r#"[server]
listen = "127.0.0.1:{port}"
[server.tls]
cert = "{dir}/sites/{me}.pem"
key = "{dir}/sites/{me}.key"

[identity]
jwks = "{dir}/jwks.json"
issuer = "rampart-dev"
audience = "rampart"
client_ca = ["{dir}/ca.pem"]
directory = "{dir}/directory.toml"

[labels]
default_label = "NATO UNCLASSIFIED"

{policy}
[audit]
dir = "{dir}/{me}/audit"
signing_key = "{dir}/{me}/audit-key"

[proxy]
health_interval_ms = 200

[facility]
status_file = "{dir}/{me}/facility.json"
poll_ms = 50
recover_after_secs = 60

[federation]
cert = "{dir}/sites/{me}.pem"
key = "{dir}/sites/{me}.key"
ca = "{dir}/ca.pem"

[site]
id = "{me}"

{sites}
[[backends]]
name = "local"
url = "http://127.0.0.1:{backend}/v1"
models = ["open-model"]
accreditation = "NATO SECRET"

# GBR requests at NATO CONFIDENTIAL or above stay in GBR.
[[residency]]
nation = "GBR"
from_label = "NATO CONFIDENTIAL"
jurisdictions = ["GBR"]

# DEU requests stay in the EU.
[[residency]]
nation = "DEU"
jurisdictions = ["EU"]

# USA requests at NATO SECRET go to FRA only.
[[residency]]
nation = "USA"
from_label = "NATO SECRET"
jurisdictions = ["FRA"]
"#,
        port = ports[me],
    )
}

async fn start_sites(pki: &Path) -> Vec<Site> {
    let ports: HashMap<&str, u16> = SITES.iter().map(|(id, _)| (*id, free_port())).collect();
    let mut sites = Vec::new();
    // Every site's certificate first: each site's configuration pins its peers' keys.
    for (id, jurisdiction) in SITES {
        let issued = cli(&[&"dev", &"site-cert", &pki, &"--site", &id, &"--nation", &jurisdiction]);
        let printed = String::from_utf8(issued.stdout).unwrap();
        assert_eq!(printed.trim(), pki.join("sites").join(format!("{id}.pem")).display().to_string());
    }
    for (id, _) in SITES {
        let own = pki.join(id);
        std::fs::create_dir_all(&own).unwrap();
        cli(&[&"audit", &"keygen", &"--name", &format!("rampart.test/{id}"), &"--out", &own.join("audit-key")]);
        std::fs::write(own.join("facility.json"), HEALTHY).unwrap();
        let backend = Backend::start();
        let config = own.join("rampart.toml");
        std::fs::write(&config, config_of(id, pki, &ports, backend.port)).unwrap();
        let rampart = Rampart::start_file(&config, ports[id], tempfile::tempdir().unwrap(), "https").await;
        let (status, audit) = (own.join("facility.json"), own.join("audit"));
        sites.push(Site { id, rampart, config, status, audit, backend });
    }
    sites
}

/// One kind of request of the load: who asks, at which label, sent to which site.
#[derive(Clone, Copy, Debug)]
struct Kind {
    name: &'static str,
    caller: &'static str,
    label: &'static str,
    to: usize,
    /// Whether an eligible site remains whatever happens in the test.
    always_eligible: bool,
}

const KINDS: [Kind; 5] = [
    // Only gbr-north may serve these: they fail (clearly) once it drains.
    Kind { name: "gbr-secret@gbr", caller: "gbr-secret", label: "NATO SECRET", to: 0, always_eligible: false },
    Kind { name: "gbr-secret@fra", caller: "gbr-secret", label: "NATO SECRET", to: 2, always_eligible: false },
    // Any site may serve these; deu-south's backend dies, so it forwards them.
    Kind { name: "gbr-open@deu", caller: "gbr-secret", label: "NATO UNCLASSIFIED", to: 1, always_eligible: true },
    // EU sites only: deu-south (backend dead later) and fra-west.
    Kind { name: "deu@deu", caller: "deu-confidential", label: "NATO RESTRICTED", to: 1, always_eligible: true },
    Kind { name: "deu@gbr", caller: "deu-confidential", label: "NATO RESTRICTED", to: 0, always_eligible: true },
];

#[derive(Default)]
struct Tally {
    ok: HashMap<&'static str, usize>,
    refused: HashMap<&'static str, usize>,
    failures: Vec<String>,
}

async fn ask(client: &reqwest::Client, sites: &[Site], pki: &Path, kind: Kind, body: Value) -> reqwest::Response {
    client
        .post(format!("https://127.0.0.1:{}/v1/chat/completions", sites[kind.to].rampart.port))
        .bearer_auth(token(pki, kind.caller))
        .header("Rampart-Label", kind.label)
        .json(&body)
        .send()
        .await
        .expect("the request completes")
}

fn chat(stream: bool) -> Value {
    json!({"model": "open-model", "stream": stream, "messages": [{"role": "user", "content": "hello"}]})
}

async fn three_sites_under_load_never_serve_outside_their_rules() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = pki_dir.path();
    dev_init(pki);
    let mut sites = start_sites(pki).await;
    let client = client(pki, None);

    // A GBR request at NATO SECRET sent to fra-west may be served only in GBR: it is forwarded.
    let secret_at_fra = KINDS[1];
    let response = ask(&client, &sites, pki, secret_at_fra, chat(false)).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert_eq!(response.headers()["rampart-label"], "NATO SECRET");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["rampart"]["label"]["classification"], "SECRET", "{body}");
    let text = serde_json::to_string(&body).unwrap();
    assert_eq!(text.matches("\"rampart\"").count(), 1, "labelled once: {text}");
    // Streams too, labelled once in their first event.
    let response = ask(&client, &sites, pki, secret_at_fra, chat(true)).await;
    assert_eq!(response.status(), 200);
    let events = sse_events(&response.text().await.unwrap());
    assert!(events[0].contains("\"rampart\"") && events.last().unwrap() == "[DONE]", "{events:?}");
    assert_eq!(events.iter().filter(|e| e.contains("\"rampart\"")).count(), 1, "{events:?}");

    // The peer decides by its own policy too: fra-west refuses USA callers, which gbr-north allows.
    let usa = Kind { name: "usa@gbr", caller: "usa-secret", label: "NATO SECRET", to: 0, always_eligible: false };
    let refused = ask(&client, &sites, pki, usa, chat(false)).await;
    assert_eq!(refused.status(), 403);
    let refused: Value = refused.json().await.unwrap();
    // Its code reaches the caller; its operators' policy ids do not (the caller is of another nation).
    assert_eq!(refused["error"]["code"], "policy_forbids", "{refused}");
    assert!(!refused.to_string().contains("fra-no-usa-callers"), "{refused}");

    // An assertion from anything but a peer site's connection is refused.
    let forged = client
        .post(format!("https://127.0.0.1:{}/v1/chat/completions", sites[0].rampart.port))
        .header("Rampart-Assertion", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let forged: Value = forged.json().await.unwrap();
    assert_eq!(forged["error"]["code"], "peer_not_trusted", "{forged}");

    // Load: every kind of request, back to back, from two clients each.
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sites_ref = Arc::new(sites.iter().map(|s| s.rampart.port).collect::<Vec<_>>());
    let mut workers = Vec::new();
    for kind in KINDS.iter().copied().chain(KINDS.iter().copied()) {
        let (client, tally, stop, pki, ports) =
            (client.clone(), tally.clone(), stop.clone(), pki.to_path_buf(), sites_ref.clone());
        workers.push(tokio::spawn(async move {
            let token = token(&pki, kind.caller);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = client
                    .post(format!("https://127.0.0.1:{}/v1/chat/completions", ports[kind.to]))
                    .bearer_auth(&token)
                    .header("Rampart-Label", kind.label)
                    .json(&chat(false))
                    .send()
                    .await;
                let (status, body) = match response {
                    Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                    Err(e) => (0, e.to_string()),
                };
                let code = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let mut tally = tally.lock().unwrap();
                match (status, code.as_str()) {
                    (200, _) => *tally.ok.entry(kind.name).or_default() += 1,
                    (503, "site_draining" | "no_eligible_site") if !kind.always_eligible => {
                        *tally.refused.entry(kind.name).or_default() += 1
                    }
                    _ => tally.failures.push(format!("{}: {status} {body}", kind.name)),
                }
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // deu-south's backend dies.
    let deu = &mut sites[1];
    deu.backend.child.kill().unwrap();
    deu.backend.child.wait().unwrap();
    let killed = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // gbr-north's power fails: it drains.
    std::fs::write(&sites[0].status, r#"{"power": "failed", "cooling": "ok", "alarms": []}"#).unwrap();
    let degraded = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let tally = Arc::try_unwrap(tally).ok().unwrap().into_inner().unwrap();
    println!(
        "federation load: backend killed at {killed:?}, facility degraded at {degraded:?}; served {:?}; refused {:?}",
        tally.ok, tally.refused
    );
    assert!(tally.failures.is_empty(), "client-visible errors: {:#?}", &tally.failures[..tally.failures.len().min(10)]);
    for kind in KINDS {
        assert!(tally.ok.get(kind.name).is_some_and(|&n| n > 10), "{} was served: {:?}", kind.name, tally.ok);
    }
    // Once gbr-north drains, GBR's NATO SECRET requests have no eligible site, whichever site they reach.
    for kind in &KINDS[..2] {
        assert!(tally.refused.get(kind.name).is_some_and(|&n| n > 10), "{} refused: {:?}", kind.name, tally.refused);
    }

    // Stop the sites (SIGTERM publishes their logs), then check every entry against the rules.
    for site in &sites {
        let status = Command::new("kill").arg(site.rampart.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }
    for site in &mut sites {
        site.rampart.child.wait().unwrap();
    }
    check_audit_logs(&sites);
}

/// No answer served anywhere by a site the rules exclude; every forwarded
/// answer recorded at both ends.
fn check_audit_logs(sites: &[Site]) {
    let config = Config::load(&sites[0].config).unwrap();
    let labels = Policies::nato();
    let topology = Topology::new(&config, &labels).unwrap();
    let none = SiteSet::none(topology.sites().len());
    let logs: Vec<(usize, Vec<Entry>)> =
        sites.iter().map(|site| (topology.index_of(site.id).unwrap(), audit_entries(&site.audit))).collect();
    let mut served = 0;
    let mut served_by_peer: HashMap<(String, &str), &Entry> = HashMap::new();
    for ((index, log), site) in logs.iter().zip(sites) {
        for entry in log.iter().filter(|e| e.action == "infer" && e.status == 200) {
            let serving = match &entry.forwarded_to {
                Some(peer) => topology.index_of(peer).unwrap(),
                None => *index,
            };
            let caller = entry.caller.as_ref().unwrap();
            let label = labels.parse_label(entry.request_label.as_deref().unwrap()).unwrap();
            let eligible = topology.eligible(&caller.nation, &label, entry.model.as_deref().unwrap(), &none);
            assert!(
                eligible.contains(serving),
                "{} recorded request {} of {} at {} served by ineligible site {}",
                site.id,
                entry.request_id,
                caller.nation,
                label.banner(),
                topology.sites()[serving].id
            );
            if let Some(origin) = &entry.forwarded_by {
                served_by_peer.insert((entry.request_id.clone(), site.id), entry);
                assert!(topology.index_of(origin).is_some(), "forwarded by a known site");
            }
            served += 1;
        }
    }
    // Every answer a site got from a peer is in the peer's log, forwarded by that site.
    let mut forwarded = 0;
    for ((_, log), site) in logs.iter().zip(sites) {
        for entry in log.iter().filter(|e| e.status == 200 && e.forwarded_to.is_some()) {
            let peer = sites.iter().find(|s| Some(s.id) == entry.forwarded_to.as_deref()).unwrap().id;
            let theirs = served_by_peer.get(&(entry.request_id.clone(), peer));
            assert!(
                theirs.is_some_and(|t| t.forwarded_by.as_deref() == Some(site.id)),
                "{}'s request {} forwarded to {peer} is not in {peer}'s log",
                site.id,
                entry.request_id
            );
            forwarded += 1;
        }
    }
    // fra-west's own policy refused the USA request gbr-north forwarded; both logs say so.
    let fra_refusals: Vec<&Entry> =
        logs[2].1.iter().filter(|e| !e.allowed && e.policies.iter().any(|p| p == "fra-no-usa-callers")).collect();
    assert_eq!(fra_refusals.len(), 1, "{fra_refusals:?}");
    assert_eq!(fra_refusals[0].forwarded_by.as_deref(), Some("gbr-north"));
    let at_gbr = logs[0].1.iter().find(|e| e.request_id == fra_refusals[0].request_id).unwrap();
    assert_eq!((at_gbr.status, at_gbr.forwarded_to.as_deref()), (403, Some("fra-west")));
    println!(
        "federation audit: {served} answers checked against the rules, {forwarded} forwarded answers found at both ends"
    );
    assert!(forwarded > 20, "requests were forwarded: {forwarded}");
}
