//! Rules `table` and `validity` at the leaves: a scan reads a governed
//! dataset, through the [`GovernedTable`] of its very policy (whose scan
//! applies the row filter, a barrier no optimizer rule can cross), while
//! that policy is in force; every column leaves it bare, with its class.

use std::sync::Arc;

use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{LogicalPlan, TableScan};

use crate::barrier::GovernedTable;
use crate::enforce::lineage::{Col, Rel, Source};
use crate::enforce::rule::{NodeContext, NodeRule};
use crate::model::UsagePolicy;
use crate::refusal::{Decision, Refusal, Rule};

/// Table scans.
pub struct Scan;

impl NodeRule for Scan {
    fn name(&self) -> &'static str {
        "scan"
    }

    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>> {
        let LogicalPlan::TableScan(scan) = cx.plan else {
            return Ok(None);
        };
        let name = scan.table_name.table();
        let Some(policy) = cx.governed.get(name) else {
            return Err(Refusal::new(
                Rule::Table,
                format!("`{}` is not a dataset of your agreements", scan.table_name),
            ));
        };
        policy.in_force(name, cx.now)?;
        if !scan.filters.is_empty() || scan.fetch.is_some() {
            return Err(Refusal::new(
                Rule::Structure,
                "a scan may not carry filters or limits of its own",
            ));
        }
        let rel = bare_columns(scan, policy);
        if !is_governed_by(scan, policy) {
            return Err(Refusal::new(
                Rule::Table,
                format!("`{name}` is not registered as a governed dataset"),
            ));
        }
        Ok(Some(rel))
    }

    /// The scan as it is: the row filter is inside its table.
    fn rewrite(
        &self,
        cx: &NodeContext<'_>,
        _inputs: Vec<LogicalPlan>,
        _subqueries: Vec<LogicalPlan>,
    ) -> Decision<LogicalPlan> {
        Ok(cx.plan.clone())
    }
}

/// Every scanned column, bare, with its class under `policy`; the rows are
/// unaggregated rows of the dataset.
fn bare_columns(scan: &TableScan, policy: &UsagePolicy) -> Rel {
    let table: Arc<str> = Arc::from(scan.table_name.table());
    let cols = scan
        .projected_schema
        .fields()
        .iter()
        .map(|f| {
            Col::Bare(Source {
                table: Arc::clone(&table),
                column: Arc::from(f.name().as_str()),
                class: policy.class_of(f.name()),
            })
        })
        .collect();
    Rel {
        cols,
        unaggregated: vec![table],
        impure: None,
    }
}

/// Whether the scan reads a [`GovernedTable`] of this very policy (a table
/// that is not is refused).
fn is_governed_by(scan: &TableScan, policy: &UsagePolicy) -> bool {
    source_as_provider(&scan.source)
        .ok()
        .is_some_and(|provider| {
            provider
                .downcast_ref::<GovernedTable>()
                .is_some_and(|table| table.policy().as_ref() == policy)
        })
}
