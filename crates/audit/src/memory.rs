//! The log in memory: a storage driver for tests of what sits above the log
//! (and for tools that verify a log copied into memory). Nothing survives
//! the process, so a site never serves from it.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;

use crate::storage::Storage;

/// Files and journal held in memory; every write is "durable" at once.
#[derive(Default)]
pub struct MemStorage {
    files: Mutex<HashMap<String, Vec<u8>>>,
    journal: Mutex<Option<Vec<u8>>>,
}

impl MemStorage {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Storage for MemStorage {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(lock(&self.files).get(path).cloned())
    }

    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        lock(&self.files).insert(path.to_owned(), data.to_vec());
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    fn partials(&self, path: &str) -> io::Result<Vec<u64>> {
        let prefix = format!("{path}.p/");
        let files = lock(&self.files);
        Ok(files.keys().filter_map(|name| name.strip_prefix(&prefix)?.parse().ok()).collect())
    }

    fn remove_partials(&self, path: &str) -> io::Result<()> {
        let prefix = format!("{path}.p/");
        lock(&self.files).retain(|name, _| !name.starts_with(&prefix));
        Ok(())
    }

    fn read_journal(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(lock(&self.journal).clone())
    }

    fn replace_journal(&self, records: &[u8]) -> io::Result<()> {
        *lock(&self.journal) = Some(records.to_vec());
        Ok(())
    }

    fn append_journal(&self, record: &[u8]) -> io::Result<()> {
        lock(&self.journal).get_or_insert_with(Vec::new).extend_from_slice(record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Log;

    #[test]
    fn a_log_in_memory_appends_and_reopens() {
        let (skey, _vkey) = crate::keys::generate("mem.test").unwrap();
        let mut log = Log::open(MemStorage::new(), skey).unwrap();
        log.append(&[b"one".to_vec(), b"two".to_vec()]).unwrap();
        log.publish().unwrap();
        assert_eq!(log.size(), 2);
        let storage = log.shared_storage();
        assert!(storage.read(crate::tiles::CHECKPOINT).unwrap().is_some());
        assert!(storage.read("tile/0/000.p/2").unwrap().is_some(), "the level-0 tile is written");
    }
}
