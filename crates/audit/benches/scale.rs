//! The log at millions of entries: opening it, verifying it, and its size on disk.
//!
//! `cargo bench -p rampart-audit --bench scale` fills a log with entries shaped
//! like the gateway's (batches of 4,096, each committed and published), then,
//! for each size, times `Log::open` (what start-up does) and `verify` (what
//! `rampart audit verify` does) and measures the heap each peaks at above its
//! start (this binary counts its allocations) and the process's peak resident
//! memory during each (reset before each through `/proc/self/clear_refs`). It
//! prints the bytes on disk per entry: entry bundles, hash tiles, the rest.
//!
//! `RAMPART_BENCH_SIZES` lists the sizes (default `1000000,10000000`; 10 M
//! entries take about 6 GB); `RAMPART_BENCH_DIR` the disk (default the
//! temporary directory).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

mod common;
#[path = "../tests/counting/mod.rs"]
mod counting;
use common::entry;
use counting::{LIVE, PEAK};

use rampart_audit::keys;
use rampart_audit::log::Log;
use rampart_audit::storage::FsStorage;
use rampart_audit::verify::verify;

/// Runs `work`, returning its result, seconds, heap peak above its start (bytes) and peak RSS (MiB).
fn measured<T>(work: impl FnOnce() -> T) -> (T, f64, usize, f64) {
    // Writing 5 resets the process's peak resident size (VmHWM) to its current one.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let started = Instant::now();
    let out = work();
    let seconds = started.elapsed().as_secs_f64();
    let heap = PEAK.load(Ordering::Relaxed) - before;
    (out, seconds, heap, peak_rss_mib())
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next());
    kib.and_then(|v| v.parse::<f64>().ok()).map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Bytes under `dir`: (entry bundles, hash tiles, everything else).
fn disk(root: &Path) -> (u64, u64, u64) {
    let (mut bundles, mut tiles, mut other) = (0, 0, 0);
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for item in std::fs::read_dir(&dir).expect("a readable directory") {
            let path = item.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let bytes = std::fs::metadata(&path).expect("a file's size").len();
            let relative = path.strip_prefix(root).unwrap_or(&path);
            if relative.starts_with("tile/entries") {
                bundles += bytes;
            } else if relative.starts_with("tile") {
                tiles += bytes;
            } else {
                other += bytes;
            }
        }
    }
    (bundles, tiles, other)
}

fn main() {
    let base = std::env::var_os("RAMPART_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let sizes: Vec<u64> = std::env::var("RAMPART_BENCH_SIZES")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("RAMPART_BENCH_SIZES lists entry counts, e.g. 1000000,10000000"))
        .collect();
    println!("entries of {} bytes", entry(0).len());
    println!(
        "| entries | fill s | open ms | open heap peak KiB | open peak RSS MiB | verify s | verify heap peak KiB | verify peak RSS MiB | bytes/entry: bundles + tiles + other = total |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for size in sizes {
        let dir = tempfile::tempdir_in(&base).expect("a temporary directory");
        let (skey, vkey) = keys::generate("bench.example/scale").expect("a key");
        let started = Instant::now();
        let mut log = Log::open(FsStorage::new(dir.path()).expect("storage"), skey.clone()).expect("a log");
        const BATCH: u64 = 4096;
        let mut next = 0;
        while next < size {
            let batch: Vec<Vec<u8>> = (next..size.min(next + BATCH)).map(entry).collect();
            log.commit(&batch).expect("the commit succeeds");
            log.publish().expect("the publication succeeds");
            next += batch.len() as u64;
        }
        drop(log);
        let fill = started.elapsed().as_secs_f64();

        let (log, open_s, open_heap, open_rss) =
            measured(|| Log::open(FsStorage::new(dir.path()).expect("storage"), skey).expect("the log reopens"));
        assert_eq!(log.size(), size);
        drop(log);
        let (report, verify_s, verify_heap, verify_rss) = measured(|| {
            verify(&FsStorage::new(dir.path()).expect("storage"), &vkey, &mut |_, _| {}).expect("the log verifies")
        });
        assert_eq!(report.size, size);
        let (bundles, tiles, other) = disk(dir.path());
        let per = |bytes: u64| bytes as f64 / size as f64;
        println!(
            "| {size} | {fill:.1} | {:.1} | {} | {open_rss:.1} | {verify_s:.1} | {} | {verify_rss:.1} | {:.1} + {:.1} + {:.2} = {:.1} |",
            open_s * 1e3,
            open_heap >> 10,
            verify_heap >> 10,
            per(bundles),
            per(tiles),
            per(other),
            per(bundles + tiles + other),
        );
    }
}
