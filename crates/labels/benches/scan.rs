//! What reading disguised markings costs on the request path.
//!
//! `cargo bench -p rampart-labels` times, for prompts of several sizes, the
//! plain reading (`SecurityPolicy::detect_markings`) and the full scan
//! (`Policies::scan_markings`: raw, folded and squashed views) and prints a
//! table of the median and p99 time per call.

use std::time::{Duration, Instant};

use rampart_labels::Policies;

/// A report paragraph with no marking: the common case, every view read to the end.
const PARAGRAPH: &str = "The convoy left the northern depot at dawn and reached the river crossing by noon; \
the bridge was intact, the engineers reported no mines, and the column moved on towards the border. \n";

fn samples(mut call: impl FnMut(), runs: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        call();
        times.push(start.elapsed());
    }
    times.sort();
    times
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn at(times: &[Duration], quantile: f64) -> Duration {
    times[((times.len() as f64 - 1.0) * quantile) as usize]
}

fn main() {
    let policies = Policies::nato();
    let policy = policies.default_policy();
    let ascii = |bytes: usize| PARAGRAPH.repeat(bytes.div_ceil(PARAGRAPH.len()));
    let texts = [
        ("100 B, ASCII", ascii(100)),
        ("512 B, ASCII (a stream's window, per event)", ascii(512)[..512].to_owned()),
        ("2 KB, ASCII", ascii(2_000)),
        ("32 KB, ASCII", ascii(32_000)),
        ("2 KB, Cyrillic and Latin", "Колонна вышла на рассвете; the convoy left at dawn. \n".repeat(36)),
        ("2 KB, ASCII, marked (NS)", format!("(NS) {}", ascii(2_000))),
    ];
    println!("| text | plain p50 | plain p99 | scan p50 | scan p99 |");
    println!("|---|---|---|---|---|");
    for (name, text) in &texts {
        let runs = if text.len() > 10_000 { 2_000 } else { 20_000 };
        let plain = samples(|| drop(std::hint::black_box(policy.detect_markings(text))), runs);
        let scan = samples(|| drop(std::hint::black_box(policies.scan_markings(policy, text))), runs);
        println!(
            "| {name} | {} | {} | {} | {} |",
            micros(at(&plain, 0.5)),
            micros(at(&plain, 0.99)),
            micros(at(&scan, 0.5)),
            micros(at(&scan, 0.99))
        );
    }
}
