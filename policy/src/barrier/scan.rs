//! `GovernedScanExec`: the scan of a governed dataset as one opaque leaf.
//!
//! It holds the table's own scan and applies, inside, the admitted consumer
//! predicates and then the policy's row filter; only rows that pass leave
//! it. Its scan is not a child in the plan tree, so no optimizer rule, now
//! or after an upgrade, can see it, push a filter or projection into it, or
//! move an expression below the row filter: whatever a consumer writes is
//! evaluated above this node, on rows the policy shows.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, Statistics, internal_err};
use datafusion::config::ConfigOptions;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{PhysicalExpr, conjunction};
use datafusion::physical_plan::expressions::Column;
use datafusion::physical_plan::filter::FilterExecBuilder;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, execution_plan::reset_plan_states,
};

/// The parts a governed scan is made of.
#[derive(Debug, Clone)]
pub struct ScanParts {
    /// The dataset id.
    pub dataset: String,
    /// Whether the dataset allows aggregates only (its rows must then reach
    /// the consumer through an enforced aggregate).
    pub aggregate_only: bool,
    /// The table's own scan (with the columns the predicates need).
    pub scan: Arc<dyn ExecutionPlan>,
    /// Consumer predicates admitted below the row filter (they cannot fail).
    pub admitted: Vec<Arc<dyn PhysicalExpr>>,
    /// The policy's row filter, over the scan's schema.
    pub row_filter: Option<Arc<dyn PhysicalExpr>>,
    /// The scan's columns that leave the node (all when `None`).
    pub projection: Option<Vec<usize>>,
    /// At most this many rows per partition (after filtering).
    pub fetch: Option<usize>,
}

/// The scan of a governed dataset, its row filter applied inside.
#[derive(Debug)]
pub struct GovernedScanExec {
    parts: ScanParts,
    inner: Arc<dyn ExecutionPlan>,
}

impl GovernedScanExec {
    /// Assembles the node from its parts.
    pub fn try_new(parts: ScanParts) -> Result<Self> {
        let inner = assemble(&parts)?;
        Ok(Self { parts, inner })
    }

    /// The parts the node was made of.
    pub fn parts(&self) -> &ScanParts {
        &self.parts
    }

    /// The dataset id.
    pub fn dataset(&self) -> &str {
        &self.parts.dataset
    }

    /// Whether the dataset allows aggregates only.
    pub fn aggregate_only(&self) -> bool {
        self.parts.aggregate_only
    }

    /// The table's own scan, inside the node.
    pub fn scan(&self) -> &Arc<dyn ExecutionPlan> {
        &self.parts.scan
    }

    fn with_scan(&self, scan: Arc<dyn ExecutionPlan>) -> Result<Self> {
        Self::try_new(ScanParts {
            scan,
            ..self.parts.clone()
        })
    }
}

/// The filter (consumer predicates first, then the row filter) and the
/// projection over the table's scan.
fn assemble(parts: &ScanParts) -> Result<Arc<dyn ExecutionPlan>> {
    let predicates: Vec<Arc<dyn PhysicalExpr>> = parts
        .admitted
        .iter()
        .chain(&parts.row_filter)
        .cloned()
        .collect();
    if !predicates.is_empty() {
        let filter = FilterExecBuilder::new(conjunction(predicates), Arc::clone(&parts.scan))
            .apply_projection(parts.projection.clone())?
            .with_fetch(parts.fetch)
            .build()?;
        return Ok(Arc::new(filter));
    }
    let schema = parts.scan.schema();
    match &parts.projection {
        Some(columns) if columns.iter().copied().ne(0..schema.fields().len()) => {
            let exprs = columns
                .iter()
                .map(|&i| {
                    let name = schema.field(i).name().clone();
                    let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(&name, i));
                    (column, name)
                })
                .collect::<Vec<_>>();
            Ok(Arc::new(ProjectionExec::try_new(
                exprs,
                Arc::clone(&parts.scan),
            )?))
        }
        _ => Ok(Arc::clone(&parts.scan)),
    }
}

impl DisplayAs for GovernedScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "GovernedScanExec: dataset={}", self.parts.dataset)?;
        if let Some(filter) = &self.parts.row_filter {
            write!(f, ", row_filter={filter}")?;
        }
        if !self.parts.admitted.is_empty() {
            let shown: Vec<String> = self.parts.admitted.iter().map(|e| e.to_string()).collect();
            write!(f, ", admitted=[{}]", shown.join(", "))?;
        }
        if let Some(fetch) = self.parts.fetch {
            write!(f, ", fetch={fetch}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for GovernedScanExec {
    fn name(&self) -> &str {
        "GovernedScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    /// None: the scan inside is not part of the plan tree.
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    /// None visible: the node's expressions are the policy's and the
    /// admitted ones, which no rule may rewrite.
    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            internal_err!("GovernedScanExec has no children")
        }
    }

    /// A copy whose scan starts afresh (metrics, dynamic state).
    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        let scan = reset_plan_states(Arc::clone(&self.parts.scan))?;
        Ok(Arc::new(self.with_scan(scan)?))
    }

    /// More partitions, when the table's scan can split its files.
    fn repartitioned(
        &self,
        target_partitions: usize,
        config: &ConfigOptions,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        match self.parts.scan.repartitioned(target_partitions, config)? {
            Some(scan) => Ok(Some(Arc::new(self.with_scan(scan)?))),
            None => Ok(None),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.inner.execute(partition, context)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.inner.metrics()
    }

    /// Unknown: statistics of the table would describe hidden rows too,
    /// and the optimizer's choices must not depend on them.
    fn partition_statistics(&self, _partition: Option<usize>) -> Result<Arc<Statistics>> {
        Ok(Arc::new(Statistics::new_unknown(&self.schema())))
    }
}
