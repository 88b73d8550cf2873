//! The connector's storage seam: a small key-value trait with named trees,
//! implemented on sled and in memory. Typed registries sit on top.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use crate::{Error, Result};

/// Named trees of ordered byte keys and values.
pub trait Store: Send + Sync {
    /// The value at `key` in `tree`.
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Sets `key` to `value`; durable when it returns.
    fn put(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<()>;
    /// Removes `key`; durable when it returns.
    fn remove(&self, tree: &str, key: &[u8]) -> Result<()>;
    /// Every entry of `tree`, in key order.
    fn scan(&self, tree: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
}

/// The sled implementation.
pub struct SledStore {
    db: sled::Db,
    path: std::path::PathBuf,
}

impl SledStore {
    /// Opens (or creates) the store at `path`.
    /// A store locked by another handle is waited for (see [`open_sled`]).
    pub fn open(path: &Path) -> Result<Self> {
        let db = open_sled(&sled::Config::new().path(path)).map_err(|e| {
            if is_locked(&e) {
                Error::Storage(format!(
                    "the store `{}` is in use (is the connector running?)",
                    path.display()
                ))
            } else {
                storage(&e)
            }
        })?;
        Ok(Self {
            db,
            path: path.to_owned(),
        })
    }

    /// The durable replay guard on this store's `replay` tree, with the
    /// ids that expired before `now` removed (see [`crate::replay`]).
    pub fn replay_guard(&self, now: i64) -> Result<crate::replay::SledReplayGuard> {
        let tree = self.tree(crate::replay::REPLAY_TREE)?;
        Ok(crate::replay::SledReplayGuard::open(tree, &self.path, now)?)
    }

    fn tree(&self, name: &str) -> Result<sled::Tree> {
        self.db.open_tree(name).map_err(|e| storage(&e))
    }
}

use catalog::store::{is_locked, open_sled};

fn storage(e: &dyn std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

impl Store for SledStore {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree(tree)?
            .get(key)
            .map_err(|e| storage(&e))?
            .map(|v| v.to_vec()))
    }

    fn put(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let t = self.tree(tree)?;
        t.insert(key, value).map_err(|e| storage(&e))?;
        t.flush().map_err(|e| storage(&e))?;
        Ok(())
    }

    fn remove(&self, tree: &str, key: &[u8]) -> Result<()> {
        let t = self.tree(tree)?;
        t.remove(key).map_err(|e| storage(&e))?;
        t.flush().map_err(|e| storage(&e))?;
        Ok(())
    }

    fn scan(&self, tree: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.tree(tree)?
            .iter()
            .map(|r| {
                r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| storage(&e))
            })
            .collect()
    }
}

/// The in-memory implementation (tests, the demo's throwaway stores).
#[derive(Default)]
pub struct MemoryStore {
    trees: Mutex<HashMap<String, Tree>>,
}

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Tree>) -> T) -> Result<T> {
        let mut guard = self
            .trees
            .lock()
            .map_err(|_| Error::Storage("the store lock is poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

impl Store for MemoryStore {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.with(|t| t.get(tree).and_then(|m| m.get(key).cloned()))
    }

    fn put(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.with(|t| {
            t.entry(tree.to_owned())
                .or_default()
                .insert(key.to_vec(), value.to_vec());
        })
    }

    fn remove(&self, tree: &str, key: &[u8]) -> Result<()> {
        self.with(|t| {
            if let Some(m) = t.get_mut(tree) {
                m.remove(key);
            }
        })
    }

    fn scan(&self, tree: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.with(|t| {
            t.get(tree)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        })
    }
}

/// Reads a JSON value from `tree` at `key`.
pub fn get_json<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    tree: &str,
    key: &str,
) -> Result<Option<T>> {
    match store.get(tree, key.as_bytes())? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Storage(format!("a stored `{tree}` entry is corrupt: {e}"))),
        None => Ok(None),
    }
}

/// Writes a JSON value to `tree` at `key`.
pub fn put_json<T: serde::Serialize>(
    store: &dyn Store,
    tree: &str,
    key: &str,
    value: &T,
) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Storage(e.to_string()))?;
    store.put(tree, key.as_bytes(), &bytes)
}

/// Every JSON value of `tree`.
pub fn scan_json<T: serde::de::DeserializeOwned>(store: &dyn Store, tree: &str) -> Result<Vec<T>> {
    store
        .scan(tree)?
        .into_iter()
        .map(|(_, v)| {
            serde_json::from_slice(&v)
                .map_err(|e| Error::Storage(format!("a stored `{tree}` entry is corrupt: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(store: &dyn Store) {
        put_json(store, "t", "b", &2).unwrap();
        put_json(store, "t", "a", &1).unwrap();
        assert_eq!(get_json::<i32>(store, "t", "a").unwrap(), Some(1));
        assert_eq!(
            scan_json::<i32>(store, "t").unwrap(),
            vec![1, 2],
            "key order"
        );
        store.remove("t", b"a").unwrap();
        assert_eq!(get_json::<i32>(store, "t", "a").unwrap(), None);
        assert_eq!(get_json::<i32>(store, "other", "a").unwrap(), None);
        store.put("t", b"bad", b"not json").unwrap();
        assert!(matches!(
            get_json::<i32>(store, "t", "bad"),
            Err(Error::Storage(_))
        ));
    }

    #[test]
    fn sled_and_memory_behave_alike() {
        let dir = tempfile::tempdir().unwrap();
        round_trip(&SledStore::open(dir.path()).unwrap());
        round_trip(&MemoryStore::new());
    }

    #[test]
    fn sled_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            put_json(&s, "t", "k", &vec![1, 2, 3]).unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            get_json::<Vec<i32>>(&s, "t", "k").unwrap(),
            Some(vec![1, 2, 3])
        );
    }
}
