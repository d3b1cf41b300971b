//! Sovereign placement on the request path: with `[[sites]]` configured, this
//! site serves a request only when the router finds it eligible (it serves the
//! model, its accreditation covers the label, the caller's residency rules and
//! the model owner's placement rules allow it). Otherwise the request is
//! refused, naming only the class of rule, never the rule.

use rampart_api::ApiError;
use rampart_config::Config;
use rampart_labels::{Label, Policies};
use rampart_router::{Exclusion, SiteSet, Topology};

/// The compiled sites and rules, and which of the sites this one is.
pub struct Placement {
    topology: Topology,
    local: usize,
    /// Sites known to be down: none yet, as peers' health is not tracked.
    down: SiteSet,
}

impl Placement {
    /// `None` when the configuration lists no `[[sites]]`.
    pub fn new(config: &Config, labels: &Policies) -> anyhow::Result<Option<Self>> {
        let Some(own) = &config.site else { return Ok(None) };
        let topology = Topology::new(config, labels)?;
        let local =
            topology.index_of(&own.id).ok_or_else(|| anyhow::anyhow!("[site] id '{}' is not a site", own.id))?;
        let down = SiteSet::none(topology.sites().len());
        Ok(Some(Self { topology, local, down }))
    }

    /// Whether this site may serve `model` for a caller of `nation` at `label`.
    pub fn check(&self, nation: &str, label: &Label, model: &str) -> Result<(), ApiError> {
        let eligible = self.topology.eligible(nation, label, model, &self.down);
        if eligible.contains(self.local) {
            return Ok(());
        }
        let reasons = self.topology.explain(nation, label, model, &self.down);
        if eligible.is_empty() {
            let mut classes: Vec<Exclusion> = reasons.into_iter().flatten().collect();
            classes.sort();
            classes.dedup();
            let names: Vec<&str> = classes.iter().map(|c| c.as_str()).collect();
            return Err(ApiError::no_eligible_site(&names.join(", ")));
        }
        let class = reasons[self.local].map_or("placement", Exclusion::as_str);
        Err(ApiError::site_not_eligible(class))
    }
}
