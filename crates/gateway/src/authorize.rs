//! The authorize stage: Cedar's decision on a caller, an action and a model
//! (or the site itself) at a label: clearance, releasability, the model's
//! accreditation and the operator's policies. A refusal names the rule and
//! the policies that decided it, never the request's content.

use std::collections::HashMap;

use rampart_api::ApiError;
use rampart_config::Config;
use rampart_identity::Principal;
use rampart_labels::{Clearance, Label, Policies};
use rampart_policy::{Action, Authority, Decision, LabelFacts, Refusal, Resource, Subject};

/// What the site knows of a model for policy decisions.
struct ModelPolicy {
    resource: Resource,
    ceiling: Clearance,
}

/// The authorize stage's settings: the Cedar policies and what each model is accredited for.
pub struct Authorization {
    authority: Authority,
    models: HashMap<String, ModelPolicy>,
    /// The label requests about the site itself (its audit log, its metrics) are assessed at.
    default_label: Label,
    /// ... and the ceiling they are assessed against: the site's default label.
    site_ceiling: Clearance,
    /// The site itself, as the resource of `read_metrics`.
    site: Resource,
}

impl Authorization {
    /// Loads the Cedar policies and the accreditation of every served model; fails start-up on any error.
    pub fn new(
        config: &Config,
        labels: &Policies,
        default_label: &Label,
        model_ids: &[String],
    ) -> anyhow::Result<Self> {
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
        let site = Resource::Site(config.site.as_ref().map_or_else(|| "local".to_owned(), |own| own.id.clone()));
        let site_ceiling = Clearance::from_ceiling(default_label);
        Ok(Self { authority, models, default_label: default_label.clone(), site_ceiling, site })
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

    /// Whether `model` is accredited for data labelled `label` (an unknown model is accredited for nothing).
    pub fn accredited(&self, model: &str, label: &Label) -> bool {
        self.models.get(model).is_some_and(|entry| entry.ceiling.check(label).is_ok())
    }

    /// Whether the caller may see `model` in `/v1/models` (at the site's default label).
    pub fn may_list(&self, principal: &Principal, model: &str) -> bool {
        self.authorize(principal, Action::ListModels, model, &self.default_label).allowed()
    }

    /// The decision on reading the audit log (auditors only, by the built-in policy).
    pub fn authorize_audit_read(&self, principal: &Principal) -> Decision {
        self.decide_about_site(principal, Action::ReadAudit, &Resource::AuditLog)
    }

    /// The decision on retrieving from `collection` with a query labelled `label`
    /// (the caller must be cleared for the query's label; operators' policies may
    /// deny a collection to a role or nation).
    pub fn authorize_retrieve(&self, principal: &Principal, collection: &str, label: &Label) -> Decision {
        let facts = LabelFacts::assess(&principal.clearance, label, &self.site_ceiling);
        let resource = Resource::Collection(collection.to_owned());
        self.authority.decide(&subject_of(principal), Action::Retrieve, &resource, &facts)
    }

    /// The decision on reading the site's metrics (monitors and admins, by the built-in policy).
    pub fn authorize_metrics(&self, principal: &Principal) -> Decision {
        self.decide_about_site(principal, Action::ReadMetrics, &self.site)
    }

    /// The decision on signing in to the web console (every identified caller, by the built-in policy).
    pub fn authorize_console(&self, principal: &Principal) -> Decision {
        self.decide_about_site(principal, Action::UseConsole, &self.site)
    }

    /// A decision about the site itself rather than a model, at the site's default label.
    fn decide_about_site(&self, principal: &Principal, action: Action, resource: &Resource) -> Decision {
        let facts = LabelFacts::assess(&principal.clearance, &self.default_label, &self.site_ceiling);
        self.authority.decide(&subject_of(principal), action, resource, &facts)
    }
}

fn subject_of(principal: &Principal) -> Subject {
    Subject { id: principal.subject.clone(), nation: principal.nation.clone(), roles: principal.roles.clone() }
}

/// The refusal to send for a decision that does not allow the request.
pub fn enforce(decision: &Decision) -> Result<(), ApiError> {
    match decision.refusal {
        None => Ok(()),
        Some(refusal) => Err(refusal_error(refusal, &decision.policies)),
    }
}

/// A 403 naming the rule and the policies that decided it; never the request's content.
fn refusal_error(refusal: Refusal, policies: &[String]) -> ApiError {
    let message = if policies.is_empty() {
        refusal.message().to_owned()
    } else {
        format!("{} (decided by policy {})", refusal.message(), policies.join(", "))
    };
    ApiError::refused(refusal.code(), message)
}
