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
const Q1_TAIL: &str = "GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus";

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

/// Every benchmark query, in report order.
pub fn all() -> Vec<BenchQuery> {
    let filter = ROW_FILTER;
    let having = threshold();
    let grouped = |name, select: &str, predicate: &str, group: &str, order: &str| BenchQuery {
        name,
        mode: Mode::Aggregate,
        governed: format!("{select} WHERE {predicate} {group} {order}"),
        raw: format!("{select} WHERE ({predicate}) AND {filter} {group} {having} {order}"),
        raw_filter_first: format!(
            "{select} WHERE {filter} AND ({predicate}) {group} {having} {order}"
        ),
    };
    vec![
        BenchQuery {
            name: "q1",
            mode: Mode::Rows,
            governed: format!("{Q1_SELECT} WHERE {Q1_WHERE} {Q1_TAIL}"),
            raw: format!("{Q1_SELECT} WHERE ({Q1_WHERE}) AND {filter} {Q1_TAIL}"),
            raw_filter_first: format!("{Q1_SELECT} WHERE {filter} AND ({Q1_WHERE}) {Q1_TAIL}"),
        },
        BenchQuery {
            name: "q6",
            mode: Mode::Rows,
            governed: format!("{Q6_SELECT} WHERE {Q6_WHERE}"),
            raw: format!("{Q6_SELECT} WHERE ({Q6_WHERE}) AND {filter}"),
            raw_filter_first: format!("{Q6_SELECT} WHERE {filter} AND ({Q6_WHERE})"),
        },
        grouped(
            "q1_aggregate",
            A1_SELECT,
            A1_WHERE,
            "GROUP BY l_returnflag, l_linestatus",
            "ORDER BY l_returnflag, l_linestatus",
        ),
        grouped("q6_aggregate", A6_SELECT, A6_WHERE, "", ""),
        grouped(
            "daily_aggregate",
            DAILY_SELECT,
            DAILY_WHERE,
            "GROUP BY l_shipdate",
            "ORDER BY l_shipdate",
        ),
        grouped(
            "monthly_aggregate",
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
    let predicate = "l_shipdate = DATE '1995-03-15'";
    let group = "GROUP BY l_returnflag";
    let order = "ORDER BY l_returnflag";
    let having = threshold();
    BenchQuery {
        name: "small",
        mode: Mode::Aggregate,
        governed: format!("{select} WHERE {predicate} {group} {order}"),
        raw: format!("{select} WHERE {predicate} AND {ROW_FILTER} {group} {having} {order}"),
        raw_filter_first: format!(
            "{select} WHERE {ROW_FILTER} AND {predicate} {group} {having} {order}"
        ),
    }
}
