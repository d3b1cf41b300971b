//! Every label the SPIF defines, within bounded combinations, in every form
//! the crate writes (banner, portion marking, STANAG 4774 XML, JSON): each
//! reads back as the same label, and each is found in text by the scanner with
//! a label that dominates it. The labels are generated from the policy, not
//! listed: every classification with every category value alone, with one
//! value of every other tag beside it, and with the next value of its own tag.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rampart_labels::{Label, LabelJson, Policies, SecurityPolicy};

/// The category sets of the bounded combinations, by tag name.
fn category_sets(policy: &SecurityPolicy) -> Vec<BTreeMap<String, BTreeSet<String>>> {
    let mut sets = vec![BTreeMap::new()];
    for (t, tag) in policy.tags.iter().enumerate() {
        for (v, value) in tag.values.iter().enumerate() {
            let one = |tag_name: &str, value: &str| (tag_name.to_owned(), BTreeSet::from([value.to_owned()]));
            sets.push(BTreeMap::from([one(&tag.name, &value.name)]));
            // With its neighbour in the same tag.
            if let Some(next) = tag.values.get(v + 1) {
                let pair = BTreeSet::from([value.name.clone(), next.name.clone()]);
                sets.push(BTreeMap::from([(tag.name.clone(), pair)]));
            }
            // With one value of every other tag, rotating through their values.
            let mut across = BTreeMap::from([one(&tag.name, &value.name)]);
            for (u, other) in policy.tags.iter().enumerate().filter(|(u, _)| *u != t) {
                let pick = &other.values[(v + u) % other.values.len()];
                across.insert(other.name.clone(), BTreeSet::from([pick.name.clone()]));
            }
            sets.push(across);
        }
    }
    sets
}

fn generated_labels(policy: &Arc<SecurityPolicy>) -> Vec<Label> {
    let mut labels = Vec::new();
    for classification in &policy.classifications {
        for categories in category_sets(policy) {
            labels.push(Label::new(Arc::clone(policy), &classification.name, categories).expect("SPIF values"));
        }
    }
    labels
}

#[test]
fn every_generated_label_reads_back_from_every_form_and_is_found_in_text() {
    let policies = Policies::nato();
    let policy = Arc::clone(policies.default_policy());
    let labels = generated_labels(&policy);
    let mut round_trips = 0;
    let mut found_in_text = 0;
    for label in &labels {
        let json = serde_json::to_string(&label.to_json()).unwrap();
        let forms =
            [("banner", label.banner()), ("portion", label.portion()), ("xml", label.to_stanag_xml()), ("json", json)];
        for (kind, form) in &forms {
            let parsed = match *kind {
                "json" => policies.label_from_json(&serde_json::from_str::<LabelJson>(form).unwrap()),
                _ => policies.parse_label(form),
            };
            assert_eq!(parsed.as_ref(), Ok(label), "{kind} {form}");
            round_trips += 1;
            for text in
                [form.clone(), format!("Intro text {form} and more."), format!("First line.\n{form}\nLast line.")]
            {
                let found = policies.scan_markings(&policy, &text);
                assert!(
                    found.as_ref().is_some_and(|found| found.dominates(label)),
                    "{kind} form of {label:?} in {text:?} was read as {found:?}"
                );
                found_in_text += 1;
            }
        }
    }
    eprintln!("{} labels: {round_trips} forms read back, {found_in_text} texts scanned", labels.len());
    assert!(labels.len() > 1000, "the SPIF yields {} labels", labels.len());
}
