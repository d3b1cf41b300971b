//! A labelled document: its portions, each labelled, and the rule that ties
//! them to the document's label.

use rampart_labels::{Label, Policies};

/// The longest document id accepted.
const MAX_ID: usize = 128;

/// A portion of a document: one paragraph and its portion label.
#[derive(Debug, Clone, PartialEq)]
pub struct Portion {
    /// The portion's label (its portion marking, or the document's label when it had none).
    pub label: Label,
    /// The text, without its portion marking.
    pub text: String,
    /// Where it starts in its source: `file:line`.
    pub origin: String,
    /// Its text embedding, for dense retrieval (empty until computed).
    pub embedding: Vec<f32>,
}

/// A document of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Unique in its collection; letters, digits, `.`, `_` and `-`.
    pub id: String,
    /// The title, shown with citations to callers who may read `title_label`.
    pub title: String,
    /// The title's label: its portion marking, or the document's label.
    pub title_label: Label,
    /// The document's label, which dominates every portion's.
    pub label: Label,
    /// The portions, in order; at least one.
    pub portions: Vec<Portion>,
    /// Where the document was read from (a file, and a line for JSON Lines).
    pub origin: String,
    /// 1 for a new document, one more each time it is replaced.
    pub version: u64,
}

/// Why a document cannot be accepted; names where it was read from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct DocumentError {
    /// `file:line` of what is wrong.
    pub origin: String,
    /// What is wrong, and how to fix it.
    pub reason: String,
}

impl DocumentError {
    /// An error at `origin`.
    pub fn at(origin: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { origin: origin.into(), reason: reason.into() }
    }
}

/// Checks a document id: 1 to 128 letters, digits, `.`, `_` or `-`, not starting with `.`.
pub fn check_id(id: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > MAX_ID || id.starts_with('.') || !id.chars().all(allowed) {
        return Err(format!(
            "document id '{id}' must be 1 to {MAX_ID} letters, digits, '.', '_' or '-' (not starting with '.')"
        ));
    }
    Ok(())
}

impl Document {
    /// The opaque id of the portion at `index` (from 0): 16 hex digits of a
    /// SHA-256 over the document's id and version and the portion's place and
    /// text. Stable for a document version; tells nothing of the portion's
    /// place among others to whoever does not hold its text, so an answer
    /// naming it does not reveal how many portions a reader was not shown.
    pub fn portion_id(&self, index: usize) -> Option<String> {
        use sha2::Digest as _;
        let portion = self.portions.get(index)?;
        let mut hash = sha2::Sha256::new();
        for part in
            [self.id.as_bytes(), &self.version.to_be_bytes(), &(index as u64).to_be_bytes(), portion.text.as_bytes()]
        {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        Some(hash.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Refuses a title or portion whose text holds a marking (in any form the
    /// labels crate finds, disguised ones included) that its label does not
    /// dominate: the text says it is more sensitive than its marking does.
    /// Names the marking found, never the text.
    pub fn check_markings(&self, policies: &Policies) -> Result<(), DocumentError> {
        let title = (&self.title_label, &self.title, "the title", &self.origin);
        let portions = self.portions.iter().map(|p| (&p.label, &p.text, "the portion", &p.origin));
        for (label, text, what, origin) in std::iter::once(title).chain(portions) {
            if let Some(found) = policies.scan_markings(label.policy(), text)
                && !label.dominates(&found)
            {
                return Err(DocumentError::at(
                    origin,
                    format!(
                        "{what} holds the marking {} above its label {}; mark it at least as high",
                        found.portion(),
                        label.portion()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks what a document must be: a valid id, at least one portion, and
    /// a label that dominates its title's and every portion's.
    pub fn check(&self) -> Result<(), DocumentError> {
        check_id(&self.id).map_err(|reason| DocumentError::at(&self.origin, reason))?;
        if self.portions.is_empty() {
            return Err(DocumentError::at(&self.origin, format!("document '{}' has no portions", self.id)));
        }
        if !self.label.dominates(&self.title_label) {
            return Err(DocumentError::at(
                &self.origin,
                format!(
                    "the title is marked {} above the document's label {}",
                    self.title_label.portion(),
                    self.label.banner()
                ),
            ));
        }
        for portion in &self.portions {
            if !self.label.dominates(&portion.label) {
                return Err(DocumentError::at(
                    &portion.origin,
                    format!(
                        "portion {} ({}) is above its document's label {}; raise the document's label or \
                         correct the portion marking",
                        portion.label.portion(),
                        portion.label.banner(),
                        self.label.banner()
                    ),
                ));
            }
        }
        Ok(())
    }
}
