//! Journal files prepared ahead: written with zeros and flushed before the
//! journal moves into one, so that a commit's flush carries data only.
//!
//! Appending past a file's end changes its length, so flushing it writes the
//! file's inode besides the data: a second write for every commit and, on a
//! journalling filesystem (ext4's default), a commit of the filesystem's own
//! journal, which every file shares, so a commit would also wait for whatever
//! the publisher had just created or renamed. Writing into blocks that already
//! hold flushed zeros changes no metadata, so the flush is the data alone (see
//! docs/benchmarks.md). A thread prepares the next file
//! while the current journal fills; each is twice the size of the last, from
//! 1 MiB up to 64 MiB, so a log that sees little traffic holds little.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// The name of the file being prepared, in the log directory.
pub const SPARE: &str = ".journal.spare";
/// The size of the first prepared file.
const FIRST_CAPACITY: u64 = 1 << 20;
/// The size no prepared file exceeds.
const MAX_CAPACITY: u64 = 64 << 20;
/// Zeros are written and flushed this much at a time, so the disk never holds
/// a long queue of them in front of a commit's flush.
const STEP: usize = 1 << 20;

/// A file of zeros, flushed, ready to become the journal.
pub struct Spare {
    /// The open file, named [`SPARE`] in the log directory.
    pub file: File,
    /// Its length: appends below it change no metadata.
    pub capacity: u64,
}

#[derive(Default)]
struct State {
    ready: Option<Spare>,
    preparing: bool,
}

/// The spare journal file of one log directory, prepared on a thread of its own.
#[derive(Default)]
pub struct Spares {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The capacity of the file to prepare after one of `capacity` (0: a journal
/// not in a prepared file) was taken into use.
pub fn next_capacity(capacity: u64) -> u64 {
    capacity.saturating_mul(2).clamp(FIRST_CAPACITY, MAX_CAPACITY)
}

impl Spares {
    /// The prepared file, if one is ready; the caller renames it from [`SPARE`].
    pub fn take(&self) -> Option<Spare> {
        lock(&self.state).ready.take()
    }

    /// Whether a prepared file is ready.
    pub fn is_ready(&self) -> bool {
        lock(&self.state).ready.is_some()
    }

    /// Starts preparing a file of at least `capacity` bytes named [`SPARE`] in
    /// `dir`: `reuse`, the retired journal already under that name, zeroed
    /// where it stands (its blocks are kept, so the filesystem frees and
    /// discards nothing), or a new file. Does nothing while one is ready or
    /// being prepared. A failure leaves none ready: the journal then goes on
    /// in a plain file, as on a filesystem without this.
    pub fn prepare(&self, dir: &Path, capacity: u64, reuse: Option<File>) {
        let mut state = lock(&self.state);
        if state.preparing || state.ready.is_some() {
            return;
        }
        state.preparing = true;
        let shared = Arc::clone(&self.state);
        let path = dir.join(SPARE);
        let spawned = std::thread::Builder::new().name("audit-journal-spare".into()).spawn(move || {
            let spare = match reuse {
                Some(file) => write_zeros(file, capacity, &shared),
                None => File::create(&path).and_then(|file| write_zeros(file, capacity, &shared)),
            };
            let mut state = lock(&shared);
            state.preparing = false;
            state.ready = spare.ok();
        });
        if spawned.is_err() {
            state.preparing = false;
        }
    }
}

/// Writes zeros over all of `file`, and on to `capacity`, flushing each step;
/// gives up when the storage that wanted it is gone.
fn write_zeros(file: File, capacity: u64, shared: &Arc<Mutex<State>>) -> io::Result<Spare> {
    let capacity = capacity.max(file.metadata()?.len());
    let zeros = vec![0u8; STEP];
    let mut written = 0;
    while written < capacity {
        if Arc::strong_count(shared) == 1 {
            return Err(io::Error::other("the log was closed"));
        }
        let step = STEP.min(usize::try_from(capacity - written).unwrap_or(STEP));
        file.write_all_at(&zeros[..step], written)?;
        file.sync_data()?;
        written += step as u64;
    }
    Ok(Spare { file, capacity })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::wait_until;

    fn wait_ready(spares: &Spares) {
        wait_until("no spare journal was prepared", std::time::Duration::from_secs(30), || spares.is_ready());
    }

    #[test]
    fn a_spare_is_a_flushed_file_of_zeros_of_the_asked_size_and_is_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Spares::default();
        spares.prepare(dir.path(), 3 << 19, None);
        // A second request while one is on its way changes nothing.
        spares.prepare(dir.path(), 8 << 20, None);
        wait_ready(&spares);
        let data = std::fs::read(dir.path().join(SPARE)).unwrap();
        assert_eq!(data.len(), 3 << 19);
        assert!(data.iter().all(|&b| b == 0));
        let spare = spares.take().unwrap();
        assert_eq!(spare.capacity, 3 << 19);
        assert!(spares.take().is_none() && !spares.is_ready());
    }

    #[test]
    fn capacities_double_from_one_mebibyte_to_sixty_four() {
        assert_eq!(next_capacity(0), 1 << 20);
        assert_eq!(next_capacity(1 << 20), 2 << 20);
        assert_eq!(next_capacity(48 << 20), 64 << 20);
        assert_eq!(next_capacity(64 << 20), 64 << 20);
    }

    #[test]
    fn a_spare_that_cannot_be_written_leaves_none_ready() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Spares::default();
        spares.prepare(&dir.path().join("missing"), 1 << 20, None);
        wait_until("the failed spare is still being prepared", std::time::Duration::from_secs(30), || {
            !lock(&spares.state).preparing
        });
        assert!(!spares.is_ready());
        // It is tried again when asked.
        spares.prepare(dir.path(), 1 << 20, None);
        wait_ready(&spares);
    }

    #[test]
    fn a_reused_file_is_zeroed_where_it_stands_and_keeps_its_length_when_longer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SPARE);
        std::fs::write(&path, vec![0xa5u8; (5 << 19) + 7]).unwrap();
        let inode = |path: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap());
        let before = inode(&path);
        let spares = Spares::default();
        spares.prepare(dir.path(), 1 << 20, Some(std::fs::OpenOptions::new().write(true).open(&path).unwrap()));
        wait_ready(&spares);
        assert_eq!(spares.take().unwrap().capacity, (5 << 19) + 7);
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len(), (5 << 19) + 7);
        assert!(data.iter().all(|&b| b == 0), "every old byte is zeroed");
        assert_eq!(inode(&path), before, "the same file, not a new one");
    }
}
