//! Label check + Cedar decision latency with 1,000 operator policies loaded.
//!
//! `cargo bench -p rampart-policy` prints p50/p99/p999 per decision: the label
//! checks (`LabelFacts::assess`) plus `Authority::decide`, for requests that are
//! allowed and refused, answered from memory and evaluated by Cedar.
//! `cargo bench -p rampart-policy -- TEXT` runs only the rows whose question contains TEXT.

use std::time::Instant;

use rampart_labels::{Clearance, Policies};
use rampart_policy::{Action, Authority, LabelFacts, Resource, Subject};

const OPERATOR_POLICIES: usize = 1000;
const ITERATIONS: usize = 20_000;

/// How the operator policies' role rules are written.
#[derive(Clone, Copy)]
enum RoleRules {
    /// `forbid (principal in Rampart::Role::"role-N", ...)`: the role alone.
    Plain,
    /// `... when { principal.nation == "GBR" }`: for one nation's holders.
    Nation,
    /// `... when { principal in Rampart::Role::"role-M" }`: for holders of another role too
    /// (separation of duties).
    OtherRole,
}

/// Operator policies of the shapes sites write: per-model nation rules, per-owner rules, role rules.
fn operator_policies(n: usize, role_rules: RoleRules) -> String {
    let nations = ["GBR", "USA", "DEU", "FRA", "ITA", "ESP", "POL", "NLD", "CAN", "NOR"];
    (0..n)
        .map(|i| match i % 4 {
            0 => format!(
                "@id(\"op-{i}\") forbid (principal, action == Rampart::Action::\"infer\", resource == Rampart::Model::\"model-{i}\") unless {{ principal.nation == \"{}\" }};\n",
                nations[i % nations.len()]
            ),
            1 => format!(
                "@id(\"op-{i}\") forbid (principal, action, resource in Rampart::Nation::\"N{i}\") unless {{ principal.nation == \"{}\" }};\n",
                nations[i % nations.len()]
            ),
            2 => {
                let condition = match role_rules {
                    RoleRules::Plain => String::new(),
                    RoleRules::Nation => format!(" when {{ principal.nation == \"{}\" }}", nations[i % 2]),
                    RoleRules::OtherRole => format!(" when {{ principal in Rampart::Role::\"role-{}\" }}", (i + 4) % n),
                };
                format!(
                    "@id(\"op-{i}\") forbid (principal in Rampart::Role::\"role-{i}\", action == Rampart::Action::\"infer\", resource){condition};\n"
                )
            }
            _ => format!(
                "@id(\"op-{i}\") forbid (principal, action == Rampart::Action::\"infer\", resource == Rampart::Model::\"model-{i}\") when {{ context.label_level > 2 && principal.nation == \"{}\" }};\n",
                nations[i % nations.len()]
            ),
        })
        .collect()
}

fn percentile(sorted: &[u128], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

/// A policy that reads the label's text: with it loaded, labels that differ only in their text are told apart.
const READS_LABEL: &str = r#"@id("no-exercise-traffic") forbid (principal, action == Rampart::Action::"infer", resource) when { context.label like "*EXERCISE*" };"#;

fn main() {
    let filters: Vec<String> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).collect();
    let labels = Policies::nato();
    let operator = operator_policies(OPERATOR_POLICIES, RoleRules::Plain);
    let loading = Instant::now();
    let authority = Authority::from_texts(&[("operator.cedar", &operator)]).unwrap();
    let load_ms = loading.elapsed().as_secs_f64() * 1000.0;
    let role_nations = operator_policies(OPERATOR_POLICIES, RoleRules::Nation);
    let nation_reading = Authority::from_texts(&[("operator.cedar", &role_nations)]).unwrap();
    let other_roles = operator_policies(OPERATOR_POLICIES, RoleRules::OtherRole);
    let role_testing = Authority::from_texts(&[("operator.cedar", &other_roles)]).unwrap();
    let reads_label = format!("{operator}{READS_LABEL}\n");
    let label_reading = Authority::from_texts(&[("operator.cedar", &reads_label)]).unwrap();
    let site = Clearance::from_ceiling(&labels.parse_label("NATO SECRET").unwrap());
    let clearance = labels
        .parse_clearance(r#"{"policy":"NATO","classifications":["SECRET"],"categories":{"Context":["NATO"],"Releasable To":["GBR"]}}"#)
        .unwrap();
    let subject = Subject { id: "gbr-secret".into(), nation: "GBR".into(), roles: vec!["analyst".into()] };
    let model =
        Resource::Model { id: "smollm2".into(), owner: Some("GBR".into()), accreditation: "NATO SECRET".into() };
    println!(
        "{} policies loaded in {load_ms:.0} ms (parsed, validated, analysed, indexed; {} operator; one more that reads the label, or role rules with conditions, in the rows that say so), {ITERATIONS} decisions per row",
        authority.len(),
        OPERATOR_POLICIES
    );
    println!("| question | decision | p50 µs | p99 µs | p99.9 µs |");
    println!("|---|---|---|---|---|");
    for (label_text, case) in [
        ("NATO SECRET Releasable To GBR, USA", Case::Repeated),
        ("NATO SECRET Releasable To USA", Case::Repeated),
        ("NATO SECRET Releasable To GBR, USA", Case::NewLabel),
        ("NATO SECRET Releasable To GBR, USA", Case::NewLabelRead),
        ("NATO SECRET Releasable To GBR, USA", Case::NewPrincipal),
        ("NATO SECRET Releasable To GBR, USA", Case::NewRoles),
        ("NATO SECRET Releasable To GBR, USA", Case::NewNamedRoles),
        ("NATO SECRET Releasable To GBR, USA", Case::NewNamedRolesNation),
        ("NATO SECRET Releasable To GBR, USA", Case::NewNamedRolesOtherRole),
    ] {
        // `cargo bench -p rampart-policy -- TEXT` runs only the rows whose question contains TEXT.
        if !filters.is_empty() && !filters.iter().any(|f| case.describe().contains(f.as_str())) {
            continue;
        }
        let authority = match case {
            Case::NewLabelRead => &label_reading,
            Case::NewNamedRolesNation => &nation_reading,
            Case::NewNamedRolesOtherRole => &role_testing,
            _ => &authority,
        };
        let label = labels.parse_label(label_text).unwrap();
        let mut times = Vec::with_capacity(ITERATIONS);
        let mut allowed = false;
        for i in 0..ITERATIONS {
            let mut subject = subject.clone();
            if matches!(
                case,
                Case::NewPrincipal
                    | Case::NewRoles
                    | Case::NewNamedRoles
                    | Case::NewNamedRolesNation
                    | Case::NewNamedRolesOtherRole
            ) {
                subject.id = format!("analyst-{i}");
            }
            if case == Case::NewRoles {
                subject.roles.push(format!("team-{i}"));
            }
            if matches!(case, Case::NewNamedRoles | Case::NewNamedRolesNation | Case::NewNamedRolesOtherRole) {
                let (first, second) = named_role_pair(i);
                subject.roles.extend([format!("role-{first}"), format!("role-{second}")]);
            }
            let start = Instant::now();
            let mut facts = LabelFacts::assess(&clearance, &label, &site);
            if matches!(case, Case::NewLabel | Case::NewLabelRead) {
                // A label never seen before: no memoised decision applies.
                facts.label = format!("{} {i}", facts.label);
            }
            let decision = authority.decide(&subject, Action::Infer, &model, &facts);
            times.push(start.elapsed().as_nanos());
            allowed = decision.allowed();
        }
        times.sort_unstable();
        println!(
            "| {} {label_text} | {} | {:.1} | {:.1} | {:.1} |",
            case.describe(),
            if allowed { "allow" } else { "refuse" },
            percentile(&times, 0.50),
            percentile(&times, 0.99),
            percentile(&times, 0.999)
        );
    }
}

/// The `i`th pair of distinct roles that operator policies name (`role-2`, `role-6`, ...): every
/// pair is a combination never seen before, up to 31,125 of them.
fn named_role_pair(i: usize) -> (usize, usize) {
    const NAMED: usize = OPERATOR_POLICIES / 4;
    let (mut first, mut rest) = (0, i % (NAMED * (NAMED - 1) / 2));
    while rest >= NAMED - 1 - first {
        rest -= NAMED - 1 - first;
        first += 1;
    }
    let second = first + 1 + rest;
    (first * 4 + 2, second * 4 + 2)
}

#[derive(Clone, Copy, PartialEq)]
enum Case {
    /// The same principal, model and label again (memoised).
    Repeated,
    /// A label not seen before, whose text no policy reads (memoised: the facts are the same).
    NewLabel,
    /// A label not seen before, with a policy that reads the label's text (Cedar evaluates that policy).
    NewLabelRead,
    /// A principal not seen before, with the nation and roles of one seen before.
    NewPrincipal,
    /// A principal with a role never seen before that no policy names (memoised: Cedar cannot tell it apart).
    NewRoles,
    /// A principal with two roles operator policies name, never seen together before (the roles'
    /// policies hold for whoever holds the role: their answers are remembered).
    NewNamedRoles,
    /// The same, where each role's rule reads the principal's nation (answered per nation: from memory).
    NewNamedRolesNation,
    /// The same, where each role's rule tests another role (entities built, Cedar evaluates both
    /// roles' rules).
    NewNamedRolesOtherRole,
}

impl Case {
    fn describe(self) -> &'static str {
        match self {
            Case::Repeated => "repeated:",
            Case::NewLabel => "label not seen before, no policy reads it:",
            Case::NewLabelRead => "label not seen before, a policy reads it:",
            Case::NewPrincipal => "principal not seen before:",
            Case::NewRoles => "role not seen before, no policy names it:",
            Case::NewNamedRoles => "roles policies name, never together before:",
            Case::NewNamedRolesNation => "the same, the roles' rules read the principal's nation:",
            Case::NewNamedRolesOtherRole => "the same, the roles' rules test another role:",
        }
    }
}
