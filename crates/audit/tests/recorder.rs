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
}

impl Storage for Switchable {
    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        self.inner.read(path)
    }
    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(io::Error::other("permission denied"));
        }
        self.inner.write(path, data)
    }
    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_log_refuses_then_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let broken = Arc::new(AtomicBool::new(false));
    let storage = Switchable { inner: FsStorage::new(dir.path()).unwrap(), broken: Arc::clone(&broken) };
    let recorder = Recorder::start(Log::open(storage, skey).unwrap()).unwrap();
    assert_eq!(recorder.record(b"first".to_vec()).await, Ok(0));

    broken.store(true, Ordering::SeqCst);
    let refused = recorder.record(b"lost".to_vec()).await.unwrap_err();
    assert!(refused.to_string().contains("permission denied"), "{refused}");
    assert!(recorder.problem().is_some_and(|p| p.contains("permission denied")));

    broken.store(false, Ordering::SeqCst);
    assert_eq!(recorder.record(b"second".to_vec()).await, Ok(1), "the refused entry took no place");
    assert_eq!(recorder.problem(), None);
    let report = verify(&FsStorage::new(dir.path()).unwrap(), &vkey, &mut |_, _| {}).unwrap();
    assert_eq!(report.size, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probing_recorder_recovers_without_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let broken = Arc::new(AtomicBool::new(false));
    let storage = Switchable { inner: FsStorage::new(dir.path()).unwrap(), broken: Arc::clone(&broken) };
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
    let storage = FsStorage::new(dir.path()).unwrap();
    assert_eq!(verify(&storage, &vkey, &mut |_, _| {}).unwrap().size, 1);
    let mut entries = Vec::new();
    for_each_entry(&storage, 1, 0, &mut |_, entry| entries.push(entry.to_vec())).unwrap();
    assert_eq!(entries, [b"probe".to_vec()]);
}
