//! Assertions between federated sites. A site that forwards a request to a
//! peer vouches for the caller it identified and the label it computed, in a
//! JWT signed with the key of its own site certificate. The peer accepts an
//! assertion only over a mutual-TLS connection whose certificate is that of a
//! configured peer site (its common name and a pinned key: a second
//! certificate in the site's name, from any CA, is not the site), signed by that very certificate's key, naming that
//! site as issuer and the peer as audience, and unexpired; it then applies its
//! own policy, accreditation and residency rules as to any other request.
//!
//! A JWT is used because `jsonwebtoken` already verifies Rampart's bearer
//! tokens: the same, well-reviewed code checks signatures and times.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rampart_labels::{ClearanceJson, Label, LabelJson};
use serde::{Deserialize, Serialize};

use crate::{IdentityError, PeerCertificate, Principal};

/// The request header that carries an assertion.
pub const ASSERTION_HEADER: &str = "rampart-assertion";

/// What a forwarding site asserts of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    /// The forwarding site's id.
    pub iss: String,
    /// The id of the site it is sent to.
    pub aud: String,
    /// The caller's subject.
    pub sub: String,
    /// The caller's nation (alpha-3).
    pub nat: String,
    /// The caller's roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The caller's clearance, JSON form.
    pub clearance: ClearanceJson,
    /// The request's effective label at the forwarding site, JSON form.
    pub label: LabelJson,
    /// The request id at the forwarding site.
    pub rid: String,
    /// The API route the request was made for (`/chat/completions`).
    pub route: String,
    /// The SHA-256 (hex) of the request body it was made for.
    pub body: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The request an assertion is made for, and bound to: a peer accepts it only
/// for this route and this body.
#[derive(Debug, Clone, Copy)]
pub struct AssertedRequest<'a> {
    /// The forwarding site's request id.
    pub id: &'a str,
    /// The API route (`/chat/completions`).
    pub route: &'a str,
    /// The body as forwarded.
    pub body: &'a [u8],
}

/// The SHA-256 (hex) of a request body, as an assertion names it.
pub fn body_digest(body: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs this site's assertions with the private key of its site certificate.
pub struct AssertionSigner {
    site: String,
    algorithm: Algorithm,
    key: EncodingKey,
    ttl: Duration,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionSigner").field("site", &self.site).field("algorithm", &self.algorithm).finish()
    }
}

impl AssertionSigner {
    /// A signer for site `site` from a PEM private key (ECDSA P-256 or Ed25519, PKCS#8 or SEC1).
    pub fn from_pem(site: &str, key_pem: &[u8], ttl: Duration) -> Result<Self, String> {
        type LoadKey = fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>;
        let attempts: [(Algorithm, LoadKey); 2] =
            [(Algorithm::ES256, EncodingKey::from_ec_pem), (Algorithm::EdDSA, EncodingKey::from_ed_pem)];
        for (algorithm, load) in attempts {
            let Ok(key) = load(key_pem) else { continue };
            // A key of the wrong curve loads but cannot sign: try it once.
            if jsonwebtoken::encode(&Header::new(algorithm), &serde_json::json!({}), &key).is_ok() {
                return Ok(Self { site: site.to_owned(), algorithm, key, ttl });
            }
        }
        Err("the site key is not an ECDSA P-256 or Ed25519 private key in PEM".into())
    }

    /// The assertion for one request (`request`) of `principal` at `label`, sent to site `peer`.
    pub fn sign(
        &self,
        peer: &str,
        principal: &Principal,
        label: &Label,
        request: &AssertedRequest,
    ) -> Result<String, String> {
        let iat = now();
        let claims = AssertionClaims {
            iss: self.site.clone(),
            aud: peer.to_owned(),
            sub: principal.subject.clone(),
            nat: principal.nation.clone(),
            roles: principal.roles.clone(),
            clearance: principal.clearance.to_json(),
            label: label.to_json(),
            rid: request.id.to_owned(),
            route: request.route.to_owned(),
            body: body_digest(request.body),
            iat,
            exp: iat + self.ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.key)
            .map_err(|e| format!("the assertion cannot be signed: {e}"))
    }
}

/// The longest an assertion may be valid for (`exp - iat`), in seconds.
pub const MAX_ASSERTION_TTL_SECS: u64 = 300;
/// How far two sites' clocks may disagree, in seconds.
const CLOCK_SKEW_SECS: u64 = 5;
/// The most assertions remembered at once (each for its lifetime); beyond, assertions are refused.
const MAX_REMEMBERED: usize = 1_000_000;

/// Assertions already accepted, by digest, with their expiry: each is accepted once.
#[derive(Debug, Default)]
struct Seen(Mutex<HashMap<[u8; 32], u64>>);

impl Seen {
    /// Remembers `token` until `exp`; `false` when it was already accepted (or memory is full).
    fn first_use(&self, token: &str, exp: u64, now: u64) -> bool {
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let mut seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= MAX_REMEMBERED / 2 {
            seen.retain(|_, expiry| *expiry + CLOCK_SKEW_SECS >= now);
        }
        if seen.len() >= MAX_REMEMBERED {
            return false;
        }
        seen.insert(digest, exp).is_none()
    }
}

/// A peer site whose assertions are accepted, as the configuration pins it.
#[derive(Debug, Clone)]
pub struct TrustedPeer {
    /// The common name of its certificate.
    pub subject: String,
    /// Its site id.
    pub site: String,
    /// The SHA-256 (hex) of each public key its certificates may carry.
    pub key_sha256: Vec<String>,
}

/// Checks the assertions of the configured peer sites.
#[derive(Debug, Clone)]
pub struct AssertionVerifier {
    site: String,
    /// Peer sites by the common name of their certificates.
    peers: HashMap<String, TrustedPeer>,
    /// Assertions accepted so far and not yet expired (shared by clones).
    seen: Arc<Seen>,
}

impl AssertionVerifier {
    /// A verifier for site `site` that trusts `peers`.
    pub fn new(site: &str, peers: impl IntoIterator<Item = TrustedPeer>) -> Self {
        let peers = peers.into_iter().map(|peer| (peer.subject.clone(), peer)).collect();
        Self { site: site.to_owned(), peers, seen: Arc::default() }
    }

    /// Verifies `token`, sent over a connection whose verified client certificate is `certificate`.
    pub fn verify(&self, token: &str, certificate: Option<&PeerCertificate>) -> Result<AssertionClaims, IdentityError> {
        let certificate = certificate.ok_or_else(|| {
            IdentityError::UntrustedPeer("an assertion is accepted only over mutual TLS with a site certificate".into())
        })?;
        let peer = self.peers.get(&certificate.subject).ok_or_else(|| {
            IdentityError::UntrustedPeer(format!("'{}' is not the certificate of a peer site", certificate.subject))
        })?;
        let site = &peer.site;
        if !rampart_config::key_pinned(&peer.key_sha256, &certificate.key_sha256) {
            return Err(IdentityError::UntrustedPeer(format!(
                "the certificate in the name of site '{site}' carries a key its configuration does not pin"
            )));
        }
        let key = certificate.key.as_ref().ok_or_else(|| {
            IdentityError::UntrustedPeer(format!(
                "the certificate of site '{site}' has no P-256 or Ed25519 key to verify assertions with"
            ))
        })?;
        let invalid = |m: &str| IdentityError::InvalidAssertion(format!("from site '{site}': {m}"));
        let decoding = match key.algorithm {
            Algorithm::EdDSA => DecodingKey::from_ed_der(&key.raw),
            _ => DecodingKey::from_ec_der(&key.raw),
        };
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[site]);
        validation.set_audience(&[&self.site]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = CLOCK_SKEW_SECS;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<AssertionClaims>(token, &decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => invalid("expired"),
                ErrorKind::ImmatureSignature => invalid("not valid yet (nbf)"),
                ErrorKind::InvalidSignature => invalid("not signed by the key of its certificate"),
                ErrorKind::InvalidAudience => invalid("meant for another site"),
                ErrorKind::InvalidIssuer => invalid("issued in another site's name"),
                ErrorKind::InvalidAlgorithm => invalid("signed with another algorithm than its certificate's"),
                _ => invalid(&e.to_string()),
            })?;
        // Bound in time: issued now (within the clocks' skew), valid for the documented TTL at most.
        let now = now();
        if claims.iat > now + CLOCK_SKEW_SECS {
            return Err(invalid("issued in the future"));
        }
        if claims.exp.saturating_sub(claims.iat) > MAX_ASSERTION_TTL_SECS {
            return Err(invalid(&format!("valid for longer than {MAX_ASSERTION_TTL_SECS} s")));
        }
        // Single use: a replayed assertion is refused for as long as it would be valid.
        if !self.seen.first_use(token, claims.exp, now) {
            return Err(invalid("already used (an assertion is accepted once)"));
        }
        Ok(claims)
    }
}
