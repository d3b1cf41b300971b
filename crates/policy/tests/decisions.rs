//! Cedar decisions over real labels: the built-in rules, operator policies,
//! `forbid` winning, the ids behind each decision, and failing closed.

use rampart_labels::{Clearance, Policies};
use rampart_policy::{Action, Authority, LabelFacts, Refusal, Resource, Subject};

fn subject(id: &str, nation: &str, roles: &[&str]) -> Subject {
    Subject { id: id.into(), nation: nation.into(), roles: roles.iter().map(|r| r.to_string()).collect() }
}

fn model(id: &str, owner: Option<&str>) -> Resource {
    Resource::Model { id: id.into(), owner: owner.map(str::to_owned), accreditation: "NATO SECRET".into() }
}

struct World {
    labels: Policies,
    site: Clearance,
}

impl World {
    fn new() -> Self {
        let labels = Policies::nato();
        let site = Clearance::from_ceiling(&labels.parse_label("NATO SECRET").unwrap());
        Self { labels, site }
    }

    fn facts(&self, clearance: &str, label: &str) -> LabelFacts {
        let clearance = self.labels.parse_clearance(clearance).unwrap();
        LabelFacts::assess(&clearance, &self.labels.parse_label(label).unwrap(), &self.site)
    }
}

const GBR_SECRET: &str =
    r#"{"policy":"NATO","classifications":["SECRET"],"categories":{"Context":["NATO"],"Releasable To":["GBR"]}}"#;
const DEU_CONFIDENTIAL: &str =
    r#"{"policy":"NATO","classifications":["CONFIDENTIAL"],"categories":{"Context":["NATO"],"Releasable To":["DEU"]}}"#;

#[test]
fn built_in_rules_decide_with_their_reasons() {
    let w = World::new();
    let authority = Authority::load(&[] as &[&str]).unwrap();
    let gbr = subject("gbr-secret", "GBR", &["analyst"]);
    let m = model("smollm2", None);
    let cases = [
        (GBR_SECRET, "NATO SECRET", None, "rampart/infer"),
        (GBR_SECRET, "NATO SECRET Releasable To GBR, USA", None, "rampart/infer"),
        (GBR_SECRET, "NATO SECRET Releasable To USA", Some(Refusal::NotReleasable), "rampart/not-releasable"),
        (DEU_CONFIDENTIAL, "NATO SECRET", Some(Refusal::LabelExceedsClearance), "rampart/label-exceeds-clearance"),
        (GBR_SECRET, "NATO SECRET ATOMAL", Some(Refusal::LabelExceedsClearance), "rampart/label-exceeds-clearance"),
        (
            r#"{"policy":"NATO","classifications":["TOP SECRET"],"categories":{"Context":["NATO"]}}"#,
            "COSMIC TOP SECRET",
            Some(Refusal::LabelExceedsAccreditation),
            "rampart/label-exceeds-accreditation",
        ),
    ];
    for (clearance, label, want, policy) in cases {
        let decision = authority.decide(&gbr, Action::Infer, &m, &w.facts(clearance, label));
        assert_eq!(decision.refusal, want, "{label}");
        assert!(decision.policies.iter().any(|p| p == policy), "{label}: {:?}", decision.policies);
    }
    // Above the clearance but releasable to it: only the clearance rule decides.
    let decision =
        authority.decide(&gbr, Action::Infer, &m, &w.facts(DEU_CONFIDENTIAL, "NATO SECRET Releasable To DEU"));
    assert_eq!(decision.refusal, Some(Refusal::LabelExceedsClearance));
    assert!(!decision.policies.iter().any(|p| p == "rampart/not-releasable"), "{:?}", decision.policies);
    // A label both above the clearance and not releasable: the clearance is named first.
    let decision =
        authority.decide(&gbr, Action::Infer, &m, &w.facts(DEU_CONFIDENTIAL, "NATO SECRET Releasable To GBR"));
    assert_eq!(decision.refusal, Some(Refusal::LabelExceedsClearance));
    assert_eq!(Refusal::LabelExceedsClearance.code(), "label_exceeds_clearance");
}

#[test]
fn audit_admin_and_metrics_need_their_roles() {
    let authority = Authority::load(&[] as &[&str]).unwrap();
    let none = LabelFacts::none();
    let auditor = subject("auditor", "GBR", &["auditor"]);
    let analyst = subject("gbr-secret", "GBR", &["analyst"]);
    assert!(authority.decide(&auditor, Action::ReadAudit, &Resource::AuditLog, &none).allowed());
    let refused = authority.decide(&analyst, Action::ReadAudit, &Resource::AuditLog, &none);
    assert_eq!(refused.refusal, Some(Refusal::PolicyForbids));
    assert!(refused.policies.is_empty(), "no policy permits: {:?}", refused.policies);
    let site = Resource::Site("gbr-north".into());
    assert!(!authority.decide(&auditor, Action::Admin, &site, &none).allowed());
    assert!(authority.decide(&subject("ops", "GBR", &["admin"]), Action::Admin, &site, &none).allowed());
    // Metrics: the monitor role (a scraper) and admins; not auditors or analysts.
    let monitor = authority.decide(&subject("scraper", "GBR", &["monitor"]), Action::ReadMetrics, &site, &none);
    assert_eq!(monitor.policies, ["rampart/monitors-read-metrics"]);
    assert!(authority.decide(&subject("ops", "GBR", &["admin"]), Action::ReadMetrics, &site, &none).allowed());
    assert!(!authority.decide(&auditor, Action::ReadMetrics, &site, &none).allowed());
    assert!(!authority.decide(&analyst, Action::ReadMetrics, &site, &none).allowed());
    assert!(!authority.decide(&subject("scraper", "GBR", &["monitor"]), Action::Admin, &site, &none).allowed());
    // The console: every identified caller may sign in, whatever their roles.
    for who in [&auditor, &analyst, &subject("nobody", "DEU", &[])] {
        let decision = authority.decide(who, Action::UseConsole, &site, &none);
        assert!(decision.allowed());
        assert_eq!(decision.policies, ["rampart/console"]);
    }
}

#[test]
fn operator_policies_add_rules_and_forbid_wins() {
    let w = World::new();
    let operator = r#"
        @id("only-gbr-on-gbr-model")
        forbid (principal, action == Rampart::Action::"infer", resource == Rampart::Model::"gbr-model")
        unless { principal.nation == "GBR" };

        @id("usa-models-stay-with-five-eyes")
        forbid (principal, action, resource is Rampart::Model)
        when { resource has owner && resource.owner == "USA" && !(["USA", "GBR", "CAN", "AUS", "NZL"].contains(principal.nation)) };

        // No @id: named after its file and position.
        forbid (principal in Rampart::Role::"suspended", action, resource);
    "#;
    let authority = Authority::from_texts(&[("site.cedar", operator)]).unwrap();
    let facts = w.facts(GBR_SECRET, "NATO SECRET");
    let deu_facts = w.facts(DEU_CONFIDENTIAL, "NATO CONFIDENTIAL");
    let gbr = subject("gbr-secret", "GBR", &["analyst"]);
    let deu = subject("deu-confidential", "DEU", &["analyst"]);
    assert!(authority.decide(&gbr, Action::Infer, &model("gbr-model", None), &facts).allowed());
    let refused = authority.decide(&deu, Action::Infer, &model("gbr-model", None), &deu_facts);
    assert_eq!(refused.refusal, Some(Refusal::PolicyForbids));
    assert_eq!(refused.policies, ["only-gbr-on-gbr-model"]);
    assert!(authority.decide(&gbr, Action::Infer, &model("frontier", Some("USA")), &facts).allowed());
    let refused = authority.decide(&deu, Action::ListModels, &model("frontier", Some("USA")), &deu_facts);
    assert_eq!(refused.policies, ["usa-models-stay-with-five-eyes"]);
    let suspended = subject("gbr-2", "GBR", &["analyst", "suspended"]);
    let refused = authority.decide(&suspended, Action::Infer, &model("smollm2", None), &facts);
    assert_eq!(refused.policies, ["site.cedar:2"]);
    // A built-in label refusal still names its own code when an operator forbid also applies.
    let refused =
        authority.decide(&deu, Action::Infer, &model("gbr-model", None), &w.facts(DEU_CONFIDENTIAL, "NATO SECRET"));
    assert_eq!(refused.refusal, Some(Refusal::LabelExceedsClearance));
}

#[test]
fn a_policy_scoped_to_actions_decides_those_actions_only() {
    let w = World::new();
    let operator = r#"
        @id("hidden-from-lists")
        forbid (principal, action == Rampart::Action::"list_models", resource == Rampart::Model::"hidden");

        @id("deu-neither-lists-nor-runs")
        forbid (principal, action in [Rampart::Action::"list_models", Rampart::Action::"infer"], resource)
        when { principal.nation == "DEU" };
    "#;
    let authority = Authority::from_texts(&[("actions.cedar", operator)]).unwrap();
    let facts = w.facts(GBR_SECRET, "NATO SECRET");
    let gbr = subject("gbr-secret", "GBR", &["analyst"]);
    let hidden = model("hidden", None);
    // The same principal and model, asked about one action and then another: each action has its own policies.
    assert!(authority.decide(&gbr, Action::Infer, &hidden, &facts).allowed());
    let refused = authority.decide(&gbr, Action::ListModels, &hidden, &facts);
    assert_eq!(refused.policies, ["hidden-from-lists"]);
    let listed = authority.decide(&gbr, Action::ListModels, &model("smollm2", None), &facts);
    assert_eq!(listed.policies, ["rampart/list-models"]);
    let deu = subject("deu-confidential", "DEU", &["analyst", "admin"]);
    let deu_facts = w.facts(DEU_CONFIDENTIAL, "NATO CONFIDENTIAL");
    for action in [Action::Infer, Action::ListModels] {
        let refused = authority.decide(&deu, action, &model("smollm2", None), &deu_facts);
        assert!(refused.policies.iter().any(|p| p == "deu-neither-lists-nor-runs"), "{action:?}: {refused:?}");
    }
    let site = Resource::Site("gbr-north".into());
    assert!(authority.decide(&deu, Action::Admin, &site, &LabelFacts::none()).allowed());
}

#[test]
fn a_principal_a_policy_names_is_told_apart_from_others_with_the_same_nation_and_roles() {
    let w = World::new();
    let operator = r#"
        @id("alice-barred") forbid (principal == Rampart::Principal::"alice", action, resource);
        @id("bob-off-gbr-model")
        forbid (principal, action, resource == Rampart::Model::"gbr-model") when { principal == Rampart::Principal::"bob" };
        @id("odd-name-barred") forbid (principal == Rampart::Principal::"rampart: a principal no policy names", action, resource);
    "#;
    let authority = Authority::from_texts(&[("site.cedar", operator)]).unwrap();
    let facts = w.facts(GBR_SECRET, "NATO SECRET");
    let analyst = |id: &str| subject(id, "GBR", &["analyst"]);
    let (smollm2, gbr_model) = (model("smollm2", None), model("gbr-model", None));
    // Twice: the second time every answer comes from memory, which must still tell them apart.
    for _ in 0..2 {
        assert!(authority.decide(&analyst("carol"), Action::Infer, &smollm2, &facts).allowed());
        assert_eq!(authority.decide(&analyst("alice"), Action::Infer, &smollm2, &facts).policies, ["alice-barred"]);
        assert!(authority.decide(&analyst("dave"), Action::Infer, &gbr_model, &facts).allowed());
        let bob = authority.decide(&analyst("bob"), Action::Infer, &gbr_model, &facts);
        assert_eq!(bob.policies, ["bob-off-gbr-model"]);
        assert!(authority.decide(&analyst("bob"), Action::Infer, &smollm2, &facts).allowed());
        let odd = authority.decide(&analyst("rampart: a principal no policy names"), Action::Infer, &smollm2, &facts);
        assert_eq!(odd.policies, ["odd-name-barred"]);
    }
}

#[test]
fn roles_no_policy_names_do_not_split_decisions_but_named_ones_do() {
    let w = World::new();
    let operator = r#"@id("no-contractors") forbid (principal in Rampart::Role::"contractor", action, resource);"#;
    let authority = Authority::from_texts(&[("site.cedar", operator)]).unwrap();
    let facts = w.facts(GBR_SECRET, "NATO SECRET");
    let m = model("smollm2", None);
    for _ in 0..2 {
        for roles in [&["analyst"][..], &["analyst", "team-7"], &["team-7", "analyst", "analyst"]] {
            let decision = authority.decide(&subject("carol", "GBR", roles), Action::Infer, &m, &facts);
            assert!(decision.allowed(), "{roles:?}: {decision:?}");
        }
        for roles in [&["analyst", "contractor"][..], &["contractor", "team-7", "analyst"]] {
            let decision = authority.decide(&subject("dave", "GBR", roles), Action::Infer, &m, &facts);
            assert_eq!(decision.policies, ["no-contractors"], "{roles:?}");
        }
    }
}

#[test]
fn a_policy_reading_the_roles_attribute_tells_every_role_apart() {
    let w = World::new();
    let operator =
        r#"@id("team-7-barred") forbid (principal, action, resource) when { principal.roles.contains("team-7") };"#;
    let authority = Authority::from_texts(&[("site.cedar", operator)]).unwrap();
    let facts = w.facts(GBR_SECRET, "NATO SECRET");
    let m = model("smollm2", None);
    for _ in 0..2 {
        assert!(
            authority.decide(&subject("carol", "GBR", &["analyst", "team-6"]), Action::Infer, &m, &facts).allowed()
        );
        let barred = authority.decide(&subject("carol", "GBR", &["analyst", "team-7"]), Action::Infer, &m, &facts);
        assert_eq!(barred.policies, ["team-7-barred"]);
    }
}

#[test]
fn label_text_splits_decisions_only_when_a_policy_reads_it() {
    let w = World::new();
    let gbr = subject("gbr-secret", "GBR", &["analyst"]);
    let m = model("smollm2", None);
    // Both labels are releasable to GBR at the same level: the facts differ only in the label's text
    // (banners name nations in full: "... Releasable To United Kingdom, United States of America").
    let shared = w.facts(GBR_SECRET, "NATO SECRET Releasable To GBR, USA");
    let own = w.facts(GBR_SECRET, "NATO SECRET Releasable To GBR");
    let text_blind = Authority::load(&[] as &[&str]).unwrap();
    let reads_label =
        r#"@id("no-usa-shared") forbid (principal, action, resource) when { context.label like "*United States*" };"#;
    let reads_policy =
        r#"@id("nato-only") forbid (principal, action, resource) unless { context.label_policy == "NATO" };"#;
    let text_reading = Authority::from_texts(&[("site.cedar", reads_label), ("policy.cedar", reads_policy)]).unwrap();
    for _ in 0..2 {
        assert!(text_blind.decide(&gbr, Action::Infer, &m, &shared).allowed());
        assert!(text_blind.decide(&gbr, Action::Infer, &m, &own).allowed());
        assert_eq!(text_reading.decide(&gbr, Action::Infer, &m, &shared).policies, ["no-usa-shared"]);
        assert!(text_reading.decide(&gbr, Action::Infer, &m, &own).allowed());
        let mut other_policy = own.clone();
        other_policy.label_policy = "DEU".into();
        assert_eq!(text_reading.decide(&gbr, Action::Infer, &m, &other_policy).policies, ["nato-only"]);
    }
}

#[test]
fn a_policy_that_cannot_be_evaluated_refuses() {
    let w = World::new();
    // Valid against the schema, but it overflows when evaluated.
    let broken = r#"@id("overflow") forbid (principal, action, resource) when { context.label_level + 9223372036854775807 > 0 };"#;
    let authority = Authority::from_texts(&[("broken.cedar", broken)]).unwrap();
    let decision = authority.decide(
        &subject("gbr-secret", "GBR", &["analyst"]),
        Action::Infer,
        &model("smollm2", None),
        &w.facts(GBR_SECRET, "NATO SECRET"),
    );
    assert_eq!(decision.refusal, Some(Refusal::PolicyError));
}

#[test]
fn bad_policy_files_are_refused_at_load() {
    assert!(Authority::from_texts(&[("bad.cedar", "permit (principal, action, resource")]).is_err());
    let err = Authority::from_texts(&[("dup.cedar", r#"@id("rampart/infer") permit (principal, action, resource);"#)])
        .err()
        .expect("a duplicate id is refused");
    assert!(err.to_string().contains("rampart/infer"), "{err}");
    // Policies that do not fit the schema stop loading, naming the policy and the fault.
    for (policy, names) in [
        (
            r#"@id("typo") forbid (principal, action, resource is Rampart::Model) when { resource.ownr == "USA" };"#,
            "ownr",
        ),
        (
            r#"@id("unguarded") forbid (principal, action, resource is Rampart::Model) when { resource.owner == "USA" };"#,
            "owner",
        ),
        (r#"@id("no-such-action") permit (principal, action == Rampart::Action::"delete", resource);"#, "delete"),
        (r#"@id("no-such-type") permit (principal is Rampart::User, action, resource);"#, "User"),
    ] {
        let err = Authority::from_texts(&[("site.cedar", policy)]).err().expect("refused at load");
        let message = err.to_string();
        assert!(message.contains(names) && message.contains("policy '"), "{message}");
    }
    let missing = Authority::load(&["/nonexistent/site.cedar"]).err().expect("a missing file is refused");
    assert!(missing.to_string().contains("/nonexistent/site.cedar"));
}

#[test]
fn odd_subject_and_model_ids_are_safe() {
    let w = World::new();
    let authority = Authority::load(&[] as &[&str]).unwrap();
    let odd = subject("CN=a \"quoted\" \\ name,O=x", "GBR", &["ana\"lyst"]);
    // A role named twice, with a policy scoped to it, is one role.
    let scoped =
        Authority::from_texts(&[("r.cedar", r#"forbid (principal in Rampart::Role::"suspended", action, resource);"#)])
            .unwrap();
    let twice = scoped.decide(
        &subject("x", "GBR", &["suspended", "suspended"]),
        Action::Infer,
        &model("smollm2", None),
        &w.facts(GBR_SECRET, "NATO SECRET"),
    );
    assert_eq!(twice.refusal, Some(Refusal::PolicyForbids));
    let decision = authority.decide(&odd, Action::Infer, &model("m\"odel", None), &w.facts(GBR_SECRET, "NATO SECRET"));
    assert!(decision.allowed(), "{decision:?}");
}

#[test]
fn the_documented_examples_load() {
    let doc = include_str!("../../../docs/security.md");
    let examples: Vec<&str> =
        doc.split("```cedar\n").skip(1).map(|rest| rest.split("```").next().unwrap_or_default()).collect();
    assert!(!examples.is_empty());
    for example in examples {
        let authority = Authority::from_texts(&[("docs.cedar", example)]);
        assert!(authority.is_ok(), "{example}: {:?}", authority.err());
    }
}
