//! Sample providers and signed dataset descriptions, for walk-throughs,
//! tests and benchmarks: industrial telemetry with an aggregate-only offer.
//!
//! For benchmarks, a catalog of any size: [`sample_providers`] registered
//! with [`register_all`], and [`numbered_description`] `n` of provider
//! `n % providers`, signed on all cores by [`sign_numbered`].

use std::collections::BTreeMap;
use std::ops::Range;

use chrono::{DateTime, Duration, Utc};
use policy::contract::Offer;
use policy::credential::{Attributes, Membership};
use policy::document::{DocumentKind, SignedDocument};
use policy::keys::KeyPair;
use policy::model::{
    Access, AggregateFunction, Aggregation, Assignee, ColumnClass, Joins, Target, UsagePolicy,
    Validity,
};

use policy::credential::Authority;

use crate::model::{ColumnDescription, DatasetDescription, Unpublish};
use crate::service::Catalog;
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

/// Common words of numbered descriptions: a search for one matches many
/// datasets.
pub const COMMON_WORDS: [&str; 24] = [
    "spindle",
    "vibration",
    "temperature",
    "gearbox",
    "bearing",
    "torque",
    "press",
    "weld",
    "paint",
    "energy",
    "quality",
    "scrap",
    "cycle",
    "downtime",
    "pressure",
    "humidity",
    "conveyor",
    "robot",
    "laser",
    "casting",
    "milling",
    "turbine",
    "pump",
    "valve",
];
/// How many rare words (`w0` to `w19999`) numbered descriptions draw from.
pub const RARE_WORDS: usize = 20_000;
/// The sectors of numbered descriptions (number `n` has sector `n % 8`).
pub const SECTORS: [&str; 8] = [
    "manufacturing",
    "automotive",
    "energy",
    "chemicals",
    "logistics",
    "aerospace",
    "food",
    "textiles",
];
/// The purposes of the offers of numbered descriptions.
pub const PURPOSES: [&str; 6] = [
    "predictive-maintenance",
    "quality-analysis",
    "demand-planning",
    "energy-optimisation",
    "research",
    "benchmarking",
];
/// How many extra measure columns (`c0` to `c39`) numbered descriptions
/// draw from.
pub const EXTRA_COLUMNS: usize = 40;

/// A small deterministic generator (xorshift), for sample data and
/// sample queries that are the same on every run.
#[derive(Debug, Clone)]
pub struct SampleRng(u64);

impl SampleRng {
    /// A generator from `seed` (0 is replaced by 1: xorshift needs a bit).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` at least 1).
    pub fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n.max(1)).unwrap_or(u64::MAX);
        usize::try_from(self.next_u64() % n).unwrap_or_default()
    }

    /// A word: two times in three one of [`COMMON_WORDS`], else one of
    /// [`RARE_WORDS`] rare ones (`w17`).
    pub fn word(&mut self) -> String {
        match self.below(3) {
            0 => format!("w{}", self.below(RARE_WORDS)),
            _ => COMMON_WORDS[self.below(COMMON_WORDS.len())].to_owned(),
        }
    }
}

/// `count` providers with fresh keys, `provider-000` upwards.
pub fn sample_providers(count: usize) -> Result<Vec<SampleProvider>> {
    (0..count)
        .map(|i| SampleProvider::new(&format!("provider-{i:03}")))
        .collect()
}

/// Registers each of `providers` with `catalog`, on a day's credential
/// from `authority` (which `catalog` must trust).
pub fn register_all(
    catalog: &Catalog,
    authority: &Authority,
    providers: &[SampleProvider],
) -> Result<()> {
    let now = Utc::now().timestamp();
    for provider in providers {
        let credential = authority
            .issue(&provider.membership(), now, 86_400)
            .map_err(signing)?;
        catalog.register(&credential)?;
    }
    Ok(())
}

/// Description number `n` of `provider`, at `version`: id `ds-<n>`, three
/// title words, ten description words and three keywords from
/// [`SampleRng::word`], sector `n % 8`, and one offer (rows when `n` is a
/// multiple of 4, else aggregates) for one or two [`PURPOSES`]; a column
/// `c<k>` of [`EXTRA_COLUMNS`] besides the sample ones. The same `n` gives
/// the same description, but for `updated_at`.
pub fn numbered_description(
    provider: &SampleProvider,
    n: usize,
    version: u64,
) -> Result<DatasetDescription> {
    let seed = u64::try_from(n).unwrap_or(u64::MAX).wrapping_add(1);
    let mut rng = SampleRng::new(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let id = format!("ds-{n:06}");
    let mut purposes = vec![PURPOSES[rng.below(PURPOSES.len())]];
    let second = PURPOSES[(n + 1) % PURPOSES.len()];
    if second != purposes[0] {
        purposes.push(second);
    }
    let access = match n.is_multiple_of(4) {
        true => Access::Rows,
        false => Access::Aggregate,
    };
    let mut policy = provider.policy(&id, &purposes, access);
    let extra = format!("c{}", rng.below(EXTRA_COLUMNS));
    policy.columns.insert(extra.clone(), ColumnClass::Measure);
    let offer = provider.offer(&format!("{id}-offer"), policy)?;
    let mut words = |count: usize| (0..count).map(|_| rng.word()).collect::<Vec<_>>();
    let (title, text, keywords) = (words(3), words(10), words(3));
    let mut columns = vec![
        column("plant", "Utf8", ColumnClass::Dimension),
        column("vibration", "Float64", ColumnClass::Measure),
    ];
    if access == Access::Aggregate {
        columns.insert(0, column("machine_id", "Utf8", ColumnClass::Entity));
    }
    columns.push(column(&extra, "Float64", ColumnClass::Measure));
    Ok(DatasetDescription {
        id,
        provider: provider.id.clone(),
        version,
        title: title.join(" "),
        description: text.join(" "),
        keywords,
        sector: Some(SECTORS[n % SECTORS.len()].to_owned()),
        columns,
        row_count: rng.next_u64() % 10_000_000,
        updated_at: Utc::now(),
        offers: vec![offer],
        endpoint: provider.endpoint.clone(),
    })
}

/// The JWS of [`numbered_description`] `n` at `version`, for each `n` in
/// `numbers`, by provider `n % providers.len()`; signed on all cores, in
/// the order of `numbers`. None when `providers` is empty.
pub fn sign_numbered(
    providers: &[SampleProvider],
    numbers: Range<usize>,
    version: u64,
) -> Result<Vec<String>> {
    if providers.is_empty() {
        return Ok(Vec::new());
    }
    let sign = |n: usize| -> Result<String> {
        let provider = &providers[n % providers.len()];
        let description = numbered_description(provider, n, version)?;
        Ok(provider.sign(description)?.jws().to_owned())
    };
    let items: Vec<usize> = numbers.collect();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let parts: Vec<&[usize]> = items.chunks(items.len().div_ceil(cores).max(1)).collect();
    let mut signed: Vec<Result<Vec<String>>> = parts.iter().map(|_| Ok(Vec::new())).collect();
    std::thread::scope(|scope| {
        for (part, out) in parts.iter().zip(signed.iter_mut()) {
            scope.spawn(|| *out = part.iter().map(|n| sign(*n)).collect());
        }
    });
    Ok(signed.into_iter().collect::<Result<Vec<_>>>()?.concat())
}

fn fixed_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use policy::keys::KeyPair;
    use std::sync::Arc;

    #[test]
    fn numbered_descriptions_are_the_same_for_the_same_number() {
        let provider = SampleProvider::new("north").unwrap();
        let a = numbered_description(&provider, 7, 1).unwrap();
        let b = numbered_description(&provider, 7, 2).unwrap();
        assert_eq!((a.id.as_str(), a.version, b.version), ("ds-000007", 1, 2));
        assert_eq!(
            (a.title, a.keywords, a.columns),
            (b.title, b.keywords, b.columns)
        );
        let rows = numbered_description(&provider, 8, 1).unwrap();
        assert_eq!(
            rows.offers[0].payload().policy.payload().access,
            Access::Rows
        );
    }

    #[test]
    fn a_signed_fleet_publishes_in_a_catalog_that_trusts_its_authority() {
        let authority = Authority::new("authority", KeyPair::generate().unwrap());
        let catalog = Catalog::open(
            Arc::new(MemoryStore::new()),
            authority.trusted(),
            crate::CatalogSettings::default(),
        )
        .unwrap();
        let providers = sample_providers(3).unwrap();
        register_all(&catalog, &authority, &providers).unwrap();
        let signed = sign_numbered(&providers, 0..10, 1).unwrap();
        assert_eq!(signed.len(), 10);
        for jws in &signed {
            catalog.publish(jws).unwrap();
        }
        assert_eq!(catalog.len(), 10);
        let shown = catalog.dataset("provider-001", "ds-000004").unwrap();
        assert_eq!(shown.dataset.version, 1);
        assert!(sign_numbered(&[], 0..3, 1).unwrap().is_empty());
    }
}
