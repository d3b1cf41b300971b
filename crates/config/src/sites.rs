//! Sites, nations' residency rules and model owners' placement rules: the
//! keys that decide which site may serve a request (see `rampart-router`).

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use crate::validate::{KeyPath, check_alpha3 as alpha3, fail};
use crate::{Config, ConfigError};

/// `[site]`: which of the `[[sites]]` this process is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSelf {
    /// The id of this site's `[[sites]]` entry.
    pub id: String,
}

/// `[[sites]]`: a site that may serve requests, this one or a peer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Unique id.
    pub id: String,
    /// The country whose law the site is under (ISO 3166 alpha-3).
    pub jurisdiction: String,
    /// The nations that operate it (alpha-3).
    pub operators: Vec<String>,
    /// RAND security level, 1 to 5.
    pub security_level: u8,
    /// The highest label the site is accredited to process (a marking or JSON label).
    pub accreditation: String,
    /// Names of the `[[backends]]` and `[[models]]` at this site.
    #[serde(default)]
    pub backends: Vec<String>,
    /// Models a peer site serves, when its backends are not declared here.
    #[serde(default)]
    pub models: Vec<String>,
    /// The peer's Rampart (`https://...`), reached over mutual TLS; absent for this site.
    #[serde(default)]
    pub peer: Option<String>,
    /// The common name of the site's certificate; default: the site's id.
    #[serde(default)]
    pub subject: Option<String>,
    /// The SHA-256 (hex) of the public key (SubjectPublicKeyInfo, DER) of each
    /// certificate the peer presents, its server's and its federation one
    /// (`rampart site pin CERT` prints it). A peer is recognised by common name
    /// and pin together, never by name alone; list two keys while it rotates.
    #[serde(default)]
    pub key_sha256: Vec<String>,
    /// The nations whose callers this peer may vouch for; default: its `operators`.
    #[serde(default)]
    pub may_assert_nations: Option<Vec<String>>,
    /// The highest clearance and label this peer may assert (a marking or JSON
    /// label); default: its `accreditation`.
    #[serde(default)]
    pub may_assert_clearance: Option<String>,
}

impl Config {
    /// The other sites, reached at their `peer` addresses: (site, address).
    pub fn peer_sites(&self) -> impl Iterator<Item = (&SiteConfig, &str)> {
        self.sites.iter().filter_map(|site| site.peer.as_deref().map(|address| (site, address)))
    }
}

impl SiteConfig {
    /// The nations this site may vouch for as a peer (`may_assert_nations`, or its operators).
    pub fn assertable_nations(&self) -> &[String] {
        self.may_assert_nations.as_deref().unwrap_or(&self.operators)
    }

    /// The highest label this site may assert as a peer (`may_assert_clearance`, or its accreditation).
    pub fn assertable_ceiling(&self) -> &str {
        self.may_assert_clearance.as_deref().unwrap_or(&self.accreditation)
    }

    /// The common name the site's certificate carries (`subject`, or the id).
    pub fn certificate_subject(&self) -> &str {
        self.subject.as_deref().unwrap_or(&self.id)
    }

    /// Whether `key_sha256` pins the key whose SHA-256 (hex) is `digest`.
    pub fn pins_key(&self, digest: &str) -> bool {
        key_pinned(&self.key_sha256, digest)
    }
}

/// Whether `pins` (a `[[sites]] key_sha256` list) pins the key whose SHA-256 (hex) is `digest`.
pub fn key_pinned(pins: &[String], digest: &str) -> bool {
    pins.iter().any(|pin| pin.eq_ignore_ascii_case(digest))
}

/// `[federation]`: how this site reaches its peers and vouches for the callers it forwards.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// This site's certificate chain from the alliance PKI (PEM), presented to peers.
    pub cert: std::path::PathBuf,
    /// Its private key (PEM; ECDSA P-256 or Ed25519): it also signs the assertions sent to peers.
    pub key: std::path::PathBuf,
    /// CA bundle (PEM) that peers' server certificates must chain to.
    pub ca: std::path::PathBuf,
    /// How long an assertion is valid, in seconds.
    #[serde(default = "assertion_ttl_secs")]
    pub assertion_ttl_secs: u64,
}

/// `federation.assertion_ttl_secs`.
fn assertion_ttl_secs() -> u64 {
    30
}

/// `[facility]`: where this site's power, cooling and alarm signals come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacilityConfig {
    /// JSON written by the facility's monitoring: `{"power": "ok", "cooling": "ok", "alarms": []}`.
    pub status_file: std::path::PathBuf,
    /// How often the file is read, in milliseconds.
    #[serde(default = "facility_poll_ms")]
    pub poll_ms: u64,
    /// How long the signals must stay good before a drained site takes requests again, in seconds.
    #[serde(default = "facility_recover_after_secs")]
    pub recover_after_secs: u64,
}

/// `facility.poll_ms`.
fn facility_poll_ms() -> u64 {
    1_000
}

/// `facility.recover_after_secs`.
fn facility_recover_after_secs() -> u64 {
    60
}

/// `[[residency]]`: where one nation's requests may be processed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResidencyRule {
    /// The requesting nation (alpha-3).
    pub nation: String,
    /// The rule holds for requests whose classification is at or above this
    /// label's; absent: for every request of the nation.
    #[serde(default)]
    pub from_label: Option<String>,
    /// Jurisdictions (alpha-3) or groups (`EU`, `NATO`, or a `[groups]` name) allowed.
    pub jurisdictions: Vec<String>,
}

/// `[[placement]]`: where a model owner's models may run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementRule {
    /// The owner nation (alpha-3) of the models it governs.
    pub owner: String,
    /// A site is allowed when it meets any one of these.
    pub any_of: Vec<PlacementClause>,
}

/// One acceptable kind of site; every key given must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementClause {
    /// Every operator of the site is one of these nations.
    #[serde(default)]
    pub operators: Option<Vec<String>>,
    /// The site's RAND security level is at least this.
    #[serde(default)]
    pub min_security_level: Option<u8>,
    /// The site's jurisdiction is one of these (alpha-3 or groups).
    #[serde(default)]
    pub jurisdictions: Option<Vec<String>>,
}

/// Groups of jurisdictions every configuration knows; `[groups]` may add others or replace these.
pub const BUILTIN_GROUPS: [(&str, &[&str]); 2] = [
    (
        "EU",
        &[
            "AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC", "HUN", "IRL", "ITA",
            "LVA", "LTU", "LUX", "MLT", "NLD", "POL", "PRT", "ROU", "SVK", "SVN", "ESP", "SWE",
        ],
    ),
    (
        "NATO",
        &[
            "ALB", "BEL", "BGR", "CAN", "HRV", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC", "HUN", "ISL", "ITA",
            "LVA", "LTU", "LUX", "MNE", "NLD", "MKD", "NOR", "POL", "PRT", "ROU", "SVK", "SVN", "ESP", "SWE", "TUR",
            "GBR", "USA",
        ],
    ),
];

impl Config {
    /// The jurisdiction groups: the built-in `EU` and `NATO`, then `[groups]`.
    pub fn jurisdiction_groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BUILTIN_GROUPS
            .iter()
            .map(|(name, members)| ((*name).to_owned(), members.iter().map(|m| (*m).to_owned()).collect()))
            .collect();
        groups.extend(self.groups.clone());
        groups
    }

    pub(crate) fn validate_sites(&self) -> Result<(), ConfigError> {
        if let Some(facility) = &self.facility
            && facility.poll_ms == 0
        {
            return fail(KeyPath::key("facility").then("poll_ms"), "must be at least 1");
        }
        let groups = self.jurisdiction_groups();
        let jurisdiction = |at: KeyPath, code: &str| {
            if groups.contains_key(code) { Ok(()) } else { alpha3(at, code) }
        };
        for (name, members) in &self.groups {
            for (i, member) in members.iter().enumerate() {
                alpha3(KeyPath::key("groups").then(name).index(i), member)?;
            }
        }
        if let Some(own) = &self.site
            && !self.sites.iter().any(|site| site.id == own.id)
        {
            return fail(KeyPath::key("site").then("id"), format!("no [[sites]] entry has id '{}'", own.id));
        }
        let mut ids = HashSet::new();
        for (i, site) in self.sites.iter().enumerate() {
            let at = |key: &str| KeyPath::key("sites").index(i).then(key);
            if !ids.insert(site.id.as_str()) {
                return fail(at("id"), format!("site '{}' is defined twice", site.id));
            }
            alpha3(at("jurisdiction"), &site.jurisdiction)?;
            if site.operators.is_empty() {
                return fail(at("operators"), "name at least one operating nation");
            }
            for (n, operator) in site.operators.iter().enumerate() {
                alpha3(at("operators").index(n), operator)?;
            }
            if !(1..=5).contains(&site.security_level) {
                return fail(at("security_level"), "a RAND security level is 1 to 5");
            }
            let local = self.site.as_ref().is_some_and(|s| s.id == site.id);
            if local && site.peer.is_some() {
                return fail(at("peer"), "this process's own site has no peer address");
            }
            if !local && site.peer.is_none() {
                return fail(at("peer"), format!("site '{}' is not [site].id, so it needs a peer address", site.id));
            }
            // A peer's backends are declared at the peer; this site's must be declared here.
            for (n, name) in site.backends.iter().enumerate().filter(|_| local) {
                let declared =
                    self.backends.iter().any(|b| &b.name == name) || self.models.iter().any(|m| &m.name == name);
                if !declared {
                    return fail(
                        at("backends").index(n),
                        format!("no [[backends]] or [[models]] entry is named '{name}'"),
                    );
                }
            }
        }
        if let Some(own) = &self.site
            && let Some((k, local)) = self.sites.iter().enumerate().find(|(_, s)| s.id == own.id)
        {
            let served_here =
                self.backends.iter().enumerate().map(|(i, b)| (KeyPath::key("backends").index(i), &b.name));
            let embedded = self.models.iter().enumerate().filter(|(_, m)| m.engine == crate::EngineKind::Embedded);
            for (at, name) in served_here.chain(embedded.map(|(i, m)| (KeyPath::key("models").index(i), &m.name))) {
                if !local.backends.contains(name) {
                    return fail(
                        at.then("name"),
                        format!(
                            "'{name}' is not listed in sites[{k}].backends, the backends of this site ('{}')",
                            own.id
                        ),
                    );
                }
            }
        }
        self.validate_federation()?;
        if self.site.is_none() && !self.sites.is_empty() {
            return fail(KeyPath::key("site").then("id"), "[[sites]] are listed, so [site] must say which one this is");
        }
        for (i, rule) in self.residency.iter().enumerate() {
            let at = |key: &str| KeyPath::key("residency").index(i).then(key);
            alpha3(at("nation"), &rule.nation)?;
            if rule.jurisdictions.is_empty() {
                return fail(at("jurisdictions"), "name at least one jurisdiction or group");
            }
            for (n, code) in rule.jurisdictions.iter().enumerate() {
                jurisdiction(at("jurisdictions").index(n), code)?;
            }
        }
        for (i, rule) in self.placement.iter().enumerate() {
            let at = |key: &str| KeyPath::key("placement").index(i).then(key);
            alpha3(at("owner"), &rule.owner)?;
            if rule.any_of.is_empty() {
                return fail(at("any_of"), "name at least one kind of site, e.g. { min_security_level = 5 }");
            }
            for (n, clause) in rule.any_of.iter().enumerate() {
                let at = |key: &str| at("any_of").index(n).then(key);
                for (k, operator) in clause.operators.iter().flatten().enumerate() {
                    alpha3(at("operators").index(k), operator)?;
                }
                for (k, code) in clause.jurisdictions.iter().flatten().enumerate() {
                    jurisdiction(at("jurisdictions").index(k), code)?;
                }
                if clause.min_security_level.is_some_and(|level| !(1..=5).contains(&level)) {
                    return fail(at("min_security_level"), "a RAND security level is 1 to 5");
                }
            }
        }
        Ok(())
    }

    /// Peers need `[federation]`, and federation needs HTTPS with client certificates.
    fn validate_federation(&self) -> Result<(), ConfigError> {
        let has_peers = self.peer_sites().next().is_some();
        let Some(federation) = &self.federation else {
            if has_peers {
                return fail(
                    KeyPath::key("federation"),
                    "[[sites]] lists peers, so [federation] must give this site's certificate, key and the peers' CA",
                );
            }
            return Ok(());
        };
        let at = |key: &str| KeyPath::key("federation").then(key);
        if !(1..=300).contains(&federation.assertion_ttl_secs) {
            return fail(at("assertion_ttl_secs"), "must be 1 to 300 seconds");
        }
        if self.site.is_none() {
            return fail(at("cert"), "[federation] needs [site] and [[sites]]: which site this is, and its peers");
        }
        if self.server.tls.is_none() {
            return fail(at("cert"), "peers connect over mutual TLS, so [server.tls] is required");
        }
        if self.identity.as_ref().is_none_or(|identity| identity.client_ca.is_empty()) {
            return fail(at("cert"), "peers' certificates are verified against identity.client_ca, which is empty");
        }
        for (i, site) in self.sites.iter().enumerate() {
            let at = || KeyPath::key("sites").index(i).then("key_sha256");
            if site.peer.is_some() && site.key_sha256.is_empty() {
                return fail(
                    at(),
                    format!(
                        "site '{}' is a peer, so pin its key: `rampart site pin CERT.pem` on its certificate prints the value",
                        site.id
                    ),
                );
            }
            for (n, pin) in site.key_sha256.iter().enumerate() {
                if pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return fail(at().index(n), "a SHA-256 in hex: 64 digits (`rampart site pin CERT.pem` prints it)");
                }
            }
        }
        // One key is one site: a key pinned for two would let either's holder speak as the other.
        let mut pins = HashSet::new();
        for (i, site) in self.sites.iter().enumerate() {
            for (n, pin) in site.key_sha256.iter().enumerate() {
                if !pins.insert(pin.to_ascii_lowercase()) {
                    return fail(
                        KeyPath::key("sites").index(i).then("key_sha256").index(n),
                        "this key is pinned for another site too: each site has keys of its own",
                    );
                }
            }
        }
        let mut subjects = HashSet::new();
        for (i, site) in self.sites.iter().enumerate() {
            if !subjects.insert(site.certificate_subject()) {
                return fail(
                    KeyPath::key("sites").index(i).then("subject"),
                    format!("two sites have the certificate subject '{}'", site.certificate_subject()),
                );
            }
        }
        Ok(())
    }
}
