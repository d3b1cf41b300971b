//! The file store: versions, atomic changes, and what a crash leaves.

use rampart_collections::{Collection, CollectionStore, Document, FsStore, Portion, StoreError, Summary};
use rampart_labels::Policies;

fn doc(id: &str, text: &str) -> Document {
    let p = Policies::nato();
    let label = p.parse_label("NATO CONFIDENTIAL").unwrap();
    let portion = Portion {
        label: p.parse_label("(NR)").unwrap(),
        text: text.to_owned(),
        origin: format!("{id}.md:3"),
        embedding: vec![0.5, -0.25, text.len() as f32],
    };
    Document {
        id: id.to_owned(),
        title: format!("Report {id}"),
        title_label: label.clone(),
        label,
        portions: vec![portion],
        origin: format!("{id}.md"),
        version: 1,
    }
}

fn ingest(store: &FsStore, name: &str, docs: Vec<Document>) -> Result<(Collection, Summary), StoreError> {
    let mut summary = Summary::default();
    let mut docs = Some(docs);
    let collection = store.update(name, &mut |c| {
        c.upsert(docs.take().unwrap_or_default(), &mut summary);
        Ok(())
    })?;
    Ok((collection, summary))
}

#[test]
fn a_document_id_that_exists_is_replaced_as_a_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path(), Policies::nato());
    assert_eq!(store.names().unwrap(), Vec::<String>::new());
    assert!(store.load("reports").unwrap().is_none());
    let (_, first) = ingest(&store, "reports", vec![doc("a", "one"), doc("b", "two")]).unwrap();
    assert_eq!((first.added, first.replaced), (2, 0));
    let (collection, second) = ingest(&store, "reports", vec![doc("a", "one, revised")]).unwrap();
    assert_eq!((second.added, second.replaced, collection.generation), (0, 1, 2));
    let loaded = store.load("reports").unwrap().unwrap();
    assert_eq!(loaded, collection, "what is loaded is what was stored");
    assert_eq!(loaded.documents.len(), 2);
    assert_eq!((loaded.documents["a"].version, loaded.documents["a"].portions[0].text.as_str()), (2, "one, revised"));
    assert_eq!(store.names().unwrap(), ["reports"]);
    // Only the current generation is kept.
    let generations: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('g'))
        .collect();
    assert_eq!(generations, ["g00000002"]);
}

#[test]
fn a_failed_change_or_a_crash_mid_write_leaves_the_collection_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path(), Policies::nato());
    let (before, _) = ingest(&store, "reports", vec![doc("a", "one")]).unwrap();
    let refused = store.update("reports", &mut |c| {
        c.documents.clear();
        Err(StoreError::NoDocument { collection: "reports".into(), id: "z".into() })
    });
    assert!(refused.is_err());
    assert_eq!(store.load("reports").unwrap().unwrap(), before);
    // What a crash while writing generation 2 leaves: a partial generation and a partial CURRENT.
    let collection_dir = dir.path().join("reports");
    std::fs::create_dir(collection_dir.join("g00000002.partial")).unwrap();
    std::fs::write(collection_dir.join("g00000002.partial/documents.jsonl"), "{\"id\":").unwrap();
    std::fs::write(collection_dir.join("CURRENT.partial"), "g0000").unwrap();
    assert_eq!(store.load("reports").unwrap().unwrap(), before);
    let (after, _) = ingest(&store, "reports", vec![doc("b", "two")]).unwrap();
    assert_eq!((after.generation, after.documents.len()), (2, 2));
    assert!(!collection_dir.join("g00000002.partial").exists() && !collection_dir.join("g00000001").exists());
}

#[test]
fn names_are_checked_and_damage_is_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path(), Policies::nato());
    assert!(matches!(store.load("../etc"), Err(StoreError::InvalidName(_))));
    ingest(&store, "reports", vec![doc("a", "one")]).unwrap();
    std::fs::write(dir.path().join("reports/g00000001/documents.jsonl"), "not json\n").unwrap();
    let err = store.load("reports").unwrap_err();
    assert!(matches!(err, StoreError::Damaged { .. }) && err.to_string().contains("digest"), "{err}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_store_edited_outside_rampart_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path(), Policies::nato());
    ingest(&store, "reports", vec![doc("a", "The convoy leaves at dawn.")]).unwrap();
    let generation = dir.path().join("reports/g00000001");
    let documents = std::fs::read_to_string(generation.join("documents.jsonl")).unwrap();
    let digests = std::fs::read_to_string(generation.join("DIGESTS")).unwrap();
    assert!(digests.contains(&format!("{} documents.jsonl", sha256_hex(documents.as_bytes()))), "{digests}");
    // Written with its digests, so that only the labelling rules stand between an edit and a reader.
    let edit = |documents: &str, with_digest: bool| {
        std::fs::write(generation.join("documents.jsonl"), documents).unwrap();
        let vectors = std::fs::read(generation.join("vectors.f32")).unwrap();
        let digests = match with_digest {
            true => {
                format!("{} documents.jsonl\n{} vectors.f32\n", sha256_hex(documents.as_bytes()), sha256_hex(&vectors))
            }
            false => digests.clone(),
        };
        std::fs::write(generation.join("DIGESTS"), digests).unwrap();
        store.load("reports")
    };
    let why = |result: Result<Option<Collection>, StoreError>| match result {
        Err(StoreError::Damaged { reason, .. }) => reason,
        other => panic!("an edited store was served: {other:?}"),
    };
    assert!(why(edit(&documents.replace("dawn", "dusk"), false)).contains("digest"));
    let raised = documents.replacen("\"RESTRICTED\"", "\"SECRET\"", 1);
    assert_ne!(raised, documents);
    assert!(why(edit(&raised, true)).contains("above its document"), "a portion above its document");
    let marked = documents.replace("The convoy", "NATO SECRET The convoy");
    assert!(why(edit(&marked, true)).contains("holds the marking"), "a marking above its portion");
    assert!(!why(edit(&marked, true)).contains("convoy"), "never the text");
    std::fs::remove_file(generation.join("DIGESTS")).unwrap();
    assert!(why(store.load("reports")).contains("digests cannot be read"));
    // Put back as written, it is served again.
    assert!(edit(&documents, true).unwrap().is_some());
}

#[test]
fn embeddings_are_kept_with_their_portions_and_must_agree_in_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path(), Policies::nato());
    ingest(&store, "reports", vec![doc("a", "one"), doc("b", "three")]).unwrap();
    let loaded = store.load("reports").unwrap().unwrap();
    assert_eq!(loaded.documents["b"].portions[0].embedding, [0.5, -0.25, 5.0]);
    let mut odd = doc("c", "x");
    odd.portions[0].embedding.push(1.0);
    let err = ingest(&store, "reports", vec![odd]).unwrap_err();
    assert!(matches!(err, StoreError::Embeddings(_)) && err.to_string().contains("c.md:3"), "{err}");
    assert_eq!(store.load("reports").unwrap().unwrap(), loaded);
    std::fs::write(dir.path().join("reports/g00000001/vectors.f32"), [0u8; 20]).unwrap();
    assert!(matches!(store.load("reports"), Err(StoreError::Damaged { .. })));
}
