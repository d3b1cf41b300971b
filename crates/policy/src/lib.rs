//! Rampart's authorization decisions, made by Cedar.
//!
//! Every request is a question: may this principal (nation, clearance,
//! roles) take this action (`infer`, `list_models`, `read_audit`, `admin`,
//! `read_metrics`, `retrieve`, `use_console`) on this resource (a model with its owner and accreditation,
//! the audit log, the site)? The label checks of `rampart-labels` are computed first and handed
//! to Cedar as facts in the request context; Rampart's built-in Cedar policies
//! (see [`BUILTIN_POLICIES`]) turn them into decisions, and operators add their
//! own policy files. `forbid` wins. A [`Decision`] names the policies that
//! decided it and, when it refuses, a stable [`Refusal`] code. Every policy is
//! validated against Rampart's [`SCHEMA`] when loaded, so a typo stops
//! start-up; an evaluation error that remains possible (an overflow, say)
//! refuses the request: policy errors fail closed.

mod cache;
mod facts;
mod memo;
mod observed;
mod parts;
mod question;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy,
    PolicyId, PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};

use cache::Bounded;
use memo::Answer;
use observed::Observed;
use question::{Facts, Principal, Question};

pub use facts::LabelFacts;

/// Rampart's own policies: who may do what, and the label rules as `forbid`s.
pub const BUILTIN_POLICIES: &str = include_str!("builtin.cedar");

/// The Cedar schema every policy is validated against: entity types, their
/// attributes, the actions and the label context.
pub const SCHEMA: &str = include_str!("schema.cedarschema");

/// Policy ids of the built-in label rules, and the refusal each stands for.
const BUILTIN_REFUSALS: [(&str, Refusal); 3] = [
    ("rampart/label-exceeds-clearance", Refusal::LabelExceedsClearance),
    ("rampart/not-releasable", Refusal::NotReleasable),
    ("rampart/label-exceeds-accreditation", Refusal::LabelExceedsAccreditation),
];

/// What a principal asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Run a model.
    Infer,
    /// See a model in `/v1/models`.
    ListModels,
    /// Read the audit log.
    ReadAudit,
    /// Administer the site.
    Admin,
    /// Read the site's metrics (`/metrics`).
    ReadMetrics,
    /// Retrieve portions from a collection (`/v1/retrieve`).
    Retrieve,
    /// Sign in to the web console (`/console/api/...`).
    UseConsole,
}

impl Action {
    /// Every action, in declaration order (`Action as usize` indexes it).
    pub const ALL: [Action; ACTIONS] = [
        Action::Infer,
        Action::ListModels,
        Action::ReadAudit,
        Action::Admin,
        Action::ReadMetrics,
        Action::Retrieve,
        Action::UseConsole,
    ];

    /// The Cedar action id.
    pub fn name(self) -> &'static str {
        match self {
            Action::Infer => "infer",
            Action::ListModels => "list_models",
            Action::ReadAudit => "read_audit",
            Action::Admin => "admin",
            Action::ReadMetrics => "read_metrics",
            Action::Retrieve => "retrieve",
            Action::UseConsole => "use_console",
        }
    }
}

/// Who asks: a verified identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    /// Certificate subject or token `sub`.
    pub id: String,
    /// ISO 3166 alpha-3.
    pub nation: String,
    /// Roles, e.g. `analyst`, `auditor`.
    pub roles: Vec<String>,
}

/// What is asked about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// A model, with its owner nation (if declared) and accreditation marking.
    Model {
        /// The model id.
        id: String,
        /// Owner nation, alpha-3.
        owner: Option<String>,
        /// The highest label it may process, as a banner marking.
        accreditation: String,
    },
    /// The audit log.
    AuditLog,
    /// The site itself.
    Site(String),
    /// A collection of labelled reports (its name).
    Collection(String),
}

/// Why a request was refused: the stable `code` of the API error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The caller's clearance does not hold the label's classification or a restrictive category.
    LabelExceedsClearance,
    /// The label is not releasable to the caller.
    NotReleasable,
    /// The label is above what the model's site is accredited for.
    LabelExceedsAccreditation,
    /// An operator policy forbids it, or no policy permits it.
    PolicyForbids,
    /// A policy could not be evaluated; refused to fail closed.
    PolicyError,
}

impl Refusal {
    /// The API error code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::LabelExceedsClearance => "label_exceeds_clearance",
            Refusal::NotReleasable => "not_releasable",
            Refusal::LabelExceedsAccreditation => "label_exceeds_accreditation",
            Refusal::PolicyForbids => "policy_forbids",
            Refusal::PolicyError => "policy_error",
        }
    }

    /// A message for the caller that names the rule and reveals no content.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::LabelExceedsClearance => "the request's security label exceeds your clearance",
            Refusal::NotReleasable => "the request's security label is not releasable to you",
            Refusal::LabelExceedsAccreditation => {
                "the request's security label exceeds what this model is accredited to process"
            }
            Refusal::PolicyForbids => "a site policy forbids this request",
            Refusal::PolicyError => "the site's policy could not be evaluated, so the request is refused",
        }
    }
}

/// The outcome of one authorization question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `None` when allowed, else why not.
    pub refusal: Option<Refusal>,
    /// Ids of the policies that decided it (the permits that allowed it, or the forbids that refused it).
    pub policies: Vec<String>,
}

impl Decision {
    /// Whether the request may go ahead.
    pub fn allowed(&self) -> bool {
        self.refusal.is_none()
    }
}

/// Why policies could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A policy file could not be read.
    #[error("cannot read policy file '{path}': {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A policy file is not valid Cedar.
    #[error("policy file '{source_name}' is not valid Cedar: {reason}")]
    Parse {
        /// The file (or `built-in`).
        source_name: String,
        /// The parser's message.
        reason: String,
    },
    /// Policies do not fit Rampart's schema (an unknown attribute, entity type or action).
    #[error("policies do not fit Rampart's schema (see docs/security.md): {0}")]
    Invalid(String),
}

/// The loaded policy set and its authorizer.
pub struct Authority {
    policies: PolicySet,
    parts: parts::Parts,
    authorizer: Authorizer,
    /// Action uids, indexed by `Action as usize`.
    actions: [EntityUid; ACTIONS],
    prepared: Bounded<(Subject, Resource), Arc<Prepared>>,
    resources: Bounded<Resource, Arc<ResourceEntities>>,
    /// Cedar contexts, by the facts they hold.
    contexts: Bounded<LabelFacts, Context>,
    memo: memo::Memo,
    /// Each part's answers, by what it observes of the question.
    answers: memo::Answers,
    /// What the policies can tell apart: named principals and roles, attributes read.
    observed: Observed,
    /// The id that stands in for every principal no policy names.
    unnamed_principal: String,
}

/// How many [`Action`]s there are.
const ACTIONS: usize = 7;

/// The id of the audit log's entity.
const AUDIT_LOG_ID: &str = "log";

/// (subject, resource) pairs, resources and contexts kept.
const PREPARED_LIMIT: usize = 4096;

/// What a request needs besides its action and context: the principal's and the resource's entities.
struct Prepared {
    principal: EntityUid,
    entities: Entities,
    resource: Arc<ResourceEntities>,
}

/// A resource's entity in an `Entities` of its own, to which each principal is added.
struct ResourceEntities {
    uid: EntityUid,
    entities: Entities,
}

/// The uid `Rampart::<kind>::"<id>"`. Built from parts, not parsed: any text is a valid id,
/// and parsing Cedar syntax per uid would cost more than the rest of a first decision.
fn uid(kind: &str, id: &str) -> EntityUid {
    static TYPES: LazyLock<HashMap<&'static str, EntityTypeName>> = LazyLock::new(|| {
        ["Principal", "Role", "Nation", "Model", "AuditLog", "Site", "Collection", "Action"]
            .into_iter()
            .map(|kind| {
                let name = EntityTypeName::from_str(&format!("Rampart::{kind}")).expect("a valid Cedar type name");
                (kind, name)
            })
            .collect()
    });
    let kind = TYPES.get(kind).expect("uids are made only of the schema's entity types").clone();
    EntityUid::from_type_name_and_id(kind, EntityId::new(id))
}

fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_owned())
}

impl Authority {
    /// The built-in policies plus the operator's Cedar files. Each policy's id
    /// is its `@id("...")` annotation, or `FILE:N` for the Nth policy of a file.
    pub fn load(files: &[impl AsRef<Path>]) -> Result<Self, PolicyError> {
        let mut set = PolicySet::new();
        add_policies(&mut set, "built-in", BUILTIN_POLICIES)?;
        for path in files {
            let path = path.as_ref();
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| PolicyError::Read { path: name.clone(), reason: e.to_string() })?;
            add_policies(&mut set, &name, &text)?;
        }
        Self::new(set)
    }

    /// The built-in policies with operator policies given as text (for tests and tools).
    pub fn from_texts(texts: &[(&str, &str)]) -> Result<Self, PolicyError> {
        let mut set = PolicySet::new();
        add_policies(&mut set, "built-in", BUILTIN_POLICIES)?;
        for (name, text) in texts {
            add_policies(&mut set, name, text)?;
        }
        Self::new(set)
    }

    fn new(policies: PolicySet) -> Result<Self, PolicyError> {
        validate(&policies)?;
        let actions = Action::ALL.map(|a| uid("Action", a.name()));
        let observed = Observed::of(&policies, uid("Principal", "").type_name(), uid("Role", "").type_name());
        let mut unnamed_principal = String::from("rampart: a principal no policy names");
        while observed.principals.contains(&unnamed_principal) {
            unnamed_principal.push('\'');
        }
        Ok(Self {
            parts: parts::Parts::new(&policies, &observed, &actions),
            policies,
            authorizer: Authorizer::new(),
            actions,
            prepared: Bounded::new(PREPARED_LIMIT),
            resources: Bounded::new(PREPARED_LIMIT),
            contexts: Bounded::new(PREPARED_LIMIT),
            memo: memo::Memo::default(),
            answers: memo::Answers::default(),
            observed,
            unnamed_principal,
        })
    }

    /// Number of policies loaded, built-in ones included.
    pub fn len(&self) -> usize {
        self.policies.policies().count()
    }

    /// Whether no policy is loaded (never true: the built-in ones always are).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides one request. `facts` are required for `infer` and `list_models`.
    pub fn decide(&self, subject: &Subject, action: Action, resource: &Resource, facts: &LabelFacts) -> Decision {
        // Cedar is asked only what some policy can observe: every principal no policy names is
        // judged as a stand-in with its nation and roles, roles no policy can tell apart are left
        // out, and so are label strings no policy reads. Questions that differ only in what no
        // policy observes share one entity set and one memoised decision.
        let question = Question::new(&self.observed, &self.unnamed_principal, subject, action, resource, facts);
        // Errors are not remembered: each request that meets one is refused afresh.
        self.memo
            .get_or_decide(&question, || self.evaluate(&question))
            .unwrap_or_else(|()| Decision { refusal: Some(Refusal::PolicyError), policies: Vec::new() })
    }

    /// The entities of a (principal, resource) pair, built once and cached.
    fn prepare(&self, subject: &Principal, resource: &Resource) -> Result<Arc<Prepared>, ()> {
        self.prepared.get_or_try_insert(
            (subject, resource),
            |(s, r)| subject.is(s) && r == resource,
            || (subject.to_owned(), resource.clone()),
            || self.build_prepared(subject, resource),
        )
    }

    /// Builds the principal's entity and adds it to a copy of the resource's entities.
    fn build_prepared(&self, subject: &Principal, resource: &Resource) -> Result<Arc<Prepared>, ()> {
        // The principal's ancestors are its roles and its nation.
        let principal_uid = uid("Principal", subject.id);
        let ancestors = subject.roles.iter().map(|r| uid("Role", r)).chain([uid("Nation", subject.nation)]);
        // Attributes no policy reads are left out: building them is most of the entity's cost.
        let mut attributes = HashMap::new();
        if self.observed.nation_attribute {
            attributes.insert("nation".to_owned(), string(subject.nation));
        }
        if self.observed.roles_attribute {
            attributes
                .insert("roles".to_owned(), RestrictedExpression::new_set(subject.roles.iter().map(|r| string(r))));
        }
        let principal = Entity::new(principal_uid.clone(), attributes, ancestors.collect()).map_err(|_| ())?;
        let resource_entities = self.resource_entities(resource)?;
        // Cedar computes the closure again only around the principal added to the resource's entities.
        let entities = resource_entities.entities.clone().add_entities([principal], None).map_err(|_| ())?;
        Ok(Arc::new(Prepared { principal: principal_uid, entities, resource: resource_entities }))
    }

    /// The Cedar context holding `facts`, built once and cached.
    fn context(&self, facts: Facts) -> Result<Context, ()> {
        self.contexts.get_or_try_insert(
            facts,
            |owned| facts.is(owned),
            || facts.to_owned(),
            || Context::from_pairs(facts.to_context()).map_err(|_| ()),
        )
    }

    /// A resource's entity, alone in an `Entities` of its own, built once and cached.
    fn resource_entities(&self, resource: &Resource) -> Result<Arc<ResourceEntities>, ()> {
        self.resources.get_or_try_insert(
            resource,
            |r| r == resource,
            || resource.clone(),
            || Self::build_resource_entities(resource),
        )
    }

    /// Builds the resource's entity, alone in its own `Entities`.
    fn build_resource_entities(resource: &Resource) -> Result<Arc<ResourceEntities>, ()> {
        // A model's only ancestor is its owner nation.
        let entity = match resource {
            Resource::Model { id, owner, accreditation } => {
                let mut attrs = HashMap::from([("accreditation".to_owned(), string(accreditation))]);
                let mut ancestors = HashSet::new();
                if let Some(owner) = owner {
                    attrs.insert("owner".to_owned(), string(owner));
                    ancestors.insert(uid("Nation", owner));
                }
                Entity::new(uid("Model", id), attrs, ancestors).map_err(|_| ())?
            }
            Resource::AuditLog => Entity::new_no_attrs(uid("AuditLog", AUDIT_LOG_ID), HashSet::new()),
            Resource::Site(id) => Entity::new_no_attrs(uid("Site", id), HashSet::new()),
            Resource::Collection(name) => Entity::new_no_attrs(uid("Collection", name), HashSet::new()),
        };
        let resource_uid = entity.uid();
        // Roles and nations have neither attributes nor ancestors of their own, so they need no
        // entities: Cedar's `in` reads the ancestors listed on the principal and the model.
        let entities = Entities::from_entities([entity], None).map_err(|_| ())?;
        Ok(Arc::new(ResourceEntities { uid: resource_uid, entities }))
    }

    /// Combines the answers of the parts that can apply, asking Cedar for those not yet known.
    fn evaluate(&self, question: &Question) -> Result<Decision, ()> {
        let (mut forbids, mut permits) = (Vec::new(), Vec::new());
        // The entities and the context, made for the first part Cedar must answer and kept for the rest.
        let mut inputs: Option<(Arc<Prepared>, Context)> = None;
        for index in self.parts.select(question.action, &question.principal, question.resource) {
            let part = self.parts.get(index);
            let answer = self.answers.get_or_ask(index, part.observes, question, || {
                let (prepared, context) = match &inputs {
                    Some(inputs) => inputs,
                    None => inputs
                        .insert((self.prepare(&question.principal, question.resource)?, self.context(question.facts)?)),
                };
                self.ask_cedar(question.action, &part.policies, prepared, context.clone())
            })?;
            match answer {
                Answer::Forbid(ids) => forbids.push(ids),
                Answer::Permit(ids) => permits.push(ids),
                Answer::Neither => {}
            }
        }
        let decided = |answers: Vec<Arc<[String]>>| {
            let mut ids: Vec<String> = answers.iter().flat_map(|ids| ids.iter().cloned()).collect();
            ids.sort_unstable();
            ids
        };
        if forbids.is_empty() {
            let refusal = permits.is_empty().then_some(Refusal::PolicyForbids);
            return Ok(Decision { refusal, policies: decided(permits) });
        }
        let policies = decided(forbids);
        let refusal = BUILTIN_REFUSALS
            .iter()
            .find(|(id, _)| policies.iter().any(|p| p == id))
            .map_or(Refusal::PolicyForbids, |(_, refusal)| *refusal);
        Ok(Decision { refusal: Some(refusal), policies })
    }

    /// One part's answer, from Cedar.
    fn ask_cedar(
        &self,
        action: Action,
        policies: &PolicySet,
        prepared: &Prepared,
        context: Context,
    ) -> Result<Answer, ()> {
        let action = self.actions[action as usize].clone();
        let request = Request::new(prepared.principal.clone(), action, prepared.resource.uid.clone(), context, None)
            .map_err(|_| ())?;
        let response = self.authorizer.is_authorized(&request, policies, &prepared.entities);
        if response.diagnostics().errors().next().is_some() {
            return Err(());
        }
        let ids: Arc<[String]> = response.diagnostics().reason().map(|id| id.to_string()).collect();
        Ok(match response.decision() {
            CedarDecision::Allow => Answer::Permit(ids),
            CedarDecision::Deny if ids.is_empty() => Answer::Neither,
            CedarDecision::Deny => Answer::Forbid(ids),
        })
    }
}

/// Strict validation against [`SCHEMA`]: every error, with the policy it is in.
fn validate(policies: &PolicySet) -> Result<(), PolicyError> {
    let (schema, _warnings) =
        Schema::from_cedarschema_str(SCHEMA).map_err(|e| PolicyError::Invalid(format!("the built-in schema: {e}")))?;
    let result = Validator::new(schema).validate(policies, ValidationMode::Strict);
    if result.validation_passed() {
        return Ok(());
    }
    let errors: Vec<String> = result.validation_errors().map(|e| format!("policy '{}': {e}", e.policy_id())).collect();
    Err(PolicyError::Invalid(errors.join("; ")))
}

fn add_policies(set: &mut PolicySet, source_name: &str, text: &str) -> Result<(), PolicyError> {
    let parse_error = |reason: String| PolicyError::Parse { source_name: source_name.to_owned(), reason };
    let parsed = PolicySet::from_str(text).map_err(|e| parse_error(e.to_string()))?;
    for (index, policy) in parsed.policies().enumerate() {
        let id = policy.annotation("id").map_or_else(|| format!("{source_name}:{index}"), str::to_owned);
        let policy: Policy = policy.new_id(PolicyId::new(&id));
        set.add(policy).map_err(|e| parse_error(format!("policy '{id}': {e}")))?;
    }
    if parsed.templates().next().is_some() {
        return Err(parse_error("policy templates are not supported".into()));
    }
    Ok(())
}
