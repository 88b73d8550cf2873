//! Sample providers and signed dataset descriptions, for walk-throughs,
//! tests and benchmarks: industrial telemetry with an aggregate-only offer.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use policy::contract::Offer;
use policy::credential::{Attributes, Membership};
use policy::document::{DocumentKind, SignedDocument};
use policy::keys::KeyPair;
use policy::model::{
    Access, AggregateFunction, Aggregation, Assignee, ColumnClass, Joins, Target, UsagePolicy,
    Validity,
};

use crate::model::{ColumnDescription, DatasetDescription, Unpublish};
use crate::{Error, Result};

/// A provider with its own key.
#[derive(Debug)]
pub struct SampleProvider {
    /// Participant id.
    pub id: String,
    /// Its signing key.
    pub key: KeyPair,
    /// Base URL of its connector.
    pub endpoint: String,
}

fn signing(e: policy::Error) -> Error {
    Error::trust("signing a sample", e)
}

impl SampleProvider {
    /// A provider `id` with a fresh key.
    pub fn new(id: &str) -> Result<Self> {
        Ok(Self {
            id: id.to_owned(),
            key: KeyPair::generate().map_err(signing)?,
            endpoint: format!("http://{id}.example:8080"),
        })
    }

    /// What an authority attests about this provider.
    pub fn membership(&self) -> Membership {
        Membership {
            participant_id: self.id.clone(),
            name: format!("Provider {}", self.id),
            public_key: self.key.public_key(),
            attributes: Attributes {
                role: Some("provider".to_owned()),
                sector: Some("manufacturing".to_owned()),
                ..Attributes::default()
            },
        }
    }

    /// A usage policy for `dataset`: columns `machine_id` (entity), `plant`
    /// (dimension) and `vibration` (measure), with an unlisted column
    /// `operator_name` left denied. Aggregate mode has thresholds 10 rows
    /// and 3 machines; SMEs only.
    pub fn policy(&self, dataset: &str, purposes: &[&str], access: Access) -> UsagePolicy {
        let now = Utc::now();
        let mut columns = BTreeMap::from([
            ("plant".to_owned(), ColumnClass::Dimension),
            ("vibration".to_owned(), ColumnClass::Measure),
            ("operator_name".to_owned(), ColumnClass::Denied),
        ]);
        let aggregation = (access == Access::Aggregate).then(|| {
            columns.insert("machine_id".to_owned(), ColumnClass::Entity);
            Aggregation {
                min_rows: 10,
                min_entities: 3,
                functions: vec![AggregateFunction::Count, AggregateFunction::Avg],
            }
        });
        UsagePolicy {
            kind: "UsagePolicy".to_owned(),
            version: 1,
            id: format!("{dataset}-{}", purposes.join("-")),
            issuer: self.id.clone(),
            target: Target {
                dataset: dataset.to_owned(),
            },
            assignee: Some(Assignee {
                participants: Vec::new(),
                attributes: BTreeMap::from([("sme".to_owned(), vec!["true".to_owned()])]),
            }),
            purposes: purposes.iter().map(|p| (*p).to_owned()).collect(),
            validity: Validity {
                not_before: now - Duration::days(1),
                not_after: now + Duration::days(365),
            },
            access,
            columns,
            row_filter: None,
            aggregation,
            joins: Joins::None,
            limits: None,
            privacy: None,
        }
    }

    /// `policy` signed, inside an offer `offer_id` signed by this provider.
    pub fn offer(&self, offer_id: &str, policy: UsagePolicy) -> Result<SignedDocument<Offer>> {
        let dataset = policy.target.dataset.clone();
        let policy =
            SignedDocument::sign(policy, DocumentKind::UsagePolicy, &self.key).map_err(signing)?;
        let offer = Offer {
            id: offer_id.to_owned(),
            provider: self.id.clone(),
            dataset,
            policy,
            endpoint: self.endpoint.clone(),
            issued_at: Utc::now().timestamp(),
        };
        SignedDocument::sign(offer, DocumentKind::Offer, &self.key).map_err(signing)
    }

    /// An unsigned description of telemetry dataset `id`, version 1, with
    /// one aggregate offer for predictive maintenance and quality analysis.
    pub fn description(
        &self,
        id: &str,
        title: &str,
        keywords: &[&str],
    ) -> Result<DatasetDescription> {
        let policy = self.policy(
            id,
            &["predictive-maintenance", "quality-analysis"],
            Access::Aggregate,
        );
        let offer = self.offer(&format!("{id}-aggregate"), policy)?;
        Ok(DatasetDescription {
            id: id.to_owned(),
            provider: self.id.clone(),
            version: 1,
            title: title.to_owned(),
            description: format!("Hourly machine telemetry: {title}."),
            keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
            sector: Some("manufacturing".to_owned()),
            columns: vec![
                column("machine_id", "Utf8", ColumnClass::Entity),
                column("plant", "Utf8", ColumnClass::Dimension),
                column("vibration", "Float64", ColumnClass::Measure),
            ],
            row_count: 1_000_000,
            updated_at: fixed_time(),
            offers: vec![offer],
            endpoint: self.endpoint.clone(),
        })
    }

    /// Signs a description with this provider's key.
    pub fn sign(
        &self,
        description: DatasetDescription,
    ) -> Result<SignedDocument<DatasetDescription>> {
        SignedDocument::sign(description, DocumentKind::DatasetDescription, &self.key)
            .map_err(signing)
    }

    /// A signed request to withdraw version `version` of `dataset`.
    pub fn unpublish(&self, dataset: &str, version: u64) -> Result<SignedDocument<Unpublish>> {
        let request = Unpublish::new(&self.id, dataset, version, Utc::now());
        SignedDocument::sign(request, DocumentKind::DatasetWithdrawal, &self.key).map_err(signing)
    }
}

/// A column description.
pub fn column(name: &str, data_type: &str, class: ColumnClass) -> ColumnDescription {
    ColumnDescription {
        name: name.to_owned(),
        data_type: data_type.to_owned(),
        class,
    }
}

fn fixed_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}
