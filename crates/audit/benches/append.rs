//! Durable appends with group commit on this machine's disk.
//!
//! `cargo bench -p rampart-audit` commits batches of audit entries (each batch
//! one journal record, written and flushed) and prints entries per second and
//! the latency of a commit, per batch size, with the time to publish the same
//! batch (entry bundle and hash tiles written and flushed, then a signed
//! checkpoint written and flushed), which runs behind the commits. Then the
//! same through group commit: many concurrent recorders, each waiting for its
//! entry to be durable.

use std::time::{Duration, Instant};

mod common;
use common::entry;

use rampart_audit::keys;
use rampart_audit::log::Log;
use rampart_audit::recorder::Recorder;
use rampart_audit::storage::FsStorage;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// `writers` tasks each record entries back to back for 3 s through one Recorder.
fn group_commit(base: &std::path::Path, writers: usize) {
    let dir = tempfile::tempdir_in(base).expect("a temporary directory");
    let (skey, _) = keys::generate("bench.example/log").expect("a key");
    let log = Log::open(FsStorage::new(dir.path()).expect("storage"), skey).expect("a log");
    let recorder = Recorder::start(log).expect("the writer starts");
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let started = Instant::now();
    let latencies = runtime.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let recorder = recorder.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut i = w as u64 * 1_000_000_000;
                    while started.elapsed() < Duration::from_secs(3) {
                        let bytes = entry(i);
                        let t = Instant::now();
                        recorder.record(bytes).await.expect("recorded");
                        latencies.push(t.elapsed());
                        i += 1;
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("a writer task"));
        }
        all
    });
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    let mut latencies = latencies;
    latencies.sort();
    println!(
        "| {writers} | {} | {rate:.0} | {:.2} | {:.2} |",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
}

fn main() {
    // On the project's disk (not a tmpfs), where a site's log would be.
    let base = std::env::var_os("RAMPART_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let entry_bytes = entry(0).len();
    println!(
        "entries of {entry_bytes} bytes; a commit flushes one journal record; publishing flushes tiles, then a signed checkpoint"
    );
    println!(
        "| entries per batch | batches | entries/s | commit p50 ms | commit p99 ms | publish p50 ms | publish p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    for batch in [1u64, 16, 128, 1024, 4096] {
        let dir = tempfile::tempdir_in(&base).expect("a temporary directory");
        let (skey, _) = keys::generate("bench.example/log").expect("a key");
        let mut log = Log::open(FsStorage::new(dir.path()).expect("storage"), skey).expect("a log");
        let (mut latencies, mut publishing) = (Vec::new(), Vec::new());
        let mut next = 0u64;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            let entries: Vec<Vec<u8>> = (next..next + batch).map(entry).collect();
            let t = Instant::now();
            log.commit(&entries).expect("the commit succeeds");
            latencies.push(t.elapsed());
            let t = Instant::now();
            log.publish().expect("the publication succeeds");
            publishing.push(t.elapsed());
            next += batch;
        }
        // Time spent committing only (making the entries is the caller's work).
        let rate = next as f64 / latencies.iter().sum::<Duration>().as_secs_f64();
        latencies.sort();
        publishing.sort();
        println!(
            "| {batch} | {} | {rate:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            latencies.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&publishing, 0.5),
            percentile(&publishing, 0.99)
        );
    }
    println!();
    println!("group commit: concurrent writers, each waiting until its entry is durable");
    println!("| concurrent writers | entries | entries/s | record p50 ms | record p99 ms |");
    println!("|---|---|---|---|---|");
    for writers in [1, 16, 256, 2048] {
        group_commit(&base, writers);
    }
}
