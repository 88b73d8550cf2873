//! What a data officer does with the audit log, without HTTP: who may act
//! as officer ([`access`]), listing and filtering records a page at a time,
//! usage and value figures per dataset, read-only SQL over the log as the
//! table `audit`, and exports (JSON Lines, Parquet).
//!
//! | file | holds |
//! |---|---|
//! | `access` | [`is_officer_of`]: the officer credential rule |
//! | `filter` | [`AuditFilter`]: which records a request is about |
//! | `page` | [`list_records`] and its [`Page`] (cursor pagination) |
//! | `usage` | [`usage_figures`]: queries, refusals, rows, consumers per dataset |
//! | `table` | the Arrow schema of the log and [`audit_table`], the `audit` table |
//! | `sql` | [`run_audit_sql`]: one read-only query under limits |
//! | `export` | [`JsonLinesExport`] and [`export_parquet`] |
//!
//! Every reader scans the store in chunks of [`SCAN_CHUNK`] records, so
//! memory stays bounded whatever the length of the log.

mod access;
mod export;
mod filter;
mod page;
mod scan;
mod sql;
mod table;
mod usage;

pub use access::{OFFICER_ROLE, is_officer_of};
pub use export::{JsonLinesExport, export_parquet};
pub use filter::AuditFilter;
pub use page::{DEFAULT_PAGE, MAX_PAGE, Order, Page, PageRequest, list_records};
pub use scan::SCAN_CHUNK;
pub use sql::{AuditSqlAnswer, SqlLimits, run_audit_sql};
pub use table::{AUDIT_TABLE, audit_schema, audit_table, records_to_batch};
pub use usage::{Bucket, ConsumerUsage, DatasetUsage, TimeBucket, UsageReport, usage_figures};
