//! Keyed digests of request bodies. An entry's `request_sha256` is an
//! HMAC-SHA256 of the body under a key derived from the site's audit signing
//! key, not a plain SHA-256: anyone who reads the log (auditors, witnesses)
//! could otherwise confirm a guessed question by hashing it. Whoever holds the
//! signing key can still tie a request to its entry
//! (`rampart audit digest --signing-key KEY FILE`).

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::entry::hex;

/// What the digest key is derived for, so that it serves no other purpose.
const PURPOSE: &[u8] = b"rampart audit request digest v1";

/// Computes request digests under one site's key.
#[derive(Clone)]
pub struct RequestDigester {
    key: [u8; 32],
}

impl std::fmt::Debug for RequestDigester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestDigester(..)")
    }
}

impl RequestDigester {
    /// The digester of the site whose audit signing key (C2SP signed-note
    /// private key text) is `skey`: its key is HMAC-SHA256(`skey`, purpose).
    pub fn from_signing_key(skey: &str) -> Self {
        Self { key: mac(skey.trim().as_bytes(), PURPOSE) }
    }

    /// The digest of `body`, in lowercase hex.
    pub fn digest_hex(&self, body: &[u8]) -> String {
        hex(&mac(&self.key, body))
    }
}

fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_keyed_by_the_site() {
        let (one, _) = crate::keys::generate("one.example").unwrap();
        let (two, _) = crate::keys::generate("two.example").unwrap();
        let body = b"{\"query\":\"Where is the reserve battalion?\"}";
        let digest = RequestDigester::from_signing_key(&one).digest_hex(body);
        assert_eq!(digest, RequestDigester::from_signing_key(&one).digest_hex(body), "stable for one site");
        assert_ne!(digest, RequestDigester::from_signing_key(&two).digest_hex(body), "another site's key");
        assert_ne!(digest, crate::entry::sha256_hex(body), "not the plain hash a reader could compute");
        assert_eq!(digest.len(), 64);
        // RFC 4231 test case 2, through the same HMAC.
        assert_eq!(
            hex(&mac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
