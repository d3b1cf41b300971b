//! Where the log's files live: a small interface with a plain filesystem
//! driver, so an object store can be added without touching the log.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::spare::{self, SPARE, Spares};

/// Storage for the log's files, addressed by their tlog-tiles paths.
pub trait Storage: Send + Sync {
    /// The file at `path`, or `None` when there is none.
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>>;
    /// Writes a whole file. A reader never sees it half-written, and after
    /// [`Storage::sync`] returns it survives a crash.
    fn write(&self, path: &str, data: &[u8]) -> io::Result<()>;
    /// Writes a whole file that nothing reads before the next [`Storage::sync`]:
    /// a tile or entry bundle beyond the signed checkpoint. Unlike
    /// [`Storage::write`] it may be torn by a crash before that sync, which lets
    /// a driver flush all of a batch's files together.
    fn write_fresh(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.write(path, data)
    }
    /// Makes every write so far durable.
    fn sync(&self) -> io::Result<()>;
    /// Deletes every partial version (`PATH.p/W`) of the full tile or bundle at
    /// `path`; none is not an error. Need not be durable: a deletion a crash
    /// undoes is made again when the log opens.
    fn remove_partials(&self, path: &str) -> io::Result<()>;
    /// The widths of the partial versions (`PATH.p/W`) of the full tile or
    /// bundle at `path` that are stored, in no order.
    fn partials(&self, path: &str) -> io::Result<Vec<u64>>;
    /// The write-ahead journal (see the `journal` module), or `None` when there is none.
    fn read_journal(&self) -> io::Result<Option<Vec<u8>>>;
    /// Replaces the journal with `records`, atomically and durably, and
    /// makes it the file [`Storage::append_journal`] appends to.
    fn replace_journal(&self, records: &[u8]) -> io::Result<()>;
    /// Appends `record` to the journal; it is durable when this returns. After
    /// an error the journal must be replaced before the next append.
    fn append_journal(&self, record: &[u8]) -> io::Result<()>;
    /// Whether replacing the journal now would make appends cheaper (the
    /// driver has a file prepared for it). The log asks after each publication.
    fn journal_wants_replacing(&self) -> bool {
        false
    }
}

/// The journal's name in the log directory; not a tlog-tiles path, so never published.
pub const JOURNAL: &str = "journal";

/// The log in a directory of the local filesystem.
pub struct FsStorage {
    root: PathBuf,
    /// Directories with renames not yet made durable.
    dirty: Mutex<Vec<PathBuf>>,
    /// Files from [`Storage::write_fresh`] whose data is not yet durable.
    unsynced: Mutex<Vec<PathBuf>>,
    /// The journal open for appending.
    journal: Mutex<Option<OpenJournal>>,
    /// The next journal file, prepared ahead.
    spares: Spares,
}

/// The journal open for appending.
struct OpenJournal {
    file: File,
    /// Where its records end.
    end: u64,
    /// How far the file was prepared with zeros (0 for a plain file): appends below this change no metadata.
    prepared: u64,
}

impl FsStorage {
    /// Storage in `root`, created if missing.
    pub fn new(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        Ok(Self {
            root: root.to_path_buf(),
            dirty: Mutex::new(Vec::new()),
            unsynced: Mutex::new(Vec::new()),
            journal: Mutex::new(None),
            spares: Spares::default(),
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Storage for FsStorage {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.root.join(path)) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        // Written beside the target, made durable, then renamed over it: never a torn file.
        self.put(path, data, true).map(drop)
    }

    fn write_fresh(&self, path: &str, data: &[u8]) -> io::Result<()> {
        // Renamed into place now, flushed by the next sync together with the rest of the batch.
        let target = self.put(path, data, false)?;
        self.unsynced.lock().unwrap_or_else(|e| e.into_inner()).push(target);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let files = std::mem::take(&mut *self.unsynced.lock().unwrap_or_else(|e| e.into_inner()));
        let dirs = self.dirty.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // Every flush at once: the filesystem commits them together instead of one after another.
        let result = std::thread::scope(|scope| {
            let flushes: Vec<_> = files
                .iter()
                .map(|file| (file, false))
                .chain(dirs.iter().map(|dir| (dir, true)))
                .map(|(path, is_dir)| {
                    scope.spawn(
                        move || if is_dir { File::open(path)?.sync_all() } else { File::open(path)?.sync_data() },
                    )
                })
                .collect();
            flushes
                .into_iter()
                .try_for_each(|flush| flush.join().unwrap_or_else(|_| Err(io::Error::other("a flush panicked"))))
        });
        match result {
            Ok(()) => {
                self.dirty.lock().unwrap_or_else(|e| e.into_inner()).retain(|dir| !dirs.contains(dir));
                Ok(())
            }
            Err(err) => {
                // Tried again by the next sync.
                self.unsynced.lock().unwrap_or_else(|e| e.into_inner()).extend(files);
                Err(err)
            }
        }
    }

    fn remove_partials(&self, path: &str) -> io::Result<()> {
        match fs::remove_dir_all(self.root.join(format!("{path}.p"))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn partials(&self, path: &str) -> io::Result<Vec<u64>> {
        let entries = match fs::read_dir(self.root.join(format!("{path}.p"))) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut widths = Vec::new();
        for entry in entries {
            // Temporaries of an interrupted write (`.W.tmp`) are not versions of the tile.
            if let Some(width) = entry?.file_name().to_str().and_then(|name| name.parse().ok()) {
                widths.push(width);
            }
        }
        Ok(widths)
    }

    fn read_journal(&self) -> io::Result<Option<Vec<u8>>> {
        self.read(JOURNAL)
    }

    fn replace_journal(&self, records: &[u8]) -> io::Result<()> {
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        // Until this succeeds nothing may be appended: the old file may already be replaced.
        let retired = journal.take();
        let journal_path = self.root.join(JOURNAL);
        let (file, prepared, reuse) = match self.spares.take() {
            Some(spare) => {
                spare.file.write_all_at(records, 0)?;
                spare.file.sync_data()?;
                let spare_path = self.root.join(SPARE);
                // The two names change places at once: the retired journal becomes the next spare,
                // zeroed where it stands, so its blocks are neither freed nor discarded (on this
                // disk, freeing 64 MiB stalled every flush for up to 14 ms; see docs/benchmarks.md).
                let exchanged = retired.is_some()
                    && rustix::fs::renameat_with(
                        rustix::fs::CWD,
                        &spare_path,
                        rustix::fs::CWD,
                        &journal_path,
                        rustix::fs::RenameFlags::EXCHANGE,
                    )
                    .is_ok();
                if exchanged {
                    (spare.file, spare.capacity, retired.map(|old| old.file))
                } else {
                    // No open journal to exchange with, or a filesystem that cannot: renamed over it.
                    fs::rename(&spare_path, &journal_path)?;
                    retired.into_iter().for_each(|old| close_elsewhere(old.file));
                    (spare.file, spare.capacity, None)
                }
            }
            None => {
                let temporary = self.root.join(format!(".{JOURNAL}.tmp"));
                let mut file = File::create(&temporary)?;
                file.write_all(records)?;
                file.sync_data()?;
                fs::rename(&temporary, &journal_path)?;
                retired.into_iter().for_each(|old| close_elsewhere(old.file));
                (file, 0, None)
            }
        };
        File::open(&self.root)?.sync_all()?;
        *journal = Some(OpenJournal { file, end: records.len() as u64, prepared });
        self.spares.prepare(&self.root, spare::next_capacity(prepared), reuse);
        Ok(())
    }

    fn append_journal(&self, record: &[u8]) -> io::Result<()> {
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        let open = journal.as_mut().ok_or_else(|| io::Error::other("the audit journal is not open"))?;
        let written = open.file.write_all_at(record, open.end).and_then(|()| open.file.sync_data());
        match written {
            Ok(()) => open.end += record.len() as u64,
            // After a failed flush the kernel may have dropped the pages: never append to this file again.
            Err(_) => *journal = None,
        }
        written
    }

    fn journal_wants_replacing(&self) -> bool {
        // Three quarters full, or a plain file: a larger prepared one is worth moving to.
        let journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        journal.as_ref().is_some_and(|open| open.end.saturating_mul(4) >= open.prepared.saturating_mul(3))
            && self.spares.is_ready()
    }
}

/// Closes a replaced journal on a thread of its own. The filesystem frees an
/// unlinked file's blocks when its last descriptor closes, and for a journal
/// near its 64 MiB limit that took 15–18 ms on ext4 here: time the writer,
/// and every commit waiting on it, would otherwise spend.
fn close_elsewhere(old: File) {
    // If no thread can be started, the closure and the file are dropped here instead.
    let _ = std::thread::Builder::new().name("audit-journal-close".into()).spawn(move || drop(old));
}

impl FsStorage {
    /// Writes `data` beside `path` and renames it into place (syncing it first
    /// when `durable`); notes the directories whose entries changed.
    fn put(&self, path: &str, data: &[u8], durable: bool) -> io::Result<PathBuf> {
        let target = self.root.join(path);
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        let mut created = Vec::new();
        let mut missing = dir.as_path();
        while !missing.exists() && missing != self.root {
            created.push(missing.parent().unwrap_or(&self.root).to_path_buf());
            missing = missing.parent().unwrap_or(&self.root);
        }
        fs::create_dir_all(&dir)?;
        let temporary =
            dir.join(format!(".{}.tmp", target.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
        let mut file = File::create(&temporary)?;
        file.write_all(data)?;
        if durable {
            file.sync_data()?;
        }
        fs::rename(&temporary, &target)?;
        // The new file's name, and any new directory's, must reach the disk too.
        let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        for dir in created.into_iter().chain([dir]) {
            if !dirty.contains(&dir) {
                dirty.push(dir);
            }
        }
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_support::wait_until;

    #[test]
    fn fresh_and_durable_writes_land_whole_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path()).unwrap();
        storage.write_fresh("tile/entries/000.p/1", b"one").unwrap();
        storage.write_fresh("tile/0/000.p/1", b"hash").unwrap();
        storage.sync().unwrap();
        storage.write("checkpoint", b"head").unwrap();
        storage.sync().unwrap();
        assert_eq!(storage.read("tile/entries/000.p/1").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(storage.read("tile/0/000.p/1").unwrap().as_deref(), Some(&b"hash"[..]));
        assert_eq!(storage.read("checkpoint").unwrap().as_deref(), Some(&b"head"[..]));
        assert_eq!(storage.read("tile/1/000").unwrap(), None);
        assert!(storage.unsynced.lock().unwrap().is_empty() && storage.dirty.lock().unwrap().is_empty());
        let mut dirs = vec![dir.path().to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                assert!(!path.to_string_lossy().ends_with(".tmp"), "{}", path.display());
                if path.is_dir() {
                    dirs.push(path);
                }
            }
        }
    }

    /// A journal's bytes up to the zeros of a prepared file.
    fn records_of(journal: &[u8]) -> &[u8] {
        &journal[..journal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)]
    }

    #[test]
    fn the_journal_moves_into_a_prepared_file_and_appends_there_leave_its_length_alone() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path()).unwrap();
        storage.replace_journal(b"plain").unwrap();
        // A plain journal wants replacing as soon as a prepared file is ready.
        wait_until("no prepared journal file", Duration::from_secs(30), || storage.journal_wants_replacing());
        storage.replace_journal(b"base").unwrap();
        let length = fs::metadata(dir.path().join(JOURNAL)).unwrap().len();
        assert_eq!(length, 1 << 20, "the first prepared file holds 1 MiB");
        assert!(!storage.journal_wants_replacing(), "an empty prepared journal is not replaced");
        let record = vec![7u8; 64 << 10];
        for _ in 0..11 {
            storage.append_journal(&record).unwrap();
        }
        assert_eq!(fs::metadata(dir.path().join(JOURNAL)).unwrap().len(), length);
        let journal = storage.read_journal().unwrap().unwrap();
        assert_eq!(&journal[..4], b"base");
        assert_eq!(records_of(&journal).len(), 4 + 11 * record.len());
        // Three quarters full: the next, twice as large, is wanted once it is ready.
        storage.append_journal(&record).unwrap();
        wait_until("no second prepared file", Duration::from_secs(30), || storage.journal_wants_replacing());
        let inode = |name: &str| std::os::unix::fs::MetadataExt::ino(&fs::metadata(dir.path().join(name)).unwrap());
        let retired = inode(JOURNAL);
        storage.replace_journal(b"next").unwrap();
        assert_eq!(fs::metadata(dir.path().join(JOURNAL)).unwrap().len(), 2 << 20);
        // The retired journal is kept as the next spare, its records zeroed where they stood.
        assert_eq!(inode(SPARE), retired);
        wait_until("the retired journal was not zeroed", Duration::from_secs(30), || storage.spares.is_ready());
        assert!(fs::read(dir.path().join(SPARE)).unwrap().iter().all(|&b| b == 0));
        // Past its prepared length a journal still takes appends.
        let big = vec![9u8; 3 << 20];
        storage.append_journal(&big).unwrap();
        assert_eq!(records_of(&storage.read_journal().unwrap().unwrap()).len(), 4 + big.len());
    }

    /// Descriptors of this process still open on a deleted journal.
    fn open_deleted_journals(dir: &Path) -> usize {
        let gone = format!("{} (deleted)", dir.join(JOURNAL).display());
        fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.to_string_lossy() == gone)
            .count()
    }

    #[test]
    fn a_replaced_journal_takes_appends_and_the_old_one_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path()).unwrap();
        storage.replace_journal(b"first").unwrap();
        storage.append_journal(b"+1").unwrap();
        storage.replace_journal(b"second").unwrap();
        storage.append_journal(b"+2").unwrap();
        // A prepared file may have taken the second journal: zeros follow its records.
        assert_eq!(records_of(&storage.read_journal().unwrap().unwrap()), b"second+2");
        // The old journal is closed on another thread: soon, and never left open.
        wait_until("the replaced journal is still open", Duration::from_secs(10), || {
            open_deleted_journals(dir.path()) == 0
        });
    }
}
