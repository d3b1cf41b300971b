//! STANAG 4774 XML: confidentiality labels
//! (`urn:nato:stanag:4774:confidentialitymetadatalabel:1:0`) and clearances
//! (`urn:nato:stanag:4774:confidentialityclearance:1:0`).

use std::collections::{BTreeMap, BTreeSet};

use quick_xml::NsReader;
use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use std::sync::Arc;

use crate::{Clearance, Label, LabelError, Policies, SecurityPolicy, TagKind};

/// The namespace of STANAG 4774 labels.
pub const LABEL_NAMESPACE: &str = "urn:nato:stanag:4774:confidentialitymetadatalabel:1:0";
/// The namespace of STANAG 4774 clearances.
pub const CLEARANCE_NAMESPACE: &str = "urn:nato:stanag:4774:confidentialityclearance:1:0";

/// The largest label or clearance document accepted, in bytes.
const MAX_XML_BYTES: usize = 64 * 1024;

/// What a 4774 document said, before it is checked against a policy.
#[derive(Default)]
struct Parsed {
    root: String,
    policy: Option<String>,
    classifications: Vec<String>,
    /// (tag name, declared type, values)
    categories: Vec<(String, String, BTreeSet<String>)>,
}

fn invalid(message: impl Into<String>) -> LabelError {
    LabelError::invalid(format!("STANAG 4774 XML: {}", message.into()))
}

/// The names a STANAG 4774 label document may have as its root.
const LABEL_ROOTS: [&str; 3] =
    ["originatorConfidentialityLabel", "alternativeConfidentialityLabel", "ConfidentialityLabel"];
/// The name of a STANAG 4774 clearance document's root.
const CLEARANCE_ROOT: &str = "ConfidentialityClearance";

/// Refuses an element that is not in `namespace`: a document mixing in
/// elements of another vocabulary, or none, is not a 4774 document.
fn check_namespace(resolved: &ResolveResult, name: &str, namespace: &str) -> Result<(), LabelError> {
    match resolved {
        ResolveResult::Bound(ns) if ns.as_ref() == namespace.as_bytes() => Ok(()),
        ResolveResult::Bound(ns) => Err(invalid(format!(
            "<{name}> is in namespace '{}', not {namespace}",
            String::from_utf8_lossy(ns.as_ref())
        ))),
        ResolveResult::Unbound => Err(invalid(format!("<{name}> has no namespace; STANAG 4774 needs {namespace}"))),
        ResolveResult::Unknown(prefix) => {
            Err(invalid(format!("<{name}> uses the undeclared prefix '{}'", String::from_utf8_lossy(prefix))))
        }
    }
}

/// Reads a 4774 document whose root is one of `roots`, every element in `namespace`.
fn parse(xml: &str, roots: &[&str], namespace: &str) -> Result<Parsed, LabelError> {
    if xml.len() > MAX_XML_BYTES {
        return Err(invalid(format!("larger than {MAX_XML_BYTES} bytes")));
    }
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut parsed = Parsed::default();
    let mut path: Vec<String> = Vec::new();
    loop {
        let (resolved, event) = reader.read_resolved_event().map_err(|e| invalid(format!("malformed: {e}")))?;
        if let Event::Start(e) | Event::Empty(e) = &event {
            let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
            if path.is_empty() && !roots.contains(&name.as_str()) {
                return Err(invalid(format!("<{name}> is not a STANAG 4774 {}", roots.join(" or "))));
            }
            check_namespace(&resolved, &name, namespace)?;
        }
        match event {
            Event::DocType(_) => return Err(invalid("DOCTYPE declarations are not accepted")),
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    parsed.root = name.clone();
                }
                if name == "Category" {
                    let mut tag = None;
                    let mut kind = String::new();
                    for attribute in e.attributes() {
                        let attribute = attribute.map_err(|e| invalid(format!("bad attribute: {e}")))?;
                        let value = attribute.unescape_value().map_err(|e| invalid(e.to_string()))?.into_owned();
                        // Unprefixed names only: `x:TagName` is another vocabulary's attribute.
                        match attribute.key.as_ref() {
                            b"TagName" => tag = Some(value),
                            b"Type" => kind = value,
                            _ => {}
                        }
                    }
                    let tag = tag.ok_or_else(|| invalid("a Category has no TagName"))?;
                    parsed.categories.push((tag, kind, BTreeSet::new()));
                }
                path.push(name);
            }
            Event::Empty(e) => {
                if path.is_empty() {
                    return Err(invalid("the document is an empty element"));
                }
                if e.local_name().as_ref() == b"Category" {
                    return Err(invalid("a Category has no GenericValue"));
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| invalid(e.to_string()))?.trim().to_owned();
                match path.last().map(String::as_str) {
                    Some("PolicyIdentifier") => parsed.policy = Some(text),
                    Some("Classification") => parsed.classifications.push(text),
                    Some("GenericValue") => match parsed.categories.last_mut() {
                        Some((_, _, values)) if path.iter().any(|p| p == "Category") => {
                            values.insert(text);
                        }
                        _ => return Err(invalid("a GenericValue outside a Category")),
                    },
                    _ => {}
                }
            }
            Event::GeneralRef(_) => return Err(invalid("entity references are not accepted in values")),
            Event::Eof => break,
            _ => {}
        }
    }
    if parsed.root.is_empty() {
        return Err(invalid("no document element"));
    }
    Ok(parsed)
}

/// A label of `policy` from its STANAG 4774 XML form; refused when the
/// document names another policy.
pub(crate) fn label_of_policy(policy: &Arc<SecurityPolicy>, xml: &str) -> Result<Label, LabelError> {
    let parsed = parse(xml, &LABEL_ROOTS, LABEL_NAMESPACE)?;
    let named = parsed.policy.as_deref().ok_or_else(|| invalid("no PolicyIdentifier"))?.trim();
    if named != policy.name && named.strip_prefix("urn:oid:").unwrap_or(named) != policy.id {
        return Err(invalid(format!("the label is not of policy {}", policy.name)));
    }
    label_from_parsed(policy, parsed)
}

fn label_from_parsed(policy: &Arc<SecurityPolicy>, parsed: Parsed) -> Result<Label, LabelError> {
    let [classification] = parsed.classifications.as_slice() else {
        return Err(invalid("a label has exactly one Classification"));
    };
    let categories = categories(policy, parsed.categories)?;
    Label::new(Arc::clone(policy), classification, categories)
}

fn categories(
    policy: &SecurityPolicy,
    declared: Vec<(String, String, BTreeSet<String>)>,
) -> Result<BTreeMap<String, BTreeSet<String>>, LabelError> {
    let mut categories: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (tag_name, kind, values) in declared {
        let tag = policy
            .tag(&tag_name)
            .ok_or_else(|| invalid(format!("policy {} has no category '{tag_name}'", policy.name)))?;
        if !kind.is_empty() && !kind.eq_ignore_ascii_case(tag.kind.stanag_name()) {
            return Err(invalid(format!(
                "category '{tag_name}' is {} in policy {}, not {kind}",
                tag.kind.stanag_name(),
                policy.name
            )));
        }
        // Merging two would widen a permissive tag's release: refused, as in JSON.
        if categories.insert(tag_name.clone(), values).is_some() {
            return Err(invalid(format!("category '{tag_name}' is named twice")));
        }
    }
    Ok(categories)
}

impl Policies {
    /// A label from its STANAG 4774 XML form.
    pub fn parse_label_xml(&self, xml: &str) -> Result<Label, LabelError> {
        let parsed = parse(xml, &LABEL_ROOTS, LABEL_NAMESPACE)?;
        let policy = self.find(parsed.policy.as_deref().ok_or_else(|| invalid("no PolicyIdentifier"))?)?;
        label_from_parsed(&policy, parsed)
    }

    /// A clearance from its STANAG 4774 XML form.
    pub fn parse_clearance_xml(&self, xml: &str) -> Result<Clearance, LabelError> {
        let parsed = parse(xml, &[CLEARANCE_ROOT], CLEARANCE_NAMESPACE)?;
        let policy = self.find(parsed.policy.as_deref().ok_or_else(|| invalid("no PolicyIdentifier"))?)?;
        let categories = categories(&policy, parsed.categories)?;
        Clearance::new(policy, &parsed.classifications, categories)
    }
}

fn write_categories(out: &mut String, label_policy: &crate::SecurityPolicy, categories: &crate::Categories) {
    for (tag_name, values) in categories {
        let kind = label_policy.tag(tag_name).map_or(TagKind::Informative, |t| t.kind);
        let uri = label_policy.tag(tag_name).map(|t| t.set_id.as_str()).unwrap_or_default();
        out.push_str(&format!(
            "<Category TagName=\"{}\" Type=\"{}\" URI=\"urn:oid:{}\">",
            escape(tag_name),
            kind.stanag_name(),
            escape(uri)
        ));
        for value in values {
            out.push_str(&format!("<GenericValue>{}</GenericValue>", escape(value)));
        }
        out.push_str("</Category>");
    }
}

impl Label {
    /// The STANAG 4774 XML form (`originatorConfidentialityLabel`).
    pub fn to_stanag_xml(&self) -> String {
        let policy = self.policy();
        let mut out = format!(
            "<originatorConfidentialityLabel xmlns=\"{LABEL_NAMESPACE}\"><ConfidentialityInformation>\
             <PolicyIdentifier URI=\"urn:oid:{}\">{}</PolicyIdentifier><Classification>{}</Classification>",
            escape(&policy.id),
            escape(&policy.name),
            escape(self.classification())
        );
        write_categories(&mut out, policy, self.categories());
        out.push_str("</ConfidentialityInformation></originatorConfidentialityLabel>");
        out
    }
}

impl Clearance {
    /// The STANAG 4774 clearance XML form.
    pub fn to_stanag_xml(&self) -> String {
        let policy = self.policy();
        let mut out = format!(
            "<ConfidentialityClearance xmlns=\"{CLEARANCE_NAMESPACE}\">\
             <PolicyIdentifier URI=\"urn:oid:{}\">{}</PolicyIdentifier><ClassificationList>",
            escape(&policy.id),
            escape(&policy.name)
        );
        for name in self.classifications() {
            out.push_str(&format!("<Classification>{}</Classification>", escape(name)));
        }
        out.push_str("</ClassificationList>");
        write_categories(&mut out, policy, self.categories());
        out.push_str("</ConfidentialityClearance>");
        out
    }
}
