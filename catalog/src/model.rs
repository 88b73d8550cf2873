//! What the catalog holds and says: dataset descriptions as providers sign
//! them, the records it keeps of them, participants, and the bodies of its
//! requests and answers.

use std::fmt;

use chrono::{DateTime, Utc};
use policy::contract::Offer;
use policy::credential::Attributes;
use policy::document::SignedDocument;
use policy::keys::PublicKey;
use policy::model::{ColumnClass, UsagePolicy};
use serde::{Deserialize, Serialize};

/// A provider's description of one dataset, signed by the provider as a
/// `SignedDocument<DatasetDescription>` of kind
/// [`policy::document::DocumentKind::DatasetDescription`].
///
/// A dataset is identified in the catalog by its provider and its id (the
/// table name consumers query at the provider's connector).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetDescription {
    /// The dataset id at the provider: the table name of its offers'
    /// policies. No `/` and no control characters.
    pub id: String,
    /// The provider's participant id; the signer of the description.
    pub provider: String,
    /// Grows with every publication of this dataset (1 or more); the catalog
    /// refuses a version that is not above the one it holds or last
    /// withdrew, so an old description cannot be replayed.
    pub version: u64,
    /// A short title.
    pub title: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Search keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Industry sector, e.g. `manufacturing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    /// The visible columns; denied columns are never listed.
    pub columns: Vec<ColumnDescription>,
    /// Number of rows.
    pub row_count: u64,
    /// When the data last changed.
    pub updated_at: DateTime<Utc>,
    /// The provider's signed offers for this dataset, each embedding its
    /// signed usage policy.
    pub offers: Vec<SignedDocument<Offer>>,
    /// Base URL of the provider's connector.
    pub endpoint: String,
}

/// One visible column of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDescription {
    /// Column name.
    pub name: String,
    /// Data type as the provider names it, e.g. `Float64`, `Utf8`.
    #[serde(rename = "type")]
    pub data_type: String,
    /// The column's class; never `denied`.
    pub class: ColumnClass,
}

/// The only value of [`Unpublish::kind`]: `"Unpublish"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnpublishKind {
    /// Withdraw a dataset.
    #[default]
    Unpublish,
}

/// A provider's signed request to withdraw one of its datasets.
///
/// Signed as a document of its own kind, `DatasetWithdrawal` (JWS `typ`
/// `dataset-withdrawal+jws`), so a withdrawal can never pass for a
/// description or the other way round. `version`
/// must be at least the published version, so an old request cannot withdraw
/// a later publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unpublish {
    /// Always `Unpublish`.
    #[serde(rename = "type")]
    pub kind: UnpublishKind,
    /// The provider's participant id.
    pub provider: String,
    /// The dataset id.
    pub dataset: String,
    /// The version withdrawn (at least the published one).
    pub version: u64,
    /// When the provider asked.
    pub at: DateTime<Utc>,
}

impl Unpublish {
    /// A request by `provider` to withdraw version `version` of `dataset`.
    pub fn new(provider: &str, dataset: &str, version: u64, at: DateTime<Utc>) -> Self {
        Self {
            kind: UnpublishKind::Unpublish,
            provider: provider.to_owned(),
            dataset: dataset.to_owned(),
            version,
            at,
        }
    }
}

/// A dataset's identity in the catalog: provider and dataset id. Displays as
/// `provider/id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DatasetKey {
    /// The provider's participant id.
    pub provider: String,
    /// The dataset id at the provider.
    pub id: String,
}

impl DatasetKey {
    /// The key of dataset `id` of `provider`.
    pub fn new(provider: &str, id: &str) -> Self {
        Self {
            provider: provider.to_owned(),
            id: id.to_owned(),
        }
    }
}

impl fmt::Display for DatasetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.id)
    }
}

/// What the catalog keeps of a verified publication: the description
/// decoded, its offers reduced to what search, openness lists and the DCAT
/// export need. Reading it back needs no signature work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// The provider's participant id.
    pub provider: String,
    /// The dataset id at the provider.
    pub id: String,
    /// The published version.
    pub version: u64,
    /// Title.
    pub title: String,
    /// Free text.
    pub description: String,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Sector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    /// Visible columns.
    pub columns: Vec<ColumnDescription>,
    /// Number of rows.
    pub row_count: u64,
    /// When the data last changed.
    pub updated_at: DateTime<Utc>,
    /// Base URL of the provider's connector.
    pub endpoint: String,
    /// The offers, verified.
    pub offers: Vec<OfferRecord>,
    /// When the catalog accepted this version.
    pub published_at: DateTime<Utc>,
    /// Key id of the provider key that signed it.
    pub signer_key_id: String,
}

impl DatasetRecord {
    /// The dataset's key.
    pub fn key(&self) -> DatasetKey {
        DatasetKey::new(&self.provider, &self.id)
    }
}

/// A verified offer: its id, its time and its usage policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferRecord {
    /// The offer id.
    pub id: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Where the provider's connector answers for this offer.
    pub endpoint: String,
    /// Content hash of the signed usage policy (consumers quote it).
    pub policy_hash: String,
    /// The usage policy.
    pub policy: UsagePolicy,
}

/// A publication as stored: the record and the provider's JWS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDataset {
    /// The decoded, verified description.
    pub record: DatasetRecord,
    /// The provider's signed description, as published.
    pub signed: String,
}

/// A dataset as the catalog shows it: the decoded record, and the provider's
/// JWS for anyone who wants to verify it (see [`PublishedDataset::verify`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedDataset {
    /// The decoded description.
    pub dataset: DatasetRecord,
    /// The provider's signed description.
    pub signed: String,
}

/// A registered participant: what its membership credential attests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Participant id (the credential's subject).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The participant's public key (a JWK).
    pub public_key: PublicKey,
    /// Its key id.
    pub key_id: String,
    /// The attested attributes.
    pub attributes: Attributes,
    /// Unix seconds of the registration.
    pub registered_at: i64,
    /// Unix seconds when the credential was issued; a registration never
    /// goes back to an older credential.
    pub issued_at: i64,
    /// Unix seconds when the credential expires.
    pub expires_at: i64,
    /// The membership credential (a JWS from the authority).
    pub credential: String,
}

/// Body of `POST /participants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The membership credential (a JWS).
    pub credential: String,
}

/// Body of `POST /datasets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The signed dataset description (a JWS).
    pub description: String,
}

/// Body of `DELETE /datasets/{provider}/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnpublishRequest {
    /// The signed [`Unpublish`] request (a JWS).
    pub request: String,
}

/// The answer to a publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishReceipt {
    /// The provider.
    pub provider: String,
    /// The dataset id.
    pub id: String,
    /// The version now published.
    pub version: u64,
    /// The version it replaced, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<u64>,
}

/// The answer to a withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnpublishReceipt {
    /// The provider.
    pub provider: String,
    /// The dataset id.
    pub id: String,
    /// The version withdrawn; a later publication needs a higher one.
    pub version: u64,
}
