//! The security steps of every request: who is asking, the request's
//! effective label, the policy decision, and the label on the answer.

use std::collections::HashMap;

use anyhow::Context as _;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use rampart_api::{ApiError, ErrorKind};
use rampart_config::Config;
use rampart_identity::{ASSERTION_HEADER, AssertionVerifier, Identity, IdentityError, PeerCertificate, Principal};
use rampart_labels::{Clearance, Label, Policies, SecurityPolicy};
use rampart_policy::{Action, Authority, Decision, LabelFacts, Refusal, Resource, Subject};
use serde::Deserialize;

use crate::routes::Parsed;
use crate::trail::Draft;

/// The request and response header that carries a label.
pub static LABEL_HEADER: HeaderName = HeaderName::from_static("rampart-label");

/// What the site knows of a model for policy decisions.
struct ModelPolicy {
    resource: Resource,
    ceiling: Clearance,
}

/// Labels, identity and policy of the site.
pub struct Security {
    labels: Policies,
    default_label: Label,
    identity: Identity,
    authority: Authority,
    models: HashMap<String, ModelPolicy>,
    /// What requests about the site itself (its audit log, its metrics) are assessed at: the site's default label.
    site_ceiling: Clearance,
    /// The site itself, as the resource of `read_metrics`.
    site: Resource,
    /// The peer sites whose assertions are accepted, with `[federation]`.
    assertions: Option<AssertionVerifier>,
}

/// A peer site's word for a request it forwarded here.
pub struct Vouched {
    /// The peer site's id.
    pub site: String,
    /// The label the peer computed for the request.
    pub label: Label,
}

/// The security policies `config` names (`labels.spif`), or the built-in NATO policy when it names none.
pub fn load_policies(config: &Config) -> anyhow::Result<Policies> {
    if config.labels.spif.is_empty() {
        return Ok(Policies::nato());
    }
    let mut policies = Vec::new();
    for path in &config.labels.spif {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read SPIF '{}'", path.display()))?;
        policies.push(SecurityPolicy::from_spif(&text).with_context(|| format!("SPIF '{}'", path.display()))?);
    }
    Ok(Policies::new(policies)?)
}

impl Security {
    /// The security policies labels are read with.
    pub fn labels(&self) -> &Policies {
        &self.labels
    }

    /// Loads policies, identity settings and Cedar policies; fails start-up on any error.
    pub fn new(config: &Config, model_ids: &[String]) -> anyhow::Result<Self> {
        let labels = load_policies(config)?;
        let default_label = labels
            .parse_label(&config.labels.default_label)
            .map_err(|e| anyhow::anyhow!("labels.default_label '{}': {e}", config.labels.default_label))?;
        let identity = Identity::from_config(config, &labels, &default_label).map_err(|e| anyhow::anyhow!(e))?;
        let authority = Authority::load(&config.policy.files)?;
        let mut models = HashMap::new();
        for id in model_ids {
            let declared = config.models.iter().find(|m| &m.name == id);
            let backend = config.backends.iter().find(|b| b.models.contains(id));
            let accreditation = declared
                .and_then(|m| m.accreditation.clone())
                .or_else(|| backend.and_then(|b| b.accreditation.clone()));
            let owner = declared.and_then(|m| m.owner.clone()).or_else(|| backend.and_then(|b| b.owner.clone()));
            let ceiling = match &accreditation {
                Some(text) => labels
                    .parse_label(text)
                    .map_err(|e| anyhow::anyhow!("accreditation '{text}' of model '{id}': {e}"))?,
                None => default_label.clone(),
            };
            let resource = Resource::Model { id: id.clone(), owner, accreditation: ceiling.banner() };
            models.insert(id.clone(), ModelPolicy { resource, ceiling: Clearance::from_ceiling(&ceiling) });
        }
        if identity.is_anonymous_dev() {
            tracing::warn!(
                "no [identity] configured: every caller is the anonymous development principal, cleared for {}",
                default_label.banner()
            );
        }
        let site_ceiling = Clearance::from_ceiling(&default_label);
        let assertions = match (&config.federation, &config.site) {
            (Some(_), Some(own)) => {
                let peers =
                    config.peer_sites().map(|(site, _)| (site.certificate_subject().to_owned(), site.id.clone()));
                Some(AssertionVerifier::new(&own.id, peers))
            }
            _ => None,
        };
        let site = Resource::Site(config.site.as_ref().map_or_else(|| "local".to_owned(), |own| own.id.clone()));
        Ok(Self { labels, default_label, identity, authority, models, site_ceiling, site, assertions })
    }

    /// Identifies the caller of an inference request: from a peer site's
    /// assertion when it carries one (then also the peer's label for it),
    /// otherwise as [`Security::authenticate`] does.
    pub fn authenticate_request(
        &self,
        headers: &HeaderMap,
        peer: Option<&PeerCertificate>,
    ) -> Result<(Principal, Option<Vouched>), ApiError> {
        let Some(value) = headers.get(ASSERTION_HEADER) else {
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

    /// Releases a peer site's answer only when, if successful, it carries a
    /// label at least as high as this request's (the peer joined the label it
    /// was sent with its own reading, and labelled its body itself).
    pub fn accept_peer_answer(
        &self,
        response: axum::response::Response,
        label: &Label,
    ) -> Result<axum::response::Response, ApiError> {
        if !response.status().is_success() {
            return Ok(response);
        }
        let theirs = response.headers().get(&LABEL_HEADER).and_then(|v| v.to_str().ok());
        match theirs.map(|text| self.labels.parse_label(text)) {
            Some(Ok(theirs)) if theirs.dominates(label) => Ok(response),
            _ => Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                ErrorKind::ServerError,
                "peer_label_invalid",
                "the peer site's answer does not carry a label covering this request's, so it was not released",
            )),
        }
    }

    /// Identifies the caller of a request.
    pub fn authenticate(&self, headers: &HeaderMap, peer: Option<&PeerCertificate>) -> Result<Principal, ApiError> {
        let bearer = match headers.get(header::AUTHORIZATION) {
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

    /// The effective label of a request: the high-water mark of its declared
    /// label (header or `rampart.label` in the body; the default label if none)
    /// and of every marking found in its text.
    pub fn request_label(&self, headers: &HeaderMap, parsed: &Parsed, body: &[u8]) -> Result<Label, ApiError> {
        let bad = |param: &str, e: &dyn std::fmt::Display| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidRequestError,
                "invalid_label",
                format!("the declared security label is not valid: {e}"),
            )
            .with_param(param)
        };
        let from_header = match headers.get(&LABEL_HEADER) {
            Some(value) => {
                let text = value.to_str().map_err(|e| bad("Rampart-Label", &e))?;
                Some(self.labels.parse_label(text).map_err(|e| bad("Rampart-Label", &e))?)
            }
            None => None,
        };
        let from_body = body_label(body).map_err(|e| bad("rampart.label", &e))?;
        let from_body = match from_body {
            Some(value) => Some(self.label_from_value(&value).map_err(|e| bad("rampart.label", &e))?),
            None => None,
        };
        let mut label = match (from_header, from_body) {
            (Some(h), Some(b)) => h.join(&b).map_err(|e| bad("rampart.label", &e))?,
            (Some(one), None) | (None, Some(one)) => one,
            (None, None) => self.default_label.clone(),
        };
        let policy = label.policy().clone();
        for text in parsed.texts() {
            if let Some(found) = policy.detect_markings(text) {
                label = label.join(&found).map_err(|e| bad("messages", &e))?;
            }
        }
        Ok(label)
    }

    fn label_from_value(&self, value: &serde_json::Value) -> Result<Label, rampart_labels::LabelError> {
        match value {
            serde_json::Value::String(text) => self.labels.parse_label(text),
            other => self.labels.parse_label_json(&other.to_string()),
        }
    }

    /// The decision on reading the audit log (auditors only, by the built-in policy).
    pub fn authorize_audit_read(&self, principal: &Principal) -> Decision {
        self.decide_about_site(principal, Action::ReadAudit, &Resource::AuditLog)
    }

    /// The decision on reading the site's metrics (monitors and admins, by the built-in policy).
    pub fn authorize_metrics(&self, principal: &Principal) -> Decision {
        self.decide_about_site(principal, Action::ReadMetrics, &self.site)
    }

    /// A decision about the site itself rather than a model, at the site's default label.
    fn decide_about_site(&self, principal: &Principal, action: Action, resource: &Resource) -> Decision {
        let facts = LabelFacts::assess(&principal.clearance, &self.default_label, &self.site_ceiling);
        self.authority.decide(&subject_of(principal), action, resource, &facts)
    }

    /// Whether every caller is the anonymous development principal (an `insecure_dev` site without `[identity]`).
    pub fn is_anonymous_dev(&self) -> bool {
        self.identity.is_anonymous_dev()
    }

    /// The policy decision for `action` on a model at `label`.
    pub fn authorize(&self, principal: &Principal, action: Action, model: &str, label: &Label) -> Decision {
        let Some(entry) = self.models.get(model) else {
            // Every served model has an entry; a missing one is refused, never allowed.
            return Decision { refusal: Some(Refusal::PolicyError), policies: Vec::new() };
        };
        let facts = LabelFacts::assess(&principal.clearance, label, &entry.ceiling);
        self.authority.decide(&subject_of(principal), action, &entry.resource, &facts)
    }

    /// Whether the caller may see `model` in `/v1/models` (at the site's default label).
    pub fn may_list(&self, principal: &Principal, model: &str) -> bool {
        self.authorize(principal, Action::ListModels, model, &self.default_label).allowed()
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

fn subject_of(principal: &Principal) -> Subject {
    Subject { id: principal.subject.clone(), nation: principal.nation.clone(), roles: principal.roles.clone() }
}

/// Identifies the caller of a request about the site itself (reading its audit
/// log or its metrics) and takes `decide`'s decision on them, noting both in
/// `draft`; the caller is returned only when allowed.
pub fn admit(
    security: &Security,
    headers: &HeaderMap,
    peer: Option<&PeerCertificate>,
    draft: &mut Draft,
    decide: impl FnOnce(&Security, &Principal) -> Decision,
) -> Result<Principal, ApiError> {
    let principal = security.authenticate(headers, peer)?;
    draft.identified(&principal);
    let decision = decide(security, &principal);
    draft.decided(&decision);
    enforce(&decision)?;
    Ok(principal)
}

/// The refusal to send for a decision that does not allow the request.
pub fn enforce(decision: &Decision) -> Result<(), ApiError> {
    match decision.refusal {
        None => Ok(()),
        Some(refusal) => Err(refusal_error(refusal, &decision.policies)),
    }
}

fn identity_error(err: &IdentityError) -> ApiError {
    let status = if err.is_site_fault() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::UNAUTHORIZED };
    let kind = if err.is_site_fault() { ErrorKind::ServerError } else { ErrorKind::AuthenticationError };
    ApiError::new(status, kind, err.code(), err.to_string())
}

/// A 403 naming the rule and the policies that decided it; never the request's content.
fn refusal_error(refusal: Refusal, policies: &[String]) -> ApiError {
    let message = if policies.is_empty() {
        refusal.message().to_owned()
    } else {
        format!("{} (decided by policy {})", refusal.message(), policies.join(", "))
    };
    ApiError::new(StatusCode::FORBIDDEN, ErrorKind::PermissionError, refusal.code(), message)
}

/// `rampart.label` of a request body, if it has one.
fn body_label(body: &[u8]) -> Result<Option<serde_json::Value>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Extension {
        rampart: Option<RampartFields>,
    }
    #[derive(Deserialize)]
    struct RampartFields {
        label: Option<serde_json::Value>,
    }
    let extension: Extension = serde_json::from_slice(body)?;
    Ok(extension.rampart.and_then(|r| r.label))
}

/// The body forwarded upstream: without Rampart's own `rampart` member, which
/// upstream servers do not know (re-encoded only when the member is there).
pub fn without_extension(body: Bytes) -> Bytes {
    if memchr::memmem::find(&body, b"\"rampart\"").is_none() {
        return body;
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut map)) => match map.remove("rampart") {
            Some(_) => serde_json::to_vec(&map).map(Bytes::from).unwrap_or(body),
            None => body,
        },
        _ => body,
    }
}

/// The `"rampart":{"label":...}` member added to answers.
pub fn label_member(label: &Label) -> Bytes {
    let json = serde_json::json!({ "label": label.to_json() });
    Bytes::from(format!("\"rampart\":{json}"))
}

/// Inserts `member` as the first member of the first JSON object in `data`
/// (right after its `{`): valid whether or not the object is complete in
/// this piece, so it works on a streamed frame too. `None` if no object starts here.
pub fn insert_member(data: &[u8], after: &[u8], member: &[u8]) -> Option<Bytes> {
    let start = memchr::memmem::find(data, after)?;
    let brace = start + after.len() + data[start + after.len()..].iter().position(|b| !b.is_ascii_whitespace())?;
    if data[brace] != b'{' {
        return None;
    }
    let rest = &data[brace + 1..];
    let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let mut out = Vec::with_capacity(data.len() + member.len() + 1);
    out.extend_from_slice(&data[..=brace]);
    out.extend_from_slice(member);
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Some(Bytes::from(out))
}

/// Labels an answer: the `Rampart-Label` header (banner marking), and
/// `rampart.label` (JSON form) in a JSON body or in the first SSE event.
pub fn label_response(response: axum::response::Response, label: &Label) -> axum::response::Response {
    let (mut parts, body) = response.into_parts();
    if let Ok(value) = HeaderValue::from_str(&label.banner()) {
        parts.headers.insert(LABEL_HEADER.clone(), value);
    }
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let body = if !parts.status.is_success() {
        body
    } else if content_type.starts_with("text/event-stream") {
        Body::new(crate::labelled_stream::LabelFirstEvent::new(body, label_member(label)))
    } else if content_type.starts_with("application/json") {
        Body::new(crate::labelled_stream::LabelJsonBody::new(body, label_member(label)))
    } else {
        body
    };
    axum::response::Response::from_parts(parts, body)
}

impl Parsed {
    /// The caller-supplied texts of a request, where markings are looked for.
    pub fn texts(&self) -> Vec<&str> {
        match self {
            Parsed::Chat(r) => {
                r.messages.iter().filter_map(|m| m.content.as_ref()).flat_map(|c| c.text_parts()).collect()
            }
            Parsed::Completion(r) => r.prompt_texts(),
            Parsed::Embeddings(r) => r.input_texts(),
        }
    }
}
