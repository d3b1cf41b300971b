//! Label facts: what the label checks found, as Cedar context.

use rampart_labels::{Clearance, Label};

/// The results of the label checks for one request, handed to Cedar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFacts {
    /// The clearance holds the classification and every restrictive value.
    pub clearance_dominates: bool,
    /// The clearance holds a value of every permissive category.
    pub releasable: bool,
    /// The model's accreditation admits the label.
    pub accredited: bool,
    /// The classification's rank, 0 = lowest.
    pub label_level: i64,
    /// The label as a banner marking.
    pub label: String,
    /// The label's policy name.
    pub label_policy: String,
}

impl LabelFacts {
    /// Checks `label` against the caller's clearance and the model's accreditation ceiling.
    pub fn assess(clearance: &Clearance, label: &Label, accreditation: &Clearance) -> Self {
        // Each fact on its own: a label above the clearance but releasable to it is not "not releasable".
        Self {
            clearance_dominates: clearance.dominates(label).is_ok(),
            releasable: clearance.releasable(label).is_ok(),
            accredited: accreditation.check(label).is_ok(),
            label_level: label.level() as i64,
            label: label.banner(),
            label_policy: label.policy().name.clone(),
        }
    }

    /// Facts for actions that involve no label (`read_audit`, `admin`): every check passes vacuously.
    pub fn none() -> Self {
        Self {
            clearance_dominates: true,
            releasable: true,
            accredited: true,
            label_level: 0,
            label: String::new(),
            label_policy: String::new(),
        }
    }
}
