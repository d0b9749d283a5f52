//! Answers remembered for a while, by key: the audit rows of repeated reads ([`super::repeats`]) and the
//! rights rechecks of long-lived views ([`super::revoke`]). An answer is read back only while it is
//! younger than the reader asks. Memory is bounded: at `max_keys`, the entries older than `keep` go first,
//! and when that is not enough, all (forgetting costs a repeated lookup, never a wrong answer).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Recent<K, V> {
    map: Mutex<HashMap<K, (Instant, V)>>,
    keep: Duration,
    max_keys: usize,
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    pub fn new(keep: Duration, max_keys: usize) -> Self {
        Recent {
            map: Mutex::new(HashMap::new()),
            keep,
            max_keys,
        }
    }

    /// The answer for `k` if it was put less than `fresh` before `now`.
    pub fn get(&self, k: &K, fresh: Duration, now: Instant) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(k)
            .filter(|(at, _)| now.saturating_duration_since(*at) < fresh)
            .map(|(_, v)| v.clone())
    }

    /// Remembers `v` for `k` as of `now`.
    pub fn put(&self, k: K, v: V, now: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max_keys {
            map.retain(|_, (at, _)| now.saturating_duration_since(*at) < self.keep);
            if map.len() >= self.max_keys {
                map.clear();
            }
        }
        map.insert(k, (now, v));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
