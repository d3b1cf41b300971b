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

/// The path of the signed checkpoint.
pub const CHECKPOINT: &str = "checkpoint";

/// A file of the published log, by what its path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogPath {
    /// The signed checkpoint.
    Checkpoint,
    /// Hash tile `index` of tile level `level`, `width` hashes wide (256: full).
    Tile {
        /// The tile level.
        level: u8,
        /// The tile's index in its level.
        index: u64,
        /// Hashes in it.
        width: u64,
    },
    /// Entry bundle `index`, `width` entries wide (256: full).
    Bundle {
        /// The bundle's index.
        index: u64,
        /// Entries in it.
        width: u64,
    },
}

/// What `path` names, when it names a file of the published log spelled
/// exactly as C2SP tlog-tiles spells it (so a request path can never reach any
/// other file). Written here because `tlog_tiles`' own parser panics on some
/// malformed paths.
pub fn parse_log_path(path: &str) -> Option<LogPath> {
    if path == CHECKPOINT {
        return Some(LogPath::Checkpoint);
    }
    let (kind, rest) = path.strip_prefix("tile/").and_then(|p| p.split_once('/'))?;
    let level = match kind {
        "entries" => None,
        _ => Some(kind.parse::<u8>().ok().filter(|level| *level < 64 && level.to_string() == kind)?),
    };
    let (index, width) = match rest.split_once(".p/") {
        Some((index, width)) => (index, width.parse::<u64>().ok().filter(|w| (1..WIDTH).contains(w))?),
        None => (rest, WIDTH),
    };
    let mut n = 0u64;
    for element in index.split('/') {
        let digits = element.strip_prefix('x').unwrap_or(element);
        let value = (digits.len() == 3).then(|| digits.parse::<u64>().ok()).flatten()?;
        n = n.checked_mul(1000)?.checked_add(value)?;
    }
    // Only the canonical spelling: no leading zeros, `x` exactly where C2SP puts it.
    if path != format!("tile/{kind}/{}{}", index_path(n), partial(width)) {
        return None;
    }
    Some(match level {
        Some(level) => LogPath::Tile { level, index: n, width },
        None => LogPath::Bundle { index: n, width },
    })
}

/// Whether `path` names a file of the published log (see [`parse_log_path`]).
pub fn is_log_path(path: &str) -> bool {
    parse_log_path(path).is_some()
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

    #[test]
    fn only_log_paths_are_published() {
        for good in [
            "checkpoint",
            "tile/0/000",
            "tile/0/x001/234",
            "tile/1/000.p/17",
            "tile/entries/000.p/3",
            "tile/entries/x002/001",
        ] {
            assert!(is_log_path(good), "{good}");
        }
        for bad in [
            "",
            "../rampart.toml",
            "tile/../../etc/passwd",
            "tile/0/../checkpoint",
            "tile/0/1",
            "tile/0/000.p/256",
            "tile/0/000.p/0",
            "tile/entries/000.p/x",
            ".checkpoint.tmp",
            "tile/0/.000.tmp",
            "checkpoint/",
            "tile/8/data/000",
            "tile/64/000",
            "tile/01/000",
            "tile/0/000.p/07",
            "tile/0/x000/001",
            "tile/0/0001",
            "tile/0/x999/x999/x999/x999/x999/x999/x999/000",
        ] {
            assert!(!is_log_path(bad), "{bad}");
        }
        assert_eq!(parse_log_path("tile/1/x001/234.p/7"), Some(LogPath::Tile { level: 1, index: 1234, width: 7 }));
        assert_eq!(parse_log_path("tile/entries/005"), Some(LogPath::Bundle { index: 5, width: 256 }));
        assert_eq!(parse_log_path("checkpoint"), Some(LogPath::Checkpoint));
    }
}
