//! The writer and the verifier together: appends across tile boundaries,
//! reopening, an independent RFC 6962 root, tampering found and named, and
//! failed writes that leave nothing half-done.

mod wrapped;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rampart_audit::keys;
use rampart_audit::log::{CHECKPOINT, Log};
use rampart_audit::storage::FsStorage;
use rampart_audit::verify::{VerifyError, verify};
use sha2::{Digest, Sha256};
use wrapped::{Breakable, KeepsPartials, Wrapped};

/// RFC 6962 §2.1 Merkle Tree Hash, written from the RFC, independent of the log's code.
fn mth(entries: &[Vec<u8>]) -> [u8; 32] {
    match entries.len() {
        0 => Sha256::digest([]).into(),
        1 => Sha256::new().chain_update([0u8]).chain_update(&entries[0]).finalize().into(),
        n => {
            let k = n.next_power_of_two() / 2;
            let k = if k == n { n / 2 } else { k };
            Sha256::new()
                .chain_update([1u8])
                .chain_update(mth(&entries[..k]))
                .chain_update(mth(&entries[k..]))
                .finalize()
                .into()
        }
    }
}

fn entry(i: usize) -> Vec<u8> {
    format!("{{\"v\":1,\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 37)).into_bytes()
}

fn checkpoint_root(dir: &std::path::Path, vkey: &str) -> (u64, [u8; 32]) {
    let signed = std::fs::read(dir.join(CHECKPOINT)).unwrap();
    let checkpoint = keys::open_checkpoint(vkey, &signed).unwrap();
    (checkpoint.size(), checkpoint.hash().0)
}

#[test]
fn appends_reopen_and_verify_across_tile_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let mut all = Vec::new();
    {
        let mut log = Log::open(FsStorage::new(dir.path()).unwrap(), skey.clone()).unwrap();
        assert_eq!(checkpoint_root(dir.path(), &vkey), (0, mth(&[])), "an empty log has a checkpoint");
        for batch in [1usize, 2, 200, 53, 1, 300] {
            let entries: Vec<Vec<u8>> = (all.len()..all.len() + batch).map(entry).collect();
            assert_eq!(log.append(&entries).unwrap(), all.len() as u64);
            all.extend(entries);
            assert_eq!(checkpoint_root(dir.path(), &vkey), (all.len() as u64, mth(&all)));
        }
    }
    assert_eq!(all.len(), 557);
    assert!(dir.path().join("tile/entries/000").is_file() && dir.path().join("tile/entries/001").is_file());
    assert!(dir.path().join("tile/entries/002.p/45").is_file());
    assert!(dir.path().join("tile/0/002.p/45").is_file() && dir.path().join("tile/1/000.p/2").is_file());

    // Reopened: the tail bundle and the hashes come back from disk.
    let mut log = Log::open(FsStorage::new(dir.path()).unwrap(), skey.clone()).unwrap();
    assert_eq!(log.size(), 557);
    let more: Vec<Vec<u8>> = (557..600).map(entry).collect();
    log.append(&more).unwrap();
    all.extend(more);
    assert_eq!(checkpoint_root(dir.path(), &vkey), (600, mth(&all)));

    let mut calls = 0;
    let report = verify(&FsStorage::new(dir.path()).unwrap(), &vkey, &mut |_, _| calls += 1).unwrap();
    assert_eq!((report.size, report.origin.as_str()), (600, "test.example/log"));
    assert!(calls >= 3, "progress is reported per bundle");

    // Another key cannot open or verify it.
    let (other_skey, other_vkey) = keys::generate("test.example/log").unwrap();
    assert!(Log::open(FsStorage::new(dir.path()).unwrap(), other_skey).is_err());
    assert!(matches!(
        verify(&FsStorage::new(dir.path()).unwrap(), &other_vkey, &mut |_, _| {}),
        Err(VerifyError::Checkpoint(_))
    ));
}

fn tampered(path: &str, at: usize) -> Result<(), VerifyError> {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let mut log = Log::open(FsStorage::new(dir.path()).unwrap(), skey).unwrap();
    log.append(&(0..300).map(entry).collect::<Vec<_>>()).unwrap();
    let file = dir.path().join(path);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();
    verify(&FsStorage::new(dir.path()).unwrap(), &vkey, &mut |_, _| {}).map(|_| ())
}

#[test]
fn tampering_is_found_and_named() {
    // A byte inside entry 0's text (after its 2-byte length).
    assert_eq!(
        tampered("tile/entries/000", 5),
        Err(VerifyError::Entry { index: 0, bundle: "tile/entries/000".into(), tile: "tile/0/000".into() })
    );
    // A byte inside the last entry of the partial bundle.
    match tampered("tile/entries/001.p/44", 3) {
        Err(VerifyError::Entry { index, .. }) => assert_eq!(index, 256),
        other => panic!("{other:?}"),
    }
    // A length prefix: the bundle no longer splits.
    assert!(matches!(tampered("tile/entries/000", 0), Err(VerifyError::Bundle { .. })));
    // A hash tile above the entries.
    assert_eq!(tampered("tile/1/000.p/1", 7), Err(VerifyError::Tile { path: "tile/1/000.p/1".into(), position: 0 }));
    // The level-0 tile: named as the entry whose hash no longer matches.
    assert!(matches!(tampered("tile/0/000", 32 * 9 + 1), Err(VerifyError::Entry { index: 9, .. })));
    // The checkpoint's text or signature.
    assert!(matches!(tampered(CHECKPOINT, 20), Err(VerifyError::Checkpoint(_))));
}

#[test]
fn partials_left_by_a_crash_are_checked_by_verify_and_deleted_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let mut log = Log::open(Wrapped::new(dir.path(), KeepsPartials), skey.clone()).unwrap();
    for batch in [(0..100), (100..200), (200..300)] {
        log.append(&batch.map(entry).collect::<Vec<_>>()).unwrap();
    }
    drop(log);
    let stale = ["tile/0/000.p/100", "tile/0/000.p/200", "tile/entries/000.p/100", "tile/entries/000.p/200"];
    for path in stale {
        assert!(dir.path().join(path).is_file(), "{path}");
    }
    let verify_dir = || verify(&FsStorage::new(dir.path()).unwrap(), &vkey, &mut |_, _| {});
    assert_eq!(verify_dir().unwrap().partials, 4, "every stale partial is compared");
    // Tampering with a stale partial tile or bundle is caught and named.
    for (path, at) in [("tile/0/000.p/100", 40), ("tile/entries/000.p/200", 9)] {
        let file = dir.path().join(path);
        let original = std::fs::read(&file).unwrap();
        let mut bytes = original.clone();
        bytes[at] ^= 1;
        std::fs::write(&file, bytes).unwrap();
        let err = verify_dir().unwrap_err();
        assert!(err.to_string().contains(path), "{path}: {err}");
        std::fs::write(&file, original).unwrap();
    }

    // The next open deletes them; nothing is lost.
    let mut log = Log::open(FsStorage::new(dir.path()).unwrap(), skey).unwrap();
    assert_eq!(log.size(), 300);
    for path in stale {
        assert!(!dir.path().join(path).exists(), "{path} is left");
    }
    assert_eq!(verify_dir().unwrap().partials, 0);
    log.append(&(300..310).map(entry).collect::<Vec<_>>()).unwrap();
    let all: Vec<Vec<u8>> = (0..310).map(entry).collect();
    assert_eq!(checkpoint_root(dir.path(), &vkey), (310, mth(&all)));
}

fn flaky(dir: &std::path::Path, journal_too: bool) -> Wrapped<Breakable> {
    Wrapped::new(dir, Breakable { broken: Arc::new(AtomicBool::new(false)), journal_too })
}

#[test]
fn a_failed_commit_is_not_in_the_log_and_the_log_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let mut log = Log::open(flaky(dir.path(), true), skey.clone()).unwrap();
    let first: Vec<Vec<u8>> = (0..10).map(entry).collect();
    log.append(&first).unwrap();

    log.storage().hooks.broken.store(true, Ordering::SeqCst);
    let lost: Vec<Vec<u8>> = (100..120).map(entry).collect();
    let err = log.commit(&lost).unwrap_err();
    assert!(err.to_string().contains("no space left"), "{err}");
    assert_eq!(log.size(), 10, "nothing of the failed batch counts");
    assert_eq!(checkpoint_root(dir.path(), &vkey), (10, mth(&first)));

    // Recovery: the same writer carries on, and a fresh open agrees.
    log.storage().hooks.broken.store(false, Ordering::SeqCst);
    let next: Vec<Vec<u8>> = (10..15).map(entry).collect();
    assert_eq!(log.append(&next).unwrap(), 10);
    let all: Vec<Vec<u8>> = first.iter().chain(&next).cloned().collect();
    assert_eq!(checkpoint_root(dir.path(), &vkey), (15, mth(&all)));
    drop(log);
    assert_eq!(Log::open(FsStorage::new(dir.path()).unwrap(), skey).unwrap().size(), 15);
    verify(&FsStorage::new(dir.path()).unwrap(), &vkey, &mut |_, _| {}).unwrap();
}

#[test]
fn a_committed_batch_survives_a_failed_publication_and_is_published_later() {
    for reopen in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (skey, vkey) = keys::generate("test.example/log").unwrap();
        let mut log = Log::open(flaky(dir.path(), false), skey.clone()).unwrap();
        let first: Vec<Vec<u8>> = (0..10).map(entry).collect();
        log.append(&first).unwrap();

        log.storage().hooks.broken.store(true, Ordering::SeqCst);
        let kept: Vec<Vec<u8>> = (10..300).map(entry).collect();
        assert_eq!(log.commit(&kept).unwrap(), 10, "the journal takes the batch");
        let err = log.publish().unwrap_err();
        assert!(err.to_string().contains("no space left"), "{err}");
        assert_eq!((log.size(), log.published_size()), (300, 10));
        assert_eq!(checkpoint_root(dir.path(), &vkey), (10, mth(&first)), "the published tree is untouched");

        let all: Vec<Vec<u8>> = first.iter().chain(&kept).cloned().collect();
        if reopen {
            // As after a crash: the next open publishes what the journal holds.
            drop(log);
            assert_eq!(Log::open(FsStorage::new(dir.path()).unwrap(), skey).unwrap().published_size(), 300);
        } else {
            log.storage().hooks.broken.store(false, Ordering::SeqCst);
            assert_eq!(log.publish().unwrap(), 300);
        }
        assert_eq!(checkpoint_root(dir.path(), &vkey), (300, mth(&all)));
        verify(&FsStorage::new(dir.path()).unwrap(), &vkey, &mut |_, _| {}).unwrap();
    }
}

#[test]
fn oversized_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, _) = keys::generate("test.example/log").unwrap();
    let mut log = Log::open(FsStorage::new(dir.path()).unwrap(), skey).unwrap();
    assert!(log.append(&[vec![b'x'; 70_000]]).is_err());
    assert_eq!(log.size(), 0);
}

#[test]
fn committed_batches_not_yet_published_are_recovered_from_the_journal() {
    use rampart_audit::journal;
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let mut log = Log::open(FsStorage::new(dir.path()).unwrap(), skey.clone()).unwrap();
    let all: Vec<Vec<u8>> = (0..400).map(entry).collect();
    log.append(&all[..5]).unwrap();
    let checkpoint_at_5 = std::fs::read(dir.path().join(CHECKPOINT)).unwrap();
    for batch in [&all[5..6], &all[6..260], &all[260..400]] {
        log.commit(batch).unwrap();
    }
    drop(log); // As a crash would leave it: only the first batch published.
    assert_eq!(checkpoint_root(dir.path(), &vkey), (5, mth(&all[..5])));
    // The start of a write the crash cut short follows the last record.
    let journal_path = dir.path().join("journal");
    let mut torn = std::fs::read(&journal_path).unwrap();
    torn.extend_from_slice(b"\x40\0\0\0torn");
    std::fs::write(&journal_path, torn).unwrap();

    let log = Log::open(FsStorage::new(dir.path()).unwrap(), skey.clone()).unwrap();
    assert_eq!((log.size(), log.published_size()), (400, 400));
    assert_eq!(checkpoint_root(dir.path(), &vkey), (400, mth(&all)));
    verify(&FsStorage::new(dir.path()).unwrap(), &vkey, &mut |_, _| {}).unwrap();
    drop(log);

    // A journal that disagrees with the published log is refused, not replayed.
    let refused = |journal: Vec<u8>| {
        std::fs::write(&journal_path, journal).unwrap();
        Log::open(FsStorage::new(dir.path()).unwrap(), skey.clone()).err().expect("refused").to_string()
    };
    let mut forged = journal::base(5, &checkpoint_at_5);
    forged.extend(journal::entries(5, &[b"forged".to_vec()]));
    assert!(refused(forged).contains("disagrees with the entries published from 5 to 400"));
    let mut altered = all[5..400].to_vec();
    altered[195] = b"altered".to_vec();
    let mut deep = journal::base(5, &checkpoint_at_5);
    deep.extend(journal::entries(5, &altered));
    assert!(refused(deep).contains("disagrees with the entries published from 5 to 400"));
    let mut gap = journal::base(5, &checkpoint_at_5);
    gap.extend(journal::entries(6, &all[6..7]));
    assert!(refused(gap).contains("skips from entry 5 to 6"));
    assert!(refused(journal::base(6, &checkpoint_at_5)).contains("does not contain"));
    assert!(refused(journal::entries(0, &all[..1])).contains("does not begin"));
}

#[test]
fn batches_in_a_prepared_journal_are_recovered_up_to_a_torn_write() {
    use std::os::unix::fs::FileExt as _;
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let journal_path = dir.path().join("journal");
    let mut log = Log::open(FsStorage::new(dir.path()).unwrap(), skey.clone()).unwrap();
    let mut all: Vec<Vec<u8>> = Vec::new();
    // After a publication the journal moves into a prepared file of zeros once one is ready.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::metadata(&journal_path).unwrap().len() != 1 << 20 {
        assert!(std::time::Instant::now() < deadline, "the journal never moved into a prepared file");
        all.push(entry(all.len()));
        log.append(&all[all.len() - 1..]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let published = all.len();
    all.extend((published..published + 300).map(entry));
    for batch in [&all[published..published + 1], &all[published + 1..published + 300]] {
        log.commit(batch).unwrap();
    }
    drop(log); // As a crash would leave it: the last two batches only in the journal.
    assert_eq!(checkpoint_root(dir.path(), &vkey), (published as u64, mth(&all[..published])));
    // A write the crash cut short, inside the prepared zeros after the last record.
    let journal = std::fs::read(&journal_path).unwrap();
    assert_eq!(journal.len(), 1 << 20, "appends stay within the prepared file");
    let end = journal.iter().rposition(|&b| b != 0).unwrap() + 1;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&journal_path)
        .unwrap()
        .write_all_at(b"\x40\0\0\0torn", end as u64)
        .unwrap();

    let log = Log::open(FsStorage::new(dir.path()).unwrap(), skey.clone()).unwrap();
    assert_eq!((log.size(), log.published_size()), (all.len() as u64, all.len() as u64));
    assert_eq!(checkpoint_root(dir.path(), &vkey), (all.len() as u64, mth(&all)));
    verify(&FsStorage::new(dir.path()).unwrap(), &vkey, &mut |_, _| {}).unwrap();
}

#[test]
fn a_log_reopens_at_a_tile_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/log").unwrap();
    let all: Vec<Vec<u8>> = (0..513).map(entry).collect();
    for range in [0..256, 256..512, 512..513] {
        let mut log = Log::open(FsStorage::new(dir.path()).unwrap(), skey.clone()).unwrap();
        assert_eq!(log.size(), range.start as u64);
        log.append(&all[range.clone()]).unwrap();
        assert_eq!(checkpoint_root(dir.path(), &vkey), (range.end as u64, mth(&all[..range.end])));
    }
    verify(&FsStorage::new(dir.path()).unwrap(), &vkey, &mut |_, _| {}).unwrap();
}
