//! Listing audit records a page at a time, newest or oldest first.
//!
//! Pages are cut by sequence number: a page's `next_cursor` is the `seq` of
//! its last record, and the next page starts after it (before it, newest
//! first). Records appended meanwhile never shift a page.

use serde::{Deserialize, Serialize};

use super::filter::AuditFilter;
use super::scan::SCAN_CHUNK;
use crate::audit::{AuditRecord, AuditStore};
use crate::{Error, Result};

/// Records in a page unless asked otherwise.
pub const DEFAULT_PAGE: usize = 100;
/// Most records in a page.
pub const MAX_PAGE: usize = 1000;

/// In which order pages run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Newest first.
    #[default]
    Desc,
    /// Oldest first.
    Asc,
}

/// Which page to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// The `next_cursor` of the previous page, if any.
    pub cursor: Option<u64>,
    /// Records per page, 1 to [`MAX_PAGE`] (default [`DEFAULT_PAGE`]).
    pub limit: Option<usize>,
    /// The order.
    pub order: Order,
}

/// One page of records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// The records, in the order asked for.
    pub records: Vec<AuditRecord>,
    /// Where the next page starts; absent on the last page.
    pub next_cursor: Option<u64>,
}

/// The page of `store`'s records matching `filter` that `request` asks for.
pub fn list_records(
    store: &dyn AuditStore,
    filter: &AuditFilter,
    request: PageRequest,
) -> Result<Page> {
    let limit = request.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(Error::Invalid {
            field: "limit".into(),
            reason: format!("must be 1 to {MAX_PAGE}"),
        });
    }
    let mut found = Vec::with_capacity(limit + 1);
    let mut keep = |record: AuditRecord| {
        if filter.matches(&record) {
            found.push(record);
        }
        found.len() <= limit
    };
    match request.order {
        Order::Asc => scan_forward(store, request.cursor.map_or(0, |c| c + 1), &mut keep)?,
        Order::Desc => {
            let end = match request.cursor {
                Some(cursor) => cursor,
                None => store.len()?,
            };
            scan_backward(store, end, &mut keep)?;
        }
    }
    let more = found.len() > limit;
    found.truncate(limit);
    Ok(Page {
        next_cursor: more.then(|| found.last().map(|r| r.seq)).flatten(),
        records: found,
    })
}

/// Hands records from `from` on to `keep` until it returns `false`.
fn scan_forward(
    store: &dyn AuditStore,
    mut from: u64,
    keep: &mut impl FnMut(AuditRecord) -> bool,
) -> Result<()> {
    loop {
        let chunk = store.range(from, SCAN_CHUNK)?;
        let Some(last) = chunk.last().map(|r| r.seq) else {
            return Ok(());
        };
        for record in chunk {
            if !keep(record) {
                return Ok(());
            }
        }
        from = last + 1;
    }
}

/// Hands records before `end`, newest first, to `keep` until it returns
/// `false`.
fn scan_backward(
    store: &dyn AuditStore,
    mut end: u64,
    keep: &mut impl FnMut(AuditRecord) -> bool,
) -> Result<()> {
    while end > 0 {
        let start = end.saturating_sub(SCAN_CHUNK as u64);
        let size = usize::try_from(end - start).unwrap_or(SCAN_CHUNK);
        let chunk = store.range(start, size)?;
        for record in chunk.into_iter().rev() {
            if !keep(record) {
                return Ok(());
            }
        }
        end = start;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, GENESIS_HASH, MemoryAuditStore, RecordKind};

    fn store(count: u64) -> MemoryAuditStore {
        let store = MemoryAuditStore::new();
        let mut prev = GENESIS_HASH.to_owned();
        let records: Vec<_> = (0..count)
            .map(|seq| {
                let decision = if seq % 3 == 0 { "refused" } else { "answered" };
                let entry = AuditEntry::new(RecordKind::QueryAnswered, "p").with_decision(decision);
                let record = AuditRecord::seal(entry, seq, prev.clone()).unwrap();
                prev.clone_from(&record.hash);
                record
            })
            .collect();
        store.append_batch(&records).unwrap();
        store
    }

    fn all_pages(store: &dyn AuditStore, filter: &AuditFilter, order: Order) -> Vec<u64> {
        let mut seqs = Vec::new();
        let mut cursor = None;
        loop {
            let request = PageRequest {
                cursor,
                limit: Some(7),
                order,
            };
            let page = list_records(store, filter, request).unwrap();
            assert!(page.records.len() <= 7);
            seqs.extend(page.records.iter().map(|r| r.seq));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return seqs,
            }
        }
    }

    #[test]
    fn pages_cover_every_match_once_in_order() {
        let store = store(10_000);
        let refused = AuditFilter {
            decision: Some("refused".into()),
            ..AuditFilter::default()
        };
        let asc = all_pages(&store, &refused, Order::Asc);
        let expected: Vec<u64> = (0..10_000).filter(|s| s % 3 == 0).collect();
        assert_eq!(asc, expected);
        let mut desc = all_pages(&store, &refused, Order::Desc);
        desc.reverse();
        assert_eq!(desc, expected);
        assert_eq!(
            all_pages(&store, &AuditFilter::default(), Order::Asc).len(),
            10_000
        );
    }

    #[test]
    fn limits_are_checked() {
        let store = store(3);
        for limit in [0, MAX_PAGE + 1] {
            let request = PageRequest {
                limit: Some(limit),
                ..PageRequest::default()
            };
            assert!(list_records(&store, &AuditFilter::default(), request).is_err());
        }
        let page = list_records(&store, &AuditFilter::default(), PageRequest::default()).unwrap();
        assert_eq!(
            page.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [2, 1, 0]
        );
        assert_eq!(page.next_cursor, None);
    }
}
