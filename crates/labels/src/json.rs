//! The JSON forms of labels and clearances:
//! `{"policy":"NATO","classification":"SECRET","categories":{"Releasable To":["GBR"]}}` and
//! `{"policy":"NATO","classifications":["SECRET"],"categories":{"Context":["NATO"]}}`.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{Clearance, Label, LabelError, Policies};

/// A label as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelJson {
    /// The policy's name or OID.
    pub policy: String,
    /// The classification's name.
    pub classification: String,
    /// Category values by tag name.
    #[serde(default, deserialize_with = "unique_tags")]
    pub categories: BTreeMap<String, BTreeSet<String>>,
}

/// A clearance as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearanceJson {
    /// The policy's name or OID.
    pub policy: String,
    /// Classifications held; a single one stands for itself and all below it.
    pub classifications: Vec<String>,
    /// Category values held, by tag name.
    #[serde(default, deserialize_with = "unique_tags")]
    pub categories: BTreeMap<String, BTreeSet<String>>,
}

/// Category values by tag name, refusing a tag named twice: a map that keeps
/// the last of two would let the text say one thing and the label another.
fn unique_tags<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, BTreeSet<String>>, D::Error> {
    struct Tags;
    impl<'de> Visitor<'de> for Tags {
        type Value = BTreeMap<String, BTreeSet<String>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of category values by tag name")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut tags = BTreeMap::new();
            while let Some((tag, values)) = map.next_entry::<String, BTreeSet<String>>()? {
                if tags.contains_key(&tag) {
                    return Err(serde::de::Error::custom(format!("category '{tag}' is named twice")));
                }
                tags.insert(tag, values);
            }
            Ok(tags)
        }
    }
    deserializer.deserialize_map(Tags)
}

impl Label {
    /// The JSON form.
    pub fn to_json(&self) -> LabelJson {
        LabelJson {
            policy: self.policy().name.clone(),
            classification: self.classification().to_owned(),
            categories: self.categories().clone(),
        }
    }
}

impl Clearance {
    /// The JSON form.
    pub fn to_json(&self) -> ClearanceJson {
        ClearanceJson {
            policy: self.policy().name.clone(),
            classifications: self.classifications().into_iter().map(str::to_owned).collect(),
            categories: self.categories().clone(),
        }
    }
}

impl Policies {
    /// A label from its JSON form.
    pub fn label_from_json(&self, json: &LabelJson) -> Result<Label, LabelError> {
        Label::new(self.find(&json.policy)?, &json.classification, json.categories.clone())
    }

    /// A label from JSON text.
    pub fn parse_label_json(&self, text: &str) -> Result<Label, LabelError> {
        let json: LabelJson =
            serde_json::from_str(text).map_err(|e| LabelError::invalid(format!("label JSON: {e}")))?;
        self.label_from_json(&json)
    }

    /// A clearance from its JSON form.
    pub fn clearance_from_json(&self, json: &ClearanceJson) -> Result<Clearance, LabelError> {
        Clearance::new(self.find(&json.policy)?, &json.classifications, json.categories.clone())
    }

    /// A clearance from JSON text.
    pub fn parse_clearance_json(&self, text: &str) -> Result<Clearance, LabelError> {
        let json: ClearanceJson =
            serde_json::from_str(text).map_err(|e| LabelError::invalid(format!("clearance JSON: {e}")))?;
        self.clearance_from_json(&json)
    }
}
