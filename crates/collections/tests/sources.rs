//! Reading labelled documents from marked text, sidecars and JSON Lines.

use std::path::Path;

use rampart_collections::source;
use rampart_labels::Policies;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const REPORT: &str = "NATO SECRET REL TO GBR, USA

# (NU) Exercise STEADFAST LANTERN, day 3

(NS//REL TO GBR, USA) The 3rd Brigade crossed the river at Kalna at 0540.

(NC) Bridging assets were moved north
on two trucks.

Supply is adequate for five days.

NATO SECRET REL TO GBR, USA
";

#[test]
fn a_marked_report_has_a_title_portions_and_the_document_label_for_unmarked_paragraphs() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "lantern-3.md", REPORT);
    let p = Policies::nato();
    let docs = source::read(&p, &path).unwrap();
    assert_eq!(docs.len(), 1);
    let doc = &docs[0];
    assert_eq!((doc.id.as_str(), doc.title.as_str()), ("lantern-3", "Exercise STEADFAST LANTERN, day 3"));
    assert_eq!(doc.title_label.portion(), "(NU)");
    assert_eq!(doc.label, p.parse_label("NATO SECRET REL TO GBR, USA").unwrap());
    let portions: Vec<(String, &str)> = doc.portions.iter().map(|x| (x.label.portion(), x.text.as_str())).collect();
    assert_eq!(
        portions,
        [
            ("(NS)".to_owned(), "The 3rd Brigade crossed the river at Kalna at 0540."),
            ("(NC)".to_owned(), "Bridging assets were moved north\non two trucks."),
            ("(NS)".to_owned(), "Supply is adequate for five days."),
        ],
        "the bottom banner is no portion; an unmarked paragraph takes the document's label"
    );
    assert_eq!(doc.portions[2].label, doc.label);
    assert!(doc.portions[1].origin.ends_with("lantern-3.md:7"), "{}", doc.portions[1].origin);
}

#[test]
fn a_portion_above_its_document_is_rejected_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = Policies::nato();
    let path = write(dir.path(), "low.md", "NATO CONFIDENTIAL\n\n(NC) Fine.\n\n(NS) Too high.\n");
    let err = source::read(&p, &path).unwrap_err();
    assert!(err.origin.ends_with("low.md:5"), "{err}");
    assert!(err.reason.contains("(NS)") && err.reason.contains("NATO CONFIDENTIAL"), "{err}");
    // Releasability counts: a portion released to fewer nations than its document says is above it.
    let path = write(dir.path(), "wide.md", "NATO SECRET\n\n(NS//REL TO GBR, USA) Narrower.\n");
    assert!(source::read(&p, &path).unwrap_err().origin.ends_with("wide.md:3"));
}

#[test]
fn bad_markings_and_missing_banners_are_errors_that_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let p = Policies::nato();
    let no_banner = write(dir.path(), "plain.md", "\n\nJust some text.\n");
    let err = source::read(&p, &no_banner).unwrap_err();
    assert!(err.origin.ends_with("plain.md:3") && err.reason.contains("banner marking"), "{err}");
    assert!(err.reason.contains("plain.label.xml"), "{err}");
    let bad = write(dir.path(), "bad.md", "NATO SECRET\n\n(XS) Unknown level.\n\n(see annex B) is just text.\n");
    let err = source::read(&p, &bad).unwrap_err();
    assert!(err.origin.ends_with("bad.md:3") && err.reason.contains("'(XS)'"), "{err}");
    let fixed = write(dir.path(), "ok.md", "NATO SECRET\n\n(see annex B) is just text.\n");
    assert_eq!(source::read(&p, &fixed).unwrap()[0].portions[0].text, "(see annex B) is just text.");
    let empty = write(dir.path(), "empty.md", "NATO SECRET\n\n(NS)\n");
    assert!(source::read(&p, &empty).unwrap_err().reason.contains("no text"));
}

#[test]
fn a_stanag_sidecar_labels_the_document_and_must_agree_with_a_banner() {
    let dir = tempfile::tempdir().unwrap();
    let p = Policies::nato();
    let label = p.parse_label("NATO CONFIDENTIAL").unwrap();
    write(dir.path(), "side.label.xml", &label.to_stanag_xml());
    let path = write(dir.path(), "side.md", "# (NU) Logistics note\n\n(NR) Fuel state is amber.\n");
    let doc = &source::read(&p, &path).unwrap()[0];
    assert_eq!((doc.label.banner().as_str(), doc.portions.len()), ("NATO CONFIDENTIAL", 1));
    let disagree = write(dir.path(), "side.md", "NATO SECRET\n\n(NR) Fuel state is amber.\n");
    let err = source::read(&p, &disagree).unwrap_err();
    assert!(err.reason.contains("side.label.xml"), "{err}");
    // A directory is walked; the sidecar is no document of its own.
    let files = source::files(&[dir.path().to_owned()]).unwrap();
    assert_eq!(files, [dir.path().join("side.md")]);
}

#[test]
fn json_lines_documents_take_json_labels_or_markings() {
    let dir = tempfile::tempdir().unwrap();
    let p = Policies::nato();
    let text = concat!(
        r#"{"id":"r1","title":"Harbour survey","label":{"policy":"NATO","classification":"SECRET"},"portions":[{"label":"(NS)","text":"Mines at berth 4."},{"text":"Unmarked."}]}"#,
        "\n\n",
        r#"{"id":"r2","title":"Weather","label":"NATO UNCLASSIFIED","portions":[{"label":"NATO UNCLASSIFIED","text":"Rain."}]}"#,
        "\n"
    );
    let path = write(dir.path(), "reports.jsonl", text);
    let docs = source::read(&p, &path).unwrap();
    assert_eq!(docs.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["r1", "r2"]);
    assert_eq!(docs[0].portions[1].label, docs[0].label);
    let high = write(
        dir.path(),
        "high.jsonl",
        r#"{"id":"x","title":"t","label":"NATO RESTRICTED","portions":[{"label":"(NS)","text":"no"}]}"#,
    );
    assert!(source::read(&p, &high).unwrap_err().origin.ends_with("high.jsonl:1 portions[0]"));
    let typo = write(dir.path(), "typo.jsonl", r#"{"id":"x","title":"t","lable":"NATO RESTRICTED","portions":[]}"#);
    let err = source::read(&p, &typo).unwrap_err();
    assert!(err.origin.ends_with("typo.jsonl:1") && err.reason.contains("lable"), "{err}");
    let bad_id = write(
        dir.path(),
        "id.jsonl",
        r#"{"id":"../etc","title":"t","label":"NATO RESTRICTED","portions":[{"text":"x"}]}"#,
    );
    assert!(source::read(&p, &bad_id).unwrap_err().reason.contains("document id"));
}
