//! The two usage policies on `lineitem` and the benchmark queries: each
//! governed query with its raw twin, the same SQL on the raw table with the
//! policy's row filter (and, in aggregate mode, its threshold) written in by
//! hand, so that both compute the same answer.

use serde::Serialize;

/// The row filter of both policies.
pub const ROW_FILTER: &str = "l_shipmode <> 'REG AIR'";
/// `min_rows` of the aggregate policy.
pub const MIN_ROWS: u64 = 10;
/// `min_entities` of the aggregate policy (distinct `l_suppkey` per group).
pub const MIN_ENTITIES: u64 = 5;
/// The purpose both policies allow.
pub const PURPOSE: &str = "benchmarking";

/// The policy's access mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Rows mode: denied columns and a row filter.
    Rows,
    /// Aggregate mode: entity threshold, dimensions and measures.
    Aggregate,
}

impl Mode {
    /// The mode's name in the policy format.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rows => "rows",
            Self::Aggregate => "aggregate",
        }
    }
}

/// A governed query and its raw twin.
#[derive(Debug, Clone)]
pub struct BenchQuery {
    /// A short name.
    pub name: &'static str,
    /// The policy it runs under.
    pub mode: Mode,
    /// The consumer's SQL.
    pub governed: String,
    /// The same SQL with the policy written in by hand, the row filter last
    /// (as a user adds a condition).
    pub raw: String,
    /// The same, the row filter first (the order the governed plan
    /// evaluates: the row filter before any predicate of the consumer).
    pub raw_filter_first: String,
}

/// The usage policy of `mode` on dataset `dataset`, issued by `issuer`.
pub fn policy_json(mode: Mode, dataset: &str, issuer: &str) -> String {
    let (columns, aggregation) = match mode {
        Mode::Rows => (
            r#""l_orderkey": "dimension", "l_partkey": "dimension", "l_suppkey": "dimension",
               "l_linenumber": "dimension", "l_returnflag": "dimension", "l_linestatus": "dimension",
               "l_shipdate": "dimension", "l_commitdate": "dimension", "l_receiptdate": "dimension",
               "l_shipmode": "dimension", "l_quantity": "measure", "l_extendedprice": "measure",
               "l_discount": "measure", "l_tax": "measure",
               "l_shipinstruct": "denied", "l_comment": "denied""#,
            String::new(),
        ),
        Mode::Aggregate => (
            r#""l_suppkey": "entity", "l_returnflag": "dimension", "l_linestatus": "dimension",
               "l_shipdate": "dimension", "l_quantity": "measure", "l_extendedprice": "measure",
               "l_discount": "measure", "l_tax": "measure""#,
            format!(
                r#", "aggregation": {{"min_rows": {MIN_ROWS}, "min_entities": {MIN_ENTITIES},
                   "functions": ["count", "sum", "avg"]}}"#
            ),
        ),
    };
    format!(
        r#"{{"type": "UsagePolicy", "version": 1, "id": "tpch-lineitem-{mode}",
            "issuer": "{issuer}", "target": {{"dataset": "{dataset}"}},
            "purposes": ["{PURPOSE}"],
            "validity": {{"not_before": "2020-01-01T00:00:00Z", "not_after": "2099-01-01T00:00:00Z"}},
            "access": "{mode}", "columns": {{{columns}}},
            "row_filter": "{ROW_FILTER}", "joins": "none"{aggregation}}}"#,
        mode = mode.as_str(),
    )
}

/// `HAVING` clause of the aggregate policy's threshold, for raw twins.
fn threshold() -> String {
    format!("HAVING count(*) >= {MIN_ROWS} AND count(DISTINCT l_suppkey) >= {MIN_ENTITIES}")
}

/// TPC-H Q1 (pricing summary report), as written.
const Q1_SELECT: &str = "SELECT l_returnflag, l_linestatus, \
    sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price, \
    sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, \
    sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge, \
    avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, \
    avg(l_discount) AS avg_disc, count(*) AS count_order \
    FROM lineitem";
const Q1_WHERE: &str = "l_shipdate <= DATE '1998-12-01' - INTERVAL '90' DAY";
const Q1_GROUP: &str = "GROUP BY l_returnflag, l_linestatus";
const Q1_ORDER: &str = "ORDER BY l_returnflag, l_linestatus";

/// TPC-H Q6 (forecasting revenue change), as written.
const Q6_SELECT: &str = "SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem";
const Q6_WHERE: &str = "l_shipdate >= DATE '1994-01-01' \
    AND l_shipdate < DATE '1994-01-01' + INTERVAL '1' YEAR \
    AND l_discount BETWEEN 0.06 - 0.01 AND 0.06 + 0.01 AND l_quantity < 24";

/// Q1 reduced to bare-column aggregates (aggregate mode).
const A1_SELECT: &str = "SELECT l_returnflag, l_linestatus, \
    sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price, \
    avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, \
    avg(l_discount) AS avg_disc, count(*) AS count_order \
    FROM lineitem";
const A1_WHERE: &str = "l_shipdate <= DATE '1998-09-02'";

/// Q6 reduced: a global aggregate over one year.
const A6_SELECT: &str = "SELECT sum(l_extendedprice) AS sum_price, sum(l_quantity) AS sum_qty, \
    avg(l_discount) AS avg_disc, count(*) AS count_order FROM lineitem";
const A6_WHERE: &str = "l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01'";

/// Daily figures over one year: 365 groups.
const DAILY_SELECT: &str = "SELECT l_shipdate, sum(l_quantity) AS sum_qty, \
    avg(l_extendedprice) AS avg_price, count(*) AS count_order FROM lineitem";
const DAILY_WHERE: &str = "l_shipdate >= DATE '1995-01-01' AND l_shipdate < DATE '1996-01-01'";

/// Monthly figures per return flag: `date_trunc` as a group key.
const MONTHLY_SELECT: &str = "SELECT date_trunc('month', l_shipdate) AS month, l_returnflag, \
    sum(l_extendedprice) AS sum_price, count(*) AS count_order FROM lineitem";
const MONTHLY_WHERE: &str = "l_shipdate >= DATE '1993-01-01' AND l_shipdate < DATE '1998-01-01'";
const MONTHLY_GROUP: &str = "GROUP BY date_trunc('month', l_shipdate), l_returnflag";

/// A governed query of `mode` and its raw twins: `select` with the
/// consumer's `predicate`, `group` and `order` (either may be empty); the
/// twins add the row filter after or before the predicate and, in
/// aggregate mode, the threshold as a `HAVING`.
fn twins(
    name: &'static str,
    mode: Mode,
    select: &str,
    predicate: &str,
    group: &str,
    order: &str,
) -> BenchQuery {
    let having = match mode {
        Mode::Rows => String::new(),
        Mode::Aggregate => threshold(),
    };
    let sql = |condition: &str, having: &str| {
        [select, "WHERE", condition, group, having, order]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    BenchQuery {
        name,
        mode,
        governed: sql(predicate, ""),
        raw: sql(&format!("({predicate}) AND {ROW_FILTER}"), &having),
        raw_filter_first: sql(&format!("{ROW_FILTER} AND ({predicate})"), &having),
    }
}

/// Every benchmark query, in report order.
pub fn all() -> Vec<BenchQuery> {
    let aggregate = Mode::Aggregate;
    vec![
        twins("q1", Mode::Rows, Q1_SELECT, Q1_WHERE, Q1_GROUP, Q1_ORDER),
        twins("q6", Mode::Rows, Q6_SELECT, Q6_WHERE, "", ""),
        twins(
            "q1_aggregate",
            aggregate,
            A1_SELECT,
            A1_WHERE,
            Q1_GROUP,
            Q1_ORDER,
        ),
        twins("q6_aggregate", aggregate, A6_SELECT, A6_WHERE, "", ""),
        twins(
            "daily_aggregate",
            aggregate,
            DAILY_SELECT,
            DAILY_WHERE,
            "GROUP BY l_shipdate",
            "ORDER BY l_shipdate",
        ),
        twins(
            "monthly_aggregate",
            aggregate,
            MONTHLY_SELECT,
            MONTHLY_WHERE,
            MONTHLY_GROUP,
            "ORDER BY month, l_returnflag",
        ),
    ]
}

/// The small query of the throughput figure (aggregate mode, one day).
pub fn small_query(dataset: &str) -> BenchQuery {
    let select = format!(
        "SELECT l_returnflag, sum(l_quantity) AS sum_qty, count(*) AS count_order \
         FROM {dataset}"
    );
    twins(
        "small",
        Mode::Aggregate,
        &select,
        "l_shipdate = DATE '1995-03-15'",
        "GROUP BY l_returnflag",
        "ORDER BY l_returnflag",
    )
}
