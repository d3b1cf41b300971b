//! The log's signing key and its verifier key, in the C2SP signed-note formats
//! (`PRIVATE+KEY+<name>+<hex id>+<base64>` and `<name>+<hex id>+<base64>`),
//! and signed checkpoints.

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::{Checkpoint, Hash};

/// Why a key, a signature or a checkpoint was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key text is not in the signed-note format.
    #[error("not a signed-note {0} key: {1}")]
    Format(&'static str, String),
    /// The key file cannot be read or written.
    #[error("key file '{path}': {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The checkpoint is malformed, unsigned by this key, or for another log.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

/// Creates a new Ed25519 signing key for the log `origin`; returns (signing key, verifier key).
pub fn generate(origin: &str) -> Result<(String, String), KeyError> {
    if !signed_note::is_key_name_valid(origin) {
        return Err(KeyError::Format(
            "signing",
            format!("'{origin}' cannot name a log: it must be non-empty, without spaces or '+'"),
        ));
    }
    Ok(signed_note::generate_key(&mut rand_core::OsRng, origin))
}

/// Writes a signing key to a new file readable only by its owner; never overwrites.
pub fn write_signing_key(path: &Path, skey: &str) -> Result<(), KeyError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let fail = |e: std::io::Error| KeyError::File { path: path.display().to_string(), reason: e.to_string() };
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(fail)?;
    file.write_all(format!("{skey}\n").as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)
}

/// Reads a signing key file.
pub fn read_signing_key(path: &Path) -> Result<String, KeyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| KeyError::File { path: path.display().to_string(), reason: e.to_string() })?;
    let skey = text.trim().to_owned();
    StandardSigner::new(&skey).map_err(|e| KeyError::Format("signing", e.to_string()))?;
    Ok(skey)
}

/// The verifier key of a signing key.
pub fn verifier_key(skey: &str) -> Result<String, KeyError> {
    let bad = |m: &str| KeyError::Format("signing", m.to_owned());
    // Checked in full (id included) by the library first; then the parts are read.
    StandardSigner::new(skey).map_err(|e| KeyError::Format("signing", e.to_string()))?;
    let parts: Vec<&str> = skey.splitn(5, '+').collect();
    let [_, _, name, _, key] = parts.as_slice() else { return Err(bad("expected five '+'-separated fields")) };
    let bytes = base64::engine::general_purpose::STANDARD.decode(key).map_err(|e| bad(&e.to_string()))?;
    let seed: [u8; 32] = bytes.get(1..).and_then(|s| s.try_into().ok()).ok_or_else(|| bad("not an Ed25519 key"))?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    Ok(signed_note::new_ed25519_verifier_key(name, &signing.verifying_key()))
}

/// Whether `text` is a verifier key (rather than, say, the name of a file holding one).
pub fn is_verifier_key(text: &str) -> bool {
    StandardVerifier::new(text.trim()).is_ok()
}

/// The log's name (its checkpoints' origin line) in a signing or verifier key.
pub fn key_name(key: &str) -> &str {
    key.strip_prefix("PRIVATE+KEY+").unwrap_or(key).split('+').next().unwrap_or_default()
}

/// A signed checkpoint of the tree of `size` entries with root `root`.
pub fn sign_checkpoint(skey: &str, size: u64, root: Hash) -> Result<Vec<u8>, KeyError> {
    let signer = StandardSigner::new(skey).map_err(|e| KeyError::Format("signing", e.to_string()))?;
    let checkpoint = Checkpoint::new(key_name(skey), size, root, "")
        .map_err(|e| KeyError::Checkpoint(format!("cannot make one: {e}")))?;
    let mut note = Note::new(&checkpoint.to_bytes(), &[]).map_err(|e| KeyError::Checkpoint(e.to_string()))?;
    note.add_sigs(&[&signer]).map_err(|e| KeyError::Checkpoint(e.to_string()))?;
    Ok(note.to_bytes())
}

/// Opens a signed checkpoint: its signature must verify with `vkey` and its origin must be the key's name.
pub fn open_checkpoint(vkey: &str, signed: &[u8]) -> Result<Checkpoint, KeyError> {
    let verifier = StandardVerifier::new(vkey).map_err(|e| KeyError::Format("verifier", e.to_string()))?;
    let note = Note::from_bytes(signed).map_err(|e| KeyError::Checkpoint(format!("not a signed note: {e}")))?;
    note.verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| KeyError::Checkpoint(format!("the signature does not verify with this key: {e}")))?;
    let checkpoint =
        Checkpoint::from_bytes(note.text()).map_err(|e| KeyError::Checkpoint(format!("malformed text: {e}")))?;
    if checkpoint.origin() != key_name(vkey) {
        return Err(KeyError::Checkpoint(format!(
            "it is for the log '{}', not '{}'",
            checkpoint.origin(),
            key_name(vkey)
        )));
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sign_and_verify_checkpoints() {
        let (skey, vkey) = generate("rampart.example/site-a").unwrap();
        assert_eq!(verifier_key(&skey).unwrap(), vkey);
        assert_eq!(key_name(&skey), "rampart.example/site-a");
        let root = tlog_tiles::record_hash(b"entry");
        let signed = sign_checkpoint(&skey, 1, root).unwrap();
        let text = String::from_utf8(signed.clone()).unwrap();
        assert!(text.starts_with("rampart.example/site-a\n1\n"), "{text}");
        let checkpoint = open_checkpoint(&vkey, &signed).unwrap();
        assert_eq!((checkpoint.size(), *checkpoint.hash()), (1, root));

        let (_, other) = generate("rampart.example/site-a").unwrap();
        assert!(open_checkpoint(&other, &signed).is_err(), "another key with the same name");
        let mut flipped = signed.clone();
        flipped[text.find('\n').unwrap() + 1] = b'2';
        assert!(open_checkpoint(&vkey, &flipped).is_err(), "an altered size");
        assert!(generate("bad name").is_err());
        assert!(verifier_key("PRIVATE+KEY+x+00000000+AAAA").is_err());
    }
}
