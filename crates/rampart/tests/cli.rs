//! The command line: version, config check, start-up refusals, and HTTPS.

mod common;

use std::process::Command;

use common::*;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_is_printed() {
    let (ok, stdout, _) = run(&["--version"]);
    assert!(ok);
    assert!(stdout.starts_with("rampart "), "{stdout}");
}

#[test]
fn config_check_accepts_the_example_and_names_the_bad_key() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/rampart.toml");
    let (ok, stdout, stderr) = run(&["config", "check", example]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("valid"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlisten = \"127.0.0.1:8080\"\ninsecure_dev = true\nworkers = \"many\"\n").unwrap();
    let (ok, _, stderr) = run(&["config", "check", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("bad.toml:4") && stderr.contains("workers"), "{stderr}");
}

#[test]
fn plain_http_off_loopback_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.toml");
    std::fs::write(&path, "[server]\nlisten = \"0.0.0.0:8080\"\ninsecure_dev = true\n").unwrap();
    let (ok, _, stderr) = run(&["serve", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("loopback") && stderr.contains("insecure_dev"), "{stderr}");
}

#[test]
fn a_missing_model_file_refuses_to_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.toml");
    std::fs::write(
        &path,
        format!(
            "{}\n[[models]]\nname = \"m\"\nengine = \"embedded\"\npath = \"gone.gguf\"\n",
            server_section("").replace("{port}", "0")
        ),
    )
    .unwrap();
    let (ok, _, stderr) = run(&["serve", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("gone.gguf") && stderr.contains("models[0].path"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_https_with_a_real_handshake() {
    let (_upstream, addr) = mock("alpha").await;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
    // Token verification keys (and a token) from a development PKI.
    let pki = dir.path().join("pki");
    let options = rampart_identity::dev::DevOptions {
        listen: "127.0.0.1:0".into(),
        model: "unused.gguf".into(),
        token_ttl: std::time::Duration::from_secs(3600),
    };
    rampart_identity::dev::dev_init(&pki, &options).unwrap();
    let token = std::fs::read_to_string(pki.join("tokens/usa-secret.jwt")).unwrap();
    let (skey, _) = rampart_audit::keys::generate("test.example/audit").unwrap();
    rampart_audit::keys::write_signing_key(&dir.path().join("audit.key"), &skey).unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{{port}}\"\n[server.tls]\ncert = \"{0}/server.pem\"\nkey = \"{0}/server.key\"\n\
         [identity]\njwks = \"{0}/pki/jwks.json\"\nissuer = \"rampart-dev\"\naudience = \"rampart\"\n\
         [audit]\ndir = \"{0}/audit\"\nsigning_key = \"{0}/audit.key\"\n{1}",
        dir.path().display(),
        backend("a", addr, &["echo"], "")
    );
    let r = Rampart::start_with(&config, "https").await;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/v1/chat/completions", r.port);
    let response = client
        .post(&url)
        .bearer_auth(token.trim())
        .json(&chat_body("echo", serde_json::json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // A client that does not trust the certificate is refused by TLS itself.
    assert!(reqwest::Client::new().post(&url).json(&chat_body("echo", serde_json::json!({}))).send().await.is_err());
    // Plain HTTP on the TLS port gets no answer.
    assert!(reqwest::get(format!("http://127.0.0.1:{}/healthz", r.port)).await.is_err());
}

#[test]
fn fetch_default_prints_the_model_path_last() {
    let model = default_model();
    let dir = model.parent().unwrap();
    let (ok, stdout, stderr) = run(&["model", "fetch-default", "--dir", dir.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().last(), Some(model.to_str().unwrap()));
    assert!(stderr.contains("SHA-256"), "says it verified the file: {stderr}");
}
