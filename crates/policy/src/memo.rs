//! Memoised decisions, and memoised answers of policy parts.
//!
//! A decision is a pure function of the [`Question`] Cedar is asked: the
//! entities are built from its principal and resource alone, the Cedar context
//! from its facts alone, and the policy set never changes in place (a reload
//! builds a new [`crate::Authority`]). Repeated questions are therefore
//! answered from memory. Keys are compared in full, never by hash alone.

use std::sync::Arc;

use crate::cache::Bounded;
use crate::observed::Observes;
use crate::question::{Asked, Principal, Question};
use crate::{Decision, Resource, Subject};

/// Decisions kept; beyond that the oldest is dropped.
const LIMIT: usize = 16_384;

pub(crate) struct Memo(Bounded<Asked, Decision>);

impl Default for Memo {
    fn default() -> Self {
        Memo(Bounded::new(LIMIT))
    }
}

impl Memo {
    /// The decision remembered for `question`, else `decide`'s, remembered unless it failed.
    pub(crate) fn get_or_decide(
        &self,
        question: &Question,
        decide: impl FnOnce() -> Result<Decision, ()>,
    ) -> Result<Decision, ()> {
        self.0.get_or_try_insert(question, |asked| question.is(asked), || question.to_owned(), decide)
    }
}

/// How a part answered: which of its policies held, and their effect.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// These forbids hold.
    Forbid(Arc<[String]>),
    /// No forbid holds; these permits do.
    Permit(Arc<[String]>),
    /// None of its policies holds.
    Neither,
}

/// Parts' answers kept; beyond that the oldest is dropped.
const ANSWERS_LIMIT: usize = 16_384;

/// Each part's answers, by what the part observes of the question it answered.
///
/// A part's answer is a pure function of what its policies observe (see
/// [`Observes`]), so a question that differs from an earlier one only in what a
/// part does not observe gets that part's earlier answer.
pub(crate) struct Answers(Bounded<Seen, Answer>);

impl Default for Answers {
    fn default() -> Self {
        Answers(Bounded::new(ANSWERS_LIMIT))
    }
}

impl Answers {
    /// Part `part`'s answer remembered for what it observes of `question`, else `ask`'s,
    /// remembered unless it failed.
    pub(crate) fn get_or_ask(
        &self,
        part: usize,
        observes: Observes,
        question: &Question,
        ask: impl FnOnce() -> Result<Answer, ()>,
    ) -> Result<Answer, ()> {
        let sight = Sight::of(part, observes, question);
        self.0.get_or_try_insert(&sight, |seen| sight.is(seen), || sight.to_owned(), ask)
    }
}

/// What a part observes of a question, borrowed: the parts it does not observe are `None`.
#[derive(Hash)]
struct Sight<'q, 'a> {
    part: usize,
    principal: Option<&'q Principal<'a>>,
    nation: Option<&'a str>,
    resource: Option<&'a Resource>,
    label_text: Option<(&'a str, &'a str)>,
    label_facts: Option<(bool, bool, bool, i64)>,
}

/// The owned form of a [`Sight`], kept beside its answer.
pub(crate) struct Seen {
    part: usize,
    principal: Option<Subject>,
    nation: Option<String>,
    resource: Option<Resource>,
    label_text: Option<(String, String)>,
    label_facts: Option<(bool, bool, bool, i64)>,
}

impl<'q, 'a> Sight<'q, 'a> {
    fn of(part: usize, observes: Observes, question: &'q Question<'a>) -> Self {
        let facts = &question.facts;
        Sight {
            part,
            principal: observes.principal.then_some(&question.principal),
            nation: observes.principal_nation.then_some(question.principal.nation),
            resource: observes.resource.then_some(question.resource),
            label_text: observes.label_text.then_some((facts.label, facts.label_policy)),
            label_facts: observes.label_facts.then_some((
                facts.clearance_dominates,
                facts.releasable,
                facts.accredited,
                facts.label_level,
            )),
        }
    }

    fn to_owned(&self) -> Seen {
        Seen {
            part: self.part,
            principal: self.principal.map(Principal::to_owned),
            nation: self.nation.map(str::to_owned),
            resource: self.resource.cloned(),
            label_text: self.label_text.map(|(label, policy)| (label.to_owned(), policy.to_owned())),
            label_facts: self.label_facts,
        }
    }

    fn is(&self, seen: &Seen) -> bool {
        self.part == seen.part
            && self.label_facts == seen.label_facts
            && self.resource == seen.resource.as_ref()
            && self.nation == seen.nation.as_deref()
            && match (self.label_text, &seen.label_text) {
                (None, None) => true,
                (Some((label, policy)), Some((seen_label, seen_policy))) => {
                    label == seen_label && policy == seen_policy
                }
                _ => false,
            }
            && match (self.principal, &seen.principal) {
                (None, None) => true,
                (Some(principal), Some(subject)) => principal.is(subject),
                _ => false,
            }
    }
}
