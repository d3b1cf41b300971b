//! What retrieval costs on this machine.
//!
//! `cargo bench -p rampart-retrieval` builds synthetic collections of 10,000
//! and 100,000 portions (report-like sentences over a 3,000-word vocabulary,
//! five labels, unit vectors standing in for embeddings) and times hybrid
//! searches for a reader who may read three labels of five; then times the
//! real embedding model on queries and on report portions (the ingest rate).
//! Prints tables of medians and p99s. Needs the embedding model in
//! `models/all-MiniLM-L6-v2` (scripts/test fetches it).

use std::path::Path;
use std::time::{Duration, Instant};

use rampart_collections::{Collection, Document, Portion, Summary};
use rampart_labels::Policies;
use rampart_retrieval::{DIMENSIONS, Embedder, LocalIndex, PortionIndex, Readable};

/// A deterministic pseudo-random sequence (xorshift), so every run builds the same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SEED_WORDS: [&str; 30] = [
    "brigade",
    "river",
    "crossing",
    "ford",
    "supply",
    "fuel",
    "convoy",
    "bridge",
    "engineer",
    "battalion",
    "radar",
    "airfield",
    "harbour",
    "rail",
    "depot",
    "weather",
    "rain",
    "patrol",
    "border",
    "village",
    "armoured",
    "reserve",
    "artillery",
    "medical",
    "casualty",
    "helicopter",
    "signal",
    "logistics",
    "ammunition",
    "route",
];

fn vocabulary() -> Vec<String> {
    (0..3_000).map(|i| format!("{}{}", SEED_WORDS[i % SEED_WORDS.len()], i / SEED_WORDS.len())).collect()
}

fn corpus(portions: usize, rng: &mut Rng) -> Collection {
    let policies = Policies::nato();
    let labels: Vec<_> =
        ["NATO UNCLASSIFIED", "NATO RESTRICTED", "NATO CONFIDENTIAL", "NATO SECRET", "NATO TOP SECRET"]
            .iter()
            .map(|m| policies.parse_label(m).unwrap())
            .collect();
    let words = vocabulary();
    let mut documents = Vec::new();
    for d in 0..portions / 5 {
        let label = labels[d % labels.len()].clone();
        let portions = (0..5)
            .map(|p| {
                let text: Vec<&str> = (0..24).map(|_| words[rng.below(words.len())].as_str()).collect();
                let mut v: Vec<f32> = (0..DIMENSIONS).map(|_| (rng.below(2001) as f32 - 1000.0) / 1000.0).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter_mut().for_each(|x| *x /= norm);
                Portion { label: label.clone(), text: text.join(" "), origin: format!("d{d}:{p}"), embedding: v }
            })
            .collect();
        documents.push(Document {
            id: format!("doc-{d}"),
            title: format!("Report {d}"),
            title_label: label.clone(),
            label,
            portions,
            origin: format!("d{d}"),
            version: 1,
        });
    }
    let mut collection = Collection::empty("bench");
    collection.upsert(documents, &mut Summary::default());
    collection
}

fn quantile(times: &mut [Duration], q: f64) -> Duration {
    times.sort();
    times[((times.len() as f64 - 1.0) * q) as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn main() {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let words = vocabulary();
    let policies = Policies::nato();
    let ceiling = policies.parse_label("NATO CONFIDENTIAL").unwrap();
    println!("| portions | index build | RSS after build | search p50 | search p99 |");
    println!("|---|---|---|---|---|");
    for size in [10_000, 100_000] {
        let collection = corpus(size, &mut rng);
        let before = rss_mib();
        let started = Instant::now();
        let index = LocalIndex::build(&collection).unwrap();
        let build = started.elapsed();
        let rss = rss_mib() - before;
        let readable = Readable::of(index.labels(), |l| ceiling.dominates(l));
        let mut times = Vec::new();
        for _ in 0..300 {
            let query: Vec<&str> = (0..6).map(|_| words[rng.below(words.len())].as_str()).collect();
            let query = query.join(" ");
            let v: Vec<f32> = (0..DIMENSIONS).map(|_| (rng.below(2001) as f32 - 1000.0) / 1000.0).collect();
            let started = Instant::now();
            let hits = index.search(&query, &v, &readable, 8).unwrap();
            times.push(started.elapsed());
            std::hint::black_box(hits);
        }
        let (p50, p99) = (quantile(&mut times, 0.5), quantile(&mut times, 0.99));
        println!("| {size} | {:.2} s | {rss:.0} MiB | {} | {} |", build.as_secs_f64(), ms(p50), ms(p99));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2");
    let Ok(embedder) = Embedder::load(&dir) else {
        println!("\n(the embedding model is not in {}; its rows are left out)", dir.display());
        return;
    };
    let mut times = Vec::new();
    for i in 0..100 {
        let query = format!("Where did the {} cross the {}?", SEED_WORDS[i % 30], SEED_WORDS[(i * 7) % 30]);
        let started = Instant::now();
        std::hint::black_box(embedder.embed(&[&query]).unwrap());
        times.push(started.elapsed());
    }
    println!("\n| embedding | p50 | p99 | rate |");
    println!("|---|---|---|---|");
    let (p50, p99) = (quantile(&mut times, 0.5), quantile(&mut times, 0.99));
    println!("| a query (8 words) | {} | {} | |", ms(p50), ms(p99));
    let portions: Vec<String> =
        (0..256).map(|_| (0..40).map(|_| SEED_WORDS[rng.below(30)]).collect::<Vec<_>>().join(" ") + ".").collect();
    let texts: Vec<&str> = portions.iter().map(String::as_str).collect();
    let started = Instant::now();
    embedder.embed(&texts).unwrap();
    let elapsed = started.elapsed();
    println!(
        "| 256 portions of 40 words, batches of 32 | | | {:.0} portions/s |",
        texts.len() as f64 / elapsed.as_secs_f64()
    );
}
