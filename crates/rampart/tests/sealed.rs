//! Signed and sealed weights end to end: the default model signed by its
//! owner, sealed under the site's key, served from memory with no plaintext
//! file written; and every broken model refused at start-up, naming the file
//! and the reason, with the refusal in the audit log.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::{Rampart, audit_entries, binary, cli, default_model};
use rampart_audit::entry::Entry;
use serde_json::{Value, json};

struct Owner {
    dir: tempfile::TempDir,
    sealed: PathBuf,
    signature: PathBuf,
    public: PathBuf,
    kek: PathBuf,
}

/// The default model in `dir/model` (linked, or copied), signed by a new owner key.
struct Signed {
    model: PathBuf,
    copy: PathBuf,
    public: PathBuf,
    signature: PathBuf,
}

fn signed_model(dir: &Path) -> Signed {
    let model = dir.join("model");
    std::fs::create_dir(&model).unwrap();
    let gguf = default_model();
    let copy = model.join(gguf.file_name().unwrap());
    if std::fs::hard_link(&gguf, &copy).is_err() {
        std::fs::copy(&gguf, &copy).unwrap();
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let (private, public) = (dir.join("owner.pem"), dir.join("owner.pub"));
    std::fs::write(&private, key.serialize_pem()).unwrap();
    std::fs::write(&public, key.public_key_pem()).unwrap();
    let signature = dir.join("model.sig");
    cli(&[&"model", &"sign", &model, &"--key", &private, &"--out", &signature]);
    Signed { model, copy, public, signature }
}

/// The default model as its owner would ship it: signed, then sealed under the site's new KEK;
/// the plaintext copy is removed.
fn owner() -> Owner {
    let dir = tempfile::tempdir().unwrap();
    let Signed { model, public, signature, .. } = signed_model(dir.path());
    let kek = dir.path().join("site.kek");
    cli(&[&"model", &"kek-gen", &"--out", &kek]);
    let sealed = dir.path().join("sealed");
    cli(&[&"model", &"seal", &model, &"--kek", &kek, &"--out", &sealed]);
    std::fs::remove_dir_all(&model).unwrap();
    Owner { dir, sealed, signature, public, kek }
}

fn config(owner: &Owner, extra: &str) -> String {
    let audit_key = owner.dir.path().join("audit-key");
    if !audit_key.exists() {
        cli(&[&"audit", &"keygen", &"--name", &"rampart.test/sealed", &"--out", &audit_key]);
    }
    format!(
        r#"
[server]
listen = "127.0.0.1:{{port}}"
insecure_dev = true

[audit]
dir = "{audit}"
signing_key = "{audit_key}"

[weights]
kek = "{kek}"
require = "signed_and_sealed"

[[models]]
name = "smollm2"
engine = "embedded"
sealed = "{sealed}"
signature = "{signature}"
owner_keys = ["{public}"]
context = 1024
parallel = 1
{extra}"#,
        audit = owner.dir.path().join("audit").display(),
        audit_key = audit_key.display(),
        kek = owner.kek.display(),
        sealed = owner.sealed.display(),
        signature = owner.signature.display(),
        public = owner.public.display(),
    )
}

/// Files of exactly `size` bytes under `root`, written since `since`, whose first bytes are `head`.
fn plaintext_copies(root: &Path, since: SystemTime, size: u64, head: &[u8], found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        let path = entry.path();
        if kind.is_dir() {
            plaintext_copies(&path, since, size, head, found);
        } else if kind.is_file()
            && entry.metadata().is_ok_and(|m| m.len() == size && m.modified().is_ok_and(|t| t >= since))
        {
            let mut start = vec![0u8; head.len()];
            let same = std::fs::File::open(&path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut start))
                .is_ok_and(|()| start == head);
            if same {
                found.push(path);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealed_signed_model_is_served_from_memory_only() {
    let owner = owner();
    let since = SystemTime::now();
    let rampart = Rampart::start(&config(&owner, "")).await;
    let body = json!({"model": "smollm2", "messages": [{"role": "user", "content": "Say hello."}],
                      "max_tokens": 8, "temperature": 0});
    let response = reqwest::Client::new().post(rampart.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["choices"][0]["message"]["content"].as_str().is_some_and(|c| !c.is_empty()), "{answer}");

    // While it serves: the weights are open only as an anonymous memory file...
    let fds = std::fs::read_dir(format!("/proc/{}/fd", rampart.child.id())).unwrap();
    let targets: Vec<String> =
        fds.flatten().filter_map(|fd| std::fs::read_link(fd.path()).ok()).map(|t| t.display().to_string()).collect();
    assert!(targets.iter().any(|t| t.starts_with("/memfd:SmolLM2")), "{targets:?}");
    assert!(!targets.iter().any(|t| t.ends_with(".gguf")), "no GGUF file is open: {targets:?}");
    // ...and no file written since it started under the test's or the system's temporary directories
    // holds them (the owner's plaintext copy was removed before).
    let gguf = default_model();
    let size = std::fs::metadata(&gguf).unwrap().len();
    let mut head = vec![0u8; 1 << 16];
    std::io::Read::read_exact(&mut std::fs::File::open(&gguf).unwrap(), &mut head).unwrap();
    let mut found = Vec::new();
    plaintext_copies(owner.dir.path(), SystemTime::UNIX_EPOCH, size, &head, &mut found);
    plaintext_copies(&std::env::temp_dir(), since, size, &head, &mut found);
    assert!(found.is_empty(), "plaintext weights on disk: {found:?}");
}

/// Starts rampart with `config` (written into `dir`), which must refuse to start; returns its error output.
fn refused(dir: &Path, config: &str) -> String {
    let path = dir.join("refused.toml");
    std::fs::write(&path, config.replace("{port}", &common::free_port().to_string())).unwrap();
    let mut child = Command::new(binary())
        .args(["serve", "--config"])
        .arg(&path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("rampart started with a broken model");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success(), "rampart started with a broken model");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn load_entries(owner: &Owner) -> Vec<Entry> {
    audit_entries(&owner.dir.path().join("audit")).into_iter().filter(|e| e.action == "load_model").collect()
}

#[test]
fn broken_models_are_refused_naming_the_file_and_audited() {
    let owner = owner();
    let sealed_gguf = std::fs::read_dir(&owner.sealed)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "gguf"))
        .unwrap();
    let name = sealed_gguf.file_name().unwrap().to_string_lossy().into_owned();
    let original = std::fs::read(&sealed_gguf).unwrap();

    // One flipped byte in the middle of the weights.
    let mut tampered = original.clone();
    tampered[original.len() / 2] ^= 1;
    std::fs::write(&sealed_gguf, &tampered).unwrap();
    let err = refused(owner.dir.path(), &config(&owner, ""));
    assert!(err.contains(&format!("sealed file '{name}': chunk")) && err.contains("fails authentication"), "{err}");

    // Cut short.
    std::fs::write(&sealed_gguf, &original[..original.len() - 100]).unwrap();
    let err = refused(owner.dir.path(), &config(&owner, ""));
    assert!(err.contains(&format!("sealed file '{name}': truncated")), "{err}");
    std::fs::write(&sealed_gguf, &original).unwrap();

    // Another site's key.
    let other = owner.dir.path().join("other.kek");
    cli(&[&"model", &"kek-gen", &"--out", &other]);
    let err = refused(
        owner.dir.path(),
        &config(&owner, "").replace(&owner.kek.display().to_string(), &other.display().to_string()),
    );
    assert!(err.contains("is sealed under file:"), "{err}");

    // A signature by someone else than the owner.
    let stranger = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let stranger_pub = owner.dir.path().join("stranger.pub");
    std::fs::write(&stranger_pub, stranger.public_key_pem()).unwrap();
    let err = refused(
        owner.dir.path(),
        &config(&owner, "").replace(&owner.public.display().to_string(), &stranger_pub.display().to_string()),
    );
    assert!(err.contains("no owner key verifies the signature"), "{err}");

    let codes: Vec<String> = load_entries(&owner).iter().map(|e| e.code.clone().unwrap_or_default()).collect();
    assert_eq!(
        codes,
        ["model_seal_broken", "model_seal_broken", "model_wrong_key", "model_signature_invalid"],
        "every refusal is audited"
    );
    assert!(load_entries(&owner).iter().all(|e| !e.allowed && e.model.as_deref() == Some("smollm2")));

    // An unsigned model where signed and sealed ones are required is refused by configuration.
    let plain = format!(
        "[server]\nlisten = \"127.0.0.1:1\"\ninsecure_dev = true\n[weights]\nrequire = \"signed_and_sealed\"\n\
         [[models]]\nname = \"m\"\nengine = \"embedded\"\npath = \"{}\"\n",
        default_model().display()
    );
    let path = owner.dir.path().join("plain.toml");
    std::fs::write(&path, plain).unwrap();
    let check = Command::new(binary()).args(["config", "check"]).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success() && err.contains("models[0].signature") && err.contains("requires signed"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_model_is_checked_against_its_signed_directory() {
    let dir = tempfile::tempdir().unwrap();
    let Signed { model, copy, public, signature } = signed_model(dir.path());
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{{port}}\"\ninsecure_dev = true\n[weights]\nrequire = \"signed\"\n\
         [[models]]\nname = \"m\"\nengine = \"embedded\"\npath = \"{}\"\nsignature = \"{}\"\nowner_keys = [\"{}\"]\n\
         context = 1024\nparallel = 1\n",
        copy.display(),
        signature.display(),
        public.display()
    );
    let rampart = Rampart::start(&config).await;
    rampart.wait_ready().await;
    drop(rampart);

    std::fs::write(model.join("added.py"), b"import os").unwrap();
    let err = refused(dir.path(), &config);
    assert!(err.contains("not signed: added.py"), "{err}");
}

/// SoftHSM's module, where Debian puts it.
fn softhsm_module() -> PathBuf {
    ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("SoftHSM is installed (Debian softhsm2; scripts/setup installs it)")
}

#[test]
fn a_kek_held_in_an_hsm_seals_and_unseals_through_pkcs11() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(&conf, format!("directories.tokendir = {}\nobjectstore.backend = file\n", tokens.display()))
        .unwrap();
    let init = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", "rampart", "--pin", "4321", "--so-pin", "8765"])
        .output()
        .expect("softhsm2-util runs");
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let pin = dir.path().join("hsm.pin");
    std::fs::write(&pin, "4321\n").unwrap();
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let uri = |object: &str, pin_part: &str| {
        format!("pkcs11:token=rampart;object={object}?module-path={}&{pin_part}", softhsm_module().display())
    };
    let kek = uri("site-kek", &format!("pin-source={}", pin.display()));
    let hsm = |args: &[&dyn AsRef<std::ffi::OsStr>]| {
        Command::new(binary()).env("SOFTHSM2_CONF", &conf).args(args).output().unwrap()
    };
    let made = hsm(&[&"model", &"kek-gen", &"--out", &kek]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert!(String::from_utf8_lossy(&made.stdout).contains("pkcs11:rampart/site-kek"));
    let again = hsm(&[&"model", &"kek-gen", &"--out", &kek]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds 'site-kek'"));

    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("weights.gguf"), vec![7u8; 5 << 20]).unwrap();
    let (sealed, out) = (dir.path().join("sealed"), dir.path().join("out"));
    let seal = hsm(&[&"model", &"seal", &model, &"--kek", &kek, &"--out", &sealed]);
    assert!(seal.status.success(), "{}", String::from_utf8_lossy(&seal.stderr));
    let manifest = std::fs::read_to_string(sealed.join("seal.json")).unwrap();
    assert!(manifest.contains("\"kek\": \"pkcs11:rampart/site-kek\""), "{manifest}");
    let unseal = hsm(&[&"model", &"unseal", &sealed, &"--kek", &kek, &"--out", &out]);
    assert!(unseal.status.success(), "{}", String::from_utf8_lossy(&unseal.stderr));
    assert_eq!(std::fs::read(out.join("weights.gguf")).unwrap(), vec![7u8; 5 << 20]);

    // A wrong PIN, and a key the token does not hold, are refused.
    let wrong_pin = hsm(&[&"model", &"unseal", &sealed, &"--kek", &uri("site-kek", "pin-value=1111"), &"--out", &out]);
    assert!(
        String::from_utf8_lossy(&wrong_pin.stderr).contains("login refused"),
        "{}",
        String::from_utf8_lossy(&wrong_pin.stderr)
    );
    let missing = hsm(&[&"model", &"unseal", &sealed, &"--kek", &uri("other", "pin-value=4321"), &"--out", &out]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("holds 0 AES keys labelled 'other'"));
}
