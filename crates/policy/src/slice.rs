//! Policy slicing: only the policies whose scope can match a request are
//! handed to Cedar.
//!
//! Cedar evaluates every policy it is given, so a thousand operator policies
//! cost a thousand evaluations per request. Most operator policies name a
//! model, a principal, a role or a nation in their scope (`resource ==`,
//! `principal ==`, `principal in Rampart::Role::"x"`, `resource in
//! Rampart::Nation::"USA"`); such a policy cannot apply to a request about
//! another one, so it is indexed under that name and left out of other
//! requests' slices. Policies whose scope names none of these are in every
//! slice.
//!
//! This is sound because Rampart's entity hierarchy is flat and complete: a
//! principal's only ancestors are its roles and its nation, a model's only
//! ancestor is its owner nation, and nothing else has ancestors.

use cedar_policy::{EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint};
use std::collections::HashMap;

#[derive(Default)]
pub(crate) struct Slicer {
    everywhere: Vec<Policy>,
    /// `principal ==` and `principal in` scopes, by the entity they name.
    by_principal: HashMap<EntityUid, Vec<Policy>>,
    /// `resource ==` and `resource in` scopes, by the entity they name.
    by_resource: HashMap<EntityUid, Vec<Policy>>,
}

impl Slicer {
    pub(crate) fn new(policies: &PolicySet) -> Self {
        let mut slicer = Slicer::default();
        for policy in policies.policies() {
            let bucket = match (policy.resource_constraint(), policy.principal_constraint()) {
                (ResourceConstraint::Eq(r) | ResourceConstraint::In(r) | ResourceConstraint::IsIn(_, r), _) => {
                    slicer.by_resource.entry(r).or_default()
                }
                (_, PrincipalConstraint::Eq(p) | PrincipalConstraint::In(p) | PrincipalConstraint::IsIn(_, p)) => {
                    slicer.by_principal.entry(p).or_default()
                }
                _ => &mut slicer.everywhere,
            };
            bucket.push(policy.clone());
        }
        slicer
    }

    /// The policies that may apply to a request by a principal (`principal`:
    /// itself and its ancestors) about a resource (itself and its ancestors).
    pub(crate) fn slice(&self, principal: &[EntityUid], resource: &[EntityUid]) -> PolicySet {
        let mut chosen: Vec<Policy> = self.everywhere.clone();
        for uid in principal {
            chosen.extend(self.by_principal.get(uid).into_iter().flatten().cloned());
        }
        for uid in resource {
            chosen.extend(self.by_resource.get(uid).into_iter().flatten().cloned());
        }
        PolicySet::from_policies(chosen).expect("policy ids were unique in the full set")
    }
}
