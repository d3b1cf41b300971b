//! The sites and rules of a configuration, compiled into site sets so that a
//! decision is a few intersections.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rampart_config::{Config, PlacementClause, SiteConfig};
use rampart_labels::{Clearance, Label, Policies};

use crate::SiteSet;

/// Why a site cannot serve a request: the class of rule, never the rule itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Exclusion {
    /// The site does not serve the model.
    Model,
    /// The request's label is above what the site is accredited for.
    Accreditation,
    /// The requesting nation's residency rules keep the request out of the site's jurisdiction.
    Residency,
    /// The model owner's placement rules do not allow the site.
    Owner,
    /// The site is down or degraded.
    Health,
}

impl Exclusion {
    /// The name used in `route explain` and in `no_eligible_site` errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::Model => "model",
            Exclusion::Accreditation => "accreditation",
            Exclusion::Residency => "residency",
            Exclusion::Owner => "owner",
            Exclusion::Health => "health",
        }
    }
}

/// Why a configuration's sites and rules cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// A label in the configuration does not parse.
    #[error("{key}: '{text}' is not a label of the configured policies: {reason}")]
    Label {
        /// The key.
        key: String,
        /// The text.
        text: String,
        /// Why.
        reason: String,
    },
    /// Two declarations give one model different owners.
    #[error("model '{model}' is declared with owners {first} and {second}")]
    Owner {
        /// The model.
        model: String,
        /// One owner.
        first: String,
        /// The other.
        second: String,
    },
}

/// One site as the router sees it.
#[derive(Debug, Clone)]
pub struct Site {
    /// Its id.
    pub id: String,
}

/// A nation's residency rule, compiled: from which label on it holds, and the sites it allows.
#[derive(Debug, Clone)]
struct Residency {
    from: Option<Label>,
    allowed: SiteSet,
}

/// Every site and rule of one configuration.
#[derive(Debug, Clone)]
pub struct Topology {
    sites: Vec<Site>,
    /// Sites serving each model.
    serving: HashMap<String, SiteSet>,
    /// Sites each model's owner allows (models without an owner, or whose owner has no rule, are absent).
    placed: HashMap<String, SiteSet>,
    /// Residency rules by nation.
    residency: HashMap<String, Vec<Residency>>,
    /// The distinct accreditations, each with its sites.
    accreditations: Vec<(Clearance, SiteSet)>,
}

impl Topology {
    /// Compiles `config`'s `[[sites]]`, `[[residency]]` and `[[placement]]`; labels parse with `labels`.
    pub fn new(config: &Config, labels: &Policies) -> Result<Self, RouterError> {
        let parse = |key: String, text: &str| {
            labels.parse_label(text).map_err(|e| RouterError::Label {
                key,
                text: text.to_owned(),
                reason: e.to_string(),
            })
        };
        let count = config.sites.len();
        let groups = config.jurisdiction_groups();
        let expand = |codes: &[String]| -> BTreeSet<String> {
            codes.iter().flat_map(|code| groups.get(code).cloned().unwrap_or_else(|| vec![code.clone()])).collect()
        };
        let sites_where = |keep: &dyn Fn(&SiteConfig) -> bool| {
            let mut set = SiteSet::none(count);
            for (index, site) in config.sites.iter().enumerate() {
                if keep(site) {
                    set.insert(index);
                }
            }
            set
        };

        let mut accreditations: Vec<(String, Clearance, SiteSet)> = Vec::new();
        for (index, site) in config.sites.iter().enumerate() {
            let at = accreditations.iter().position(|(text, _, _)| *text == site.accreditation);
            let at = match at {
                Some(at) => at,
                None => {
                    let label = parse(format!("sites[{index}].accreditation"), &site.accreditation)?;
                    accreditations.push((
                        site.accreditation.clone(),
                        Clearance::from_ceiling(&label),
                        SiteSet::none(count),
                    ));
                    accreditations.len() - 1
                }
            };
            accreditations[at].2.insert(index);
        }

        let mut serving: HashMap<String, SiteSet> = HashMap::new();
        for (index, site) in config.sites.iter().enumerate() {
            let backend_models = site.backends.iter().flat_map(|name| {
                let remote = config.backends.iter().filter(move |b| &b.name == name).flat_map(|b| b.models.iter());
                let embedded = config.models.iter().filter(move |m| &m.name == name).map(|m| &m.name);
                remote.chain(embedded)
            });
            for model in backend_models.chain(&site.models) {
                serving.entry(model.clone()).or_insert_with(|| SiteSet::none(count)).insert(index);
            }
        }

        let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
        let declared = config.models.iter().filter_map(|m| m.owner.as_deref().map(|o| (m.name.as_str(), o)));
        let backed = config
            .backends
            .iter()
            .flat_map(|b| b.models.iter().filter_map(|m| b.owner.as_deref().map(|o| (m.as_str(), o))));
        for (model, owner) in declared.chain(backed) {
            if let Some(first) = owners.insert(model, owner).filter(|first| *first != owner) {
                return Err(RouterError::Owner {
                    model: model.to_owned(),
                    first: first.to_owned(),
                    second: owner.to_owned(),
                });
            }
        }
        let clause_holds = |clause: &PlacementClause, site: &SiteConfig| {
            clause.operators.as_ref().is_none_or(|ops| site.operators.iter().all(|o| ops.contains(o)))
                && clause.min_security_level.is_none_or(|level| site.security_level >= level)
                && clause.jurisdictions.as_ref().is_none_or(|j| expand(j).contains(&site.jurisdiction))
        };
        let mut placed = HashMap::new();
        for (model, owner) in owners {
            let rules: Vec<_> = config.placement.iter().filter(|rule| rule.owner == owner).collect();
            if rules.is_empty() {
                continue;
            }
            let allowed =
                sites_where(&|site| rules.iter().all(|rule| rule.any_of.iter().any(|c| clause_holds(c, site))));
            placed.insert(model.to_owned(), allowed);
        }

        let mut residency: HashMap<String, Vec<Residency>> = HashMap::new();
        for (index, rule) in config.residency.iter().enumerate() {
            let from = match &rule.from_label {
                Some(text) => Some(parse(format!("residency[{index}].from_label"), text)?),
                None => None,
            };
            let jurisdictions = expand(&rule.jurisdictions);
            let allowed = sites_where(&|site| jurisdictions.contains(&site.jurisdiction));
            residency.entry(rule.nation.clone()).or_default().push(Residency { from, allowed });
        }

        let sites = config.sites.iter().map(|s| Site { id: s.id.clone() }).collect();
        let accreditations = accreditations.into_iter().map(|(_, clearance, sites)| (clearance, sites)).collect();
        Ok(Self { sites, serving, placed, residency, accreditations })
    }

    /// The sites, in configuration order (a site's index is its place here).
    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// The index of the site `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.sites.iter().position(|site| site.id == id)
    }

    /// The sites that may serve `model` for a caller of `nation` at `label`, leaving out `down`.
    pub fn eligible(&self, nation: &str, label: &Label, model: &str, down: &SiteSet) -> SiteSet {
        let mut sites = self.serving.get(model).cloned().unwrap_or_else(|| SiteSet::none(self.sites.len()));
        sites.intersect(&self.accredited(label));
        for rule in self.residency_rules(nation, label) {
            sites.intersect(&rule.allowed);
        }
        if let Some(placed) = self.placed.get(model) {
            sites.intersect(placed);
        }
        sites.remove_all(down);
        sites
    }

    /// For every site, `None` when it may serve the request, else the first rule class that excludes it
    /// (checked in the order model, accreditation, residency, owner, health).
    pub fn explain(&self, nation: &str, label: &Label, model: &str, down: &SiteSet) -> Vec<Option<Exclusion>> {
        let accredited = self.accredited(label);
        let residency: Vec<&Residency> = self.residency_rules(nation, label).collect();
        (0..self.sites.len())
            .map(|index| {
                if !self.serving.get(model).is_some_and(|set| set.contains(index)) {
                    Some(Exclusion::Model)
                } else if !accredited.contains(index) {
                    Some(Exclusion::Accreditation)
                } else if !residency.iter().all(|rule| rule.allowed.contains(index)) {
                    Some(Exclusion::Residency)
                } else if !self.placed.get(model).is_none_or(|set| set.contains(index)) {
                    Some(Exclusion::Owner)
                } else if down.contains(index) {
                    Some(Exclusion::Health)
                } else {
                    None
                }
            })
            .collect()
    }

    fn accredited(&self, label: &Label) -> SiteSet {
        let mut sites = SiteSet::none(self.sites.len());
        for (clearance, members) in &self.accreditations {
            if clearance.check(label).is_ok() {
                sites.union(members);
            }
        }
        sites
    }

    /// The nation's rules that hold at `label`: those from a classification at or below the label's.
    /// A rule whose label is of another policy holds too (fail closed).
    fn residency_rules<'a>(&'a self, nation: &str, label: &'a Label) -> impl Iterator<Item = &'a Residency> {
        self.residency.get(nation).into_iter().flatten().filter(move |rule| match &rule.from {
            None => true,
            Some(from) => from.policy().id != label.policy().id || label.level() >= from.level(),
        })
    }
}
