//! Every inclusion and consistency test vector of transparency-dev/merkle
//! (tests/merkle-testdata, Apache-2.0), positive and negative.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rampart_audit::Hash;
use rampart_audit::proof::{verify_consistency, verify_inclusion};
use serde_json::Value;
use sha2::Digest as _;

fn cases(kind: &str) -> Vec<(PathBuf, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/merkle-testdata").join(kind);
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                files.push((path, value));
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// A hash from the vectors: base64 of 32 bytes. Anything else cannot verify.
fn hash(value: &Value) -> Option<Hash> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(value.as_str()?).ok()?;
    Some(Hash(bytes.try_into().ok()?))
}

/// A consistency vector's root. Some use opaque roots of other lengths ("don't
/// care") where only their equality matters; those stand for the SHA-256 of
/// their bytes, which keeps equality.
fn root(value: &Value) -> Option<Hash> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(value.as_str()?).ok()?;
    match <[u8; 32]>::try_from(bytes.as_slice()) {
        Ok(exact) => Some(Hash(exact)),
        Err(_) => Some(Hash(sha2::Sha256::digest(&bytes).into())),
    }
}

fn proof(value: &Value) -> Option<Vec<Hash>> {
    match value {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(hash).collect(),
        _ => None,
    }
}

fn number(value: &Value) -> u64 {
    value.as_u64().expect("sizes and indexes are unsigned")
}

#[test]
fn inclusion_vectors() {
    let (mut positive, mut negative) = (0, 0);
    for (path, case) in cases("inclusion") {
        let result = match (hash(&case["root"]), hash(&case["leafHash"]), proof(&case["proof"])) {
            (Some(root), Some(leaf), Some(proof)) => {
                verify_inclusion(number(&case["leafIdx"]), number(&case["treeSize"]), leaf, &proof, root).is_ok()
            }
            _ => false,
        };
        let want_err = case["wantErr"].as_bool().unwrap_or(false);
        assert_eq!(result, !want_err, "{}: {}", path.display(), case["desc"]);
        if want_err { negative += 1 } else { positive += 1 }
    }
    assert!(positive > 0 && negative > 0, "{positive} positive, {negative} negative");
    eprintln!("inclusion: {positive} positive and {negative} negative vectors");
}

#[test]
fn consistency_vectors() {
    let (mut positive, mut negative) = (0, 0);
    for (path, case) in cases("consistency") {
        let result = match (root(&case["root1"]), root(&case["root2"]), proof(&case["proof"])) {
            (Some(old), Some(new), Some(proof)) => {
                verify_consistency(number(&case["size1"]), number(&case["size2"]), old, new, &proof).is_ok()
            }
            _ => false,
        };
        let want_err = case["wantErr"].as_bool().unwrap_or(false);
        assert_eq!(result, !want_err, "{}: {}", path.display(), case["desc"]);
        if want_err { negative += 1 } else { positive += 1 }
    }
    assert!(positive > 0 && negative > 0, "{positive} positive, {negative} negative");
    eprintln!("consistency: {positive} positive and {negative} negative vectors");
}
