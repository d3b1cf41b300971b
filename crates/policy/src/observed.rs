//! What the loaded policies can observe of a question.
//!
//! A Cedar decision depends only on what some policy reads. Principals and
//! roles are told apart only where a policy names them (an entity literal in a
//! scope or a condition); the principal's `roles` attribute and the context's
//! `label` and `label_policy` strings only where a policy reads that
//! attribute. Whatever no policy observes is left out of the question Cedar is
//! asked (see `Authority::decide`), so questions that differ only there share
//! one evaluation and one memoised decision.
//!
//! Each policy's [`Observes`] says which parts of a question (principal,
//! resource, label text, label facts) its own decision can depend on, so that
//! its answer to one question can be reused for another that differs only
//! elsewhere (see the `parts` module).
//!
//! The analysis walks each policy's JSON form (Cedar's EST) and errs on the
//! side of observing: an attribute named `roles`, `label` or `label_policy`
//! read or tested (`.`, `has`) on any expression counts, `context` used other
//! than by reading one of its attributes (compared whole, say) counts as
//! reading all of it, and a policy that cannot be put in JSON form counts as
//! observing everything.

use std::collections::{HashMap, HashSet};

use cedar_policy::{EntityTypeName, Policy, PolicyId, PolicySet, PrincipalConstraint, ResourceConstraint};
use serde_json::Value;

/// What some loaded policy observes.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Ids of principals some policy names (`Rampart::Principal::"id"`), looked up per question.
    pub(crate) principals: foldhash::HashSet<String>,
    /// Ids of roles some policy names (`Rampart::Role::"id"`), looked up per question.
    pub(crate) roles: foldhash::HashSet<String>,
    /// Some policy reads the principal's `roles` attribute.
    pub(crate) roles_attribute: bool,
    /// Some policy reads the principal's `nation` attribute.
    pub(crate) nation_attribute: bool,
    /// Some policy reads `context.label`.
    pub(crate) label: bool,
    /// Some policy reads `context.label_policy`.
    pub(crate) label_policy: bool,
    /// What each policy reads.
    reads: HashMap<PolicyId, Reads>,
}

impl Observed {
    /// What the policies of `set` observe; `principal` and `role` are the entity types.
    pub(crate) fn of(set: &PolicySet, principal: &EntityTypeName, role: &EntityTypeName) -> Self {
        let mut observed = Observed::default();
        for policy in set.policies() {
            for literal in policy.entity_literals() {
                let id = literal.id().unescaped().to_owned();
                if literal.type_name() == principal {
                    observed.principals.insert(id);
                } else if literal.type_name() == role {
                    observed.roles.insert(id);
                }
            }
            let reads = Reads::of(policy);
            let read = |name: &str| reads.everything || reads.attributes.contains(name);
            observed.roles_attribute |= read("roles");
            observed.nation_attribute |= read("nation");
            observed.label |= read("label");
            observed.label_policy |= read("label_policy");
            observed.reads.insert(policy.id().clone(), reads);
        }
        observed
    }

    /// What `policy`, one of the set this was made from, observes (see [`Observes::of`]).
    pub(crate) fn policy(&self, policy: &Policy, held: ScopeHeld) -> Observes {
        match self.reads.get(policy.id()) {
            Some(reads) => Observes::of(policy, reads, held),
            None => Observes {
                principal: true,
                principal_nation: false,
                resource: true,
                label_text: true,
                label_facts: true,
            },
        }
    }
}

/// Which parts of a question one policy observes: the parts its decision can depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Observes {
    /// The principal: its id, roles, ancestors or attributes.
    pub(crate) principal: bool,
    /// Only the principal's nation (`principal.nation`); false when `principal` is true.
    pub(crate) principal_nation: bool,
    /// The resource: its type, id, owner or attributes.
    pub(crate) resource: bool,
    /// The label's text: `context.label` or `context.label_policy`.
    pub(crate) label_text: bool,
    /// The label checks' results and the label's level: any other context attribute.
    pub(crate) label_facts: bool,
}

/// A scope constraint known to hold wherever a policy is asked: the index selects the policy only
/// for questions that satisfy it (see the `parts` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScopeHeld {
    /// Neither the principal's nor the resource's constraint is known to hold.
    Neither,
    /// The principal's constraint (`principal == P`, `principal in E`) holds.
    Principal,
    /// The resource's constraint (`resource == R`, `resource in E`) holds.
    Resource,
}

impl Observes {
    /// What `policy`, whose conditions read `reads`, observes. Its scope counts (`principal in ...`
    /// observes the principal, `resource is ...` the resource), except a constraint that `held`
    /// says holds wherever it is asked.
    fn of(policy: &Policy, reads: &Reads, held: ScopeHeld) -> Self {
        let label_text = |name: &str| name == "label" || name == "label_policy";
        let principal_scope = !matches!(policy.principal_constraint(), PrincipalConstraint::Any);
        let resource_scope = !matches!(policy.resource_constraint(), ResourceConstraint::Any);
        let principal = reads.everything || reads.principal || (principal_scope && held != ScopeHeld::Principal);
        Observes {
            principal,
            principal_nation: !principal && reads.principal_nation,
            resource: reads.everything || reads.resource || (resource_scope && held != ScopeHeld::Resource),
            label_text: reads.everything || reads.attributes.iter().any(|name| label_text(name)),
            label_facts: reads.everything || reads.context_attributes.iter().any(|name| !label_text(name)),
        }
    }
}

/// What one policy's conditions read, from its JSON form.
#[derive(Debug, Default)]
struct Reads {
    /// Attributes read or tested (`.`, `has`) on any expression.
    attributes: HashSet<String>,
    /// Attributes read or tested on `context` itself.
    context_attributes: HashSet<String>,
    /// `principal` appears in a condition other than as `principal.nation`.
    principal: bool,
    /// `principal.nation` is read or tested.
    principal_nation: bool,
    /// `resource` appears in a condition.
    resource: bool,
    /// `context` used other than by reading one of its attributes, or no JSON form: it may read anything.
    everything: bool,
}

impl Reads {
    fn of(policy: &Policy) -> Self {
        let mut reads = Reads::default();
        match policy.to_json() {
            Ok(json) => reads.scan(&json["conditions"]),
            Err(_) => reads.everything = true,
        }
        reads
    }

    fn scan(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                match map.get("Var").and_then(Value::as_str) {
                    // Reached only when `context` is not the record an attribute is read from.
                    Some("context") => self.everything = true,
                    Some("principal") => self.principal = true,
                    Some("resource") => self.resource = true,
                    _ => {}
                }
                for (key, inner) in map {
                    match (key.as_str(), inner) {
                        ("." | "has", Value::Object(access)) => self.access(access),
                        _ => self.scan(inner),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| self.scan(item)),
            _ => {}
        }
    }

    /// `{"left": EXPR, "attr": NAME}` (or, for `has`, a path of names).
    fn access(&mut self, access: &serde_json::Map<String, Value>) {
        let left = access.get("left").and_then(|left| left.get("Var")).and_then(Value::as_str);
        let on_context = left == Some("context");
        let names: Vec<&str> = match access.get("attr") {
            Some(Value::String(name)) => vec![name],
            Some(Value::Array(path)) => path.iter().filter_map(Value::as_str).collect(),
            _ => {
                self.everything = true;
                Vec::new()
            }
        };
        // `principal.nation` reads the nation alone: the principal is not scanned as used whole.
        let principal_nation = left == Some("principal") && names == ["nation"];
        self.principal_nation |= principal_nation;
        for name in names {
            self.attributes.insert(name.to_owned());
            if on_context {
                self.context_attributes.insert(name.to_owned());
            }
        }
        for (key, inner) in access {
            if key != "attr" && !(key == "left" && (on_context || principal_nation)) {
                self.scan(inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn observed(text: &str) -> Observed {
        let set = PolicySet::from_str(text).unwrap();
        let principal = EntityTypeName::from_str("Rampart::Principal").unwrap();
        let role = EntityTypeName::from_str("Rampart::Role").unwrap();
        Observed::of(&set, &principal, &role)
    }

    #[test]
    fn reading_other_attributes_observes_none_of_these() {
        let o = observed(
            r#"forbid (principal, action, resource) unless { context.releasable && principal.nation == "GBR" };
               forbid (principal, action, resource) when { context has label_level && resource.owner == "USA" };"#,
        );
        assert!(!o.label && !o.label_policy && !o.roles_attribute, "{o:?}");
    }

    #[test]
    fn every_way_of_reading_an_attribute_is_seen() {
        let cases = [
            (r#"forbid (principal, action, resource) when { context.label like "*ATOMAL*" };"#, "label"),
            (r#"forbid (principal, action, resource) when { context["label"] == "x" };"#, "label"),
            (r#"forbid (principal, action, resource) when { context has label };"#, "label"),
            (r#"forbid (principal, action, resource) when { context.label_policy == "NATO" };"#, "label_policy"),
            (r#"forbid (principal, action, resource) when { principal.roles.contains("x") };"#, "roles"),
            (r#"forbid (principal, action, resource) when { principal has roles };"#, "roles"),
            (
                r#"forbid (principal, action, resource) when { (if true then principal else principal).roles == [] };"#,
                "roles",
            ),
            (
                r#"forbid (principal, action, resource) when { (if true then context else context).label == "" };"#,
                "label",
            ),
        ];
        for (text, attribute) in cases {
            let o = observed(text);
            let seen = match attribute {
                "label" => o.label,
                "label_policy" => o.label_policy,
                _ => o.roles_attribute,
            };
            assert!(seen, "{text}: {o:?}");
        }
    }

    #[test]
    fn context_used_whole_observes_all_of_it() {
        for text in [
            r#"forbid (principal, action, resource) when { context == {} };"#,
            r#"forbid (principal, action, resource) when { [context].isEmpty() };"#,
            r#"forbid (principal, action, resource) when { (if true then context else {}).releasable };"#,
        ] {
            let o = observed(text);
            assert!(o.label && o.label_policy, "{text}: {o:?}");
        }
    }

    #[test]
    fn named_principals_and_roles_are_collected_from_scopes_and_conditions() {
        let o = observed(
            r#"forbid (principal == Rampart::Principal::"alice", action, resource);
               forbid (principal in Rampart::Role::"contractor", action, resource);
               forbid (principal, action, resource) when { principal in Rampart::Role::"trainee" || principal == Rampart::Principal::"bob" };"#,
        );
        let sorted = |set: &foldhash::HashSet<String>| {
            let mut ids: Vec<String> = set.iter().cloned().collect();
            ids.sort_unstable();
            ids
        };
        assert_eq!(sorted(&o.principals), ["alice", "bob"]);
        assert_eq!(sorted(&o.roles), ["contractor", "trainee"]);
        assert!(!o.roles_attribute);
    }

    fn observes(text: &str) -> Observes {
        let policy = PolicySet::from_str(text).unwrap().policies().next().unwrap().clone();
        Observes::of(&policy, &Reads::of(&policy), ScopeHeld::Neither)
    }

    #[test]
    fn each_policy_observes_only_what_its_scope_and_conditions_use() {
        let none = Observes {
            principal: false,
            principal_nation: false,
            resource: false,
            label_text: false,
            label_facts: false,
        };
        let cases = [
            (r#"permit (principal, action == Rampart::Action::"infer", resource);"#, none),
            (
                r#"forbid (principal, action, resource) unless { context.releasable };"#,
                Observes { label_facts: true, ..none },
            ),
            (
                r#"forbid (principal, action, resource) when { context.label like "*X*" };"#,
                Observes { label_text: true, ..none },
            ),
            (r#"permit (principal in Rampart::Role::"r", action, resource);"#, Observes { principal: true, ..none }),
            (r#"permit (principal, action, resource is Rampart::Model);"#, Observes { resource: true, ..none }),
            (
                r#"forbid (principal, action, resource) when { principal.nation != resource.owner };"#,
                Observes { principal_nation: true, resource: true, ..none },
            ),
            (
                r#"forbid (principal, action, resource) unless { principal has nation && principal.nation == "GBR" };"#,
                Observes { principal_nation: true, ..none },
            ),
            (
                r#"forbid (principal, action, resource) when { principal.nation == "GBR" && principal.roles.isEmpty() };"#,
                Observes { principal: true, ..none },
            ),
            (
                r#"forbid (principal, action, resource) when { principal.nation == "GBR" && principal in Rampart::Role::"r" };"#,
                Observes { principal: true, ..none },
            ),
            (
                r#"forbid (principal, action, resource) when { context has label_level && context.label_policy == "NATO" };"#,
                Observes { label_text: true, label_facts: true, ..none },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(observes(text), expected, "{text}");
        }
    }

    #[test]
    fn context_used_whole_makes_a_policy_observe_everything() {
        let all =
            Observes { principal: true, principal_nation: false, resource: true, label_text: true, label_facts: true };
        for text in [
            r#"forbid (principal, action, resource) when { context == {} };"#,
            r#"forbid (principal, action, resource) when { (if true then context else {}).releasable };"#,
        ] {
            assert_eq!(observes(text), all, "{text}");
        }
    }

    #[test]
    fn a_scope_constraint_that_holds_wherever_asked_is_not_observed() {
        let policy = |text: &str| PolicySet::from_str(text).unwrap().policies().next().unwrap().clone();
        let role = policy(r#"forbid (principal in Rampart::Role::"r", action, resource);"#);
        assert!(!Observes::of(&role, &Reads::of(&role), ScopeHeld::Principal).principal);
        assert!(Observes::of(&role, &Reads::of(&role), ScopeHeld::Resource).principal);
        // A condition that uses the principal still observes what it uses: the nation alone, or all of it.
        let nation = policy(
            r#"forbid (principal in Rampart::Role::"r", action, resource) unless { principal.nation == "GBR" };"#,
        );
        let observes = Observes::of(&nation, &Reads::of(&nation), ScopeHeld::Principal);
        assert!(!observes.principal && observes.principal_nation, "{observes:?}");
        let roles = policy(
            r#"forbid (principal in Rampart::Role::"r", action, resource) when { principal in Rampart::Role::"s" };"#,
        );
        assert!(Observes::of(&roles, &Reads::of(&roles), ScopeHeld::Principal).principal);
        let model = policy(r#"forbid (principal in Rampart::Role::"r", action, resource == Rampart::Model::"m");"#);
        let held = Observes::of(&model, &Reads::of(&model), ScopeHeld::Resource);
        assert!(held.principal && !held.resource, "{held:?}");
    }
}
