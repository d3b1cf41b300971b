//! Rampart's tamper-evident audit log.
//!
//! Every decision Rampart makes is an entry in a Merkle tree (RFC 6962 hashing)
//! stored in the C2SP tlog-tiles layout, whose head is a C2SP checkpoint signed
//! as a C2SP signed note with Ed25519. Anyone holding the log's verifier key
//! can check offline that an entry is in the log and that the log only grew.
//! A batch of entries is durable once it is in the write-ahead [`journal`]
//! (one flush); the tiles and signed checkpoint are published behind it.
//! The log's files sit behind the [`storage::Storage`] interface, with a
//! filesystem driver ([`storage::FsStorage`]) and one in memory for tests
//! ([`memory::MemStorage`]).

pub mod digest;
mod edge;
pub mod entry;
pub mod journal;
pub mod keys;
pub mod log;
pub mod memory;
pub mod proof;
pub mod recorder;
pub mod serve;
mod spare;
pub mod storage;
pub mod tiles;
pub mod verify;

pub use tlog_tiles::Hash;

/// Helpers for this crate's unit tests.
#[cfg(test)]
mod test_support {
    use std::time::{Duration, Instant};

    /// Polls `done` until it holds; fails with `what` if it does not within `within`.
    pub(crate) fn wait_until(what: &str, within: Duration, done: impl Fn() -> bool) {
        let deadline = Instant::now() + within;
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
