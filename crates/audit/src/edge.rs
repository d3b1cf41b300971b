//! The right edge of the tree, tile by tile: for each tile level, the hashes
//! of its rightmost tile that is not full yet, and the tiles that filled since
//! they were last taken. That is all the appender and the streaming verifier
//! hold, whatever the log's size: every hash a new entry, a tree hash or a new
//! tile needs lies in those tiles (a full tile's hash is the next hash of the
//! tile level above), so nothing older is read or kept.
//!
//! Written here rather than with `tlog_tiles`' `stored_hashes`, which needs a
//! reader of every stored hash; the arithmetic that remains (tree hashes,
//! tile paths) is still `tlog_tiles`'.

use tlog_tiles::{HASH_SIZE, Hash, HashReader, Tile};

use crate::storage::Storage;
use crate::tiles::{self, HEIGHT, WIDTH};

/// A tile's hashes: the bottom row of its tile level, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TileHashes {
    /// Its tile level.
    pub(crate) level: u8,
    /// Its index in its tile level.
    pub(crate) index: u64,
    /// The hashes, 32 bytes each: its tile data.
    pub(crate) data: Vec<u8>,
}

impl TileHashes {
    fn width(&self) -> u64 {
        (self.data.len() / HASH_SIZE) as u64
    }

    /// The `tlog_tiles` tile of this tile's width.
    pub(crate) fn tile(&self) -> Tile {
        // A width is at most 256, so it fits.
        Tile::new(HEIGHT, self.level, self.index, self.width() as u32, false)
    }
}

/// Why the edge stored for a checkpoint cannot be read.
#[derive(Debug)]
pub(crate) enum StoredEdgeError {
    /// A file could not be read.
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A file is missing or does not match the checkpoint.
    Damaged(String),
}

/// Where the open tile of a level is, and how many hashes it holds (possibly
/// none, which `tlog_tiles`' `Tile` cannot describe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenTile {
    level: u8,
    index: u64,
    width: u64,
}

impl OpenTile {
    /// Its tile level.
    pub(crate) fn level(&self) -> u8 {
        self.level
    }

    /// Its index in its level.
    pub(crate) fn level_index(&self) -> u64 {
        self.index
    }

    /// Hashes in it (0 to 255).
    pub(crate) fn width(&self) -> u64 {
        self.width
    }

    /// Its tlog-tiles path (meaningful when it holds a hash).
    pub(crate) fn path(&self) -> String {
        crate::tiles::hash_tile_path(self.level, self.index, self.width)
    }
}

/// The tree's right edge (see the module's documentation).
#[derive(Debug, Default)]
pub(crate) struct Edge {
    /// Entries in the tree.
    size: u64,
    /// The rightmost tile of each tile level that is not full (possibly empty).
    open: Vec<TileHashes>,
    /// Tiles that filled since [`Edge::take_filled`] was last called, in the order they filled.
    filled: Vec<TileHashes>,
}

impl Edge {
    /// The empty tree.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The edge of the tree of `size` entries whose open tiles hold `open`:
    /// for each tile level `L` from 0 while `size >> 8L > 0`, the hashes of
    /// tile `(size >> 8L) / 256` (as many as `(size >> 8L) % 256`). The caller
    /// checks the result's [`Edge::root`] against a signed checkpoint.
    pub(crate) fn restore(size: u64, open: Vec<Vec<u8>>) -> Result<Self, String> {
        let expected = Self::open_tiles(size);
        if open.len() != expected.len() {
            return Err(format!("{} open tiles where {} were expected", open.len(), expected.len()));
        }
        let mut tiles = Vec::with_capacity(open.len());
        for (tile, data) in expected.into_iter().zip(open) {
            if data.len() as u64 != tile.width() * HASH_SIZE as u64 {
                return Err(format!(
                    "tile level {} holds {} bytes, not {}",
                    tile.level(),
                    data.len(),
                    tile.width() * 32
                ));
            }
            tiles.push(TileHashes { level: tile.level(), index: tile.level_index(), data });
        }
        Ok(Self { size, open: tiles, filled: Vec::new() })
    }

    /// The edge of the tree of `size` entries whose root is `root`, read from
    /// `storage` (the open tile of each level) and checked against that root.
    pub(crate) fn read<S: Storage + ?Sized>(storage: &S, size: u64, root: &Hash) -> Result<Self, StoredEdgeError> {
        let mut open = Vec::new();
        for tile in Self::open_tiles(size) {
            if tile.width() == 0 {
                open.push(Vec::new());
                continue;
            }
            let path = tile.path();
            match storage.read(&path) {
                Ok(Some(data)) => open.push(data),
                Ok(None) => return Err(StoredEdgeError::Damaged(format!("{path} is missing"))),
                Err(source) => return Err(StoredEdgeError::Io { path, source }),
            }
        }
        let edge = Self::restore(size, open).map_err(StoredEdgeError::Damaged)?;
        if edge.root().ok().as_ref() != Some(root) {
            return Err(StoredEdgeError::Damaged("the open tiles do not hash to the checkpoint's root".into()));
        }
        Ok(edge)
    }

    /// The entries of `bundle`, the open entry bundle at `path` (`width`
    /// entries), each checked against its leaf hash in the open level-0 tile.
    pub(crate) fn check_open_bundle<'b>(
        &self,
        path: &str,
        bundle: &'b [u8],
        width: u64,
    ) -> Result<Vec<&'b [u8]>, String> {
        let entries = tiles::split_bundle(bundle, width as usize).map_err(|e| format!("{path}: {e}"))?;
        let first = self.open.first().map_or(0, |tile| tile.index * WIDTH);
        for (index, entry) in (first..).zip(&entries) {
            if self.recent_leaf(index) != Some(tlog_tiles::record_hash(entry)) {
                return Err(format!("{path}: entry {index} does not match its hash"));
            }
        }
        Ok(entries)
    }

    /// The open tiles of a tree of `size` entries (width 0 where a level has just filled).
    pub(crate) fn open_tiles(size: u64) -> Vec<OpenTile> {
        let mut tiles = Vec::new();
        let mut level = 0u8;
        while level < 8 && size >> (u32::from(level) * u32::from(HEIGHT)) > 0 {
            let nodes = size >> (u32::from(level) * u32::from(HEIGHT));
            tiles.push(OpenTile { level, index: nodes / WIDTH, width: nodes % WIDTH });
            level += 1;
        }
        tiles
    }

    /// Appends an entry by its leaf hash.
    pub(crate) fn push(&mut self, leaf: Hash) {
        self.size += 1;
        let mut hash = leaf;
        let mut level = 0u8;
        loop {
            if self.open.len() <= usize::from(level) {
                self.open.push(TileHashes { level, index: 0, data: Vec::with_capacity(WIDTH as usize * HASH_SIZE) });
            }
            let tile = &mut self.open[usize::from(level)];
            tile.data.extend_from_slice(&hash.0);
            if tile.width() < WIDTH {
                return;
            }
            // Full: its hash is the next of the level above, and an empty tile opens here.
            hash = Tile::subtree_hash(&tile.data);
            let next =
                TileHashes { level, index: tile.index + 1, data: Vec::with_capacity(WIDTH as usize * HASH_SIZE) };
            self.filled.push(std::mem::replace(tile, next));
            level += 1;
        }
    }

    /// The tiles that filled since the last call, oldest first.
    pub(crate) fn take_filled(&mut self) -> Vec<TileHashes> {
        std::mem::take(&mut self.filled)
    }

    /// Drops the filled tiles that the tree of `size` entries holds whole (published with it).
    pub(crate) fn forget_filled(&mut self, size: u64) {
        self.filled.retain(|tile| {
            let end = (tile.index + 1).checked_shl(u32::from(HEIGHT) * (u32::from(tile.level) + 1));
            end.is_none_or(|end| end > size)
        });
    }

    /// The open tiles, level 0 first (empty ones included).
    pub(crate) fn open(&self) -> &[TileHashes] {
        &self.open
    }

    /// The root hash of the tree. Every hash it needs is in an open tile (see
    /// the module's documentation), so an error is a fault of this module.
    pub(crate) fn root(&self) -> Result<Hash, tlog_tiles::Error> {
        tlog_tiles::tree_hash(self.size, self)
    }

    /// The leaf hash of entry `index`, if it is in the open level-0 tile.
    pub(crate) fn recent_leaf(&self, index: u64) -> Option<Hash> {
        let tile = self.open.first()?;
        let offset = index.checked_sub(tile.index * WIDTH)?;
        let at = usize::try_from(offset).ok()? * HASH_SIZE;
        tile.data.get(at..at + HASH_SIZE).map(|h| Hash(h.try_into().unwrap_or([0; HASH_SIZE])))
    }
}

impl HashReader for Edge {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&index| {
                let wanted = Tile::from_index(HEIGHT, index);
                let tiles = self.open.iter().chain(&self.filled);
                let tile = tiles
                    .filter(|t| t.level == wanted.level() && t.index == wanted.level_index())
                    .find(|t| t.width() >= u64::from(wanted.width()))
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)?;
                tile.tile().hash_at_index(&tile.data, index)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use tlog_tiles::{record_hash, stored_hashes, tree_hash};

    use super::*;

    /// Every stored hash, as `tlog_tiles` keeps them: the reference.
    struct AllHashes(Vec<Hash>);

    impl HashReader for AllHashes {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
            indexes
                .iter()
                .map(|&i| self.0.get(i as usize).copied().ok_or(tlog_tiles::Error::IndexesNotInTree))
                .collect()
        }
    }

    #[test]
    fn the_edge_has_every_root_and_tile_of_the_full_tree() {
        let mut all = AllHashes(Vec::new());
        let mut edge = Edge::new();
        let mut published = 0u64;
        // Past 65,536 entries: the third tile level fills its first hash.
        for n in 0..66_000u64 {
            let entry = n.to_be_bytes();
            let stored = stored_hashes(n, &entry, &all).unwrap();
            all.0.extend(stored);
            edge.push(record_hash(&entry));
            let size = n + 1;
            if size % 97 == 0 || size.is_power_of_two() || size % 256 == 0 || size < 600 {
                assert_eq!(edge.root().unwrap(), tree_hash(size, &all).unwrap(), "root at {size}");
                // Every tile a publication from the last one writes comes from the edge, unchanged.
                for tile in Tile::new_tiles(HEIGHT, published, size) {
                    assert_eq!(tile.read_data(&edge).unwrap(), tile.read_data(&all).unwrap(), "{size}: {tile:?}");
                }
                edge.take_filled();
                published = size;
            }
        }
        let open: Vec<Vec<u8>> = edge.open().iter().map(|t| t.data.clone()).collect();
        let restored = Edge::restore(66_000, open).unwrap();
        assert_eq!(restored.root().unwrap(), edge.root().unwrap());
        assert_eq!(restored.recent_leaf(65_999), Some(all.0[tlog_tiles::stored_hash_index(0, 65_999) as usize]));
        assert_eq!(restored.recent_leaf(65_000), None, "only the open level-0 tile is kept");
        assert!(Edge::restore(66_000, vec![Vec::new()]).is_err());
        // At a tile boundary a level's open tile is empty.
        let widths = |size: u64| Edge::open_tiles(size).iter().map(OpenTile::width).collect::<Vec<_>>();
        assert_eq!(widths(0), Vec::<u64>::new());
        assert_eq!(widths(256), [0, 1]);
        assert_eq!(widths(65_536), [0, 0, 1]);
    }
}
