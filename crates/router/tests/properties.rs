//! For random sites, rules, labels and health, the router's eligible sites are
//! exactly those that satisfy every constraint, checked here one by one from
//! the configuration, and `explain` agrees.

mod common;

use std::path::Path;

use common::{ClauseSpec, PlacementSpec, ResidencySpec, SiteSpec, config};
use proptest::prelude::*;
use rampart_config::Config;
use rampart_labels::{Clearance, Policies};
use rampart_router::{Exclusion, SiteSet, Topology};

const NATIONS: [&str; 6] = ["GBR", "USA", "DEU", "FRA", "POL", "CAN"];
const GROUPS: [&str; 2] = ["EU", "NATO"];
const LEVELS: [&str; 4] = ["NATO UNCLASSIFIED", "NATO RESTRICTED", "NATO CONFIDENTIAL", "NATO SECRET"];
const MODELS: usize = 4;

fn nation() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(&NATIONS[..])
}

fn jurisdictions() -> impl Strategy<Value = Vec<&'static str>> {
    let codes: Vec<&'static str> = NATIONS.iter().chain(&GROUPS).copied().collect();
    proptest::sample::subsequence(codes, 1..4)
}

fn site() -> impl Strategy<Value = SiteSpec> {
    (
        nation(),
        proptest::sample::subsequence(&NATIONS[..], 1..3),
        1u8..=5,
        proptest::sample::select(&LEVELS[..]),
        proptest::sample::subsequence((0..MODELS).collect::<Vec<_>>(), 0..=MODELS),
    )
        .prop_map(|(jurisdiction, operators, security_level, accreditation, models)| SiteSpec {
            jurisdiction,
            operators,
            security_level,
            accreditation,
            models: models.into_iter().map(|m| format!("m{m}")).collect(),
        })
}

fn residency() -> impl Strategy<Value = ResidencySpec> {
    (nation(), proptest::option::of(proptest::sample::select(&LEVELS[..])), jurisdictions())
        .prop_map(|(nation, from_label, jurisdictions)| ResidencySpec { nation, from_label, jurisdictions })
}

fn clause() -> impl Strategy<Value = ClauseSpec> {
    (
        proptest::option::of(proptest::sample::subsequence(&NATIONS[..], 1..3)),
        proptest::option::of(1u8..=5),
        proptest::option::of(jurisdictions()),
    )
        .prop_map(|(operators, min_security_level, jurisdictions)| ClauseSpec {
            operators,
            min_security_level,
            jurisdictions,
        })
}

fn placement() -> impl Strategy<Value = PlacementSpec> {
    (nation(), proptest::collection::vec(clause(), 1..3)).prop_map(|(owner, any_of)| PlacementSpec { owner, any_of })
}

/// Whether `site` may serve the request, each constraint checked directly from the configuration.
fn allowed(config: &Config, labels: &Policies, index: usize, nation: &str, label: &str, model: &str) -> bool {
    let site = &config.sites[index];
    let label = labels.parse_label(label).unwrap();
    let groups = config.jurisdiction_groups();
    let within = |codes: &[String], jurisdiction: &str| {
        codes.iter().any(|c| {
            c == jurisdiction || groups.get(c).is_some_and(|members| members.iter().any(|m| m == jurisdiction))
        })
    };
    let serves = site.models.iter().any(|m| m == model)
        || site
            .backends
            .iter()
            .any(|b| config.backends.iter().any(|d| &d.name == b && d.models.iter().any(|m| m == model)));
    let accredited = Clearance::from_ceiling(&labels.parse_label(&site.accreditation).unwrap()).check(&label).is_ok();
    let resident = config.residency.iter().filter(|r| r.nation == nation).all(|rule| {
        let holds =
            rule.from_label.as_ref().is_none_or(|from| label.level() >= labels.parse_label(from).unwrap().level());
        !holds || within(&rule.jurisdictions, &site.jurisdiction)
    });
    let owner = config.models.iter().find(|m| m.name == model).and_then(|m| m.owner.clone());
    let placed = owner.is_none_or(|owner| {
        config.placement.iter().filter(|rule| rule.owner == owner).all(|rule| {
            rule.any_of.iter().any(|c| {
                c.operators.as_ref().is_none_or(|ops| site.operators.iter().all(|o| ops.contains(o)))
                    && c.min_security_level.is_none_or(|level| site.security_level >= level)
                    && c.jurisdictions.as_ref().is_none_or(|j| within(j, &site.jurisdiction))
            })
        })
    });
    serves && accredited && resident && placed
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn eligible_sites_satisfy_every_constraint_and_only_they_do(
        sites in proptest::collection::vec(site(), 1..12),
        residency in proptest::collection::vec(residency(), 0..6),
        placement in proptest::collection::vec(placement(), 0..4),
        owners in proptest::collection::vec(proptest::option::of(nation()), MODELS),
        nation in nation(),
        label in proptest::sample::select(&LEVELS[..]),
        model in 0..MODELS,
        down in proptest::collection::vec(any::<bool>(), 12),
    ) {
        // Owners are declared for the models some site serves (a declaration needs a server).
        let served = |m: &String| sites.iter().any(|s| s.models.contains(m));
        let owners: Vec<(String, &str)> = owners
            .iter()
            .enumerate()
            .filter_map(|(m, o)| o.map(|o| (format!("m{m}"), o)))
            .filter(|(m, _)| served(m))
            .collect();
        let text = config(&sites, &residency, &placement, &owners);
        let config = Config::parse(&text, Path::new(".")).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let labels = Policies::nato();
        let topology = Topology::new(&config, &labels).unwrap();
        let model = format!("m{model}");
        let mut unhealthy = SiteSet::none(sites.len());
        for (index, _) in down.iter().enumerate().take(sites.len()).filter(|(_, d)| **d) {
            unhealthy.insert(index);
        }
        let parsed = labels.parse_label(label).unwrap();
        let eligible = topology.eligible(nation, &parsed, &model, &unhealthy);
        let reasons = topology.explain(nation, &parsed, &model, &unhealthy);
        for (index, reason) in reasons.iter().enumerate() {
            let permitted = allowed(&config, &labels, index, nation, label, &model);
            let expected = permitted && !unhealthy.contains(index);
            prop_assert_eq!(eligible.contains(index), expected, "site {}\n{}", index, text);
            prop_assert_eq!(reason.is_none(), expected, "site {}: {:?}", index, reason);
            if unhealthy.contains(index) && permitted {
                prop_assert_eq!(*reason, Some(Exclusion::Health));
            }
        }
        prop_assert_eq!(reasons.len(), sites.len());
        // "No eligible site" exactly when the set is empty.
        prop_assert_eq!(eligible.is_empty(), reasons.iter().all(Option::is_some));
    }
}
