//! OpenSSF model signing, OMS v1.0, with a key (no transparency log): a
//! Sigstore bundle (v0.3) whose DSSE envelope carries an in-toto statement
//! with predicate type `https://model_signing/signature/v1.0`, listing every
//! file's SHA-256 sorted by path, signed with ECDSA. Signatures interoperate
//! with the reference tool (`model_signing sign key` / `verify key`) both ways.
//!
//! Written here because no Rust crate implements OMS; the cryptography is
//! aws-lc-rs.

use std::collections::BTreeMap;
use std::path::Path;

use aws_lc_rs::digest::{Context, SHA256};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1, ECDSA_P521_SHA512_ASN1,
    EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::SealError;
use crate::files::{self, DEFAULT_IGNORED, Resource, hex, unhex32};

const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    verification_material: VerificationMaterial,
    dsse_envelope: Envelope,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerificationMaterial {
    #[serde(default)]
    public_key: Option<KeyHint>,
    #[serde(default)]
    tlog_entries: Vec<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct KeyHint {
    #[serde(default)]
    hint: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Serialize, Deserialize)]
struct EnvelopeSignature {
    sig: String,
    #[serde(default)]
    keyid: String,
}

/// DSSE's pre-authentication encoding of a payload.
fn pae(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {PAYLOAD_TYPE} {} ", PAYLOAD_TYPE.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The key hint of a public key: SHA-256 (hex) of its PEM form, as the reference tool writes it.
fn key_hint(spki_der: &[u8]) -> String {
    let body = STANDARD.encode(spki_der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"));
    hex(aws_lc_rs::digest::digest(&SHA256, pem.as_bytes()).as_ref())
}

/// The model's root digest: SHA-256 over the file digests in order.
fn root_digest(resources: &[Resource]) -> [u8; 32] {
    let mut context = Context::new(&SHA256);
    for resource in resources {
        context.update(&resource.digest);
    }
    files::digest32(context)
}

/// Reads an ECDSA P-256 private key (PEM: PKCS#8 or SEC1).
fn signing_key(pem: &[u8]) -> Result<EcdsaKeyPair, SealError> {
    let der = PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| SealError::Key(format!("the signing key is not a PEM private key: {e}")))?;
    let pair = match &der {
        PrivateKeyDer::Pkcs8(der) => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der.secret_pkcs8_der()),
        PrivateKeyDer::Sec1(der) => {
            EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, der.secret_sec1_der())
        }
        _ => return Err(SealError::Key("the signing key must be an ECDSA P-256 key (PKCS#8 or SEC1 PEM)".into())),
    };
    pair.map_err(|e| SealError::Key(format!("the signing key is not an ECDSA P-256 key: {e}")))
}

/// The files of `dir` that a signature covers: all but the reference tool's
/// default ignores, `extra_ignored`, and the signature file itself when it is inside.
fn signed_files(
    dir: &Path,
    signature: &Path,
    extra_ignored: &[String],
) -> Result<Vec<(String, std::path::PathBuf)>, SealError> {
    let mut ignored = extra_ignored.to_vec();
    ignored.extend(files::inside(dir, signature));
    files::list(dir, &ignored)
}

/// Signs every file of `dir` with the ECDSA P-256 key `key_pem` and writes the
/// bundle to `signature`. `progress` hears of the bytes hashed and is first
/// told the total with `started`.
pub fn sign(
    dir: &Path,
    key_pem: &[u8],
    signature: &Path,
    started: &mut dyn FnMut(u64),
    progress: &mut dyn FnMut(u64),
) -> Result<(), SealError> {
    let key = signing_key(key_pem)?;
    let listed = signed_files(dir, signature, &[])?;
    started(files::total_size(&listed));
    let resources = files::hash(&listed, progress)?;
    let name = std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .unwrap_or_else(|| "model".into());
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{ "name": name, "digest": { "sha256": hex(&root_digest(&resources)) } }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": false,
                "ignore_paths": DEFAULT_IGNORED,
            },
            "resources": resources.iter().map(|r| json!({
                "algorithm": "sha256", "digest": hex(&r.digest), "name": r.name,
            })).collect::<Vec<_>>(),
        },
    });
    let payload = serde_json::to_vec_pretty(&statement).map_err(|e| SealError::Signature(e.to_string()))?;
    let signed = key
        .sign(&SystemRandom::new(), &pae(&payload))
        .map_err(|_| SealError::Signature("the statement could not be signed".into()))?;
    let spki = key.public_key().as_der().map_err(|_| SealError::Key("the public key cannot be encoded".into()))?;
    let bundle = Bundle {
        media_type: BUNDLE_MEDIA_TYPE.into(),
        verification_material: VerificationMaterial {
            public_key: Some(KeyHint { hint: Some(key_hint(spki.as_ref())) }),
            tlog_entries: Vec::new(),
        },
        dsse_envelope: Envelope {
            payload: STANDARD.encode(&payload),
            payload_type: PAYLOAD_TYPE.into(),
            signatures: vec![EnvelopeSignature { sig: STANDARD.encode(signed.as_ref()), keyid: String::new() }],
        },
    };
    let text = serde_json::to_string_pretty(&bundle).map_err(|e| SealError::Signature(e.to_string()))?;
    std::fs::write(signature, text).map_err(|e| SealError::io(signature, e))
}

/// What a verified signature says of a model: each file's SHA-256, and the paths it leaves out.
#[derive(Debug, Clone)]
pub struct SignedManifest {
    /// SHA-256 of each signed file, by relative name.
    pub files: BTreeMap<String, [u8; 32]>,
    /// Paths the signature leaves out (`ignore_paths`).
    pub ignored: Vec<String>,
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: Predicate,
}

#[derive(Deserialize)]
struct Subject {
    digest: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Predicate {
    serialization: Serialization,
    resources: Vec<ResourceJson>,
}

#[derive(Deserialize)]
struct Serialization {
    method: String,
    hash_type: String,
    #[serde(default)]
    ignore_paths: Vec<String>,
}

#[derive(Deserialize)]
struct ResourceJson {
    name: String,
    algorithm: String,
    digest: String,
}

impl SignedManifest {
    /// Reads the signature bundle at `signature` and checks it with the public key `public_pem`
    /// (PEM SubjectPublicKeyInfo; ECDSA P-256, P-384 or P-521).
    pub fn read(signature: &Path, public_pem: &[u8]) -> Result<Self, SealError> {
        let bad = |m: &str| SealError::Signature(format!("signature '{}': {m}", signature.display()));
        let text = std::fs::read(signature).map_err(|e| SealError::io(signature, e))?;
        let bundle: Bundle = serde_json::from_slice(&text).map_err(|e| bad(&format!("not a Sigstore bundle ({e})")))?;
        if bundle.media_type != BUNDLE_MEDIA_TYPE {
            return Err(bad(&format!("media type '{}' is not {BUNDLE_MEDIA_TYPE}", bundle.media_type)));
        }
        let spki = SubjectPublicKeyInfoDer::from_pem_slice(public_pem)
            .map_err(|e| SealError::Key(format!("the public key is not a PEM public key: {e}")))?;
        let hint = bundle.verification_material.public_key.and_then(|k| k.hint);
        if hint.is_some_and(|hint| hint != key_hint(spki.as_ref())) {
            return Err(bad("it was made with another key than this public key"));
        }
        let envelope = bundle.dsse_envelope;
        if envelope.payload_type != PAYLOAD_TYPE {
            return Err(bad(&format!("payload type '{}' is not {PAYLOAD_TYPE}", envelope.payload_type)));
        }
        let payload = STANDARD.decode(&envelope.payload).map_err(|_| bad("the payload is not base64"))?;
        let [signed] = envelope.signatures.as_slice() else { return Err(bad("it must carry exactly one signature")) };
        let sig = STANDARD.decode(&signed.sig).map_err(|_| bad("the signature is not base64"))?;
        let message = pae(&payload);
        let verified = [&ECDSA_P256_SHA256_ASN1, &ECDSA_P384_SHA384_ASN1, &ECDSA_P521_SHA512_ASN1]
            .into_iter()
            .any(|algorithm| UnparsedPublicKey::new(algorithm, spki.as_ref()).verify(&message, &sig).is_ok());
        if !verified {
            return Err(bad("the signature does not verify with this public key (P-256, P-384 or P-521)"));
        }
        let statement: Statement =
            serde_json::from_slice(&payload).map_err(|e| bad(&format!("the statement is malformed ({e})")))?;
        Self::from_statement(statement).map_err(|m| bad(&m))
    }

    fn from_statement(statement: Statement) -> Result<Self, String> {
        if statement.kind != STATEMENT_TYPE || statement.predicate_type != PREDICATE_TYPE {
            return Err(format!("not an OMS v1.0 statement (predicate type '{}')", statement.predicate_type));
        }
        let serialization = &statement.predicate.serialization;
        if serialization.method != "files" || serialization.hash_type != "sha256" {
            return Err(format!(
                "serialization '{}' with '{}' is not supported (files with sha256 is)",
                serialization.method, serialization.hash_type
            ));
        }
        let [subject] = statement.subject.as_slice() else { return Err("it must name exactly one subject".into()) };
        let mut resources = Vec::new();
        for resource in &statement.predicate.resources {
            let digest = unhex32(&resource.digest).filter(|_| resource.algorithm == "sha256");
            let digest = digest.ok_or_else(|| format!("resource '{}' has no SHA-256 digest", resource.name))?;
            resources.push(Resource { name: resource.name.clone(), digest });
        }
        if subject.digest.get("sha256") != Some(&hex(&root_digest(&resources))) {
            return Err("its resources do not hash to its subject's digest".into());
        }
        let files = resources.into_iter().map(|r| (r.name, r.digest)).collect();
        Ok(Self { files, ignored: serialization.ignore_paths.clone() })
    }

    /// Compares the files found with those signed; names every difference.
    pub fn check(&self, found: &[Resource]) -> Result<(), SealError> {
        let found: BTreeMap<&str, &[u8; 32]> = found.iter().map(|r| (r.name.as_str(), &r.digest)).collect();
        let changed: Vec<String> = self
            .files
            .iter()
            .filter(|(name, digest)| found.get(name.as_str()).is_some_and(|d| d != digest))
            .map(|(name, _)| name.clone())
            .collect();
        let missing: Vec<String> =
            self.files.keys().filter(|name| !found.contains_key(name.as_str())).cloned().collect();
        let extra: Vec<String> =
            found.keys().filter(|name| !self.files.contains_key(**name)).map(|n| (*n).to_owned()).collect();
        if changed.is_empty() && missing.is_empty() && extra.is_empty() {
            Ok(())
        } else {
            Err(SealError::Mismatch { changed, missing, extra })
        }
    }
}

/// Verifies every file of `dir` against the signature at `signature` made with the key `public_pem`.
pub fn verify(
    dir: &Path,
    signature: &Path,
    public_pem: &[u8],
    started: &mut dyn FnMut(u64),
    progress: &mut dyn FnMut(u64),
) -> Result<SignedManifest, SealError> {
    let manifest = SignedManifest::read(signature, public_pem)?;
    check_dir(dir, signature, &manifest, started, progress)?;
    Ok(manifest)
}

/// Hashes the files of `dir` and checks them against a verified `manifest` (read from `signature`).
pub fn check_dir(
    dir: &Path,
    signature: &Path,
    manifest: &SignedManifest,
    started: &mut dyn FnMut(u64),
    progress: &mut dyn FnMut(u64),
) -> Result<(), SealError> {
    let listed = signed_files(dir, signature, &manifest.ignored)?;
    started(files::total_size(&listed));
    manifest.check(&files::hash(&listed, progress)?)
}
