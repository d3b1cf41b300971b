//! A bounded map for the authority's caches, looked up without building a key.
//!
//! A lookup hashes the parts of a key where they lie and compares candidates
//! in full, so a hit allocates nothing; only an insert owns its key. The map is
//! emptied when it is full (see [`Bounded::new`]): every entry can be rebuilt,
//! and a full map means the working set is larger than the limit.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;

/// Hashes with a per-process random seed; keys are compared in full, never by hash alone.
type Hasher = foldhash::quality::RandomState;

pub(crate) struct Bounded<K, V> {
    hasher: Hasher,
    limit: usize,
    entries: Mutex<Buckets<K, V>>,
}

/// Keys and values by the hash of the key.
type Buckets<K, V> = HashMap<u64, Vec<(K, V)>, Hasher>;

impl<K, V: Clone> Bounded<K, V> {
    /// A map that holds keys under at most `limit` hashes (as many keys, but for collisions).
    pub(crate) fn new(limit: usize) -> Self {
        Self { hasher: Hasher::default(), limit, entries: Mutex::new(HashMap::default()) }
    }

    /// The hash to look up and store a key under. A caller may hash a borrowed view of the key
    /// (its parts, or references to them) as long as its lookups and inserts hash the same view.
    pub(crate) fn hash(&self, key: impl Hash) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The value stored under `hash` whose key `matches`.
    pub(crate) fn get(&self, hash: u64, matches: impl Fn(&K) -> bool) -> Option<V> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&hash)?.iter().find(|(key, _)| matches(key)).map(|(_, value)| value.clone())
    }

    /// Stores `value` under `key`, whose hash is `hash`.
    pub(crate) fn insert(&self, hash: u64, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.limit {
            entries.clear();
        }
        entries.entry(hash).or_default().push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_parts_and_tells_colliding_keys_apart() {
        let map: Bounded<(String, u8), &str> = Bounded::new(8);
        let hash = map.hash((&"a".to_owned(), &1u8));
        assert_eq!(hash, map.hash(&("a".to_owned(), 1u8)));
        map.insert(hash, ("a".into(), 1), "first");
        // Two keys stored under one hash (as if they collided) stay apart.
        map.insert(hash, ("b".into(), 2), "second");
        assert_eq!(map.get(hash, |(s, n)| s == "a" && *n == 1), Some("first"));
        assert_eq!(map.get(hash, |(s, n)| s == "b" && *n == 2), Some("second"));
        assert_eq!(map.get(hash, |(s, _)| s == "c"), None);
        assert_eq!(map.get(hash.wrapping_add(1), |_| true), None);
    }

    #[test]
    fn empties_itself_when_full() {
        let map: Bounded<u32, u32> = Bounded::new(2);
        for key in 0..3u32 {
            map.insert(map.hash(key), key, key * 10);
        }
        // The third insert found two hashes stored and started afresh.
        assert_eq!(map.get(map.hash(0u32), |k| *k == 0), None);
        assert_eq!(map.get(map.hash(2u32), |k| *k == 2), Some(20));
    }
}
