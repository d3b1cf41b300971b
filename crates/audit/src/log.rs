//! The writer: appends batches of entries durably and signs a checkpoint for each.

use tlog_tiles::{Hash, HashReader, Tile, stored_hash_count, stored_hashes, tree_hash};

use crate::keys::{self, KeyError};
use crate::storage::Storage;
use crate::tiles::{self, HEIGHT, WIDTH};

/// The path of the signed checkpoint.
pub const CHECKPOINT: &str = "checkpoint";

/// Why the log cannot be opened or appended to. Nothing in a failed batch is in the log.
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

/// An open log, ready to append.
pub struct Log<S: Storage> {
    storage: S,
    skey: String,
    size: u64,
    hashes: StoredHashes,
    /// Entries of the last, partial entry bundle.
    tail: Vec<Vec<u8>>,
}

impl<S: Storage> Log<S> {
    /// Opens the log in `storage` signed with `skey`, creating it when empty.
    /// Recovery is reading back to the last signed checkpoint: anything written
    /// after it (a batch cut short by a crash) is ignored and overwritten.
    pub fn open(storage: S, skey: String) -> Result<Self, LogError> {
        let vkey = keys::verifier_key(&skey)?;
        let mut log = Self { storage, skey, size: 0, hashes: StoredHashes(Vec::new()), tail: Vec::new() };
        let Some(signed) = log.storage.read(CHECKPOINT).map_err(|source| io_error(CHECKPOINT, source))? else {
            log.publish()?;
            return Ok(log);
        };
        let checkpoint = keys::open_checkpoint(&vkey, &signed)?;
        for (index, width) in tiles::bundles(checkpoint.size()) {
            let path = tiles::entry_bundle_path(index, width);
            let data = log
                .storage
                .read(&path)
                .map_err(|source| io_error(&path, source))?
                .ok_or_else(|| LogError::Damaged(format!("{path} is missing")))?;
            let entries =
                tiles::split_bundle(&data, width as usize).map_err(|e| LogError::Damaged(format!("{path}: {e}")))?;
            for entry in &entries {
                let hashes = stored_hashes(log.size, entry, &log.hashes).map_err(math)?;
                log.hashes.0.extend(hashes);
                log.size += 1;
            }
            log.tail = if width < WIDTH { entries.iter().map(|e| e.to_vec()).collect() } else { Vec::new() };
        }
        if tree_hash(log.size, &log.hashes).map_err(math)? != *checkpoint.hash() {
            return Err(LogError::Damaged("the entries do not hash to the checkpoint's root".into()));
        }
        Ok(log)
    }

    /// Entries in the log.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Appends `entries` as one durable batch: entry bundles and hash tiles
    /// written and synced, then a signed checkpoint written and synced. Returns
    /// the index of the first entry. On error nothing of the batch is in the
    /// log (the next checkpoint will not cover it) and the log stays usable.
    pub fn append(&mut self, entries: &[Vec<u8>]) -> Result<u64, LogError> {
        if let Some(big) = entries.iter().find(|e| e.len() > usize::from(u16::MAX)) {
            return Err(LogError::EntryTooLarge(big.len()));
        }
        let first = self.size;
        let tail = self.tail.clone();
        let result = self.write_batch(entries);
        if result.is_err() {
            self.size = first;
            self.hashes.0.truncate(stored_hash_count(first) as usize);
            self.tail = tail;
        }
        result.map(|()| first)
    }

    fn write_batch(&mut self, entries: &[Vec<u8>]) -> Result<(), LogError> {
        let old = self.size;
        for entry in entries {
            let hashes = stored_hashes(self.size, entry, &self.hashes).map_err(math)?;
            self.hashes.0.extend(hashes);
            self.tail.push(entry.clone());
            self.size += 1;
            if self.tail.len() as u64 == WIDTH {
                self.write_bundle(self.size / WIDTH - 1)?;
                self.tail.clear();
            }
        }
        if !self.tail.is_empty() && self.size > old {
            self.write_bundle(self.size / WIDTH)?;
        }
        for tile in Tile::new_tiles(HEIGHT, old, self.size) {
            let data = tile.read_data(&self.hashes).map_err(math)?;
            let path = tiles::path_of(&tile);
            self.storage.write_fresh(&path, &data).map_err(|source| LogError::Io { path, source })?;
        }
        self.storage.sync().map_err(|source| LogError::Io { path: "(sync)".into(), source })?;
        self.publish()
    }

    fn write_bundle(&self, index: u64) -> Result<(), LogError> {
        let mut bundle = Vec::new();
        for entry in &self.tail {
            tiles::push_entry(&mut bundle, entry);
        }
        let path = tiles::entry_bundle_path(index, self.tail.len() as u64);
        self.storage.write_fresh(&path, &bundle).map_err(|source| LogError::Io { path, source })
    }

    /// Signs and durably writes the checkpoint of the current tree.
    fn publish(&self) -> Result<(), LogError> {
        let root = tree_hash(self.size, &self.hashes).map_err(math)?;
        let signed = keys::sign_checkpoint(&self.skey, self.size, root)?;
        let io = |source| LogError::Io { path: CHECKPOINT.into(), source };
        self.storage.write(CHECKPOINT, &signed).map_err(io)?;
        self.storage.sync().map_err(io)
    }
}
