//! The auditor's check of a whole log: recompute the tree from the entry
//! bundles, compare every stored tile (and every partial version of one still
//! stored), check the checkpoint's signature and root, and name the first
//! place that does not match. Proofs read the hash tiles they need, each
//! checked against the signed root.

use tlog_tiles::{HASH_SIZE, Hash, HashReader, TileHashReader, prove_record, prove_tree, tree_hash};

use crate::edge::{Edge, TileHashes};
use crate::keys;
use crate::log::{CHECKPOINT, StorageTiles};
use crate::storage::Storage;
use crate::tiles::{self, WIDTH};

/// The first thing found wrong, by place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The checkpoint is missing, malformed, for another log, or its signature fails.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A file the checkpoint needs is missing or unreadable.
    #[error("{path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// An entry bundle cannot be split into its entries.
    #[error("{path}: {reason}")]
    Bundle {
        /// The bundle.
        path: String,
        /// Why.
        reason: String,
    },
    /// An entry's hash differs from the one stored for it: the entry or the tile was altered.
    #[error("entry {index} (in {bundle}) does not match its hash in {tile}")]
    Entry {
        /// The entry's index.
        index: u64,
        /// Its bundle.
        bundle: String,
        /// The level-0 tile holding its hash.
        tile: String,
    },
    /// A hash tile differs from the hashes recomputed from the entries.
    #[error("{path}: hash {position} does not match the entries")]
    Tile {
        /// The tile.
        path: String,
        /// The first differing hash in it.
        position: usize,
    },
    /// The entries do not hash to the checkpoint's root.
    #[error("checkpoint: the entries do not hash to its root")]
    Root,
}

/// What a successful check covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Entries in the verified tree.
    pub size: u64,
    /// Hash tiles compared.
    pub tiles: usize,
    /// Older partial versions of tiles and bundles found and compared (a
    /// running log deletes them once the full tile is published).
    pub partials: usize,
    /// The checkpoint's origin.
    pub origin: String,
}

fn read(storage: &dyn Storage, path: &str) -> Result<Vec<u8>, VerifyError> {
    match storage.read(path) {
        Ok(Some(data)) => Ok(data),
        Ok(None) => Err(VerifyError::Unreadable { path: path.to_owned(), reason: "missing".into() }),
        Err(e) => Err(VerifyError::Unreadable { path: path.to_owned(), reason: e.to_string() }),
    }
}

/// The log's checkpoint, its signature checked with `vkey`.
fn verified_checkpoint(storage: &dyn Storage, vkey: &str) -> Result<tlog_tiles::Checkpoint, VerifyError> {
    let signed = read(storage, CHECKPOINT)?;
    keys::open_checkpoint(vkey, &signed).map_err(|e| VerifyError::Checkpoint(e.to_string()))
}

/// An inclusion proof of entry `index` in the tree of the verified checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct InclusionProof {
    /// The entry's index.
    pub index: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// The entry's leaf hash.
    pub leaf: Hash,
    /// The tree's root.
    pub root: Hash,
    /// The audit path, leaf to root.
    pub proof: Vec<Hash>,
}

/// Proves that entry `index` is in the tree of the log's checkpoint (verified with `vkey`).
pub fn prove_inclusion(storage: &dyn Storage, vkey: &str, index: u64) -> Result<InclusionProof, VerifyError> {
    let checkpoint = verified_checkpoint(storage, vkey)?;
    let size = checkpoint.size();
    if index >= size {
        return Err(VerifyError::Checkpoint(format!("the log has {size} entries; there is no entry {index}")));
    }
    let root = *checkpoint.hash();
    let tiles = StorageTiles(storage);
    let hashes = TileHashReader::new(size, root, &tiles);
    let proof = prove_record(size, index, &hashes).map_err(|_| VerifyError::Root)?;
    let leaf = hashes.read_hashes(&[tlog_tiles::stored_hash_index(0, index)]).map_err(|_| VerifyError::Root)?[0];
    crate::proof::verify_inclusion(index, size, leaf, &proof, root).map_err(|_| VerifyError::Root)?;
    Ok(InclusionProof { index, size, leaf, root, proof })
}

/// Proves that the log's tree at `old_size` is a prefix of the tree of its checkpoint;
/// returns (old root, new size, new root, proof).
pub fn prove_consistency(
    storage: &dyn Storage,
    vkey: &str,
    old_size: u64,
) -> Result<(Hash, u64, Hash, Vec<Hash>), VerifyError> {
    let checkpoint = verified_checkpoint(storage, vkey)?;
    let size = checkpoint.size();
    if old_size == 0 || old_size > size {
        return Err(VerifyError::Checkpoint(format!("--old must be between 1 and the log's size, {size}")));
    }
    let tiles = StorageTiles(storage);
    let hashes = TileHashReader::new(size, *checkpoint.hash(), &tiles);
    let old_root = tree_hash(old_size, &hashes).map_err(|_| VerifyError::Root)?;
    let proof = if old_size == size {
        Vec::new()
    } else {
        prove_tree(size, old_size, &hashes).map_err(|_| VerifyError::Root)?
    };
    let new_root = *checkpoint.hash();
    crate::proof::verify_consistency(old_size, size, old_root, new_root, &proof).map_err(|_| VerifyError::Root)?;
    Ok((old_root, size, new_root, proof))
}

/// Verifies the log in `storage` against the verifier key `vkey`, streaming
/// it bundle by bundle in memory that does not grow with the log: every entry
/// is hashed into the tree's right edge, and each hash tile is compared with
/// the stored one as it fills, with every partial version of it still stored
/// (a stale one too). `progress(done, total)` is called as entries are read.
pub fn verify(storage: &dyn Storage, vkey: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<Report, VerifyError> {
    let checkpoint = verified_checkpoint(storage, vkey)?;
    let size = checkpoint.size();
    let mut edge = Edge::new();
    let mut report = Report { size, tiles: 0, partials: 0, origin: checkpoint.origin().to_owned() };
    for (bundle, width) in tiles::bundles(size) {
        let path = tiles::entry_bundle_path(bundle, width);
        let data = read(storage, &path)?;
        let entries = tiles::split_bundle(&data, width as usize)
            .map_err(|e| VerifyError::Bundle { path: path.clone(), reason: e.to_string() })?;
        let mut ends = Vec::with_capacity(entries.len());
        let mut end = 0;
        for entry in entries {
            edge.push(tlog_tiles::record_hash(entry));
            end += 2 + entry.len();
            ends.push(end);
        }
        report.partials += check_partial_bundles(storage, bundle, width, &data, &ends)?;
        for tile in edge.take_filled() {
            check_tile(storage, &tile, &mut report)?;
        }
        progress(bundle * WIDTH + width, size);
    }
    for tile in edge.open().iter().filter(|tile| !tile.data.is_empty()) {
        check_tile(storage, tile, &mut report)?;
    }
    if edge.root().map_err(|_| VerifyError::Root)? != *checkpoint.hash() {
        return Err(VerifyError::Root);
    }
    Ok(report)
}

/// The widths of the partial versions of the tile or bundle at `path` (full width) that are stored.
fn partial_widths(storage: &dyn Storage, path: &str) -> Result<Vec<u64>, VerifyError> {
    storage.partials(path).map_err(|e| VerifyError::Unreadable { path: format!("{path}.p/"), reason: e.to_string() })
}

/// Compares the stored tile `tile` (full or partial) with its recomputed
/// hashes, and every narrower partial version of it with their prefix.
fn check_tile(storage: &dyn Storage, tile: &TileHashes, report: &mut Report) -> Result<(), VerifyError> {
    let path = tiles::path_of(&tile.tile());
    compare_tile(tile, &path, &read(storage, &path)?)?;
    report.tiles += 1;
    let width = (tile.data.len() / HASH_SIZE) as u64;
    let full = tiles::hash_tile_path(tile.level, tile.index, WIDTH);
    for stale in partial_widths(storage, &full)?.into_iter().filter(|&w| w < width) {
        let path = tiles::hash_tile_path(tile.level, tile.index, stale);
        compare_tile(tile, &path, &read(storage, &path)?)?;
        report.partials += 1;
    }
    Ok(())
}

/// Compares `stored`, the file at `path`, with the first hashes of `tile`.
fn compare_tile(tile: &TileHashes, path: &str, stored: &[u8]) -> Result<(), VerifyError> {
    let expected = &tile.data[..stored.len().min(tile.data.len())];
    if stored.len().is_multiple_of(HASH_SIZE) && stored == expected && !stored.is_empty() {
        return Ok(());
    }
    let position = stored
        .chunks(HASH_SIZE)
        .zip(expected.chunks(HASH_SIZE))
        .position(|(a, b)| a != b)
        .unwrap_or(stored.len().min(expected.len()) / HASH_SIZE);
    // The level-0 tile of the width recomputed: an entry, or its hash, was altered.
    if tile.level == 0 && stored.len() == tile.data.len() {
        let index = tile.index * WIDTH + position as u64;
        let bundle = tiles::entry_bundle_path(tile.index, (tile.data.len() / HASH_SIZE) as u64);
        return Err(VerifyError::Entry { index, bundle, tile: path.to_owned() });
    }
    Err(VerifyError::Tile { path: path.to_owned(), position })
}

/// Compares every narrower partial version of bundle `bundle` (read with
/// `width` entries, whose encodings end at `ends`) with its prefix; returns how many there were.
fn check_partial_bundles(
    storage: &dyn Storage,
    bundle: u64,
    width: u64,
    data: &[u8],
    ends: &[usize],
) -> Result<usize, VerifyError> {
    let full = tiles::entry_bundle_path(bundle, WIDTH);
    let mut checked = 0;
    for stale in partial_widths(storage, &full)?.into_iter().filter(|&w| w < width && w > 0) {
        let stale_path = tiles::entry_bundle_path(bundle, stale);
        let stored = read(storage, &stale_path)?;
        if stored != data[..ends[stale as usize - 1]] {
            return Err(VerifyError::Bundle {
                path: stale_path,
                reason: "differs from the entries it must begin".into(),
            });
        }
        checked += 1;
    }
    Ok(checked)
}

/// The size in the checkpoint, read without checking its signature (for
/// listing entries; `verify` is what establishes trust).
pub fn checkpoint_size(storage: &dyn Storage) -> Result<u64, VerifyError> {
    let signed = read(storage, CHECKPOINT)?;
    let note = signed_note::Note::from_bytes(&signed).map_err(|e| VerifyError::Checkpoint(e.to_string()))?;
    let checkpoint =
        tlog_tiles::Checkpoint::from_bytes(note.text()).map_err(|e| VerifyError::Checkpoint(e.to_string()))?;
    Ok(checkpoint.size())
}

/// Calls `each(index, entry)` for the entries from `from` up to `size`, in order.
pub fn for_each_entry(
    storage: &dyn Storage,
    size: u64,
    from: u64,
    each: &mut dyn FnMut(u64, &[u8]),
) -> Result<(), VerifyError> {
    for (bundle, width) in tiles::bundles(size).skip_while(|(bundle, _)| (bundle + 1) * WIDTH <= from) {
        let path = tiles::entry_bundle_path(bundle, width);
        let data = read(storage, &path)?;
        let entries = tiles::split_bundle(&data, width as usize)
            .map_err(|e| VerifyError::Bundle { path: path.clone(), reason: e.to_string() })?;
        for (offset, entry) in entries.into_iter().enumerate() {
            let index = bundle * WIDTH + offset as u64;
            if index >= from {
                each(index, entry);
            }
        }
    }
    Ok(())
}
