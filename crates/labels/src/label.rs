//! Labels and clearances, the access check between them, the high-water mark
//! and dominance.
//!
//! The access check follows the semantics of the open-source spiffing ACDF:
//! the clearance must hold the label's classification; every restrictive
//! value on the label must be held; for each permissive tag on the label at
//! least one of its values must be held; informative tags never block.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::{LabelError, SecurityPolicy, TagKind};

/// Category values by tag name.
pub type Categories = BTreeMap<String, BTreeSet<String>>;

/// A security label: a policy, a classification and category values.
///
/// Labels are kept in a normal form, so that equal meaning is equal value:
/// restrictive and informative tags with no values are dropped, and so are
/// permissive tags that list every value of the tag (they restrict nothing).
/// A permissive tag with no values stays: nobody may read that label.
#[derive(Clone)]
pub struct Label {
    policy: Arc<SecurityPolicy>,
    classification: usize,
    categories: Categories,
}

/// What a principal may read: classifications and category values held.
#[derive(Clone)]
pub struct Clearance {
    policy: Arc<SecurityPolicy>,
    classifications: BTreeSet<usize>,
    /// Shared, since a principal's clearance is copied with it on every
    /// request and a ceiling's holds every value of every tag.
    categories: Arc<Categories>,
}

/// Why a clearance may not read a label. Messages name the rule, never the
/// label's content beyond what the caller already sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The label and the clearance belong to different policies.
    #[error("the label's policy '{label}' is not the clearance's policy '{clearance}'")]
    PolicyMismatch {
        /// The label's policy.
        label: String,
        /// The clearance's policy.
        clearance: String,
    },
    /// The classification is not held.
    #[error("the classification {0} is not held")]
    Classification(String),
    /// A restrictive category value is not held.
    #[error("the restrictive category {tag} {value} is not held")]
    Restrictive {
        /// The tag.
        tag: String,
        /// The value not held.
        value: String,
    },
    /// No value of a permissive category is held.
    #[error("no value of the permissive category {0} is held")]
    Permissive(String),
}

fn resolve(
    policy: &SecurityPolicy,
    categories: BTreeMap<String, BTreeSet<String>>,
    what: &str,
) -> Result<Categories, LabelError> {
    for (tag_name, values) in &categories {
        let tag = policy.tag(tag_name).ok_or_else(|| {
            LabelError::invalid(format!("{what}: policy {} has no category '{tag_name}'", policy.name))
        })?;
        if let Some(unknown) = values.iter().find(|v| tag.value(v).is_none()) {
            return Err(LabelError::invalid(format!("{what}: category '{tag_name}' has no value '{unknown}'")));
        }
    }
    Ok(categories)
}

impl Label {
    /// A label of `policy`, checking every name against it.
    pub fn new(
        policy: Arc<SecurityPolicy>,
        classification: &str,
        categories: BTreeMap<String, BTreeSet<String>>,
    ) -> Result<Self, LabelError> {
        let index = policy.classification_index(classification).ok_or_else(|| {
            LabelError::invalid(format!("policy {} has no classification '{classification}'", policy.name))
        })?;
        let categories = resolve(&policy, categories, "label")?;
        Ok(Self::normal(policy, index, categories))
    }

    /// The lowest label of a policy: its lowest classification, no categories.
    pub fn lowest(policy: Arc<SecurityPolicy>) -> Self {
        Self { policy, classification: 0, categories: Categories::new() }
    }

    pub(crate) fn normal(policy: Arc<SecurityPolicy>, classification: usize, mut categories: Categories) -> Self {
        categories.retain(|name, values| match policy.tag(name) {
            Some(tag) if tag.kind == TagKind::Permissive => values.len() < tag.values.len(),
            Some(_) => !values.is_empty(),
            None => false,
        });
        Self { policy, classification, categories }
    }

    /// The policy.
    pub fn policy(&self) -> &Arc<SecurityPolicy> {
        &self.policy
    }

    /// The classification's name.
    pub fn classification(&self) -> &str {
        &self.policy.classifications[self.classification].name
    }

    /// The classification's index in the policy (higher is more sensitive).
    pub fn level(&self) -> usize {
        self.classification
    }

    /// Category values by tag.
    pub fn categories(&self) -> &Categories {
        &self.categories
    }

    fn kind(&self, tag: &str) -> TagKind {
        self.policy.tag(tag).map_or(TagKind::Informative, |t| t.kind)
    }

    /// The high-water mark of two labels: the higher classification, the union
    /// of restrictive and informative values, and the intersection of
    /// permissive values (a tag absent from one label restricts nothing there).
    pub fn join(&self, other: &Label) -> Result<Label, LabelError> {
        if self.policy.id != other.policy.id {
            return Err(LabelError::invalid(format!(
                "labels of different policies ({} and {}) cannot be combined",
                self.policy.name, other.policy.name
            )));
        }
        let mut categories = self.categories.clone();
        for (tag, values) in &other.categories {
            match (self.kind(tag), categories.get_mut(tag)) {
                (_, None) => {
                    categories.insert(tag.clone(), values.clone());
                }
                (TagKind::Permissive, Some(mine)) => mine.retain(|v| values.contains(v)),
                (_, Some(mine)) => mine.extend(values.iter().cloned()),
            }
        }
        let classification = self.classification.max(other.classification);
        Ok(Label::normal(Arc::clone(&self.policy), classification, categories))
    }

    /// Whether this label is at least as sensitive as `other`: a classification
    /// as high, every restrictive and informative value of `other`, and for each permissive tag
    /// a release no wider than `other`'s. This is the order whose least upper
    /// bound is [`Label::join`]. Labels of different policies are incomparable.
    pub fn dominates(&self, other: &Label) -> bool {
        if self.policy.id != other.policy.id || self.classification < other.classification {
            return false;
        }
        let tags = self.categories.keys().chain(other.categories.keys());
        tags.into_iter().all(|tag| {
            let (mine, theirs) = (self.categories.get(tag), other.categories.get(tag));
            match self.kind(tag) {
                TagKind::Permissive => match (mine, theirs) {
                    (_, None) => true,
                    (None, Some(_)) => false,
                    (Some(mine), Some(theirs)) => mine.is_subset(theirs),
                },
                // Informative values never affect access, but the join keeps
                // them all, so the order must too (or it is no partial order).
                TagKind::Restrictive | TagKind::Informative => {
                    theirs.is_none_or(|t| mine.is_some_and(|m| m.is_superset(t)))
                }
            }
        })
    }
}

impl PartialEq for Label {
    fn eq(&self, other: &Self) -> bool {
        self.policy.id == other.policy.id
            && self.classification == other.classification
            && self.categories == other.categories
    }
}

impl Eq for Label {}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Label({} {} {:?})", self.policy.name, self.classification(), self.categories)
    }
}

impl Clearance {
    /// A clearance of `policy`. A single classification stands for itself and
    /// every classification below it; a list holds exactly what it names.
    pub fn new(
        policy: Arc<SecurityPolicy>,
        classifications: &[String],
        categories: BTreeMap<String, BTreeSet<String>>,
    ) -> Result<Self, LabelError> {
        let mut held = BTreeSet::new();
        for name in classifications {
            let index = policy.classification_index(name).ok_or_else(|| {
                LabelError::invalid(format!("clearance: policy {} has no classification '{name}'", policy.name))
            })?;
            held.insert(index);
        }
        // One distinct level (however often it is named) stands for itself and those below,
        // so that every clearance has one meaning and its emitted form reads back the same.
        if let (1, Some(&top)) = (held.len(), held.iter().next()) {
            held.extend(0..top);
        }
        if held.is_empty() {
            return Err(LabelError::invalid("clearance: no classification is held"));
        }
        let categories = resolve(&policy, categories, "clearance")?;
        Ok(Self { policy, classifications: held, categories: Arc::new(categories) })
    }

    /// The clearance that reads exactly what a ceiling label (a site's or a
    /// model's accreditation) admits: every classification up to the ceiling's,
    /// its restrictive values, its permissive values, and every value of the
    /// permissive tags it does not restrict.
    pub fn from_ceiling(ceiling: &Label) -> Self {
        let policy = Arc::clone(&ceiling.policy);
        let mut categories = ceiling.categories.clone();
        for tag in policy.tags.iter().filter(|t| t.kind == TagKind::Permissive) {
            categories.entry(tag.name.clone()).or_insert_with(|| tag.values.iter().map(|v| v.name.clone()).collect());
        }
        Self { classifications: (0..=ceiling.classification).collect(), categories: Arc::new(categories), policy }
    }

    /// The policy.
    pub fn policy(&self) -> &Arc<SecurityPolicy> {
        &self.policy
    }

    /// Names of the classifications held, lowest first.
    pub fn classifications(&self) -> Vec<&str> {
        self.classifications.iter().map(|&i| self.policy.classifications[i].name.as_str()).collect()
    }

    /// Category values held, by tag.
    pub fn categories(&self) -> &Categories {
        &self.categories
    }

    /// Narrows one tag to the values also in `allowed` (e.g. releasability to
    /// the caller's own nation, whatever else a directory entry says).
    pub fn restrict(&mut self, tag: &str, allowed: &BTreeSet<String>) {
        let held = Arc::make_mut(&mut self.categories).entry(tag.to_owned()).or_default();
        held.retain(|v| allowed.contains(v));
    }

    /// The access check: `Ok` when this clearance may read `label`. Checks run
    /// in order (policy, classification, restrictive, permissive) and the first
    /// failure is returned.
    pub fn check(&self, label: &Label) -> Result<(), Denial> {
        self.dominates(label)?;
        self.releasable(label)
    }

    /// Whether this clearance holds the label's classification and every
    /// restrictive value (its releasability aside).
    pub fn dominates(&self, label: &Label) -> Result<(), Denial> {
        self.same_policy(label)?;
        if !self.classifications.contains(&label.classification) {
            return Err(Denial::Classification(label.classification().to_owned()));
        }
        for (tag, values) in label.categories.iter().filter(|(t, _)| label.kind(t) == TagKind::Restrictive) {
            let held = self.categories.get(tag);
            if let Some(missing) = values.iter().find(|v| !held.is_some_and(|h| h.contains(*v))) {
                return Err(Denial::Restrictive { tag: tag.clone(), value: missing.clone() });
            }
        }
        Ok(())
    }

    /// Whether the label is releasable to this clearance: it holds a value of
    /// every permissive category (its classification aside).
    pub fn releasable(&self, label: &Label) -> Result<(), Denial> {
        self.same_policy(label)?;
        for (tag, values) in label.categories.iter().filter(|(t, _)| label.kind(t) == TagKind::Permissive) {
            let held = self.categories.get(tag);
            if !values.iter().any(|v| held.is_some_and(|h| h.contains(v))) {
                return Err(Denial::Permissive(tag.clone()));
            }
        }
        Ok(())
    }

    fn same_policy(&self, label: &Label) -> Result<(), Denial> {
        if self.policy.id != label.policy.id {
            return Err(Denial::PolicyMismatch {
                label: label.policy.name.clone(),
                clearance: self.policy.name.clone(),
            });
        }
        Ok(())
    }
}

impl fmt::Debug for Clearance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clearance({} {:?} {:?})", self.policy.name, self.classifications(), self.categories)
    }
}
