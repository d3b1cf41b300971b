//! Property tests: dominance is a partial order, the high-water mark is its
//! least upper bound (commutative, associative, monotone), access respects
//! dominance, every form round-trips, and no parser panics on any input.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use proptest::prelude::*;
use rampart_labels::{Clearance, Label, LabelJson, Policies};

fn policies() -> &'static Policies {
    static P: OnceLock<Policies> = OnceLock::new();
    P.get_or_init(Policies::nato)
}

const LEVELS: [&str; 5] = ["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET"];
const TAGS: [(&str, &[&str]); 5] = [
    ("Context", &["NATO", "EAPC", "PFP"]),
    ("Releasable To", &["GBR", "USA", "DEU", "FRA"]),
    ("Special Category Designators", &["ATOMAL", "CRYPTO", "SIOP"]),
    ("Administrative", &["STAFF", "MEDICAL"]),
    ("Only", &["GBR", "DEU"]),
];

/// Category values: for each tag, absent or a subset (possibly empty) of a few values.
fn categories(allow_empty: bool) -> impl Strategy<Value = BTreeMap<String, BTreeSet<String>>> {
    let per_tag: Vec<_> = TAGS
        .iter()
        .map(|(tag, values)| {
            let n = values.len();
            proptest::option::of(proptest::sample::subsequence(
                values.to_vec(),
                if allow_empty { 0..=n } else { 1..=n },
            ))
            .prop_map(move |chosen| chosen.map(|v| (tag.to_string(), v.iter().map(|s| s.to_string()).collect())))
        })
        .collect();
    per_tag.prop_map(|tags| tags.into_iter().flatten().collect())
}

fn label_with(allow_empty: bool) -> impl Strategy<Value = Label> {
    (0..LEVELS.len(), categories(allow_empty)).prop_map(|(level, categories)| {
        policies()
            .label_from_json(&LabelJson { policy: "NATO".into(), classification: LEVELS[level].into(), categories })
            .expect("generated labels are valid")
    })
}

fn label() -> impl Strategy<Value = Label> {
    label_with(true)
}

fn clearance() -> impl Strategy<Value = Clearance> {
    (0..LEVELS.len(), categories(true)).prop_map(|(level, categories)| {
        Clearance::new(policies().default_policy().clone(), &[LEVELS[level].to_owned()], categories).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn dominance_is_reflexive(a in label()) {
        prop_assert!(a.dominates(&a));
    }

    #[test]
    fn dominance_is_antisymmetric(a in label(), b in label()) {
        if a.dominates(&b) && b.dominates(&a) {
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn dominance_is_transitive(a in label(), b in label(), c in label()) {
        if a.dominates(&b) && b.dominates(&c) {
            prop_assert!(a.dominates(&c));
        }
    }

    #[test]
    fn join_is_commutative_and_associative(a in label(), b in label(), c in label()) {
        prop_assert_eq!(a.join(&b).unwrap(), b.join(&a).unwrap());
        prop_assert_eq!(a.join(&b).unwrap().join(&c).unwrap(), a.join(&b.join(&c).unwrap()).unwrap());
    }

    #[test]
    fn join_is_an_upper_bound_and_monotone(a in label(), b in label(), c in label()) {
        let ab = a.join(&b).unwrap();
        prop_assert!(ab.dominates(&a), "{:?} does not dominate {:?}", ab, a);
        prop_assert!(ab.dominates(&b));
        prop_assert_eq!(a.join(&a).unwrap(), a.clone());
        // The least upper bound: anything above both is above the join.
        if c.dominates(&a) && c.dominates(&b) {
            prop_assert!(c.dominates(&ab));
        }
        // Monotone: raising one input never lowers the result.
        let raised = a.join(&c).unwrap();
        prop_assert!(raised.join(&b).unwrap().dominates(&ab));
    }

    #[test]
    fn whoever_reads_a_label_reads_what_it_dominates(c in clearance(), a in label(), b in label()) {
        if a.dominates(&b) && c.check(&a).is_ok() {
            prop_assert!(c.check(&b).is_ok(), "{:?} reads {:?} but not {:?}", c, a, b);
        }
        // And whoever reads a join reads both parts.
        let ab = a.join(&b).unwrap();
        if c.check(&ab).is_ok() {
            prop_assert!(c.check(&a).is_ok() && c.check(&b).is_ok());
        }
    }

    #[test]
    fn reading_is_dominating_and_releasability_each_on_its_own(c in clearance(), a in label(), level in 0..LEVELS.len()) {
        prop_assert_eq!(c.check(&a).is_ok(), c.dominates(&a).is_ok() && c.releasable(&a).is_ok());
        // Releasability does not depend on the classification.
        let mut json = a.to_json();
        json.classification = LEVELS[level].into();
        let other = policies().label_from_json(&json).unwrap();
        prop_assert_eq!(c.releasable(&a).is_ok(), c.releasable(&other).is_ok(), "{:?} {:?} {:?}", c, a, other);
    }

    #[test]
    fn every_form_round_trips(a in label_with(false)) {
        let p = policies();
        prop_assert_eq!(&p.label_from_json(&a.to_json()).unwrap(), &a);
        let json_text = serde_json::to_string(&a.to_json()).unwrap();
        prop_assert_eq!(&p.parse_label(&json_text).unwrap(), &a);
        prop_assert_eq!(&p.parse_label(&a.to_stanag_xml()).unwrap(), &a);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(a.to_stanag_xml());
        prop_assert_eq!(&p.parse_label(&b64).unwrap(), &a);
        let banner = a.banner();
        prop_assert_eq!(&p.parse_label(&banner).unwrap(), &a, "banner {}", banner);
        // A portion marking, categories and all.
        prop_assert_eq!(&p.parse_label(&a.portion()).unwrap(), &a, "portion {}", a.portion());
        // A banner in text is found again, at least as high.
        let found = p.default_policy().detect_markings(&format!("intro\n{banner}\nbody")).unwrap();
        prop_assert!(found.dominates(&a) || found.level() == a.level());
    }

    #[test]
    fn parsers_never_panic(text in ".{0,200}") {
        let p = policies();
        let _ = p.parse_label(&text);
        let _ = p.parse_clearance(&text);
        let _ = p.default_policy().detect_markings(&text);
        let _ = rampart_labels::SecurityPolicy::from_spif(&text);
    }

    #[test]
    fn parsers_never_panic_on_near_misses(a in label_with(false), cut in 0usize..400, flip in 0usize..400) {
        let p = policies();
        for form in [a.to_stanag_xml(), serde_json::to_string(&a.to_json()).unwrap(), a.banner()] {
            let mut bytes = form.into_bytes();
            let len = bytes.len();
            if len > 0 {
                bytes[flip % len] ^= 0x20;
                bytes.truncate(cut % (len + 1));
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = p.parse_label(&text);
        }
    }
}

proptest! {
    // Each case parses a whole 80 kB SPIF, so fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The SPIF parser on near misses of a real SPIF: cut short, a byte
    /// changed, a span removed. It returns a policy or an error, never panics.
    #[test]
    fn the_spif_parser_never_panics_on_near_misses(cut in 0usize..80_000, flip in 0usize..80_000, hole in 0usize..80_000, width in 0usize..400) {
        let mut bytes = rampart_labels::NATO_SPIF.as_bytes().to_vec();
        let len = bytes.len();
        bytes[flip % len] ^= 0x04;
        let start = hole % len;
        bytes.drain(start..(start + width).min(len));
        bytes.truncate(cut % (bytes.len() + 1));
        if let Ok(policy) = rampart_labels::SecurityPolicy::from_spif(&String::from_utf8_lossy(&bytes)) {
            let _ = std::sync::Arc::new(policy).detect_markings("NATO SECRET");
        }
    }
}

#[test]
fn the_nato_spif_loads_as_expected() {
    let nato = policies().default_policy();
    assert_eq!(nato.name, "NATO");
    assert_eq!(nato.id, "1.3.26.1.3.1");
    let names: Vec<&str> = nato.classifications.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, LEVELS);
    let portions: Vec<&str> = nato.classifications.iter().filter_map(|c| c.portion.as_deref()).collect();
    assert_eq!(portions, ["NU", "NR", "NC", "NS", "CTS"]);
    let tags: Vec<(&str, rampart_labels::TagKind)> = nato.tags.iter().map(|t| (t.name.as_str(), t.kind)).collect();
    use rampart_labels::TagKind::*;
    assert_eq!(
        tags,
        [
            ("Special Category Designators", Restrictive),
            ("Releasable To", Permissive),
            ("Administrative", Informative),
            ("Context", Permissive),
            ("Only", Permissive),
            ("Limited", Informative),
        ]
    );
    let context = nato.tag("Context").unwrap();
    assert_eq!(context.value("NATO").unwrap().phrases, ["NATO", "COSMIC"]);
    let releasable = nato.tag("Releasable To").unwrap();
    assert_eq!(releasable.prefix.as_deref(), Some("Releasable To"));
    assert_eq!(releasable.separator, ", ");
    assert_eq!(releasable.value("GBR").unwrap().phrases[0], "United Kingdom");
    assert_eq!(nato.tag("Only").unwrap().suffix.as_deref(), Some("Only"));
}

#[test]
fn banners_read_as_nato_writes_them() {
    let p = policies();
    let cases = [
        (r#"{"policy":"NATO","classification":"SECRET","categories":{"Context":["NATO"]}}"#, "NATO SECRET", "(NS)"),
        (
            r#"{"policy":"NATO","classification":"SECRET","categories":{"Context":["NATO"],"Releasable To":["GBR","USA"]}}"#,
            "NATO SECRET Releasable To United Kingdom, United States of America",
            "(NS//REL TO GBR, USA)",
        ),
        (
            r#"{"policy":"NATO","classification":"TOP SECRET","categories":{"Context":["NATO"],"Special Category Designators":["ATOMAL"]}}"#,
            "NATO TOP SECRET ATOMAL",
            "(CTS//ATOMAL)",
        ),
        (r#"{"policy":"NATO","classification":"UNCLASSIFIED"}"#, "UNCLASSIFIED", "(UNCLASSIFIED)"),
        (
            r#"{"policy":"NATO","classification":"SECRET","categories":{"Context":["PFP"]}}"#,
            "NATO/PFP SECRET",
            "(NS//NATO/PFP)",
        ),
        (
            r#"{"policy":"NATO","classification":"CONFIDENTIAL","categories":{"Context":["NATO"],"Only":["DEU"]}}"#,
            "NATO CONFIDENTIAL Germany Only",
            "(NC//Germany Only)",
        ),
    ];
    for (json, banner, portion) in cases {
        let label = p.parse_label(json).unwrap();
        assert_eq!(label.banner(), banner);
        assert_eq!(label.portion(), portion);
        assert_eq!(p.parse_label(banner).unwrap(), label);
        assert_eq!(p.parse_label(portion).unwrap(), label);
    }
}

#[test]
fn rel_to_is_the_short_form_and_portions_carry_categories() {
    let p = Policies::nato();
    let long = p.parse_label("NATO SECRET Releasable To United Kingdom, United States of America").unwrap();
    assert_eq!(p.parse_label("NATO SECRET REL TO GBR, USA").unwrap(), long);
    assert_eq!(p.parse_label("NATO SECRET//REL TO GBR, USA").unwrap(), long);
    let portion = p.parse_label("(NS//REL TO GBR, USA)").unwrap();
    assert_eq!((portion.level(), portion.categories().get("Releasable To").map(|v| v.len())), (3, Some(2)));
    assert!(long.dominates(&portion) && portion.dominates(&p.parse_label("(NS)").unwrap()));
    assert!(!p.parse_label("NATO SECRET").unwrap().dominates(&portion), "a release to all is wider than REL TO");
    for bad in ["(NS//REL TO)", "(NS//BOGUS)", "(XS//REL TO GBR)", "(NS//REL TO NARNIA)"] {
        assert!(p.parse_label(bad).is_err(), "{bad}");
    }
}
