//! `rampart collection ingest | list | show | remove` on the shipped example
//! reports, a rejected ingest, and a `kill -9` in the middle of one.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{binary, embedding_model};

struct Site {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Site {
    /// A site whose portions are embedded at ingest with the embedding model
    /// fetched by scripts/test, or (`embeddings` false) not at all.
    fn new(embeddings: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("rampart.toml");
        let model = embedding_model();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ninsecure_dev = true\n[collections]\nembeddings = {embeddings}\nembedding_model = \"{}\"\n",
            model.display()
        );
        std::fs::write(&config, text).unwrap();
        Self { dir, config }
    }

    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(binary()).args(args).env("RAMPART_CONFIG", &self.config).output().expect("rampart runs");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }

    fn collection_dir(&self) -> PathBuf {
        self.dir.path().join("data/collections/exercise")
    }
}

fn examples() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/collections/exercise").display().to_string()
}

#[test]
fn ingest_list_show_and_remove_the_example_reports() {
    let site = Site::new(true);
    let (ok, out, err) = site.run(&["collection", "list"]);
    assert!(ok && out.contains("no collections"), "{out}{err}");
    let (ok, out, err) = site.run(&["collection", "ingest", "exercise", &examples()]);
    assert!(ok, "{err}");
    assert!(out.contains("5 documents ingested (5 new, 0 replaced) from 4 files"), "{out}");
    assert!(out.contains("exercise now holds 5 documents, 16 portions (generation 1)"), "{out}");
    let (_, out, _) = site.run(&["collection", "list"]);
    assert!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["exercise", "5", "16", "1"]), "{out}");

    // Again: every document is replaced by its next version, none duplicated.
    let (ok, out, _) = site.run(&["collection", "ingest", "exercise", &examples()]);
    assert!(ok && out.contains("(0 new, 5 replaced)") && out.contains("holds 5 documents"), "{out}");
    let (ok, out, _) = site.run(&["collection", "show", "exercise", "lantern-sitrep-03"]);
    assert!(
        ok && out.contains("version 2") && out.contains("[2] (NS//REL TO GBR, USA) The 3rd Mechanised Brigade"),
        "{out}"
    );
    assert!(out.starts_with("NATO SECRET Releasable To United Kingdom, United States of America\n"), "{out}");

    // Retrieval as a GBR SECRET reader and as a NATO CONFIDENTIAL one would get it.
    let query = "Where did the brigade cross the river?";
    let (ok, out, err) = site.run(&[
        "collection",
        "search",
        "exercise",
        query,
        "--label",
        "NATO SECRET REL TO GBR, USA",
        "--top-k",
        "3",
    ]);
    assert!(ok, "{err}");
    assert!(out.starts_with("1. lantern-sitrep-03#") && out.contains(" (NS//REL TO GBR, USA) score"), "{out}");
    let (ok, out, _) = site.run(&["collection", "search", "exercise", query, "--label", "NATO CONFIDENTIAL"]);
    assert!(ok && out.contains("1. ") && !out.contains("(NS") && !out.contains("Mechanised"), "{out}");

    let (ok, out, _) = site.run(&["collection", "remove", "exercise", "lantern-weather-03"]);
    assert!(ok && out.contains("4 documents, 13 portions left (generation 3)"), "{out}");
    let (ok, _, err) = site.run(&["collection", "remove", "exercise", "lantern-weather-03"]);
    assert!(!ok && err.contains("has no document 'lantern-weather-03'"), "{err}");
    let (ok, _, err) = site.run(&["collection", "show", "nope"]);
    assert!(!ok && err.contains("no collection 'nope'"), "{err}");
}

#[test]
fn a_bad_document_leaves_the_collection_as_it_was() {
    let site = Site::new(false);
    assert!(site.run(&["collection", "ingest", "exercise", &examples()]).0);
    let before = site.run(&["collection", "show", "exercise"]).1;
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("a-good.md"), "NATO SECRET\n\n(NS) A good report.\n").unwrap();
    std::fs::write(input.path().join("b-bad.md"), "NATO CONFIDENTIAL\n\n(NC) Fine.\n\n(NS) Above its document.\n")
        .unwrap();
    let (ok, _, err) = site.run(&["collection", "ingest", "exercise", input.path().to_str().unwrap()]);
    assert!(!ok, "refused");
    assert!(err.contains("nothing was ingested into 'exercise'") && err.contains("b-bad.md:5"), "{err}");
    assert!(err.contains("above its document's label NATO CONFIDENTIAL"), "{err}");
    assert_eq!(site.run(&["collection", "show", "exercise"]).1, before, "not even the good file was ingested");
}

#[test]
fn kill_9_during_an_ingest_leaves_the_collection_as_it_was() {
    // Without embeddings, writing 40,000 documents is the longest part of the ingest.
    let site = Site::new(false);
    assert!(site.run(&["collection", "ingest", "exercise", &examples()]).0);
    let before = site.run(&["collection", "show", "exercise"]).1;
    // Enough documents that writing them takes far longer than delivering a signal.
    let input = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for i in 0..40_000 {
        lines.push_str(&format!(
            "{{\"id\":\"bulk-{i}\",\"title\":\"Bulk {i}\",\"label\":\"NATO RESTRICTED\",\"portions\":[{{\"label\":\"(NR)\",\"text\":\"Routine report number {i}: nothing to note on the supply route today.\"}},{{\"label\":\"(NU)\",\"text\":\"Weather fair.\"}}]}}\n"
        ));
    }
    std::fs::write(input.path().join("bulk.jsonl"), lines).unwrap();
    let mut child = Command::new(binary())
        .args(["collection", "ingest", "exercise", input.path().to_str().unwrap()])
        .env("RAMPART_CONFIG", &site.config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("writing collection") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the ingest ended before writing");
    }
    // Killed once the new generation is being written (its file has begun), before it is complete.
    let partial = site.collection_dir().join("g00000002.partial/documents.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::metadata(&partial).map_or(true, |m| m.len() == 0) {
        assert!(std::time::Instant::now() < deadline, "the ingest never began writing");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(partial.exists(), "killed in the middle of writing");
    assert_eq!(site.run(&["collection", "show", "exercise"]).1, before, "the collection is as it was");
    // The next change succeeds and clears what the crash left.
    let (ok, out, err) = site.run(&["collection", "remove", "exercise", "lantern-weather-03"]);
    assert!(ok && out.contains("generation 2"), "{out}{err}");
    let left: Vec<String> = std::fs::read_dir(site.collection_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('g'))
        .collect();
    assert_eq!(left, ["g00000002"]);
}
