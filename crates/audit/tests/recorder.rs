//! Group commit under concurrency, and fail-closed answers while storage fails.

mod wrapped;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rampart_audit::keys;
use rampart_audit::log::Log;
use rampart_audit::recorder::Recorder;
use rampart_audit::storage::FsStorage;
use rampart_audit::verify::{for_each_entry, verify};
use wrapped::{Breakable, Wrapped};

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

fn switchable(dir: &std::path::Path, broken: &Arc<AtomicBool>, journal_too: bool) -> Wrapped<Breakable> {
    Wrapped::new(dir, Breakable { broken: Arc::clone(broken), journal_too })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_log_refuses_then_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let broken = Arc::new(AtomicBool::new(false));
    let storage = switchable(dir.path(), &broken, true);
    let recorder = Recorder::start(Log::open(storage, skey).unwrap()).unwrap();
    assert_eq!(recorder.record(b"first".to_vec()).await, Ok(0));

    broken.store(true, Ordering::SeqCst);
    let refused = recorder.record(b"lost".to_vec()).await.unwrap_err();
    assert!(refused.to_string().contains("no space left on device"), "{refused}");
    assert!(recorder.problem().is_some_and(|p| p.contains("no space left on device")));

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
    let storage = switchable(dir.path(), &broken, true);
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
    let recorder = Recorder::start(Log::open(switchable(dir.path(), &broken, false), skey).unwrap()).unwrap();
    assert_eq!(recorder.record(b"published".to_vec()).await, Ok(0));
    assert_eq!(recorder.publish().await, Ok(1));

    // Tiles cannot be written; the journal still can: the entry is durable and acknowledged.
    broken.store(true, Ordering::SeqCst);
    assert_eq!(recorder.record(b"journaled".to_vec()).await, Ok(1));
    let failed = recorder.publish().await.unwrap_err();
    assert!(failed.to_string().contains("no space left on device"), "{failed}");
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
