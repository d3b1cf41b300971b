//! Reading the published log for its readers: a partial tile or entry bundle
//! is given out only while it is the open one of the signed checkpoint, and
//! only after it is checked against that checkpoint's root; an older partial
//! version, which no checkpoint needs any more, is not found. Full tiles and
//! bundles never change once written and are checked by [`crate::verify`].

use crate::edge::{Edge, StoredEdgeError};
use crate::keys;
use crate::storage::Storage;
use crate::tiles::{self, CHECKPOINT, LogPath, WIDTH};

/// How often a read of an open tile is tried again when a publication
/// replaced the checkpoint while it was being checked.
const ATTEMPTS: usize = 3;

/// Why a file of the log cannot be given out.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The storage could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The open tiles or bundle do not match the signed checkpoint.
    #[error("the audit log's open tiles do not match its checkpoint: {0}")]
    Mismatch(String),
}

fn read(storage: &dyn Storage, path: &str) -> Result<Option<Vec<u8>>, ServeError> {
    storage.read(path).map_err(|source| ServeError::Io { path: path.to_owned(), source })
}

/// The file at `path` (a tlog-tiles path, see [`tiles::parse_log_path`]) of
/// the log in `storage` whose verifier key is `vkey`, or `None` when a reader
/// is not to have it: there is none, it is not a log path, or it is a partial
/// version that is not the checkpoint's open one.
pub fn read_served(storage: &dyn Storage, vkey: &str, path: &str) -> Result<Option<Vec<u8>>, ServeError> {
    let (level, index, width) = match tiles::parse_log_path(path) {
        None => return Ok(None),
        Some(LogPath::Checkpoint) => return read(storage, path),
        Some(LogPath::Tile { width: WIDTH, .. } | LogPath::Bundle { width: WIDTH, .. }) => return read(storage, path),
        Some(LogPath::Tile { level, index, width }) => (Some(level), index, width),
        Some(LogPath::Bundle { index, width }) => (None, index, width),
    };
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match read_open(storage, vkey, path, level, index, width) {
            Err(ServeError::Mismatch(why)) => last = Some(why),
            other => return other,
        }
    }
    Err(ServeError::Mismatch(last.unwrap_or_default()))
}

/// One attempt of [`read_served`] for an open tile (`level`) or bundle (`None`).
fn read_open(
    storage: &dyn Storage,
    vkey: &str,
    path: &str,
    level: Option<u8>,
    index: u64,
    width: u64,
) -> Result<Option<Vec<u8>>, ServeError> {
    let Some(signed) = read(storage, CHECKPOINT)? else { return Ok(None) };
    let checkpoint = keys::open_checkpoint(vkey, &signed).map_err(|e| ServeError::Mismatch(e.to_string()))?;
    let size = checkpoint.size();
    let open_tiles = Edge::open_tiles(size);
    let Some(open) = open_tiles.get(usize::from(level.unwrap_or(0))) else { return Ok(None) };
    if open.level_index() != index || open.width() != width {
        return Ok(None);
    }
    let edge = Edge::read(storage, size, checkpoint.hash()).map_err(|e| match e {
        StoredEdgeError::Io { path, source } => ServeError::Io { path, source },
        StoredEdgeError::Damaged(why) => ServeError::Mismatch(why),
    })?;
    if let Some(level) = level {
        // Read and checked against the root with the others just now.
        return Ok(Some(edge.open()[usize::from(level)].data.clone()));
    }
    let Some(bundle) = read(storage, path)? else {
        return Err(ServeError::Mismatch(format!("{path} is missing")));
    };
    edge.check_open_bundle(path, &bundle, width).map_err(ServeError::Mismatch)?;
    Ok(Some(bundle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Log;
    use crate::memory::MemStorage;

    #[test]
    fn only_the_open_partials_of_the_checkpoint_are_served_and_only_as_checked() {
        let (skey, vkey) = keys::generate("serve.test").unwrap();
        let mut log = Log::open(MemStorage::new(), skey).unwrap();
        let entry = |n: u32| format!("entry {n}").into_bytes();
        log.append(&(0..200).map(entry).collect::<Vec<_>>()).unwrap();
        let storage = log.shared_storage();
        let served = |path: &str| read_served(&*storage, &vkey, path);
        assert!(served("tile/0/000.p/200").unwrap().is_some());
        assert!(served("tile/entries/000.p/200").unwrap().is_some());
        assert!(served("tile/0/000.p/199").unwrap().is_none(), "not the open width");
        log.append(&(200..300).map(entry).collect::<Vec<_>>()).unwrap();
        // Filled: its partial versions are gone and not served; the new open ones are.
        assert!(storage.read("tile/0/000.p/200").unwrap().is_none());
        assert!(served("tile/0/000.p/200").unwrap().is_none());
        assert!(served("tile/0/000").unwrap().is_some());
        assert!(served("tile/0/001.p/44").unwrap().is_some());
        assert!(served("tile/1/000.p/1").unwrap().is_some());
        assert!(served("tile/../checkpoint").unwrap().is_none());
        // An altered open tile or bundle is refused, not served.
        let mut tile = storage.read("tile/0/001.p/44").unwrap().unwrap();
        tile[0] ^= 1;
        storage.write("tile/0/001.p/44", &tile).unwrap();
        assert!(matches!(served("tile/1/000.p/1"), Err(ServeError::Mismatch(_))));
        tile[0] ^= 1;
        storage.write("tile/0/001.p/44", &tile).unwrap();
        let mut bundle = storage.read("tile/entries/001.p/44").unwrap().unwrap();
        let last = bundle.len() - 1;
        bundle[last] ^= 1;
        storage.write("tile/entries/001.p/44", &bundle).unwrap();
        assert!(matches!(served("tile/entries/001.p/44"), Err(ServeError::Mismatch(_))));
        assert!(served("tile/0/001.p/44").unwrap().is_some(), "the tiles still match");
    }
}
