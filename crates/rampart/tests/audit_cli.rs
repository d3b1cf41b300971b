//! `rampart audit keygen | vkey | verify | show` on a real log.

mod common;

use std::process::Command;

use common::binary;
use rampart_audit::log::Log;
use rampart_audit::storage::FsStorage;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary()).args(args).output().expect("rampart runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn keys_verify_tampering_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit.key");
    let key_arg = key.to_str().unwrap();
    let (ok, vkey, _) = run(&["audit", "keygen", "--name", "rampart.example/site-a", "--out", key_arg]);
    assert!(ok);
    let vkey = vkey.trim().to_owned();
    assert!(vkey.starts_with("rampart.example/site-a+"), "{vkey}");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let (ok, _, err) = run(&["audit", "keygen", "--name", "x", "--out", key_arg]);
    assert!(!ok && err.contains("exists"), "never overwrites: {err}");
    let (ok, printed, _) = run(&["audit", "vkey", "--signing-key", key_arg]);
    assert!(ok);
    assert_eq!(printed.trim(), vkey);

    let log_dir = dir.path().join("log");
    let skey = rampart_audit::keys::read_signing_key(&key).unwrap();
    let mut log = Log::open(FsStorage::new(&log_dir).unwrap(), skey).unwrap();
    let entries: Vec<Vec<u8>> = (0..300).map(|i| format!("{{\"v\":1,\"n\":{i}}}").into_bytes()).collect();
    log.append(&entries[..100]).unwrap();
    log.append(&entries[100..]).unwrap();
    let log_arg = log_dir.to_str().unwrap();

    let (ok, out, err) = run(&["audit", "verify", log_arg, "--vkey", &vkey]);
    assert!(ok, "{err}");
    assert!(out.contains("300 entries"), "{out}");
    // The verifier key from a file, but never from inside the log directory.
    let vkey_file = dir.path().join("site-a.vkey");
    std::fs::write(&vkey_file, format!("{vkey}\n")).unwrap();
    assert!(run(&["audit", "verify", log_arg, "--vkey", vkey_file.to_str().unwrap()]).0);
    let inside = log_dir.join("vkey");
    std::fs::write(&inside, &vkey).unwrap();
    let (ok, _, err) = run(&["audit", "verify", log_arg, "--vkey", inside.to_str().unwrap()]);
    assert!(!ok && err.contains("inside the log directory"), "{err}");

    let (ok, out, _) = run(&["audit", "show", log_arg, "--from", "298", "--json"]);
    assert!(ok);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["{\"v\":1,\"n\":298}", "{\"v\":1,\"n\":299}"]);

    // Proofs, checked with the library's verifier (the one the test vectors check).
    let (ok, out, err) = run(&["audit", "prove", log_arg, "--index", "123", "--vkey", &vkey]);
    assert!(ok, "{err}");
    let proof: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hash = |v: &serde_json::Value| {
        use base64::Engine as _;
        rampart_audit::Hash(
            base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap().try_into().unwrap(),
        )
    };
    let path: Vec<_> = proof["proof"].as_array().unwrap().iter().map(hash).collect();
    let leaf = rampart_audit::proof::leaf_hash(&entries[123]);
    assert_eq!(hash(&proof["leaf_hash"]), leaf);
    rampart_audit::proof::verify_inclusion(123, 300, leaf, &path, hash(&proof["root"])).unwrap();
    let (ok, out, err) = run(&["audit", "consistency", log_arg, "--old", "100", "--vkey", &vkey]);
    assert!(ok, "{err}");
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    let path: Vec<_> = c["proof"].as_array().unwrap().iter().map(hash).collect();
    rampart_audit::proof::verify_consistency(100, 300, hash(&c["root1"]), hash(&c["root2"]), &path).unwrap();
    assert!(!run(&["audit", "prove", log_arg, "--index", "300", "--vkey", &vkey]).0, "no entry 300");

    // One byte changed in entry 7: verify fails and names it.
    let bundle = log_dir.join("tile/entries/000");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.windows(6).position(|w| w == b"\"n\":7}").unwrap() + 4;
    bytes[at] = b'8';
    std::fs::write(&bundle, bytes).unwrap();
    let (ok, _, err) = run(&["audit", "verify", log_arg, "--vkey", &vkey]);
    assert!(!ok, "a tampered log fails");
    assert!(err.contains("entry 7 (in tile/entries/000)"), "{err}");
}
