//! Queries charged per agreement: counted atomically, so concurrent queries
//! can never overspend, and rebuilt from the audit log's `quota_charged`
//! records at start-up (the pipeline writes one, durably, before a charged
//! query runs).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use policy::enforce::{Refusal, Rule};

use crate::audit::{AuditStore, RecordKind};
use crate::{Error, Result};

/// Records read at a time when the counters are rebuilt.
const REBUILD_CHUNK: usize = 10_000;

/// Queries charged so far, by agreement id.
#[derive(Debug, Default)]
pub struct Quota {
    used: Mutex<HashMap<String, u64>>,
}

impl Quota {
    /// The counters of an audit log, from its `quota_charged` records.
    pub fn from_log(store: &dyn AuditStore) -> Result<Self> {
        let mut used = HashMap::new();
        let mut from = 0;
        loop {
            let chunk = store.range(from, REBUILD_CHUNK)?;
            let Some(last) = chunk.last() else { break };
            from = last.seq + 1;
            for record in &chunk {
                if let (RecordKind::QuotaCharged, Some(agreement)) =
                    (record.kind, &record.agreement)
                {
                    *used.entry(agreement.clone()).or_insert(0) += 1;
                }
            }
        }
        Ok(Self {
            used: Mutex::new(used),
        })
    }

    /// Charges one query to `agreement`; refuses once `max` are used.
    /// Returns the number of this query (1 for the first).
    pub fn charge(&self, agreement: &str, max: Option<u64>) -> Result<u64> {
        let mut used = self.lock()?;
        let used = used.entry(agreement.to_owned()).or_insert(0);
        if let Some(max) = max.filter(|m| *used >= *m) {
            return Err(Refusal::new(
                Rule::Quota,
                format!("the agreement's quota of {max} queries is used up"),
            )
            .into());
        }
        *used += 1;
        Ok(*used)
    }

    /// Queries charged to `agreement` so far.
    pub fn used(&self, agreement: &str) -> Result<u64> {
        Ok(self.lock()?.get(agreement).copied().unwrap_or(0))
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, u64>>> {
        self.used
            .lock()
            .map_err(|_| Error::Storage("the quota lock is poisoned".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_refuses_past_its_maximum_and_counts_per_agreement() {
        let quota = Quota::default();
        assert_eq!(quota.charge("a", Some(2)).unwrap(), 1);
        assert_eq!(quota.charge("a", Some(2)).unwrap(), 2);
        let refused = quota.charge("a", Some(2)).unwrap_err();
        assert!(
            matches!(&refused, Error::Refused(r) if r.rule == Rule::Quota),
            "{refused}"
        );
        assert_eq!(quota.used("a").unwrap(), 2);
        assert_eq!(quota.charge("b", None).unwrap(), 1);
        assert_eq!(quota.used("c").unwrap(), 0);
    }
}
