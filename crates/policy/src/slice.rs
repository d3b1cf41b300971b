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
//! slice. A policy whose scope names actions (`action ==`, `action in [...]`)
//! is left out of the slices of every other action.
//!
//! This is sound because Rampart's entity hierarchy is flat and complete: a
//! principal's only ancestors are its roles and its nation, a model's only
//! ancestor is its owner nation, nothing else has ancestors, and the schema
//! declares no action groups, so `action in [...]` means one of those actions.

use cedar_policy::{ActionConstraint, EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint};
use std::collections::HashMap;
use std::sync::Arc;

use crate::cache::Bounded;

/// The action, then the index entries a request matched, principal side (`true`) and resource
/// side (`false`): they alone decide a slice's content, so requests that match the same ones share it.
type SliceKey = (EntityUid, Vec<(bool, EntityUid)>);

/// A policy and the actions its scope names (`None`: any action).
#[derive(Clone)]
struct Scoped {
    policy: Policy,
    actions: Option<Vec<EntityUid>>,
}

impl Scoped {
    fn new(policy: &Policy) -> Self {
        let actions = match policy.action_constraint() {
            ActionConstraint::Any => None,
            ActionConstraint::Eq(action) => Some(vec![action]),
            ActionConstraint::In(actions) => Some(actions),
        };
        Scoped { policy: policy.clone(), actions }
    }

    fn applies_to(&self, action: &EntityUid) -> bool {
        self.actions.as_ref().is_none_or(|actions| actions.contains(action))
    }
}

/// Distinct slices kept before the memory is emptied.
const SLICES_KEPT: usize = 4096;

pub(crate) struct Slicer {
    everywhere: Vec<Scoped>,
    /// `principal ==` and `principal in` scopes, by the entity they name.
    by_principal: HashMap<EntityUid, Vec<Scoped>>,
    /// `resource ==` and `resource in` scopes, by the entity they name.
    by_resource: HashMap<EntityUid, Vec<Scoped>>,
    /// Slices already built, by the index entries that chose them.
    built: Bounded<SliceKey, Arc<PolicySet>>,
}

impl Slicer {
    pub(crate) fn new(policies: &PolicySet) -> Self {
        let mut slicer = Slicer {
            everywhere: Vec::new(),
            by_principal: HashMap::new(),
            by_resource: HashMap::new(),
            built: Bounded::new(SLICES_KEPT),
        };
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
            bucket.push(Scoped::new(policy));
        }
        slicer
    }

    /// The policies that can apply to `action` by a principal about a resource with these uids
    /// (themselves and their ancestors).
    pub(crate) fn slice(&self, action: &EntityUid, principal: &[EntityUid], resource: &[EntityUid]) -> Arc<PolicySet> {
        let mut matches = Vec::new();
        let matched = principal
            .iter()
            .filter(|uid| self.by_principal.contains_key(uid))
            .map(|uid| (true, uid))
            .chain(resource.iter().filter(|uid| self.by_resource.contains_key(uid)).map(|uid| (false, uid)));
        for (side, uid) in matched {
            // A role named twice must not add its policies twice.
            if !matches.iter().any(|(s, u)| *s == side && u == uid) {
                matches.push((side, uid.clone()));
            }
        }
        let key: SliceKey = (action.clone(), matches);
        let hash = self.built.hash(&key);
        if let Some(slice) = self.built.get(hash, |built| *built == key) {
            return slice;
        }
        let mut chosen: Vec<&Scoped> = self.everywhere.iter().collect();
        for (principal_side, uid) in &key.1 {
            let index = if *principal_side { &self.by_principal } else { &self.by_resource };
            chosen.extend(index.get(uid).into_iter().flatten());
        }
        let chosen = chosen.into_iter().filter(|scoped| scoped.applies_to(action)).map(|scoped| scoped.policy.clone());
        let slice = Arc::new(PolicySet::from_policies(chosen).expect("policy ids were unique in the full set"));
        self.built.insert(hash, key, Arc::clone(&slice));
        slice
    }
}
