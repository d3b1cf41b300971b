//! Table-driven access decisions over the public NATO SPIF: every
//! classification against every clearance level, releasability, restrictive
//! and informative categories, markings in text, mislabelled and malformed
//! input.

use rampart_labels::{Clearance, Denial, Label, Policies};

const LEVELS: [&str; 5] = ["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET"];

fn policies() -> Policies {
    Policies::nato()
}

fn clearance(p: &Policies, level: &str, categories: &str) -> Clearance {
    let json = format!(r#"{{"policy":"NATO","classifications":["{level}"],"categories":{{{categories}}}}}"#);
    p.parse_clearance(&json).unwrap_or_else(|e| panic!("clearance {json}: {e}"))
}

fn label(p: &Policies, text: &str) -> Label {
    p.parse_label(text).unwrap_or_else(|e| panic!("label {text}: {e}"))
}

#[derive(Debug, PartialEq)]
enum Want {
    Allow,
    Classification,
    Restrictive,
    Permissive,
}

fn decide(clearance: &Clearance, label: &Label) -> Want {
    match clearance.check(label) {
        Ok(()) => Want::Allow,
        Err(Denial::Classification(_)) => Want::Classification,
        Err(Denial::Restrictive { .. }) => Want::Restrictive,
        Err(Denial::Permissive(_)) => Want::Permissive,
        Err(other) => panic!("unexpected denial {other:?}"),
    }
}

#[test]
fn every_classification_against_every_clearance_level() {
    let p = policies();
    let mut cases = 0;
    for (held_index, held) in LEVELS.iter().enumerate() {
        let c = clearance(&p, held, r#""Context":["NATO"]"#);
        for (label_index, level) in LEVELS.iter().enumerate() {
            let l = label(&p, &format!("NATO {level}"));
            let want = if label_index <= held_index { Want::Allow } else { Want::Classification };
            assert_eq!(decide(&c, &l), want, "clearance {held} reading NATO {level}");
            cases += 1;
        }
    }
    assert_eq!(cases, 25);
}

#[test]
fn an_explicit_classification_list_holds_only_what_it_names() {
    let p = policies();
    let c =
        p.parse_clearance(r#"{"policy":"NATO","classifications":["UNCLASSIFIED","SECRET"],"categories":{}}"#).unwrap();
    for (level, want) in [
        ("UNCLASSIFIED", Want::Allow),
        ("RESTRICTED", Want::Classification),
        ("CONFIDENTIAL", Want::Classification),
        ("SECRET", Want::Allow),
        ("TOP SECRET", Want::Classification),
    ] {
        assert_eq!(decide(&c, &label(&p, level)), want, "{level}");
    }
}

#[test]
fn a_level_named_twice_is_still_a_single_level() {
    // Found by fuzzing: a list naming one level twice held only that level, and its
    // emitted XML (one Classification) read back as that level and all below.
    let p = policies();
    let twice = p.parse_clearance(r#"{"policy":"NATO","classifications":["SECRET","SECRET"]}"#).unwrap();
    let once = p.parse_clearance(r#"{"policy":"NATO","classifications":["SECRET"]}"#).unwrap();
    assert_eq!(format!("{twice:?}"), format!("{once:?}"));
    assert_eq!(decide(&twice, &label(&p, "UNCLASSIFIED")), Want::Allow);
    let again = p.parse_clearance(&twice.to_stanag_xml()).unwrap();
    assert_eq!(format!("{again:?}"), format!("{twice:?}"));
}

/// (clearance level, clearance categories, label, expected)
const TABLE: &[(&str, &str, &str, Want)] = &[
    // Releasability: permissive, OR within the tag.
    ("SECRET", r#""Releasable To":["GBR"]"#, "SECRET Releasable To GBR", Want::Allow),
    ("SECRET", r#""Releasable To":["GBR"]"#, "SECRET Releasable To GBR, USA", Want::Allow),
    ("SECRET", r#""Releasable To":["GBR"]"#, "SECRET Releasable To USA", Want::Permissive),
    ("SECRET", r#""Releasable To":["GBR"]"#, "SECRET Releasable To United Kingdom", Want::Allow),
    (
        "SECRET",
        r#""Releasable To":["DEU"]"#,
        "SECRET Releasable To United Kingdom, United States of America",
        Want::Permissive,
    ),
    (
        "SECRET",
        r#""Releasable To":["USA"]"#,
        "SECRET Releasable To United Kingdom, United States of America",
        Want::Allow,
    ),
    ("SECRET", r#""Releasable To":["GBR","USA"]"#, "SECRET Releasable To FRA", Want::Permissive),
    ("SECRET", "", "SECRET Releasable To GBR", Want::Permissive),
    ("SECRET", "", "SECRET", Want::Allow),
    ("CONFIDENTIAL", r#""Releasable To":["GBR"]"#, "SECRET Releasable To GBR", Want::Classification),
    // Context: permissive.
    ("SECRET", r#""Context":["NATO"]"#, "NATO SECRET", Want::Allow),
    ("SECRET", r#""Context":["NATO"]"#, "COSMIC TOP SECRET", Want::Classification),
    ("TOP SECRET", r#""Context":["NATO"]"#, "COSMIC TOP SECRET", Want::Allow),
    ("SECRET", r#""Context":["EAPC"]"#, "NATO SECRET", Want::Permissive),
    ("SECRET", r#""Context":["EAPC"]"#, "NATO/EAPC SECRET", Want::Allow),
    ("SECRET", r#""Context":["NATO"]"#, "NATO/EAPC SECRET", Want::Permissive),
    ("SECRET", r#""Context":["NATO","EAPC"]"#, "NATO/EAPC SECRET", Want::Allow),
    ("SECRET", r#""Context":["PFP"]"#, "NATO/PFP RESTRICTED", Want::Allow),
    ("UNCLASSIFIED", r#""Context":["NATO"]"#, "NATO UNCLASSIFIED", Want::Allow),
    ("UNCLASSIFIED", "", "NATO UNCLASSIFIED", Want::Permissive),
    // AND across permissive tags.
    ("SECRET", r#""Context":["NATO"],"Releasable To":["GBR"]"#, "NATO SECRET Releasable To GBR", Want::Allow),
    ("SECRET", r#""Context":["NATO"]"#, "NATO SECRET Releasable To GBR", Want::Permissive),
    ("SECRET", r#""Releasable To":["GBR"]"#, "NATO SECRET Releasable To GBR", Want::Permissive),
    ("SECRET", r#""Context":["NATO"],"Releasable To":["USA"]"#, "NATO SECRET Releasable To GBR", Want::Permissive),
    ("SECRET", r#""Context":["NATO"],"Only":["GBR"]"#, "NATO SECRET United Kingdom Only", Want::Allow),
    ("SECRET", r#""Context":["NATO"],"Only":["DEU"]"#, "NATO SECRET United Kingdom Only", Want::Permissive),
    ("SECRET", r#""Context":["NATO"],"Releasable To":["GBR"]"#, "NATO SECRET United Kingdom Only", Want::Permissive),
    // Restrictive: every value held.
    ("SECRET", r#""Special Category Designators":["ATOMAL"]"#, "SECRET ATOMAL", Want::Allow),
    ("SECRET", "", "SECRET ATOMAL", Want::Restrictive),
    ("SECRET", r#""Special Category Designators":["CRYPTO"]"#, "SECRET ATOMAL", Want::Restrictive),
    ("SECRET", r#""Special Category Designators":["ATOMAL"]"#, "SECRET ATOMAL CRYPTO", Want::Restrictive),
    ("SECRET", r#""Special Category Designators":["ATOMAL","CRYPTO"]"#, "SECRET ATOMAL CRYPTO", Want::Allow),
    ("SECRET", r#""Special Category Designators":["ATOMAL","CRYPTO","SIOP","BOHEMIA"]"#, "SECRET BOHEMIA", Want::Allow),
    ("CONFIDENTIAL", r#""Special Category Designators":["ATOMAL"]"#, "SECRET ATOMAL", Want::Classification),
    (
        "TOP SECRET",
        r#""Context":["NATO"],"Special Category Designators":["ATOMAL"]"#,
        "COSMIC TOP SECRET ATOMAL",
        Want::Allow,
    ),
    ("TOP SECRET", r#""Context":["NATO"]"#, "COSMIC TOP SECRET ATOMAL", Want::Restrictive),
    (
        "SECRET",
        r#""Context":["NATO"],"Special Category Designators":["ATOMAL"],"Releasable To":["GBR"]"#,
        "NATO SECRET ATOMAL Releasable To GBR",
        Want::Allow,
    ),
    (
        "SECRET",
        r#""Context":["NATO"],"Releasable To":["GBR"]"#,
        "NATO SECRET ATOMAL Releasable To GBR",
        Want::Restrictive,
    ),
    // Informative: never blocks.
    ("SECRET", "", "SECRET MANAGEMENT", Want::Allow),
    ("SECRET", "", "SECRET STAFF MEDICAL", Want::Allow),
    ("RESTRICTED", r#""Context":["NATO"]"#, "NATO RESTRICTED PERSONAL", Want::Allow),
    ("RESTRICTED", r#""Context":["NATO"]"#, "NATO CONFIDENTIAL COMMERCIAL", Want::Classification),
    ("SECRET", r#""Context":["NATO"]"#, "NATO SECRET ATOMAL MANAGEMENT", Want::Restrictive),
    // JSON and XML forms decide the same way.
    (
        "SECRET",
        r#""Context":["NATO"],"Releasable To":["GBR"]"#,
        r#"{"policy":"NATO","classification":"SECRET","categories":{"Context":["NATO"],"Releasable To":["GBR","USA"]}}"#,
        Want::Allow,
    ),
    (
        "SECRET",
        r#""Context":["NATO"],"Releasable To":["DEU"]"#,
        r#"{"policy":"NATO","classification":"SECRET","categories":{"Context":["NATO"],"Releasable To":["GBR","USA"]}}"#,
        Want::Permissive,
    ),
    (
        "SECRET",
        r#""Context":["NATO"]"#,
        r#"{"policy":"1.3.26.1.3.1","classification":"TOP SECRET","categories":{"Context":["NATO"]}}"#,
        Want::Classification,
    ),
    (
        "SECRET",
        "",
        r#"{"policy":"NATO","classification":"SECRET","categories":{"Administrative":["STAFF"]}}"#,
        Want::Allow,
    ),
    (
        "SECRET",
        r#""Context":["NATO"]"#,
        r#"<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"><ConfidentialityInformation><PolicyIdentifier>NATO</PolicyIdentifier><Classification>SECRET</Classification><Category TagName="Context" Type="PERMISSIVE"><GenericValue>NATO</GenericValue></Category></ConfidentialityInformation></originatorConfidentialityLabel>"#,
        Want::Allow,
    ),
    (
        "SECRET",
        r#""Context":["EAPC"]"#,
        r#"<s:originatorConfidentialityLabel xmlns:s="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"><s:ConfidentialityInformation><s:PolicyIdentifier URI="urn:oid:1.3.26.1.3.1">NATO</s:PolicyIdentifier><s:Classification>SECRET</s:Classification><s:Category TagName="Context" Type="PERMISSIVE"><s:GenericValue>NATO</s:GenericValue></s:Category></s:ConfidentialityInformation></s:originatorConfidentialityLabel>"#,
        Want::Permissive,
    ),
    (
        "SECRET",
        "",
        r#"<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"><ConfidentialityInformation><PolicyIdentifier>NATO</PolicyIdentifier><Classification>SECRET</Classification><Category TagName="Special Category Designators" Type="RESTRICTIVE"><GenericValue>CRYPTO</GenericValue></Category></ConfidentialityInformation></originatorConfidentialityLabel>"#,
        Want::Restrictive,
    ),
    // Portion markings: the N (and the C of CTS) is the NATO context.
    ("SECRET", r#""Context":["NATO"]"#, "(NS)", Want::Allow),
    ("SECRET", "", "(NS)", Want::Permissive),
    ("SECRET", r#""Context":["PFP"]"#, "(NS)", Want::Permissive),
    ("SECRET", r#""Context":["PFP"]"#, "(NS//NATO/PFP)", Want::Allow),
    ("CONFIDENTIAL", r#""Context":["NATO"]"#, "(NS)", Want::Classification),
    ("CONFIDENTIAL", r#""Context":["NATO"]"#, "(NC)", Want::Allow),
    ("UNCLASSIFIED", r#""Context":["NATO"]"#, "(NR)", Want::Classification),
    ("TOP SECRET", r#""Context":["NATO"]"#, "(CTS)", Want::Allow),
    ("SECRET", r#""Context":["NATO"],"Releasable To":["DEU"]"#, "(NS//REL TO GBR, USA)", Want::Permissive),
    ("SECRET", r#""Context":["NATO"]"#, "(NS//ATOMAL)", Want::Restrictive),
    // Case and French phrases parse.
    ("SECRET", r#""Context":["NATO"]"#, "nato secret", Want::Allow),
    ("CONFIDENTIAL", r#""Context":["NATO"]"#, "NATO CONFIDENTIEL", Want::Allow),
    ("RESTRICTED", r#""Context":["NATO"]"#, "NATO DIFFUSION RESTREINTE", Want::Allow),
    ("RESTRICTED", r#""Context":["NATO"]"#, "NATO TRES SECRET", Want::Classification),
];

#[test]
fn decision_table() {
    let p = policies();
    for (level, categories, text, want) in TABLE {
        let c = clearance(&p, level, categories);
        assert_eq!(&decide(&c, &label(&p, text)), want, "{level} {{{categories}}} reading {text}");
    }
    assert!(TABLE.len() >= 55);
}

#[test]
fn markings_in_text_raise_the_label() {
    let p = policies();
    let nato = p.default_policy();
    let gbr_secret = clearance(&p, "SECRET", r#""Context":["NATO"],"Releasable To":["GBR"]"#);
    let deu_confidential = clearance(&p, "CONFIDENTIAL", r#""Context":["NATO"],"Releasable To":["DEU"]"#);
    let cases: &[(&str, Option<&str>)] = &[
        ("Summarise this report.", None),
        ("The secret to good bread is time.", None),
        ("Secret plans are not marked.", None),
        ("NATO SECRET\nThe convoy leaves at dawn.", Some("NATO SECRET")),
        ("(NS) The convoy leaves at dawn.", Some("NATO SECRET")),
        ("(NC) Fuel is low. (NR) Weather is fair.", Some("NATO CONFIDENTIAL")),
        ("(NC//REL TO GBR) Fuel is low.", Some("NATO CONFIDENTIAL REL TO GBR")),
        ("Header: NATO CONFIDENTIAL Releasable To Germany\nbody", Some("NATO CONFIDENTIAL Releasable To DEU")),
        ("COSMIC TOP SECRET ATOMAL\n...", Some("COSMIC TOP SECRET ATOMAL")),
        ("NATO UNCLASSIFIED then later NATO SECRET", Some("NATO SECRET")),
        ("SECRETARY of state", None),
        ("TOPSECRET", None),
        ("(ns) lower case portion", None),
    ];
    for (text, want) in cases {
        let found = nato.detect_markings(text);
        match want {
            None => assert!(found.is_none(), "{text:?} gave {found:?}"),
            Some(want) => assert_eq!(found.as_ref(), Some(&label(&p, want)), "{text:?}"),
        }
    }
    // What the markings mean for two callers.
    let secret = nato.detect_markings("NATO SECRET\nThe convoy leaves at dawn.").unwrap();
    assert_eq!(decide(&gbr_secret, &secret), Want::Allow);
    assert_eq!(decide(&deu_confidential, &secret), Want::Classification);
    let deu_only = nato.detect_markings("NATO CONFIDENTIAL Releasable To Germany").unwrap();
    assert_eq!(decide(&gbr_secret, &deu_only), Want::Permissive);
    assert_eq!(decide(&deu_confidential, &deu_only), Want::Allow);
}

#[test]
fn malformed_and_mislabelled_input_is_refused() {
    let p = policies();
    let bad = [
        "",
        "NATO",
        "SUPER SECRET",
        "NATO SECRET Releasable To",
        "NATO SECRET Releasable To Atlantis",
        "NATO SECRET banana",
        "(NX)",
        "()",
        "{",
        r#"{"policy":"NATO"}"#,
        r#"{"policy":"NATO","classification":"SECRET","categories":{"Colour":["RED"]}}"#,
        r#"{"policy":"NATO","classification":"SECRET","categories":{"Releasable To":["ATL"]}}"#,
        r#"{"policy":"NATO","classification":"SECRETISH"}"#,
        r#"{"policy":"EU","classification":"SECRET"}"#,
        r#"{"policy":"NATO","classification":"SECRET","extra":1}"#,
        r#"{"policy":"NATO","classification":"SECRET","categories":{"Releasable To":"GBR"}}"#,
        "<originatorConfidentialityLabel>",
        "<originatorConfidentialityLabel xmlns=\"urn:nato:stanag:4774:confidentialitymetadatalabel:1:0\"/>",
        // Mislabelled: a restrictive tag declared permissive.
        r#"<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"><ConfidentialityInformation><PolicyIdentifier>NATO</PolicyIdentifier><Classification>SECRET</Classification><Category TagName="Special Category Designators" Type="PERMISSIVE"><GenericValue>ATOMAL</GenericValue></Category></ConfidentialityInformation></originatorConfidentialityLabel>"#,
        // Two classifications.
        r#"<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"><ConfidentialityInformation><PolicyIdentifier>NATO</PolicyIdentifier><Classification>SECRET</Classification><Classification>UNCLASSIFIED</Classification></ConfidentialityInformation></originatorConfidentialityLabel>"#,
        // A clearance is not a label.
        r#"<ConfidentialityClearance xmlns="urn:nato:stanag:4774:confidentialityclearance:1:0"><PolicyIdentifier>NATO</PolicyIdentifier><ClassificationList><Classification>SECRET</Classification></ClassificationList></ConfidentialityClearance>"#,
        // Entity tricks.
        r#"<!DOCTYPE x [<!ENTITY e "SECRET">]><originatorConfidentialityLabel><ConfidentialityInformation><PolicyIdentifier>NATO</PolicyIdentifier><Classification>&e;</Classification></ConfidentialityInformation></originatorConfidentialityLabel>"#,
        "PG5vdCBhIGxhYmVsLz4=", // base64 of "<not a label/>"
    ];
    for text in bad {
        assert!(p.parse_label(text).is_err(), "accepted {text:?}");
    }
    let bad_clearances = [
        r#"{"policy":"NATO","classifications":[]}"#,
        r#"{"policy":"NATO","classifications":["SECRET"],"categories":{"Context":["MARS"]}}"#,
        r#"{"policy":"NATO","classifications":"SECRET"}"#,
        r#"<ConfidentialityClearance xmlns="urn:nato:stanag:4774:confidentialityclearance:1:0"><PolicyIdentifier>NATO</PolicyIdentifier><ClassificationList><Classification>ULTRA</Classification></ClassificationList></ConfidentialityClearance>"#,
    ];
    for text in bad_clearances {
        assert!(p.parse_clearance(text).is_err(), "accepted {text:?}");
    }
}

#[test]
fn a_clearance_from_stanag_xml_decides_like_its_json() {
    let p = policies();
    let xml = r#"<ConfidentialityClearance xmlns="urn:nato:stanag:4774:confidentialityclearance:1:0">
        <PolicyIdentifier>NATO</PolicyIdentifier>
        <ClassificationList><Classification>CONFIDENTIAL</Classification></ClassificationList>
        <Category TagName="Context" Type="PERMISSIVE"><GenericValue>NATO</GenericValue></Category>
        <Category TagName="Releasable To" Type="PERMISSIVE"><GenericValue>DEU</GenericValue></Category>
    </ConfidentialityClearance>"#;
    let from_xml = p.parse_clearance(xml).unwrap();
    let from_json = clearance(&p, "CONFIDENTIAL", r#""Context":["NATO"],"Releasable To":["DEU"]"#);
    assert_eq!(from_xml.to_json(), from_json.to_json());
    assert_eq!(from_xml.classifications(), ["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL"]);
    let again = p.parse_clearance(&from_xml.to_stanag_xml()).unwrap();
    assert_eq!(again.to_json(), from_json.to_json());
}

#[test]
fn accreditation_ceiling_admits_what_it_dominates() {
    let p = policies();
    let site = Clearance::from_ceiling(&label(&p, "NATO SECRET"));
    assert_eq!(decide(&site, &label(&p, "NATO SECRET Releasable To GBR")), Want::Allow);
    assert_eq!(decide(&site, &label(&p, "NATO CONFIDENTIAL")), Want::Allow);
    assert_eq!(decide(&site, &label(&p, "COSMIC TOP SECRET")), Want::Classification);
    assert_eq!(decide(&site, &label(&p, "NATO SECRET ATOMAL")), Want::Restrictive);
    assert_eq!(decide(&site, &label(&p, "NATO/EAPC SECRET")), Want::Permissive);
    let unclassified_site = Clearance::from_ceiling(&label(&p, "NATO UNCLASSIFIED"));
    assert_eq!(decide(&unclassified_site, &label(&p, "NATO RESTRICTED")), Want::Classification);
}

#[test]
fn releasability_is_narrowed_to_the_callers_nation() {
    let p = policies();
    let mut c = clearance(&p, "SECRET", r#""Releasable To":["GBR","USA"]"#);
    assert_eq!(decide(&c, &label(&p, "SECRET Releasable To USA")), Want::Allow);
    c.restrict("Releasable To", &["GBR".to_owned()].into());
    assert_eq!(decide(&c, &label(&p, "SECRET Releasable To USA")), Want::Permissive);
    assert_eq!(decide(&c, &label(&p, "SECRET Releasable To GBR")), Want::Allow);
}

#[test]
fn labels_of_another_policy_are_refused() {
    let mut spif = rampart_labels::NATO_SPIF.replace("name=\"NATO\"", "name=\"DEMO\"");
    spif = spif.replace("1.3.26.1.3.1", "1.2.3.4");
    let demo = rampart_labels::SecurityPolicy::from_spif(&spif).unwrap();
    let p = Policies::new(vec![rampart_labels::SecurityPolicy::from_spif(rampart_labels::NATO_SPIF).unwrap(), demo])
        .unwrap();
    let c = clearance(&p, "TOP SECRET", "");
    let demo_label = p.parse_label(r#"{"policy":"DEMO","classification":"UNCLASSIFIED"}"#).unwrap();
    assert!(matches!(c.check(&demo_label), Err(Denial::PolicyMismatch { .. })));
    assert!(demo_label.join(&label(&p, "SECRET")).is_err());
    assert!(!demo_label.dominates(&label(&p, "UNCLASSIFIED")));
}

#[test]
fn a_label_document_must_be_stanag_4774_throughout() {
    let p = policies();
    let ns = "urn:nato:stanag:4774:confidentialitymetadatalabel:1:0";
    let body = "<ConfidentialityInformation><PolicyIdentifier>NATO</PolicyIdentifier><Classification>SECRET</Classification></ConfidentialityInformation>";
    let good = format!(r#"<originatorConfidentialityLabel xmlns="{ns}">{body}</originatorConfidentialityLabel>"#);
    assert_eq!(label(&p, &good).classification(), "SECRET");
    let alternative =
        format!(r#"<alternativeConfidentialityLabel xmlns="{ns}">{body}</alternativeConfidentialityLabel>"#);
    assert_eq!(label(&p, &alternative).classification(), "SECRET");
    let refused = [
        (
            "a foreign root",
            format!(r#"<BogusConfidentialityLabel xmlns="{ns}">{body}</BogusConfidentialityLabel>"#),
            "not a STANAG 4774",
        ),
        (
            "a foreign namespace",
            format!(
                r#"<originatorConfidentialityLabel xmlns="urn:example:bogus">{body}</originatorConfidentialityLabel>"#
            ),
            "namespace 'urn:example:bogus'",
        ),
        (
            "no namespace",
            format!("<originatorConfidentialityLabel>{body}</originatorConfidentialityLabel>"),
            "has no namespace",
        ),
        (
            "the clearance namespace",
            format!(
                r#"<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialityclearance:1:0">{body}</originatorConfidentialityLabel>"#
            ),
            "not urn:nato",
        ),
        (
            "a foreign element inside",
            format!(
                r#"<originatorConfidentialityLabel xmlns="{ns}" xmlns:x="urn:example:x"><ConfidentialityInformation><PolicyIdentifier>NATO</PolicyIdentifier><x:Classification>TOP SECRET</x:Classification><Classification>SECRET</Classification></ConfidentialityInformation></originatorConfidentialityLabel>"#
            ),
            "namespace 'urn:example:x'",
        ),
        (
            "an undeclared prefix",
            format!(r#"<s:originatorConfidentialityLabel>{body}</s:originatorConfidentialityLabel>"#),
            "undeclared prefix",
        ),
    ];
    for (what, xml, why) in refused {
        let err = p.parse_label(&xml).expect_err(what).to_string();
        assert!(err.contains(why), "{what}: {err}");
    }
    let clearance = r#"<BogusConfidentialityClearance xmlns="urn:nato:stanag:4774:confidentialityclearance:1:0"><PolicyIdentifier>NATO</PolicyIdentifier><ClassificationList><Classification>SECRET</Classification></ClassificationList></BogusConfidentialityClearance>"#;
    assert!(
        p.parse_clearance(clearance).expect_err("foreign clearance root").to_string().contains("not a STANAG 4774")
    );
}

#[test]
fn a_json_label_naming_a_member_twice_is_refused() {
    let p = policies();
    let twice = [
        r#"{"policy":"NATO","classification":"SECRET","classification":"CONFIDENTIAL"}"#,
        r#"{"policy":"NATO","classification":"SECRET","categories":{"Releasable To":["GBR"],"Releasable To":["DEU"]}}"#,
    ];
    for text in twice {
        let err = p.parse_label(text).expect_err(text).to_string();
        assert!(err.contains("duplicate") || err.contains("twice"), "{text}: {err}");
    }
    let clearance =
        r#"{"policy":"NATO","classifications":["SECRET"],"categories":{"Context":["NATO"],"Context":["NATO"]}}"#;
    assert!(p.parse_clearance(clearance).is_err());
}
