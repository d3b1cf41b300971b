//! Rampart's decisions equal Cedar's over the whole policy set.
//!
//! `Authority` hands Cedar only the parts of the policy set that can apply,
//! reduces each question to what the policies observe, and reuses answers.
//! Here every question of a grid (principals named and unnamed, roles named
//! and not, nations, every action, models with and without owners, label facts
//! and label texts) is decided twice, in two orders, and compared with one
//! Cedar evaluation of the full policy set over the full entities.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityUid, PolicyId, PolicySet, Request,
    RestrictedExpression,
};
use rampart_policy::{Action, Authority, BUILTIN_POLICIES, LabelFacts, Resource, Subject};

/// Operator policies of every shape the index and the analysis treat differently.
const OPERATOR: &str = r#"
@id("m1-usa-only") forbid (principal, action == Rampart::Action::"infer", resource == Rampart::Model::"m1") unless { principal.nation == "USA" };
@id("usa-owned-nato-only") forbid (principal, action, resource in Rampart::Nation::"USA") unless { context.label_policy == "NATO" };
@id("no-contractors") forbid (principal in Rampart::Role::"contractor", action, resource);
@id("alice-barred-m2") forbid (principal == Rampart::Principal::"alice", action, resource == Rampart::Model::"m2");
@id("deu-low-only") forbid (principal in Rampart::Nation::"DEU", action == Rampart::Action::"infer", resource) when { context.label_level > 1 };
@id("no-exercise") forbid (principal, action in [Rampart::Action::"infer", Rampart::Action::"list_models"], resource) when { context.label like "*EXERCISE*" };
@id("own-nation-secret") forbid (principal, action == Rampart::Action::"infer", resource is Rampart::Model) when { context.label_level > 2 && resource has owner && resource.owner != principal.nation };
@id("team-roles") forbid (principal, action, resource) when { principal.roles.contains("team-9") && !context.releasable };
@id("ops-admin") permit (principal in Rampart::Role::"ops", action == Rampart::Action::"admin", resource == Rampart::Site::"s1");
@id("audit-by-gbr-auditors") forbid (principal, action == Rampart::Action::"read_audit", resource) unless { principal.nation == "GBR" };
@id("odd-scope") forbid (principal in Rampart::Model::"m1", action, resource);
@id("never-role-eq") forbid (principal == Rampart::Role::"contractor", action, resource);
@id("never-nation-eq") forbid (principal, action, resource == Rampart::Nation::"USA");
@id("usa-models-low") forbid (principal, action, resource is Rampart::Model in Rampart::Nation::"USA") when { context.label_level > 2 };
@id("intsum-gbr-only") forbid (principal, action == Rampart::Action::"retrieve", resource == Rampart::Collection::"intsum") unless { principal.nation == "GBR" };
@id("analysts-never-admin") forbid (principal is Rampart::Principal in Rampart::Role::"analyst", action == Rampart::Action::"admin", resource);
"#;

fn uid(kind: &str, id: &str) -> EntityUid {
    EntityUid::from_str(&format!("Rampart::{kind}::\"{id}\"")).unwrap()
}

fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_owned())
}

/// The entities Rampart describes a principal and a resource with, built the plain way.
fn entities(subject: &Subject, resource: &Resource) -> (EntityUid, EntityUid, Entities) {
    let principal = uid("Principal", &subject.id);
    let ancestors: HashSet<EntityUid> =
        subject.roles.iter().map(|r| uid("Role", r)).chain([uid("Nation", &subject.nation)]).collect();
    let attrs = HashMap::from([
        ("nation".to_owned(), string(&subject.nation)),
        ("roles".to_owned(), RestrictedExpression::new_set(subject.roles.iter().map(|r| string(r)))),
    ]);
    let principal_entity = Entity::new(principal.clone(), attrs, ancestors).unwrap();
    let resource_entity = match resource {
        Resource::Model { id, owner, accreditation } => {
            let mut attrs = HashMap::from([("accreditation".to_owned(), string(accreditation))]);
            let mut ancestors = HashSet::new();
            if let Some(owner) = owner {
                attrs.insert("owner".to_owned(), string(owner));
                ancestors.insert(uid("Nation", owner));
            }
            Entity::new(uid("Model", id), attrs, ancestors).unwrap()
        }
        Resource::AuditLog => Entity::new_no_attrs(uid("AuditLog", "log"), HashSet::new()),
        Resource::Site(id) => Entity::new_no_attrs(uid("Site", id), HashSet::new()),
        Resource::Collection(name) => Entity::new_no_attrs(uid("Collection", name), HashSet::new()),
    };
    let resource_uid = resource_entity.uid();
    (principal, resource_uid, Entities::from_entities([principal_entity, resource_entity], None).unwrap())
}

/// Cedar's decision over the whole set: refused or not, and the ids of the policies behind it.
fn cedar_decides(
    set: &PolicySet,
    subject: &Subject,
    action: Action,
    resource: &Resource,
    facts: &LabelFacts,
) -> (bool, Vec<String>) {
    let (principal, resource, entities) = entities(subject, resource);
    let context = Context::from_pairs([
        ("clearance_dominates".to_owned(), RestrictedExpression::new_bool(facts.clearance_dominates)),
        ("releasable".to_owned(), RestrictedExpression::new_bool(facts.releasable)),
        ("accredited".to_owned(), RestrictedExpression::new_bool(facts.accredited)),
        ("label_level".to_owned(), RestrictedExpression::new_long(facts.label_level)),
        ("label".to_owned(), string(&facts.label)),
        ("label_policy".to_owned(), string(&facts.label_policy)),
    ])
    .unwrap();
    let action = uid("Action", action.name());
    let request = Request::new(principal, action, resource, context, None).unwrap();
    let response = Authorizer::new().is_authorized(&request, set, &entities);
    assert!(response.diagnostics().errors().next().is_none());
    let mut ids: Vec<String> = response.diagnostics().reason().map(PolicyId::to_string).collect();
    ids.sort_unstable();
    (response.decision() == CedarDecision::Allow, ids)
}

/// The full set as `Authority` loads it: ids from the `@id` annotations.
fn full_set(operator: &str) -> PolicySet {
    let mut set = PolicySet::new();
    for text in [BUILTIN_POLICIES, operator] {
        for policy in PolicySet::from_str(text).unwrap().policies() {
            let id = policy.annotation("id").unwrap().to_owned();
            set.add(policy.new_id(PolicyId::new(id))).unwrap();
        }
    }
    set
}

fn facts(dominates: bool, releasable: bool, level: i64, label: &str, policy: &str) -> LabelFacts {
    LabelFacts {
        clearance_dominates: dominates,
        releasable,
        accredited: level < 3,
        label_level: level,
        label: label.to_owned(),
        label_policy: policy.to_owned(),
    }
}

#[test]
fn every_decision_equals_cedar_over_the_whole_set() {
    decide_the_grid(OPERATOR, &["odd-scope", "never-role-eq", "never-nation-eq"]);
}

#[test]
fn every_decision_equals_cedar_when_no_policy_reads_the_principal_attributes() {
    // Without policies that read `principal.nation` or `principal.roles`, Rampart leaves those
    // attributes out of the principal's entity; Cedar here still gets them.
    let blind: String =
        OPERATOR.lines().filter(|line| !line.contains("principal.")).map(|line| format!("{line}\n")).collect();
    assert!(blind.lines().count() >= 10, "{blind}");
    decide_the_grid(&blind, &["odd-scope", "never-role-eq", "never-nation-eq"]);
}

/// Decides every question of the grid twice and compares each decision with Cedar's over the whole
/// set; every policy but those in `inert` must decide some question.
fn decide_the_grid(operator: &str, inert: &[&str]) {
    let authority = Authority::from_texts(&[("operator.cedar", operator)]).unwrap();
    let set = full_set(operator);
    let mut subjects = Vec::new();
    for id in ["alice", "bob", "carol"] {
        for nation in ["GBR", "USA", "DEU"] {
            for roles in [
                &[][..],
                &["analyst"],
                &["contractor", "analyst"],
                &["team-9", "monitor"],
                &["ops", "auditor"],
                &["admin"],
            ] {
                let roles = roles.iter().map(|r| r.to_string()).collect();
                subjects.push(Subject { id: id.into(), nation: nation.into(), roles });
            }
        }
    }
    let model = |id: &str, owner: Option<&str>| Resource::Model {
        id: id.into(),
        owner: owner.map(str::to_owned),
        accreditation: "NATO SECRET".into(),
    };
    let resources = [
        model("m1", Some("USA")),
        model("m2", Some("GBR")),
        model("m3", None),
        Resource::AuditLog,
        Resource::Site("s1".into()),
        Resource::Site("s2".into()),
        Resource::Collection("intsum".into()),
        Resource::Collection("weather".into()),
    ];
    let all_facts = [
        facts(true, true, 0, "NATO UNCLASSIFIED", "NATO"),
        facts(true, true, 3, "NATO SECRET", "NATO"),
        facts(true, false, 2, "NATO CONFIDENTIAL Releasable To USA", "NATO"),
        facts(false, false, 3, "NATO SECRET EXERCISE", "NATO"),
        facts(true, true, 1, "DEU VS-NUR FÜR DEN DIENSTGEBRAUCH", "DEU"),
    ];
    let actions = Action::ALL;
    let mut questions = Vec::new();
    for subject in &subjects {
        for resource in &resources {
            for facts in &all_facts {
                for action in actions {
                    questions.push((subject, action, resource, facts));
                }
            }
        }
    }
    let (mut allowed, mut refused) = (0, 0);
    let mut deciding = HashSet::new();
    // Forwards, then backwards: answers reused from memory must not depend on what was asked first.
    for pass in 0..2 {
        let order: Box<dyn Iterator<Item = &_>> =
            if pass == 0 { Box::new(questions.iter()) } else { Box::new(questions.iter().rev()) };
        for &(subject, action, resource, facts) in order {
            let decision = authority.decide(subject, action, resource, facts);
            let (cedar_allows, cedar_ids) = cedar_decides(&set, subject, action, resource, facts);
            let context = format!("{subject:?} {action:?} {resource:?} {facts:?}");
            assert_eq!(decision.allowed(), cedar_allows, "{context}: {decision:?}");
            assert_eq!(decision.policies, cedar_ids, "{context}");
            if cedar_allows {
                allowed += 1
            } else {
                refused += 1
            }
            deciding.extend(cedar_ids);
        }
    }
    // The grid exercises both outcomes, and every policy but those that can never hold decides some question.
    assert!(allowed > 500 && refused > 500, "allowed {allowed}, refused {refused}");
    let never: Vec<String> = set
        .policies()
        .map(|p| p.id().to_string())
        .filter(|id| !deciding.contains(id) && !inert.contains(&id.as_str()))
        .collect();
    assert!(never.is_empty(), "these policies decided nothing: {never:?}");
}
