//! Routing decisions for 100 sites and 1,000 rules.
//!
//! `cargo bench -p rampart-router` builds a topology of 100 sites (one local,
//! 99 peers in 10 jurisdictions) with 700 residency and 300 placement rules,
//! then times `Topology::eligible` for a mix of nations, labels and models and
//! prints p50/p99/p99.9.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use common::{ClauseSpec, PlacementSpec, ResidencySpec, SiteSpec};
use rampart_config::Config;
use rampart_labels::Policies;
use rampart_router::{SiteSet, Topology};

const NATIONS: [&str; 10] = ["GBR", "USA", "DEU", "FRA", "POL", "CAN", "ITA", "ESP", "NLD", "NOR"];
const LEVELS: [&str; 4] = ["NATO UNCLASSIFIED", "NATO RESTRICTED", "NATO CONFIDENTIAL", "NATO SECRET"];
const DECISIONS: usize = 100_000;

fn main() {
    let models = |i: usize| (0..20).filter(|m| !(m + i).is_multiple_of(3)).map(|m| format!("m{m}")).collect::<Vec<_>>();
    let sites: Vec<SiteSpec> = (0..100)
        .map(|i| SiteSpec {
            jurisdiction: NATIONS[i % 10],
            operators: vec![NATIONS[i % 10], NATIONS[(i / 10) % 10]],
            security_level: (i % 5) as u8 + 1,
            accreditation: LEVELS[i % 4],
            models: models(i),
        })
        .collect();
    let residency: Vec<ResidencySpec> = (0..700)
        .map(|i| ResidencySpec {
            nation: NATIONS[i % 10],
            from_label: Some(LEVELS[(i / 10) % 4]),
            jurisdictions: vec![NATIONS[i % 10], NATIONS[(i + i / 10) % 10], if i % 2 == 0 { "NATO" } else { "EU" }],
        })
        .collect();
    let placement: Vec<PlacementSpec> = (0..300)
        .map(|i| PlacementSpec {
            owner: NATIONS[i % 10],
            any_of: vec![
                ClauseSpec { operators: Some(vec![NATIONS[i % 10]]), min_security_level: Some(3), jurisdictions: None },
                ClauseSpec { operators: None, min_security_level: Some(4 + (i % 2) as u8), jurisdictions: None },
            ],
        })
        .collect();
    let owners: Vec<(String, &str)> = (0..20).map(|m| (format!("m{m}"), NATIONS[m % 10])).collect();
    let text = common::config(&sites, &residency, &placement, &owners);
    let config = Config::parse(&text, Path::new(".")).expect("the generated configuration is valid");
    let labels = Policies::nato();
    let topology = Topology::new(&config, &labels).expect("the topology compiles");
    let parsed: Vec<_> = LEVELS.iter().map(|l| labels.parse_label(l).expect("a label")).collect();
    let model_ids: Vec<String> = (0..20).map(|m| format!("m{m}")).collect();
    let mut down = SiteSet::none(100);
    down.insert(7);
    down.insert(42);

    let mut times = Vec::with_capacity(DECISIONS);
    let mut eligible_total = 0usize;
    for i in 0..DECISIONS {
        let (nation, label, model) = (NATIONS[i % 10], &parsed[(i / 10) % 4], &model_ids[(i / 40) % 20]);
        let start = Instant::now();
        let eligible = topology.eligible(nation, label, model, &down);
        times.push(start.elapsed().as_nanos() as f64 / 1e3);
        eligible_total += eligible.iter().count();
    }
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "{} sites, {} residency + {} placement rules, {DECISIONS} decisions",
        100,
        residency.len(),
        placement.len()
    );
    println!("mean eligible sites per decision: {:.1}", eligible_total as f64 / DECISIONS as f64);
    println!("| decision | p50 µs | p99 µs | p99.9 µs |");
    println!("|---|---|---|---|");
    println!("| eligible sites (100 sites, 1,000 rules) | {:.2} | {:.2} | {:.2} |", at(0.5), at(0.99), at(0.999));
}
