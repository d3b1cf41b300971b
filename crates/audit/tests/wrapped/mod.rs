//! Storage for tests: the real file storage, with a test's own behaviour
//! before each call reaches it (a read noted, a write failed, partial
//! versions kept), written once for every test that needs one.
#![allow(dead_code)] // each test binary uses the hooks it needs

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rampart_audit::storage::{FsStorage, Storage};

/// What a test storage does before a call reaches the file storage.
pub trait Hooks: Send + Sync {
    /// Before a file is read.
    fn read(&self, _path: &str) {}
    /// Before a published file (tile, bundle, checkpoint) is written; an error fails the write.
    fn write(&self) -> io::Result<()> {
        Ok(())
    }
    /// Before the journal is written; an error fails the write.
    fn journal(&self) -> io::Result<()> {
        Ok(())
    }
    /// Whether partial versions are deleted when asked (a crash before the deletion keeps them).
    fn removes_partials(&self) -> bool {
        true
    }
}

/// The file storage at a directory, behind a test's hooks.
pub struct Wrapped<H> {
    inner: FsStorage,
    pub hooks: H,
}

impl<H: Hooks> Wrapped<H> {
    pub fn new(dir: &std::path::Path, hooks: H) -> Self {
        Self { inner: FsStorage::new(dir).unwrap(), hooks }
    }
}

impl<H: Hooks> Storage for Wrapped<H> {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.hooks.read(path);
        self.inner.read(path)
    }
    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.hooks.write()?;
        self.inner.write(path, data)
    }
    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
    fn remove_partials(&self, path: &str) -> io::Result<()> {
        match self.hooks.removes_partials() {
            true => self.inner.remove_partials(path),
            false => Ok(()),
        }
    }
    fn partials(&self, path: &str) -> io::Result<Vec<u64>> {
        self.inner.partials(path)
    }
    fn read_journal(&self) -> io::Result<Option<Vec<u8>>> {
        self.inner.read_journal()
    }
    fn replace_journal(&self, records: &[u8]) -> io::Result<()> {
        self.hooks.journal()?;
        self.inner.replace_journal(records)
    }
    fn append_journal(&self, record: &[u8]) -> io::Result<()> {
        self.hooks.journal()?;
        self.inner.append_journal(record)
    }
}

/// Notes every path read.
#[derive(Default)]
pub struct Reads(pub Mutex<Vec<String>>);

impl Hooks for Reads {
    fn read(&self, path: &str) {
        self.0.lock().unwrap().push(path.to_owned());
    }
}

/// Keeps the partial versions of full tiles, as a crash right after a
/// publication's checkpoint (before their deletion) leaves them.
pub struct KeepsPartials;

impl Hooks for KeepsPartials {
    fn removes_partials(&self) -> bool {
        false
    }
}

/// Fails, while broken, as a full or broken disk would: every write, or
/// only the published files (the journal still works).
pub struct Breakable {
    pub broken: Arc<AtomicBool>,
    /// Whether the journal breaks with the rest.
    pub journal_too: bool,
}

impl Breakable {
    fn check(&self) -> io::Result<()> {
        match self.broken.load(Ordering::SeqCst) {
            true => Err(io::Error::other("no space left on device")),
            false => Ok(()),
        }
    }
}

impl Hooks for Breakable {
    fn write(&self) -> io::Result<()> {
        self.check()
    }
    fn journal(&self) -> io::Result<()> {
        if self.journal_too { self.check() } else { Ok(()) }
    }
}
