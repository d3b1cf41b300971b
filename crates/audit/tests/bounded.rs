//! The log at a million entries: the appender's heap stays flat while it
//! grows, it reopens reading its right edge only (no full entry bundle), and
//! `verify` streams it in bounded memory. The heap is measured by this test
//! binary's allocator, so this file holds this one test.

mod counting;
mod wrapped;

use std::sync::atomic::Ordering;

use counting::{LIVE, PEAK};
use rampart_audit::keys;
use rampart_audit::log::Log;
use rampart_audit::storage::FsStorage;
use rampart_audit::verify::verify;
use wrapped::{Reads, Wrapped};

/// An audit-entry-sized record (the median entry is about 600 bytes; smaller here to keep the test's disk small).
fn entry(n: u64) -> Vec<u8> {
    format!("{{\"v\":1,\"request_id\":\"{n:032x}\",\"action\":\"infer\",\"allowed\":true}}").into_bytes()
}

#[test]
fn a_million_entries_in_flat_memory_reopened_from_the_edge_and_verified_streaming() {
    const ENTRIES: u64 = 1_000_000;
    const BATCH: u64 = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = keys::generate("test.example/bounded").unwrap();
    let mut log = Log::open(FsStorage::new(dir.path()).unwrap(), skey.clone()).unwrap();
    // The least heap seen after a batch, per 100,000 entries: the least, because a journal
    // file being prepared on another thread holds a 1 MiB buffer for a moment.
    let mut heap_at = vec![usize::MAX; (ENTRIES / 100_000) as usize];
    for first in (0..ENTRIES).step_by(BATCH as usize) {
        let batch: Vec<Vec<u8>> = (first..first + BATCH).map(entry).collect();
        log.commit(&batch).unwrap();
        drop(batch);
        log.publish().unwrap();
        let least = &mut heap_at[(first / 100_000) as usize];
        *least = (*least).min(LIVE.load(Ordering::Relaxed));
    }
    assert_eq!(log.size(), ENTRIES);
    // From the second 100,000 entries to the tenth: every stored hash kept would be ~51 MB more.
    let growth = heap_at.last().unwrap().saturating_sub(heap_at[1]);
    println!("appender heap, least per 100,000 entries: {heap_at:?} bytes");
    assert!(growth < 64 << 10, "the appender's heap grew by {growth} bytes: {heap_at:?}");
    drop(log);

    // Reopened: the checkpoint, the open tile of each level, the open bundle and the journal; to
    // check the journal, the tree's edge at its base (a few tiles). No full entry bundle.
    let storage = Wrapped::new(dir.path(), Reads::default());
    let log = Log::open(storage, skey).unwrap();
    assert_eq!(log.size(), ENTRIES);
    let read = log.storage().hooks.0.lock().unwrap().clone();
    println!("reopening read {read:?}");
    assert!(read.iter().all(|path| !path.starts_with("tile/entries/") || path.contains(".p/")), "{read:?}");
    assert!(read.len() <= 24, "{read:?}");
    drop(log);

    // Verified in one pass, its heap bounded (the whole tree's hashes would be ~64 MB).
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let mut last = 0;
    let report = verify(&FsStorage::new(dir.path()).unwrap(), &vkey, &mut |done, _| last = done).unwrap();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    println!("verify: {} entries, {} tiles, peak heap {peak} bytes", report.size, report.tiles);
    assert_eq!((report.size, last), (ENTRIES, ENTRIES));
    // Partial versions are left only of tiles that are not full yet.
    let mut dirs = vec![dir.path().join("tile")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.to_string_lossy().into_owned();
            if let Some(full) = name.strip_suffix(".p") {
                assert!(!std::path::Path::new(full).exists(), "{name} is left beside its full tile");
            } else if path.is_dir() {
                dirs.push(path);
            }
        }
    }
    assert!(peak < 4 << 20, "verify's heap peaked {peak} bytes above its start");
}
