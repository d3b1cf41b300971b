//! A bounded map for the authority's caches, looked up without building a key.
//!
//! A lookup hashes the parts of a key where they lie and compares candidates
//! in full, so a hit allocates nothing; only an insert owns its key. When the
//! map is full, each insert drops the oldest entry (see [`Bounded::new`]):
//! every entry can be rebuilt, and dropping one at a time spreads the cost of
//! freeing them instead of emptying thousands at once inside one request.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;

/// Hashes with a per-process random seed; keys are compared in full, never by hash alone.
type Hasher = foldhash::quality::RandomState;

pub(crate) struct Bounded<K, V> {
    hasher: Hasher,
    limit: usize,
    entries: Mutex<Entries<K, V>>,
}

struct Entries<K, V> {
    /// Keys and values by the hash of the key, oldest first within a hash.
    by_hash: HashMap<u64, Vec<(K, V)>, Hasher>,
    /// The hash of every stored key, oldest first.
    order: VecDeque<u64>,
}

impl<K, V: Clone> Bounded<K, V> {
    /// A map that holds at most `limit` keys.
    pub(crate) fn new(limit: usize) -> Self {
        let entries = Entries { by_hash: HashMap::default(), order: VecDeque::new() };
        Self { hasher: Hasher::default(), limit, entries: Mutex::new(entries) }
    }

    /// The value stored for the key that `view` is a borrowed view of, and that `matches`; else
    /// `make`'s value, stored under `owned()`. An error from `make` is returned and nothing is stored.
    ///
    /// `view` (the key's parts, or references to them) is what is hashed: every caller of one map
    /// must hash the same view of a key.
    pub(crate) fn get_or_try_insert<E>(
        &self,
        view: impl Hash,
        matches: impl Fn(&K) -> bool,
        owned: impl FnOnce() -> K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        let hash = self.hash(view);
        if let Some(value) = self.get(hash, matches) {
            return Ok(value);
        }
        let value = make()?;
        self.insert(hash, owned(), value.clone());
        Ok(value)
    }

    fn hash(&self, view: impl Hash) -> u64 {
        self.hasher.hash_one(view)
    }

    /// The value stored under `hash` whose key `matches`.
    fn get(&self, hash: u64, matches: impl Fn(&K) -> bool) -> Option<V> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.by_hash.get(&hash)?.iter().find(|(key, _)| matches(key)).map(|(_, value)| value.clone())
    }

    /// Stores `value` under `key`, whose hash is `hash`, dropping the oldest key if the map is full.
    fn insert(&self, hash: u64, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.order.len() >= self.limit
            && let Some(oldest) = entries.order.pop_front()
            && let Some(keys) = entries.by_hash.get_mut(&oldest)
        {
            keys.remove(0);
            if keys.is_empty() {
                entries.by_hash.remove(&oldest);
            }
        }
        entries.by_hash.entry(hash).or_default().push((key, value));
        entries.order.push_back(hash);
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
    fn makes_a_value_once_and_never_stores_an_error() {
        let map: Bounded<String, u32> = Bounded::new(8);
        let made = std::cell::Cell::new(0);
        let ask = |result: Result<u32, ()>| {
            map.get_or_try_insert(
                "k",
                |key| key == "k",
                || "k".to_owned(),
                || {
                    made.set(made.get() + 1);
                    result
                },
            )
        };
        assert_eq!(ask(Err(())), Err(()));
        assert_eq!(ask(Ok(7)), Ok(7));
        // Found by its borrowed view: `make` is not called again, and its other result is ignored.
        assert_eq!(ask(Ok(8)), Ok(7));
        assert_eq!(made.get(), 2);
    }

    #[test]
    fn drops_the_oldest_key_when_full() {
        let map: Bounded<u32, u32> = Bounded::new(2);
        for key in 0..3u32 {
            map.insert(map.hash(key), key, key * 10);
        }
        // The third insert found two keys stored and dropped the first.
        assert_eq!(map.get(map.hash(0u32), |k| *k == 0), None);
        assert_eq!(map.get(map.hash(1u32), |k| *k == 1), Some(10));
        assert_eq!(map.get(map.hash(2u32), |k| *k == 2), Some(20));
    }

    #[test]
    fn drops_the_oldest_of_colliding_keys_first() {
        let map: Bounded<u32, u32> = Bounded::new(2);
        // Three keys under one hash, as if they collided: the first is dropped, the others stay.
        for key in 0..3u32 {
            map.insert(7, key, key * 10);
        }
        assert_eq!(map.get(7, |k| *k == 0), None);
        assert_eq!(map.get(7, |k| *k == 1), Some(10));
        assert_eq!(map.get(7, |k| *k == 2), Some(20));
        // A fourth under another hash drops the second; the map never holds more than two.
        map.insert(8, 3, 30);
        assert_eq!(map.get(7, |k| *k == 1), None);
        assert_eq!(map.get(7, |k| *k == 2), Some(20));
        assert_eq!(map.get(8, |k| *k == 3), Some(30));
    }
}
