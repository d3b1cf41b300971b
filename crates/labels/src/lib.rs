//! Security labels for Rampart.
//!
//! A [`SecurityPolicy`] is loaded from a SPIF file (nothing about any one
//! policy is built in; the public NATO policy is shipped as the default, see
//! [`NATO_SPIF`]). A [`Label`] (policy, classification, category values) is
//! read and written in three interchangeable forms: STANAG 4774 XML, JSON and
//! display markings. A [`Clearance`] says what a principal may read, and
//! [`Clearance::check`] is the access decision. [`Label::join`] is the
//! high-water mark used to label answers, and [`Label::dominates`] the order
//! behind it. Markings found in free text raise a request's label
//! ([`Policies::scan_markings`], which also sees through disguised markings).

mod embedded;
mod json;
mod label;
mod marking;
mod scan;
mod spif;
mod stanag;

use std::sync::Arc;

use base64::Engine as _;

pub use json::{ClearanceJson, LabelJson};
pub use label::{Categories, Clearance, Denial, Label};
pub use scan::MarkingScanner;
pub use spif::{CategoryTag, Classification, SecurityPolicy, TagKind, TagValue};
pub use stanag::{CLEARANCE_NAMESPACE, LABEL_NAMESPACE};

/// The public NATO SPIF (v88, NCIA public release), the default policy.
pub const NATO_SPIF: &str = include_str!("../policies/nato-v88.spif");

/// Why a policy, label or clearance was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The SPIF could not be loaded.
    #[error("invalid SPIF: {0}")]
    Spif(String),
    /// A label or clearance is malformed or names something the policy lacks.
    #[error("{0}")]
    Invalid(String),
}

impl LabelError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        LabelError::Invalid(message.into())
    }
}

/// The security policies a site knows; the first is the default.
#[derive(Debug, Clone)]
pub struct Policies {
    policies: Vec<Arc<SecurityPolicy>>,
    /// One per policy, in the same order.
    scanners: Arc<[MarkingScanner]>,
}

impl Policies {
    /// A set of policies; fails when empty or when two share a name or id.
    pub fn new(policies: Vec<SecurityPolicy>) -> Result<Self, LabelError> {
        if policies.is_empty() {
            return Err(LabelError::Spif("at least one security policy is needed".into()));
        }
        for (i, a) in policies.iter().enumerate() {
            if let Some(b) = policies[..i].iter().find(|b| b.name == a.name || b.id == a.id) {
                return Err(LabelError::Spif(format!("policies '{}' and '{}' share a name or id", b.name, a.name)));
            }
        }
        Ok(Self::from_arcs(policies.into_iter().map(Arc::new).collect()))
    }

    fn from_arcs(policies: Vec<Arc<SecurityPolicy>>) -> Self {
        let scanners = policies.iter().map(|p| MarkingScanner::new(Arc::clone(p))).collect();
        Self { policies, scanners }
    }

    /// Just the shipped NATO policy.
    pub fn nato() -> Self {
        let policy = SecurityPolicy::from_spif(NATO_SPIF).expect("the shipped NATO SPIF parses");
        Self::from_arcs(vec![Arc::new(policy)])
    }

    /// The default policy (the first).
    pub fn default_policy(&self) -> &Arc<SecurityPolicy> {
        &self.policies[0]
    }

    /// Every policy.
    pub fn all(&self) -> &[Arc<SecurityPolicy>] {
        &self.policies
    }

    /// The policy with this name or OID (`urn:oid:` prefix allowed).
    pub fn find(&self, name_or_id: &str) -> Result<Arc<SecurityPolicy>, LabelError> {
        let key = name_or_id.trim();
        let oid = key.strip_prefix("urn:oid:").unwrap_or(key);
        self.policies
            .iter()
            .find(|p| p.name == key || p.id == oid)
            .cloned()
            .ok_or_else(|| LabelError::invalid(format!("unknown security policy '{key}'")))
    }

    /// The high-water mark of every marking of `policy` found in `text`,
    /// disguised or not (see [`MarkingScanner`]).
    pub fn scan_markings(&self, policy: &Arc<SecurityPolicy>, text: &str) -> Option<Label> {
        match self.scanners.iter().find(|s| s.policy().id == policy.id) {
            Some(scanner) => scanner.scan(text),
            // A policy from elsewhere is still read in every view, only more slowly.
            None => MarkingScanner::new(Arc::clone(policy)).scan(text),
        }
    }

    /// A label in any of its forms: JSON (`{...}`), STANAG 4774 XML (`<...>`),
    /// base64 of the XML, or a marking of the default policy.
    pub fn parse_label(&self, text: &str) -> Result<Label, LabelError> {
        let trimmed = text.trim();
        if trimmed.starts_with('{') {
            return self.parse_label_json(trimmed);
        }
        if trimmed.starts_with('<') {
            return self.parse_label_xml(trimmed);
        }
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(trimmed)
            && let Ok(xml) = String::from_utf8(bytes)
            && xml.trim_start().starts_with('<')
        {
            return self.parse_label_xml(&xml);
        }
        self.default_policy().parse_marking(trimmed)
    }

    /// A clearance in JSON or STANAG 4774 XML form.
    pub fn parse_clearance(&self, text: &str) -> Result<Clearance, LabelError> {
        let trimmed = text.trim();
        if trimmed.starts_with('<') { self.parse_clearance_xml(trimmed) } else { self.parse_clearance_json(trimmed) }
    }
}
