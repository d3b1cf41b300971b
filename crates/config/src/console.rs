//! `[console]`: the web console served at `/console/`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::validate::{KeyPath, fail};
use crate::{Config, ConfigError};

/// `[console]`: the web console.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Whether `/console/` is served (default true).
    #[serde(default = "crate::defaults::yes")]
    pub enabled: bool,
    /// A consent notice every user accepts before the console shows
    /// anything else (default none).
    #[serde(default)]
    pub notice: Option<String>,
    /// `[console.banners]`: a banner colour (`"#rrggbb"`) by classification
    /// name, e.g. `SECRET = "#c8102e"`; a classification not named takes its
    /// default (docs/console.md).
    #[serde(default)]
    pub banners: BTreeMap<String, String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self { enabled: true, notice: None, banners: BTreeMap::new() }
    }
}

impl Config {
    pub(crate) fn validate_console(&self) -> Result<(), ConfigError> {
        for (classification, colour) in &self.console.banners {
            let hex = colour.strip_prefix('#').unwrap_or_default();
            if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                let at = KeyPath::key("console").then("banners").then(classification);
                return fail(at, format!("'{colour}' is not a colour of the form \"#rrggbb\""));
            }
        }
        Ok(())
    }
}
