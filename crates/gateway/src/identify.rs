//! The identify stage: who is asking, from the client certificate, a bearer
//! token, or a peer site's assertion (which also carries the peer's label
//! for the request). Its layer (`pipeline::identify`) reads the credentials
//! from the request, refusing a repeated `Authorization` or `Rampart-Assertion`
//! header rather than believing one of them.

use rampart_api::ApiError;
use rampart_config::Config;
use std::collections::HashMap;

use rampart_identity::{
    AssertionVerifier, Identity, IdentityError, PeerBounds, PeerCertificate, Principal, TrustedPeer,
};
use rampart_labels::{Label, Policies};

/// A peer site's word for a request it forwarded here.
#[derive(Clone)]
pub struct Vouched {
    /// The peer site's id.
    pub site: String,
    /// The label the peer computed for the request.
    pub label: Label,
    /// The SHA-256 (hex) of the body the assertion was made for (checked once the body is read).
    pub body: String,
}

/// Who is asking, as the identify stage established it.
#[derive(Clone)]
pub struct Caller {
    /// The caller.
    pub principal: Principal,
    /// The peer site that forwarded the request and vouched for the caller, if any.
    pub vouched: Option<Vouched>,
}

/// What a request presents to identify its caller: its connection's client
/// certificate and the identity headers, each sent at most once.
#[derive(Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The client certificate of the connection (mTLS).
    pub peer: Option<&'a PeerCertificate>,
    /// The `Authorization` header.
    pub authorization: Option<&'a [u8]>,
    /// The `Rampart-Assertion` header of a peer site.
    pub assertion: Option<&'a [u8]>,
    /// The request's path (`/v1/chat/completions`), which an assertion must have been made for.
    pub path: &'a str,
    /// The request's id, which an assertion's `rid` must be.
    pub request_id: &'a str,
}

/// The identify stage's settings: the site's identity sources and its peer sites.
pub struct Identification {
    identity: Identity,
    /// The peer sites whose assertions are accepted, with `[federation]`.
    assertions: Option<AssertionVerifier>,
    /// What each peer site (by id) may assert.
    bounds: HashMap<String, PeerBounds>,
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
                let peers = config.peer_sites().map(|(site, _)| TrustedPeer {
                    subject: site.certificate_subject().to_owned(),
                    site: site.id.clone(),
                    key_sha256: site.key_sha256.clone(),
                });
                Some(AssertionVerifier::new(&own.id, peers))
            }
            _ => None,
        };
        let mut bounds = HashMap::new();
        for (site, _) in config.peer_sites() {
            let ceiling = labels
                .parse_label(site.assertable_ceiling())
                .map_err(|e| anyhow::anyhow!("sites '{}': may_assert_clearance (or accreditation): {e}", site.id))?;
            let nations = site.assertable_nations().iter().cloned().collect();
            bounds.insert(site.id.clone(), PeerBounds { nations, ceiling });
        }
        Ok(Self { identity, assertions, bounds })
    }

    /// Identifies the caller of an inference request: from a peer site's
    /// assertion when it carries one (then also the peer's label for it),
    /// otherwise as [`Identification::identify`] does.
    pub fn identify_request(&self, credentials: Credentials<'_>) -> Result<Caller, IdentityError> {
        let Some(value) = credentials.assertion else {
            return self.identify(credentials).map(|principal| Caller { principal, vouched: None });
        };
        let verifier = self
            .assertions
            .as_ref()
            .ok_or_else(|| IdentityError::UntrustedPeer("this site has no [federation] with peer sites".into()))?;
        if credentials.authorization.is_some() {
            return Err(IdentityError::InvalidAssertion(
                "an assertion beside an Authorization header is ambiguous: send one".into(),
            ));
        }
        let token = std::str::from_utf8(value).map_err(|_| IdentityError::InvalidAssertion("not ASCII text".into()))?;
        let claims = verifier.verify(token, credentials.peer)?;
        if claims.rid != credentials.request_id {
            return Err(IdentityError::InvalidAssertion(format!(
                "site '{}' made it for another request id than this request's",
                claims.iss
            )));
        }
        if credentials.path.strip_prefix("/v1") != Some(claims.route.as_str()) {
            return Err(IdentityError::InvalidAssertion(format!(
                "site '{}' made it for another route than this request's",
                claims.iss
            )));
        }
        let (principal, label) = self.identity.asserted(&claims)?;
        let bounds = self.bounds.get(&claims.iss).ok_or_else(|| {
            IdentityError::UntrustedPeer(format!("site '{}' is not a configured peer site", claims.iss))
        })?;
        Identity::within_bounds(&claims, &principal, &label, bounds)?;
        Ok(Caller { principal, vouched: Some(Vouched { site: claims.iss, label, body: claims.body }) })
    }

    /// Identifies the caller from the client certificate or the bearer token
    /// (a peer site's assertion is not taken here).
    pub fn identify(&self, credentials: Credentials<'_>) -> Result<Principal, IdentityError> {
        let bearer = match credentials.authorization {
            _ if self.identity.is_anonymous_dev() => None,
            None => None,
            Some(value) => {
                // The scheme is case-insensitive (RFC 9110 §11.1): `Bearer`, `bearer`, `BEARER`.
                let text = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.split_once(' '))
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token.trim());
                Some(text.filter(|t| !t.is_empty()).ok_or_else(|| {
                    IdentityError::InvalidToken("the Authorization header is not 'Bearer <token>'".into())
                })?)
            }
        };
        self.identity.authenticate(bearer, credentials.peer)
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

/// The answer to a caller who could not be identified: 401, or 503 when the fault is the site's.
pub fn unidentified(err: &IdentityError) -> ApiError {
    ApiError::unidentified(err.code(), err.to_string(), err.is_site_fault())
}
