//! HTTPS backends: trusted only through the configured CA bundle, with an
//! optional client certificate for mutual TLS.

mod common;

use std::sync::Arc;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = Self { ca, dir: tempfile::tempdir().unwrap() };
        std::fs::write(pki.path("ca.pem"), pki.ca.pem()).unwrap();
        pki
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Issues a leaf certificate; writes `NAME.pem` and `NAME.key`.
    fn issue(&self, name: &str, san: &str) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![san.to_owned()]).unwrap().signed_by(&key, &self.ca).unwrap();
        std::fs::write(self.path(&format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(self.path(&format!("{name}.key")), key.serialize_pem()).unwrap();
        (cert.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
    }
}

async fn https_upstream(pki: &Pki, client_ca: Option<&Pki>) -> std::net::SocketAddr {
    let (cert, key) = pki.issue("upstream", "localhost");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder =
        rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
    let config = match client_ca {
        Some(client_pki) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(client_pki.ca.der().clone()).unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    }
    .with_single_cert(vec![cert], key)
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    rampart_testkit::spawn_tls(listener, "secure", Arc::new(config));
    addr
}

fn tls_backend(name: &str, addr: std::net::SocketAddr, model: &str, tls: &str) -> String {
    format!(
        "\n[[backends]]\nname = \"{name}\"\nurl = \"https://localhost:{}/v1\"\nmodels = [\"{model}\"]\n[backends.tls]\n{tls}\n",
        addr.port()
    )
}

async fn ask(r: &Rampart, model: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(r.url("/v1/chat/completions"))
        .json(&chat_body(model, json!({})))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn https_backends_are_trusted_only_through_their_ca_bundle() {
    let pki = Pki::new();
    let stranger = Pki::new();
    let addr = https_upstream(&pki, None).await;
    let config = server_section("")
        + &tls_backend("trusted", addr, "good", &format!("ca = \"{}\"", pki.path("ca.pem")))
        + &tls_backend("untrusted", addr, "bad", &format!("ca = \"{}\"", stranger.path("ca.pem")));
    let r = Rampart::start(&config).await;

    let (status, body) = ask(&r, "good").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["system_fingerprint"], "secure");

    let (status, body) = ask(&r, "bad").await;
    assert_eq!((status, body["error"]["code"].as_str()), (502, Some("upstream_unreachable")), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_to_a_backend_that_requires_a_client_certificate() {
    let pki = Pki::new();
    let clients = Pki::new();
    clients.issue("rampart", "rampart-gateway");
    let addr = https_upstream(&pki, Some(&clients)).await;
    let ca = format!("ca = \"{}\"", pki.path("ca.pem"));
    let with_cert = format!(
        "{ca}\nclient_cert = \"{}\"\nclient_key = \"{}\"",
        clients.path("rampart.pem"),
        clients.path("rampart.key")
    );
    let config = server_section("")
        + &tls_backend("mtls", addr, "with-cert", &with_cert)
        + &tls_backend("no-cert", addr, "without-cert", &ca);
    let r = Rampart::start(&config).await;

    let (status, body) = ask(&r, "with-cert").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = ask(&r, "without-cert").await;
    assert_eq!(status, 502, "the backend refuses a client without a certificate");
}
