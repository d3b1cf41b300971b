//! Group commit under concurrency, and fail-closed answers while storage fails.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rampart_audit::keys;
use rampart_audit::log::Log;
use rampart_audit::recorder::Recorder;
use rampart_audit::storage::{FsStorage, Storage};
use rampart_audit::verify::{for_each_entry, verify};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_records_are_batched_durably_and_each_answered_with_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let recorder = Recorder::start(Log::open(FsStorage::new(dir.path()).unwrap(), skey).unwrap()).unwrap();
    let mut tasks = Vec::new();
    for task in 0..16 {
        let recorder = recorder.clone();
        tasks.push(tokio::spawn(async move {
            let mut indexes = Vec::new();
            for i in 0..100 {
                let entry = format!("{{\"task\":{task},\"i\":{i}}}").into_bytes();
                indexes.push((recorder.record(entry.clone()).await.unwrap(), entry));
            }
            indexes
        }));
    }
    let mut answered = Vec::new();
    for task in tasks {
        answered.extend(task.await.unwrap());
    }
    assert_eq!(answered.len(), 1600);
    assert_eq!(recorder.publish().await, Ok(1600));
    // Every answer is durable and names the entry's real place.
    let storage = FsStorage::new(dir.path()).unwrap();
    let report = verify(&storage, &vkey, &mut |_, _| {}).unwrap();
    assert_eq!(report.size, 1600);
    let mut stored = vec![Vec::new(); 1600];
    for_each_entry(&storage, 1600, 0, &mut |index, entry| stored[index as usize] = entry.to_vec()).unwrap();
    for (index, entry) in answered {
        assert_eq!(stored[index as usize], entry);
    }
    assert_eq!(recorder.problem(), None);
}

struct Switchable {
    inner: FsStorage,
    broken: Arc<AtomicBool>,
    /// Whether the journal breaks with the rest, or only the published files do.
    journal_too: bool,
}

impl Storage for Switchable {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.inner.read(path)
    }
    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.check()?;
        self.inner.write(path, data)
    }
    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
    fn remove_partials(&self, path: &str) -> io::Result<()> {
        self.inner.remove_partials(path)
    }
    fn partials(&self, path: &str) -> io::Result<Vec<u64>> {
        self.inner.partials(path)
    }
    fn read_journal(&self) -> io::Result<Option<Vec<u8>>> {
        self.inner.read_journal()
    }
    fn replace_journal(&self, records: &[u8]) -> io::Result<()> {
        self.check_journal()?;
        self.inner.replace_journal(records)
    }
    fn append_journal(&self, record: &[u8]) -> io::Result<()> {
        self.check_journal()?;
        self.inner.append_journal(record)
    }
}

impl Switchable {
    fn new(dir: &std::path::Path, broken: &Arc<AtomicBool>, journal_too: bool) -> Self {
        Self { inner: FsStorage::new(dir).unwrap(), broken: Arc::clone(broken), journal_too }
    }

    fn check_journal(&self) -> io::Result<()> {
        if self.journal_too { self.check() } else { Ok(()) }
    }

    fn check(&self) -> io::Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(io::Error::other("permission denied"));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_log_refuses_then_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let broken = Arc::new(AtomicBool::new(false));
    let storage = Switchable::new(dir.path(), &broken, true);
    let recorder = Recorder::start(Log::open(storage, skey).unwrap()).unwrap();
    assert_eq!(recorder.record(b"first".to_vec()).await, Ok(0));

    broken.store(true, Ordering::SeqCst);
    let refused = recorder.record(b"lost".to_vec()).await.unwrap_err();
    assert!(refused.to_string().contains("permission denied"), "{refused}");
    assert!(recorder.problem().is_some_and(|p| p.contains("permission denied")));

    broken.store(false, Ordering::SeqCst);
    assert_eq!(recorder.record(b"second".to_vec()).await, Ok(1), "the refused entry took no place");
    assert_eq!(recorder.problem(), None);
    assert_eq!(recorder.publish().await, Ok(2));
    let report = verify(&FsStorage::new(dir.path()).unwrap(), &vkey, &mut |_, _| {}).unwrap();
    assert_eq!(report.size, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probing_recorder_recovers_without_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let broken = Arc::new(AtomicBool::new(false));
    let storage = Switchable::new(dir.path(), &broken, true);
    let every = std::time::Duration::from_millis(20);
    let recorder = Recorder::start_probing(Log::open(storage, skey).unwrap(), every, || b"probe".to_vec()).unwrap();
    broken.store(true, Ordering::SeqCst);
    assert!(recorder.record(b"lost".to_vec()).await.is_err());
    // Probes keep failing while storage does, and nothing is written.
    tokio::time::sleep(every * 5).await;
    assert!(recorder.problem().is_some());

    broken.store(false, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while recorder.problem().is_some() && std::time::Instant::now() < deadline {
        tokio::time::sleep(every).await;
    }
    assert_eq!(recorder.problem(), None, "a probe succeeded by itself");
    // Exactly one probe entry marks the recovery; a healthy log is not probed.
    tokio::time::sleep(every * 5).await;
    assert_eq!(recorder.publish().await, Ok(1));
    let storage = FsStorage::new(dir.path()).unwrap();
    assert_eq!(verify(&storage, &vkey, &mut |_, _| {}).unwrap().size, 1);
    let mut entries = Vec::new();
    for_each_entry(&storage, 1, 0, &mut |_, entry| entries.push(entry.to_vec())).unwrap();
    assert_eq!(entries, [b"probe".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_publication_keeps_what_was_acknowledged_and_refuses_more_until_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let broken = Arc::new(AtomicBool::new(false));
    let recorder = Recorder::start(Log::open(Switchable::new(dir.path(), &broken, false), skey).unwrap()).unwrap();
    assert_eq!(recorder.record(b"published".to_vec()).await, Ok(0));
    assert_eq!(recorder.publish().await, Ok(1));

    // Tiles cannot be written; the journal still can: the entry is durable and acknowledged.
    broken.store(true, Ordering::SeqCst);
    assert_eq!(recorder.record(b"journaled".to_vec()).await, Ok(1));
    let failed = recorder.publish().await.unwrap_err();
    assert!(failed.to_string().contains("permission denied"), "{failed}");
    assert!(recorder.problem().is_some());
    // A log that cannot publish takes nothing more.
    assert!(recorder.record(b"refused".to_vec()).await.is_err());

    broken.store(false, Ordering::SeqCst);
    assert_eq!(recorder.record(b"after".to_vec()).await, Ok(2), "publishing is retried first");
    assert_eq!(recorder.problem(), None);
    assert_eq!(recorder.publish().await, Ok(3));
    let storage = FsStorage::new(dir.path()).unwrap();
    assert_eq!(verify(&storage, &vkey, &mut |_, _| {}).unwrap().size, 3);
    let mut entries = Vec::new();
    for_each_entry(&storage, 3, 0, &mut |_, entry| entries.push(entry.to_vec())).unwrap();
    assert_eq!(entries, [b"published".to_vec(), b"journaled".to_vec(), b"after".to_vec()]);
}
