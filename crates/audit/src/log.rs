//! The writer: commits batches of entries durably to the journal and publishes
//! them in the tlog-tiles layout under a signed checkpoint.
//!
//! A batch is durable once its journal record is flushed ([`Log::commit`]).
//! Publishing ([`Log::publication`], [`Publication::write`], [`Log::published`])
//! writes the entry bundles, hash tiles and signed checkpoint of everything
//! committed; it runs behind the commits, and [`Log::open`] finishes it from the
//! journal after a crash. A checkpoint is signed only over committed entries,
//! so the log never signs two trees that disagree.

use std::sync::Arc;

use tlog_tiles::{Hash, HashReader, Tile, record_hash, stored_hash_count, stored_hash_index, stored_hashes, tree_hash};

use crate::journal::{self, Record};
use crate::keys::{self, KeyError};
use crate::storage::Storage;
use crate::tiles::{self, HEIGHT, WIDTH};

/// The path of the signed checkpoint (defined with the other tlog-tiles paths).
pub use crate::tiles::CHECKPOINT;

/// The journal is rewritten, from its last published tree on, once it holds
/// this much: about 110,000 entries, so under load a rewrite (a stall of a
/// millisecond or so for the writer; the old file is closed, and its blocks
/// freed, on another thread) comes every few seconds at most.
const JOURNAL_LIMIT: u64 = 64 << 20;

/// Why the log cannot be opened or appended to. Nothing in a failed commit is in the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file could not be read or written.
    #[error("audit log storage, '{path}': {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A key or checkpoint problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The stored log does not match its checkpoint.
    #[error("the audit log is damaged: {0}; run `rampart audit verify` on it")]
    Damaged(String),
    /// An entry is longer than a bundle can hold.
    #[error("an audit entry of {0} bytes exceeds the 65,535-byte limit")]
    EntryTooLarge(usize),
}

/// Every stored hash of the tree, in `tlog_tiles`' stored-hash order.
pub(crate) struct StoredHashes(pub(crate) Vec<Hash>);

impl HashReader for StoredHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| usize::try_from(i).ok().and_then(|i| self.0.get(i)).copied())
            .collect::<Option<Vec<_>>>()
            .ok_or(tlog_tiles::Error::IndexesNotInTree)
    }
}

fn io_error(path: &str, source: std::io::Error) -> LogError {
    LogError::Io { path: path.to_owned(), source }
}

fn math(e: tlog_tiles::Error) -> LogError {
    LogError::Damaged(format!("tree arithmetic failed: {e}"))
}

/// The files that publish a tree: bundles and tiles, then its signed checkpoint.
pub struct Publication {
    size: u64,
    files: Vec<(String, Vec<u8>)>,
    checkpoint: Vec<u8>,
}

impl Publication {
    /// Entries in the published tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes the bundles and tiles, makes them durable, then writes the checkpoint durably.
    pub fn write<S: Storage + ?Sized>(&self, storage: &S) -> Result<(), LogError> {
        for (path, data) in &self.files {
            storage.write_fresh(path, data).map_err(|source| io_error(path, source))?;
        }
        storage.sync().map_err(|source| io_error("(sync)", source))?;
        let io = |source| io_error(CHECKPOINT, source);
        storage.write(CHECKPOINT, &self.checkpoint).map_err(io)?;
        storage.sync().map_err(io)
    }
}

/// An open log, ready to append.
pub struct Log<S: Storage> {
    storage: Arc<S>,
    skey: String,
    size: u64,
    hashes: StoredHashes,
    /// Entries from index `recent_from` (the start of the bundle holding
    /// `published`) to `size`: what publishing and the journal still need.
    recent: Vec<Vec<u8>>,
    recent_from: u64,
    /// The durably published tree: its size and signed checkpoint.
    published: u64,
    checkpoint: Vec<u8>,
    /// Bytes in the journal, and whether it must be rewritten before the next commit.
    journal_bytes: u64,
    journal_broken: bool,
}

impl<S: Storage> Log<S> {
    /// Opens the log in `storage` signed with `skey`, creating it when empty.
    /// Recovery: the published tree is read back to its signed checkpoint, the
    /// batches the journal holds beyond it are published, and anything written
    /// after the last durable commit (cut short by a crash) is ignored.
    pub fn open(storage: S, skey: String) -> Result<Self, LogError> {
        let vkey = keys::verifier_key(&skey)?;
        let mut log = Self {
            storage: Arc::new(storage),
            skey,
            size: 0,
            hashes: StoredHashes(Vec::new()),
            recent: Vec::new(),
            recent_from: 0,
            published: 0,
            checkpoint: Vec::new(),
            journal_bytes: 0,
            journal_broken: true,
        };
        if let Some(signed) = log.storage.read(CHECKPOINT).map_err(|source| io_error(CHECKPOINT, source))? {
            log.read_published(&vkey, signed)?;
        }
        if let Some(journal) = log.storage.read_journal().map_err(|source| io_error("journal", source))? {
            log.replay(&vkey, &journal)?;
        }
        if log.checkpoint.is_empty() || log.size > log.published {
            log.publish()?;
        }
        log.rewrite_journal()?;
        Ok(log)
    }

    fn read_published(&mut self, vkey: &str, signed: Vec<u8>) -> Result<(), LogError> {
        let checkpoint = keys::open_checkpoint(vkey, &signed)?;
        for (index, width) in tiles::bundles(checkpoint.size()) {
            let path = tiles::entry_bundle_path(index, width);
            let data = self
                .storage
                .read(&path)
                .map_err(|source| io_error(&path, source))?
                .ok_or_else(|| LogError::Damaged(format!("{path} is missing")))?;
            let entries =
                tiles::split_bundle(&data, width as usize).map_err(|e| LogError::Damaged(format!("{path}: {e}")))?;
            self.recent.clear();
            self.recent_from = self.size;
            for entry in entries {
                self.push(entry.to_vec())?;
            }
        }
        if self.size.is_multiple_of(WIDTH) {
            self.recent.clear();
            self.recent_from = self.size;
        }
        if tree_hash(self.size, &self.hashes).map_err(math)? != *checkpoint.hash() {
            return Err(LogError::Damaged("the entries do not hash to the checkpoint's root".into()));
        }
        self.published = self.size;
        self.checkpoint = signed;
        Ok(())
    }

    /// Adds the journal's batches beyond the published tree, after checking the
    /// journal agrees with the tree it was written against.
    fn replay(&mut self, vkey: &str, journal: &[u8]) -> Result<(), LogError> {
        let damaged = |what: &str| LogError::Damaged(format!("the journal {what}"));
        let mut records = journal::read(journal).into_iter();
        let Some(Record::Base { size: base, checkpoint }) = records.next() else {
            return Err(damaged("does not begin with a published tree"));
        };
        let checkpoint = keys::open_checkpoint(vkey, &checkpoint)?;
        if base > self.size
            || checkpoint.size() != base
            || tree_hash(base, &self.hashes).map_err(math)? != *checkpoint.hash()
        {
            return Err(damaged("begins with a tree the published log does not contain"));
        }
        let mut next = base;
        for record in records {
            let Record::Entries { first, entries } = record else { return Err(damaged("has a second base")) };
            if first != next {
                return Err(damaged(&format!("skips from entry {next} to {first}")));
            }
            for entry in entries {
                if next < self.size {
                    if self.hashes.0[stored_hash_index(0, next) as usize] != record_hash(&entry) {
                        return Err(damaged(&format!("disagrees with the published entry {next}")));
                    }
                } else {
                    self.push(entry)?;
                }
                next += 1;
            }
        }
        Ok(())
    }

    fn push(&mut self, entry: Vec<u8>) -> Result<(), LogError> {
        let hashes = stored_hashes(self.size, &entry, &self.hashes).map_err(math)?;
        self.hashes.0.extend(hashes);
        self.recent.push(entry);
        self.size += 1;
        Ok(())
    }

    /// The digester of request bodies under this log's site key (see [`crate::digest`]).
    pub fn request_digester(&self) -> crate::digest::RequestDigester {
        crate::digest::RequestDigester::from_signing_key(&self.skey)
    }

    /// Entries in the log (committed, published or not).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Entries in the durably published tree.
    pub fn published_size(&self) -> u64 {
        self.published
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage, for a thread that writes publications.
    pub fn shared_storage(&self) -> Arc<S> {
        Arc::clone(&self.storage)
    }

    /// Commits `entries` as one durable batch (one journal record, flushed) and
    /// returns the index of the first. On error nothing of the batch is in the
    /// log and the log stays usable.
    pub fn commit(&mut self, entries: &[Vec<u8>]) -> Result<u64, LogError> {
        if let Some(big) = entries.iter().find(|e| e.len() > usize::from(u16::MAX)) {
            return Err(LogError::EntryTooLarge(big.len()));
        }
        if self.journal_broken {
            self.rewrite_journal()?;
        }
        let first = self.size;
        let record = journal::entries(first, entries);
        if let Err(source) = self.storage.append_journal(&record) {
            self.journal_broken = true;
            return Err(io_error("journal", source));
        }
        self.journal_bytes += record.len() as u64;
        for entry in entries {
            if let Err(err) = self.push(entry.clone()) {
                // The journal holds entries the tree does not: it is rewritten before the next commit.
                self.size = first;
                self.hashes.0.truncate(stored_hash_count(first) as usize);
                self.recent.truncate((first - self.recent_from) as usize);
                self.journal_broken = true;
                return Err(err);
            }
        }
        Ok(first)
    }

    /// What publishes every committed entry, or `None` when all are published.
    pub fn publication(&self) -> Result<Option<Publication>, LogError> {
        if self.size == self.published && !self.checkpoint.is_empty() {
            return Ok(None);
        }
        let mut files = Vec::new();
        let mut index = self.published / WIDTH;
        while index * WIDTH < self.size {
            let start = index * WIDTH;
            let width = (self.size - start).min(WIDTH);
            let mut bundle = Vec::new();
            for entry in &self.recent[(start - self.recent_from) as usize..][..width as usize] {
                tiles::push_entry(&mut bundle, entry);
            }
            files.push((tiles::entry_bundle_path(index, width), bundle));
            index += 1;
        }
        for tile in Tile::new_tiles(HEIGHT, self.published, self.size) {
            files.push((tiles::path_of(&tile), tile.read_data(&self.hashes).map_err(math)?));
        }
        let root = tree_hash(self.size, &self.hashes).map_err(math)?;
        let checkpoint = keys::sign_checkpoint(&self.skey, self.size, root)?;
        Ok(Some(Publication { size: self.size, files, checkpoint }))
    }

    /// Notes that `publication` was written; rewrites the journal when it has
    /// grown large, or when the storage has a better file ready for it.
    pub fn published(&mut self, publication: Publication) {
        self.published = publication.size;
        self.checkpoint = publication.checkpoint;
        if self.journal_bytes > JOURNAL_LIMIT || self.storage.journal_wants_replacing() {
            // On error the old journal may be gone: the next commit tries again first.
            self.journal_broken = self.rewrite_journal().is_err();
        }
        self.forget_published();
    }

    /// Publishes every committed entry now, on this thread; returns the published size.
    pub fn publish(&mut self) -> Result<u64, LogError> {
        if let Some(publication) = self.publication()? {
            publication.write(&*self.storage)?;
            self.published(publication);
        }
        Ok(self.published)
    }

    /// Commits `entries` and publishes them: for callers without a background publisher.
    pub fn append(&mut self, entries: &[Vec<u8>]) -> Result<u64, LogError> {
        let first = self.commit(entries)?;
        self.publish()?;
        Ok(first)
    }

    /// Replaces the journal with the published tree and the batches since.
    fn rewrite_journal(&mut self) -> Result<(), LogError> {
        let unpublished = &self.recent[(self.published - self.recent_from) as usize..];
        let mut records = journal::base(self.published, &self.checkpoint);
        if !unpublished.is_empty() {
            records.extend(journal::entries(self.published, unpublished));
        }
        self.storage.replace_journal(&records).map_err(|source| io_error("journal", source))?;
        self.journal_bytes = records.len() as u64;
        self.journal_broken = false;
        Ok(())
    }

    /// Drops the entries no publication or journal rewrite needs again: those
    /// before the bundle that holds the published tree's end.
    fn forget_published(&mut self) {
        let keep_from = self.published / WIDTH * WIDTH;
        self.recent.drain(..(keep_from - self.recent_from) as usize);
        self.recent_from = keep_from;
    }
}
