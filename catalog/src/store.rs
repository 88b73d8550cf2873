//! Where the catalog keeps participants and publications: the
//! [`CatalogStore`] trait, [`SledStore`] (embedded, on disk) and
//! [`MemoryStore`] (for tests and throw-away catalogs).
//!
//! A publication is kept as its decoded record beside the provider's JWS,
//! so rebuilding the search index at start decodes records only and does no
//! signature work. Writing a publication or a withdrawal is atomic.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{DatasetKey, DatasetRecord, Participant, StoredDataset};
use crate::{Error, Result};

/// Storage of the catalog.
pub trait CatalogStore: Send + Sync {
    /// Saves (or replaces) a participant.
    fn put_participant(&self, participant: &Participant) -> Result<()>;
    /// The participant with `id`.
    fn participant(&self, id: &str) -> Result<Option<Participant>>;
    /// Every participant, by id.
    fn participants(&self) -> Result<Vec<Participant>>;
    /// Saves (or replaces) a publication.
    fn put_dataset(&self, dataset: &StoredDataset) -> Result<()>;
    /// The publication of `key`.
    fn dataset(&self, key: &DatasetKey) -> Result<Option<StoredDataset>>;
    /// Removes a publication and remembers `version` as withdrawn.
    fn remove_dataset(&self, key: &DatasetKey, version: u64) -> Result<()>;
    /// The last version of `key` withdrawn, if any.
    fn withdrawn_version(&self, key: &DatasetKey) -> Result<Option<u64>>;
    /// Calls `visit` with every publication's record, in key order.
    fn for_each_record(&self, visit: &mut dyn FnMut(DatasetRecord) -> Result<()>) -> Result<()>;
    /// Makes every write so far durable.
    fn flush(&self) -> Result<()>;
}

/// The store key of a dataset: provider, a zero byte, id (ids hold no
/// control characters).
fn key_bytes(key: &DatasetKey) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(key.provider.len() + key.id.len() + 1);
    bytes.extend_from_slice(key.provider.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(key.id.as_bytes());
    bytes
}

fn encode(value: &impl Serialize, what: &'static str) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| Error::Encode { what, source })
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Corrupt {
        what,
        source: Some(source),
    })
}

/// The sled store, in one database folder: tree `participants` (id ->
/// JSON) and tree `datasets`, where `d<key>` holds a publication (the
/// record's length as 4 bytes, the record as JSON, then the signed JWS) and
/// `w<key>` the last withdrawn version. Each change is one atomic write.
pub struct SledStore {
    db: sled::Db,
    participants: sled::Tree,
    datasets: sled::Tree,
}

const PUBLISHED: u8 = b'd';
const WITHDRAWN: u8 = b'w';

fn tagged(tag: u8, key: &DatasetKey) -> Vec<u8> {
    let mut bytes = vec![tag];
    bytes.extend(key_bytes(key));
    bytes
}

/// `len(record) ++ record ++ signed`.
fn encode_dataset(dataset: &StoredDataset) -> Result<Vec<u8>> {
    let record = encode(&dataset.record, "dataset record")?;
    let length = u32::try_from(record.len())
        .map_err(|_| Error::invalid("description", "is too large to store (over 4 GiB)"))?;
    let mut bytes = Vec::with_capacity(4 + record.len() + dataset.signed.len());
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(&record);
    bytes.extend_from_slice(dataset.signed.as_bytes());
    Ok(bytes)
}

/// The record and the signed part of a stored publication.
fn split_dataset(bytes: &[u8]) -> Result<(&[u8], &[u8])> {
    let corrupt = || Error::corrupt("publication");
    let (length, rest) = bytes.split_first_chunk::<4>().ok_or_else(corrupt)?;
    let length = usize::try_from(u32::from_be_bytes(*length)).map_err(|_| corrupt())?;
    if rest.len() < length {
        return Err(corrupt());
    }
    Ok(rest.split_at(length))
}

impl SledStore {
    /// Opens (or creates) the store in folder `path`; a store locked by
    /// another handle is waited for (see [`open_sled`]).
    pub fn open(path: &Path) -> Result<Self> {
        let db = open_sled(&sled::Config::new().path(path)).map_err(|source| Error::StoreOpen {
            path: path.to_path_buf(),
            source,
        })?;
        let tree = |name: &str| db.open_tree(name).map_err(Error::Storage);
        Ok(Self {
            participants: tree("participants")?,
            datasets: tree("datasets")?,
            db,
        })
    }
}

/// How long opening a locked sled database is retried: sled releases its
/// file lock a moment after the last handle of a closed database drops, so
/// a service restarted in the same process would otherwise find its own
/// store locked.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// How often it is tried meanwhile.
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// Opens the sled database `config` describes, retrying for up to
/// [`LOCK_WAIT`] while another handle holds its lock; then returns the
/// last error (see [`is_locked`]). Both services open their stores here.
pub fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            Err(e) if is_locked(&e) && Instant::now() < deadline => thread::sleep(LOCK_RETRY),
            done => return done,
        }
    }
}

/// Whether `error` says another handle holds the database's lock. sled
/// reports this as an I/O error of kind `Other` whose only mark is its
/// text, so the text is what is matched.
pub fn is_locked(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(e) if e.to_string().contains("could not acquire lock"))
}

impl CatalogStore for SledStore {
    fn put_participant(&self, participant: &Participant) -> Result<()> {
        self.participants
            .insert(
                participant.id.as_bytes(),
                encode(participant, "participant")?,
            )
            .map_err(Error::Storage)?;
        Ok(())
    }

    fn participant(&self, id: &str) -> Result<Option<Participant>> {
        let found = self
            .participants
            .get(id.as_bytes())
            .map_err(Error::Storage)?;
        found.map(|bytes| decode(&bytes, "participant")).transpose()
    }

    fn participants(&self) -> Result<Vec<Participant>> {
        let mut all = Vec::new();
        for item in &self.participants {
            let (_, bytes) = item.map_err(Error::Storage)?;
            all.push(decode(&bytes, "participant")?);
        }
        Ok(all)
    }

    fn put_dataset(&self, dataset: &StoredDataset) -> Result<()> {
        let key = tagged(PUBLISHED, &dataset.record.key());
        self.datasets
            .insert(key, encode_dataset(dataset)?)
            .map_err(Error::Storage)?;
        Ok(())
    }

    fn dataset(&self, key: &DatasetKey) -> Result<Option<StoredDataset>> {
        let Some(bytes) = self
            .datasets
            .get(tagged(PUBLISHED, key))
            .map_err(Error::Storage)?
        else {
            return Ok(None);
        };
        let (record, signed) = split_dataset(&bytes)?;
        Ok(Some(StoredDataset {
            record: decode(record, "dataset record")?,
            signed: String::from_utf8(signed.to_vec())
                .map_err(|_| Error::corrupt("signed description"))?,
        }))
    }

    fn remove_dataset(&self, key: &DatasetKey, version: u64) -> Result<()> {
        let mut batch = sled::Batch::default();
        batch.remove(tagged(PUBLISHED, key));
        batch.insert(tagged(WITHDRAWN, key), &version.to_be_bytes());
        self.datasets.apply_batch(batch).map_err(Error::Storage)
    }

    fn withdrawn_version(&self, key: &DatasetKey) -> Result<Option<u64>> {
        let found = self
            .datasets
            .get(tagged(WITHDRAWN, key))
            .map_err(Error::Storage)?;
        found
            .map(|bytes| {
                <[u8; 8]>::try_from(bytes.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| Error::corrupt("withdrawn version"))
            })
            .transpose()
    }

    fn for_each_record(&self, visit: &mut dyn FnMut(DatasetRecord) -> Result<()>) -> Result<()> {
        for item in self.datasets.scan_prefix([PUBLISHED]) {
            let (_, bytes) = item.map_err(Error::Storage)?;
            let (record, _) = split_dataset(&bytes)?;
            visit(decode(record, "dataset record")?)?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map_err(Error::Storage)?;
        Ok(())
    }
}

/// An in-memory store; everything is lost when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    participants: BTreeMap<String, Participant>,
    datasets: BTreeMap<DatasetKey, StoredDataset>,
    withdrawn: BTreeMap<DatasetKey, u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CatalogStore for MemoryStore {
    fn put_participant(&self, participant: &Participant) -> Result<()> {
        self.state()
            .participants
            .insert(participant.id.clone(), participant.clone());
        Ok(())
    }

    fn participant(&self, id: &str) -> Result<Option<Participant>> {
        Ok(self.state().participants.get(id).cloned())
    }

    fn participants(&self) -> Result<Vec<Participant>> {
        Ok(self.state().participants.values().cloned().collect())
    }

    fn put_dataset(&self, dataset: &StoredDataset) -> Result<()> {
        self.state()
            .datasets
            .insert(dataset.record.key(), dataset.clone());
        Ok(())
    }

    fn dataset(&self, key: &DatasetKey) -> Result<Option<StoredDataset>> {
        Ok(self.state().datasets.get(key).cloned())
    }

    fn remove_dataset(&self, key: &DatasetKey, version: u64) -> Result<()> {
        let mut state = self.state();
        state.datasets.remove(key);
        state.withdrawn.insert(key.clone(), version);
        Ok(())
    }

    fn withdrawn_version(&self, key: &DatasetKey) -> Result<Option<u64>> {
        Ok(self.state().withdrawn.get(key).copied())
    }

    fn for_each_record(&self, visit: &mut dyn FnMut(DatasetRecord) -> Result<()>) -> Result<()> {
        let records: Vec<DatasetRecord> = self
            .state()
            .datasets
            .values()
            .map(|d| d.record.clone())
            .collect();
        records.into_iter().try_for_each(visit)
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OfferRecord;
    use crate::sample::SampleProvider;
    use chrono::Utc;
    use policy::model::Access;

    fn stored(provider: &SampleProvider, id: &str, version: u64) -> StoredDataset {
        let policy = provider.policy(id, &["research"], Access::Rows);
        let record = DatasetRecord {
            provider: provider.id.clone(),
            id: id.to_owned(),
            version,
            title: format!("title of {id}"),
            description: String::new(),
            keywords: Vec::new(),
            sector: None,
            columns: Vec::new(),
            row_count: 1,
            updated_at: Utc::now(),
            endpoint: "http://p.example".into(),
            offers: vec![OfferRecord {
                id: "o".into(),
                issued_at: 0,
                endpoint: "http://p.example".into(),
                policy_hash: "h".into(),
                policy,
            }],
            published_at: Utc::now(),
            signer_key_id: "kid".into(),
        };
        StoredDataset {
            record,
            signed: format!("jws-of-{id}-{version}"),
        }
    }

    fn behaves_as_a_store(store: &dyn CatalogStore) {
        let north = SampleProvider::new("north").unwrap();
        let south = SampleProvider::new("south").unwrap();
        let a = stored(&south, "a", 1);
        let b = stored(&north, "b", 1);
        let c = stored(&north, "c", 2);
        for dataset in [&a, &b, &c] {
            store.put_dataset(dataset).unwrap();
        }
        assert_eq!(store.dataset(&b.record.key()).unwrap().as_ref(), Some(&b));
        let mut keys = Vec::new();
        store
            .for_each_record(&mut |r| {
                keys.push(r.key().to_string());
                Ok(())
            })
            .unwrap();
        assert_eq!(keys, ["north/b", "north/c", "south/a"]);
        store.remove_dataset(&c.record.key(), 3).unwrap();
        assert_eq!(store.dataset(&c.record.key()).unwrap(), None);
        assert_eq!(store.withdrawn_version(&c.record.key()).unwrap(), Some(3));
        assert_eq!(store.withdrawn_version(&b.record.key()).unwrap(), None);
        let mut count = 0;
        store
            .for_each_record(&mut |_| {
                count += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(count, 2);
        assert!(store.participants().unwrap().is_empty());
        store.flush().unwrap();
    }

    #[test]
    fn memory_and_sled_stores_behave_alike() {
        behaves_as_a_store(&MemoryStore::new());
        let dir = tempfile::tempdir().unwrap();
        behaves_as_a_store(&SledStore::open(dir.path()).unwrap());
    }

    #[test]
    fn sled_store_refuses_corrupt_publications() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        // A length past the end, then a record that is not JSON.
        let cases: [(&str, &[u8], &str, bool); 2] = [
            ("x", &[0, 0, 0, 9, b'{'], "publication", false),
            ("y", &[0, 0, 0, 1, b'{'], "dataset record", true),
        ];
        for (id, bytes, part, from_json) in cases {
            let key = DatasetKey::new("north", id);
            store
                .datasets
                .insert(tagged(PUBLISHED, &key), bytes)
                .unwrap();
            match store.dataset(&key) {
                Err(Error::Corrupt { what, source }) => {
                    assert_eq!((what, source.is_some()), (part, from_json));
                }
                other => panic!("expected a corrupt {part}, got {other:?}"),
            }
        }
        assert!(store.for_each_record(&mut |_| Ok(())).is_err());
    }
}
