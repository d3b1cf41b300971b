//! A question as Cedar is asked it: only what the policies can observe.
//!
//! [`Question::new`] reduces a request to its observable parts (see
//! [`crate::observed`]): a principal no policy names becomes a stand-in with
//! its nation and roles, roles are sorted and kept only where a policy can tell
//! them apart, and label strings no policy reads are left blank. Questions are
//! borrowed views, so a memoised answer is found without allocating;
//! [`Asked`] is the owned form kept beside each answer.

use cedar_policy::RestrictedExpression;

use crate::observed::Observed;
use crate::{Action, LabelFacts, Resource, Subject};

/// The label facts Cedar sees, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Facts<'a> {
    pub(crate) clearance_dominates: bool,
    pub(crate) releasable: bool,
    pub(crate) accredited: bool,
    pub(crate) label_level: i64,
    pub(crate) label: &'a str,
    pub(crate) label_policy: &'a str,
}

impl Facts<'_> {
    pub(crate) fn to_owned(self) -> LabelFacts {
        LabelFacts {
            clearance_dominates: self.clearance_dominates,
            releasable: self.releasable,
            accredited: self.accredited,
            label_level: self.label_level,
            label: self.label.to_owned(),
            label_policy: self.label_policy.to_owned(),
        }
    }

    /// The facts as Cedar context attributes.
    pub(crate) fn to_context(self) -> Vec<(String, RestrictedExpression)> {
        vec![
            ("clearance_dominates".into(), RestrictedExpression::new_bool(self.clearance_dominates)),
            ("releasable".into(), RestrictedExpression::new_bool(self.releasable)),
            ("accredited".into(), RestrictedExpression::new_bool(self.accredited)),
            ("label_level".into(), RestrictedExpression::new_long(self.label_level)),
            ("label".into(), RestrictedExpression::new_string(self.label.to_owned())),
            ("label_policy".into(), RestrictedExpression::new_string(self.label_policy.to_owned())),
        ]
    }

    /// Whether `owned` holds these facts.
    pub(crate) fn is(&self, owned: &LabelFacts) -> bool {
        *self == Facts::of(owned)
    }

    fn of(facts: &LabelFacts) -> Facts<'_> {
        Facts {
            clearance_dominates: facts.clearance_dominates,
            releasable: facts.releasable,
            accredited: facts.accredited,
            label_level: facts.label_level,
            label: &facts.label,
            label_policy: &facts.label_policy,
        }
    }
}

/// Who asks, as Cedar sees them, borrowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Principal<'a> {
    pub(crate) id: &'a str,
    pub(crate) nation: &'a str,
    /// Sorted, without repeats.
    pub(crate) roles: Vec<&'a str>,
}

impl Principal<'_> {
    pub(crate) fn to_owned(&self) -> Subject {
        Subject {
            id: self.id.to_owned(),
            nation: self.nation.to_owned(),
            roles: self.roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    /// Whether `owned` is this principal.
    pub(crate) fn is(&self, owned: &Subject) -> bool {
        self.id == owned.id
            && self.nation == owned.nation
            && self.roles.len() == owned.roles.len()
            && self.roles.iter().zip(&owned.roles).all(|(a, b)| *a == b)
    }
}

/// One authorization question, reduced to what the policies observe. Only questions are
/// hashed (a cache stores an owned key under its question's hash), so owned forms need no `Hash`.
#[derive(Debug, Hash)]
pub(crate) struct Question<'a> {
    pub(crate) principal: Principal<'a>,
    pub(crate) action: Action,
    pub(crate) resource: &'a Resource,
    pub(crate) facts: Facts<'a>,
}

impl<'a> Question<'a> {
    /// `stand_in` is the id of every principal no policy names.
    pub(crate) fn new(
        observed: &Observed,
        stand_in: &'a str,
        subject: &'a Subject,
        action: Action,
        resource: &'a Resource,
        facts: &'a LabelFacts,
    ) -> Self {
        let id = if observed.principals.contains(&subject.id) { subject.id.as_str() } else { stand_in };
        let mut roles: Vec<&str> = subject
            .roles
            .iter()
            .map(String::as_str)
            .filter(|role| observed.roles_attribute || observed.roles.contains(*role))
            .collect();
        roles.sort_unstable();
        roles.dedup();
        let facts = Facts {
            label: if observed.label { &facts.label } else { "" },
            label_policy: if observed.label_policy { &facts.label_policy } else { "" },
            ..Facts::of(facts)
        };
        Question { principal: Principal { id, nation: &subject.nation, roles }, action, resource, facts }
    }

    pub(crate) fn to_owned(&self) -> Asked {
        Asked {
            subject: self.principal.to_owned(),
            action: self.action,
            resource: self.resource.clone(),
            facts: self.facts.to_owned(),
        }
    }

    /// Whether `asked` is this question.
    pub(crate) fn is(&self, asked: &Asked) -> bool {
        self.action == asked.action
            && self.resource == &asked.resource
            && self.facts.is(&asked.facts)
            && self.principal.is(&asked.subject)
    }
}

/// A question kept in memory: the owned form of a [`Question`].
pub(crate) struct Asked {
    subject: Subject,
    action: Action,
    resource: Resource,
    facts: LabelFacts,
}
