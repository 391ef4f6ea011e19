//! A small bounded map whose entries expire: the per-isolate memo in front of KV for hot keys.
//!
//! Invariants: an expired entry is never returned; the map never holds more than `capacity`
//! entries (inserting into a full map first drops expired entries, then the soonest to expire).

use std::collections::HashMap;
use std::hash::Hash;

pub struct TtlCache<K, V> {
    entries: HashMap<K, (V, i64)>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, key: &K, now_ms: i64) -> Option<V> {
        self.entries
            .get(key)
            .filter(|(_, exp)| *exp > now_ms)
            .map(|(v, _)| v.clone())
    }

    pub fn insert(&mut self, key: K, value: V, now_ms: i64, ttl_ms: i64) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (_, exp)| *exp > now_ms);
            if self.entries.len() >= self.capacity {
                if let Some(k) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, exp))| *exp)
                    .map(|(k, _)| k.clone())
                {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, (value, now_ms + ttl_ms));
    }

    pub fn remove(&mut self, key: &K) {
        self.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::TtlCache;

    #[test]
    fn entries_expire() {
        let mut c = TtlCache::new(10);
        c.insert("a", 1, 0, 100);
        assert_eq!(c.get(&"a", 99), Some(1));
        assert_eq!(c.get(&"a", 100), None);
        c.remove(&"a");
        assert!(c.is_empty());
    }

    #[test]
    fn capacity_is_a_hard_bound() {
        let mut c = TtlCache::new(3);
        for (i, k) in ["a", "b", "c"].into_iter().enumerate() {
            c.insert(k, i, 0, 100 + i as i64);
        }
        c.insert("d", 9, 0, 500);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&"a", 1), None, "soonest to expire was dropped");
        assert_eq!(c.get(&"d", 1), Some(9));
        // Expired entries go first: at 103, "b" (101) and "c" (102) have expired.
        c.insert("e", 1, 103, 10);
        assert_eq!(c.len(), 2);
        assert_eq!((c.get(&"d", 103), c.get(&"e", 103)), (Some(9), Some(1)));
    }
}
