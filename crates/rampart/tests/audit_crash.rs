//! Crash safety of the audit log: the real binary under concurrent load is
//! killed with SIGKILL at random moments, again and again, and restarted each
//! time. Afterwards every answer a client received whole has its entry in the
//! log, and the log verifies. And a site restarted on a log of a million
//! entries serves without reading them.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use futures_util::StreamExt;
use rampart_audit::entry::{Entry, Phase};
use rampart_audit::keys;
use rampart_audit::log::Log;
use rampart_audit::storage::FsStorage;
use rampart_audit::verify;
use serde_json::json;

const KILLS: usize = 60;
const CLIENTS: usize = 6;

/// A small xorshift generator: the seed is printed, so a failing run can be replayed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What the clients saw succeed: ids of whole answers and of whole streams.
#[derive(Default)]
struct Seen {
    answers: HashSet<String>,
    streams: HashSet<String>,
}

async fn client_loop(url: String, stream: bool, seen: Arc<Mutex<Seen>>) {
    let client = reqwest::Client::new();
    let body = json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    // Ends when the server is killed: every request after that fails.
    loop {
        let Ok(response) = client.post(&url).json(&body).send().await else { return };
        if response.status() != 200 {
            continue;
        }
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        let mut received = Vec::new();
        let mut chunks = response.bytes_stream();
        let mut whole = true;
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => received.extend_from_slice(&chunk),
                Err(_) => whole = false,
            }
        }
        if !whole {
            return;
        }
        let mut seen = seen.lock().unwrap();
        if stream {
            if String::from_utf8_lossy(&received).contains("data: [DONE]") {
                seen.streams.insert(id);
            }
        } else if serde_json::from_slice::<serde_json::Value>(&received).is_ok() {
            seen.answers.insert(id);
        }
    }
}

/// Starts rampart in front of `upstream` with its audit log in `log_dir`, signed with `key`.
async fn start_with_log(
    work: &std::path::Path,
    upstream: std::net::SocketAddr,
    log_dir: &std::path::Path,
    key: &std::path::Path,
) -> Rampart {
    let port = free_port();
    let config = format!(
        "{}{}\n[audit]\ndir = \"{}\"\nsigning_key = \"{}\"\n",
        server_section("").replace("{port}", &port.to_string()),
        backend("upstream", upstream, &["m"], ""),
        log_dir.display(),
        key.display()
    );
    let path = work.join("rampart.toml");
    std::fs::write(&path, config).unwrap();
    Rampart::start_file(&path, port, tempfile::tempdir().unwrap(), "http").await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_answer_survives_kill_9() {
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    println!("seed {seed}");
    let mut random = Random(seed);
    let (_upstream, addr) = mock("upstream").await;
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("audit.key");
    let keygen = std::process::Command::new(binary())
        .args(["audit", "keygen", "--name", "test.example/crash", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let vkey = String::from_utf8(keygen.stdout).unwrap().trim().to_owned();
    let log_dir = work.path().join("audit");
    let seen = Arc::new(Mutex::new(Seen::default()));

    for round in 0..=KILLS {
        let mut rampart = start_with_log(work.path(), addr, &log_dir, &key).await;
        if round == KILLS {
            break; // The last start proves recovery; the log is checked below.
        }
        let url = rampart.url("/v1/chat/completions");
        let clients: Vec<_> =
            (0..CLIENTS).map(|n| tokio::spawn(client_loop(url.clone(), n % 2 == 1, Arc::clone(&seen)))).collect();
        tokio::time::sleep(Duration::from_millis(20 + random.below(300))).await;
        rampart.child.kill().unwrap(); // SIGKILL
        rampart.child.wait().unwrap();
        for client in clients {
            client.await.unwrap();
        }
    }

    let storage = FsStorage::new(&log_dir).unwrap();
    let report = verify::verify(&storage, &vkey, &mut |_, _| {}).expect("the log verifies after every crash");
    let mut complete = HashSet::new();
    let mut ended = HashSet::new();
    verify::for_each_entry(&storage, report.size, 0, &mut |_, bytes| {
        let entry = Entry::decode(bytes).unwrap();
        match (entry.phase, entry.status, entry.code.as_deref()) {
            (Phase::Complete, 200, None) => drop(complete.insert(entry.request_id)),
            (Phase::End, 200, None) => drop(ended.insert(entry.request_id)),
            _ => {}
        }
    })
    .unwrap();
    let seen = seen.lock().unwrap();
    println!("{} entries; {} answers and {} streams acknowledged", report.size, seen.answers.len(), seen.streams.len());
    assert!(seen.answers.len() > KILLS && seen.streams.len() > KILLS, "the load generator got answers through");
    let lost: Vec<_> = seen.answers.difference(&complete).collect();
    assert!(lost.is_empty(), "answers acknowledged but not in the log: {lost:?}");
    let lost: Vec<_> = seen.streams.difference(&ended).collect();
    assert!(lost.is_empty(), "streams completed but not in the log: {lost:?}");
}

/// A log of `size` entries, signed with the key at `key`, written in `dir` as a long-running site's would be.
fn fill_log(dir: &std::path::Path, key: &std::path::Path, size: u64) {
    let skey = keys::read_signing_key(key).unwrap();
    let mut log = Log::open(FsStorage::new(dir).unwrap(), skey).unwrap();
    let mut next = 0;
    while next < size {
        let batch: Vec<Vec<u8>> = (next..size.min(next + 4096))
            .map(|n| format!("{{\"v\":1,\"request_id\":\"{n:032x}\",\"action\":\"infer\"}}").into_bytes())
            .collect();
        log.commit(&batch).unwrap();
        log.publish().unwrap();
        next += batch.len() as u64;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_restarts_on_a_million_entry_log_without_reading_its_entries() {
    const SIZE: u64 = 1_000_000;
    let (_upstream, addr) = mock("upstream").await;
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("audit.key");
    cli(&[&"audit", &"keygen", &"--name", &"test.example/restart", &"--out", &key]);
    let log_dir = work.path().join("audit");
    fill_log(&log_dir, &key, SIZE);
    // Every full entry bundle goes (as if archived elsewhere): start-up must not need one.
    let mut removed = 0;
    let mut dirs = vec![log_dir.join("tile/entries")];
    while let Some(dir) = dirs.pop() {
        for item in std::fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                if !path.to_string_lossy().ends_with(".p") {
                    dirs.push(path);
                }
            } else {
                std::fs::remove_file(path).unwrap();
                removed += 1;
            }
        }
    }
    assert_eq!(removed, SIZE / 256, "every full bundle was removed");

    let rampart = start_with_log(work.path(), addr, &log_dir, &key).await;
    rampart.wait_ready().await;
    let answer = reqwest::Client::new()
        .post(rampart.url("/v1/chat/completions"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", rampart.logs());
    // The answer's entry is appended after the million, and published.
    let storage = FsStorage::new(&log_dir).unwrap();
    assert!(eventually(10, || verify::checkpoint_size(&storage).unwrap() == SIZE + 1).await, "{}", rampart.logs());
}
