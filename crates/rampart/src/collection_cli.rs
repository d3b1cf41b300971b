//! `rampart collection ...`: labelled report collections — ingest, list, show, remove.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rampart_collections::{Collection, CollectionStore, Document, FsStore, StoreError, Summary, source};
use rampart_config::{CollectionsConfig, Config};
use rampart_labels::{Label, Policies};
use rampart_retrieval::{Embedder, LocalIndex, PortionIndex, Readable};

/// The configuration a collection command reads: where collections are kept, and the site's SPIFs.
#[derive(Args)]
pub struct ConfigArg {
    /// Configuration file (TOML); `[collections] dir` says where collections are kept.
    #[arg(long, short, env = "RAMPART_CONFIG", default_value = "rampart.toml")]
    config: PathBuf,
}

/// The collection commands.
#[derive(Subcommand)]
pub enum CollectionCommand {
    /// Read documents into a collection from marked text or Markdown (.md, .markdown,
    /// .txt: a banner line, portion-marked paragraphs, or a NAME.label.xml sidecar) and
    /// JSON Lines (.jsonl). All or nothing: one bad document leaves the collection as it
    /// was. A document whose id exists replaces it as its next version.
    Ingest {
        #[command(flatten)]
        config: ConfigArg,
        /// The collection (created if new).
        name: String,
        /// Files, or directories to read them from (recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// The collections, with their documents and portions.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// A collection's documents, or one document with its portions.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        /// The collection.
        name: String,
        /// A document's id.
        doc_id: Option<String>,
    },
    /// Rank a collection's portions for a query as a reader cleared for LABEL would
    /// get them (only portions LABEL dominates are scored): a check of retrieval,
    /// without serving.
    Search {
        #[command(flatten)]
        config: ConfigArg,
        /// The collection.
        name: String,
        /// The query.
        query: String,
        /// The reader's ceiling: a marking such as "NATO CONFIDENTIAL", or JSON / STANAG 4774 XML.
        #[arg(long)]
        label: String,
        /// How many portions to show.
        #[arg(long, default_value_t = 8)]
        top_k: usize,
    },
    /// Remove a document from a collection.
    Remove {
        #[command(flatten)]
        config: ConfigArg,
        /// The collection.
        name: String,
        /// The document's id.
        doc_id: String,
    },
}

/// Runs a `rampart collection` command.
pub fn run(command: CollectionCommand) -> anyhow::Result<()> {
    match command {
        CollectionCommand::Ingest { config, name, paths } => {
            let Opened { store, policies, settings } = open(&config)?;
            let embedder = match settings.embeddings {
                true => Some(Embedder::load(&settings.embedding_model)?),
                false => None,
            };
            let limits = source::Limits {
                max_file_bytes: settings.max_file_bytes,
                max_portion_chars: settings.max_portion_chars,
            };
            ingest(&store, &policies, embedder.as_ref(), &name, &paths, &limits)
        }
        CollectionCommand::List { config } => list(&open(&config)?.store),
        CollectionCommand::Show { config, name, doc_id } => {
            let store = open(&config)?.store;
            let collection = store.load(&name)?.ok_or(StoreError::NoCollection(name))?;
            match doc_id {
                Some(id) => show_document(&collection, &id),
                None => show_collection(&collection),
            }
        }
        CollectionCommand::Search { config, name, query, label, top_k } => {
            let Opened { store, policies, settings } = open(&config)?;
            let ceiling = policies.parse_label(&label).map_err(|e| anyhow::anyhow!("--label '{label}': {e}"))?;
            let collection = store.load(&name)?.ok_or(StoreError::NoCollection(name))?;
            search(&collection, &settings, &ceiling, &query, top_k)
        }
        CollectionCommand::Remove { config, name, doc_id } => {
            let store = open(&config)?.store;
            if store.load(&name)?.is_none() {
                return Err(StoreError::NoCollection(name).into());
            }
            let collection = store.update(&name, &mut |c| match c.documents.remove(&doc_id) {
                Some(_) => Ok(()),
                None => Err(StoreError::NoDocument { collection: name.clone(), id: doc_id.clone() }),
            })?;
            println!(
                "removed '{doc_id}' from '{name}': {} documents, {} portions left (generation {})",
                collection.documents.len(),
                collection.portion_count(),
                collection.generation
            );
            Ok(())
        }
    }
}

/// What a collection command reads of the configuration.
struct Opened {
    store: FsStore,
    policies: Policies,
    settings: CollectionsConfig,
}

fn open(arg: &ConfigArg) -> anyhow::Result<Opened> {
    let config = Config::load(&arg.config)?;
    let policies = rampart_gateway::load_policies(&config)?;
    let store = FsStore::new(&config.collections.dir, policies.clone());
    Ok(Opened { store, policies, settings: config.collections })
}

fn ingest(
    store: &FsStore,
    policies: &Policies,
    embedder: Option<&Embedder>,
    name: &str,
    paths: &[PathBuf],
    limits: &source::Limits,
) -> anyhow::Result<()> {
    let (files, mut documents, started) =
        read_all(policies, paths, limits).with_context(|| format!("nothing was ingested into '{name}'"))?;
    if let Some(embedder) = embedder {
        embed_all(embedder, &mut documents).with_context(|| format!("nothing was ingested into '{name}'"))?;
    }
    let read = documents.len();
    let mut by_class: BTreeMap<(usize, String), usize> = BTreeMap::new();
    for portion in documents.iter().flat_map(|d| &d.portions) {
        *by_class.entry((portion.label.level(), portion.label.portion())).or_default() += 1;
    }
    eprintln!("writing collection '{name}': {read} documents read from {} files", files.len());
    let mut summary = Summary::default();
    let mut pending = Some(documents);
    let collection = store
        .update(name, &mut |c| {
            c.upsert(pending.take().unwrap_or_default(), &mut summary);
            Ok(())
        })
        .with_context(|| format!("collection '{name}' is unchanged"))?;
    let portions: Vec<String> = by_class.iter().map(|((_, marking), n)| format!("{n} {marking}")).collect();
    println!(
        "{name}: {read} documents ingested ({} new, {} replaced) from {} files in {:.2} s; portions read: {}",
        summary.added,
        summary.replaced,
        files.len(),
        started.elapsed().as_secs_f64(),
        portions.join(", ")
    );
    println!(
        "{name} now holds {} documents, {} portions (generation {})",
        collection.documents.len(),
        collection.portion_count(),
        collection.generation
    );
    Ok(())
}

/// Embeds every portion of `documents`, in batches, with a progress bar.
fn embed_all(embedder: &Embedder, documents: &mut [Document]) -> anyhow::Result<()> {
    const STEP: usize = 64;
    let mut portions: Vec<&mut rampart_collections::Portion> =
        documents.iter_mut().flat_map(|d| &mut d.portions).collect();
    let bar = ProgressBar::new(portions.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("embedding {pos}/{len} portions [{bar:30}] {per_sec}, {eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    for chunk in portions.chunks_mut(STEP) {
        let texts: Vec<&str> = chunk.iter().map(|p| p.text.as_str()).collect();
        let vectors = embedder.embed(&texts)?;
        for (portion, vector) in chunk.iter_mut().zip(vectors) {
            portion.embedding = vector;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Every document of `paths`, read and checked, with the files read and when reading started.
fn read_all(
    policies: &Policies,
    paths: &[PathBuf],
    limits: &source::Limits,
) -> anyhow::Result<(Vec<PathBuf>, Vec<Document>, Instant)> {
    let started = Instant::now();
    let files = source::files(paths)?;
    anyhow::ensure!(!files.is_empty(), "no document files (.md, .markdown, .txt, .jsonl) in the paths given");
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("reading {pos}/{len} files [{bar:30}] {per_sec}, {eta} left {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut documents = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for file in &files {
        bar.set_message(file.display().to_string());
        for document in source::read(policies, file, limits)? {
            if let Some(first) = seen.insert(document.id.clone(), document.origin.clone()) {
                anyhow::bail!("document id '{}' is given twice, in {first} and in {}", document.id, document.origin);
            }
            documents.push(document);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((files, documents, started))
}

fn search(
    collection: &Collection,
    settings: &CollectionsConfig,
    ceiling: &Label,
    query: &str,
    top_k: usize,
) -> anyhow::Result<()> {
    let index = LocalIndex::build(collection)?;
    let embedding = match index.has_embeddings() {
        true => Embedder::load(&settings.embedding_model)?.embed_one(query)?,
        false => Vec::new(),
    };
    let readable = Readable::of(index.labels(), |label| ceiling.dominates(label));
    let hits = index.search(query, &embedding, &readable, top_k)?;
    if hits.is_empty() {
        println!("nothing in '{}' that {} may read matches", collection.name, ceiling.banner());
    }
    for (n, hit) in hits.iter().enumerate() {
        let index = hit.portion.portion - 1;
        let Some((document, portion)) = collection
            .documents
            .get(&hit.portion.document)
            .and_then(|d| d.portions.get(index).map(|portion| (d, portion)))
        else {
            continue;
        };
        let shown = |score: Option<f32>| score.map_or_else(|| "-".to_owned(), |s| format!("{s:.3}"));
        let text: String = portion.text.chars().take(100).collect();
        println!(
            "{}. {}#{} {} score {:.4} (bm25 {}, cosine {}) {}",
            n + 1,
            hit.portion.document,
            document.portion_id(index).unwrap_or_default(),
            portion.label.portion(),
            hit.score,
            shown(hit.lexical),
            shown(hit.dense),
            text.replace('\n', " ")
        );
    }
    Ok(())
}

fn list(store: &FsStore) -> anyhow::Result<()> {
    let names = store.names()?;
    if names.is_empty() {
        println!(
            "no collections in {}; add one with `rampart collection ingest --config FILE NAME PATH...`",
            store.root().display()
        );
        return Ok(());
    }
    println!("{:<24} {:>9} {:>9} {:>10}", "COLLECTION", "DOCUMENTS", "PORTIONS", "GENERATION");
    for name in names {
        let Some(c) = store.load(&name)? else { continue };
        println!("{:<24} {:>9} {:>9} {:>10}", name, c.documents.len(), c.portion_count(), c.generation);
    }
    Ok(())
}

fn show_collection(collection: &Collection) -> anyhow::Result<()> {
    println!(
        "{}: {} documents, {} portions (generation {})",
        collection.name,
        collection.documents.len(),
        collection.portion_count(),
        collection.generation
    );
    for d in collection.documents.values() {
        println!(
            "{}  v{}  {}  {} portions  {} {}",
            d.id,
            d.version,
            d.label.banner(),
            d.portions.len(),
            d.title_label.portion(),
            d.title
        );
    }
    Ok(())
}

fn show_document(collection: &Collection, id: &str) -> anyhow::Result<()> {
    let document = collection
        .documents
        .get(id)
        .ok_or_else(|| StoreError::NoDocument { collection: collection.name.clone(), id: id.to_owned() })?;
    println!("{}", document.label.banner());
    println!("{} {}", document.title_label.portion(), document.title);
    println!("id {}, version {}, from {}", document.id, document.version, document.origin);
    for (n, portion) in document.portions.iter().enumerate() {
        println!("\n[{}] {} {}", n + 1, portion.label.portion(), portion.text);
    }
    println!("\n{}", document.label.banner());
    Ok(())
}
