//! Mutual TLS: the client-certificate verifier (the alliance PKI's CA
//! bundles, with CRLs) and what a verified certificate says of its holder.

use std::sync::Arc;

use rampart_config::IdentityConfig;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

use crate::IdentityError;

/// The holder of a verified client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The subject's common name: the key into the directory.
    pub subject: String,
    /// The subject's country attribute, if any.
    pub country: Option<String>,
    /// The SHA-256 (hex) of the certificate's public key (SubjectPublicKeyInfo,
    /// DER): what `[[sites]] key_sha256` pins.
    pub key_sha256: String,
    /// The certificate's public key, when it can verify assertions (P-256 or Ed25519).
    pub(crate) key: Option<CertificateKey>,
}

/// A certificate's public key in the form `jsonwebtoken` verifies with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertificateKey {
    /// ES256 for a P-256 key, EdDSA for an Ed25519 key.
    pub algorithm: jsonwebtoken::Algorithm,
    /// The raw key: the uncompressed point, or the 32 Ed25519 bytes.
    pub raw: Vec<u8>,
}

fn certificate_key(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Option<CertificateKey> {
    use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ED25519};
    let algorithm = &spki.algorithm;
    let curve = algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
    let algorithm = if algorithm.algorithm == OID_SIG_ED25519 {
        jsonwebtoken::Algorithm::EdDSA
    } else if algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY && curve == Some(OID_EC_P256) {
        jsonwebtoken::Algorithm::ES256
    } else {
        return None;
    };
    Some(CertificateKey { algorithm, raw: spki.subject_public_key.data.to_vec() })
}

impl PeerCertificate {
    /// Reads the subject of a certificate rustls has already verified.
    pub fn from_der(der: &CertificateDer<'_>) -> Result<Self, IdentityError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| IdentityError::BadCredential(format!("the client certificate cannot be parsed: {e}")))?;
        let subject = cert.subject();
        let text = |attr: Option<&x509_parser::x509::AttributeTypeAndValue<'_>>| {
            attr.and_then(|a| a.as_str().ok()).map(str::to_owned)
        };
        // Two common names would let parsers disagree on who the holder is.
        if subject.iter_common_name().nth(1).is_some() || subject.iter_country().nth(1).is_some() {
            return Err(IdentityError::BadCredential(
                "the client certificate's subject names more than one common name or country".into(),
            ));
        }
        let common_name = text(subject.iter_common_name().next()).ok_or_else(|| {
            IdentityError::BadCredential("the client certificate's subject has no common name".into())
        })?;
        Ok(Self {
            subject: common_name,
            country: text(subject.iter_country().next()),
            key_sha256: key_sha256(cert.public_key()),
            key: certificate_key(cert.public_key()),
        })
    }

    /// Reads the first certificate of a PEM text, as [`PeerCertificate::from_der`] does.
    pub fn from_pem(pem: &[u8]) -> Result<Self, IdentityError> {
        let der = CertificateDer::from_pem_slice(pem)
            .map_err(|e| IdentityError::BadCredential(format!("no PEM certificate can be read: {e}")))?;
        Self::from_der(&der)
    }
}

/// The SHA-256, in lower-case hex, of a public key's DER encoding.
fn key_sha256(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(spki.raw).iter().map(|b| format!("{b:02x}")).collect()
}

fn read_pem<T: PemObject>(path: &std::path::Path, what: &str) -> Result<Vec<T>, String> {
    let items = T::pem_file_iter(path)
        .map_err(|e| format!("cannot read {what} from '{}': {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("'{}' holds a malformed PEM {what}: {e}", path.display()))?;
    if items.is_empty() {
        return Err(format!("'{}' holds no PEM {what}", path.display()));
    }
    Ok(items)
}

/// Warns, naming the issuer, when a CRL is already past its nextUpdate: the
/// handshakes it covers are then refused until a fresh CRL is installed.
fn warn_if_stale(crl: &CertificateRevocationListDer<'_>) {
    let Ok((_, parsed)) = x509_parser::parse_x509_crl(crl.as_ref()) else { return };
    if let Some(next_update) = parsed.next_update()
        && next_update < x509_parser::time::ASN1Time::now()
    {
        tracing::warn!(
            issuer = %parsed.issuer(),
            next_update = %next_update,
            "a CRL is past its nextUpdate: every client certificate it covers is refused until a fresh CRL is installed"
        );
    }
}

/// The verifier of client certificates: they must chain to one of the CA
/// bundles and not be revoked by any CRL, and no CRL may be past its
/// nextUpdate. When bearer tokens are also
/// accepted, a connection may come without a certificate (its requests then
/// need a token); otherwise a certificate is required at the handshake.
pub fn client_cert_verifier(identity: &IdentityConfig) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for path in &identity.client_ca {
        for cert in read_pem::<CertificateDer<'static>>(path, "CA certificate")? {
            roots.add(cert).map_err(|e| format!("a CA certificate in '{}' is invalid: {e}", path.display()))?;
        }
    }
    let mut crls = Vec::new();
    for path in &identity.crl {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read CRL '{}': {e}", path.display()))?;
        if bytes.starts_with(b"-----BEGIN") {
            crls.extend(read_pem::<CertificateRevocationListDer<'static>>(path, "CRL")?);
        } else {
            crls.push(CertificateRevocationListDer::from(bytes));
        }
    }
    for crl in &crls {
        warn_if_stale(crl);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // A CRL past its nextUpdate may miss revocations made since: every certificate it covers is
    // refused (fail closed) until a fresh one is installed and the site reloads (SIGHUP).
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .with_crls(crls)
        .enforce_revocation_expiration();
    if identity.jwks.is_some() {
        builder = builder.allow_unauthenticated();
    }
    builder.build().map_err(|e| format!("client certificate verification cannot be set up: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate whose subject is `CN=gbr-secret, O=<organization>`, and its DER with the
    /// organization's attribute type turned into a second common name.
    fn subjects(organization: &str) -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "gbr-secret");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, organization);
        let der = params.self_signed(&key).unwrap().der().to_vec();
        const ORGANIZATION: [u8; 5] = [0x06, 0x03, 0x55, 0x04, 0x0a];
        // In the issuer's name and the subject's (the certificate is its own issuer).
        let mut doubled = der.clone();
        let places: Vec<usize> =
            der.windows(5).enumerate().filter(|(_, w)| *w == ORGANIZATION).map(|(at, _)| at).collect();
        assert_eq!(places.len(), 2);
        for at in places {
            doubled[at + 4] = 0x03;
        }
        (der, doubled)
    }

    #[test]
    fn a_subject_with_two_common_names_is_refused() {
        let (one, two) = subjects("usa-secret");
        assert_eq!(PeerCertificate::from_der(&CertificateDer::from(one)).unwrap().subject, "gbr-secret");
        let refused = PeerCertificate::from_der(&CertificateDer::from(two)).unwrap_err();
        assert!(refused.to_string().contains("more than one common name"), "{refused}");
    }
}
