//! The site's security stages, built together at start-up from one set of
//! label policies and one default label: identify, label, authorize.

use anyhow::Context as _;
use rampart_config::Config;
use rampart_labels::{Policies, SecurityPolicy};

use crate::authorize::Authorization;
use crate::identify::Identification;
use crate::labelling::Labelling;

/// Identity, labels and policy of the site, one stage each.
pub struct Security {
    /// The identify stage.
    pub identification: Identification,
    /// The label stage.
    pub labelling: Labelling,
    /// The authorize stage.
    pub authorization: Authorization,
}

/// The security policies `config` names (`labels.spif`), or the built-in NATO policy when it names none.
pub fn load_policies(config: &Config) -> anyhow::Result<Policies> {
    if config.labels.spif.is_empty() {
        return Ok(Policies::nato());
    }
    let mut policies = Vec::new();
    for path in &config.labels.spif {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read SPIF '{}'", path.display()))?;
        policies.push(SecurityPolicy::from_spif(&text).with_context(|| format!("SPIF '{}'", path.display()))?);
    }
    Ok(Policies::new(policies)?)
}

impl Security {
    /// Loads policies, identity settings and Cedar policies; fails start-up on any error.
    pub fn new(config: &Config, model_ids: &[String]) -> anyhow::Result<Self> {
        let labels = load_policies(config)?;
        let default_label = labels
            .parse_label(&config.labels.default_label)
            .map_err(|e| anyhow::anyhow!("labels.default_label '{}': {e}", config.labels.default_label))?;
        let identification = Identification::new(config, &labels, &default_label)?;
        let authorization = Authorization::new(config, &labels, &default_label, model_ids)?;
        let labelling = Labelling::new(labels, default_label);
        Ok(Self { identification, labelling, authorization })
    }

    /// The security policies labels are read with.
    pub fn labels(&self) -> &Policies {
        self.labelling.policies()
    }
}
