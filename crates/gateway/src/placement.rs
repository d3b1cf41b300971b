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
}

/// Where a request may be served.
#[derive(Clone)]
pub struct Plan {
    /// This site may serve it.
    pub local: bool,
    /// Every site that may serve it (this one included when `local`).
    pub eligible: SiteSet,
}

impl Placement {
    /// `None` when the configuration lists no `[[sites]]`.
    pub fn new(config: &Config, labels: &Policies) -> anyhow::Result<Option<Self>> {
        let Some(own) = &config.site else { return Ok(None) };
        let topology = Topology::new(config, labels)?;
        let local =
            topology.index_of(&own.id).ok_or_else(|| anyhow::anyhow!("[site] id '{}' is not a site", own.id))?;
        Ok(Some(Self { topology, local }))
    }

    /// The compiled sites and rules.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The sites known to be down: this one while it drains.
    pub fn down(&self, draining: bool) -> SiteSet {
        let mut down = SiteSet::none(self.topology.sites().len());
        if draining {
            down.insert(self.local);
        }
        down
    }

    /// Where `model` may be served for a caller of `nation` at `label`, sites
    /// in `down` left out. A request a peer forwarded here (`forwarded`) may be
    /// served only here: it is never sent on. Refusals name only the class of
    /// rule that excluded the sites.
    pub fn plan(
        &self,
        nation: &str,
        label: &Label,
        model: &str,
        down: &SiteSet,
        forwarded: bool,
    ) -> Result<Plan, ApiError> {
        let eligible = self.topology.eligible(nation, label, model, down);
        let local = eligible.contains(self.local);
        if local || (!forwarded && !eligible.is_empty()) {
            return Ok(Plan { local, eligible });
        }
        let reasons = self.topology.explain(nation, label, model, down);
        if reasons[self.local] == Some(Exclusion::Health) {
            // Only this site, which is draining, could serve it here.
            return Err(ApiError::site_draining());
        }
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
