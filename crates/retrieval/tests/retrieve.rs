//! Retrieval with the real embedding model over the example reports: the
//! right portion is found, and what a reader may not read neither appears nor
//! moves anything they may.

use std::path::{Path, PathBuf};

use rampart_collections::{Collection, Document, Portion, Summary, source};
use rampart_labels::{Label, Policies};
use rampart_retrieval::{Embedder, LocalIndex, PortionIndex, Readable};

fn model_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2");
    assert!(dir.join("model.safetensors").exists(), "{} is missing: run scripts/test, which fetches it", dir.display());
    dir
}

fn examples(policies: &Policies) -> Vec<Document> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/collections/exercise");
    let files = source::files(&[dir]).unwrap();
    files.iter().flat_map(|f| source::read(policies, f, &Default::default()).unwrap()).collect()
}

fn embedded(embedder: &Embedder, mut documents: Vec<Document>) -> Collection {
    for portion in documents.iter_mut().flat_map(|d| &mut d.portions) {
        portion.embedding = embedder.embed(&[&portion.text]).unwrap().remove(0);
    }
    let mut collection = Collection::empty("exercise");
    collection.upsert(documents, &mut Summary::default());
    collection
}

fn below(ceiling: &Label) -> impl Fn(&Label) -> bool + '_ {
    move |label| ceiling.dominates(label)
}

#[test]
fn embeddings_are_unit_length_and_close_for_close_meanings() {
    let embedder = Embedder::load(&model_dir()).unwrap();
    let v = embedder
        .embed(&[
            "Where did the brigade cross the river?",
            "The brigade crossed the river at the ford.",
            "Rain on day 4.",
        ])
        .unwrap();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert_eq!(v[0].len(), rampart_retrieval::DIMENSIONS);
    assert!((dot(&v[0], &v[0]) - 1.0).abs() < 1e-4);
    assert!(dot(&v[0], &v[1]) > dot(&v[0], &v[2]) + 0.2, "{} vs {}", dot(&v[0], &v[1]), dot(&v[0], &v[2]));
    // Batched and one by one agree.
    let one = embedder.embed(&["Rain on day 4."]).unwrap();
    assert!(dot(&one[0], &v[2]) > 0.999);
}

#[test]
fn a_reader_finds_what_they_may_read_and_nothing_above() {
    let policies = Policies::nato();
    let embedder = Embedder::load(&model_dir()).unwrap();
    let index = LocalIndex::build(&embedded(&embedder, examples(&policies))).unwrap();
    let query = "Where did the brigade cross the river?";
    let q = embedder.embed(&[query]).unwrap().remove(0);
    let secret = policies.parse_label("NATO SECRET REL TO GBR, USA").unwrap();
    let hits = index.search(query, &q, &Readable::of(index.labels(), below(&secret)), 3).unwrap();
    assert_eq!((hits[0].portion.document.as_str(), hits[0].portion.portion), ("lantern-sitrep-03", 2), "{hits:?}");
    let confidential = policies.parse_label("NATO CONFIDENTIAL").unwrap();
    let readable = Readable::of(index.labels(), below(&confidential));
    let hits = index.search(query, &q, &readable, 20).unwrap();
    assert!(!hits.is_empty());
    for hit in &hits {
        assert!(confidential.dominates(&index.labels()[hit.portion.label]), "{hit:?}");
    }
    assert!(!hits.iter().any(|h| h.portion.document == "lantern-sitrep-03" && h.portion.portion == 2));
    // Nothing readable, nothing found.
    let none = Readable::of(index.labels(), |_| false);
    assert!(index.search(query, &q, &none, 5).unwrap().is_empty());
}

#[test]
fn portions_above_the_reader_change_no_score_or_rank_of_theirs() {
    let policies = Policies::nato();
    let embedder = Embedder::load(&model_dir()).unwrap();
    let base = examples(&policies);
    // The same collection with secret reports that match the query better than anything readable.
    let mut flooded = base.clone();
    let secret = policies.parse_label("NATO SECRET").unwrap();
    for i in 0..40 {
        let text = format!("CANARY-{i} The brigade crossed the river at the ford; river crossing brigade ford river.");
        let portion =
            Portion { label: secret.clone(), text, origin: format!("secret-{i}.md:3"), embedding: Vec::new() };
        flooded.push(Document {
            id: format!("secret-{i}"),
            title: "Secret".into(),
            title_label: secret.clone(),
            label: secret.clone(),
            portions: vec![portion],
            origin: format!("secret-{i}.md"),
            version: 1,
        });
    }
    let plain = LocalIndex::build(&embedded(&embedder, base)).unwrap();
    let busy = LocalIndex::build(&embedded(&embedder, flooded)).unwrap();
    let reader = policies.parse_label("NATO CONFIDENTIAL").unwrap();
    for query in ["Where did the brigade cross the river?", "river crossing", "fuel supply trains", "weather rain"] {
        let q = embedder.embed(&[query]).unwrap().remove(0);
        let a = plain.search(query, &q, &Readable::of(plain.labels(), below(&reader)), 10).unwrap();
        let b = busy.search(query, &q, &Readable::of(busy.labels(), below(&reader)), 10).unwrap();
        assert!(!a.is_empty(), "{query}");
        assert_eq!(a, b, "{query}: the same portions, ranks and scores (fused, BM25 and cosine)");
        // ... while a reader cleared for them sees the secret reports first.
        let cleared = busy.search(query, &q, &Readable::of(busy.labels(), below(&secret)), 3).unwrap();
        if query.contains("brigade") {
            assert!(cleared[0].portion.document.starts_with("secret-"), "{cleared:?}");
        }
    }
}
