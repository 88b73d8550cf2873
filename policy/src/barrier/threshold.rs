//! The threshold of an enforced aggregate as a barrier: a logical node
//! ([`ThresholdNode`]) that no predicate may be pushed through, planned as a
//! physical node ([`ThresholdExec`]) that accepts no filter from its parents.
//! Groups under `min_rows` rows or `min_entities` distinct entities are
//! dropped here, before any consumer expression sees a group.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchemaRef, Result, Statistics, internal_err, plan_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, Operator, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};

/// The hidden count of rows of each group.
pub const ROWS: &str = "__dataspace_rows";
/// The hidden count of distinct entities of each group.
pub const ENTITIES: &str = "__dataspace_entities";

/// What a threshold requires of each group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct ThresholdSpec {
    /// The dataset whose aggregate this is.
    pub dataset: String,
    /// Fewest rows per group.
    pub min_rows: u64,
    /// Fewest distinct entities per group.
    pub min_entities: u64,
}

/// The logical threshold over an enforced aggregate whose output holds the
/// hidden columns [`ROWS`] and [`ENTITIES`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThresholdNode {
    spec: ThresholdSpec,
    input: Arc<LogicalPlan>,
    schema: DFSchemaRef,
}

impl ThresholdNode {
    /// The threshold `spec` over `input` (an aggregate with the hidden columns).
    pub fn try_new(spec: ThresholdSpec, input: LogicalPlan) -> Result<Self> {
        let schema = Arc::clone(input.schema());
        for name in [ROWS, ENTITIES] {
            if schema.fields().iter().filter(|f| f.name() == name).count() != 1 {
                return plan_err!("the aggregate under a threshold must carry one `{name}`");
            }
        }
        Ok(Self {
            spec,
            input: Arc::new(input),
            schema,
        })
    }

    /// The node as a plan.
    pub fn into_plan(self) -> LogicalPlan {
        LogicalPlan::Extension(Extension {
            node: Arc::new(self),
        })
    }

    /// What the threshold requires.
    pub fn spec(&self) -> &ThresholdSpec {
        &self.spec
    }

    fn hidden_indices(&self) -> Vec<usize> {
        self.schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name() == ROWS || f.name() == ENTITIES)
            .map(|(i, _)| i)
            .collect()
    }
}

impl PartialOrd for ThresholdNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.spec.partial_cmp(&other.spec) {
            Some(Ordering::Equal) => self.input.partial_cmp(&other.input),
            cmp => cmp,
        }
        .filter(|cmp| *cmp != Ordering::Equal || self == other)
    }
}

impl UserDefinedLogicalNodeCore for ThresholdNode {
    fn name(&self) -> &str {
        "Threshold"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    /// Every column: no predicate crosses the threshold.
    fn prevent_predicate_push_down_columns(&self) -> HashSet<String> {
        self.schema
            .columns()
            .iter()
            .map(|c| c.flat_name())
            .chain(self.schema.fields().iter().map(|f| f.name().clone()))
            .collect()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "Threshold: dataset={}, {ROWS} >= {}, {ENTITIES} >= {}",
            self.spec.dataset, self.spec.min_rows, self.spec.min_entities
        )
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        if !exprs.is_empty() || inputs.len() != 1 {
            return internal_err!("a threshold has one input and no expressions");
        }
        Self::try_new(self.spec.clone(), inputs.swap_remove(0))
    }

    /// The columns asked for, and the hidden counts the threshold reads.
    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let mut needed: Vec<usize> = output_columns.to_vec();
        needed.extend(self.hidden_indices());
        needed.sort_unstable();
        needed.dedup();
        Some(vec![needed])
    }

    fn supports_limit_pushdown(&self) -> bool {
        false
    }
}

/// The physical threshold: drops the groups under the threshold; accepts no
/// filter from its parents (the default of [`ExecutionPlan`]) and exposes no
/// expression to rewrite.
#[derive(Debug)]
pub struct ThresholdExec {
    spec: ThresholdSpec,
    input: Arc<dyn ExecutionPlan>,
    filter: Arc<FilterExec>,
}

impl ThresholdExec {
    /// The threshold `spec` over `input`, an aggregate with the hidden columns.
    pub fn try_new(spec: ThresholdSpec, input: Arc<dyn ExecutionPlan>) -> Result<Self> {
        let schema = input.schema();
        let column = |name: &str| -> Result<Arc<dyn PhysicalExpr>> {
            let index = schema.index_of(name)?;
            Ok(Arc::new(Column::new(name, index)))
        };
        let at_least = |name: &str, n: u64| -> Result<Arc<dyn PhysicalExpr>> {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            Ok(Arc::new(BinaryExpr::new(
                column(name)?,
                Operator::GtEq,
                Arc::new(Literal::new(ScalarValue::Int64(Some(n)))),
            )))
        };
        let predicate: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            at_least(ROWS, spec.min_rows)?,
            Operator::And,
            at_least(ENTITIES, spec.min_entities)?,
        ));
        let filter = Arc::new(FilterExec::try_new(predicate, Arc::clone(&input))?);
        Ok(Self {
            spec,
            input,
            filter,
        })
    }

    /// What the threshold requires.
    pub fn spec(&self) -> &ThresholdSpec {
        &self.spec
    }
}

impl DisplayAs for ThresholdExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "ThresholdExec: dataset={}, {ROWS} >= {}, {ENTITIES} >= {}",
            self.spec.dataset, self.spec.min_rows, self.spec.min_entities
        )
    }
}

impl ExecutionPlan for ThresholdExec {
    fn name(&self) -> &str {
        "ThresholdExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.filter.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("ThresholdExec has one child");
        }
        Ok(Arc::new(Self::try_new(
            self.spec.clone(),
            children.swap_remove(0),
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.filter.execute(partition, context)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.filter.metrics()
    }

    /// Unknown: how many groups pass depends on hidden rows.
    fn partition_statistics(&self, _partition: Option<usize>) -> Result<Arc<Statistics>> {
        Ok(Arc::new(Statistics::new_unknown(&self.schema())))
    }
}

/// Plans [`ThresholdNode`]s as [`ThresholdExec`]s.
#[derive(Debug, Default)]
pub struct BarrierPlanner;

#[async_trait]
impl ExtensionPlanner for BarrierPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(threshold) = node.as_any().downcast_ref::<ThresholdNode>() else {
            return Ok(None);
        };
        let [input] = physical_inputs else {
            return internal_err!("a threshold has one input");
        };
        Ok(Some(Arc::new(ThresholdExec::try_new(
            threshold.spec.clone(),
            Arc::clone(input),
        )?)))
    }
}
