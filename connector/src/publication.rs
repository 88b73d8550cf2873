//! Automatic publication to the shared catalog: whenever a dataset or its
//! offers change, the connector signs a new version of the dataset's
//! description (visible columns only, with the signed offers) and publishes
//! it; a dataset removed, or left without offers, is withdrawn.

use catalog::client::CatalogClient;
use catalog::model::{ColumnDescription, DatasetDescription, Unpublish};
use policy::document::{DocumentKind, SignedDocument};
use policy::model::ColumnClass;

use crate::datasets::{Dataset, DatasetRegistry};
use crate::service::Connector;
use crate::store::{get_json, put_json};
use crate::{Error, Result};

const VERSIONS: &str = "publication_versions";

impl Connector {
    fn catalog(&self) -> Result<Option<CatalogClient>> {
        match &self.config.catalog_url {
            Some(url) => CatalogClient::new(url)
                .map(Some)
                .map_err(|e| Error::Peer(format!("catalog: {e}"))),
            None => Ok(None),
        }
    }

    fn next_version(&self, dataset: &str) -> Result<u64> {
        let version = get_json::<u64>(self.store.as_ref(), VERSIONS, dataset)?.unwrap_or(0) + 1;
        put_json(self.store.as_ref(), VERSIONS, dataset, &version)?;
        Ok(version)
    }

    /// Publishes (or withdraws) `dataset` at the configured catalog. Returns
    /// whether a catalog is configured. Failures are errors for the caller to
    /// report; the local change has already happened.
    pub async fn publish(&self, dataset: &str) -> Result<bool> {
        let Some(client) = self.catalog()? else {
            return Ok(false);
        };
        let peer = |e: catalog::Error| Error::Peer(format!("catalog: {e}"));
        client.register(self.credential()).await.map_err(peer)?;
        let offers: Vec<_> = self
            .offers()?
            .into_iter()
            .filter(|o| o.payload().dataset == dataset)
            .collect();
        let record = DatasetRegistry::new(self.store.as_ref()).get(dataset).ok();
        let version = self.next_version(dataset)?;
        match record {
            Some(record) if !offers.is_empty() => {
                let description = describe(
                    &record,
                    offers,
                    version,
                    &self.config.public_url(),
                    self.id(),
                );
                let signed =
                    SignedDocument::sign(description, DocumentKind::DatasetDescription, &self.key)?;
                client.publish(&signed).await.map_err(peer)?;
            }
            _ => {
                let request = Unpublish::new(self.id(), dataset, version, self.clock.now());
                let signed =
                    SignedDocument::sign(request, DocumentKind::DatasetWithdrawal, &self.key)?;
                match client.unpublish(&signed).await {
                    Ok(_) => {}
                    // Never published: nothing to withdraw.
                    Err(catalog::Error::Refused { status: 404, .. }) => {}
                    Err(e) => return Err(peer(e)),
                }
            }
        }
        Ok(true)
    }

    /// [`Connector::publish`], logging instead of failing: the owner's change
    /// stands even when the catalog is unreachable.
    pub async fn publish_or_warn(&self, dataset: &str) -> Option<String> {
        match self.publish(dataset).await {
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(dataset, "publication to the catalog failed: {e}");
                Some(e.to_string())
            }
        }
    }
}

/// The owner's changes that the catalog must learn of: each makes the local
/// change, then publishes, and reports a publication failure beside the
/// result (the local change stands).
impl Connector {
    /// Registers a dataset, then republishes it.
    pub async fn register_and_publish(
        &self,
        spec: crate::datasets::DatasetSpec,
    ) -> Result<(Dataset, Option<String>)> {
        let dataset = self.register_dataset(spec).await?;
        let failure = self.publish_or_warn(&dataset.id).await;
        Ok((dataset, failure))
    }

    /// Creates an offer, then publishes its dataset.
    pub async fn offer_and_publish(
        &self,
        offer_id: &str,
        dataset: &str,
        policy: policy::model::UsagePolicy,
    ) -> Result<(SignedDocument<policy::contract::Offer>, Option<String>)> {
        let offer = self.create_offer(offer_id, dataset, policy).await?;
        let failure = self.publish_or_warn(dataset).await;
        Ok((offer, failure))
    }

    /// Removes a dataset, then withdraws it from the catalog.
    pub async fn remove_and_withdraw(&self, dataset: &str) -> Result<Option<String>> {
        self.remove_dataset(dataset)?;
        Ok(self.publish_or_warn(dataset).await)
    }
}

/// The description of `record` with `offers`: only columns that some offer's
/// policy does not deny, with their class under the first such policy.
fn describe(
    record: &Dataset,
    offers: Vec<SignedDocument<policy::contract::Offer>>,
    version: u64,
    endpoint: &str,
    provider: &str,
) -> DatasetDescription {
    let columns = record
        .columns
        .iter()
        .filter_map(|(name, data_type)| {
            let class = offers
                .iter()
                .map(|o| o.payload().policy.payload().class_of(name))
                .find(|c| *c != ColumnClass::Denied)?;
            Some(ColumnDescription {
                name: name.clone(),
                data_type: data_type.clone(),
                class,
            })
        })
        .collect();
    DatasetDescription {
        id: record.id.clone(),
        provider: provider.to_owned(),
        version,
        title: record.title.clone(),
        description: record.description.clone(),
        keywords: record.keywords.clone(),
        sector: record.sector.clone(),
        columns,
        row_count: record.rows,
        updated_at: record.updated_at,
        offers,
        endpoint: endpoint.to_owned(),
    }
}
