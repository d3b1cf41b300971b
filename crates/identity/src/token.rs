//! Bearer tokens: JWTs signed with RS256, ES256 or EdDSA, verified against the
//! keys of a JWKS file. Verified tokens are remembered until they expire, so a
//! caller's repeated requests pay for one signature check.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rampart_labels::ClearanceJson;
use serde::{Deserialize, Serialize};

use crate::IdentityError;

/// The claims Rampart reads from a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject.
    pub sub: String,
    /// Nation, ISO 3166 alpha-3.
    pub nat: String,
    /// Clearance, JSON form.
    pub clearance: ClearanceJson,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Issuer.
    pub iss: String,
    /// Audience: one, or several of which this site must be one (RFC 7519 §4.1.3).
    pub aud: Audience,
    /// Expiry, seconds since the epoch (a NumericDate: fractions allowed, RFC 7519 §2).
    #[serde(deserialize_with = "numeric_date")]
    pub exp: u64,
    /// Not before, seconds since the epoch.
    #[serde(default, deserialize_with = "optional_numeric_date")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the epoch.
    #[serde(default, deserialize_with = "optional_numeric_date")]
    pub iat: Option<u64>,
}

/// A token's `aud`: a string, or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl From<&str> for Audience {
    fn from(audience: &str) -> Self {
        Self::One(audience.to_owned())
    }
}

impl From<String> for Audience {
    fn from(audience: String) -> Self {
        Self::One(audience)
    }
}

/// A NumericDate: seconds since the epoch, an integer or not (the fraction is dropped).
fn numeric_date<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let seconds = f64::deserialize(deserializer)?;
    if seconds.is_finite() && (0.0..1.8e19).contains(&seconds) {
        Ok(seconds as u64)
    } else {
        Err(serde::de::Error::custom("a date must be seconds since the epoch, 0 or more"))
    }
}

fn optional_numeric_date<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    numeric_date(deserializer).map(Some)
}

/// Verified tokens remembered before the memory is emptied.
const REMEMBERED: usize = 10_000;

/// Token verification against one JWKS file.
pub struct TokenVerifier {
    keys: Vec<(Option<String>, Algorithm, DecodingKey)>,
    issuer: String,
    audience: String,
    verified: Mutex<HashMap<String, Claims>>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn algorithm_of(jwk: &Jwk) -> Result<Algorithm, String> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Ok(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Ok(Algorithm::ES256),
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => Ok(Algorithm::EdDSA),
        _ => Err("only RS256 (RSA), ES256 (P-256) and EdDSA (Ed25519) keys are accepted".into()),
    }
}

impl TokenVerifier {
    /// Loads a JWKS file. Fails when it is unreadable, malformed, empty, or holds an unsupported key.
    pub fn from_file(path: &Path, issuer: &str, audience: &str) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read JWKS file '{}': {e}", path.display()))?;
        let set: JwkSet =
            serde_json::from_str(&text).map_err(|e| format!("JWKS file '{}' is not a JWK set: {e}", path.display()))?;
        if set.keys.is_empty() {
            return Err(format!("JWKS file '{}' holds no key", path.display()));
        }
        let mut keys = Vec::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            let fail = |m: String| format!("JWKS file '{}', key {i}: {m}", path.display());
            let algorithm = algorithm_of(jwk).map_err(fail)?;
            let key = DecodingKey::from_jwk(jwk).map_err(|e| fail(e.to_string()))?;
            keys.push((jwk.common.key_id.clone(), algorithm, key));
        }
        Ok(Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Verifies a token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, IdentityError> {
        {
            // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
            let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(claims) = verified.get(token) {
                let now = now();
                if claims.exp <= now {
                    return Err(IdentityError::ExpiredToken);
                }
                if claims.nbf.is_none_or(|nbf| nbf <= now) {
                    return Ok(claims.clone());
                }
            }
        }
        let claims = self.verify_signature(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= REMEMBERED {
            verified.retain(|_, c| c.exp > now());
            if verified.len() >= REMEMBERED {
                verified.clear();
            }
        }
        verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> Result<Claims, IdentityError> {
        let invalid = |m: String| IdentityError::InvalidToken(m);
        // The library's own words name its types and internals: the caller is told what a token must be.
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            invalid("not a signed JWT: three base64url parts (header, claims, signature), its alg one of EdDSA, ES256, RS256".into())
        })?;
        let candidates: Vec<&(Option<String>, Algorithm, DecodingKey)> = match &header.kid {
            Some(kid) => self.keys.iter().filter(|(k, _, _)| k.as_deref() == Some(kid.as_str())).collect(),
            None => self.keys.iter().collect(),
        };
        let (_, algorithm, key) =
            candidates.iter().find(|(_, algorithm, _)| *algorithm == header.alg).ok_or_else(|| {
                invalid(format!("no key in the JWKS file verifies {:?} tokens with this key id", header.alg))
            })?;
        let mut validation = Validation::new(*algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        match jsonwebtoken::decode::<Claims>(token, key, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(match e.kind() {
                ErrorKind::ExpiredSignature => IdentityError::ExpiredToken,
                ErrorKind::InvalidSignature => invalid("bad signature".into()),
                ErrorKind::InvalidAudience => invalid("wrong audience".into()),
                ErrorKind::InvalidIssuer => invalid("wrong issuer".into()),
                ErrorKind::ImmatureSignature => invalid("not valid yet (nbf)".into()),
                ErrorKind::MissingRequiredClaim(claim) => invalid(format!("the token has no '{claim}' claim")),
                ErrorKind::Json(_) | ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => invalid(
                    "its claims cannot be read: they must be a JSON object with sub, iss, aud, exp (seconds) and \
                     a clearance object ({\"policy\", \"classifications\", \"categories\"})"
                        .into(),
                ),
                _ => invalid("the token cannot be verified".into()),
            }),
        }
    }
}

/// Signs `claims` with a PEM private key (Ed25519, P-256 or RSA, PKCS#8), tagging the key id.
pub fn mint_token(claims: &Claims, key_pem: &[u8], key_id: Option<&str>) -> Result<String, String> {
    let text = String::from_utf8_lossy(key_pem);
    type LoadKey = fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>;
    let attempts: [(Algorithm, LoadKey); 3] = [
        (Algorithm::EdDSA, EncodingKey::from_ed_pem),
        (Algorithm::ES256, EncodingKey::from_ec_pem),
        (Algorithm::RS256, EncodingKey::from_rsa_pem),
    ];
    for (algorithm, load) in attempts {
        if let Ok(key) = load(key_pem) {
            let mut header = Header::new(algorithm);
            header.kid = key_id.map(str::to_owned);
            if let Ok(token) = jsonwebtoken::encode(&header, claims, &key) {
                return Ok(token);
            }
        }
    }
    if !text.contains("PRIVATE KEY") {
        return Err("the key file is not a PEM private key".into());
    }
    Err("the key is not an Ed25519, P-256 or RSA private key in PKCS#8 PEM".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEARANCE: &str = r#"{"policy":"NATO","classifications":["SECRET"]}"#;

    #[test]
    fn audiences_may_be_an_array_and_dates_fractional() {
        let claims: Claims = serde_json::from_str(&format!(
            r#"{{"sub":"s","nat":"GBR","clearance":{CLEARANCE},"iss":"i","aud":["other","rampart"],"exp":1900000000.75,"nbf":1.5e9}}"#
        ))
        .unwrap();
        assert_eq!(claims.aud, Audience::Many(vec!["other".into(), "rampart".into()]));
        assert_eq!((claims.exp, claims.nbf), (1_900_000_000, Some(1_500_000_000)));
        let negative = serde_json::from_str::<Claims>(&format!(
            r#"{{"sub":"s","nat":"GBR","clearance":{CLEARANCE},"iss":"i","aud":"rampart","exp":-1}}"#
        ));
        assert!(negative.is_err());
    }
}
