//! Memoised decisions.
//!
//! A decision is a pure function of (subject, action, resource, label facts):
//! the entities are built from the subject and the resource alone, the Cedar
//! context from the facts alone, and the policy set never changes in place (a
//! reload builds a new [`crate::Authority`]). Repeated questions are therefore
//! answered from memory. Keys are compared in full, never by hash alone.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Mutex;

use crate::{Action, Decision, LabelFacts, Resource, Subject};

/// Decisions kept before the memo is emptied and refilled.
const LIMIT: usize = 16_384;

type Key = (Subject, Action, Resource, LabelFacts);

#[derive(Default)]
pub(crate) struct Memo {
    hasher: RandomState,
    entries: Mutex<HashMap<u64, Vec<(Key, Decision)>>>,
}

impl Memo {
    fn hash(&self, subject: &Subject, action: Action, resource: &Resource, facts: &LabelFacts) -> u64 {
        self.hasher.hash_one((subject, action, resource, facts))
    }

    pub(crate) fn get(
        &self,
        subject: &Subject,
        action: Action,
        resource: &Resource,
        facts: &LabelFacts,
    ) -> Option<Decision> {
        let hash = self.hash(subject, action, resource, facts);
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&hash)?.iter().find_map(|((s, a, r, f), decision)| {
            (s == subject && *a == action && r == resource && f == facts).then(|| decision.clone())
        })
    }

    pub(crate) fn put(
        &self,
        subject: &Subject,
        action: Action,
        resource: &Resource,
        facts: &LabelFacts,
        decision: &Decision,
    ) {
        let hash = self.hash(subject, action, resource, facts);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= LIMIT {
            entries.clear();
        }
        let key = (subject.clone(), action, resource.clone(), facts.clone());
        entries.entry(hash).or_default().push((key, decision.clone()));
    }
}

impl Hash for LabelFacts {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.clearance_dominates, self.releasable, self.accredited, self.label_level).hash(state);
        self.label.hash(state);
        self.label_policy.hash(state);
    }
}
