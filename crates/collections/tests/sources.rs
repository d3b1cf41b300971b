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
    let docs = source::read(&p, &path, &Default::default()).unwrap();
    assert_eq!(docs.len(), 1);
    let doc = &docs[0];
    assert_eq!((doc.id.as_str(), doc.title.as_str()), ("lantern-3", "Exercise STEADFAST LANTERN, day 3"));
    assert_eq!(doc.title_label.portion(), "(NU)");
    assert_eq!(doc.label, p.parse_label("NATO SECRET REL TO GBR, USA").unwrap());
    let portions: Vec<(String, &str)> = doc.portions.iter().map(|x| (x.label.portion(), x.text.as_str())).collect();
    assert_eq!(
        portions,
        [
            ("(NS//REL TO GBR, USA)".to_owned(), "The 3rd Brigade crossed the river at Kalna at 0540."),
            ("(NC)".to_owned(), "Bridging assets were moved north\non two trucks."),
            ("(NS//REL TO GBR, USA)".to_owned(), "Supply is adequate for five days."),
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
    let err = source::read(&p, &path, &Default::default()).unwrap_err();
    assert!(err.origin.ends_with("low.md:5"), "{err}");
    assert!(err.reason.contains("(NS)") && err.reason.contains("NATO CONFIDENTIAL"), "{err}");
    // Releasability counts: a portion released to fewer nations than its document says is above it.
    let path = write(dir.path(), "wide.md", "NATO SECRET\n\n(NS//REL TO GBR, USA) Narrower.\n");
    assert!(source::read(&p, &path, &Default::default()).unwrap_err().origin.ends_with("wide.md:3"));
}

#[test]
fn bad_markings_and_missing_banners_are_errors_that_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let p = Policies::nato();
    let no_banner = write(dir.path(), "plain.md", "\n\nJust some text.\n");
    let err = source::read(&p, &no_banner, &Default::default()).unwrap_err();
    assert!(err.origin.ends_with("plain.md:3") && err.reason.contains("banner marking"), "{err}");
    assert!(err.reason.contains("plain.label.xml"), "{err}");
    let bad = write(dir.path(), "bad.md", "NATO SECRET\n\n(XS) Unknown level.\n\n(see annex B) is just text.\n");
    let err = source::read(&p, &bad, &Default::default()).unwrap_err();
    assert!(err.origin.ends_with("bad.md:3") && err.reason.contains("not one of policy NATO"), "{err}");
    let fixed = write(dir.path(), "ok.md", "NATO SECRET\n\n(see annex B) is just text.\n");
    assert_eq!(
        source::read(&p, &fixed, &Default::default()).unwrap()[0].portions[0].text,
        "(see annex B) is just text."
    );
    let empty = write(dir.path(), "empty.md", "NATO SECRET\n\n(NS)\n");
    assert!(source::read(&p, &empty, &Default::default()).unwrap_err().reason.contains("no text"));
}

#[test]
fn a_stanag_sidecar_labels_the_document_and_must_agree_with_a_banner() {
    let dir = tempfile::tempdir().unwrap();
    let p = Policies::nato();
    let label = p.parse_label("NATO CONFIDENTIAL").unwrap();
    write(dir.path(), "side.label.xml", &label.to_stanag_xml());
    let path = write(dir.path(), "side.md", "# (NU) Logistics note\n\n(NR) Fuel state is amber.\n");
    let doc = &source::read(&p, &path, &Default::default()).unwrap()[0];
    assert_eq!((doc.label.banner().as_str(), doc.portions.len()), ("NATO CONFIDENTIAL", 1));
    let disagree = write(dir.path(), "side.md", "NATO SECRET\n\n(NR) Fuel state is amber.\n");
    let err = source::read(&p, &disagree, &Default::default()).unwrap_err();
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
        r#"{"id":"r1","title":"Harbour survey","label":{"policy":"NATO","classification":"SECRET","categories":{"Context":["NATO"]}},"portions":[{"label":"(NS)","text":"Mines at berth 4."},{"text":"Unmarked."}]}"#,
        "\n\n",
        r#"{"id":"r2","title":"Weather","label":"NATO UNCLASSIFIED","portions":[{"label":"NATO UNCLASSIFIED","text":"Rain."}]}"#,
        "\n"
    );
    let path = write(dir.path(), "reports.jsonl", text);
    let docs = source::read(&p, &path, &Default::default()).unwrap();
    assert_eq!(docs.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["r1", "r2"]);
    assert_eq!(docs[0].portions[1].label, docs[0].label);
    let high = write(
        dir.path(),
        "high.jsonl",
        r#"{"id":"x","title":"t","label":"NATO RESTRICTED","portions":[{"label":"(NS)","text":"no"}]}"#,
    );
    assert!(source::read(&p, &high, &Default::default()).unwrap_err().origin.ends_with("high.jsonl:1 portions[0]"));
    let typo = write(dir.path(), "typo.jsonl", r#"{"id":"x","title":"t","lable":"NATO RESTRICTED","portions":[]}"#);
    let err = source::read(&p, &typo, &Default::default()).unwrap_err();
    assert!(err.origin.ends_with("typo.jsonl:1") && err.reason.contains("unknown member 'lable'"), "{err}");
    let bad_id = write(
        dir.path(),
        "id.jsonl",
        r#"{"id":"../etc","title":"t","label":"NATO RESTRICTED","portions":[{"text":"x"}]}"#,
    );
    assert!(source::read(&p, &bad_id, &Default::default()).unwrap_err().reason.contains("document id"));
}

#[test]
fn ingest_never_lowers_a_label() {
    let dir = tempfile::tempdir().unwrap();
    let p = Policies::nato();
    let read = |name: &str, text: &str| source::read(&p, &write(dir.path(), name, text), &Default::default());
    let marking = |doc: &rampart_collections::Document| -> Vec<(String, String)> {
        doc.portions.iter().map(|x| (x.label.portion(), x.text.clone())).collect()
    };

    // A portion marking at the start of any line starts a new portion.
    let doc = &read("lines.md", "NATO SECRET\n\n(NU) Weather is fine.\n(NS) The reserve is at Orlen.\n").unwrap()[0];
    assert_eq!(
        marking(doc),
        [("(NU)".into(), "Weather is fine.".into()), ("(NS)".into(), "The reserve is at Orlen.".into())]
    );
    assert!(doc.portions[1].origin.ends_with("lines.md:4"), "{}", doc.portions[1].origin);

    // A title is its line alone: the unmarked line after it takes the document's label.
    let doc = &read("title.md", "NATO SECRET\n\n# (NU) Day 3\nThe reserve is at Orlen.\n").unwrap()[0];
    assert_eq!((doc.title.as_str(), doc.title_label.portion()), ("Day 3", "(NU)".to_owned()));
    assert_eq!(marking(doc), [("(NS)".into(), "The reserve is at Orlen.".into())]);

    // A first line that looks like a banner but does not parse is refused, sidecar or not.
    write(dir.path(), "side.label.xml", &p.parse_label("NATO UNCLASSIFIED").unwrap().to_stanag_xml());
    let err = read("side.md", "NATO SECRET ZZQX\n\n(NU) Weather.\n").unwrap_err();
    assert!(err.origin.ends_with("side.md:1") && !err.reason.contains("ZZQX"), "{err}");
    let err = read("bare.md", "NATO SECRET ZZQX\n\n(NU) Weather.\n").unwrap_err();
    assert!(err.origin.ends_with("bare.md:1") && !err.reason.contains("ZZQX"), "{err}");

    // A JSON label naming a member twice is refused, never read as its last member.
    for label in [
        r#"{"policy":"NATO","classification":"SECRET","classification":"UNCLASSIFIED"}"#,
        r#"{"policy":"NATO","classification":"SECRET","categories":{"Releasable To":["GBR"],"Releasable To":["GBR","DEU"]}}"#,
    ] {
        let line = format!(
            r#"{{"id":"x","title":"t","label":{label},"portions":[{{"label":{label},"text":"The reserve."}}]}}"#
        );
        let err = read("twice.jsonl", &line).unwrap_err();
        assert!(err.reason.contains("twice") || err.reason.contains("duplicate"), "{err}");
    }
    let err = read("array.jsonl", r#"[{"id":"x","title":"t","label":"NATO SECRET","portions":[{"text":"x"}]}]"#);
    assert!(err.is_err(), "a top-level array is no document");

    // Text holding a marking above its portion's label is refused, naming the marking and not the text.
    for (name, text) in [
        ("inline.md", "NATO SECRET\n\n(NU) The plan is attached, see (NS) annex.\n"),
        ("categories.md", "NATO SECRET\n\n(NU) Annex (NS//REL TO GBR, USA) follows.\n"),
        ("spaced.md", "NATO SECRET\n\n(NU) Annex N A T O  S E C R E T follows.\n"),
        ("dotted.md", "NATO SECRET\n\n(NU) Annex S.E.C.R.E.T follows.\n"),
    ] {
        let err = read(name, text).unwrap_err();
        assert!(err.origin.ends_with(&format!("{name}:3")), "{err}");
        assert!(
            err.reason.contains("above its label") && !err.reason.contains("Annex") && !err.reason.contains("plan"),
            "{err}"
        );
    }
    let err = read("title-mark.md", "NATO SECRET\n\n# (NU) The SECRET plan\n\n(NS) x\n").unwrap_err();
    assert!(err.reason.contains("the title"), "{err}");
}

#[test]
fn hostile_input_is_refused_without_panic_or_echo() {
    let dir = tempfile::tempdir().unwrap();
    let p = Policies::nato();
    // A marking-like opening with a multi-byte character across the marking limit.
    let wide = format!("NATO SECRET\n\n({}) text\n", "é".repeat(60));
    assert!(source::read(&p, &write(dir.path(), "wide.md", &wide), &Default::default()).is_ok());
    let closing = format!("NATO SECRET\n\n(NS{}) text\n", "ü".repeat(60));
    let _ = source::read(&p, &write(dir.path(), "closing.md", &closing), &Default::default());

    // Limits name themselves.
    let limits = source::Limits { max_file_bytes: 64, max_portion_chars: 10 };
    let big = write(dir.path(), "big.md", &format!("NATO SECRET\n\n(NS) {}\n", "x".repeat(100)));
    let err = source::read(&p, &big, &limits).unwrap_err();
    assert!(err.reason.contains("max_file_bytes (64 bytes)"), "{err}");
    let limits = source::Limits { max_file_bytes: 1024, max_portion_chars: 10 };
    let err = source::read(&p, &big, &limits).unwrap_err();
    assert!(err.origin.ends_with("big.md:3") && err.reason.contains("max_portion_chars (10"), "{err}");

    // A symbolic link out of the directory given is not followed, and what it points at is never shown.
    let outside = tempfile::tempdir().unwrap();
    let secret = write(outside.path(), "shadow.md", "root:$6$secrethash:19000:0:99999:7:::\n");
    let inside = dir.path().join("tree");
    std::fs::create_dir(&inside).unwrap();
    std::os::unix::fs::symlink(&secret, inside.join("link.md")).unwrap();
    let err = source::files(std::slice::from_ref(&inside)).unwrap_err();
    assert!(err.reason.contains("symbolic link") && !err.to_string().contains("secrethash"), "{err}");
    // Read by name, the file's content is still never echoed.
    let err = source::read(&p, &secret, &Default::default()).unwrap_err();
    assert!(!err.to_string().contains("secrethash") && !err.to_string().contains("root"), "{err}");
    let jsonl = write(outside.path(), "shadow.jsonl", "root:$6$secrethash:19000:0:99999:7:::\n");
    let err = source::read(&p, &jsonl, &Default::default()).unwrap_err();
    assert!(!err.to_string().contains("secrethash"), "{err}");
    let typed = write(
        dir.path(),
        "typed.jsonl",
        r#"{"id":"x","title":"t","label":"NATO SECRET","portions":[{"text":7}],"x":1}"#,
    );
    let err = source::read(&p, &typed, &Default::default()).unwrap_err();
    assert!(!err.to_string().contains(":7"), "{err}");
}

#[test]
fn portion_ids_are_opaque_and_stable_for_a_document_version() {
    let p = Policies::nato();
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/collections/exercise/reports.jsonl");
    let docs = source::read(&p, &reports, &Default::default()).unwrap();
    let intsum = docs.iter().find(|d| d.id == "lantern-intsum-03").unwrap();
    // The id the API documentation shows for this portion.
    assert_eq!(intsum.portion_id(1).as_deref(), Some("0780a155c27b5074"));
    let ids: Vec<String> = (0..intsum.portions.len()).map(|i| intsum.portion_id(i).unwrap()).collect();
    assert!(ids.iter().all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    assert_eq!(ids.len(), ids.iter().collect::<std::collections::BTreeSet<_>>().len(), "distinct");
    assert_eq!(intsum.portion_id(intsum.portions.len()), None);
    let mut next = intsum.clone();
    next.version += 1;
    assert_ne!(next.portion_id(1), intsum.portion_id(1), "a new version, new ids");
}

#[test]
fn long_and_disguised_markings_are_read_or_refused_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let p = Policies::nato();
    let read = |name: &str, text: &str| source::read(&p, &write(dir.path(), name, text), &Default::default());
    // A releasability list of a hundred entries is read whole: the portion is GBR-only.
    let long = format!("NATO CONFIDENTIAL REL TO GBR\n\n(NC//REL TO {}GBR) gbr-only text\n", "GBR, ".repeat(100));
    let doc = &read("long.md", &long).unwrap()[0];
    assert_eq!(doc.portions[0].label, p.parse_label("NATO CONFIDENTIAL REL TO GBR").unwrap());
    // Disguised markings stating categories, above the portion's label, are refused.
    for (name, text) in [
        ("spelled.md", "NATO CONFIDENTIAL\n\n(NC) The plan N.A.T.O C.O.N.F.I.D.E.N.T.I.A.L REL TO GBR.\n"),
        ("dotted.md", "NATO CONFIDENTIAL\n\n(NC) Also (N.C//REL TO GBR) the ford.\n"),
        ("plus.md", "NATO CONFIDENTIAL\n\n(NU) Annex S+E+C+R+E+T follows.\n"),
        ("encoded.md", "NATO CONFIDENTIAL\n\n(NU) Encoded %252553ECRET here.\n"),
    ] {
        let err = read(name, text).unwrap_err();
        assert!(err.reason.contains("above its label"), "{name}: {err}");
    }
    // A marking that does not parse is refused without its text.
    let err = read("leak.md", "NATO SECRET\n\n(NS//REL TO The 3rd Brigade attacks Drevno) x\n").unwrap_err();
    assert!(!err.to_string().contains("Drevno"), "{err}");
    let line = r#"{"id":"x","title":"t","label":"NATO SECRET attack Drevno at 0400","portions":[{"text":"x"}]}"#;
    let err = read("leak.jsonl", line).unwrap_err();
    assert!(!err.to_string().contains("Drevno"), "{err}");
    let line = r#"{"id":"x","title":"t","label":"NATO SECRET","portions":[{"text":"b","The reserve is at Orlen":1}]}"#;
    let err = read("member.jsonl", line).unwrap_err();
    assert!(!err.to_string().contains("Orlen") && err.reason.contains("an unknown member"), "{err}");
}
