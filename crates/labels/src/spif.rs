//! Loading a security policy from a SPIF file (xmlspif.org schema, v2.x).
//!
//! Only what label checks and markings need is kept: the policy's name and
//! id, its classifications in hierarchy order with their marking phrases, and
//! its category tags with their type, values, marking phrases and qualifiers.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::LabelError;

/// How a category tag takes part in access decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TagKind {
    /// Every value on a label must be held.
    Restrictive,
    /// At least one value on a label must be held.
    Permissive,
    /// Never affects access.
    Informative,
}

impl TagKind {
    /// The STANAG 4774 `Type` attribute for this kind.
    pub fn stanag_name(self) -> &'static str {
        match self {
            TagKind::Restrictive => "RESTRICTIVE",
            TagKind::Permissive => "PERMISSIVE",
            TagKind::Informative => "INFORMATIVE",
        }
    }
}

/// One classification level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// Its name, e.g. `SECRET`.
    pub name: String,
    /// Its position in the hierarchy (higher is more sensitive).
    pub hierarchy: u32,
    /// Banner phrases (`pageTopBottom`), the first one preferred.
    pub banner: Vec<String>,
    /// Portion marking phrase, e.g. `NS`.
    pub portion: Option<String>,
}

/// One value of a category tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagValue {
    /// Its name, as used in labels (e.g. `GBR`).
    pub name: String,
    /// Marking phrases, the first one preferred.
    pub phrases: Vec<String>,
}

/// One category tag, e.g. `Releasable To`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryTag {
    /// Its name, as used in labels.
    pub name: String,
    /// The OID of its tag set.
    pub set_id: String,
    /// How it affects access.
    pub kind: TagKind,
    /// Its values in SPIF order.
    pub values: Vec<TagValue>,
    /// Marking text before the values (e.g. `Releasable To`).
    pub prefix: Option<String>,
    /// Marking text between values (default a space).
    pub separator: String,
    /// Marking text after the values (e.g. `Only`).
    pub suffix: Option<String>,
}

impl CategoryTag {
    /// The value with this name.
    pub fn value(&self, name: &str) -> Option<&TagValue> {
        self.values.iter().find(|v| v.name == name)
    }

    /// Whether markings show this tag before the classification (a permissive
    /// tag with no marking qualifier, such as NATO's `Context`).
    pub fn marks_before_classification(&self) -> bool {
        self.kind == TagKind::Permissive && self.prefix.is_none() && self.suffix.is_none()
    }
}

/// A security policy loaded from a SPIF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityPolicy {
    /// Its name, e.g. `NATO`.
    pub name: String,
    /// Its OID, e.g. `1.3.26.1.3.1`.
    pub id: String,
    /// Classifications, lowest first.
    pub classifications: Vec<Classification>,
    /// Category tags in SPIF order.
    pub tags: Vec<CategoryTag>,
}

/// The largest SPIF accepted, in bytes.
const MAX_SPIF_BYTES: usize = 16 * 1024 * 1024;

impl SecurityPolicy {
    /// Parses a SPIF document.
    pub fn from_spif(xml: &str) -> Result<Self, LabelError> {
        if xml.len() > MAX_SPIF_BYTES {
            return Err(LabelError::Spif(format!("the file is larger than {MAX_SPIF_BYTES} bytes")));
        }
        let policy = SpifParser::default().parse(xml)?;
        policy.validate()?;
        Ok(policy)
    }

    /// The index (in [`Self::classifications`]) of the classification with this name.
    pub fn classification_index(&self, name: &str) -> Option<usize> {
        self.classifications.iter().position(|c| c.name == name)
    }

    /// The category tag with this name.
    pub fn tag(&self, name: &str) -> Option<&CategoryTag> {
        self.tags.iter().find(|t| t.name == name)
    }

    fn validate(&self) -> Result<(), LabelError> {
        let fail = |m: String| Err(LabelError::Spif(m));
        if self.name.is_empty() || self.id.is_empty() {
            return fail("no securityPolicyId with a name and an id".into());
        }
        if self.classifications.is_empty() {
            return fail("no securityClassification".into());
        }
        for pair in self.classifications.windows(2) {
            if pair[0].hierarchy == pair[1].hierarchy {
                return fail(format!(
                    "classifications '{}' and '{}' share hierarchy {}",
                    pair[0].name, pair[1].name, pair[0].hierarchy
                ));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for tag in &self.tags {
            if !names.insert(tag.name.as_str()) {
                return fail(format!("two category tags are named '{}'", tag.name));
            }
        }
        Ok(())
    }
}

/// Event-driven SPIF reader: remembers where it is in the element tree.
#[derive(Default)]
struct SpifParser {
    policy_name: String,
    policy_id: String,
    classifications: Vec<Classification>,
    tags: Vec<CategoryTag>,
    set: Option<(String, String)>,
    tag: Option<CategoryTag>,
    value: Option<(String, Vec<String>)>,
    /// A marking phrase waiting for its `<code>`.
    phrase: Option<String>,
    in_code: bool,
    in_qualifier: bool,
    in_classification: bool,
    codes: Vec<String>,
}

fn attributes(element: &BytesStart) -> Result<BTreeMap<String, String>, LabelError> {
    let mut out = BTreeMap::new();
    for attribute in element.attributes() {
        let attribute = attribute.map_err(|e| LabelError::Spif(format!("bad attribute: {e}")))?;
        let key = String::from_utf8_lossy(attribute.key.local_name().as_ref()).into_owned();
        let value = attribute.unescape_value().map_err(|e| LabelError::Spif(format!("bad attribute value: {e}")))?;
        out.insert(key, value.into_owned());
    }
    Ok(out)
}

fn required(attrs: &BTreeMap<String, String>, key: &str, element: &str) -> Result<String, LabelError> {
    attrs.get(key).cloned().ok_or_else(|| LabelError::Spif(format!("<{element}> has no '{key}' attribute")))
}

impl SpifParser {
    fn parse(mut self, xml: &str) -> Result<SecurityPolicy, LabelError> {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().trim_text(true);
        loop {
            let position = reader.buffer_position();
            let event = reader
                .read_event()
                .map_err(|e| LabelError::Spif(format!("malformed XML near byte {position}: {e}")))?;
            match event {
                Event::DocType(_) => return Err(LabelError::Spif("DOCTYPE declarations are not accepted".into())),
                Event::Start(e) => self.open(&e, false)?,
                Event::Empty(e) => self.open(&e, true)?,
                Event::End(e) => self.close(e.local_name().as_ref())?,
                Event::Text(t) if self.in_code => {
                    let text = t.decode().map_err(|e| LabelError::Spif(format!("bad text: {e}")))?;
                    self.codes.push(text.trim().to_owned());
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if self.policy_name.is_empty() {
            return Err(LabelError::Spif("not a SPIF: no securityPolicyId found".into()));
        }
        self.classifications.sort_by_key(|c| c.hierarchy);
        Ok(SecurityPolicy {
            name: self.policy_name,
            id: self.policy_id,
            classifications: self.classifications,
            tags: self.tags,
        })
    }

    fn open(&mut self, element: &BytesStart, empty: bool) -> Result<(), LabelError> {
        let name = element.local_name();
        match name.as_ref() {
            b"securityPolicyId" => {
                let attrs = attributes(element)?;
                self.policy_name = required(&attrs, "name", "securityPolicyId")?;
                self.policy_id = required(&attrs, "id", "securityPolicyId")?;
            }
            b"securityClassification" => {
                let attrs = attributes(element)?;
                let hierarchy = required(&attrs, "hierarchy", "securityClassification")?;
                self.classifications.push(Classification {
                    name: required(&attrs, "name", "securityClassification")?,
                    hierarchy: hierarchy.parse().map_err(|_| {
                        LabelError::Spif(format!("securityClassification hierarchy '{hierarchy}' is not a number"))
                    })?,
                    banner: Vec::new(),
                    portion: None,
                });
                self.in_classification = !empty;
            }
            b"securityCategoryTagSet" => {
                let attrs = attributes(element)?;
                self.set = Some((
                    required(&attrs, "name", "securityCategoryTagSet")?,
                    required(&attrs, "id", "securityCategoryTagSet")?,
                ));
            }
            b"securityCategoryTag" => {
                let attrs = attributes(element)?;
                let Some((_, set_id)) = self.set.clone() else {
                    return Err(LabelError::Spif("securityCategoryTag outside a securityCategoryTagSet".into()));
                };
                let kind = match required(&attrs, "tagType", "securityCategoryTag")?.as_str() {
                    "restrictive" => TagKind::Restrictive,
                    "permissive" => TagKind::Permissive,
                    "enumerated" => match attrs.get("enumType").map(String::as_str) {
                        Some("restrictive") => TagKind::Restrictive,
                        _ => TagKind::Permissive,
                    },
                    // tagType7 carries free-form or informative values.
                    "tagType7" | "informative" => TagKind::Informative,
                    other => return Err(LabelError::Spif(format!("unknown tagType '{other}'"))),
                };
                self.tag = Some(CategoryTag {
                    name: required(&attrs, "name", "securityCategoryTag")?,
                    set_id,
                    kind,
                    values: Vec::new(),
                    prefix: None,
                    separator: " ".into(),
                    suffix: None,
                });
            }
            b"tagCategory" if self.tag.is_some() => {
                let attrs = attributes(element)?;
                // Names and phrases are trimmed: the public NATO SPIF writes one with a
                // trailing newline, which would end a banner's line in the middle.
                self.value = Some((required(&attrs, "name", "tagCategory")?.trim().to_owned(), Vec::new()));
            }
            b"markingData" => {
                let attrs = attributes(element)?;
                // Phrases in other languages than English are kept too (they parse),
                // but English comes first so that generated markings use it.
                let phrase = attrs.get("phrase").map(|p| p.trim().to_owned()).unwrap_or_default();
                self.codes.clear();
                self.phrase = Some(phrase);
                if empty {
                    self.close(b"markingData")?;
                }
            }
            b"code" if self.phrase.is_some() => self.in_code = !empty,
            b"markingQualifier" if self.tag.is_some() => self.in_qualifier = !empty,
            b"qualifier" if self.in_qualifier => {
                let attrs = attributes(element)?;
                let text = attrs.get("markingQualifier").cloned().unwrap_or_default();
                let tag = self.tag.as_mut().expect("checked by the markingQualifier arm");
                match attrs.get("qualifierCode").map(String::as_str) {
                    Some("prefix") => tag.prefix = Some(text.trim().to_owned()),
                    Some("suffix") => tag.suffix = Some(text.trim().to_owned()),
                    Some("separator") => tag.separator = text,
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn close(&mut self, name: &[u8]) -> Result<(), LabelError> {
        match name {
            b"code" => self.in_code = false,
            b"securityClassification" => self.in_classification = false,
            b"markingQualifier" => self.in_qualifier = false,
            b"markingData" => {
                let Some(phrase) = self.phrase.take() else { return Ok(()) };
                let codes = std::mem::take(&mut self.codes);
                if phrase.trim().is_empty() {
                    return Ok(());
                }
                let portion = codes.iter().any(|c| c == "portionMarking");
                if let Some((_, phrases)) = self.value.as_mut() {
                    if !phrases.contains(&phrase) {
                        phrases.push(phrase);
                    }
                } else if self.in_classification
                    && let Some(class) = self.classifications.last_mut()
                {
                    if portion {
                        class.portion.get_or_insert(phrase);
                    } else if !class.banner.contains(&phrase) {
                        class.banner.push(phrase);
                    }
                }
            }
            b"tagCategory" => {
                if let (Some((value_name, phrases)), Some(tag)) = (self.value.take(), self.tag.as_mut()) {
                    // A SPIF may list one value twice to give it another marking
                    // (NATO: `COSMIC` for the `NATO` context): merge them.
                    match tag.values.iter_mut().find(|v| v.name == value_name) {
                        Some(existing) => existing.phrases.extend(phrases),
                        None => tag.values.push(TagValue { name: value_name, phrases }),
                    }
                }
            }
            b"securityCategoryTag" => {
                if let Some(tag) = self.tag.take() {
                    self.tags.push(tag);
                }
            }
            b"securityCategoryTagSet" => self.set = None,
            _ => {}
        }
        Ok(())
    }
}
