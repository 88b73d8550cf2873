//! [`AuditFilter`]: which audit records a request is about.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::AuditRecord;

/// Conditions on records; every condition set must hold. Text conditions
/// are exact matches (`decision` ignores case); `from` is inclusive, `to`
/// exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// Records at or after this time.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Records before this time.
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    /// The record kind (`query_answered`, `query_refused`, ...).
    #[serde(default)]
    pub kind: Option<String>,
    /// The other participant.
    #[serde(default)]
    pub counterparty: Option<String>,
    /// The dataset.
    #[serde(default)]
    pub dataset: Option<String>,
    /// The agreement id.
    #[serde(default)]
    pub agreement: Option<String>,
    /// The declared purpose.
    #[serde(default)]
    pub purpose: Option<String>,
    /// The decision (`answered`, `refused`, `failed`, ...).
    #[serde(default)]
    pub decision: Option<String>,
    /// The policy rule that decided (`denied_column`, ...).
    #[serde(default)]
    pub rule: Option<String>,
}

fn same(wanted: Option<&String>, found: Option<&str>) -> bool {
    wanted.is_none_or(|w| w.is_empty() || found == Some(w.as_str()))
}

impl AuditFilter {
    /// Whether `record` meets every condition.
    pub fn matches(&self, record: &AuditRecord) -> bool {
        self.from.is_none_or(|from| record.time >= from)
            && self.to.is_none_or(|to| record.time < to)
            && same(self.kind.as_ref(), Some(record.kind.as_str()))
            && same(self.counterparty.as_ref(), record.counterparty.as_deref())
            && same(self.dataset.as_ref(), record.dataset.as_deref())
            && same(self.agreement.as_ref(), record.agreement.as_deref())
            && same(self.purpose.as_ref(), record.purpose.as_deref())
            && same(self.rule.as_ref(), record.rule.as_deref())
            && self.decision.as_ref().is_none_or(|d| {
                d.is_empty()
                    || record
                        .decision
                        .as_deref()
                        .is_some_and(|found| found.eq_ignore_ascii_case(d))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, GENESIS_HASH, RecordKind};

    fn record() -> AuditRecord {
        let entry = AuditEntry::new(RecordKind::QueryRefused, "p")
            .with_counterparty("sme")
            .with_dataset("telemetry")
            .with_purpose("quality")
            .with_decision("refused")
            .with_rule("denied_column");
        AuditRecord::seal(entry, 0, GENESIS_HASH.into()).unwrap()
    }

    #[test]
    fn every_condition_must_hold() {
        let r = record();
        assert!(AuditFilter::default().matches(&r));
        let f = |edit: fn(&mut AuditFilter)| {
            let mut filter = AuditFilter::default();
            edit(&mut filter);
            filter.matches(&r)
        };
        assert!(f(|x| x.decision = Some("REFUSED".into())));
        assert!(f(|x| x.rule = Some("denied_column".into())));
        assert!(f(|x| x.kind = Some("query_refused".into())));
        assert!(f(|x| x.dataset = Some(String::new())));
        assert!(!f(|x| x.rule = Some("min_entities".into())));
        assert!(!f(|x| x.agreement = Some("a".into())));
        assert!(!f(|x| x.counterparty = Some("other".into())));
        assert!(!f(
            |x| x.from = Some(Utc::now() + chrono::Duration::hours(1))
        ));
        assert!(f(|x| x.to = Some(Utc::now() + chrono::Duration::hours(1))));
        assert!(!f(|x| x.to = Some(Utc::now() - chrono::Duration::hours(1))));
    }
}
