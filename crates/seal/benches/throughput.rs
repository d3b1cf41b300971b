//! Seal and unseal throughput on one core, from and to memory (`/dev/shm`
//! when present) so that the disk does not set the pace: sealing a file,
//! decrypting it to nowhere (the cipher alone), and decrypting it into an
//! anonymous memory file while hashing it (the serving path), twice.
//!
//!     cargo bench -p rampart-seal --bench throughput [-- MiB]

use std::time::Instant;

use rampart_seal::kek::Kek;
use rampart_seal::load;
use rampart_seal::sealed::{self, SealedModel};

fn main() {
    let mib: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1024);
    let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
    let dir = tempfile::tempdir_in(base).expect("a temporary directory");
    let model = dir.path().join("model");
    std::fs::create_dir(&model).expect("model dir");
    let mut data = vec![0u8; mib << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(model.join("weights.gguf"), &data).expect("write");
    drop(data);
    let kek = Kek::generate(&dir.path().join("kek")).expect("kek");
    let sealed_dir = dir.path().join("sealed");
    let gb = (mib << 20) as f64 / 1e9;
    let mut rows = Vec::new();

    let started = Instant::now();
    sealed::seal(&model, &kek, &sealed_dir, &mut |_| {}, &mut |_| {}).expect("seal");
    rows.push(("seal (read, encrypt, write, fsync)".to_owned(), started.elapsed().as_secs_f64()));

    let opened = SealedModel::open(&sealed_dir, &kek).expect("open");
    let started = Instant::now();
    opened.decrypt(0, &mut std::io::sink(), &mut |_| {}).expect("decrypt");
    rows.push(("unseal to nowhere (read, decrypt)".to_owned(), started.elapsed().as_secs_f64()));

    // The first run takes memory this process never touched; on a virtual machine whose host backs
    // guest memory lazily that first touch dominates. The second reuses the pages the first freed.
    for run in ["first run", "again"] {
        let started = Instant::now();
        let (memory, _) = load::sealed_into_memory(&sealed_dir, &kek, None, &mut |_| {}).expect("load");
        let seconds = started.elapsed().as_secs_f64();
        drop(memory);
        rows.push((format!("unseal into a memory file, hashing on a 2nd thread (serving path), {run}"), seconds));
    }

    println!("{mib} MiB in {base}; one thread, and a second one hashing in the serving path\n");
    println!("| operation | seconds | GB/s |");
    println!("|---|---|---|");
    for (name, seconds) in rows {
        println!("| {name} | {seconds:.3} | {:.2} |", gb / seconds);
    }
}
