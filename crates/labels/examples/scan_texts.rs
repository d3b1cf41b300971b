//! Scans each argument `ROUNDS` times (`ROUNDS` from the environment,
//! default 1,000) with the NATO policy's scanner: a fixed workload for
//! counting the scanner's instructions under callgrind
//! (`valgrind --tool=callgrind target/release/examples/scan_texts TEXT...`,
//! once with `ROUNDS=0` to subtract start-up).

use rampart_labels::Policies;

fn main() {
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1_000);
    let texts: Vec<String> = std::env::args().skip(1).collect();
    let policies = Policies::nato();
    let policy = policies.default_policy();
    let mut found = 0usize;
    for _ in 0..rounds {
        for text in &texts {
            found += usize::from(std::hint::black_box(policies.scan_markings(policy, text)).is_some());
        }
    }
    println!("{} scans, {found} found a marking", rounds * texts.len());
}
