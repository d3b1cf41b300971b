//! Rampart's web console, free of HTTP: the page's files, compiled into the
//! binary so that a site serves it air-gapped ([`assets`]), and the colours of
//! its classification banners, from the configuration or by the security
//! policy's ranks, each with the text colour that contrasts most ([`banners`]);
//! and [`Console`], one site's settings, which draws a label's banner.

pub mod assets;
pub mod banners;

use std::collections::BTreeMap;

use rampart_labels::{Label, Policies};
use serde_json::{Value, json};

pub use assets::{Asset, asset};
pub use banners::{BannerError, Banners, Colour, Colours};

/// One site's console: whether it is served, its consent notice and its banner colours.
pub struct Console {
    /// `console.enabled`.
    pub enabled: bool,
    /// `console.notice`.
    pub notice: Option<String>,
    banners: Banners,
}

impl Console {
    /// The console of a site with these policies and `[console.banners]` colours.
    pub fn new(
        enabled: bool,
        notice: Option<String>,
        policies: &Policies,
        colours: &BTreeMap<String, String>,
    ) -> Result<Self, BannerError> {
        Ok(Self { enabled, notice, banners: Banners::new(policies, colours)? })
    }

    /// A label as the page shows it: its JSON form, its banner marking and its colours.
    pub fn banner(&self, label: &Label) -> Value {
        let Colours { background, text } = self.banners.colours(label);
        json!({
            "label": label.to_json(),
            "marking": label.banner(),
            "background": background.to_string(),
            "text": text.to_string(),
        })
    }
}
