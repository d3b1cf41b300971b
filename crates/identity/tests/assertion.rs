//! Assertions between sites: accepted only from a configured peer's
//! certificate, signed by that certificate's key, for this site, unexpired.

use std::path::Path;
use std::time::Duration;

use rampart_identity::dev::{DevOptions, dev_init, issue_site_certificate};
use rampart_identity::{
    AssertionClaims, AssertionSigner, AssertionVerifier, AuthMethod, Identity, IdentityError, PeerCertificate,
    Principal, TrustedPeer,
};
use rampart_labels::{Clearance, Policies};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

struct SiteKeys {
    cert: PeerCertificate,
    key: String,
}

fn site(dir: &Path, id: &str, serial: u64) -> SiteKeys {
    let (cert, key) = issue_site_certificate(dir, id, "GBR", serial).unwrap();
    let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    SiteKeys { cert: PeerCertificate::from_der(&der).unwrap(), key }
}

fn pki() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let options =
        DevOptions { listen: "127.0.0.1:8443".into(), model: "m.gguf".into(), token_ttl: Duration::from_secs(60) };
    dev_init(dir.path(), &options).unwrap();
    dir
}

fn caller(labels: &Policies) -> Principal {
    Principal {
        subject: "gbr-secret".into(),
        nation: "GBR".into(),
        roles: vec!["analyst".into()],
        clearance: Clearance::from_ceiling(&labels.parse_label("NATO SECRET").unwrap()),
        method: AuthMethod::Token,
    }
}

/// A verifier at usa-east that trusts gbr-north, pinned to `gbr`'s key.
fn verifier_pinning(gbr: &SiteKeys) -> AssertionVerifier {
    let peer = TrustedPeer {
        subject: "gbr-north".into(),
        site: "gbr-north".into(),
        key_sha256: vec![gbr.cert.key_sha256.clone()],
    };
    AssertionVerifier::new("usa-east", [peer])
}

fn bind(id: &str) -> rampart_identity::AssertedRequest<'_> {
    rampart_identity::AssertedRequest { id, route: "/chat/completions", body: b"{}" }
}

fn signer(site_id: &str, keys: &SiteKeys) -> AssertionSigner {
    AssertionSigner::from_pem(site_id, keys.key.as_bytes(), Duration::from_secs(30)).unwrap()
}

fn refusal(result: Result<AssertionClaims, IdentityError>) -> String {
    let err = result.unwrap_err();
    assert!(matches!(err.code(), "invalid_assertion" | "peer_not_trusted"), "{err:?}");
    err.to_string()
}

#[test]
fn a_peer_sites_assertion_names_the_caller_and_label() {
    let dir = pki();
    let labels = Policies::nato();
    let gbr = site(dir.path(), "gbr-north", 900);
    let label = labels.parse_label("NATO CONFIDENTIAL").unwrap();
    let token = signer("gbr-north", &gbr).sign("usa-east", &caller(&labels), &label, &bind("req-1")).unwrap();
    let claims = verifier_pinning(&gbr).verify(&token, Some(&gbr.cert)).unwrap();
    assert_eq!((claims.iss.as_str(), claims.sub.as_str(), claims.rid.as_str()), ("gbr-north", "gbr-secret", "req-1"));

    let config = rampart_config::Config::parse(
        "[server]\nlisten = \"127.0.0.1:1\"\n[server.tls]\ncert = \"server.pem\"\nkey = \"server.key\"\n[identity]\nclient_ca = [\"ca.pem\"]\ndirectory = \"directory.toml\"\n[audit]\ndir = \"audit\"\nsigning_key = \"audit-key\"\n",
        dir.path(),
    )
    .unwrap();
    let identity = Identity::from_config(&config, &labels, &labels.parse_label("NATO UNCLASSIFIED").unwrap()).unwrap();
    let (principal, asserted) = identity.asserted(&claims).unwrap();
    assert_eq!((principal.subject.as_str(), principal.nation.as_str()), ("gbr-secret", "GBR"));
    assert_eq!(principal.method, AuthMethod::Assertion);
    assert_eq!(asserted.banner(), label.banner());
    assert!(principal.clearance.check(&labels.parse_label("NATO SECRET").unwrap()).is_ok());
}

#[test]
fn assertions_from_anyone_but_the_peer_itself_are_refused() {
    let dir = pki();
    let labels = Policies::nato();
    let label = labels.parse_label("NATO SECRET").unwrap();
    let gbr = site(dir.path(), "gbr-north", 901);
    let rogue = site(dir.path(), "rogue", 902);
    let sign = |site_id: &str, keys: &SiteKeys, audience: &str| {
        signer(site_id, keys).sign(audience, &caller(&labels), &label, &bind("req-2")).unwrap()
    };

    let err = refusal(verifier_pinning(&gbr).verify(&sign("gbr-north", &gbr, "usa-east"), None));
    assert!(err.contains("mutual TLS"), "{err}");
    // A certificate of the alliance PKI that is not a peer site's.
    let err = refusal(verifier_pinning(&gbr).verify(&sign("gbr-north", &rogue, "usa-east"), Some(&rogue.cert)));
    assert!(err.contains("'rogue' is not the certificate of a peer site"), "{err}");
    // Over the peer's connection, but signed with another key.
    let err = refusal(verifier_pinning(&gbr).verify(&sign("gbr-north", &rogue, "usa-east"), Some(&gbr.cert)));
    assert!(err.contains("not signed by the key of its certificate"), "{err}");
    // The peer's key, in another site's name.
    let err = refusal(verifier_pinning(&gbr).verify(&sign("deu-south", &gbr, "usa-east"), Some(&gbr.cert)));
    assert!(err.contains("another site's name"), "{err}");
    // A second certificate in the peer's name from the same CA (mis-issued), signing with its own key.
    let impostor = site(dir.path(), "gbr-north", 907);
    let err = refusal(verifier_pinning(&gbr).verify(&sign("gbr-north", &impostor, "usa-east"), Some(&impostor.cert)));
    assert!(err.contains("a key its configuration does not pin"), "{err}");
    // While the site rotates its key, both are pinned and both are accepted.
    let rotating = AssertionVerifier::new(
        "usa-east",
        [TrustedPeer {
            subject: "gbr-north".into(),
            site: "gbr-north".into(),
            key_sha256: vec![gbr.cert.key_sha256.clone(), impostor.cert.key_sha256.to_uppercase()],
        }],
    );
    assert!(rotating.verify(&sign("gbr-north", &impostor, "usa-east"), Some(&impostor.cert)).is_ok());
    // Meant for another site.
    let err = refusal(verifier_pinning(&gbr).verify(&sign("gbr-north", &gbr, "deu-south"), Some(&gbr.cert)));
    assert!(err.contains("meant for another site"), "{err}");
    // Altered on the way.
    let token = sign("gbr-north", &gbr, "usa-east");
    let (head, rest) = token.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&base64_url_decode(payload)).expect("the payload is JSON");
    claims["nat"] = "USA".into();
    let forged = format!("{head}.{}.{signature}", base64_url_encode(&serde_json::to_vec(&claims).unwrap()));
    let err = refusal(verifier_pinning(&gbr).verify(&forged, Some(&gbr.cert)));
    assert!(err.contains("not signed by the key"), "{err}");
}

#[test]
fn an_expired_assertion_is_refused() {
    let dir = pki();
    let labels = Policies::nato();
    let gbr = site(dir.path(), "gbr-north", 903);
    let short = AssertionSigner::from_pem("gbr-north", gbr.key.as_bytes(), Duration::ZERO).unwrap();
    let token =
        short.sign("usa-east", &caller(&labels), &labels.parse_label("NATO SECRET").unwrap(), &bind("r")).unwrap();
    // Within the 5 s leeway it is still accepted; past it, refused.
    assert!(verifier_pinning(&gbr).verify(&token, Some(&gbr.cert)).is_ok());
    std::thread::sleep(Duration::from_secs(7));
    let err = refusal(verifier_pinning(&gbr).verify(&token, Some(&gbr.cert)));
    assert!(err.contains("expired"), "{err}");
}

#[test]
fn a_key_that_cannot_sign_is_named() {
    let err = AssertionSigner::from_pem("x", b"not a key", Duration::from_secs(30)).unwrap_err();
    assert!(err.contains("P-256 or Ed25519"), "{err}");
}

fn base64_url_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn base64_url_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn an_assertion_is_accepted_once_and_only_for_a_short_while() {
    let dir = pki();
    let labels = Policies::nato();
    let gbr = site(dir.path(), "gbr-north", 904);
    let label = labels.parse_label("NATO SECRET").unwrap();
    let token = signer("gbr-north", &gbr).sign("usa-east", &caller(&labels), &label, &bind("r1")).unwrap();
    let verifier = verifier_pinning(&gbr);
    assert!(verifier.verify(&token, Some(&gbr.cert)).is_ok());
    let err = refusal(verifier.verify(&token, Some(&gbr.cert)));
    assert!(err.contains("already used"), "{err}");
    // A clone of the verifier (another worker) remembers it too.
    let err = refusal(verifier.clone().verify(&token, Some(&gbr.cert)));
    assert!(err.contains("already used"), "{err}");
    // Valid for ten years: refused, however well signed.
    let long = AssertionSigner::from_pem("gbr-north", gbr.key.as_bytes(), Duration::from_secs(10 * 365 * 86_400))
        .unwrap()
        .sign("usa-east", &caller(&labels), &label, &bind("r2"))
        .unwrap();
    let err = refusal(verifier.verify(&long, Some(&gbr.cert)));
    assert!(err.contains("longer than 300 s"), "{err}");
}

#[test]
fn an_assertion_issued_ahead_of_time_is_refused() {
    let dir = pki();
    let labels = Policies::nato();
    let gbr = site(dir.path(), "gbr-north", 905);
    let label = labels.parse_label("NATO SECRET").unwrap();
    let token = signer("gbr-north", &gbr).sign("usa-east", &caller(&labels), &label, &bind("r")).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let mut claims: serde_json::Value = serde_json::from_slice(&base64_url_decode(payload)).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let sign = |claims: &serde_json::Value| {
        let (algorithm, key) = match jsonwebtoken::EncodingKey::from_ec_pem(gbr.key.as_bytes()) {
            Ok(key) => (jsonwebtoken::Algorithm::ES256, key),
            Err(_) => {
                (jsonwebtoken::Algorithm::EdDSA, jsonwebtoken::EncodingKey::from_ed_pem(gbr.key.as_bytes()).unwrap())
            }
        };
        jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), claims, &key).unwrap()
    };
    // Issued a day ahead, expiring shortly after.
    claims["iat"] = serde_json::json!(now + 86_400);
    claims["exp"] = serde_json::json!(now + 86_430);
    let err = refusal(verifier_pinning(&gbr).verify(&sign(&claims), Some(&gbr.cert)));
    assert!(err.contains("issued in the future"), "{err}");
    // Not valid before a day from now.
    claims["iat"] = serde_json::json!(now);
    claims["exp"] = serde_json::json!(now + 30);
    claims["nbf"] = serde_json::json!(now + 86_400);
    let err = refusal(verifier_pinning(&gbr).verify(&sign(&claims), Some(&gbr.cert)));
    assert!(err.contains("not valid yet"), "{err}");
}

#[test]
fn a_peer_may_assert_only_its_nations_up_to_its_ceiling() {
    use rampart_identity::PeerBounds;
    let dir = pki();
    let labels = Policies::nato();
    let gbr = site(dir.path(), "gbr-north", 906);
    let bounds =
        PeerBounds { nations: ["GBR".to_owned()].into(), ceiling: labels.parse_label("NATO CONFIDENTIAL").unwrap() };
    let ask = |principal: Principal, label: &str| {
        let label = labels.parse_label(label).unwrap();
        let token = signer("gbr-north", &gbr).sign("usa-east", &principal, &label, &bind("r")).unwrap();
        let claims = verifier_pinning(&gbr).verify(&token, Some(&gbr.cert)).unwrap();
        Identity::within_bounds(&claims, &principal, &label, &bounds).map_err(|e| e.to_string())
    };
    let confidential = Clearance::from_ceiling(&labels.parse_label("NATO CONFIDENTIAL").unwrap());
    let within = Principal { clearance: confidential.clone(), ..caller(&labels) };
    assert!(ask(within.clone(), "NATO RESTRICTED").is_ok());
    let err = ask(Principal { nation: "XYZ".into(), ..within.clone() }, "NATO RESTRICTED").unwrap_err();
    assert!(err.contains("callers of nation XYZ"), "{err}");
    let err = ask(caller(&labels), "NATO RESTRICTED").unwrap_err();
    assert!(err.contains("above NATO CONFIDENTIAL"), "a SECRET clearance: {err}");
    let err = ask(within, "NATO SECRET").unwrap_err();
    assert!(err.contains("above NATO CONFIDENTIAL"), "a SECRET label: {err}");
}
