//! Every class of configuration error names its key and line.

use std::path::Path;

use rampart_config::{Config, ConfigError, EngineKind};

const BASE: &str = r#"
[server]
listen = "127.0.0.1:8080"
insecure_dev = true

[[backends]]
name = "vllm-a"
url = "http://127.0.0.1:8000/v1"
models = ["mistral-small"]
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/rampart"))
}

fn error(text: &str) -> ConfigError {
    parse(text).expect_err("configuration should be refused")
}

#[test]
fn contract_example_parses_with_defaults() {
    let config = parse(BASE).unwrap();
    assert!(config.server.insecure_dev);
    assert_eq!(config.backends[0].models, ["mistral-small"]);
    assert_eq!(config.backends[0].max_concurrent, 256);
    assert_eq!(config.proxy.retries, 2);
    assert_eq!(config.server.max_body_bytes, 8 * 1024 * 1024);
}

#[test]
fn unknown_key_names_key_and_line() {
    let err = error(&format!("{BASE}colour = \"blue\"\n"));
    assert_eq!(err.line, Some(10), "{err}");
    assert!(err.to_string().contains("colour"), "{err}");
    assert!(err.message.contains("unknown field"), "{err}");
}

#[test]
fn wrong_type_names_key_and_line() {
    let err = error(&BASE.replace("models = [\"mistral-small\"]", "models = \"mistral-small\""));
    assert_eq!(err.line, Some(9), "{err}");
    assert_eq!(err.key.as_deref(), Some("models"), "{err}");
}

#[test]
fn plain_http_off_loopback_is_refused() {
    let err = error(&BASE.replace("127.0.0.1:8080", "0.0.0.0:8080"));
    assert_eq!(err.key.as_deref(), Some("server.insecure_dev"));
    assert_eq!(err.line, Some(4), "{err}");
    assert!(err.message.contains("loopback"), "{err}");
}

#[test]
fn plain_http_without_insecure_dev_is_refused() {
    let err = error(&BASE.replace("insecure_dev = true", ""));
    assert_eq!(err.key.as_deref(), Some("server.listen"));
    assert!(err.message.contains("[server.tls]"), "{err}");
}

#[test]
fn impossible_values_name_their_key_and_line() {
    let cases = [
        ("url = \"http://127.0.0.1:8000/v1\"", "url = \"ftp://x\"", "backends[0].url", 8),
        ("models = [\"mistral-small\"]", "models = []", "backends[0].models", 9),
        ("models = [\"mistral-small\"]", "models = [\"m\"]\nmax_concurrent = 0", "backends[0].max_concurrent", 10),
        (
            "models = [\"mistral-small\"]",
            "models = [\"m\"]\nconnect_timeout_ms = 0",
            "backends[0].connect_timeout_ms",
            10,
        ),
    ];
    for (from, to, key, line) in cases {
        let err = error(&BASE.replace(from, to));
        assert_eq!(err.key.as_deref(), Some(key), "{err}");
        assert_eq!(err.line, Some(line), "{err}");
    }
}

#[test]
fn duplicate_backend_names_are_refused() {
    let text =
        format!("{BASE}\n[[backends]]\nname = \"vllm-a\"\nurl = \"http://127.0.0.1:8001/v1\"\nmodels = [\"x\"]\n");
    let err = error(&text);
    assert_eq!(err.key.as_deref(), Some("backends[1].name"));
    assert_eq!(err.line, Some(12), "{err}");
}

#[test]
fn embedded_models_are_checked() {
    let embedded = "\n[[models]]\nname = \"smollm2\"\nengine = \"embedded\"\npath = \"models/x.gguf\"\n";
    let config = parse(&format!("{BASE}{embedded}")).unwrap();
    let model = config.embedded_models().next().unwrap();
    assert_eq!(model.engine, EngineKind::Embedded);
    assert_eq!(
        model.path.as_deref(),
        Some(Path::new("/etc/rampart/models/x.gguf")),
        "relative paths resolve against the file"
    );
    assert_eq!((model.parallel, model.context, model.queue), (4, 4096, 64));

    let err = error(&format!("{BASE}{embedded}parallel = 0\n"));
    assert_eq!(err.key.as_deref(), Some("models[0].parallel"));
    assert_eq!(err.line, Some(15), "{err}");

    let err = error(&format!("{BASE}\n[[models]]\nname = \"smollm2\"\nengine = \"embedded\"\n"));
    assert_eq!(err.key.as_deref(), Some("models[0].path"));

    let err =
        error(&format!("{BASE}\n[[models]]\nname = \"mistral-small\"\nengine = \"embedded\"\npath = \"x.gguf\"\n"));
    assert!(err.message.contains("also served by backend"), "{err}");

    let err = error(&format!("{BASE}\n[[models]]\nname = \"gpt\"\nengine = \"remote\"\n"));
    assert!(err.message.contains("listed by no"), "{err}");

    let err = error(&format!("{BASE}\n[[models]]\nname = \"x\"\nengine = \"quantum\"\npath = \"x\"\n"));
    assert!(err.message.contains("embedded"), "says what is allowed: {err}");
}

#[test]
fn load_names_the_file_and_missing_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.toml");
    std::fs::write(&path, format!("{BASE}oops = 1\n")).unwrap();
    let err = Config::load(&path).unwrap_err();
    assert!(err.to_string().starts_with(&format!("{}:10:", path.display())), "{err}");

    std::fs::write(
        &path,
        format!("{BASE}\n[[models]]\nname = \"s\"\nengine = \"embedded\"\npath = \"missing.gguf\"\n"),
    )
    .unwrap();
    let config = Config::load(&path).unwrap();
    let err = config.check_files().unwrap_err();
    assert!(err.to_string().contains("missing.gguf"), "{err}");
    assert_eq!(err.key.as_deref(), Some("models[0].path"));
}

#[test]
fn a_site_without_an_audit_log_is_refused_unless_insecure_dev() {
    let secure = r#"
[server]
listen = "0.0.0.0:8443"
tls = { cert = "server.pem", key = "server.key" }

[identity]
client_ca = ["ca.pem"]
directory = "subjects.toml"

[[backends]]
name = "vllm-a"
url = "http://127.0.0.1:8000/v1"
models = ["mistral-small"]
"#;
    let err = error(secure);
    assert_eq!(err.key.as_deref(), Some("server.listen"), "{err}");
    assert!(err.message.contains("[audit]") && err.message.contains("audit keygen"), "{err}");

    let config = parse(&format!("{secure}\n[audit]\ndir = \"audit\"\nsigning_key = \"keys/audit.key\"\n")).unwrap();
    let audit = config.audit.expect("[audit] parsed");
    assert_eq!(audit.dir, Path::new("/etc/rampart/audit"));
    assert_eq!(audit.signing_key, Path::new("/etc/rampart/keys/audit.key"));

    let err = error(&format!("{secure}\n[audit]\ndir = \"audit\"\n"));
    assert!(err.message.contains("signing_key"), "{err}");
    assert!(parse(BASE).unwrap().audit.is_none(), "an insecure_dev site may run without a log");
}

fn sites_example() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sites.toml")).unwrap()
}

/// The error of the sites example with `from` replaced by `to`.
fn broken(from: &str, to: &str) -> ConfigError {
    let example = sites_example();
    assert!(example.contains(from), "{from}");
    error(&example.replacen(from, to, 1))
}

#[test]
fn sites_and_rules_are_checked_key_by_key() {
    let example = sites_example();
    let config = parse(&example).expect("the sites example is valid");
    assert_eq!((config.sites.len(), config.residency.len(), config.placement.len()), (3, 2, 1));
    assert_eq!(config.jurisdiction_groups()["EU"].len(), 27);
    let err = broken("security_level = 4", "security_level = 6");
    assert_eq!(err.key.as_deref(), Some("sites[0].security_level"), "{err}");
    let err = broken("jurisdiction = \"USA\"", "jurisdiction = \"US\"");
    assert_eq!(err.key.as_deref(), Some("sites[1].jurisdiction"), "{err}");
    let err = broken("jurisdictions = [\"EU\"]", "jurisdictions = [\"EUROPE\"]");
    assert_eq!(err.key.as_deref(), Some("residency[1].jurisdictions[0]"), "{err}");
    let err = broken("peer = \"https://deu-south.example:8443\"", "");
    assert!(err.key.as_deref() == Some("sites[2].peer") && err.message.contains("peer address"), "{err}");
    let err = broken("backends = [\"vllm-a\"]", "backends = []");
    assert!(err.key.as_deref() == Some("backends[0].name") && err.message.contains("sites[0].backends"), "{err}");
    let err = broken("id = \"gbr-north\"                      #", "id = \"nowhere\" #");
    assert_eq!(err.key.as_deref(), Some("site.id"), "{err}");
    let err = broken("{ min_security_level = 5 }", "{ min_security_level = 0 }");
    assert_eq!(err.key.as_deref(), Some("placement[0].any_of[1].min_security_level"), "{err}");
}

#[test]
fn peers_need_federation_and_federation_needs_mutual_tls() {
    let example = sites_example();
    let config = parse(&example).unwrap();
    let federation = config.federation.as_ref().expect("the example federates");
    assert_eq!(federation.assertion_ttl_secs, 30, "documented default");
    assert_eq!(config.sites[1].certificate_subject(), "usa-east", "a site's certificate is named by its id");
    let err = broken("[federation]\ncert = \"site.pem\"\nkey = \"site.key\"\nca = \"alliance-ca.pem\"\n", "");
    assert!(err.key.as_deref() == Some("federation") && err.message.contains("lists peers"), "{err}");
    let err = broken("ca = \"alliance-ca.pem\"\n", "ca = \"alliance-ca.pem\"\nassertion_ttl_secs = 0\n");
    assert_eq!(err.key.as_deref(), Some("federation.assertion_ttl_secs"), "{err}");
    let err = broken("client_ca = [\"alliance-ca.pem\"]", "jwks = \"j.json\"\nissuer = \"i\"\naudience = \"a\"");
    assert!(err.key.as_deref() == Some("federation.cert") && err.message.contains("client_ca"), "{err}");
    let err = broken("id = \"deu-south\"", "id = \"deu-south\"\nsubject = \"usa-east\"");
    assert!(err.key.as_deref() == Some("sites[2].subject") && err.message.contains("two sites"), "{err}");
}

#[test]
fn every_peer_is_pinned_by_key() {
    let config = parse(&sites_example()).unwrap();
    let pin = config.sites[1].key_sha256[0].clone();
    assert!(config.sites[1].pins_key(&pin) && config.sites[1].pins_key(&pin.to_uppercase()));
    assert!(!config.sites[1].pins_key(&"0".repeat(64)) && !config.sites[2].pins_key(&pin));
    let usa_pin = format!("key_sha256 = [\"{pin}\"]");
    let err = broken(&usa_pin, "");
    assert!(err.key.as_deref() == Some("sites[1].key_sha256") && err.message.contains("rampart site pin"), "{err}");
    let err = broken(&usa_pin, "key_sha256 = []");
    assert_eq!(err.key.as_deref(), Some("sites[1].key_sha256"), "{err}");
    let deu_pin = config.sites[2].key_sha256[0].clone();
    let err = broken(&format!("key_sha256 = [\"{deu_pin}\"]"), &format!("key_sha256 = [\"{}\"]", pin.to_uppercase()));
    assert!(err.key.as_deref() == Some("sites[2].key_sha256[0]") && err.message.contains("another site"), "{err}");
    for bad in [&pin[..63], &format!("{}g", &pin[..63]), &format!("{pin}0"), "sha256//abc"] {
        let err = broken(&usa_pin, &format!("key_sha256 = [\"{pin}\", \"{bad}\"]"));
        assert!(
            err.key.as_deref() == Some("sites[1].key_sha256[1]") && err.message.contains("64 digits"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn weights_requirements_are_checked_per_model() {
    let config = parse(&sites_example()).unwrap();
    assert_eq!(config.weights_requirement(), rampart_config::Requirement::SignedAndSealed, "SL4 site");
    let base = "[server]\nlisten = \"127.0.0.1:1\"\ninsecure_dev = true\n";
    let model = "[[models]]\nname = \"m\"\nengine = \"embedded\"\n";
    assert_eq!(
        parse(&format!("{base}{model}path = \"m.gguf\"\n")).unwrap().weights_requirement(),
        rampart_config::Requirement::None
    );
    let cases = [
        ("[weights]\nrequire = \"signed\"\n", "path = \"m.gguf\"\n", "models[0].signature", "requires signed"),
        ("", "sealed = \"s\"\n", "models[0].sealed", "weights.kek"),
        ("", "path = \"m.gguf\"\nsignature = \"m.sig\"\n", "models[0].owner_keys", "give both"),
        ("[weights]\nkek = \"k\"\n", "path = \"m.gguf\"\nsealed = \"s\"\n", "models[0].sealed", "not both"),
        (
            "[weights]\nkek = \"k\"\nrequire = \"signed_and_sealed\"\n",
            "path = \"m.gguf\"\nsignature = \"m.sig\"\nowner_keys = [\"o.pub\"]\n",
            "models[0].sealed",
            "requires sealed",
        ),
    ];
    for (weights, keys, key, message) in cases {
        let err = error(&format!("{base}{weights}{model}{keys}"));
        assert!(err.key.as_deref() == Some(key) && err.message.contains(message), "{err}");
    }
}

#[test]
fn the_console_is_on_by_default_and_its_banner_colours_are_checked() {
    let config = parse(BASE).unwrap();
    assert!(config.console.enabled && config.console.notice.is_none() && config.console.banners.is_empty());
    let console = "\n[console]\nnotice = \"Authorised use only.\"\n[console.banners]\nSECRET = \"#C8102E\"\n";
    let config = parse(&format!("{BASE}{console}")).unwrap();
    assert_eq!(config.console.notice.as_deref(), Some("Authorised use only."));
    assert_eq!(config.console.banners["SECRET"], "#C8102E");
    for bad in ["red", "#c8102", "c8102e00", "#c8102g"] {
        let err = error(&format!("{BASE}\n[console.banners]\nSECRET = \"{bad}\"\n"));
        assert!(err.to_string().contains("console.banners.SECRET"), "{err}");
        assert!(err.to_string().contains("#rrggbb"), "{err}");
    }
    let err = error(&format!("{BASE}\n[console]\ncolour = \"blue\"\n"));
    assert!(err.to_string().contains("colour"), "{err}");
}
