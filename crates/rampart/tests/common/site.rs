//! A site on the development PKI of `rampart dev init`: HTTPS, tokens,
//! client certificates, an operator policy and an audit log, in front of a
//! test upstream.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rampart_identity::dev::{DEV_PRINCIPALS, dev_claims};
use rampart_identity::{Claims, mint_token};
use serde_json::{Value, json};

use super::*;

/// A development PKI made by the CLI.
pub fn dev_init(dir: &Path) {
    let output = Command::new(binary())
        .args(["dev", "init"])
        .arg(dir)
        .args(["--model", "unused.gguf"])
        .output()
        .expect("rampart dev init runs");
    assert!(output.status.success(), "dev init: {}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.trim_end().ends_with("rampart.toml"), "prints the configuration's path: {printed}");
}

/// A client trusting the CA of the development PKI in `pki`, presenting `cert`
/// (a `clients/NAME` stem or a path stem) if given.
pub fn pki_client(pki: &Path, cert: Option<&Path>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(pki.join("ca.pem")).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder().tls_built_in_root_certs(false).add_root_certificate(ca);
    if let Some(stem) = cert {
        let mut pem = std::fs::read(stem.with_extension("pem")).unwrap();
        pem.extend(std::fs::read(stem.with_extension("key")).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

/// The token of principal `name` in the development PKI in `pki`.
pub fn pki_token(pki: &Path, name: &str) -> String {
    std::fs::read_to_string(pki.join("tokens").join(format!("{name}.jwt"))).unwrap().trim().to_owned()
}

/// A site using the development PKI in front of a test upstream serving
/// `shared` and `gbr-only`, accredited to NATO SECRET, with one operator policy.
pub struct Site {
    pub rampart: Rampart,
    pub pki: PathBuf,
    _pki_dir: tempfile::TempDir,
    _upstream: rampart_testkit::MockServer,
}

pub const OPERATOR_POLICY: &str = r#"
@id("gbr-only-model")
forbid (principal, action, resource == Rampart::Model::"gbr-only")
unless { principal.nation == "GBR" };
"#;

impl Site {
    pub async fn start(prepare: impl FnOnce(&Path)) -> Self {
        Self::start_with(prepare, "").await
    }

    /// Like [`Site::start`], with `extra` appended to the configuration.
    pub async fn start_with(prepare: impl FnOnce(&Path), extra: &str) -> Self {
        let pki_dir = tempfile::tempdir().unwrap();
        let pki = pki_dir.path().to_path_buf();
        dev_init(&pki);
        prepare(&pki);
        let (upstream, addr) = mock("upstream").await;
        std::fs::write(pki.join("site.cedar"), OPERATOR_POLICY).unwrap();
        let port = free_port();
        let config = format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[server.tls]
cert = "server.pem"
key = "server.key"

[identity]
jwks = "jwks.json"
issuer = "rampart-dev"
audience = "rampart"
client_ca = ["ca.pem"]
crl = ["crl.pem"]
directory = "directory.toml"

[labels]
default_label = "NATO UNCLASSIFIED"

[policy]
files = ["site.cedar"]

[audit]
dir = "audit"
signing_key = "audit-key"

[[backends]]
name = "upstream"
url = "http://{addr}/v1"
models = ["shared", "gbr-only", "slow-stream", "marked"]
accreditation = "NATO SECRET"
owner = "GBR"
{extra}"#
        );
        let path = pki.join("site.toml");
        std::fs::write(&path, config).unwrap();
        let rampart = Rampart::start_file(&path, port, tempfile::tempdir().unwrap(), "https").await;
        Self { rampart, pki, _pki_dir: pki_dir, _upstream: upstream }
    }

    /// What the test upstream has seen.
    pub fn upstream(&self) -> &rampart_testkit::Stats {
        &self._upstream.stats
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.rampart.port)
    }

    /// A client trusting the dev CA, presenting `cert` (a `clients/NAME` stem or a path stem) if given.
    pub fn client(&self, cert: Option<&Path>) -> reqwest::Client {
        pki_client(&self.pki, cert)
    }

    pub fn client_cert(&self, name: &str) -> PathBuf {
        self.pki.join("clients").join(name)
    }

    pub fn token(&self, name: &str) -> String {
        pki_token(&self.pki, name)
    }

    /// Mints a token with the site's issuer key after `change` edits gbr-secret's claims.
    pub fn mint(&self, change: impl FnOnce(&mut Claims)) -> String {
        let mut claims = dev_claims(&DEV_PRINCIPALS[0], Duration::from_secs(3600));
        change(&mut claims);
        let key = std::fs::read(self.pki.join("token-key.pem")).unwrap();
        mint_token(&claims, &key, Some(rampart_identity::dev::DEV_KEY_ID)).unwrap()
    }

    pub async fn chat(
        &self,
        client: &reqwest::Client,
        token: Option<&str>,
        label: Option<&str>,
        body: Value,
    ) -> Answer {
        let mut request = client.post(self.url("/v1/chat/completions")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(label) = label {
            request = request.header("Rampart-Label", label);
        }
        Answer::of(request.send().await.expect("the request completes")).await
    }
}

/// A response's status, label header and JSON body.
pub struct Answer {
    pub status: u16,
    pub label: Option<String>,
    pub body: Value,
}

impl Answer {
    pub async fn of(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let label = response.headers().get("rampart-label").map(|v| v.to_str().unwrap().to_owned());
        let body = response.json().await.expect("a JSON body");
        Self { status, label, body }
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

/// A string the model can only write if it read the portion holding it.
pub const CANARY: &str = "KESTREL-4471";

pub fn collections_section() -> String {
    format!("[collections]\ndir = \"collections\"\nembedding_model = \"{}\"\n", embedding_model().display())
}

/// Ingests the example reports and a NATO SECRET report with the canary as `exercise`.
pub fn ingest_exercise(pki: &Path) {
    let config = pki.join("ingest.toml");
    std::fs::write(
        &config,
        format!("[server]\nlisten = \"127.0.0.1:0\"\ninsecure_dev = true\n{}", collections_section()),
    )
    .unwrap();
    let canary = pki.join("lantern-canary-03.md");
    std::fs::write(
        &canary,
        format!(
            "NATO SECRET\n\n# (NU) STEADFAST LANTERN 26 — liaison note, day 3\n\n(NS) The 3rd Mechanised Brigade \
             crossed the river Kalna under the codeword {CANARY}, and its commander reports to the division at \
             Orlen.\n\nNATO SECRET\n"
        ),
    )
    .unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/collections/exercise");
    let out = Command::new(binary())
        .args(["collection", "ingest", "--config", config.to_str().unwrap(), "exercise"])
        .args([examples.as_os_str(), canary.as_os_str()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A site serving the default model (embedded, accredited to NATO SECRET) and
/// the `exercise` collection: the example reports and a NATO SECRET report
/// holding [`CANARY`]; `extra` is appended to its configuration.
pub async fn grounded_site(extra: &str) -> Site {
    let grounded = format!(
        "{}\n[[models]]\nname = \"smollm2\"\nengine = \"embedded\"\npath = \"{}\"\nthreads = 2\nparallel = 2\n\
         context = 4096\naccreditation = \"NATO SECRET\"\n",
        collections_section(),
        default_model().display()
    );
    Site::start_with(ingest_exercise, &format!("{grounded}{extra}")).await
}

pub fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}
