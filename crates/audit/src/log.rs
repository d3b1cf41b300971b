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

use tlog_tiles::{HashReader, Tile, TileHashReader, TileReader, record_hash, stored_hash_index};

use crate::edge::{Edge, StoredEdgeError};

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

/// Reads the log's hash tiles from its storage, for `tlog_tiles`'
/// [`TileHashReader`], which checks every tile it reads against a signed tree
/// hash before using it.
pub(crate) struct StorageTiles<'a, S: Storage + ?Sized>(pub(crate) &'a S);

impl<S: Storage + ?Sized> TileReader for StorageTiles<'_, S> {
    fn height(&self) -> u8 {
        HEIGHT
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|tile| match self.0.read(&tiles::path_of(tile)) {
                Ok(Some(data)) => Ok(data),
                _ => Err(tlog_tiles::Error::IndexesNotInTree),
            })
            .collect()
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
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
    /// The full tiles and bundles it writes, whose partial versions go once it is durable.
    filled: Vec<String>,
}

impl Publication {
    /// Entries in the published tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes the bundles and tiles, makes them durable, then writes the
    /// checkpoint durably; then deletes the partial versions of the tiles and
    /// bundles it filled (what a crash or an error leaves, [`Log::open`] deletes).
    pub fn write<S: Storage + ?Sized>(&self, storage: &S) -> Result<(), LogError> {
        for (path, data) in &self.files {
            storage.write_fresh(path, data).map_err(|source| io_error(path, source))?;
        }
        storage.sync().map_err(|source| io_error("(sync)", source))?;
        let io = |source| io_error(CHECKPOINT, source);
        storage.write(CHECKPOINT, &self.checkpoint).map_err(io)?;
        storage.sync().map_err(io)?;
        for path in &self.filled {
            // The publication is whole without this: a partial version left is never served (the
            // `serve` module checks), is still checked by `verify`, and is deleted when the log next opens.
            let _ = storage.remove_partials(path);
        }
        Ok(())
    }
}

/// An open log, ready to append.
pub struct Log<S: Storage> {
    storage: Arc<S>,
    skey: String,
    vkey: String,
    size: u64,
    /// The right edge of the tree: all of it the log holds in memory.
    edge: Edge,
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
    /// What is read does not grow with the log: the signed checkpoint, the
    /// open tile of each level (checked against the checkpoint's root), the
    /// open entry bundle and the journal. The batches the journal holds beyond
    /// the checkpoint are published, anything written after the last durable
    /// commit (cut short by a crash) is ignored, and partial tiles a crash left
    /// beside full ones are deleted. The whole log is checked by
    /// the verifier (`rampart audit verify`), not here.
    pub fn open(storage: S, skey: String) -> Result<Self, LogError> {
        let vkey = keys::verifier_key(&skey)?;
        let mut log = Self {
            storage: Arc::new(storage),
            skey,
            vkey: vkey.clone(),
            size: 0,
            edge: Edge::new(),
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
        let mut swept_from = log.size;
        if let Some(journal) = log.storage.read_journal().map_err(|source| io_error("journal", source))? {
            swept_from = log.replay(&vkey, &journal)?;
        }
        log.sweep_partials(swept_from)?;
        if log.checkpoint.is_empty() || log.size > log.published {
            log.publish()?;
        }
        log.rewrite_journal()?;
        Ok(log)
    }

    /// Reads the published tree's right edge and open entry bundle, checked
    /// against its signed checkpoint.
    fn read_published(&mut self, vkey: &str, signed: Vec<u8>) -> Result<(), LogError> {
        let checkpoint = keys::open_checkpoint(vkey, &signed)?;
        let size = checkpoint.size();
        let edge = Edge::read(&*self.storage, size, checkpoint.hash()).map_err(|e| match e {
            StoredEdgeError::Io { path, source } => io_error(&path, source),
            StoredEdgeError::Damaged(why) => LogError::Damaged(why),
        })?;
        self.recent_from = size / WIDTH * WIDTH;
        let width = size - self.recent_from;
        if width > 0 {
            let path = tiles::entry_bundle_path(size / WIDTH, width);
            let data = self.read_file(&path)?;
            let entries = edge.check_open_bundle(&path, &data, width).map_err(LogError::Damaged)?;
            self.recent.extend(entries.into_iter().map(<[u8]>::to_vec));
        }
        self.edge = edge;
        self.size = size;
        self.published = size;
        self.checkpoint = signed;
        Ok(())
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>, LogError> {
        self.storage
            .read(path)
            .map_err(|source| io_error(path, source))?
            .ok_or_else(|| LogError::Damaged(format!("{path} is missing")))
    }

    /// Adds the journal's batches beyond the published tree, after checking the
    /// journal agrees with the tree it was written against; returns the size of
    /// that tree (every tile filled since may have partial versions left).
    ///
    /// The entries the journal holds that were published since are checked in
    /// aggregate, not one by one: the tree's right edge at the journal's base
    /// is read from the tiles (a few, each checked against the signed root),
    /// they are hashed onto it, and the result must be the published root.
    fn replay(&mut self, vkey: &str, journal: &[u8]) -> Result<u64, LogError> {
        let damaged = |what: &str| LogError::Damaged(format!("the journal {what}"));
        let mut records = journal::read(journal).into_iter();
        let Some(Record::Base { size: base, checkpoint }) = records.next() else {
            return Err(damaged("does not begin with a published tree"));
        };
        let checkpoint = keys::open_checkpoint(vkey, &checkpoint)?;
        let root = self.edge.root().map_err(math)?;
        let contained = base <= self.published && checkpoint.size() == base;
        let mut at_base = if contained && base < self.published { Some(self.edge_at(base, root)?) } else { None };
        let base_root = match &at_base {
            Some(edge) => edge.root().ok(),
            None => contained.then_some(root),
        };
        if base_root != Some(*checkpoint.hash()) {
            return Err(damaged("begins with a tree the published log does not contain"));
        }
        let mut next = base;
        for record in records {
            let Record::Entries { first, entries } = record else { return Err(damaged("has a second base")) };
            if first != next {
                return Err(damaged(&format!("skips from entry {next} to {first}")));
            }
            for entry in entries {
                if let Some(edge) = at_base.as_mut().filter(|_| next < self.published) {
                    edge.push(record_hash(&entry));
                } else {
                    self.push(entry);
                }
                next += 1;
            }
        }
        // The published entries the journal holds, hashed onto the tree at its base, must give the published root.
        if let Some(edge) = at_base
            && (next < self.published || edge.root().map_err(math)? != root)
        {
            return Err(damaged(&format!("disagrees with the entries published from {base} to {}", self.published)));
        }
        Ok(base)
    }

    /// The right edge of the published tree's first `size` entries, read from
    /// the tiles through `tlog_tiles`' reader, which checks each tile against
    /// `root` (the published tree's).
    fn edge_at(&self, size: u64, root: tlog_tiles::Hash) -> Result<Edge, LogError> {
        let tiles = StorageTiles(&*self.storage);
        let reader = TileHashReader::new(self.published, root, &tiles);
        let mut open = Vec::new();
        for tile in Edge::open_tiles(size) {
            let level = tile.level() * tiles::HEIGHT;
            let first = tile.level_index() * WIDTH;
            let indexes: Vec<u64> = (first..first + tile.width()).map(|n| stored_hash_index(level, n)).collect();
            let hashes = if indexes.is_empty() { Vec::new() } else { reader.read_hashes(&indexes).map_err(math)? };
            open.push(hashes.iter().flat_map(|hash| hash.0).collect());
        }
        Edge::restore(size, open).map_err(LogError::Damaged)
    }

    /// Deletes the partial versions of every tile and bundle that filled in the
    /// tree beyond `from` entries: a crash between publishing a full tile and
    /// deleting them may have left them. Bounded by the journal's length.
    fn sweep_partials(&self, from: u64) -> Result<(), LogError> {
        for level in 0..=Edge::open_tiles(self.published).len() as u32 {
            let shift = u32::from(tiles::HEIGHT) * (level + 1);
            let (first, end) = (from >> shift, self.published >> shift);
            for index in first..end {
                let path = tiles::hash_tile_path(level as u8, index, WIDTH);
                self.storage.remove_partials(&path).map_err(|source| io_error(&path, source))?;
                if level == 0 {
                    let bundle = tiles::entry_bundle_path(index, WIDTH);
                    self.storage.remove_partials(&bundle).map_err(|source| io_error(&bundle, source))?;
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, entry: Vec<u8>) {
        self.edge.push(record_hash(&entry));
        self.recent.push(entry);
        self.size += 1;
    }

    /// The digester of request bodies under this log's site key (see [`crate::digest`]).
    pub fn request_digester(&self) -> crate::digest::RequestDigester {
        crate::digest::RequestDigester::from_signing_key(&self.skey)
    }

    /// The verifier key of the log's signing key (`origin+keyid+key`).
    pub fn verifier_key(&self) -> &str {
        &self.vkey
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
            self.push(entry.clone());
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
            files.push((tiles::path_of(&tile), tile.read_data(&self.edge).map_err(math)?));
        }
        let filled = files.iter().map(|(path, _)| path).filter(|path| !path.contains(".p/")).cloned().collect();
        let root = self.edge.root().map_err(math)?;
        let checkpoint = keys::sign_checkpoint(&self.skey, self.size, root)?;
        Ok(Some(Publication { size: self.size, files, checkpoint, filled }))
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
        self.edge.forget_filled(self.published);
        let keep_from = self.published / WIDTH * WIDTH;
        self.recent.drain(..(keep_from - self.recent_from) as usize);
        self.recent_from = keep_from;
    }
}
