//! `GovernedTable`: a dataset as the consumer's SQL sees it. Its scan is a
//! [`GovernedScanExec`] that applies the policy's row filter itself, so the
//! row filter is part of the table, not a node an optimizer rule could move
//! a predicate past.
//!
//! Of the consumer's predicates that DataFusion offers to push into the
//! scan, the table takes only those the enforcer admits (they cannot fail on
//! any row, see [`super::admit`]) and applies them exactly, before the row
//! filter, so that selective predicates and Parquet pruning keep their
//! speed. Every other predicate stays above the scan, where it sees only rows
//! the policy shows.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Column, DFSchema, Result, Statistics};
use datafusion::datasource::TableType;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_expr::{PhysicalExpr, conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::filter_pushdown::FilterPushdown;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;

use datafusion::execution::SessionState;

use super::admit::is_infallible;
use super::scan::{GovernedScanExec, ScanParts};
use crate::model::{Access, UsagePolicy};
use crate::refusal::{Decision, Refusal, Rule};

/// A governed dataset: its table, its policy and the row filter planned
/// from the policy.
#[derive(Debug)]
pub struct GovernedTable {
    policy: Arc<UsagePolicy>,
    inner: Arc<dyn TableProvider>,
    row_filter: Option<Expr>,
}

impl GovernedTable {
    /// Governs `inner` by `policy`, planning the policy's row filter (an
    /// expression, never pasted into SQL text) against the table's schema.
    pub fn try_new(
        state: &SessionState,
        policy: Arc<UsagePolicy>,
        inner: Arc<dyn TableProvider>,
    ) -> Decision<Self> {
        let row_filter = match &policy.row_filter {
            Some(sql) => {
                let schema = DFSchema::try_from(inner.schema().as_ref().clone())
                    .map_err(|_| unfit(&policy))?;
                let expr = state
                    .create_logical_expr(sql, &schema)
                    .map_err(|_| unfit(&policy))?;
                Some(expr)
            }
            None => None,
        };
        Ok(Self::new(policy, inner, row_filter))
    }

    /// Governs `inner` by `policy` with an already planned row filter.
    pub fn new(
        policy: Arc<UsagePolicy>,
        inner: Arc<dyn TableProvider>,
        row_filter: Option<Expr>,
    ) -> Self {
        Self {
            policy,
            inner,
            row_filter,
        }
    }

    /// The policy governing the table.
    pub fn policy(&self) -> &Arc<UsagePolicy> {
        &self.policy
    }

    /// The table underneath.
    pub fn inner(&self) -> &Arc<dyn TableProvider> {
        &self.inner
    }

    /// The planned row filter.
    pub fn row_filter(&self) -> Option<&Expr> {
        self.row_filter.as_ref()
    }

    fn df_schema(&self) -> Result<DFSchema> {
        DFSchema::try_from(self.inner.schema().as_ref().clone())
    }

    /// Whether a consumer predicate may run inside the scan, before the row
    /// filter: it must be unable to raise an error on any row.
    fn admits(&self, expr: &Expr, schema: &DFSchema) -> bool {
        if expr.contains_outer() {
            return false;
        }
        match create_physical_expr(
            &unqualify(expr),
            schema,
            &ExecutionProps::new(),
            &PhysicalPlanningContext::default(),
        ) {
            Ok(physical) => is_infallible(&physical, schema.as_arrow()),
            Err(_) => false,
        }
    }
}

#[async_trait]
impl TableProvider for GovernedTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let schema = self.df_schema()?;
        Ok(filters
            .iter()
            .map(|f| {
                if self.admits(f, &schema) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let table_schema = self.df_schema()?;
        // A filter the table did not admit never reaches here; check again,
        // so that no caller can place one below the row filter.
        let admitted: Vec<&Expr> = filters
            .iter()
            .filter(|f| self.admits(f, &table_schema))
            .collect();
        if admitted.len() != filters.len() {
            return datafusion::common::plan_err!(
                "a predicate that could fail was offered to the scan of `{}`",
                self.policy.dataset()
            );
        }
        let width = table_schema.fields().len();
        let wanted: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..width).collect());
        let mut needed: BTreeSet<usize> = wanted.iter().copied().collect();
        for expr in admitted.iter().copied().chain(&self.row_filter) {
            for column in expr.column_refs() {
                if let Some(i) =
                    table_schema.maybe_index_of_column(&Column::new_unqualified(&column.name))
                {
                    needed.insert(i);
                }
            }
        }
        let read: Vec<usize> = needed.into_iter().collect();
        // Pruning (row groups, files) may use the row filter and the admitted
        // predicates; they are applied exactly inside the node either way.
        let mut pruning: Vec<Expr> = admitted.iter().map(|e| (*e).clone()).collect();
        if let Some(row_filter) = &self.row_filter {
            pruning.extend(split_conjunction(row_filter).into_iter().cloned());
        }
        let scan = self.inner.scan(state, Some(&read), &pruning, None).await?;
        let scan_schema = DFSchema::try_from(scan.schema().as_ref().clone())?;
        let physical = |e: &Expr| state.create_physical_expr(unqualify(e), &scan_schema);
        let admitted = admitted
            .iter()
            .map(|e| physical(e))
            .collect::<Result<Vec<_>>>()?;
        let row_filter = self.row_filter.as_ref().map(physical).transpose()?;
        let scan = with_pruning(scan, &admitted, row_filter.as_ref(), state)?;
        let positions: Vec<usize> = wanted
            .iter()
            .filter_map(|w| read.iter().position(|r| r == w))
            .collect();
        let projection = if positions.iter().copied().eq(0..read.len()) {
            None
        } else {
            Some(positions)
        };
        let parts = ScanParts {
            dataset: self.policy.dataset().to_owned(),
            aggregate_only: self.policy.access == Access::Aggregate,
            scan,
            admitted,
            row_filter,
            projection,
            fetch: limit,
        };
        Ok(Arc::new(GovernedScanExec::try_new(parts)?))
    }

    fn statistics(&self) -> Option<Statistics> {
        None
    }
}

fn unfit(policy: &UsagePolicy) -> Refusal {
    Refusal::new(
        Rule::Table,
        format!(
            "the row filter of `{}` does not fit the table; the provider must fix its policy",
            policy.dataset()
        ),
    )
}

/// The table's scan told of the predicates it will be filtered by, as
/// DataFusion's filter pushdown tells it of a filter above it: a Parquet
/// scan then prunes row groups and pages by them (and, with
/// `pushdown_filters`, applies them while reading). The governed scan
/// applies them itself either way.
fn with_pruning(
    scan: Arc<dyn ExecutionPlan>,
    admitted: &[Arc<dyn PhysicalExpr>],
    row_filter: Option<&Arc<dyn PhysicalExpr>>,
    state: &dyn Session,
) -> Result<Arc<dyn ExecutionPlan>> {
    let predicates: Vec<Arc<dyn PhysicalExpr>> =
        admitted.iter().chain(row_filter).cloned().collect();
    if predicates.is_empty() {
        return Ok(scan);
    }
    let filter = Arc::new(FilterExec::try_new(conjunction(predicates), scan)?);
    let pushed = FilterPushdown::new().optimize(filter, state.config_options())?;
    Ok(match pushed.downcast_ref::<FilterExec>() {
        Some(filter) => Arc::clone(filter.input()),
        None => pushed,
    })
}

/// The expression with its columns unqualified (the scan's schema has no
/// table names).
fn unqualify(expr: &Expr) -> Expr {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    expr.clone()
        .transform(|e| {
            Ok(match e {
                Expr::Column(c) if c.relation.is_some() => {
                    Transformed::yes(Expr::Column(Column::new_unqualified(&c.name)))
                }
                other => Transformed::no(other),
            })
        })
        .map(|t| t.data)
        .unwrap_or_else(|_| expr.clone())
}
