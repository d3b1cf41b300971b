//! TLS settings: the server's certificate, and trust for HTTPS backends and peer sites.

use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use rampart_config::{BackendConfig, FederationConfig, IdentityConfig, ServerTls, SiteConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read certificates from '{}'", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("'{}' holds a malformed PEM certificate", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "'{}' holds no PEM certificate", path.display());
    Ok(certs)
}

fn private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("cannot read a PEM private key from '{}'", path.display()))
}

/// The server's rustls configuration (HTTP/2 and HTTP/1.1 by ALPN), with
/// client-certificate verification when `[identity] client_ca` is set.
fn server_config(tls: &ServerTls, identity: Option<&IdentityConfig>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?;
    let builder = match identity.filter(|i| !i.client_ca.is_empty()) {
        Some(identity) => builder.with_client_cert_verifier(
            rampart_identity::client_cert_verifier(identity).map_err(|e| anyhow::anyhow!("identity.client_ca: {e}"))?,
        ),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certificates(&tls.cert)?, private_key(&tls.key)?)
        .context("the server certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The server's TLS configuration, rebuilt on `SIGHUP` so that a renewed
/// certificate, a new CA bundle or a new CRL applies to new connections
/// without a restart (connections already open keep theirs).
pub struct ServerTlsSource {
    tls: ServerTls,
    identity: Option<IdentityConfig>,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl ServerTlsSource {
    /// Builds the configuration once; start-up fails on any error.
    pub fn new(tls: &ServerTls, identity: Option<&IdentityConfig>) -> anyhow::Result<Self> {
        let current = RwLock::new(server_config(tls, identity)?);
        Ok(Self { tls: tls.clone(), identity: identity.cloned(), current })
    }

    /// The configuration for a new connection.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        // A poisoned lock only means a panic elsewhere; the Arc inside is intact.
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Re-reads certificate, key, client CAs and CRLs. On error the previous
    /// configuration stays in force and the error is returned.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = server_config(&self.tls, self.identity.as_ref())?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }
}

/// Client TLS for a backend: its CA bundle (no system roots: an air-gapped
/// site trusts only what it configures) and an optional client certificate.
pub fn upstream_client_config(backend: &BackendConfig) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(tls) = &backend.tls {
        for cert in certificates(&tls.ca)? {
            roots.add(cert).with_context(|| {
                format!("backend '{}': a CA certificate in '{}' is invalid", backend.name, tls.ca.display())
            })?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let client_auth = backend.tls.as_ref().and_then(|t| t.client_cert.as_ref().zip(t.client_key.as_ref()));
    Ok(match client_auth {
        Some((cert, key)) => builder
            .with_client_auth_cert(certificates(cert)?, private_key(key)?)
            .with_context(|| format!("backend '{}': client certificate and key do not match", backend.name))?,
        None => builder.with_no_client_auth(),
    })
}

/// Client TLS towards a peer site: this site's certificate for mutual TLS, and
/// the peer's checked against the federation CA, the host of its URL, and its
/// site (common name and pinned key): a certificate of the alliance PKI that is
/// another site's, or a second one in the site's name, is refused.
pub fn peer_client_config(federation: &FederationConfig, site: &SiteConfig) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(&federation.ca)? {
        roots.add(cert).with_context(|| format!("federation.ca '{}' holds an invalid CA", federation.ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .build()
        .context("peer certificate verification cannot be set up")?;
    let verifier = Arc::new(ExpectedSite {
        inner: webpki,
        subject: site.certificate_subject().to_owned(),
        key_sha256: site.key_sha256.clone(),
    });
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(certificates(&federation.cert)?, private_key(&federation.key)?)
        .context("federation.cert and federation.key do not match")
}

/// The usual WebPKI checks, then: the certificate's common name is the expected
/// site's, and its key one the configuration pins for it.
#[derive(Debug)]
struct ExpectedSite {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    subject: String,
    /// `[[sites]] key_sha256`.
    key_sha256: Vec<String>,
}

impl rustls::client::danger::ServerCertVerifier for ExpectedSite {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        let holder = rampart_identity::PeerCertificate::from_der(end_entity)
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        if holder.subject != self.subject {
            return Err(rustls::Error::General(format!(
                "the peer's certificate is '{}', not the expected site's '{}'",
                holder.subject, self.subject
            )));
        }
        if !rampart_config::key_pinned(&self.key_sha256, &holder.key_sha256) {
            return Err(rustls::Error::General(format!(
                "the certificate in the name of site '{}' carries a key its configuration does not pin",
                self.subject
            )));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};

    use super::*;

    #[test]
    fn a_peer_certificate_must_be_the_expected_sites_with_its_pinned_key() {
        let dir = tempfile::tempdir().unwrap();
        let options = rampart_identity::dev::DevOptions {
            listen: "127.0.0.1:1".into(),
            model: "m.gguf".into(),
            token_ttl: std::time::Duration::from_secs(60),
        };
        rampart_identity::dev::dev_init(dir.path(), &options).unwrap();
        let (cert, _) = rampart_identity::dev::issue_site_certificate(dir.path(), "usa-east", "USA", 7).unwrap();
        let cert = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certificates(&dir.path().join("ca.pem")).unwrap().remove(0)).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let inner =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let pin = rampart_identity::PeerCertificate::from_der(&cert).unwrap().key_sha256;
        let expecting = |subject: &str, pin: &str| ExpectedSite {
            inner: Arc::clone(&inner),
            subject: subject.into(),
            key_sha256: vec![pin.into()],
        };
        assert!(expecting("usa-east", &pin).verify_server_cert(&cert, &[], &name, &[], UnixTime::now()).is_ok());
        let err = expecting("deu-south", &pin).verify_server_cert(&cert, &[], &name, &[], UnixTime::now()).unwrap_err();
        assert!(err.to_string().contains("is 'usa-east', not the expected site's 'deu-south'"), "{err}");
        // A second certificate in usa-east's name, from the same CA: not the pinned key.
        let (second, _) = rampart_identity::dev::issue_site_certificate(dir.path(), "usa-east", "USA", 8).unwrap();
        let second = CertificateDer::from_pem_slice(second.as_bytes()).unwrap();
        let err =
            expecting("usa-east", &pin).verify_server_cert(&second, &[], &name, &[], UnixTime::now()).unwrap_err();
        assert!(err.to_string().contains("a key its configuration does not pin"), "{err}");
    }
}
