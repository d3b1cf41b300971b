//! `rampart route ...`: placement decisions, explained without contacting any site.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use rampart_config::Config;
use rampart_router::{SiteSet, Topology};

/// The router's commands.
#[derive(Subcommand)]
pub enum RouteCommand {
    /// Which sites may serve a request, and for each excluded site the class of
    /// rule that excluded it (model, accreditation, residency, owner, health).
    Explain {
        /// Configuration file (TOML) with [[sites]], [[residency]] and [[placement]].
        #[arg(long)]
        config: PathBuf,
        /// The requesting nation (ISO 3166 alpha-3).
        #[arg(long)]
        nat: String,
        /// The request's label: a marking such as "NATO SECRET", or JSON / STANAG 4774 XML.
        #[arg(long)]
        label: String,
        /// The model id.
        #[arg(long)]
        model: String,
        /// A site to treat as down (repeatable); every other site is assumed healthy.
        #[arg(long)]
        down: Vec<String>,
        /// Print `{"eligible": [...], "excluded": {site: reason}}`.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `rampart route` command.
pub fn run(command: RouteCommand) -> anyhow::Result<()> {
    let RouteCommand::Explain { config, nat, label, model, down, json } = command;
    let config = Config::load(&config)?;
    anyhow::ensure!(!config.sites.is_empty(), "the configuration has no [[sites]]: there is nothing to route between");
    anyhow::ensure!(rampart_config::is_alpha3(&nat), "--nat '{nat}' is not an ISO 3166 alpha-3 code such as GBR");
    let labels = rampart_gateway::load_policies(&config)?;
    let label = labels.parse_label(&label).map_err(|e| anyhow::anyhow!("--label '{label}': {e}"))?;
    let topology = Topology::new(&config, &labels).context("the configuration's sites and rules")?;
    let mut unhealthy = SiteSet::none(topology.sites().len());
    for id in &down {
        let index = topology.index_of(id).with_context(|| format!("--down '{id}': no [[sites]] entry has this id"))?;
        unhealthy.insert(index);
    }
    let reasons = topology.explain(&nat, &label, &model, &unhealthy);
    let mut eligible = Vec::new();
    let mut excluded = BTreeMap::new();
    for (site, reason) in topology.sites().iter().zip(reasons) {
        match reason {
            None => eligible.push(site.id.as_str()),
            Some(reason) => drop(excluded.insert(site.id.as_str(), reason.as_str())),
        }
    }
    if json {
        println!("{}", serde_json::json!({"eligible": eligible, "excluded": excluded}));
    } else {
        println!("eligible: {}", if eligible.is_empty() { "none".to_owned() } else { eligible.join(", ") });
        for (site, reason) in excluded {
            println!("excluded: {site} ({reason})");
        }
    }
    Ok(())
}
