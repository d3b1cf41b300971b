//! Signing and sealing round trips, and every kind of tampering refused with
//! the file and the reason named.

use std::io::Read;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use rampart_seal::kek::Kek;
use rampart_seal::memory::MemoryFile;
use rampart_seal::sealed::{self, CHUNK, MANIFEST, SealedModel};
use rampart_seal::{SealError, TAG_LEN, oms};

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n")).into_bytes()
}

/// An ECDSA P-256 key pair as PEM (private PKCS#8, public SPKI).
fn keys() -> (Vec<u8>, Vec<u8>) {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_der().unwrap();
    (pem("PRIVATE KEY", pkcs8.as_ref()), pem("PUBLIC KEY", public.as_ref()))
}

/// A model: a multi-chunk weights file, a small one in a folder, an empty one.
fn model(dir: &Path) -> PathBuf {
    let model = dir.join("model");
    std::fs::create_dir_all(model.join("tokenizer")).unwrap();
    let weights: Vec<u8> = (0..(2 * CHUNK + 12_345)).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(model.join("weights.gguf"), weights).unwrap();
    std::fs::write(model.join("tokenizer/vocab.json"), b"{\"a\": 1}").unwrap();
    std::fs::write(model.join("empty"), b"").unwrap();
    model
}

fn nothing(_: u64) {}

fn verify(model: &Path, sig: &Path, public: &[u8]) -> Result<oms::SignedManifest, SealError> {
    oms::verify(model, sig, public, &mut nothing, &mut nothing)
}

#[test]
fn a_signature_names_every_changed_missing_and_extra_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let (private, public) = keys();
    let sig = dir.path().join("model.sig");
    oms::sign(&model, &private, &sig, &mut nothing, &mut nothing).unwrap();
    assert_eq!(verify(&model, &sig, &public).unwrap().files.len(), 3);

    std::fs::write(model.join("tokenizer/vocab.json"), b"{\"a\": 2}").unwrap();
    std::fs::remove_file(model.join("empty")).unwrap();
    std::fs::write(model.join("backdoor.py"), b"import os").unwrap();
    let err = verify(&model, &sig, &public).unwrap_err().to_string();
    assert_eq!(
        err,
        "the model does not match its signature: changed: tokenizer/vocab.json; missing: empty; not signed: backdoor.py"
    );
}

#[test]
fn a_signature_inside_the_model_is_not_signed_and_a_forged_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let (private, public) = keys();
    let sig = model.join("model.sig");
    oms::sign(&model, &private, &sig, &mut nothing, &mut nothing).unwrap();
    verify(&model, &sig, &public).unwrap();
    // Another key's public half.
    let err = verify(&model, &sig, &keys().1).unwrap_err().to_string();
    assert!(err.contains("another key"), "{err}");
    // The statement rewritten to list other digests.
    let mut bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(&sig).unwrap()).unwrap();
    let engine = base64::engine::general_purpose::STANDARD;
    let payload = engine.decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap()).unwrap();
    let forged = String::from_utf8(payload).unwrap().replacen("\"sha256\"", "\"sha256\" ", 1);
    bundle["dsseEnvelope"]["payload"] = engine.encode(forged).into();
    std::fs::write(&sig, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let err = verify(&model, &sig, &public).unwrap_err().to_string();
    assert!(err.contains("does not verify"), "{err}");
}

struct Sealed {
    _dir: tempfile::TempDir,
    model: PathBuf,
    sealed: PathBuf,
    kek: Kek,
    kek_path: PathBuf,
}

fn sealed() -> Sealed {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let kek_path = dir.path().join("site.kek");
    let kek = Kek::generate(&kek_path).unwrap();
    let out = dir.path().join("sealed");
    sealed::seal(&model, &kek, &out, &mut nothing, &mut nothing).unwrap();
    Sealed { model, sealed: out, kek, kek_path, _dir: dir }
}

fn refusal(s: &Sealed) -> String {
    let out = s.sealed.with_extension("out");
    let _ = std::fs::remove_dir_all(&out);
    sealed::unseal(&s.sealed, &s.kek, &out, &mut nothing, &mut nothing).unwrap_err().to_string()
}

#[test]
fn sealing_round_trips_and_leaves_no_plaintext_in_the_sealed_copy() {
    let s = sealed();
    let weights = std::fs::read(s.model.join("weights.gguf")).unwrap();
    let sealed_weights = std::fs::read(s.sealed.join("weights.gguf")).unwrap();
    assert_eq!(sealed_weights.len(), weights.len() + 3 * TAG_LEN, "three chunks, each with its tag");
    assert!(!sealed_weights.windows(64).any(|w| w == &weights[1000..1064]), "ciphertext only");
    let out = s.sealed.with_extension("out");
    sealed::unseal(&s.sealed, &Kek::from_file(&s.kek_path).unwrap(), &out, &mut nothing, &mut nothing).unwrap();
    for name in ["weights.gguf", "tokenizer/vocab.json", "empty"] {
        assert_eq!(std::fs::read(out.join(name)).unwrap(), std::fs::read(s.model.join(name)).unwrap(), "{name}");
    }
}

#[test]
fn tampered_truncated_reordered_or_swapped_chunks_are_refused_naming_the_file() {
    let edit = |s: &Sealed, name: &str, change: &dyn Fn(&mut Vec<u8>)| {
        let path = s.sealed.join(name);
        let mut bytes = std::fs::read(&path).unwrap();
        change(&mut bytes);
        std::fs::write(path, bytes).unwrap();
    };
    let s = sealed();
    edit(&s, "weights.gguf", &|b| b[100] ^= 1);
    let err = refusal(&s);
    assert!(err.starts_with("sealed file 'weights.gguf': chunk 0 fails authentication"), "{err}");

    let s = sealed();
    edit(&s, "weights.gguf", &|b| *b.last_mut().unwrap() ^= 1);
    assert!(refusal(&s).contains("chunk 2 fails authentication"));

    let s = sealed();
    let whole = CHUNK + TAG_LEN;
    edit(&s, "weights.gguf", &|b| {
        let (first, rest) = b.split_at_mut(whole);
        first.swap_with_slice(&mut rest[..whole]);
    });
    assert!(refusal(&s).contains("chunk 0 fails authentication"), "reordered chunks");

    let s = sealed();
    edit(&s, "weights.gguf", &|b| b.truncate(b.len() - 10));
    let err = refusal(&s);
    assert!(err.contains("'weights.gguf': truncated"), "{err}");

    // A file the manifest does not list is never read; one listed file's sealed bytes in place of
    // another's are refused.
    let s = sealed();
    let vocab = std::fs::read(s.sealed.join("tokenizer/vocab.json")).unwrap();
    let other = s.sealed.join("other.json");
    std::fs::write(&other, &vocab).unwrap();
    let err = {
        let out = s.sealed.with_extension("out");
        sealed::unseal(&s.sealed, &s.kek, &out, &mut nothing, &mut nothing).map(|_| ())
    };
    assert!(err.is_ok(), "files the manifest does not list are not read");
    edit(&s, "empty", &|b| *b = vocab.clone());
    let err = refusal(&s);
    assert!(err.contains("sealed file 'empty'"), "{err}");
}

#[test]
fn a_chunk_swapped_between_files_of_equal_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("a"), b"first file!").unwrap();
    std::fs::write(model.join("b"), b"other file!").unwrap();
    let kek = Kek::generate(&dir.path().join("k")).unwrap();
    let out = dir.path().join("sealed");
    sealed::seal(&model, &kek, &out, &mut nothing, &mut nothing).unwrap();
    std::fs::copy(out.join("a"), out.join("b")).unwrap();
    let err = sealed::unseal(&out, &kek, &dir.path().join("x"), &mut nothing, &mut nothing).unwrap_err();
    assert!(err.to_string().starts_with("sealed file 'b': chunk 0 fails authentication"), "{err}");
}

#[test]
fn an_altered_manifest_or_a_wrong_key_is_refused() {
    let s = sealed();
    let path = s.sealed.join(MANIFEST);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"size\": 0", "\"size\": 1", 1)).unwrap();
    let err = refusal(&s);
    assert!(err.contains("seal.json") && err.contains("altered after sealing"), "{err}");

    let s = sealed();
    let other = Kek::generate(&s.sealed.with_extension("other-kek")).unwrap();
    let err = SealedModel::open(&s.sealed, &other).unwrap_err().to_string();
    assert!(err.contains("is sealed under file:") && err.contains(other.id()), "{err}");

    // A manifest claiming the other key's id still cannot be opened with it.
    let path = s.sealed.join(MANIFEST);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(s.kek.id(), other.id())).unwrap();
    let err = SealedModel::open(&s.sealed, &other).unwrap_err().to_string();
    assert!(err.contains("does not unwrap"), "{err}");
}

#[test]
fn a_kek_file_others_may_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let s = sealed();
    std::fs::set_permissions(&s.kek_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Kek::from_file(&s.kek_path).unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");
    assert!(Kek::generate(&s.kek_path).is_err(), "an existing key is never overwritten");
}

#[test]
fn a_sealed_file_opens_into_memory_only() {
    let s = sealed();
    let model = SealedModel::open(&s.sealed, &s.kek).unwrap();
    let index = model.files().iter().position(|f| f.name == "weights.gguf").unwrap();
    let mut memory = MemoryFile::new("weights").unwrap();
    model.decrypt(index, memory.file(), &mut nothing).unwrap();
    let mut back = Vec::new();
    std::fs::File::open(memory.path()).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, std::fs::read(s.model.join("weights.gguf")).unwrap());
    let target = std::fs::read_link(memory.path()).unwrap();
    assert!(target.to_string_lossy().starts_with("/memfd:weights"), "{}", target.display());
}

#[test]
fn loading_checks_the_signature_only_when_there_is_one() {
    let s = sealed();
    let (private, public) = keys();
    let sig = s.model.with_extension("sig");
    oms::sign(&s.model, &private, &sig, &mut nothing, &mut nothing).unwrap();
    let signed = oms::SignedManifest::read(&sig, &public).unwrap();
    let kek = Kek::from_file(&s.kek_path).unwrap();
    let weights = std::fs::read(s.model.join("weights.gguf")).unwrap();
    for manifest in [None, Some(&signed)] {
        let (memory, name) = rampart_seal::load::sealed_into_memory(&s.sealed, &kek, manifest, &mut nothing).unwrap();
        assert_eq!(name, "weights.gguf");
        assert_eq!(std::fs::read(memory.path()).unwrap(), weights);
    }
    // A sealed model whose files differ from the signed ones: sealed after a change the owner never signed.
    std::fs::write(s.model.join("tokenizer/vocab.json"), b"{\"a\": 3}").unwrap();
    let resealed = s.sealed.with_extension("resealed");
    sealed::seal(&s.model, &kek, &resealed, &mut nothing, &mut nothing).unwrap();
    let err = rampart_seal::load::sealed_into_memory(&resealed, &kek, Some(&signed), &mut nothing).unwrap_err();
    assert!(err.to_string().contains("changed: tokenizer/vocab.json"), "{err}");
}
