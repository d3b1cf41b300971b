//! Where collections are kept: the [`CollectionStore`] trait, and its
//! embedded driver [`FsStore`], plain files in a directory.
//!
//! `FsStore` keeps each collection in `DIR/NAME/`: a change is written whole
//! into a new generation directory (`gNNNNNNNN/documents.jsonl` and the
//! portions' embeddings in `vectors.f32`, with the SHA-256 of each in
//! `DIGESTS`, checked with every labelling rule when read back; fsynced, first
//! under a `.partial` name), and takes effect when `CURRENT` is replaced by a
//! rename naming it. A crash at any point leaves `CURRENT` naming the previous
//! generation, so the collection is as it was; what the crash left behind is
//! removed by the next change. Writers take an exclusive lock on `DIR/NAME/.lock`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rampart_labels::{LabelJson, Policies};
use serde::{Deserialize, Serialize};

use crate::document::{Document, Portion, check_id};

/// A collection: its documents by id, as of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    /// The collection's name.
    pub name: String,
    /// The generation these documents are (0 for a collection never stored).
    pub generation: u64,
    /// The documents, by id.
    pub documents: BTreeMap<String, Document>,
}

/// What a change did, and what the collection holds after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Documents that were new.
    pub added: usize,
    /// Documents that replaced one of the same id (a new version).
    pub replaced: usize,
    /// Documents removed.
    pub removed: usize,
    /// Documents in the collection afterwards.
    pub documents: usize,
    /// Portions in the collection afterwards.
    pub portions: usize,
    /// The generation written.
    pub generation: u64,
}

impl Collection {
    /// An empty collection, never stored.
    pub fn empty(name: &str) -> Self {
        Self { name: name.to_owned(), generation: 0, documents: BTreeMap::new() }
    }

    /// Portions across every document.
    pub fn portion_count(&self) -> usize {
        self.documents.values().map(|d| d.portions.len()).sum()
    }

    /// Every portion, in document and portion order.
    pub fn portions(&self) -> impl Iterator<Item = &Portion> + Clone {
        self.documents.values().flat_map(|d| &d.portions)
    }

    /// Every portion, in document and portion order, to change.
    pub fn portions_mut(&mut self) -> impl Iterator<Item = &mut Portion> {
        self.documents.values_mut().flat_map(|d| &mut d.portions)
    }

    /// Adds `documents`, each replacing one of the same id as its next version.
    pub fn upsert(&mut self, documents: Vec<Document>, summary: &mut Summary) {
        for mut document in documents {
            match self.documents.get(&document.id) {
                Some(old) => {
                    document.version = old.version + 1;
                    summary.replaced += 1;
                }
                None => {
                    document.version = 1;
                    summary.added += 1;
                }
            }
            self.documents.insert(document.id.clone(), document);
        }
    }
}

/// Why a collection could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No collection has this name.
    #[error("no collection '{0}'; `rampart collection list` shows those there are")]
    NoCollection(String),
    /// The collection has no document with this id.
    #[error("collection '{collection}' has no document '{id}'")]
    NoDocument {
        /// The collection.
        collection: String,
        /// The document id asked for.
        id: String,
    },
    /// A name that cannot be a collection's.
    #[error("collection name: {0}")]
    InvalidName(String),
    /// The storage failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Some portions have embeddings and others none, or of another dimension.
    #[error("every portion must have an embedding of one dimension: {0}")]
    Embeddings(String),
    /// What is stored cannot be read back: damaged, or labelled under a policy the site no longer has.
    #[error("{path}: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_owned(), source }
}

/// A storage of collections.
pub trait CollectionStore {
    /// The names of the collections stored, in order.
    fn names(&self) -> Result<Vec<String>, StoreError>;

    /// A collection as last stored; `None` if there is none of this name.
    fn load(&self, name: &str) -> Result<Option<Collection>, StoreError>;

    /// Applies `change` to the collection (an empty one if there is none yet)
    /// and stores the result as one step: afterwards the collection is either
    /// as `change` left it or, on any error or crash, as it was. Changes to one
    /// collection are applied one at a time.
    fn update(
        &self,
        name: &str,
        change: &mut dyn FnMut(&mut Collection) -> Result<(), StoreError>,
    ) -> Result<Collection, StoreError>;
}

/// Collections in plain files under one directory (see the module doc).
pub struct FsStore {
    root: PathBuf,
    policies: Policies,
}

const CURRENT: &str = "CURRENT";
const DOCUMENTS: &str = "documents.jsonl";
const VECTORS: &str = "vectors.f32";
const DIGESTS: &str = "DIGESTS";
const PARTIAL: &str = ".partial";

#[derive(Serialize, Deserialize)]
struct StoredDocument {
    id: String,
    title: String,
    title_label: LabelJson,
    label: LabelJson,
    version: u64,
    origin: String,
    portions: Vec<StoredPortion>,
}

#[derive(Serialize, Deserialize)]
struct StoredPortion {
    label: LabelJson,
    text: String,
    origin: String,
}

impl StoredDocument {
    fn of(document: &Document) -> Self {
        Self {
            id: document.id.clone(),
            title: document.title.clone(),
            title_label: document.title_label.to_json(),
            label: document.label.to_json(),
            version: document.version,
            origin: document.origin.clone(),
            portions: document
                .portions
                .iter()
                .map(|p| StoredPortion { label: p.label.to_json(), text: p.text.clone(), origin: p.origin.clone() })
                .collect(),
        }
    }

    fn into_document(self, policies: &Policies) -> Result<Document, String> {
        let label =
            |json: &LabelJson| policies.label_from_json(json).map_err(|e| format!("document '{}': {e}", self.id));
        let portions = self
            .portions
            .iter()
            .map(|p| {
                let origin = p.origin.clone();
                Ok(Portion { label: label(&p.label)?, text: p.text.clone(), origin, embedding: Vec::new() })
            })
            .collect::<Result<_, String>>()?;
        Ok(Document {
            title_label: label(&self.title_label)?,
            label: label(&self.label)?,
            portions,
            id: self.id,
            title: self.title,
            origin: self.origin,
            version: self.version,
        })
    }
}

/// The embeddings of every portion, in document and portion order, as
/// `vectors.f32` holds them: the dimension (u32), the count (u64), then the
/// vectors (f32), little-endian. `None` when no portion has one.
fn vectors_of(collection: &Collection) -> Result<Option<Vec<u8>>, StoreError> {
    let mut portions = collection.portions();
    let dims = portions.clone().next().map_or(0, |p| p.embedding.len());
    if let Some(odd) = portions.clone().find(|p| p.embedding.len() != dims) {
        return Err(StoreError::Embeddings(format!(
            "{} has {} dimensions, not {dims}",
            odd.origin,
            odd.embedding.len()
        )));
    }
    if dims == 0 {
        return Ok(None);
    }
    let count = portions.clone().count();
    let mut bytes = Vec::with_capacity(12 + count * dims * 4);
    bytes.extend_from_slice(&u32::try_from(dims).unwrap_or(u32::MAX).to_le_bytes());
    bytes.extend_from_slice(&(count as u64).to_le_bytes());
    for value in portions.by_ref().flat_map(|p| &p.embedding) {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    Ok(Some(bytes))
}

/// Gives each portion its embedding from `vectors.f32` (see [`vectors_of`]).
fn attach_vectors(collection: &mut Collection, bytes: &[u8]) -> Result<(), String> {
    let header = |range: std::ops::Range<usize>| bytes.get(range).ok_or("shorter than its header");
    let dims = u32::from_le_bytes(header(0..4)?.try_into().map_err(|_| "header")?) as usize;
    let count = u64::from_le_bytes(header(4..12)?.try_into().map_err(|_| "header")?);
    let portions = collection.portion_count();
    if count != portions as u64 || bytes.len() != 12 + portions * dims * 4 {
        return Err(format!("holds {count} vectors of {dims} in {} bytes for {portions} portions", bytes.len()));
    }
    let mut values = bytes[12..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    for portion in collection.portions_mut() {
        portion.embedding = values.by_ref().take(dims).collect();
    }
    Ok(())
}

/// Writes `bytes` to a new file at `path` and flushes it to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = File::create(path).map_err(io(path))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io(path))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A generation's `DIGESTS`: the SHA-256 of each of its files, by name. A
/// generation without one (edited, or written before digests were kept) is damaged.
fn read_digests(generation: &Path) -> Result<BTreeMap<String, String>, StoreError> {
    let path = generation.join(DIGESTS);
    let text = fs::read_to_string(&path).map_err(|e| StoreError::Damaged {
        path: path.clone(),
        reason: format!("the generation's digests cannot be read ({e}); ingest the collection again"),
    })?;
    text.lines()
        .map(|line| match line.split_once(' ') {
            Some((digest, name)) => Ok((name.to_owned(), digest.to_owned())),
            None => Err(StoreError::Damaged { path: path.clone(), reason: "a line is not 'DIGEST NAME'".into() }),
        })
        .collect()
}

/// Refuses a file whose bytes are not what its generation's digests say.
fn check_digest(digests: &BTreeMap<String, String>, path: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    if digests.get(name).is_some_and(|d| *d == sha256_hex(bytes)) {
        return Ok(());
    }
    Err(StoreError::Damaged {
        path: path.to_owned(),
        reason: "its digest does not match the generation's DIGESTS: the store was changed outside Rampart".into(),
    })
}

fn generation_dir(generation: u64) -> String {
    format!("g{generation:08}")
}

/// Makes what was written in `dir` (renames, new files) durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl FsStore {
    /// A store in `root` (created when first written), reading labels with `policies`.
    pub fn new(root: impl Into<PathBuf>, policies: Policies) -> Self {
        Self { root: root.into(), policies }
    }

    /// The directory collections are kept in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, name: &str) -> Result<PathBuf, StoreError> {
        check_id(name).map_err(StoreError::InvalidName)?;
        Ok(self.root.join(name))
    }

    fn current(dir: &Path) -> Result<Option<u64>, StoreError> {
        let path = dir.join(CURRENT);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let generation = text.trim().strip_prefix('g').and_then(|n| n.parse().ok());
                generation
                    .map(Some)
                    .ok_or_else(|| StoreError::Damaged { path, reason: format!("not a generation: '{}'", text.trim()) })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    fn read_generation(&self, name: &str, dir: &Path, generation: u64) -> Result<Collection, StoreError> {
        let generation_path = dir.join(generation_dir(generation));
        let digests = read_digests(&generation_path)?;
        let path = generation_path.join(DOCUMENTS);
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        check_digest(&digests, &path, DOCUMENTS, text.as_bytes())?;
        let mut documents = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let damaged = |reason: String| StoreError::Damaged {
                path: path.clone(),
                reason: format!("line {}: {reason}", index + 1),
            };
            let stored: StoredDocument = serde_json::from_str(line).map_err(|e| damaged(e.to_string()))?;
            let document = stored.into_document(&self.policies).map_err(damaged)?;
            // Every rule ingest applied holds again on what is read back.
            document.check().and_then(|()| document.check_markings(&self.policies)).map_err(|e| damaged(e.reason))?;
            documents.insert(document.id.clone(), document);
        }
        let mut collection = Collection { name: name.to_owned(), generation, documents };
        let vectors = dir.join(generation_dir(generation)).join(VECTORS);
        match fs::read(&vectors) {
            Ok(bytes) => {
                check_digest(&digests, &vectors, VECTORS, &bytes)?;
                attach_vectors(&mut collection, &bytes)
                    .map_err(|reason| StoreError::Damaged { path: vectors, reason })?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !digests.contains_key(VECTORS) => {}
            Err(e) => return Err(StoreError::Io { path: vectors, source: e }),
        }
        Ok(collection)
    }

    /// Writes `collection` as generation `generation` and makes it current.
    fn write_generation(dir: &Path, collection: &Collection, generation: u64) -> Result<(), StoreError> {
        let name = generation_dir(generation);
        let partial = dir.join(format!("{name}{PARTIAL}"));
        if partial.exists() {
            fs::remove_dir_all(&partial).map_err(io(&partial))?;
        }
        fs::create_dir(&partial).map_err(io(&partial))?;
        let path = partial.join(DOCUMENTS);
        let mut documents = Vec::new();
        for document in collection.documents.values() {
            serde_json::to_writer(&mut documents, &StoredDocument::of(document))
                .map_err(|e| StoreError::Io { path: path.clone(), source: e.into() })?;
            documents.push(b'\n');
        }
        write_synced(&path, &documents)?;
        let mut digests = format!("{} {DOCUMENTS}\n", sha256_hex(&documents));
        if let Some(bytes) = vectors_of(collection)? {
            write_synced(&partial.join(VECTORS), &bytes)?;
            digests.push_str(&format!("{} {VECTORS}\n", sha256_hex(&bytes)));
        }
        write_synced(&partial.join(DIGESTS), digests.as_bytes())?;
        sync_dir(&partial)?;
        let done = dir.join(&name);
        fs::rename(&partial, &done).map_err(io(&done))?;
        sync_dir(dir)?;
        let next = dir.join(format!("{CURRENT}{PARTIAL}"));
        let mut file = File::create(&next).map_err(io(&next))?;
        file.write_all(format!("{name}\n").as_bytes()).and_then(|()| file.sync_all()).map_err(io(&next))?;
        let current = dir.join(CURRENT);
        fs::rename(&next, &current).map_err(io(&current))?;
        sync_dir(dir)
    }

    /// Removes every generation but `keep`, and whatever a crash left half-written.
    fn remove_stale(dir: &Path, keep: u64) {
        let keep = generation_dir(keep);
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('g') && name != keep && entry.path().is_dir() {
                // Best effort: a generation left here is removed by the next change.
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

impl CollectionStore for FsStore {
    fn names(&self) -> Result<Vec<String>, StoreError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::Io { path: self.root.clone(), source: e }),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if check_id(&name).is_ok() && entry.path().join(CURRENT).exists() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn load(&self, name: &str) -> Result<Option<Collection>, StoreError> {
        let dir = self.dir(name)?;
        match Self::current(&dir)? {
            Some(generation) => self.read_generation(name, &dir, generation).map(Some),
            None => Ok(None),
        }
    }

    fn update(
        &self,
        name: &str,
        change: &mut dyn FnMut(&mut Collection) -> Result<(), StoreError>,
    ) -> Result<Collection, StoreError> {
        let dir = self.dir(name)?;
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock_path = dir.join(".lock");
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        let mut collection = match Self::current(&dir)? {
            Some(generation) => self.read_generation(name, &dir, generation)?,
            None => Collection::empty(name),
        };
        change(&mut collection)?;
        let generation = collection.generation + 1;
        Self::write_generation(&dir, &collection, generation)?;
        collection.generation = generation;
        Self::remove_stale(&dir, generation);
        Ok(collection)
    }
}
