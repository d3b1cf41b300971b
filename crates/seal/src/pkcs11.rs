//! A key-encryption key held in a hardware security module through PKCS#11:
//! an AES-256 secret key that never leaves the token (sensitive, not
//! extractable), used with CKM_AES_GCM to wrap and unwrap data keys.
//!
//! It is named by a PKCS#11 URI (RFC 7512, the parts Rampart reads):
//!
//! ```text
//! pkcs11:token=rampart;object=site-kek?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/rampart/hsm.pin
//! ```
//!
//! `pin-value=` may replace `pin-source=` for tests; a PIN file must be readable by its owner only.

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

use crate::SealError;

/// The parts of a `pkcs11:` URI Rampart uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// The token's label (`token=`).
    pub token: String,
    /// The key's label (`object=`).
    pub object: String,
    /// The PKCS#11 module (`module-path=`).
    pub module: String,
    /// The PIN, from `pin-value=` or the file of `pin-source=`.
    pin: String,
}

fn unescape(text: &str) -> String {
    // RFC 7512 percent-encoding; only what labels and paths use in practice.
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Pkcs11Uri {
    /// Parses `pkcs11:token=...;object=...?module-path=...&pin-source=...`.
    pub fn parse(uri: &str) -> Result<Self, SealError> {
        let bad = |m: &str| SealError::Kek(format!("PKCS#11 URI '{}': {m}", uri.split('?').next().unwrap_or(uri)));
        let rest = uri.strip_prefix("pkcs11:").ok_or_else(|| bad("does not start with pkcs11:"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut token, mut object, mut module, mut pin) = (None, None, None, None);
        for part in path.split(';').filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some(("token", v)) => token = Some(unescape(v)),
                Some(("object", v)) => object = Some(unescape(v)),
                _ => {}
            }
        }
        for part in query.split('&').filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some(("module-path", v)) => module = Some(unescape(v)),
                Some(("pin-value", v)) => pin = Some(unescape(v)),
                Some(("pin-source", v)) => {
                    let path = std::path::PathBuf::from(unescape(v).trim_start_matches("file:"));
                    pin = Some(read_pin(&path)?);
                }
                _ => {}
            }
        }
        Ok(Self {
            token: token.ok_or_else(|| bad("names no token (token=)"))?,
            object: object.ok_or_else(|| bad("names no key (object=)"))?,
            module: module.ok_or_else(|| bad("names no module (module-path=)"))?,
            pin: pin.ok_or_else(|| bad("gives no PIN (pin-source= or pin-value=)"))?,
        })
    }
}

fn read_pin(path: &std::path::Path) -> Result<String, SealError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).map_err(|e| SealError::io(path, e))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(SealError::Kek(format!("the PIN file '{}' may be read by others; chmod 600 it", path.display())));
    }
    Ok(std::fs::read_to_string(path).map_err(|e| SealError::io(path, e))?.trim().to_owned())
}

/// A logged-in session on the token and the key's handle.
pub struct Pkcs11Kek {
    session: Session,
    key: ObjectHandle,
    _context: Pkcs11,
}

fn hsm(what: &str) -> impl Fn(cryptoki::error::Error) -> SealError + '_ {
    move |e| SealError::Kek(format!("PKCS#11: {what}: {e}"))
}

fn session(uri: &Pkcs11Uri) -> Result<(Pkcs11, Session), SealError> {
    let context = Pkcs11::new(&uri.module).map_err(hsm("the module cannot be loaded"))?;
    context.initialize(CInitializeArgs::OsThreads).map_err(hsm("the module cannot be initialised"))?;
    let slots = context.get_slots_with_token().map_err(hsm("no slot"))?;
    let slot = slots
        .into_iter()
        .find(|slot| context.get_token_info(*slot).is_ok_and(|info| info.label() == uri.token))
        .ok_or_else(|| SealError::Kek(format!("PKCS#11: no token is labelled '{}'", uri.token)))?;
    let session = context.open_rw_session(slot).map_err(hsm("no session"))?;
    session.login(UserType::User, Some(&AuthPin::from(uri.pin.clone()))).map_err(hsm("login refused"))?;
    Ok((context, session))
}

fn key_template(label: &str) -> Vec<Attribute> {
    vec![Attribute::Class(ObjectClass::SECRET_KEY), Attribute::KeyType(KeyType::AES), Attribute::Label(label.into())]
}

impl Pkcs11Kek {
    /// Opens the key the URI names.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self, SealError> {
        let (context, session) = session(uri)?;
        let found = session.find_objects(&key_template(&uri.object)).map_err(hsm("the key cannot be looked up"))?;
        let [key] = found.as_slice() else {
            return Err(SealError::Kek(format!(
                "PKCS#11: token '{}' holds {} AES keys labelled '{}', not one",
                uri.token,
                found.len(),
                uri.object
            )));
        };
        Ok(Self { key: *key, session, _context: context })
    }

    /// Makes a new AES-256 key in the token: sensitive, not extractable, for encryption only.
    pub fn generate(uri: &Pkcs11Uri) -> Result<Self, SealError> {
        let (context, session) = session(uri)?;
        let existing = session.find_objects(&key_template(&uri.object)).map_err(hsm("the key cannot be looked up"))?;
        if !existing.is_empty() {
            return Err(SealError::Kek(format!("PKCS#11: token '{}' already holds '{}'", uri.token, uri.object)));
        }
        let mut template = key_template(&uri.object);
        template.extend([
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ]);
        let key = session.generate_key(&Mechanism::AesKeyGen, &template).map_err(hsm("the key cannot be made"))?;
        Ok(Self { key, session, _context: context })
    }

    /// AES-256-GCM encryption in the token; returns ciphertext and tag.
    pub fn encrypt(&self, nonce: &[u8; 12], aad: &[u8], data: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut iv = *nonce;
        let params = GcmParams::new(&mut iv, aad, 128.into()).map_err(hsm("GCM parameters"))?;
        self.session.encrypt(&Mechanism::AesGcm(params), self.key, data).map_err(hsm("wrapping failed"))
    }

    /// AES-256-GCM decryption in the token; fails when the tag does not verify.
    pub fn decrypt(&self, nonce: &[u8; 12], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut iv = *nonce;
        let params = GcmParams::new(&mut iv, aad, 128.into()).map_err(hsm("GCM parameters"))?;
        self.session.decrypt(&Mechanism::AesGcm(params), self.key, sealed).map_err(hsm("unwrapping failed"))
    }
}
