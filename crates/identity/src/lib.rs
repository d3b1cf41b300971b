//! Rampart's caller identity: who is asking, from which nation, with which
//! clearance and roles.
//!
//! A caller proves itself with a client certificate (mutual TLS against the
//! configured CA bundles, CRLs honoured; clearance and roles come from the
//! subject directory) or with a bearer token (a JWT verified against a JWKS
//! file: never fetched; `iss`, `aud`, `exp`, `nbf` checked; clearance and
//! roles from its claims). Everything fails closed: a missing, malformed,
//! expired, unknown or unverifiable credential is an [`IdentityError`], never
//! a default principal. Only a site without an `[identity]` section, which
//! configuration allows only for `insecure_dev` on loopback, serves the
//! anonymous development principal.

mod assertion;
pub mod dev;
mod directory;
mod mtls;
mod token;

use std::collections::BTreeSet;
use std::sync::Arc;

use rampart_config::Config;
use rampart_labels::{Clearance, Label, Policies};

pub use assertion::{
    ASSERTION_HEADER, AssertedRequest, AssertionClaims, AssertionSigner, AssertionVerifier, TrustedPeer, body_digest,
};
pub use directory::{Directory, DirectoryEntry};
pub use mtls::{PeerCertificate, client_cert_verifier};
pub use token::{Audience, Claims, TokenVerifier, mint_token};

/// What one peer site may assert: its callers' nations and the highest clearance and label.
#[derive(Debug, Clone)]
pub struct PeerBounds {
    /// The nations whose callers it may vouch for.
    pub nations: BTreeSet<String>,
    /// The highest label (and clearance level) it may assert.
    pub ceiling: Label,
}

/// The index of the highest classification a clearance holds.
fn highest_level(clearance: &Clearance) -> usize {
    let policy = clearance.policy();
    clearance.classifications().iter().filter_map(|name| policy.classification_index(name)).max().unwrap_or(0)
}

/// How a principal was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A verified client certificate.
    Certificate,
    /// A verified bearer token.
    Token,
    /// No credentials on an `insecure_dev` site without `[identity]`.
    AnonymousDev,
    /// A peer site's verified assertion (the peer identified the caller).
    Assertion,
}

/// A verified caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Certificate subject (CN) or token `sub`.
    pub subject: String,
    /// ISO 3166 alpha-3.
    pub nation: String,
    /// Roles, e.g. `analyst`, `auditor`.
    pub roles: Vec<String>,
    /// What the principal may read, already narrowed to its own nation's releasability.
    pub clearance: Clearance,
    /// How it was identified.
    pub method: AuthMethod,
}

/// Why a caller could not be identified. Every variant refuses the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Neither a bearer token nor a client certificate.
    #[error(
        "this site requires a bearer token (Authorization: Bearer ...) or a client certificate from its alliance PKI"
    )]
    MissingCredentials,
    /// The token failed verification.
    #[error("the bearer token is not valid: {0}")]
    InvalidToken(String),
    /// The token has expired.
    #[error("the bearer token has expired")]
    ExpiredToken,
    /// Bearer tokens are not accepted here.
    #[error("this site does not accept bearer tokens; use a client certificate")]
    TokensNotAccepted,
    /// The certificate's subject is not in the directory.
    #[error("the certificate subject '{0}' is not in this site's directory")]
    UnknownSubject(String),
    /// The directory cannot be read, so no certificate caller can be identified.
    #[error("the subject directory is unavailable: {0}")]
    DirectoryUnavailable(String),
    /// A credential names a clearance, nation or role that is not valid.
    #[error("the credential is not usable: {0}")]
    BadCredential(String),
    /// An assertion came from a connection that is not a configured peer site's.
    #[error("this site accepts assertions only from its peer sites: {0}")]
    UntrustedPeer(String),
    /// A peer site's assertion failed verification.
    #[error("the peer site's assertion is not valid: {0}")]
    InvalidAssertion(String),
}

impl IdentityError {
    /// The stable API error code.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::MissingCredentials => "missing_credentials",
            IdentityError::InvalidToken(_) => "invalid_token",
            IdentityError::ExpiredToken => "token_expired",
            IdentityError::TokensNotAccepted => "tokens_not_accepted",
            IdentityError::UnknownSubject(_) => "unknown_subject",
            IdentityError::DirectoryUnavailable(_) => "directory_unavailable",
            IdentityError::BadCredential(_) => "bad_credential",
            IdentityError::UntrustedPeer(_) => "peer_not_trusted",
            IdentityError::InvalidAssertion(_) => "invalid_assertion",
        }
    }

    /// Whether the fault is the site's (503) rather than the caller's (401).
    pub fn is_site_fault(&self) -> bool {
        matches!(self, IdentityError::DirectoryUnavailable(_))
    }
}

/// The site's identity settings, ready to authenticate requests.
pub struct Identity {
    labels: Policies,
    releasability_tag: String,
    tokens: Option<TokenVerifier>,
    directory: Option<Arc<Directory>>,
    anonymous: Option<Principal>,
}

impl Identity {
    /// Builds the identity settings of a configuration; `labels` are the site's policies
    /// and `default_label` its label of undeclared requests.
    pub fn from_config(config: &Config, labels: &Policies, default_label: &Label) -> Result<Self, String> {
        let releasability_tag = config.labels.releasability_tag.clone();
        let Some(identity) = &config.identity else {
            // Configuration allows this only for insecure_dev on loopback.
            let anonymous = Principal {
                subject: "anonymous".into(),
                nation: "ZZZ".into(),
                roles: Vec::new(),
                clearance: Clearance::from_ceiling(default_label),
                method: AuthMethod::AnonymousDev,
            };
            return Ok(Self {
                labels: labels.clone(),
                releasability_tag,
                tokens: None,
                directory: None,
                anonymous: Some(anonymous),
            });
        };
        let tokens = match &identity.jwks {
            Some(path) => Some(TokenVerifier::from_file(
                path,
                identity.issuer.as_deref().unwrap_or_default(),
                identity.audience.as_deref().unwrap_or_default(),
            )?),
            None => None,
        };
        let directory = match &identity.directory {
            Some(path) => Some(Directory::watch(path.clone(), labels.clone())?),
            None => None,
        };
        Ok(Self { labels: labels.clone(), releasability_tag, tokens, directory, anonymous: None })
    }

    /// Identifies a request from its bearer token (preferred when present) or
    /// its connection's client certificate.
    pub fn authenticate(
        &self,
        bearer: Option<&str>,
        peer: Option<&PeerCertificate>,
    ) -> Result<Principal, IdentityError> {
        if let Some(anonymous) = &self.anonymous {
            // A development site without [identity] cannot verify anything; OpenAI
            // clients send some API key whatever the site, so it is not refused.
            return Ok(anonymous.clone());
        }
        if let Some(token) = bearer {
            let verifier = self.tokens.as_ref().ok_or(IdentityError::TokensNotAccepted)?;
            let claims = verifier.verify(token)?;
            let clearance = self
                .labels
                .clearance_from_json(&claims.clearance)
                .map_err(|e| IdentityError::BadCredential(format!("clearance claim: {e}")))?;
            return self.principal(claims.sub, claims.nat, claims.roles, clearance, AuthMethod::Token);
        }
        if let Some(peer) = peer {
            let directory = self.directory.as_ref().ok_or(IdentityError::MissingCredentials)?;
            let entry = directory.lookup(&peer.subject)?;
            let nation = match (&entry.nation, &peer.country) {
                (Some(nation), _) => nation.clone(),
                (None, Some(country)) if rampart_config::is_alpha3(country) => country.clone(),
                (None, country) => {
                    return Err(IdentityError::BadCredential(format!(
                        "the certificate's country {} is not an ISO 3166 alpha-3 code; give the subject a nation in the directory",
                        country.as_deref().unwrap_or("(none)")
                    )));
                }
            };
            return self.principal(peer.subject.clone(), nation, entry.roles, entry.clearance, AuthMethod::Certificate);
        }
        Err(IdentityError::MissingCredentials)
    }

    /// The caller and label a verified assertion vouches for, read with this
    /// site's policies (releasability narrowed to the caller's nation, as for any caller).
    pub fn asserted(&self, claims: &AssertionClaims) -> Result<(Principal, Label), IdentityError> {
        let bad = |what: &str, e: rampart_labels::LabelError| {
            IdentityError::InvalidAssertion(format!("site '{}': {what}: {e}", claims.iss))
        };
        let clearance = self.labels.clearance_from_json(&claims.clearance).map_err(|e| bad("clearance", e))?;
        let label = self.labels.label_from_json(&claims.label).map_err(|e| bad("label", e))?;
        // A subject this site's directory knows is bounded by the directory, whatever a peer says.
        if let Some(directory) = &self.directory
            && let Ok(entry) = directory.lookup(&claims.sub)
        {
            let beyond = |what: &str| {
                IdentityError::InvalidAssertion(format!(
                    "site '{}' asserts {what} beyond what this site's directory holds for the subject",
                    claims.iss
                ))
            };
            if entry.nation.as_ref().is_some_and(|nation| *nation != claims.nat) {
                return Err(beyond("a nation"));
            }
            if highest_level(&clearance) > highest_level(&entry.clearance) {
                return Err(beyond("a clearance"));
            }
        }
        let principal = self.principal(
            claims.sub.clone(),
            claims.nat.clone(),
            claims.roles.clone(),
            clearance,
            AuthMethod::Assertion,
        )?;
        Ok((principal, label))
    }

    /// Refuses an assertion of `claims` (from a peer vouched for by `bounds`) that
    /// names a nation the peer may not vouch for, or a clearance or label above the
    /// highest it may assert.
    pub fn within_bounds(
        claims: &AssertionClaims,
        principal: &Principal,
        label: &Label,
        bounds: &PeerBounds,
    ) -> Result<(), IdentityError> {
        let refuse =
            |what: String| IdentityError::InvalidAssertion(format!("site '{}' may not assert {what}", claims.iss));
        if !bounds.nations.contains(&principal.nation) {
            return Err(refuse(format!("callers of nation {}", principal.nation)));
        }
        if highest_level(&principal.clearance) > bounds.ceiling.level() || !bounds.ceiling.dominates(label) {
            return Err(refuse(format!("a clearance or label above {}", bounds.ceiling.banner())));
        }
        Ok(())
    }

    fn principal(
        &self,
        subject: String,
        nation: String,
        roles: Vec<String>,
        mut clearance: Clearance,
        method: AuthMethod,
    ) -> Result<Principal, IdentityError> {
        if subject.trim().is_empty() {
            return Err(IdentityError::BadCredential("the subject is empty".into()));
        }
        if !rampart_config::is_alpha3(&nation) {
            return Err(IdentityError::BadCredential(format!("nation '{nation}' is not an ISO 3166 alpha-3 code")));
        }
        // Releasability must include the caller's own nation, whatever else a credential says.
        if clearance.policy().tag(&self.releasability_tag).is_some() {
            clearance.restrict(&self.releasability_tag, &BTreeSet::from([nation.clone()]));
        }
        Ok(Principal { subject, nation, roles, clearance, method })
    }

    /// Re-reads the directory now (SIGHUP); the file is also watched.
    pub fn reload_directory(&self) {
        if let Some(directory) = &self.directory {
            directory.reload();
        }
    }

    /// Why certificate callers cannot be identified right now, if they cannot.
    pub fn problem(&self) -> Option<String> {
        self.directory.as_ref().and_then(|d| d.problem())
    }

    /// Whether every caller is the anonymous development principal (no `[identity]`).
    pub fn is_anonymous_dev(&self) -> bool {
        self.anonymous.is_some()
    }
}
