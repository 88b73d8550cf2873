//! Governed query execution: plan and enforce a consumer's SQL, run the
//! enforced plan under a memory limit and a timeout, refuse results over the
//! row limit whole, and keep engine messages (which can quote data values)
//! out of what the consumer sees.
//!
//! Prepared plans are kept per SQL text in a [`PlanCache`] bounded in bytes
//! (by the estimate [`plan_weight`]; one cache may serve every engine of a
//! connector, `plan_cache_bytes`): a repeated query skips parsing,
//! enforcement and optimisation and, where
//! DataFusion allows re-running a physical plan (tables in memory, no
//! dynamic filters), physical planning. Only the time-dependent check (is
//! every policy it reads in force now?) runs again, so a cached plan
//! answers exactly what a fresh one would.
//!
//! A query whose first run scanned at most [`SMALL_SCAN_ROWS`] rows (a
//! selective query on pruned Parquet, a small table) or took at most
//! [`SMALL_QUERY_TIME`] keeps a plan with one partition instead: with many
//! small queries in flight, the cores are better spent on other queries
//! than on splitting and merging a few milliseconds of work.
//!
//! Planning is bounded like execution: it runs under the query's time limit
//! and holds a reservation of the engine's memory pool for its estimated
//! peak ([`planning_bytes`]) until it ends, so planning and execution
//! together stay within `query_memory_bytes` (a query whose planning does
//! not fit is refused before it is parsed).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::memory_pool::{FairSpillPool, MemoryConsumer, MemoryReservation};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{SessionState, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::physical_plan::{ExecutionPlan, displayable, execution_plan::reset_plan_states};
use policy::barrier::{GovernedScanExec, GovernedTable, verify_physical_plan};
use policy::enforce::{EnforcedPlan, Governed, Refusal, Rule, SqlLimits};
use policy::model::UsagePolicy;

use crate::plan_cache::PlanCache;
use crate::{Error, Result, tables};

/// Limits on one query's execution.
#[derive(Debug, Clone, Copy)]
pub struct ExecutionLimits {
    /// Memory the query may hold, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock time the query may take (planning and execution each).
    pub timeout: Duration,
    /// Bounds on the SQL text, checked before planning.
    pub sql: SqlLimits,
}

impl Default for ExecutionLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 1 << 30,
            timeout: Duration::from_secs(60),
            sql: SqlLimits::default(),
        }
    }
}

/// Every planning product of one query.
struct Planned {
    enforced: EnforcedPlan,
    optimized: LogicalPlan,
    physical: Arc<dyn ExecutionPlan>,
    /// Whether the answer depends on the data only (no clock, no chance).
    immutable: bool,
}

/// The stack of the thread each query is planned on. Expression depth and
/// size are bounded before planning (`SqlLimits`); this leaves ample room
/// for DataFusion's recursive planning of what the bounds let through, in
/// debug builds too. Only the pages touched are ever committed.
pub const PLANNING_STACK: usize = 64 << 20;

/// Runs `work` on a new thread with [`PLANNING_STACK`] (inside the current
/// tokio runtime, for the I/O of planning), waiting at most `timeout`.
async fn on_planning_thread<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T>> + Send + 'static,
    timeout: Duration,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("dataspace-plan".to_owned())
        .stack_size(PLANNING_STACK)
        .spawn(move || {
            let _runtime = handle.enter();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                futures::executor::block_on(work)
            }));
            let _ = tx.send(outcome);
        })
        .map_err(execution_error)?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(Ok(result))) => result,
        Ok(Ok(Err(_panic))) => {
            let id = new_error_id();
            tracing::error!(error_id = %id, "planning panicked");
            Err(Error::Execution { id })
        }
        Ok(Err(_)) => Err(execution_error(
            "the planning thread ended without an answer",
        )),
        Err(_) => {
            let id = new_error_id();
            tracing::warn!(error_id = %id, "planning took longer than {timeout:?}");
            Err(Error::Execution { id })
        }
    }
}

/// A query planned to the end and verified, not run.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The enforced logical plan.
    pub enforced: EnforcedPlan,
    /// The verified physical plan that would run.
    pub physical: Arc<dyn ExecutionPlan>,
}

impl Checked {
    /// The physical plan, one node a line.
    pub fn physical_text(&self) -> String {
        displayable(self.physical.as_ref()).indent(true).to_string()
    }
}

/// The answer to a governed query.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The result, in Arrow record batches.
    pub batches: Vec<RecordBatch>,
    /// Rows in the result.
    pub rows: usize,
}

impl Answer {
    /// The schema of the result (empty when there is no batch).
    pub fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.batches.first().map_or_else(
            || Arc::new(datafusion::arrow::datatypes::Schema::empty()),
            RecordBatch::schema,
        )
    }
}

/// A session that holds governed tables and answers SQL under their policies.
pub struct GovernedEngine {
    state: SessionState,
    /// The same session (tables, memory pool) planning one partition.
    single: SessionState,
    governed: Governed,
    limits: ExecutionLimits,
    /// Prepared plans by SQL text, for queries whose answer depends only
    /// on the data (no `now()`, `random()` or other non-immutable
    /// function), under this engine's `id`; possibly shared with other
    /// engines.
    cache: Arc<Plans>,
    /// This engine's key in `cache`.
    id: u64,
    small_query_time: Duration,
}

/// Prepared plans of one or more engines, within a byte budget.
pub type Plans = PlanCache<Prepared>;

/// Default budget of an engine's own plan cache, and of a connector's
/// (`plan_cache_bytes`): 64 MiB.
pub const DEFAULT_PLAN_CACHE_BYTES: usize = 64 << 20;

/// The memory a prepared plan of `sql` is taken to hold, in bytes:
/// [`PLAN_BASE_BYTES`] plus [`PLAN_BYTES_PER_SQL_BYTE`] per byte of text.
/// Measured (`connector/examples/plan_memory.rs`: growth of the process's
/// resident memory with a hundred distinct plans kept) on texts close to
/// the SQL bounds: up to 47 bytes per SQL byte (an `IN` list of 9,000
/// numbers), 31 for 1,900 comparisons, less for query blocks and long
/// literals; the factor leaves room for shapes not measured and for the
/// allocator's waste, and overestimates the others, which only keeps
/// fewer plans.
pub fn plan_weight(sql: &str) -> usize {
    PLAN_BASE_BYTES.saturating_add(sql.len().saturating_mul(PLAN_BYTES_PER_SQL_BYTE))
}

/// The fixed part of [`plan_weight`]: schemas, plan nodes of a short query.
pub const PLAN_BASE_BYTES: usize = 64 << 10;

/// The part of [`plan_weight`] per byte of SQL text.
pub const PLAN_BYTES_PER_SQL_BYTE: usize = 128;

/// The memory reserved while `sql` is planned: the parsed text and the
/// logical, optimised and physical plans live at once, so twice
/// [`plan_weight`].
pub fn planning_bytes(sql: &str) -> usize {
    plan_weight(sql).saturating_mul(2)
}

/// Hands out engine keys in a shared [`Plans`].
static NEXT_ENGINE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn next_engine_id() -> u64 {
    NEXT_ENGINE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Clone for GovernedEngine {
    /// A copy with the same tables and policies and an empty plan cache (a
    /// copy may register other tables, which its plans must not miss).
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            single: self.single.clone(),
            governed: self.governed.clone(),
            limits: self.limits,
            cache: Arc::clone(&self.cache),
            id: next_engine_id(),
            small_query_time: self.small_query_time,
        }
    }
}

impl Drop for GovernedEngine {
    /// Its plans leave a shared cache with it.
    fn drop(&mut self) {
        self.cache.forget(self.id);
    }
}

/// A query ready to run: enforced and optimised, and physically planned
/// when the physical plan can be run again.
#[derive(Clone)]
enum Ready {
    /// A physical plan without run state that outlives a run (no dynamic
    /// filters); each run executes a copy with fresh state.
    Physical(Arc<dyn ExecutionPlan>),
    /// The optimised logical plan; each run plans it physically, in one
    /// partition when `single`.
    Logical { plan: LogicalPlan, single: bool },
    /// A physical plan just planned, executed as it is (never taken from
    /// the cache).
    Fresh(Arc<dyn ExecutionPlan>),
}

/// A prepared query (kept in [`Plans`]).
#[derive(Clone)]
pub struct Prepared {
    ready: Ready,
    /// The datasets it reads (their policies must be in force at each run).
    datasets: Vec<String>,
    /// The policy's row limit, if any.
    max_rows: Option<u64>,
}

/// Most rows a query's first run may scan for its kept plan to have one
/// partition.
pub const SMALL_SCAN_ROWS: usize = 100_000;

/// Longest first run after which a query's kept plan has one partition.
pub const SMALL_QUERY_TIME: Duration = Duration::from_millis(5);

impl GovernedEngine {
    /// An engine with no tables yet and a plan cache of its own
    /// ([`DEFAULT_PLAN_CACHE_BYTES`]).
    pub fn new(limits: ExecutionLimits) -> Result<Self> {
        Self::with_plans(limits, Arc::new(Plans::new(DEFAULT_PLAN_CACHE_BYTES)))
    }

    /// An engine with no tables yet that keeps its prepared plans in
    /// `plans`, which other engines may share.
    pub fn with_plans(limits: ExecutionLimits, plans: Arc<Plans>) -> Result<Self> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
            .build_arc()
            .map_err(execution_error)?;
        let state = SessionStateBuilder::new_from_existing(policy::sql::governed_state(
            policy::sql::governed_config(),
        ))
        .with_runtime_env(runtime)
        .build();
        let one_partition = state.config().clone().with_target_partitions(1);
        let single = SessionStateBuilder::new_from_existing(state.clone())
            .with_config(one_partition)
            .build();
        Ok(Self {
            state,
            single,
            governed: Governed::new(),
            limits,
            cache: plans,
            id: next_engine_id(),
            small_query_time: SMALL_QUERY_TIME,
        })
    }

    /// Registers the dataset at `path` under `policy`, after checking the
    /// policy against the dataset's schema; its files are read only where
    /// they really lie under `roots`.
    pub async fn add_dataset(
        &mut self,
        policy: UsagePolicy,
        path: &Path,
        roots: &[PathBuf],
    ) -> Result<()> {
        let table = tables::open_table(&self.state, policy.dataset(), path, roots).await?;
        self.register_provider(policy, table)
    }

    /// Registers an already opened table under `policy`.
    pub fn register_provider(
        &mut self,
        policy: UsagePolicy,
        table: Arc<dyn datafusion::catalog::TableProvider>,
    ) -> Result<()> {
        policy.validate_against_schema(&table.schema())?;
        let name = policy.dataset().to_owned();
        let policy = Arc::new(policy);
        // The row filter becomes part of the table's scan: a barrier.
        let table = Arc::new(GovernedTable::try_new(
            &self.state,
            Arc::clone(&policy),
            table,
        )?);
        let schema = default_schema(&self.state).ok_or_else(|| Error::Table {
            name: name.clone(),
            path: String::new(),
            reason: "the session has no default schema".to_owned(),
        })?;
        schema
            .register_table(name.clone(), table)
            .map_err(|e| Error::Table {
                name,
                path: String::new(),
                reason: e.strip_backtrace(),
            })?;
        self.governed.insert(policy);
        self.cache.forget(self.id);
        Ok(())
    }

    /// The governed datasets.
    pub fn governed(&self) -> &Governed {
        &self.governed
    }

    /// The session state (for planning only).
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// Plans and enforces `sql` at `now`, then optimises and plans it
    /// physically and verifies the plan that would run, reading no data rows
    /// (a dry run).
    pub async fn plan(&self, sql: &str, now: DateTime<Utc>) -> Result<Checked> {
        let planned = self.plan_fully(sql, now).await?;
        Ok(Checked {
            enforced: planned.enforced,
            physical: planned.physical,
        })
    }

    /// Plans and enforces `sql` at `now` (the logical plan only), on the
    /// calling thread.
    pub async fn enforce(&self, sql: &str, now: DateTime<Utc>) -> Result<EnforcedPlan, Refusal> {
        policy::sql::plan_governed_sql(&self.state, sql, &self.governed, now, &self.limits.sql)
            .await
    }

    /// Every planning step of `sql`, from the text to the verified physical
    /// plan, on a thread of its own with a known stack ([`PLANNING_STACK`])
    /// and under the query's time limit: no SQL text, however deep, can
    /// exhaust a worker's stack, and a panic in planning refuses the query
    /// instead of ending the process.
    async fn plan_fully(&self, sql: &str, now: DateTime<Utc>) -> Result<Planned> {
        let reservation = self.reserve_planning(sql)?;
        let state = self.state.clone();
        let governed = self.governed.clone();
        let limits = self.limits.sql;
        let sql = sql.to_owned();
        let work = async move {
            // Held until planning ends, also when the caller has stopped
            // waiting for it (timeout): the pool counts a planning thread
            // still running.
            let _reservation = reservation;
            let enforced =
                policy::sql::plan_governed_sql(&state, &sql, &governed, now, &limits).await?;
            let immutable = is_immutable(&enforced.plan);
            let mut state = state;
            if !immutable {
                // `now()` and its kin take their value from the clock started here.
                state.mark_start_execution();
            }
            let optimized = optimize(&state, &enforced.plan)?;
            let physical = physical(&state, &optimized).await?;
            Ok(Planned {
                enforced,
                optimized,
                physical,
                immutable,
            })
        };
        on_planning_thread(work, self.limits.timeout).await
    }

    /// Reserves [`planning_bytes`] of `sql` in the engine's memory pool, or
    /// refuses the query before anything is parsed.
    fn reserve_planning(&self, sql: &str) -> Result<MemoryReservation> {
        let pool = &self.state.runtime_env().memory_pool;
        let reservation = MemoryConsumer::new("dataspace-planning").register(pool);
        let needed = planning_bytes(sql);
        match reservation.try_grow(needed) {
            Ok(()) => Ok(reservation),
            Err(_) => {
                let mib = |bytes: usize| bytes.div_ceil(1 << 20);
                let message = if needed > self.limits.memory_bytes {
                    format!(
                        "planning a query of {} bytes takes about {} MiB by estimate, more than the {} MiB of `query_memory_bytes`: send a shorter query",
                        sql.len(),
                        mib(needed),
                        mib(self.limits.memory_bytes)
                    )
                } else {
                    format!(
                        "planning a query of {} bytes takes about {} MiB by estimate, more than `query_memory_bytes` has free now: retry later or send a shorter query",
                        sql.len(),
                        mib(needed)
                    )
                };
                Err(Error::Refused(Refusal::new(Rule::Statement, message)))
            }
        }
    }

    /// Plans, enforces and executes `sql` at `now`. A query seen before
    /// reuses its prepared plan after checking that the policies it reads
    /// are in force at `now`.
    pub async fn query(&self, sql: &str, now: DateTime<Utc>) -> Result<Answer> {
        if let Some(prepared) = self.cache.get(self.id, sql) {
            self.check_in_force(&prepared.datasets, now)?;
            return Ok(self.run(prepared).await?.0);
        }
        let planned = self.plan_fully(sql, now).await?;
        let plan = planned.physical;
        let first = Prepared {
            ready: Ready::Fresh(Arc::clone(&plan)),
            datasets: planned.enforced.datasets,
            max_rows: planned.enforced.max_rows,
        };
        if !planned.immutable {
            return Ok(self.run(first).await?.0);
        }
        let optimized = planned.optimized;
        let started = std::time::Instant::now();
        let (answer, scanned) = self.run(first.clone()).await?;
        let single = self.state.config().target_partitions() > 1
            && (scanned <= SMALL_SCAN_ROWS || started.elapsed() <= self.small_query_time);
        let ready = if !can_rerun(&plan) {
            Ready::Logical {
                plan: optimized,
                single,
            }
        } else if single {
            match physical(&self.single, &optimized).await {
                Ok(one) if can_rerun(&one) => Ready::Physical(one),
                _ => Ready::Physical(plan),
            }
        } else {
            Ready::Physical(plan)
        };
        self.cache
            .insert(self.id, sql, Prepared { ready, ..first }, plan_weight(sql));
        Ok(answer)
    }

    /// Sets the first-run time under which a query's kept plan gets one
    /// partition ([`SMALL_QUERY_TIME`] by default; zero keeps only the
    /// rule on scanned rows).
    pub fn set_small_query_time(&mut self, time: Duration) {
        self.small_query_time = time;
    }

    /// Prepared plans held (for tests and benchmarks).
    pub fn cached_plans(&self) -> usize {
        self.cache.len_of(self.id)
    }

    /// The plan cache this engine keeps its plans in.
    pub fn plans(&self) -> &Arc<Plans> {
        &self.cache
    }

    /// Refuses when a policy of `datasets` is not in force at `now`, as the
    /// enforcer would have.
    fn check_in_force(&self, datasets: &[String], now: DateTime<Utc>) -> Result<()> {
        for name in datasets {
            match self.governed.get(name) {
                Some(policy) => policy.in_force(name, now)?,
                // A dataset with no policy here has none in force.
                None => {
                    return Err(Error::Refused(Refusal::new(
                        Rule::Validity,
                        format!("the usage policy of `{name}` is not in force now"),
                    )));
                }
            }
        }
        Ok(())
    }

    /// Runs a prepared query under the time limit, then the row limit;
    /// returns the answer and the rows its scans produced.
    async fn run(&self, prepared: Prepared) -> Result<(Answer, usize)> {
        let work = async {
            let plan = match prepared.ready {
                Ready::Physical(plan) => reset_plan_states(plan).map_err(execution_error)?,
                Ready::Logical { plan, single } => {
                    let state = if single { &self.single } else { &self.state };
                    physical(state, &plan).await?
                }
                Ready::Fresh(plan) => plan,
            };
            let context = Arc::new(TaskContext::from(&self.state));
            let batches = datafusion::physical_plan::collect(Arc::clone(&plan), context)
                .await
                .map_err(engine_error)?;
            Ok::<_, Error>((batches, scanned_rows(&plan)))
        };
        let (batches, scanned) = match tokio::time::timeout(self.limits.timeout, work).await {
            Ok(result) => result?,
            Err(_) => {
                let id = new_error_id();
                tracing::warn!(error_id = %id, "query timed out after {:?}", self.limits.timeout);
                return Err(Error::Execution { id });
            }
        };
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        if let Some(max) = prepared.max_rows
            && u64::try_from(rows).unwrap_or(u64::MAX) > max
        {
            return Err(Error::Refused(Refusal::new(
                Rule::RowLimit,
                format!(
                    "the result has more than {max} rows, the most the policy allows per query; no rows are returned"
                ),
            )));
        }
        Ok((Answer { batches, rows }, scanned))
    }
}

/// Rows produced by the leaves (scans) of an executed plan: from their
/// metrics (files) or their batches (tables in memory); unknown counts as
/// unbounded.
fn scanned_rows(plan: &Arc<dyn ExecutionPlan>) -> usize {
    if let Some(governed) = plan.downcast_ref::<GovernedScanExec>() {
        return scanned_rows(governed.scan());
    }
    let children = plan.children();
    if children.is_empty() {
        let in_memory = plan
            .downcast_ref::<DataSourceExec>()
            .and_then(|scan| scan.data_source().downcast_ref::<MemorySourceConfig>())
            .map(|memory| {
                memory
                    .partitions()
                    .iter()
                    .flatten()
                    .map(RecordBatch::num_rows)
                    .sum()
            });
        return plan
            .metrics()
            .and_then(|m| m.output_rows())
            .or(in_memory)
            .unwrap_or(usize::MAX);
    }
    children
        .into_iter()
        .map(scanned_rows)
        .fold(0, usize::saturating_add)
}

/// The optimised logical plan. The optimizer reads no data (it folds the
/// query's own constants, such as `CAST('x' AS INT)`), so its failure is the
/// query's, the same whatever the data: a refusal naming the cause.
fn optimize(state: &SessionState, plan: &LogicalPlan) -> Result<LogicalPlan> {
    state.optimize(plan).map_err(|e| {
        let cause = e.find_root().to_string();
        let cause = cause.lines().next().unwrap_or_default().to_owned();
        Error::Refused(Refusal::new(
            Rule::Statement,
            format!("the query cannot be planned: {cause}"),
        ))
    })
}

/// The physical plan of `plan`, after every physical optimizer rule, once the
/// verifier has found its barriers intact (a violation refuses the query
/// before it runs).
async fn physical(state: &SessionState, plan: &LogicalPlan) -> Result<Arc<dyn ExecutionPlan>> {
    let physical = state
        .query_planner()
        .create_physical_plan(plan, state)
        .await
        .map_err(engine_error)?;
    if let Err(refusal) = verify_physical_plan(&physical) {
        tracing::warn!(
            "refused a plan that breaks a barrier: {refusal}\n{}",
            displayable(physical.as_ref()).indent(true)
        );
        return Err(Error::Refused(refusal));
    }
    Ok(physical)
}

/// Whether every function in `plan` (subqueries included) is immutable:
/// its answer then depends on the data only, not on the clock or chance.
fn is_immutable(plan: &LogicalPlan) -> bool {
    let mut immutable = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                let volatility = match e {
                    Expr::ScalarFunction(f) => Some(f.func.signature().volatility),
                    Expr::AggregateFunction(f) => Some(f.func.signature().volatility),
                    _ => None,
                };
                if volatility.is_some_and(|v| v != Volatility::Immutable) {
                    immutable = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if immutable {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    immutable
}

/// Whether a physical plan can be run again and again after resetting its
/// nodes: not when it scans files (DataFusion's file sources keep the
/// metrics of every run in the plan, which would grow without end), nor
/// when operators share dynamic filters (top-k, joins, some aggregates),
/// which a reset cannot renew and which the plan's display names.
fn can_rerun(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut scans_files = false;
    let _ = plan.apply(|node| {
        let node = node
            .downcast_ref::<GovernedScanExec>()
            .map_or(node, GovernedScanExec::scan);
        scans_files = node.downcast_ref::<DataSourceExec>().is_some_and(|scan| {
            scan.data_source()
                .downcast_ref::<FileScanConfig>()
                .is_some()
        });
        Ok(if scans_files {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    !scans_files
        && !displayable(plan.as_ref())
            .indent(true)
            .to_string()
            .contains("DynamicFilter")
}

fn default_schema(state: &SessionState) -> Option<Arc<dyn datafusion::catalog::SchemaProvider>> {
    let options = state.config_options();
    state
        .catalog_list()
        .catalog(&options.catalog.default_catalog)?
        .schema(&options.catalog.default_schema)
}

/// An error of planning or running a query: a dataset file refused outside
/// the data roots as it is (it names a path, never a value), anything else
/// as [`execution_error`].
fn engine_error(e: datafusion::error::DataFusionError) -> Error {
    match crate::rooted::outside_roots_in(&e) {
        Some(refusal) => {
            tracing::warn!("refused a read outside the data roots: {refusal}");
            Error::OutsideRoots(refusal.clone())
        }
        None => execution_error(e),
    }
}

/// An engine error as the consumer sees it: logged under a fresh id, and
/// only the id returned.
pub(crate) fn execution_error(e: impl std::fmt::Display) -> Error {
    Error::Execution {
        id: log_engine_error(&e),
    }
}

/// Logs an engine error under a fresh id and returns the id.
pub fn log_engine_error(e: &dyn std::fmt::Display) -> String {
    let id = new_error_id();
    tracing::error!(error_id = %id, "query execution failed: {e}");
    id
}

/// A fresh error id (128 random bits, see [`policy::id`]).
fn new_error_id() -> String {
    policy::id::random_hex().unwrap_or_else(|_| "no-random-id".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::catalog::MemTable;

    const SECRET: &str = "Zebulon-7";

    fn table() -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("site", DataType::Utf8, true),
            Field::new("label", DataType::Utf8, true),
            Field::new("value", DataType::Float64, true),
        ]));
        let sites: Vec<&str> = (0..20)
            .map(|i| if i < 10 { "north" } else { "south" })
            .collect();
        let labels: Vec<&str> = (0..20)
            .map(|i| if i == 3 { SECRET } else { "42" })
            .collect();
        let values: Vec<f64> = (0..20).map(f64::from).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(sites)),
                Arc::new(StringArray::from(labels)),
                Arc::new(Float64Array::from(values)),
            ],
        )
        .unwrap();
        // Two partitions, so that plans repartition and merge.
        let partitions = vec![vec![batch.slice(0, 10)], vec![batch.slice(10, 10)]];
        Arc::new(MemTable::try_new(schema, partitions).unwrap())
    }

    fn engine(max_rows: u64) -> GovernedEngine {
        let mut engine = GovernedEngine::new(ExecutionLimits::default()).unwrap();
        engine
            .register_provider(policy("readings", max_rows), table())
            .unwrap();
        engine
    }

    fn policy(dataset: &str, max_rows: u64) -> UsagePolicy {
        UsagePolicy::from_json_str(&format!(
            r#"{{"type": "UsagePolicy", "version": 1, "id": "p", "issuer": "x",
                "target": {{"dataset": "{dataset}"}}, "purposes": ["test"],
                "validity": {{"not_before": "2020-01-01T00:00:00Z", "not_after": "2099-01-01T00:00:00Z"}},
                "access": "rows",
                "columns": {{"site": "dimension", "label": "dimension", "value": "measure"}},
                "limits": {{"max_rows_per_query": {max_rows}}}}}"#
        ))
        .unwrap()
    }

    fn text(answer: &Answer) -> String {
        datafusion::arrow::util::pretty::pretty_format_batches(&answer.batches)
            .unwrap()
            .to_string()
    }

    fn at(date: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(date).unwrap().into()
    }

    #[tokio::test]
    async fn a_repeated_query_reuses_its_plan_and_answers_the_same() {
        let engine = engine(100);
        let queries = [
            // Repartitions, aggregates in two phases and merges.
            "SELECT site, sum(value) AS total, count(*) AS n FROM readings GROUP BY site ORDER BY site",
            // A top-k query (its dynamic filter stays inside the sort over
            // a table in memory, so the physical plan is kept too).
            "SELECT site, value FROM readings ORDER BY value DESC LIMIT 3",
        ];
        for (i, sql) in queries.iter().enumerate() {
            let first = text(&engine.query(sql, Utc::now()).await.unwrap());
            assert_eq!(engine.cached_plans(), i + 1);
            let physical = matches!(
                engine.cache.get(engine.id, sql).unwrap().ready,
                Ready::Physical(_)
            );
            assert!(physical, "{sql}");
            for _ in 0..5 {
                assert_eq!(text(&engine.query(sql, Utc::now()).await.unwrap()), first);
            }
            assert_eq!(engine.cached_plans(), i + 1);
        }
        let totals = text(&engine.query(queries[0], Utc::now()).await.unwrap());
        assert!(totals.contains("| north | 45.0  | 10 |"), "{totals}");
        let top = text(&engine.query(queries[1], Utc::now()).await.unwrap());
        assert!(
            top.contains("19.0") && top.contains("17.0") && !top.contains("16.0"),
            "{top}"
        );
    }

    fn cached_plan_text(engine: &GovernedEngine, sql: &str) -> String {
        match engine.cache.get(engine.id, sql).map(|p| p.ready) {
            Some(Ready::Physical(plan)) => displayable(plan.as_ref()).indent(true).to_string(),
            _ => String::new(),
        }
    }

    #[tokio::test]
    async fn a_query_that_scanned_few_rows_keeps_a_one_partition_plan() {
        let sql = "SELECT site, sum(value) AS total FROM readings GROUP BY site ORDER BY site";
        let small = engine(100);
        let first = text(&small.query(sql, Utc::now()).await.unwrap());
        let plan = cached_plan_text(&small, sql);
        assert!(
            !plan.is_empty() && !plan.contains("RepartitionExec"),
            "{plan}"
        );
        assert_eq!(text(&small.query(sql, Utc::now()).await.unwrap()), first);

        // Two partitions of 60,000 rows: over SMALL_SCAN_ROWS, so the plan
        // keeps its partitions.
        let schema = datafusion::catalog::TableProvider::schema(table().as_ref());
        let batch = |offset: usize| {
            let n = 60_000;
            let sites: Vec<&str> = (0..n)
                .map(|i| if i % 2 == 0 { "north" } else { "south" })
                .collect();
            let labels: Vec<&str> = vec!["x"; n];
            let values: Vec<f64> = (0..n).map(|i| ((i + offset) % 7) as f64).collect();
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringArray::from(sites)),
                    Arc::new(StringArray::from(labels)),
                    Arc::new(Float64Array::from(values)),
                ],
            )
            .unwrap()
        };
        let large =
            MemTable::try_new(Arc::clone(&schema), vec![vec![batch(0)], vec![batch(1)]]).unwrap();
        let mut engine = GovernedEngine::new(ExecutionLimits::default()).unwrap();
        engine.set_small_query_time(Duration::ZERO);
        engine
            .register_provider(policy("readings", 100), Arc::new(large))
            .unwrap();
        let answer = text(&engine.query(sql, Utc::now()).await.unwrap());
        let plan = cached_plan_text(&engine, sql);
        assert!(plan.contains("RepartitionExec"), "{plan}");
        assert_eq!(text(&engine.query(sql, Utc::now()).await.unwrap()), answer);

        // A first run quicker than the small-query time gets one partition
        // however many rows it scanned.
        let mut quick = engine.clone();
        quick.set_small_query_time(Duration::from_secs(600));
        assert_eq!(text(&quick.query(sql, Utc::now()).await.unwrap()), answer);
        let plan = cached_plan_text(&quick, sql);
        assert!(
            !plan.is_empty() && !plan.contains("RepartitionExec"),
            "{plan}"
        );
        assert_eq!(text(&quick.query(sql, Utc::now()).await.unwrap()), answer);
    }

    #[tokio::test]
    async fn a_table_on_files_keeps_its_logical_plan_and_answers_alike() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("readings.csv");
        let mut csv = String::from("site,label,value\n");
        for i in 0..20 {
            let site = if i < 10 { "north" } else { "south" };
            csv.push_str(&format!("{site},x,{i}.0\n"));
        }
        std::fs::write(&path, csv).unwrap();
        let mut engine = GovernedEngine::new(ExecutionLimits::default()).unwrap();
        engine
            .add_dataset(policy("readings", 100), &path, &[dir.path().to_path_buf()])
            .await
            .unwrap();
        let sql = "SELECT site, sum(value) AS total FROM readings GROUP BY site ORDER BY site";
        let first = text(&engine.query(sql, Utc::now()).await.unwrap());
        assert!(first.contains("| north | 45.0  |"), "{first}");
        for _ in 0..3 {
            assert_eq!(text(&engine.query(sql, Utc::now()).await.unwrap()), first);
        }
        let kept = engine.cache.get(engine.id, sql).map(|p| p.ready);
        assert!(
            matches!(kept, Some(Ready::Logical { single: true, .. })),
            "a file scan's physical plan is not kept, and 20 rows plan in one partition"
        );
    }

    #[tokio::test]
    async fn concurrent_runs_of_one_cached_plan_do_not_share_state() {
        let engine = Arc::new(engine(100));
        let sql = "SELECT site, sum(value) AS total FROM readings GROUP BY site ORDER BY site";
        let expected = text(&engine.query(sql, Utc::now()).await.unwrap());
        let runs: Vec<_> = (0..16)
            .map(|_| {
                let engine = Arc::clone(&engine);
                tokio::spawn(async move { text(&engine.query(sql, Utc::now()).await.unwrap()) })
            })
            .collect();
        for run in runs {
            assert_eq!(run.await.unwrap(), expected);
        }
    }

    #[tokio::test]
    async fn a_cached_plan_is_refused_once_its_policy_has_expired() {
        let engine = engine(100);
        let sql = "SELECT site, value FROM readings WHERE site = 'north'";
        engine.query(sql, at("2030-01-01T00:00:00Z")).await.unwrap();
        assert_eq!(engine.cached_plans(), 1);
        for late in ["2099-01-01T00:00:01Z", "2019-12-31T23:59:59Z"] {
            let error = engine.query(sql, at(late)).await.unwrap_err();
            assert!(
                matches!(&error, Error::Refused(r) if r.rule == Rule::Validity),
                "{error}"
            );
        }
    }

    #[tokio::test]
    async fn queries_that_read_the_clock_are_planned_afresh_each_time() {
        let engine = engine(100);
        let sql = "SELECT site, value FROM readings WHERE now() > TIMESTAMP '2000-01-01T00:00:00'";
        assert_eq!(engine.query(sql, Utc::now()).await.unwrap().rows, 20);
        let random = "SELECT site FROM readings WHERE random() < 2.0";
        assert_eq!(engine.query(random, Utc::now()).await.unwrap().rows, 20);
        assert_eq!(engine.cached_plans(), 0);
    }

    #[tokio::test]
    async fn registering_a_table_forgets_the_cached_plans_and_a_clone_starts_empty() {
        let mut engine = engine(100);
        engine
            .query("SELECT site FROM readings", Utc::now())
            .await
            .unwrap();
        assert_eq!(engine.cached_plans(), 1);
        assert_eq!(engine.clone().cached_plans(), 0);
        engine
            .register_provider(policy("other_readings", 100), table())
            .unwrap();
        assert_eq!(engine.cached_plans(), 0);
    }

    #[tokio::test]
    async fn the_plan_cache_is_bounded_in_bytes_across_engines() {
        let sql = |i: usize| format!("SELECT site FROM readings WHERE value > {i}");
        let weight = plan_weight(&sql(100));
        let plans = Arc::new(Plans::new(weight * 10));
        let mut first =
            GovernedEngine::with_plans(ExecutionLimits::default(), Arc::clone(&plans)).unwrap();
        first
            .register_provider(policy("readings", 1000), table())
            .unwrap();
        let second = first.clone();
        for i in 100..140 {
            first.query(&sql(i), Utc::now()).await.unwrap();
            second.query(&sql(i + 100), Utc::now()).await.unwrap();
            assert!(plans.bytes() <= plans.budget());
        }
        assert_eq!(plans.len(), 10);
        assert_eq!(first.cached_plans() + second.cached_plans(), 10);
        // The most recent plans stay, and a dropped engine's plans leave.
        assert!(first.cache.get(first.id, &sql(139)).is_some());
        drop(second);
        assert_eq!(plans.len(), first.cached_plans());
    }

    #[tokio::test]
    async fn planning_reserves_memory_and_refuses_what_cannot_fit() {
        let sql = "SELECT site FROM readings WHERE value > 1";
        let small = ExecutionLimits {
            memory_bytes: planning_bytes(sql) - 1,
            ..ExecutionLimits::default()
        };
        let mut engine = GovernedEngine::new(small).unwrap();
        engine
            .register_provider(policy("readings", 100), table())
            .unwrap();
        let error = engine.plan(sql, Utc::now()).await.unwrap_err();
        assert!(
            matches!(&error, Error::Refused(r) if r.rule == Rule::Statement),
            "{error}"
        );
        assert!(
            error.to_string().contains("`query_memory_bytes`"),
            "{error}"
        );
        // With room, the reservation is given back once planning ends.
        let engine = super::tests::engine(100);
        engine.plan(sql, Utc::now()).await.unwrap();
        assert_eq!(engine.state.runtime_env().memory_pool.reserved(), 0);
    }

    /// `n` comparisons joined by `OR` in a balanced tree (shallow enough
    /// for `max_sql_depth`).
    pub(crate) fn any_of(n: usize) -> String {
        if n <= 1 {
            return format!("value > {n}");
        }
        format!("({} OR {})", any_of(n / 2), any_of(n - n / 2))
    }

    #[tokio::test]
    async fn planning_runs_under_the_time_limit() {
        let quick = ExecutionLimits {
            timeout: Duration::from_millis(1),
            ..ExecutionLimits::default()
        };
        let mut engine = GovernedEngine::new(quick).unwrap();
        engine
            .register_provider(policy("readings", 100), table())
            .unwrap();
        // Two thousand comparisons: far longer than a millisecond to plan.
        let sql = format!("SELECT site FROM readings WHERE {}", any_of(2000));
        let error = engine.plan(&sql, Utc::now()).await.unwrap_err();
        assert!(matches!(error, Error::Execution { .. }), "{error}");
    }

    #[tokio::test]
    async fn execution_errors_are_generic_and_quote_no_value() {
        let error = engine(100)
            .query("SELECT CAST(label AS INT) FROM readings", Utc::now())
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, Error::Execution { .. }), "{text}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("error id"), "{text}");
    }

    #[tokio::test]
    async fn results_over_the_row_limit_are_refused_whole() {
        let engine = engine(10);
        let answer = engine
            .query(
                "SELECT site, value FROM readings WHERE site = 'north'",
                Utc::now(),
            )
            .await
            .unwrap();
        assert_eq!(answer.rows, 10);
        let error = engine
            .query("SELECT site, value FROM readings", Utc::now())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::Refused(r) if r.rule == Rule::RowLimit),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_policy_naming_a_missing_column_is_refused_at_registration() {
        let policy = UsagePolicy::from_json_str(
            r#"{"type": "UsagePolicy", "version": 1, "id": "p", "issuer": "x",
                "target": {"dataset": "readings"}, "purposes": ["test"],
                "validity": {"not_before": "2020-01-01T00:00:00Z", "not_after": "2099-01-01T00:00:00Z"},
                "access": "rows", "columns": {"site": "dimension", "pressure": "measure"}}"#,
        )
        .unwrap();
        let mut engine = GovernedEngine::new(ExecutionLimits::default()).unwrap();
        let error = engine.register_provider(policy, table()).unwrap_err();
        assert!(error.to_string().contains("columns.pressure"), "{error}");
    }
}
