//! Banner colours by classification.
//!
//! A site names its colours in `[console.banners]` (`SECRET = "#c8102e"`);
//! every classification it does not name takes a default: by its name when it
//! is one of the common ones (the Astro UXDS classification colours), else by
//! its rank in its policy, lowest green to highest orange. The banner's text is
//! black or white, whichever contrasts more with its colour: by WCAG 2's
//! formula that is always at least 4.58:1, above AA's 4.5:1 for normal text.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use rampart_labels::{Label, Policies, SecurityPolicy};

/// Astro UXDS classification colours.
const UNCLASSIFIED: Colour = Colour(0x00, 0x7a, 0x33);
const CUI: Colour = Colour(0x50, 0x2b, 0x85);
const CONFIDENTIAL: Colour = Colour(0x00, 0x33, 0xa0);
const SECRET: Colour = Colour(0xc8, 0x10, 0x2e);
const TOP_SECRET: Colour = Colour(0xff, 0x8c, 0x00);
/// Classification colours from lowest to highest, for classifications named otherwise.
const LADDER: [Colour; 5] = [UNCLASSIFIED, CUI, CONFIDENTIAL, SECRET, TOP_SECRET];

const BLACK: Colour = Colour(0, 0, 0);
const WHITE: Colour = Colour(0xff, 0xff, 0xff);

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(pub u8, pub u8, pub u8);

impl Colour {
    /// `#rrggbb`, the form the configuration takes.
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix('#').filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))?;
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some(Self(byte(0)?, byte(2)?, byte(4)?))
    }

    /// WCAG 2's relative luminance: 0 for black, 1 for white.
    pub fn luminance(self) -> f64 {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        0.2126 * linear(self.0) + 0.7152 * linear(self.1) + 0.0722 * linear(self.2)
    }

    /// WCAG 2's contrast ratio of two colours, from 1 to 21.
    pub fn contrast(self, other: Colour) -> f64 {
        let (a, b) = (self.luminance() + 0.05, other.luminance() + 0.05);
        a.max(b) / a.min(b)
    }

    /// Black or white, whichever contrasts more with this colour.
    pub fn text(self) -> Colour {
        if self.contrast(BLACK) >= self.contrast(WHITE) { BLACK } else { WHITE }
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// A banner's colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colours {
    /// The banner's.
    pub background: Colour,
    /// Its text's.
    pub text: Colour,
}

impl Colours {
    fn on(background: Colour) -> Self {
        Self { background, text: background.text() }
    }
}

/// Why `[console.banners]` cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BannerError {
    /// A colour is not `#rrggbb`.
    #[error("[console.banners] {classification} = \"{colour}\" is not a colour of the form \"#rrggbb\"")]
    Colour {
        /// The classification named.
        classification: String,
        /// What was given.
        colour: String,
    },
    /// No loaded policy has the classification.
    #[error("[console.banners] names '{0}', which no loaded security policy has; they have: {1}")]
    Unknown(String, String),
}

/// The banner colours of every classification of the site's policies.
#[derive(Debug, Clone)]
pub struct Banners {
    /// By policy name, then classification name.
    colours: HashMap<(String, String), Colours>,
}

impl Banners {
    /// Each classification of `policies` in the colour `configured` names for it, or its default.
    pub fn new(policies: &Policies, configured: &BTreeMap<String, String>) -> Result<Self, BannerError> {
        let mut colours = HashMap::new();
        for (name, colour) in configured {
            if !policies.all().iter().any(|p| p.classifications.iter().any(|c| &c.name == name)) {
                let known: Vec<String> = policies
                    .all()
                    .iter()
                    .flat_map(|p| p.classifications.iter().map(move |c| format!("{} {}", p.name, c.name)))
                    .collect();
                return Err(BannerError::Unknown(name.clone(), known.join(", ")));
            }
            if Colour::parse(colour).is_none() {
                return Err(BannerError::Colour { classification: name.clone(), colour: colour.clone() });
            }
        }
        for policy in policies.all() {
            for (rank, classification) in policy.classifications.iter().enumerate() {
                let background = match configured.get(&classification.name) {
                    Some(colour) => Colour::parse(colour).unwrap_or(BLACK),
                    None => default_colour(policy, rank),
                };
                colours.insert((policy.name.clone(), classification.name.clone()), Colours::on(background));
            }
        }
        Ok(Self { colours })
    }

    /// The colours of `label`'s banner: those of its classification.
    pub fn colours(&self, label: &Label) -> Colours {
        let key = (label.policy().name.clone(), label.classification().to_owned());
        // Every label is of a loaded policy, so every classification has colours; black is never shown.
        self.colours.get(&key).copied().unwrap_or(Colours::on(BLACK))
    }

    /// Every classification's colours, as (policy, classification, colours), in a stable order.
    pub fn all(&self) -> Vec<(&str, &str, Colours)> {
        let mut all: Vec<_> = self.colours.iter().map(|((p, c), colours)| (p.as_str(), c.as_str(), *colours)).collect();
        all.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        all
    }
}

/// A classification's colour when the configuration names none: by its name
/// when it is a common one, else by its rank (classifications are lowest first).
fn default_colour(policy: &SecurityPolicy, rank: usize) -> Colour {
    let name = policy.classifications[rank].name.to_ascii_uppercase();
    match name.as_str() {
        "UNCLASSIFIED" | "PUBLIC" => UNCLASSIFIED,
        "RESTRICTED" | "CUI" | "OFFICIAL" | "OFFICIAL-SENSITIVE" => CUI,
        "CONFIDENTIAL" => CONFIDENTIAL,
        "SECRET" => SECRET,
        n if n.contains("TOP SECRET") => TOP_SECRET,
        _ => {
            let highest = policy.classifications.len().saturating_sub(1).max(1);
            LADDER[(rank * (LADDER.len() - 1) + highest / 2) / highest]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_colour_meets_wcag_aa_on_every_background() {
        // Every colour in steps of 3 per channel (and the channel maxima): 551,368 backgrounds.
        let steps: Vec<u8> = (0..=255u8).step_by(3).chain([255]).collect();
        let mut worst = f64::MAX;
        for &r in &steps {
            for &g in &steps {
                for &b in &steps {
                    let background = Colour(r, g, b);
                    worst = worst.min(background.contrast(background.text()));
                }
            }
        }
        assert!(worst >= 4.5, "worst contrast {worst}");
    }

    #[test]
    fn wcag_figures_match_the_standard() {
        assert!((BLACK.contrast(WHITE) - 21.0).abs() < 1e-9);
        assert!((WHITE.contrast(WHITE) - 1.0).abs() < 1e-9);
        // Astro's colours: white text on all but the orange of TOP SECRET.
        assert_eq!(SECRET.text(), WHITE);
        assert_eq!(UNCLASSIFIED.text(), WHITE);
        assert_eq!(CONFIDENTIAL.text(), WHITE);
        assert_eq!(TOP_SECRET.text(), BLACK);
        assert_eq!(Colour(0xfc, 0xe8, 0x3a).text(), BLACK);
    }

    #[test]
    fn colours_parse_only_in_their_one_form() {
        assert_eq!(Colour::parse("#c8102E"), Some(SECRET));
        assert_eq!(SECRET.to_string(), "#c8102e");
        for bad in ["c8102e", "#c8102", "#c8102e0", "#g8102e", "", "#", "red", "#+8102e", "#é8102"] {
            assert_eq!(Colour::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn nato_classifications_take_the_astro_colours_by_name() {
        let policies = Policies::nato();
        let banners = Banners::new(&policies, &BTreeMap::new()).unwrap();
        let of = |marking: &str| banners.colours(&policies.parse_label(marking).unwrap()).background;
        assert_eq!(of("NATO UNCLASSIFIED"), UNCLASSIFIED);
        assert_eq!(of("NATO RESTRICTED"), CUI);
        assert_eq!(of("NATO CONFIDENTIAL"), CONFIDENTIAL);
        assert_eq!(of("NATO SECRET"), SECRET);
        assert_eq!(of("COSMIC TOP SECRET"), TOP_SECRET);
        assert_eq!(banners.all().len(), policies.default_policy().classifications.len());
    }

    #[test]
    fn configured_colours_win_and_unknown_or_malformed_ones_are_refused() {
        let policies = Policies::nato();
        let configured = BTreeMap::from([("SECRET".to_owned(), "#fce83a".to_owned())]);
        let banners = Banners::new(&policies, &configured).unwrap();
        let secret = banners.colours(&policies.parse_label("NATO SECRET").unwrap());
        assert_eq!(secret, Colours { background: Colour(0xfc, 0xe8, 0x3a), text: BLACK });
        let typo = BTreeMap::from([("SECRTE".to_owned(), "#000000".to_owned())]);
        assert!(matches!(Banners::new(&policies, &typo), Err(BannerError::Unknown(name, known))
            if name == "SECRTE" && known.contains("NATO SECRET")));
        let malformed = BTreeMap::from([("SECRET".to_owned(), "red".to_owned())]);
        assert!(matches!(Banners::new(&policies, &malformed), Err(BannerError::Colour { .. })));
    }

    #[test]
    fn unfamiliar_names_take_colours_by_rank_lowest_green_highest_orange() {
        let ladder = |count: usize| -> Vec<Colour> {
            let policy = SecurityPolicy {
                name: "X".into(),
                id: "1.2.3".into(),
                classifications: (0..count)
                    .map(|i| rampart_labels::Classification {
                        name: format!("LEVEL {i}"),
                        hierarchy: i as u32,
                        banner: vec![format!("LEVEL {i}")],
                        portion: None,
                    })
                    .collect(),
                tags: Vec::new(),
            };
            (0..count).map(|rank| default_colour(&policy, rank)).collect()
        };
        assert_eq!(ladder(1), [UNCLASSIFIED]);
        assert_eq!(ladder(2), [UNCLASSIFIED, TOP_SECRET]);
        assert_eq!(ladder(5), LADDER);
        for count in 2..12 {
            let colours = ladder(count);
            assert_eq!((colours[0], colours[count - 1]), (UNCLASSIFIED, TOP_SECRET), "{count}");
            let positions: Vec<usize> = colours.iter().map(|c| LADDER.iter().position(|l| l == c).unwrap()).collect();
            assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{count}: {positions:?}");
        }
    }
}
