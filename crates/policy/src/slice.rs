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
use std::sync::{Arc, Mutex};

/// The index entries a request matched, principal side (`true`) and resource side (`false`):
/// they alone decide a slice's content, so requests that match the same ones share it.
type SliceKey = Vec<(bool, EntityUid)>;

/// Distinct slices kept before the memory is emptied.
const SLICES_KEPT: usize = 4096;

#[derive(Default)]
pub(crate) struct Slicer {
    everywhere: Vec<Policy>,
    /// `principal ==` and `principal in` scopes, by the entity they name.
    by_principal: HashMap<EntityUid, Vec<Policy>>,
    /// `resource ==` and `resource in` scopes, by the entity they name.
    by_resource: HashMap<EntityUid, Vec<Policy>>,
    /// Slices already built, by the index entries that chose them.
    built: Mutex<HashMap<SliceKey, Arc<PolicySet>>>,
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
    /// The policies that can apply to a principal and resource with these uids (themselves and their ancestors).
    pub(crate) fn slice(&self, principal: &[EntityUid], resource: &[EntityUid]) -> Arc<PolicySet> {
        let mut key: SliceKey = Vec::new();
        let matched = principal
            .iter()
            .filter(|uid| self.by_principal.contains_key(uid))
            .map(|uid| (true, uid))
            .chain(resource.iter().filter(|uid| self.by_resource.contains_key(uid)).map(|uid| (false, uid)));
        for (side, uid) in matched {
            // A role named twice must not add its policies twice.
            if !key.iter().any(|(s, u)| *s == side && u == uid) {
                key.push((side, uid.clone()));
            }
        }
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        if let Some(slice) = self.built.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Arc::clone(slice);
        }
        let mut chosen: Vec<Policy> = self.everywhere.clone();
        for (principal_side, uid) in &key {
            let index = if *principal_side { &self.by_principal } else { &self.by_resource };
            chosen.extend(index.get(uid).into_iter().flatten().cloned());
        }
        let slice = Arc::new(PolicySet::from_policies(chosen).expect("policy ids were unique in the full set"));
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if built.len() >= SLICES_KEPT {
            built.clear();
        }
        built.insert(key, Arc::clone(&slice));
        slice
    }
}
