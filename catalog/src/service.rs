//! The catalog service: registry, publication, search, openness lists and
//! the DCAT export over one store and one in-memory search index.
//!
//! Every change is verified first, then written to the store, then to the
//! index; publications and withdrawals are serialized, so the version
//! checks cannot race. A refused request changes nothing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use policy::credential::TrustedAuthority;
use policy::keys::PublicKey;
use serde_json::Value;

use crate::config::CatalogConfig;
use crate::model::{
    DatasetKey, DatasetRecord, Participant, PublishReceipt, PublishedDataset, UnpublishReceipt,
};
use crate::openness::{OpennessList, openness_list, render_html};
use crate::publish::{claimed_signer, verify_publication, verify_unpublish};
use crate::registry::{require_active, verify_registration};
use crate::search::{SearchIndex, SearchPage, SearchQuery};
use crate::store::CatalogStore;
use crate::{Error, Result, dcat};

/// The settings a running catalog needs (from [`CatalogConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogSettings {
    /// Title of the DCAT export.
    pub title: String,
    /// Largest search page.
    pub max_page_size: usize,
    /// Clock-skew tolerance for credentials, in seconds.
    pub clock_skew_secs: i64,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self::from(&CatalogConfig::default())
    }
}

impl From<&CatalogConfig> for CatalogSettings {
    fn from(config: &CatalogConfig) -> Self {
        Self {
            title: config.title.clone(),
            max_page_size: config.max_page_size,
            clock_skew_secs: config.clock_skew_secs,
        }
    }
}

/// The shared catalog.
pub struct Catalog {
    store: Arc<dyn CatalogStore>,
    index: RwLock<SearchIndex>,
    /// Keys of registered participants (current and earlier ones): a cheap
    /// filter before any signature work on a publication.
    keys: RwLock<HashSet<PublicKey>>,
    writer: Mutex<()>,
    authority: TrustedAuthority,
    settings: CatalogSettings,
}

impl Catalog {
    /// A catalog over `store`, trusting `authority`; rebuilds the search
    /// index from the store.
    pub fn open(
        store: Arc<dyn CatalogStore>,
        authority: TrustedAuthority,
        settings: CatalogSettings,
    ) -> Result<Self> {
        let mut index = SearchIndex::new();
        store.for_each_record(&mut |record| {
            index.insert(&record);
            Ok(())
        })?;
        let keys = store
            .participants()?
            .into_iter()
            .map(|p| p.public_key)
            .collect();
        Ok(Self {
            store,
            index: RwLock::new(index),
            keys: RwLock::new(keys),
            writer: Mutex::new(()),
            authority,
            settings,
        })
    }

    /// Number of published datasets.
    pub fn len(&self) -> usize {
        self.index().len()
    }

    /// Whether nothing is published.
    pub fn is_empty(&self) -> bool {
        self.index().is_empty()
    }

    /// Registers the participant a membership credential admits.
    pub fn register(&self, credential: &str) -> Result<Participant> {
        let now = Utc::now().timestamp();
        let participant = verify_registration(
            credential,
            &self.authority,
            now,
            self.settings.clock_skew_secs,
        )?;
        let _writing = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = self.store.participant(&participant.id)?
            && known.issued_at > participant.issued_at
        {
            return Err(Error::Conflict(format!(
                "`{}` is registered with a newer credential",
                participant.id
            )));
        }
        self.store.put_participant(&participant)?;
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(participant.public_key);
        Ok(participant)
    }

    /// A registered participant.
    pub fn participant(&self, id: &str) -> Result<Participant> {
        self.store.participant(id)?.ok_or_else(|| Error::NotFound {
            what: "participant",
            id: id.to_owned(),
        })
    }

    /// Verifies and publishes a signed description (a JWS), replacing the
    /// previous version.
    pub fn publish(&self, signed: &str) -> Result<PublishReceipt> {
        let now = Utc::now();
        self.require_known_signer(signed, "dataset description")?;
        let stored = verify_publication(signed, |id| self.active_participant(id, now), now)?;
        let record = &stored.record;
        let key = record.key();
        let _writing = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.index().version_of(&key);
        let withdrawn = self.store.withdrawn_version(&key)?;
        let floor = current.max(withdrawn);
        if let Some(floor) = floor.filter(|floor| record.version <= *floor) {
            return Err(Error::Conflict(format!(
                "version {} of `{key}` is not above version {floor}, published or withdrawn before",
                record.version
            )));
        }
        self.store.put_dataset(&stored)?;
        self.index_mut().insert(record);
        Ok(PublishReceipt {
            provider: key.provider,
            id: key.id,
            version: record.version,
            replaced: current,
        })
    }

    /// Withdraws dataset `id` of `provider` on the provider's signed request.
    pub fn unpublish(&self, provider: &str, id: &str, signed: &str) -> Result<UnpublishReceipt> {
        let now = Utc::now();
        self.require_known_signer(signed, "unpublish request")?;
        let request = verify_unpublish(signed, provider, id, |p| self.active_participant(p, now))?;
        let key = DatasetKey::new(provider, id);
        let _writing = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self
            .index()
            .version_of(&key)
            .ok_or_else(|| not_found(&key))?;
        if request.version < current {
            return Err(Error::Conflict(format!(
                "the request withdraws version {} but version {current} of `{key}` is published",
                request.version
            )));
        }
        self.store.remove_dataset(&key, request.version)?;
        self.index_mut().remove(&key);
        Ok(UnpublishReceipt {
            provider: key.provider,
            id: key.id,
            version: request.version,
        })
    }

    /// Searches the published datasets.
    pub fn search(&self, query: &SearchQuery) -> Result<SearchPage> {
        self.index().search(query, self.settings.max_page_size)
    }

    /// A published dataset with the provider's signed description.
    pub fn dataset(&self, provider: &str, id: &str) -> Result<PublishedDataset> {
        let key = DatasetKey::new(provider, id);
        let stored = self.store.dataset(&key)?.ok_or_else(|| not_found(&key))?;
        Ok(PublishedDataset {
            dataset: stored.record,
            signed: stored.signed,
        })
    }

    /// The openness list of a registered provider.
    pub fn openness(&self, provider: &str) -> Result<OpennessList> {
        let participant = self.participant(provider)?;
        let keys = self.index().datasets_of(provider);
        let mut records: Vec<DatasetRecord> = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(stored) = self.store.dataset(&key)? {
                records.push(stored.record);
            }
        }
        Ok(openness_list(&participant, &records, Utc::now()))
    }

    /// The openness list of a registered provider as an HTML page.
    pub fn openness_html(&self, provider: &str) -> Result<String> {
        Ok(render_html(&self.openness(provider)?))
    }

    /// The whole catalog as DCAT 3 in JSON-LD.
    pub fn dcat(&self) -> Result<Value> {
        let mut datasets = Vec::with_capacity(self.len());
        self.store.for_each_record(&mut |record| {
            datasets.push(dcat::dataset_entry(&record));
            Ok(())
        })?;
        Ok(dcat::catalog_document(
            &self.settings.title,
            datasets,
            Utc::now(),
        ))
    }

    /// Makes every change so far durable.
    pub fn flush(&self) -> Result<()> {
        self.store.flush()
    }

    /// Refuses, before any signature work, a document whose header names a
    /// key no registered participant holds.
    fn require_known_signer(&self, signed: &str, what: &'static str) -> Result<()> {
        let key = claimed_signer(signed, what)?;
        let known = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&key);
        match known {
            true => Ok(()),
            false => Err(Error::UnknownSigner {
                what,
                key_id: key.key_id(),
            }),
        }
    }

    fn active_participant(&self, id: &str, now: DateTime<Utc>) -> Result<Participant> {
        let participant = self
            .store
            .participant(id)?
            .ok_or_else(|| Error::NotRegistered(id.to_owned()))?;
        require_active(&participant, now.timestamp(), self.settings.clock_skew_secs)?;
        Ok(participant)
    }

    fn index(&self) -> RwLockReadGuard<'_, SearchIndex> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn index_mut(&self) -> RwLockWriteGuard<'_, SearchIndex> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn not_found(key: &DatasetKey) -> Error {
    Error::NotFound {
        what: "dataset",
        id: key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::SampleProvider;
    use crate::store::MemoryStore;
    use policy::credential::Authority;
    use policy::keys::KeyPair;

    struct Fixture {
        authority: Authority,
        catalog: Catalog,
        provider: SampleProvider,
    }

    fn fixture() -> Fixture {
        let authority = Authority::new("authority", KeyPair::generate().unwrap());
        let store = Arc::new(MemoryStore::new());
        let catalog =
            Catalog::open(store, authority.trusted(), CatalogSettings::default()).unwrap();
        let provider = SampleProvider::new("platform-north").unwrap();
        let credential = authority
            .issue(&provider.membership(), Utc::now().timestamp(), 3600)
            .unwrap();
        catalog.register(&credential).unwrap();
        Fixture {
            authority,
            catalog,
            provider,
        }
    }

    impl Fixture {
        fn publish(&self, version: u64, title: &str) -> Result<PublishReceipt> {
            let mut description = self
                .provider
                .description("telemetry", title, &["spindle"])
                .unwrap();
            description.version = version;
            self.catalog
                .publish(self.provider.sign(description).unwrap().jws())
        }

        fn titles(&self, q: &str) -> Vec<String> {
            let query = SearchQuery {
                q: Some(q.into()),
                ..SearchQuery::default()
            };
            self.catalog
                .search(&query)
                .unwrap()
                .hits
                .into_iter()
                .map(|h| h.title)
                .collect()
        }
    }

    #[test]
    fn versions_only_grow_through_updates_and_withdrawals() {
        let f = fixture();
        assert_eq!(f.publish(1, "Gearbox telemetry").unwrap().replaced, None);
        assert_eq!(f.publish(2, "Turbine telemetry").unwrap().replaced, Some(1));
        assert!(matches!(f.publish(2, "Replayed"), Err(Error::Conflict(_))));
        assert!(matches!(
            f.publish(1, "Gearbox telemetry"),
            Err(Error::Conflict(_))
        ));
        assert_eq!(f.titles("turbine"), ["Turbine telemetry"]);
        assert!(f.titles("gearbox").is_empty());

        let stale = f.provider.unpublish("telemetry", 1).unwrap();
        let err = f
            .catalog
            .unpublish("platform-north", "telemetry", stale.jws())
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        let request = f.provider.unpublish("telemetry", 2).unwrap();
        let receipt = f
            .catalog
            .unpublish("platform-north", "telemetry", request.jws())
            .unwrap();
        assert_eq!(receipt.version, 2);
        assert!(f.titles("turbine").is_empty());
        assert!(f.catalog.is_empty());
        let err = f
            .catalog
            .unpublish("platform-north", "telemetry", request.jws())
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        assert!(matches!(
            f.publish(2, "Replayed after withdrawal"),
            Err(Error::Conflict(_))
        ));
        assert_eq!(f.publish(3, "Back again").unwrap().replaced, None);
    }

    #[test]
    fn a_refused_publication_changes_nothing() {
        let f = fixture();
        f.publish(1, "Gearbox telemetry").unwrap();
        let before = f.catalog.dataset("platform-north", "telemetry").unwrap();
        let impostor = SampleProvider {
            id: f.provider.id.clone(),
            ..SampleProvider::new("x").unwrap()
        };
        let mut description = impostor.description("telemetry", "Hijacked", &[]).unwrap();
        description.version = 9;
        assert!(
            f.catalog
                .publish(impostor.sign(description).unwrap().jws())
                .is_err()
        );
        assert_eq!(
            f.catalog.dataset("platform-north", "telemetry").unwrap(),
            before
        );
        assert!(f.titles("hijacked").is_empty());
        assert_eq!(f.titles("gearbox"), ["Gearbox telemetry"]);
    }

    #[test]
    fn only_registered_participants_publish() {
        let f = fixture();
        let stranger = SampleProvider::new("stranger").unwrap();
        let description = stranger
            .description("telemetry", "Stranger data", &[])
            .unwrap();
        let err = f
            .catalog
            .publish(stranger.sign(description).unwrap().jws())
            .unwrap_err();
        assert!(matches!(err, Error::UnknownSigner { .. }), "{err}");
        let mut description = f
            .provider
            .description("telemetry", "Claims a stranger", &[])
            .unwrap();
        description.provider = "stranger".into();
        let err = f
            .catalog
            .publish(f.provider.sign(description).unwrap().jws())
            .unwrap_err();
        assert!(
            matches!(err, Error::NotRegistered(ref id) if id == "stranger"),
            "{err}"
        );
    }

    #[test]
    fn registration_never_goes_back_to_an_older_credential() {
        let f = fixture();
        let now = Utc::now().timestamp();
        let newer = f
            .authority
            .issue(&f.provider.membership(), now + 10, 3600)
            .unwrap();
        f.catalog.register(&newer).unwrap();
        let older = f
            .authority
            .issue(&f.provider.membership(), now - 10, 3600)
            .unwrap();
        assert!(matches!(
            f.catalog.register(&older),
            Err(Error::Conflict(_))
        ));
        assert_eq!(
            f.catalog.participant("platform-north").unwrap().issued_at,
            now + 10
        );
    }

    #[test]
    fn openness_lists_and_dcat_follow_the_publications() {
        let f = fixture();
        f.publish(1, "Gearbox telemetry").unwrap();
        let list = f.catalog.openness("platform-north").unwrap();
        assert_eq!(list.datasets.len(), 1);
        assert_eq!(list.datasets[0].rules[0].min_entities, Some(3));
        assert!(matches!(
            f.catalog.openness("nobody"),
            Err(Error::NotFound { .. })
        ));
        let dcat = f.catalog.dcat().unwrap();
        assert_eq!(dcat["dcat:dataset"].as_array().unwrap().len(), 1);
    }
}
