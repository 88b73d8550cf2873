//! Usage and value figures per dataset: the queries answered, refused and
//! failed per consumer and purpose, rows released, distinct consumers and
//! last use; refusals by rule; and answered/refused queries over time.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::filter::AuditFilter;
use super::scan::SCAN_CHUNK;
use crate::Result;
use crate::audit::{AuditRecord, AuditStore, RecordKind};

/// The width of a timeline bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    /// One hour.
    Hour,
    /// One day (UTC).
    #[default]
    Day,
}

impl Bucket {
    fn width(self) -> TimeDelta {
        match self {
            Self::Hour => TimeDelta::hours(1),
            Self::Day => TimeDelta::days(1),
        }
    }
}

/// Query counts of one consumer for one purpose on one dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConsumerUsage {
    /// The consumer's participant id.
    pub consumer: String,
    /// The declared purpose.
    pub purpose: Option<String>,
    /// Queries answered.
    pub answered: u64,
    /// Queries refused.
    pub refused: u64,
    /// Queries that failed while executing.
    pub failed: u64,
    /// Rows released by the answered queries.
    pub rows_released: u64,
    /// The last query, answered or not.
    pub last_use: Option<DateTime<Utc>>,
}

/// The figures of one dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DatasetUsage {
    /// The dataset id; absent for refusals that named no known dataset.
    pub dataset: Option<String>,
    /// Queries answered.
    pub answered: u64,
    /// Queries refused.
    pub refused: u64,
    /// Queries that failed while executing.
    pub failed: u64,
    /// Rows released.
    pub rows_released: u64,
    /// Bytes released.
    pub bytes_released: u64,
    /// Consumers with at least one answered query.
    pub distinct_consumers: u64,
    /// The last query, answered or not.
    pub last_use: Option<DateTime<Utc>>,
    /// Per consumer and purpose.
    pub consumers: Vec<ConsumerUsage>,
}

/// Queries in one time bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TimeBucket {
    /// The start of the bucket.
    pub start: DateTime<Utc>,
    /// Queries answered.
    pub answered: u64,
    /// Queries refused.
    pub refused: u64,
    /// Queries that failed.
    pub failed: u64,
    /// Rows released.
    pub rows_released: u64,
}

/// What [`usage_figures`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    /// Per dataset, by dataset id.
    pub datasets: Vec<DatasetUsage>,
    /// Refused queries by the rule that refused them (`unspecified` when
    /// no policy rule did, e.g. a revoked agreement).
    pub refusals_by_rule: BTreeMap<String, u64>,
    /// The bucket width of `timeline`.
    pub bucket: Bucket,
    /// Query counts per bucket, oldest first; empty buckets left out.
    pub timeline: Vec<TimeBucket>,
    /// Records read.
    pub records_scanned: u64,
}

/// The outcome of a query record.
#[derive(Clone, Copy)]
enum Outcome {
    Answered,
    Refused,
    Failed,
}

fn outcome(kind: RecordKind) -> Option<Outcome> {
    match kind {
        RecordKind::QueryAnswered => Some(Outcome::Answered),
        RecordKind::QueryRefused => Some(Outcome::Refused),
        RecordKind::QueryFailed => Some(Outcome::Failed),
        _ => None,
    }
}

trait Counts {
    fn count(&mut self, outcome: Outcome, record: &AuditRecord);
}

macro_rules! counts {
    ($t:ty) => {
        impl Counts for $t {
            fn count(&mut self, outcome: Outcome, record: &AuditRecord) {
                match outcome {
                    Outcome::Answered => {
                        self.answered += 1;
                        self.rows_released += record.rows.unwrap_or(0);
                    }
                    Outcome::Refused => self.refused += 1,
                    Outcome::Failed => self.failed += 1,
                }
            }
        }
    };
}
counts!(ConsumerUsage);
counts!(DatasetUsage);
counts!(TimeBucket);

#[derive(Default)]
struct Tally {
    datasets: BTreeMap<Option<String>, DatasetUsage>,
    consumers: BTreeMap<(Option<String>, String, Option<String>), ConsumerUsage>,
    answering: BTreeMap<Option<String>, BTreeSet<String>>,
    refusals_by_rule: BTreeMap<String, u64>,
    timeline: BTreeMap<DateTime<Utc>, TimeBucket>,
    scanned: u64,
}

impl Tally {
    fn add(&mut self, record: &AuditRecord, bucket: Bucket) {
        self.scanned += 1;
        let Some(outcome) = outcome(record.kind) else {
            return;
        };
        let consumer = record.counterparty.clone().unwrap_or_default();
        let dataset = self.datasets.entry(record.dataset.clone()).or_default();
        dataset.count(outcome, record);
        dataset.bytes_released += match outcome {
            Outcome::Answered => record.bytes.unwrap_or(0),
            _ => 0,
        };
        dataset.last_use = dataset.last_use.max(Some(record.time));
        let key = (
            record.dataset.clone(),
            consumer.clone(),
            record.purpose.clone(),
        );
        let per_consumer = self.consumers.entry(key).or_default();
        per_consumer.count(outcome, record);
        per_consumer.last_use = per_consumer.last_use.max(Some(record.time));
        match outcome {
            Outcome::Answered => {
                self.answering
                    .entry(record.dataset.clone())
                    .or_default()
                    .insert(consumer);
            }
            Outcome::Refused => {
                let rule = record.rule.clone().unwrap_or_else(|| "unspecified".into());
                *self.refusals_by_rule.entry(rule).or_default() += 1;
            }
            Outcome::Failed => {}
        }
        let start = record
            .time
            .duration_trunc(bucket.width())
            .unwrap_or(record.time);
        let slot = self.timeline.entry(start).or_insert_with(|| TimeBucket {
            start,
            ..TimeBucket::default()
        });
        slot.count(outcome, record);
    }

    fn report(mut self, bucket: Bucket) -> UsageReport {
        for ((dataset, consumer, purpose), mut usage) in std::mem::take(&mut self.consumers) {
            usage.consumer = consumer;
            usage.purpose = purpose;
            if let Some(entry) = self.datasets.get_mut(&dataset) {
                entry.consumers.push(usage);
            }
        }
        let datasets = self
            .datasets
            .into_iter()
            .map(|(id, mut usage)| {
                usage.distinct_consumers = self.answering.get(&id).map_or(0, |c| c.len() as u64);
                usage.dataset = id;
                usage
            })
            .collect();
        UsageReport {
            datasets,
            refusals_by_rule: self.refusals_by_rule,
            bucket,
            timeline: self.timeline.into_values().collect(),
            records_scanned: self.scanned,
        }
    }
}

/// The usage figures of the records of `store` matching `filter`.
pub fn usage_figures(
    store: &dyn AuditStore,
    filter: &AuditFilter,
    bucket: Bucket,
) -> Result<UsageReport> {
    let mut tally = Tally::default();
    let mut from = 0;
    loop {
        let chunk = store.range(from, SCAN_CHUNK)?;
        let Some(last) = chunk.last().map(|r| r.seq) else {
            break;
        };
        for record in chunk.iter().filter(|r| filter.matches(r)) {
            tally.add(record, bucket);
        }
        from = last + 1;
    }
    Ok(tally.report(bucket))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, GENESIS_HASH, MemoryAuditStore};

    fn query(kind: RecordKind, consumer: &str, purpose: &str, rows: u64) -> AuditEntry {
        let mut entry = AuditEntry::new(kind, "p")
            .with_counterparty(consumer)
            .with_dataset("telemetry")
            .with_purpose(purpose)
            .with_rows(rows);
        if kind == RecordKind::QueryRefused {
            entry = entry.with_rule("denied_column");
        }
        entry
    }

    #[test]
    fn figures_per_dataset_consumer_and_purpose() {
        let entries = [
            query(RecordKind::QueryAnswered, "a", "quality", 10),
            query(RecordKind::QueryAnswered, "a", "quality", 5),
            query(RecordKind::QueryRefused, "a", "quality", 0),
            query(RecordKind::QueryAnswered, "b", "research", 1),
            query(RecordKind::QueryRefused, "c", "research", 0),
            AuditEntry::new(RecordKind::QueryRefused, "p").with_counterparty("d"),
            AuditEntry::new(RecordKind::AgreementFinalized, "p").with_dataset("telemetry"),
        ];
        let store = MemoryAuditStore::new();
        let mut prev = GENESIS_HASH.to_owned();
        for (seq, entry) in entries.into_iter().enumerate() {
            let record = AuditRecord::seal(entry, seq as u64, prev.clone()).unwrap();
            prev.clone_from(&record.hash);
            store.append_batch(&[record]).unwrap();
        }
        let report = usage_figures(&store, &AuditFilter::default(), Bucket::Hour).unwrap();
        assert_eq!(report.records_scanned, 7);
        assert_eq!(report.datasets.len(), 2);
        let unknown = &report.datasets[0];
        assert_eq!((unknown.dataset.as_deref(), unknown.refused), (None, 1));
        let t = &report.datasets[1];
        assert_eq!(t.dataset.as_deref(), Some("telemetry"));
        assert_eq!((t.answered, t.refused, t.rows_released), (3, 2, 16));
        assert_eq!(t.distinct_consumers, 2);
        assert_eq!(t.consumers.len(), 3);
        assert_eq!(
            (t.consumers[0].consumer.as_str(), t.consumers[0].answered),
            ("a", 2)
        );
        assert_eq!(report.refusals_by_rule["denied_column"], 2);
        assert_eq!(report.refusals_by_rule["unspecified"], 1);
        let answered: u64 = report.timeline.iter().map(|b| b.answered).sum();
        assert_eq!(answered, 3);
    }
}
