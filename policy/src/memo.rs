//! A bounded memory of results worth keeping (verified signatures, prepared
//! plans), by text key. When full it starts over, so a stream of distinct
//! keys, hostile or not, holds at most `capacity` entries.

use std::collections::HashMap;
use std::sync::Mutex;

/// Values by text key, at most `capacity` of them.
#[derive(Debug)]
pub struct Memo<V> {
    entries: Mutex<HashMap<String, V>>,
    capacity: usize,
}

impl<V: Clone> Memo<V> {
    /// An empty memory of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// A copy of the value kept under `key`.
    pub fn get(&self, key: &str) -> Option<V> {
        self.entries.lock().ok()?.get(key).cloned()
    }

    /// Keeps `value` under `key`, forgetting everything first when full.
    pub fn insert(&self, key: &str, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity {
                entries.clear();
            }
            entries.insert(key.to_owned(), value);
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_values_and_starts_over_when_full() {
        let memo = Memo::new(3);
        for (i, key) in ["a", "b", "c"].iter().enumerate() {
            memo.insert(key, i);
        }
        assert_eq!((memo.get("b"), memo.len()), (Some(1), 3));
        memo.insert("d", 3);
        assert_eq!(
            (memo.get("a"), memo.get("d"), memo.len()),
            (None, Some(3), 1)
        );
        memo.clear();
        assert!(memo.is_empty());
    }
}
