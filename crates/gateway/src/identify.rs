//! The identify stage: who is asking, from the client certificate, a bearer
//! token, or a peer site's assertion (which also carries the peer's label
//! for the request). A repeated `Authorization` or `Rampart-Assertion` header
//! is refused, never resolved by believing one of them.

use http::{HeaderMap, HeaderName, StatusCode, header};
use rampart_api::{ApiError, ErrorKind};
use rampart_config::Config;
use rampart_identity::{ASSERTION_HEADER, AssertionVerifier, Identity, IdentityError, PeerCertificate, Principal};
use rampart_labels::{Label, Policies};

use crate::request::single_header;

/// The header carrying a peer site's assertion, as a header name.
static ASSERTION: HeaderName = HeaderName::from_static(ASSERTION_HEADER);

/// A peer site's word for a request it forwarded here.
pub struct Vouched {
    /// The peer site's id.
    pub site: String,
    /// The label the peer computed for the request.
    pub label: Label,
}

/// The identify stage's settings: the site's identity sources and its peer sites.
pub struct Identification {
    identity: Identity,
    /// The peer sites whose assertions are accepted, with `[federation]`.
    assertions: Option<AssertionVerifier>,
}

impl Identification {
    /// The stage for `config`; fails start-up on any error.
    pub fn new(config: &Config, labels: &Policies, default_label: &Label) -> anyhow::Result<Self> {
        let identity = Identity::from_config(config, labels, default_label).map_err(|e| anyhow::anyhow!(e))?;
        if identity.is_anonymous_dev() {
            tracing::warn!(
                "no [identity] configured: every caller is the anonymous development principal, cleared for {}",
                default_label.banner()
            );
        }
        let assertions = match (&config.federation, &config.site) {
            (Some(_), Some(own)) => {
                let peers =
                    config.peer_sites().map(|(site, _)| (site.certificate_subject().to_owned(), site.id.clone()));
                Some(AssertionVerifier::new(&own.id, peers))
            }
            _ => None,
        };
        Ok(Self { identity, assertions })
    }

    /// Identifies the caller of an inference request: from a peer site's
    /// assertion when it carries one (then also the peer's label for it),
    /// otherwise as [`Identification::authenticate`] does.
    pub fn authenticate_request(
        &self,
        headers: &HeaderMap,
        peer: Option<&PeerCertificate>,
    ) -> Result<(Principal, Option<Vouched>), ApiError> {
        let Some(value) = single_header(headers, &ASSERTION)? else {
            return self.authenticate(headers, peer).map(|principal| (principal, None));
        };
        let refuse = |e: IdentityError| identity_error(&e);
        let verifier = self.assertions.as_ref().ok_or_else(|| {
            refuse(IdentityError::UntrustedPeer("this site has no [federation] with peer sites".into()))
        })?;
        let token = value.to_str().map_err(|_| refuse(IdentityError::InvalidAssertion("not ASCII text".into())))?;
        let claims = verifier.verify(token, peer).map_err(refuse)?;
        let (principal, label) = self.identity.asserted(&claims).map_err(refuse)?;
        Ok((principal, Some(Vouched { site: claims.iss, label })))
    }

    /// Identifies the caller of a request.
    pub fn authenticate(&self, headers: &HeaderMap, peer: Option<&PeerCertificate>) -> Result<Principal, ApiError> {
        let bearer = match single_header(headers, &header::AUTHORIZATION)? {
            _ if self.identity.is_anonymous_dev() => None,
            None => None,
            Some(value) => {
                let text = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
                Some(text.filter(|t| !t.is_empty()).ok_or_else(|| {
                    identity_error(&IdentityError::InvalidToken(
                        "the Authorization header is not 'Bearer <token>'".into(),
                    ))
                })?)
            }
        };
        self.identity.authenticate(bearer, peer).map_err(|e| identity_error(&e))
    }

    /// Whether every caller is the anonymous development principal (an `insecure_dev` site without `[identity]`).
    pub fn is_anonymous_dev(&self) -> bool {
        self.identity.is_anonymous_dev()
    }

    /// Re-reads the subject directory (SIGHUP).
    pub fn reload_directory(&self) {
        self.identity.reload_directory();
    }

    /// Why the site cannot identify callers right now, if it cannot.
    pub fn problem(&self) -> Option<String> {
        self.identity.problem()
    }
}

fn identity_error(err: &IdentityError) -> ApiError {
    let status = if err.is_site_fault() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::UNAUTHORIZED };
    let kind = if err.is_site_fault() { ErrorKind::ServerError } else { ErrorKind::AuthenticationError };
    ApiError::new(status, kind, err.code(), err.to_string())
}
