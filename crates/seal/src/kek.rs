//! Key-encryption keys: the site key that wraps each sealed model's data key.
//! A KEK file holds 32 random bytes in hex and must be readable by its owner
//! only; a `pkcs11:` URI names a key held in an HSM ([`crate::pkcs11`]).

use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::SealError;
use crate::files::{hex, unhex32};
use crate::pkcs11::{Pkcs11Kek, Pkcs11Uri};

/// A key-encryption key.
pub struct Kek {
    key: Held,
    id: String,
}

/// Where the key is.
enum Held {
    /// In this process's memory, read from a key file.
    Memory(LessSafeKey),
    /// In an HSM.
    Token(Pkcs11Kek),
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek").field("id", &self.id).finish()
    }
}

/// Random bytes, for a nonce, a data key or an id.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], SealError> {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).map_err(|_| SealError::Kek("the system random generator failed".into()))?;
    Ok(out)
}

impl Kek {
    /// A KEK from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SealError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::Kek("not an AES-256 key".into()))?;
        let fingerprint = digest(&SHA256, &[b"rampart-kek-id\0".as_slice(), bytes].concat());
        let id = format!("file:{}", hex(&fingerprint.as_ref()[..8]));
        Ok(Self { key: Held::Memory(LessSafeKey::new(key)), id })
    }

    /// The KEK `spec` names: a `pkcs11:` URI, or the path of a key file.
    pub fn open(spec: &Path) -> Result<Self, SealError> {
        Self::at(spec, Pkcs11Kek::open, Self::from_file)
    }

    /// Makes a new KEK where `spec` says: a new key file (mode 0600, never
    /// overwriting one), or a new non-extractable key in the token of a `pkcs11:` URI.
    pub fn create(spec: &Path) -> Result<Self, SealError> {
        Self::at(spec, Pkcs11Kek::generate, Self::generate)
    }

    fn at(
        spec: &Path,
        token: fn(&Pkcs11Uri) -> Result<Pkcs11Kek, SealError>,
        file: fn(&Path) -> Result<Self, SealError>,
    ) -> Result<Self, SealError> {
        let Some(uri) = spec.to_str().filter(|s| s.starts_with("pkcs11:")) else { return file(spec) };
        let uri = Pkcs11Uri::parse(uri)?;
        let id = format!("pkcs11:{}/{}", uri.token, uri.object);
        Ok(Self { key: Held::Token(token(&uri)?), id })
    }

    /// Reads a KEK file; refuses one that others may read.
    pub fn from_file(path: &Path) -> Result<Self, SealError> {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path).map_err(|e| SealError::io(path, e))?;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Err(SealError::Kek(format!(
                "'{}' may be read by others than its owner; run `chmod 600 {}`",
                path.display(),
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| SealError::io(path, e))?;
        let bytes = unhex32(text.trim()).ok_or_else(|| {
            SealError::Kek(format!("'{}' does not hold a key (64 hex digits, `rampart model kek-gen`)", path.display()))
        })?;
        Self::from_bytes(&bytes)
    }

    /// Writes a new random KEK file (mode 0600); never overwrites one.
    pub fn generate(path: &Path) -> Result<Self, SealError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let bytes: [u8; 32] = random()?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| SealError::io(path, e))?;
        file.write_all(format!("{}\n", hex(&bytes)).as_bytes()).map_err(|e| SealError::io(path, e))?;
        file.sync_all().map_err(|e| SealError::io(path, e))?;
        Self::from_bytes(&bytes)
    }

    /// Names the key without revealing it (`file:` and a fingerprint).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Wraps a data key: a random nonce, then the key encrypted with AES-256-GCM, bound to `context`.
    pub fn wrap(&self, data_key: &[u8; 32], context: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce: [u8; NONCE_LEN] = random()?;
        let sealed = match &self.key {
            Held::Memory(key) => {
                let mut sealed = data_key.to_vec();
                key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context), &mut sealed)
                    .map_err(|_| SealError::Kek("the data key could not be wrapped".into()))?;
                sealed
            }
            Held::Token(token) => token.encrypt(&nonce, context, data_key)?,
        };
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Unwraps a data key wrapped with [`Kek::wrap`] under the same `context`.
    pub fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<[u8; 32], SealError> {
        let wrong =
            || SealError::Kek(format!("the data key does not unwrap with {} (wrong key, or tampered)", self.id));
        let (nonce, sealed) = wrapped.split_at_checked(NONCE_LEN).ok_or_else(wrong)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| wrong())?;
        match &self.key {
            Held::Memory(key) => {
                let mut buffer = sealed.to_vec();
                let nonce = Nonce::assume_unique_for_key(nonce);
                let plain = key.open_in_place(nonce, Aad::from(context), &mut buffer).map_err(|_| wrong())?;
                plain.try_into().map_err(|_| wrong())
            }
            Held::Token(token) => {
                let plain = token.decrypt(&nonce, context, sealed).map_err(|_| wrong())?;
                plain.as_slice().try_into().map_err(|_| wrong())
            }
        }
    }
}
