//! The C2SP tlog-tiles layout: tile paths and entry bundles.
//!
//! Tiles have height 8 (256 hashes or entries). `tlog_tiles` computes which
//! tiles a tree has and their hashes; its paths are Go sumdb's
//! (`tile/8/0/...`), so the C2SP paths (`tile/0/...`, `tile/entries/...`) are
//! made here.

use tlog_tiles::Tile;

/// Tile height of the C2SP layout.
pub const HEIGHT: u8 = 8;
/// Entries (or hashes) in a full tile.
pub const WIDTH: u64 = 1 << HEIGHT;

/// `N` as C2SP path elements: three digits each, all but the last prefixed by `x`.
fn index_path(mut n: u64) -> String {
    let mut path = format!("{:03}", n % 1000);
    while n >= 1000 {
        n /= 1000;
        path = format!("x{:03}/{path}", n % 1000);
    }
    path
}

fn partial(width: u64) -> String {
    if width == WIDTH { String::new() } else { format!(".p/{width}") }
}

/// `tile/<L>/<N>[.p/<W>]`.
pub fn hash_tile_path(level: u8, index: u64, width: u64) -> String {
    format!("tile/{level}/{}{}", index_path(index), partial(width))
}

/// `tile/entries/<N>[.p/<W>]`.
pub fn entry_bundle_path(index: u64, width: u64) -> String {
    format!("tile/entries/{}{}", index_path(index), partial(width))
}

/// The path of a `tlog_tiles` hash tile in the C2SP layout.
pub fn path_of(tile: &Tile) -> String {
    hash_tile_path(tile.level(), tile.level_index(), u64::from(tile.width()))
}

/// The entry bundles of a tree of `size` entries: (index, width) of each.
pub fn bundles(size: u64) -> impl Iterator<Item = (u64, u64)> {
    let full = size / WIDTH;
    let rest = size % WIDTH;
    (0..full).map(|n| (n, WIDTH)).chain((rest > 0).then_some((full, rest)))
}

/// Why an entry bundle cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// An entry's length runs past the end.
    #[error("entry {0} is cut short")]
    Truncated(usize),
    /// More or fewer entries than the tile's width.
    #[error("{found} entries where {expected} were expected")]
    Count {
        /// Entries found.
        found: usize,
        /// Entries expected.
        expected: usize,
    },
}

/// Appends an entry to a bundle: its length as a big-endian `u16`, then its bytes.
/// The caller has checked that the entry fits in 65,535 bytes.
pub fn push_entry(bundle: &mut Vec<u8>, entry: &[u8]) {
    let length = u16::try_from(entry.len()).unwrap_or(u16::MAX);
    bundle.extend_from_slice(&length.to_be_bytes());
    bundle.extend_from_slice(&entry[..usize::from(length)]);
}

/// The entries of a bundle, which must hold exactly `expected` of them.
pub fn split_bundle(bundle: &[u8], expected: usize) -> Result<Vec<&[u8]>, BundleError> {
    let mut entries = Vec::with_capacity(expected);
    let mut rest = bundle;
    while !rest.is_empty() {
        let [a, b, tail @ ..] = rest else { return Err(BundleError::Truncated(entries.len())) };
        let length = usize::from(u16::from_be_bytes([*a, *b]));
        if tail.len() < length {
            return Err(BundleError::Truncated(entries.len()));
        }
        entries.push(&tail[..length]);
        rest = &tail[length..];
    }
    if entries.len() != expected {
        return Err(BundleError::Count { found: entries.len(), expected });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_c2sp() {
        assert_eq!(hash_tile_path(0, 0, 256), "tile/0/000");
        assert_eq!(hash_tile_path(1, 1_234_067, 8), "tile/1/x001/x234/067.p/8");
        assert_eq!(entry_bundle_path(1000, 256), "tile/entries/x001/000");
        assert_eq!(entry_bundle_path(5, 3), "tile/entries/005.p/3");
        assert_eq!(bundles(513).collect::<Vec<_>>(), [(0, 256), (1, 256), (2, 1)]);
        assert_eq!(bundles(512).count(), 2);
    }

    #[test]
    fn bundles_round_trip_and_refuse_damage() {
        let mut bundle = Vec::new();
        for entry in [&b"one"[..], b"", b"three"] {
            push_entry(&mut bundle, entry);
        }
        assert_eq!(split_bundle(&bundle, 3).unwrap(), [&b"one"[..], b"", b"three"]);
        assert_eq!(split_bundle(&bundle, 2), Err(BundleError::Count { found: 3, expected: 2 }));
        assert_eq!(split_bundle(&bundle[..bundle.len() - 1], 3), Err(BundleError::Truncated(2)));
    }
}
