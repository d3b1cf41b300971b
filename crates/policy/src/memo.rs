//! Memoised decisions.
//!
//! A decision is a pure function of the [`Question`] Cedar is asked: the
//! entities are built from its principal and resource alone, the Cedar context
//! from its facts alone, and the policy set never changes in place (a reload
//! builds a new [`crate::Authority`]). Repeated questions are therefore
//! answered from memory. Keys are compared in full, never by hash alone.

use crate::Decision;
use crate::cache::Bounded;
use crate::question::{Asked, Question};

/// Decisions kept before the memo is emptied and refilled.
const LIMIT: usize = 16_384;

pub(crate) struct Memo(Bounded<Asked, Decision>);

impl Default for Memo {
    fn default() -> Self {
        Memo(Bounded::new(LIMIT))
    }
}

impl Memo {
    /// The hash a question is remembered under, computed once per decision.
    pub(crate) fn hash(&self, question: &Question) -> u64 {
        self.0.hash(question)
    }

    pub(crate) fn get(&self, hash: u64, question: &Question) -> Option<Decision> {
        self.0.get(hash, |asked| question.is(asked))
    }

    pub(crate) fn put(&self, hash: u64, question: &Question, decision: &Decision) {
        self.0.insert(hash, question.to_owned(), decision.clone());
    }
}
