//! Policy parts: the policies that can apply to a question, in groups whose
//! answers can be reused.
//!
//! Cedar evaluates every policy it is given, at about a microsecond each here,
//! so a thousand operator policies would cost a millisecond per request. Most
//! operator policies name a model, a principal, a role or a nation in their
//! scope (`resource ==`, `principal ==`, `principal in Rampart::Role::"x"`,
//! `resource in Rampart::Nation::"USA"`); such a policy cannot apply to a
//! question about another one, so it is indexed under that name and left out
//! of other questions. Policies whose scope names none of these apply
//! everywhere. A policy whose scope names actions (`action ==`, `action in
//! [...]`) is left out of the questions of every other action.
//!
//! This is sound because Rampart's entity hierarchy is flat and complete: a
//! principal's only ancestors are its roles and its nation, a model's only
//! ancestor is its owner nation, nothing else has ancestors, and the schema
//! declares no action groups, so `action in [...]` means one of those actions.
//! A scope that names an entity of a type that cannot be an ancestor there
//! (`principal in Rampart::Model::"m"`) is kept everywhere, for Cedar to find false.
//!
//! Under each name and action, policies are grouped by what they observe
//! ([`Observes`]) into a *part*, with a Cedar policy set of its own, built at
//! load. A part's answer depends only on what it observes of a question, so
//! Cedar evaluates it once per distinct view (see `Answers` in the `memo` module); a
//! decision combines the answers of its parts as Cedar combines policies: any
//! forbid that holds refuses, else any permit that holds allows, else nothing
//! permits and the request is refused.

use std::collections::HashMap;

use cedar_policy::{ActionConstraint, EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint};

use crate::observed::{Observed, Observes, ScopeHeld};
use crate::question::Principal;
use crate::{ACTIONS, Action, Resource};

/// A group of policies with one name, one action and one [`Observes`]: evaluated together.
pub(crate) struct Part {
    pub(crate) policies: PolicySet,
    pub(crate) observes: Observes,
}

/// What a scope names, by the kind of entity and the side it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Named {
    Principal,
    Role,
    PrincipalNation,
    Model,
    OwnerNation,
    AuditLog,
    Site,
    Collection,
}

const NAMED_KINDS: usize = 8;

impl Named {
    /// What `principal == E` / `principal in E` names, by E's type, and whether the constraint holds
    /// wherever the name selects the policy.
    fn on_principal_side(uid: &EntityUid, equal: bool) -> Option<(Self, String, bool)> {
        let (kind, held) = match uid.type_name().to_string().as_str() {
            "Rampart::Principal" => (Named::Principal, true),
            "Rampart::Role" => (Named::Role, !equal),
            "Rampart::Nation" => (Named::PrincipalNation, !equal),
            _ => return None,
        };
        Some((kind, uid.id().unescaped().to_owned(), held))
    }

    /// What `resource == E` / `resource in E` names, by E's type, and whether the constraint holds
    /// wherever the name selects the policy.
    fn on_resource_side(uid: &EntityUid, equal: bool) -> Option<(Self, String, bool)> {
        let (kind, held) = match uid.type_name().to_string().as_str() {
            "Rampart::Model" => (Named::Model, true),
            "Rampart::Nation" => (Named::OwnerNation, !equal),
            "Rampart::AuditLog" => (Named::AuditLog, true),
            "Rampart::Site" => (Named::Site, true),
            "Rampart::Collection" => (Named::Collection, true),
            _ => return None,
        };
        Some((kind, uid.id().unescaped().to_owned(), held))
    }

    /// The name a policy's scope is indexed under (`None`: it applies everywhere), and the scope
    /// constraint known to hold wherever the index selects it.
    ///
    /// A question selects a name only if its principal is that principal or holds that role or
    /// nation as an ancestor, or its resource is that model, log or site or is owned by that
    /// nation. So `in` always holds there, `==` holds where the name is the entity itself (not an
    /// ancestor), and `is ... in` is left to Cedar.
    fn of(policy: &Policy) -> (Option<(Self, String)>, ScopeHeld) {
        let indexed = |named: Option<(Self, String, bool)>, side: ScopeHeld| match named {
            Some((kind, id, held)) => (Some((kind, id)), if held { side } else { ScopeHeld::Neither }),
            None => (None, ScopeHeld::Neither),
        };
        match policy.resource_constraint() {
            ResourceConstraint::Eq(r) => return indexed(Self::on_resource_side(&r, true), ScopeHeld::Resource),
            ResourceConstraint::In(r) => return indexed(Self::on_resource_side(&r, false), ScopeHeld::Resource),
            ResourceConstraint::IsIn(_, r) => return indexed(Self::on_resource_side(&r, false), ScopeHeld::Neither),
            ResourceConstraint::Any | ResourceConstraint::Is(_) => {}
        }
        match policy.principal_constraint() {
            PrincipalConstraint::Eq(p) => indexed(Self::on_principal_side(&p, true), ScopeHeld::Principal),
            PrincipalConstraint::In(p) => indexed(Self::on_principal_side(&p, false), ScopeHeld::Principal),
            PrincipalConstraint::IsIn(_, p) => indexed(Self::on_principal_side(&p, false), ScopeHeld::Neither),
            PrincipalConstraint::Any | PrincipalConstraint::Is(_) => (None, ScopeHeld::Neither),
        }
    }
}

/// What makes a part: the name its policies are indexed under (if any), the action, what they observe.
type PartKey = (Option<(Named, String)>, usize, Observes);

/// Part indices by action (`Action as usize`).
type ByAction = [Vec<usize>; ACTIONS];

/// Every loaded policy, in parts, indexed by the names their scopes use.
pub(crate) struct Parts {
    parts: Vec<Part>,
    everywhere: ByAction,
    /// By `Named as usize`, then the name's id.
    named: [foldhash::HashMap<String, ByAction>; NAMED_KINDS],
}

impl Parts {
    /// The parts of `policies`, which `observed` was made from; `actions` are the action uids,
    /// indexed by `Action as usize`.
    pub(crate) fn new(policies: &PolicySet, observed: &Observed, actions: &[EntityUid; ACTIONS]) -> Self {
        let mut groups: HashMap<PartKey, Vec<Policy>> = HashMap::new();
        for policy in policies.policies() {
            let (name, held) = Named::of(policy);
            let observes = observed.policy(policy, held);
            let applies = |action: &EntityUid| match policy.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(named) => named == *action,
                ActionConstraint::In(named) => named.contains(action),
            };
            for (index, _) in actions.iter().enumerate().filter(|(_, action)| applies(action)) {
                groups.entry((name.clone(), index, observes)).or_default().push(policy.clone());
            }
        }
        let mut parts = Parts { parts: Vec::new(), everywhere: Default::default(), named: Default::default() };
        for ((name, action, observes), policies) in groups {
            let by_action = match name {
                None => &mut parts.everywhere,
                Some((kind, id)) => parts.named[kind as usize].entry(id).or_default(),
            };
            by_action[action].push(parts.parts.len());
            let policies = PolicySet::from_policies(policies).expect("policy ids were unique in the full set");
            parts.parts.push(Part { policies, observes });
        }
        parts
    }

    /// The part with this index.
    pub(crate) fn get(&self, index: usize) -> &Part {
        &self.parts[index]
    }

    /// The indices of the parts that can apply to `action` by `principal` on `resource`.
    pub(crate) fn select(&self, action: Action, principal: &Principal, resource: &Resource) -> Vec<usize> {
        let action = action as usize;
        let mut selected = self.everywhere[action].clone();
        let mut add = |kind: Named, id: &str| {
            if let Some(by_action) = self.named[kind as usize].get(id) {
                selected.extend_from_slice(&by_action[action]);
            }
        };
        // Each name is looked up once: roles are deduplicated and the kinds are disjoint.
        add(Named::Principal, principal.id);
        principal.roles.iter().for_each(|role| add(Named::Role, role));
        add(Named::PrincipalNation, principal.nation);
        match resource {
            Resource::Model { id, owner, .. } => {
                add(Named::Model, id);
                if let Some(owner) = owner {
                    add(Named::OwnerNation, owner);
                }
            }
            Resource::AuditLog => add(Named::AuditLog, crate::AUDIT_LOG_ID),
            Resource::Site(id) => add(Named::Site, id),
            Resource::Collection(name) => add(Named::Collection, name),
        }
        selected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn indexed(scope: &str) -> (Option<(Named, String)>, ScopeHeld) {
        let set = PolicySet::from_str(&format!("forbid ({scope});")).unwrap();
        Named::of(set.policies().next().unwrap())
    }

    #[test]
    fn scopes_are_indexed_under_what_they_name_and_say_what_holds_there() {
        let named = |kind, id: &str| Some((kind, id.to_owned()));
        let cases = [
            ("principal, action, resource", None, ScopeHeld::Neither),
            ("principal is Rampart::Principal, action, resource", None, ScopeHeld::Neither),
            (
                r#"principal == Rampart::Principal::"alice", action, resource"#,
                named(Named::Principal, "alice"),
                ScopeHeld::Principal,
            ),
            (r#"principal in Rampart::Role::"ops", action, resource"#, named(Named::Role, "ops"), ScopeHeld::Principal),
            // A role or nation is an ancestor, never the principal itself: `==` never holds.
            (r#"principal == Rampart::Role::"ops", action, resource"#, named(Named::Role, "ops"), ScopeHeld::Neither),
            (
                r#"principal in Rampart::Nation::"DEU", action, resource"#,
                named(Named::PrincipalNation, "DEU"),
                ScopeHeld::Principal,
            ),
            (
                r#"principal is Rampart::Principal in Rampart::Role::"ops", action, resource"#,
                named(Named::Role, "ops"),
                ScopeHeld::Neither,
            ),
            // The resource side is the index when both sides name something.
            (
                r#"principal in Rampart::Role::"ops", action, resource == Rampart::Model::"m""#,
                named(Named::Model, "m"),
                ScopeHeld::Resource,
            ),
            (
                r#"principal, action, resource in Rampart::Nation::"USA""#,
                named(Named::OwnerNation, "USA"),
                ScopeHeld::Resource,
            ),
            (
                r#"principal, action, resource == Rampart::Nation::"USA""#,
                named(Named::OwnerNation, "USA"),
                ScopeHeld::Neither,
            ),
            (r#"principal, action, resource == Rampart::Site::"s1""#, named(Named::Site, "s1"), ScopeHeld::Resource),
            // A type that can be neither the entity nor its ancestor: kept everywhere, for Cedar.
            (r#"principal in Rampart::Model::"m", action, resource"#, None, ScopeHeld::Neither),
        ];
        for (scope, name, held) in cases {
            assert_eq!(indexed(scope), (name, held), "{scope}");
        }
    }
}
