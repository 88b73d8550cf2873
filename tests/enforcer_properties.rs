//! Property test of the usage-policy enforcer (aggregate mode) over the
//! red-team fixture: thousands of generated consumer queries, each run through
//! the governed engine and judged by an independent checker.
//!
//! The fixture is copied with every `secret-plant` row's `temperature` and
//! `vibration` set to a huge sentinel, so that any contribution of a row the
//! row filter removes shows up as a huge number in a sum or an average.
//!
//! For every query the enforcer must not panic or hang. A refusal must not
//! quote data values. An answer must not contain entity or denied values, the
//! filtered site, or a sentinel-sized number; when the generator knows the
//! query is allowed the answer must equal a reference query run on the raw
//! table with the row filter and the threshold written out by hand (or, with
//! a `LIMIT`, be a sub-multiset of it). An "error oracle" family divides by
//! `count(*) - n`: it may only fail when a *released* group has `n` rows,
//! else a suppressed group was evaluated and the failure reveals its count.
//! The generator also knows when a query uses a construct the
//! spec forbids outright (`Bad`): such a query must be refused; and the
//! "simple" family (`SELECT keys, aggs FROM telemetry WHERE dimension filters
//! GROUP BY keys`) must be answered.
//!
//! Environment: `ENFORCER_PROPS_CASES` (default 1500) and
//! `ENFORCER_PROPS_SEED` (a number, default fixed) vary the run;
//! `ENFORCER_PROPS_SQL` runs one query through the governed engine and
//! `ENFORCER_PROPS_RAW` one on the raw twin instead; `ENFORCER_PROPS_LOG`
//! prints the engine's log (the messages of execution errors).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use connector::Error;
use connector::casefile::{self, Cell, compare_results};
use connector::engine::{ExecutionLimits, GovernedEngine};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{CsvReadOptions, SessionConfig, SessionContext};
use policy::enforce::Refusal;
use policy::model::UsagePolicy;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

// ---------------------------------------------------------------------------
// Verdicts: what the spec says about a fragment, as far as the generator knows.

/// `Ok`: allowed by the spec. `Unknown`: the spec is not clear (either
/// outcome is fine, but an answer must still be correct and leak-free).
/// `Bad`: forbidden outright, with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V {
    Ok,
    Unknown,
    Bad(&'static str),
}

impl V {
    fn and(self, other: V) -> V {
        match (self, other) {
            (V::Bad(r), _) | (_, V::Bad(r)) => V::Bad(r),
            (V::Unknown, _) | (_, V::Unknown) => V::Unknown,
            _ => V::Ok,
        }
    }
}

const OK: V = V::Ok;
const UNK: V = V::Unknown;

/// One SQL fragment of a pool.
#[derive(Debug, Clone, Copy)]
struct Item {
    sql: &'static str,
    v: V,
    /// The dataset columns it reads (for derived tables that must project them).
    cols: &'static [&'static str],
    /// A plain aggregate of rule 2 (`count`/`sum`/`avg` of a bare column).
    plain: bool,
}

const fn it(sql: &'static str, v: V, cols: &'static [&'static str]) -> Item {
    Item {
        sql,
        v,
        cols,
        plain: false,
    }
}

const fn pl(sql: &'static str, cols: &'static [&'static str]) -> Item {
    Item {
        sql,
        v: V::Ok,
        cols,
        plain: true,
    }
}

const fn bad(sql: &'static str, why: &'static str, cols: &'static [&'static str]) -> Item {
    Item {
        sql,
        v: V::Bad(why),
        cols,
        plain: false,
    }
}

/// Group keys (raw level).
const KEYS: &[Item] = &[
    it("site", OK, &["site"]),
    it("shift", OK, &["shift"]),
    it("defect", OK, &["defect"]),
    it("ts", OK, &["ts"]),
    it("date_trunc('day', ts)", OK, &["ts"]),
    it("date_trunc('hour', ts)", OK, &["ts"]),
    it("date_trunc('minute', ts)", OK, &["ts"]),
    it("date_part('hour', ts)", OK, &["ts"]),
    it("date_part('dow', ts)", OK, &["ts"]),
    it("extract(hour FROM ts)", UNK, &["ts"]),
    bad("machine_id", "entity column as group key", &["machine_id"]),
    bad("temperature", "measure as group key", &["temperature"]),
    bad(
        "operator_name",
        "denied column as group key",
        &["operator_name"],
    ),
    bad("upper(site)", "function as group key", &["site"]),
    bad(
        "CASE WHEN site = 'north-plant' THEN 'n' ELSE 'o' END",
        "CASE as group key",
        &["site"],
    ),
    bad(
        "date_trunc('day', ts) + INTERVAL '1 hour'",
        "arithmetic group key",
        &["ts"],
    ),
    bad(
        "round(vibration)",
        "measure function as group key",
        &["vibration"],
    ),
];

/// Select items of an aggregate query (aggregates, and expressions over them).
const AGGS: &[Item] = &[
    pl("count(*)", &[]),
    pl("count(site)", &["site"]),
    pl("count(shift)", &["shift"]),
    pl("count(defect)", &["defect"]),
    pl("count(ts)", &["ts"]),
    pl("count(DISTINCT site)", &["site"]),
    pl("count(DISTINCT shift)", &["shift"]),
    pl("count(DISTINCT machine_id)", &["machine_id"]),
    pl("sum(temperature)", &["temperature"]),
    pl("sum(vibration)", &["vibration"]),
    pl("avg(temperature)", &["temperature"]),
    pl("avg(vibration)", &["vibration"]),
    it("count(*) + 1", OK, &[]),
    it("avg(temperature) * 2", OK, &["temperature"]),
    it("sum(vibration) / count(*)", OK, &["vibration"]),
    it("round(avg(vibration), 2)", OK, &["vibration"]),
    it("CAST(count(*) AS DOUBLE) / 3", OK, &[]),
    it("count(*) * avg(temperature)", OK, &["temperature"]),
    it("count(DISTINCT machine_id) - 1", OK, &["machine_id"]),
    it(
        "CASE WHEN count(*) > 100 THEN 'big' ELSE 'small' END",
        OK,
        &[],
    ),
    it("42", OK, &[]),
    it("'label'", OK, &[]),
    it("rank() OVER (ORDER BY count(*))", OK, &[]),
    it("sum(count(*)) OVER ()", OK, &[]),
    it("avg(avg(temperature)) OVER ()", OK, &["temperature"]),
    it("sum(DISTINCT temperature)", UNK, &["temperature"]),
    it("avg(DISTINCT vibration)", UNK, &["vibration"]),
    it("count(1)", UNK, &[]),
    bad(
        "max(max(temperature)) OVER ()",
        "aggregate function max",
        &["temperature"],
    ),
    bad(
        "rank() OVER (ORDER BY max(vibration))",
        "aggregate function max",
        &["vibration"],
    ),
    bad(
        "max(temperature)",
        "aggregate function max",
        &["temperature"],
    ),
    bad("min(vibration)", "aggregate function min", &["vibration"]),
    bad(
        "array_agg(temperature)",
        "aggregate function array_agg",
        &["temperature"],
    ),
    bad(
        "sum(CASE WHEN shift = 'day' THEN temperature ELSE 0 END)",
        "CASE as aggregate argument",
        &["shift", "temperature"],
    ),
    bad(
        "sum(temperature * 2)",
        "expression as aggregate argument",
        &["temperature"],
    ),
    bad(
        "sum(CAST(temperature AS INT))",
        "cast as aggregate argument",
        &["temperature"],
    ),
    bad(
        "count(operator_name)",
        "denied column in aggregate",
        &["operator_name"],
    ),
    bad(
        "count(DISTINCT operator_name)",
        "denied column in aggregate",
        &["operator_name"],
    ),
    bad(
        "count(machine_id)",
        "entity column outside count(DISTINCT)",
        &["machine_id"],
    ),
    bad(
        "sum(temperature) FILTER (WHERE shift = 'day')",
        "FILTER clause",
        &["temperature", "shift"],
    ),
    bad(
        "count(*) FILTER (WHERE defect = true)",
        "FILTER clause",
        &["defect"],
    ),
    bad(
        "stddev(temperature)",
        "aggregate function stddev",
        &["temperature"],
    ),
    bad(
        "count(DISTINCT temperature)",
        "count of a measure",
        &["temperature"],
    ),
    bad(
        "count(DISTINCT date_trunc('hour', ts))",
        "expression as aggregate argument",
        &["ts"],
    ),
    bad(
        "max(temperature) - min(temperature)",
        "aggregate functions max/min",
        &["temperature"],
    ),
    bad(
        "first_value(temperature ORDER BY ts)",
        "aggregate function first_value",
        &["temperature", "ts"],
    ),
    bad(
        "string_agg(machine_id, ',')",
        "aggregate function string_agg on the entity",
        &["machine_id"],
    ),
    bad(
        "sum(temperature) + max(vibration)",
        "aggregate function max",
        &["temperature", "vibration"],
    ),
    bad("bool_or(defect)", "aggregate function bool_or", &["defect"]),
    bad("max(ts)", "aggregate function max", &["ts"]),
    bad("max(site)", "aggregate function max", &["site"]),
    bad(
        "array_agg(DISTINCT site)",
        "aggregate function array_agg",
        &["site"],
    ),
    bad(
        "string_agg(DISTINCT shift, ',')",
        "aggregate function string_agg",
        &["shift"],
    ),
    bad(
        "count(DISTINCT CASE WHEN site = 'west-lab' THEN machine_id END)",
        "CASE as aggregate argument",
        &["site", "machine_id"],
    ),
    bad(
        "approx_distinct(machine_id)",
        "aggregate function approx_distinct",
        &["machine_id"],
    ),
    bad(
        "sum(CAST(defect AS INT))",
        "cast as aggregate argument",
        &["defect"],
    ),
];

/// Filter predicates on dataset rows.
const PREDS: &[Item] = &[
    it("site = 'north-plant'", OK, &["site"]),
    it("site = 'south-plant'", OK, &["site"]),
    it("site = 'secret-plant'", OK, &["site"]),
    it("site = 'west-lab'", OK, &["site"]),
    it("site = 'pilot-line'", OK, &["site"]),
    it("site = 'east-plant'", OK, &["site"]),
    it("site = 'nowhere'", OK, &["site"]),
    it("site <> 'east-plant'", OK, &["site"]),
    it("site <> 'north-plant'", OK, &["site"]),
    it("shift = 'day'", OK, &["shift"]),
    it("shift = 'night'", OK, &["shift"]),
    it("shift <> 'day'", OK, &["shift"]),
    it("defect = true", OK, &["defect"]),
    it("defect = false", OK, &["defect"]),
    it("defect <> true", OK, &["defect"]),
    it("site IN ('north-plant', 'south-plant')", OK, &["site"]),
    it(
        "site IN ('secret-plant', 'west-lab', 'pilot-line')",
        OK,
        &["site"],
    ),
    it("shift IN ('day')", OK, &["shift"]),
    it("ts >= TIMESTAMP '2026-03-01 06:00:00'", OK, &["ts"]),
    it("ts < TIMESTAMP '2026-03-02 00:00:00'", OK, &["ts"]),
    it(
        "ts BETWEEN TIMESTAMP '2026-03-01 00:00:00' AND TIMESTAMP '2026-03-01 12:00:00'",
        OK,
        &["ts"],
    ),
    it("ts > '2026-03-01T12:00:00'", OK, &["ts"]),
    it("date_part('hour', ts) BETWEEN 6 AND 17", OK, &["ts"]),
    it("date_part('hour', ts) < 12", OK, &["ts"]),
    it(
        "date_trunc('day', ts) = TIMESTAMP '2026-03-01 00:00:00'",
        OK,
        &["ts"],
    ),
    it("site IS NOT NULL", OK, &["site"]),
    it("shift IS NULL", OK, &["shift"]),
    it("defect IS NOT NULL", OK, &["defect"]),
    it("site > 'm'", OK, &["site"]),
    it("site BETWEEN 'a' AND 'p'", OK, &["site"]),
    it("'day' = shift", OK, &["shift"]),
    it("site <= 'south-plant'", OK, &["site"]),
    it(
        "shift IN ('day', 'night') AND site IN ('west-lab', 'pilot-line', 'east-plant')",
        OK,
        &["shift", "site"],
    ),
    it("site NOT IN ('east-plant', 'pilot-line')", UNK, &["site"]),
    it("site NOT BETWEEN 'a' AND 'm'", UNK, &["site"]),
    it("CAST(defect AS INT) = 1", UNK, &["defect"]),
    it("ts < now()", UNK, &["ts"]),
    it("defect", UNK, &["defect"]),
    bad(
        "(site = 'north-plant' OR shift = 'day')",
        "OR in a filter",
        &["site", "shift"],
    ),
    bad(
        "(site = 'secret-plant' OR site <> 'secret-plant')",
        "OR in a filter",
        &["site"],
    ),
    bad("NOT (site = 'north-plant')", "NOT in a filter", &["site"]),
    bad("NOT defect", "NOT in a filter", &["defect"]),
    bad("site LIKE 'n%'", "LIKE in a filter", &["site"]),
    bad("site ILIKE '%PLANT'", "ILIKE in a filter", &["site"]),
    bad("temperature > 80", "measure in a filter", &["temperature"]),
    bad(
        "vibration BETWEEN 1 AND 2",
        "measure in a filter",
        &["vibration"],
    ),
    bad(
        "temperature / vibration > 30",
        "measure in a filter",
        &["temperature", "vibration"],
    ),
    bad("machine_id = 'N-99'", "entity in a filter", &["machine_id"]),
    bad(
        "machine_id LIKE 'N%'",
        "entity in a filter",
        &["machine_id"],
    ),
    bad("machine_id > 'M'", "entity in a filter", &["machine_id"]),
    bad(
        "machine_id IS NOT NULL",
        "entity in a filter",
        &["machine_id"],
    ),
    bad(
        "operator_name LIKE 'A%'",
        "denied column in a filter",
        &["operator_name"],
    ),
    bad(
        "operator_name IS NULL",
        "denied column in a filter",
        &["operator_name"],
    ),
    bad("length(site) > 8", "function in a filter", &["site"]),
    bad("upper(shift) = 'DAY'", "function in a filter", &["shift"]),
    bad(
        "coalesce(site, 'x') = 'north-plant'",
        "function in a filter",
        &["site"],
    ),
    bad(
        "site || shift = 'north-plantday'",
        "concatenation in a filter",
        &["site", "shift"],
    ),
    bad(
        "site = shift",
        "column compared with a column",
        &["site", "shift"],
    ),
    bad(
        "CASE WHEN site = 'secret-plant' THEN 1 ELSE 0 END = 0",
        "CASE in a filter",
        &["site"],
    ),
    bad(
        "1 / (CASE WHEN site = 'secret-plant' THEN 0 ELSE 1 END) = 1",
        "division in a filter",
        &["site"],
    ),
    bad(
        "date_part('hour', ts) / 0 = 1",
        "division in a filter",
        &["ts"],
    ),
    bad(
        "ts + INTERVAL '1 hour' > TIMESTAMP '2026-03-01 12:00:00'",
        "arithmetic in a filter",
        &["ts"],
    ),
    bad(
        "site = (SELECT min(site) FROM telemetry)",
        "subquery in a filter",
        &["site"],
    ),
    bad(
        "site IN (SELECT site FROM telemetry GROUP BY site)",
        "subquery in a filter",
        &["site"],
    ),
    bad(
        "EXISTS (SELECT 1 FROM telemetry t2 WHERE t2.site = 'secret-plant')",
        "subquery in a filter",
        &[],
    ),
    bad(
        "vibration < (SELECT avg(vibration) FROM telemetry)",
        "subquery in a filter",
        &["vibration"],
    ),
    bad(
        "shift IN (SELECT shift FROM telemetry WHERE temperature > 97)",
        "subquery in a filter",
        &["shift"],
    ),
];

/// `HAVING` predicates of an enforced aggregate (they aggregate raw rows).
const HAVINGS: &[Item] = &[
    it("count(*) > 20", OK, &[]),
    it("count(*) < 5", OK, &[]),
    it("avg(temperature) > 70", OK, &["temperature"]),
    it("sum(vibration) > 10", OK, &["vibration"]),
    it("count(DISTINCT machine_id) >= 6", OK, &["machine_id"]),
    it("count(*) >= 5 AND avg(vibration) < 2.5", OK, &["vibration"]),
    it(
        "count(*) < 5 OR count(DISTINCT machine_id) < 5",
        OK,
        &["machine_id"],
    ),
    it(
        "count(*) > 100 OR avg(temperature) < 75",
        OK,
        &["temperature"],
    ),
    bad(
        "max(temperature) > 95",
        "aggregate function max in HAVING",
        &["temperature"],
    ),
    bad(
        "min(vibration) < 0.6",
        "aggregate function min in HAVING",
        &["vibration"],
    ),
    bad(
        "count(machine_id) > 3",
        "entity outside count(DISTINCT) in HAVING",
        &["machine_id"],
    ),
    bad(
        "sum(temperature * 2) > 100",
        "expression as aggregate argument in HAVING",
        &["temperature"],
    ),
    bad(
        "count(operator_name) > 1",
        "denied column in HAVING",
        &["operator_name"],
    ),
    bad(
        "bool_or(temperature > 97)",
        "aggregate function bool_or in HAVING",
        &["temperature"],
    ),
];

/// Scalar subqueries: (select item, suffix, verdict).
const SUB_ITEMS: &[(&str, &str, V)] = &[
    ("count(*)", "", OK),
    ("avg(temperature)", "", OK),
    ("sum(vibration)", "", OK),
    ("count(DISTINCT machine_id)", "", OK),
    ("avg(vibration) * 10", "", OK),
    (
        "max(temperature)",
        "",
        V::Bad("aggregate function max in a subquery"),
    ),
    (
        "temperature",
        " LIMIT 1",
        V::Bad("subquery returns dataset rows"),
    ),
    (
        "vibration",
        " ORDER BY vibration DESC LIMIT 1",
        V::Bad("subquery returns dataset rows"),
    ),
    (
        "count(operator_name)",
        "",
        V::Bad("denied column in a subquery"),
    ),
    (
        "count(*)",
        " GROUP BY machine_id ORDER BY 1 LIMIT 1",
        V::Bad("entity column as group key in a subquery"),
    ),
];

/// Joins of dataset rows before aggregation (all forbidden by `joins: none`).
const JOINS: &[&str] = &[
    " CROSS JOIN (VALUES (1), (2), (3)) v(x)",
    " JOIN (SELECT site AS s2 FROM telemetry) b ON site = b.s2",
    " JOIN (SELECT shift AS s2, count(*) AS n2 FROM telemetry GROUP BY shift) b ON shift = b.s2",
    " CROSS JOIN (SELECT count(*) AS n2 FROM telemetry) b",
    " JOIN (VALUES ('north-plant'), ('west-lab')) v(s2) ON site = v.s2",
    " LEFT JOIN (SELECT ts AS t2 FROM telemetry WHERE shift = 'day') b ON ts = b.t2",
];

/// Extra columns of a derived table below the aggregate.
const EXTRAS: &[Item] = &[
    bad("*", "`*` expands to the denied column", &[]),
    bad(
        "temperature * 2 AS t2",
        "computed column below the aggregate",
        &["temperature"],
    ),
    it("1 AS one", UNK, &[]),
    it("date_trunc('day', ts) AS d", OK, &["ts"]),
    bad("operator_name", "denied column", &["operator_name"]),
    bad(
        "row_number() OVER (ORDER BY ts) AS rn",
        "window below the aggregate",
        &["ts"],
    ),
    it("machine_id", OK, &["machine_id"]),
    bad(
        "upper(site) AS us",
        "computed column below the aggregate",
        &["site"],
    ),
    bad(
        "CASE WHEN site = 'west-lab' THEN 1 ELSE 0 END AS w",
        "computed column below the aggregate",
        &["site"],
    ),
    it("temperature", OK, &["temperature"]),
    it("date_part('hour', ts) AS h", OK, &["ts"]),
];

/// Tails of a derived table below the aggregate (index 0: none).
const TAILS: &[(&str, V)] = &[
    ("", OK),
    // The spec forbids a sort below the aggregate, but DataFusion's SQL
    // planner drops an ORDER BY without LIMIT from a subquery before the
    // enforcer sees the plan, and a sort alone cannot change an aggregate.
    (" ORDER BY ts", UNK),
    (" LIMIT 500", V::Bad("LIMIT below the aggregate")),
    (
        " ORDER BY temperature DESC LIMIT 50",
        V::Bad("ORDER BY/LIMIT below the aggregate"),
    ),
    (" OFFSET 3", V::Bad("OFFSET below the aggregate")),
];

/// Items of a query without aggregation (all such queries release rows).
const RAW_ITEMS: &[&str] = &[
    "site",
    "shift",
    "defect",
    "ts",
    "temperature",
    "vibration",
    "machine_id",
    "operator_name",
    "*",
    "temperature + 1 AS t1",
    "vibration * 2 AS v2",
    "1 AS one",
    "'x' AS lit",
    "avg(temperature) OVER (PARTITION BY site) AS w",
    "row_number() OVER (ORDER BY ts) AS rn",
    "count(*) OVER () AS c",
    "lag(temperature) OVER (ORDER BY ts) AS lg",
    "sum(vibration) OVER (PARTITION BY shift) AS sv",
];

const THRESHOLD: &str = "count(*) >= 5 AND count(DISTINCT machine_id) >= 5";
const ROW_FILTER: &str = "site <> 'secret-plant'";

/// Hand-written queries: (sql, verdict, reference).
const STATIC: &[(&str, V, Option<&str>)] = &[
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY GROUPING SETS ((site), ())",
        V::Bad("GROUPING SETS"),
        None,
    ),
    (
        "SELECT site, shift, count(*) AS n FROM telemetry GROUP BY CUBE (site, shift)",
        V::Bad("CUBE"),
        None,
    ),
    (
        "SELECT unnest(array_agg(temperature)) AS t FROM telemetry",
        V::Bad("aggregate function array_agg"),
        None,
    ),
    (
        "WITH RECURSIVE r(n) AS (SELECT count(*) FROM telemetry UNION ALL SELECT n + 1 FROM r WHERE n < 800) SELECT max(n) AS m FROM r",
        UNK,
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY 1",
        UNK,
        Some(
            "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT t.site, count(*) AS n FROM telemetry AS t GROUP BY t.site",
        OK,
        Some(
            "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry t WHERE t.shift = 'day' GROUP BY site",
        OK,
        Some(
            "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' AND shift = 'day' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT * FROM (SELECT site, count(*) AS n FROM telemetry GROUP BY site) s ORDER BY n LIMIT 1",
        OK,
        None,
    ),
    (
        "SELECT count(*) AS n FROM telemetry t1 WHERE t1.site IN (SELECT site FROM telemetry)",
        V::Bad("subquery in a filter"),
        None,
    ),
    (
        "SELECT DISTINCT site FROM telemetry",
        V::Bad("DISTINCT over dataset rows"),
        None,
    ),
    (
        "SELECT DISTINCT shift, defect FROM telemetry WHERE site = 'pilot-line'",
        V::Bad("DISTINCT over dataset rows"),
        None,
    ),
    (
        "SELECT site FROM telemetry GROUP BY site",
        OK,
        Some(
            "SELECT site FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site HAVING count(*) < 50",
        OK,
        Some(
            "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5 AND count(*) < 50",
        ),
    ),
    (
        "SELECT count(*) AS n FROM (SELECT site FROM telemetry WHERE site = 'pilot-line') s",
        OK,
        Some(
            "SELECT count(*) FROM telemetry WHERE site <> 'secret-plant' AND site = 'pilot-line' HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT 1 AS one FROM telemetry WHERE site = 'pilot-line'",
        V::Bad("literal rows release the row count"),
        None,
    ),
    (
        "SELECT count(*) AS n FROM telemetry WHERE site = 'pilot-line' UNION ALL SELECT count(*) FROM telemetry WHERE site = 'west-lab'",
        OK,
        Some(
            "SELECT count(*) FROM telemetry WHERE site <> 'secret-plant' AND site = 'pilot-line' HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5 \
             UNION ALL SELECT count(*) FROM telemetry WHERE site <> 'secret-plant' AND site = 'west-lab' HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site ORDER BY count(*) DESC",
        OK,
        Some(
            "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT n FROM (SELECT site, count(*) AS n FROM telemetry GROUP BY site) s WHERE site = 'secret-plant'",
        OK,
        Some("SELECT 1 WHERE false"),
    ),
    (
        "SELECT (SELECT count(*) FROM telemetry WHERE site = 'pilot-line') AS n",
        OK,
        Some(
            "SELECT (SELECT count(*) FROM telemetry WHERE site <> 'secret-plant' AND site = 'pilot-line' HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5) AS n",
        ),
    ),
    (
        "SELECT avg(temperature) AS t FROM telemetry WHERE site IN ('pilot-line', 'west-lab')",
        OK,
        Some(
            "SELECT avg(temperature) FROM telemetry WHERE site <> 'secret-plant' AND site IN ('pilot-line', 'west-lab') HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT shift, avg(temperature) AS t FROM telemetry WHERE site = 'secret-plant' OR site <> 'secret-plant' GROUP BY shift",
        V::Bad("OR in a filter"),
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site, machine_id",
        V::Bad("entity column as group key"),
        None,
    ),
    (
        "SELECT site, sum(temperature) AS t FROM telemetry GROUP BY site HAVING max(temperature) > 0",
        V::Bad("aggregate function max in HAVING"),
        None,
    ),
    (
        "SELECT count(*) AS n FROM telemetry WHERE site = 'pilot-line' AND shift = 'day' OR site = 'west-lab'",
        V::Bad("OR in a filter"),
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site LIMIT 2",
        OK,
        None,
    ),
    (
        "SELECT * FROM telemetry LIMIT 0",
        V::Bad("`*` expands to the denied column"),
        None,
    ),
    (
        "SELECT count(*) AS n FROM telemetry LIMIT 1 OFFSET 0",
        OK,
        Some(
            "SELECT count(*) FROM telemetry WHERE site <> 'secret-plant' HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT t.* FROM telemetry t WHERE false",
        V::Bad("`t.*` expands to the denied column"),
        None,
    ),
    (
        "SELECT count(*) AS n FROM telemetry a, telemetry b WHERE a.ts = b.ts",
        V::Bad("join of dataset rows"),
        None,
    ),
    (
        "SELECT m, count(*) AS n FROM (SELECT machine_id AS m FROM telemetry) s GROUP BY m",
        V::Bad("renamed entity column as group key"),
        None,
    ),
    (
        "SELECT site, avg(t) AS a FROM (SELECT site, temperature AS t FROM telemetry) s GROUP BY site",
        OK,
        Some(
            "SELECT site, avg(temperature) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT site, max(t) AS a FROM (SELECT site, temperature AS t FROM telemetry) s GROUP BY site",
        V::Bad("aggregate function max on a renamed measure"),
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM (SELECT site, temperature AS t FROM telemetry) s WHERE t > 90 GROUP BY site",
        V::Bad("renamed measure in a filter"),
        None,
    ),
    (
        "SELECT s.site, count(*) AS n FROM (SELECT site, machine_id AS site2 FROM telemetry) s WHERE s.site2 = 'N-99' GROUP BY s.site",
        V::Bad("renamed entity in a filter"),
        None,
    ),
    (
        "SELECT site AS machine_id, count(*) AS n FROM telemetry GROUP BY site",
        OK,
        Some(
            "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT temperature AS site, count(*) AS n FROM telemetry GROUP BY temperature",
        V::Bad("measure as group key"),
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM (SELECT site FROM (SELECT site, shift FROM telemetry WHERE shift = 'day') s1) s2 GROUP BY site",
        OK,
        Some(
            "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' AND shift = 'day' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT count(*) AS g FROM (SELECT site FROM telemetry GROUP BY site) s",
        OK,
        Some(
            "SELECT count(*) FROM (SELECT site FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5) s",
        ),
    ),
    (
        "SELECT count(*) AS g FROM (SELECT DISTINCT site FROM telemetry) s",
        V::Bad("DISTINCT below the aggregate"),
        None,
    ),
    (
        "SELECT * FROM (SELECT site, count(*) AS n FROM telemetry GROUP BY site) s NATURAL JOIN (SELECT site, avg(temperature) AS t FROM telemetry GROUP BY site) u",
        OK,
        Some(
            "SELECT * FROM (SELECT site, count(*) AS n FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5) s \
             NATURAL JOIN (SELECT site, avg(temperature) AS t FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5) u",
        ),
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry WHERE site IN (SELECT column1 FROM (VALUES ('north-plant'), ('pilot-line'))) GROUP BY site",
        V::Bad("subquery in a filter"),
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site HAVING site <> 'west-lab'",
        OK,
        Some(
            "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5 AND site <> 'west-lab'",
        ),
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site ORDER BY max(temperature) DESC",
        V::Bad("aggregate function max in ORDER BY"),
        None,
    ),
    (
        "SELECT site FROM telemetry GROUP BY site ORDER BY min(ts)",
        V::Bad("aggregate function min in ORDER BY"),
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site HAVING avg(temperature) > (SELECT avg(temperature) FROM telemetry WHERE machine_id = 'N-99')",
        V::Bad("entity in a subquery filter"),
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM TELEMETRY GROUP BY site",
        OK,
        Some(
            "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT \"site\", count(*) AS n FROM public.telemetry GROUP BY \"site\"",
        OK,
        Some(
            "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT SITE, COUNT(*) AS n FROM datafusion.public.telemetry GROUP BY SITE",
        OK,
        Some(
            "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT \"Site\", count(*) AS n FROM telemetry GROUP BY \"Site\"",
        UNK,
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry WHERE ts > now() - INTERVAL '1 day' GROUP BY site",
        UNK,
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry WHERE site = 'north' || '-plant' GROUP BY site",
        UNK,
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry WHERE ts > CAST('2026-03-01' AS TIMESTAMP) GROUP BY site",
        UNK,
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site, site",
        UNK,
        None,
    ),
    (
        "SELECT count(*) AS n FROM telemetry GROUP BY site",
        OK,
        Some(
            "SELECT count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry WHERE site = 'pilot-line' GROUP BY site",
        OK,
        Some("SELECT 1 WHERE false"),
    ),
    (
        "SELECT count(*) AS n FROM telemetry WHERE site = 'east-plant'",
        OK,
        Some("SELECT 1 WHERE false"),
    ),
    (
        "SELECT count(*) AS n FROM telemetry WHERE site = 'south-plant' AND defect = true",
        OK,
        Some("SELECT 1 WHERE false"),
    ),
    (
        "SELECT avg(temperature) AS t FROM (SELECT temperature FROM telemetry ORDER BY temperature DESC LIMIT 5) s",
        V::Bad("ORDER BY/LIMIT below the aggregate"),
        None,
    ),
    (
        "SELECT array_agg(site) AS sites FROM (SELECT site FROM telemetry GROUP BY site) s",
        OK,
        None,
    ),
    (
        "SELECT count(*) AS n FROM telemetry WHERE site = 'pilot-line' HAVING count(*) > 0",
        OK,
        Some("SELECT 1 WHERE false"),
    ),
    (
        "SELECT site FROM telemetry EXCEPT SELECT 'north-plant'",
        V::Bad("dataset rows without aggregation (EXCEPT)"),
        None,
    ),
    (
        "SELECT site FROM telemetry INTERSECT SELECT 'pilot-line'",
        V::Bad("dataset rows without aggregation (INTERSECT)"),
        None,
    ),
    (
        "SELECT 'pilot-line' AS s INTERSECT SELECT site FROM telemetry GROUP BY site",
        OK,
        Some("SELECT 1 WHERE false"),
    ),
    (
        "SELECT site FROM telemetry GROUP BY site EXCEPT SELECT 'north-plant'",
        OK,
        Some(
            "SELECT site FROM telemetry WHERE site <> 'secret-plant' AND site <> 'north-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "SELECT count(*) AS n FROM (SELECT site FROM telemetry INTERSECT SELECT 'pilot-line') s",
        V::Bad("INTERSECT below the aggregate"),
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site HAVING 'pilot-line' IN (SELECT site FROM telemetry)",
        V::Bad("subquery over dataset rows"),
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM \"telemetry\" GROUP BY site",
        OK,
        Some(
            "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
        ),
    ),
    (
        "WITH telemetry AS (SELECT 'pilot-line' AS site, 'P-99' AS machine_id) SELECT site, count(*) AS n FROM telemetry GROUP BY site",
        UNK,
        None,
    ),
    (
        "WITH t AS (SELECT * FROM telemetry WHERE false) SELECT count(*) AS n FROM t",
        V::Bad("`*` expands to the denied column"),
        None,
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site HAVING count(DISTINCT machine_id) = 5",
        OK,
        Some(
            "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5 AND count(DISTINCT machine_id) = 5",
        ),
    ),
];

/// Allowed queries with a `LIMIT`: (sql, a raw query whose rows must include the answer's).
const STATIC_LIMIT: &[(&str, &str)] = &[
    (
        "SELECT site FROM telemetry GROUP BY site LIMIT 3",
        "SELECT site FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
    ),
    (
        "SELECT site, shift FROM telemetry GROUP BY site, shift LIMIT 4",
        "SELECT site, shift FROM telemetry WHERE site <> 'secret-plant' GROUP BY site, shift HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site LIMIT 2",
        "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
    ),
    (
        "SELECT DISTINCT site FROM (SELECT site, count(*) AS n FROM telemetry GROUP BY site) s LIMIT 2",
        "SELECT site FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
    ),
    (
        "SELECT site, defect FROM telemetry WHERE site <> 'north-plant' GROUP BY site, defect LIMIT 5",
        "SELECT site, defect FROM telemetry WHERE site <> 'secret-plant' AND site <> 'north-plant' GROUP BY site, defect HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
    ),
    (
        "SELECT date_trunc('hour', ts) AS h FROM telemetry WHERE site = 'south-plant' GROUP BY date_trunc('hour', ts) LIMIT 10",
        "SELECT date_trunc('hour', ts) FROM telemetry WHERE site <> 'secret-plant' AND site = 'south-plant' GROUP BY date_trunc('hour', ts) HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
    ),
    (
        "SELECT shift, count(DISTINCT machine_id) AS m FROM telemetry WHERE site = 'pilot-line' GROUP BY shift LIMIT 1",
        "SELECT 1 AS a, 1 AS b WHERE false",
    ),
    (
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site ORDER BY count(*) LIMIT 1",
        "SELECT site, count(*) FROM telemetry WHERE site <> 'secret-plant' GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
    ),
];

/// `ORDER BY` items of an aggregate query (they aggregate raw rows too).
const ORDER_BY: &[Item] = &[
    it("count(*)", OK, &[]),
    it("sum(temperature) DESC", OK, &["temperature"]),
    it("avg(vibration), count(*)", OK, &["vibration"]),
    it("1 / (count(*) - 12)", OK, &[]),
    bad(
        "max(temperature)",
        "aggregate function max in ORDER BY",
        &["temperature"],
    ),
    bad(
        "min(ts) DESC",
        "aggregate function min in ORDER BY",
        &["ts"],
    ),
    bad(
        "count(operator_name)",
        "denied column in ORDER BY",
        &["operator_name"],
    ),
];

// ---------------------------------------------------------------------------
// The query model.

/// Error oracle: a division by zero on a group's count. A group that the
/// threshold drops must never be evaluated, or the error (a failed query)
/// tells whether a suppressed group (or a filtered row's group) has that count.
#[derive(Debug, Clone)]
struct Oracle {
    keys: Vec<usize>,
    preds: Vec<usize>,
    n: i64,
    entity: bool,
    /// Where the division stands: 0 `HAVING`, 1 `WHERE` over a derived
    /// table, 2 `ORDER BY`, 3 the select list.
    place: u8,
}

impl Oracle {
    /// (sql, reference when no released group hits the zero, oracle query).
    fn render(&self) -> (String, String, String) {
        let keys: Vec<&str> = self.keys.iter().map(|&k| KEYS[k].sql).collect();
        let sel: String = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} AS k{i}, "))
            .collect();
        let group = if keys.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", keys.join(", "))
        };
        let counted = if self.entity {
            "count(DISTINCT machine_id)"
        } else {
            "count(*)"
        };
        let alias = if self.entity { "m" } else { "n" };
        let n = self.n;
        let base = |refm: bool| {
            format!(
                "SELECT {sel}count(*) AS n, count(DISTINCT machine_id) AS m FROM telemetry{}{group}",
                where_clause(&pred_list(&self.preds, refm))
            )
        };
        let (sql, reference) = match self.place {
            // 1 / (x - n) >= 0 holds unless x - n = -1 (and fails when x = n).
            0 => (
                format!("{} HAVING 1 / ({counted} - {n}) >= 0", base(false)),
                format!(
                    "{} HAVING {THRESHOLD} AND {counted} <> {}",
                    base(true),
                    n - 1
                ),
            ),
            1 => (
                format!(
                    "SELECT * FROM ({}) s WHERE 1 / ({alias} - {n}) >= 0",
                    base(false)
                ),
                format!(
                    "{} HAVING {THRESHOLD} AND {counted} <> {}",
                    base(true),
                    n - 1
                ),
            ),
            2 => (
                format!("{} ORDER BY 1 / ({counted} - {n})", base(false)),
                format!("{} HAVING {THRESHOLD}", base(true)),
            ),
            _ => {
                let with = |refm: bool| {
                    format!(
                        "SELECT {sel}count(*) AS n, 1 / ({counted} - {n}) AS d FROM telemetry{}{group}",
                        where_clause(&pred_list(&self.preds, refm))
                    )
                };
                (with(false), format!("{} HAVING {THRESHOLD}", with(true)))
            }
        };
        let oracle = format!(
            "SELECT count(*) AS c FROM ({} HAVING {THRESHOLD}) s WHERE {alias} = {n}",
            base(true)
        );
        (sql, reference, oracle)
    }
}

/// A scalar subquery over the dataset: `(SELECT item FROM telemetry WHERE preds)`.
#[derive(Debug, Clone)]
struct Sub {
    item: usize,
    preds: Vec<usize>,
}

/// An aggregate query directly over the dataset.
#[derive(Debug, Clone)]
struct Core {
    keys: Vec<usize>,
    aggs: Vec<usize>,
    preds: Vec<usize>,
    having: Option<usize>,
    sel_sub: Option<Sub>,
    having_sub: Option<Sub>,
    rollup: bool,
    join: Option<usize>,
    /// Group by the keys without selecting them.
    hide_keys: bool,
}

/// What wraps an aggregate query (all after the aggregate, except where noted).
#[derive(Debug, Clone)]
struct Wrapper {
    kind: usize,
    post: Option<usize>,
    order: u8,
    sub: Sub,
}

/// An aggregate over a derived table (or CTE) of dataset rows.
#[derive(Debug, Clone)]
struct Derived {
    keys: Vec<usize>,
    aggs: Vec<usize>,
    inner_preds: Vec<usize>,
    outer_preds: Vec<usize>,
    extra: Option<usize>,
    tail: usize,
    distinct: bool,
    union: bool,
    cte: bool,
}

/// A query without aggregation.
#[derive(Debug, Clone)]
struct RawSel {
    items: Vec<usize>,
    preds: Vec<usize>,
    tail: usize,
    distinct: bool,
}

#[derive(Debug, Clone)]
enum Shape {
    Simple(Core),
    Core(Core, u8, Option<usize>),
    Oracle(Oracle),
    Wrap(Core, Wrapper),
    Union(Core, Core),
    Join(Core, Core, bool),
    Derived(Derived),
    Raw(RawSel),
    Static(usize),
    StaticLimit(usize),
}

/// What an answer must be, as a query on the raw table.
#[derive(Debug, Clone)]
enum Reference {
    /// The same multiset of rows.
    Exact(String),
    /// A sub-multiset of its rows (the query has a `LIMIT`).
    Superset(String),
}

/// A generated query, rendered.
#[derive(Debug, Clone)]
struct Rendered {
    family: &'static str,
    sql: String,
    /// The reference on the raw table, when the query is not `Bad`.
    reference: Option<Reference>,
    v: V,
    must_accept: bool,
    /// For the error-oracle family: a raw query counting the released groups
    /// on which the query's division by zero may legitimately fail.
    oracle: Option<String>,
}

fn where_clause(preds: &[String]) -> String {
    if preds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", preds.join(" AND "))
    }
}

fn pred_list(preds: &[usize], refm: bool) -> Vec<String> {
    let mut out = Vec::new();
    if refm {
        out.push(ROW_FILTER.to_owned());
    }
    for &p in preds {
        out.push(if refm {
            format!("({})", PREDS[p].sql)
        } else {
            PREDS[p].sql.to_owned()
        });
    }
    out
}

impl Sub {
    fn render(&self, refm: bool) -> String {
        let (item, suffix, _) = SUB_ITEMS[self.item];
        let mut s = format!(
            "(SELECT {item} FROM telemetry{}",
            where_clause(&pred_list(&self.preds, refm))
        );
        if refm {
            let _ = write!(s, " HAVING {THRESHOLD}");
        }
        s.push_str(suffix);
        s.push(')');
        s
    }

    fn verdict(&self) -> V {
        self.preds
            .iter()
            .fold(SUB_ITEMS[self.item].2, |v, &p| v.and(PREDS[p].v))
    }
}

impl Core {
    fn render(&self, refm: bool) -> String {
        let mut sel: Vec<String> = Vec::new();
        for (i, &k) in self.keys.iter().enumerate() {
            if !self.hide_keys {
                sel.push(format!("{} AS k{i}", KEYS[k].sql));
            }
        }
        for (j, &a) in self.aggs.iter().enumerate() {
            sel.push(format!("{} AS a{j}", AGGS[a].sql));
        }
        if let Some(s) = &self.sel_sub {
            sel.push(format!("{} AS sq", s.render(refm)));
        }
        let mut sql = format!("SELECT {} FROM telemetry", sel.join(", "));
        if let Some(j) = self.join {
            sql.push_str(JOINS[j]);
        }
        sql.push_str(&where_clause(&pred_list(&self.preds, refm)));
        if !self.keys.is_empty() {
            let keys: Vec<&str> = self.keys.iter().map(|&k| KEYS[k].sql).collect();
            if self.rollup {
                let _ = write!(sql, " GROUP BY ROLLUP ({})", keys.join(", "));
            } else {
                let _ = write!(sql, " GROUP BY {}", keys.join(", "));
            }
        }
        let mut having: Vec<String> = Vec::new();
        if refm {
            having.push(THRESHOLD.to_owned());
        }
        if let Some(h) = self.having {
            having.push(format!("({})", HAVINGS[h].sql));
        }
        if let Some(s) = &self.having_sub {
            having.push(format!("count(*) > {}", s.render(refm)));
        }
        if !having.is_empty() {
            let _ = write!(sql, " HAVING {}", having.join(" AND "));
        }
        sql
    }

    fn verdict(&self) -> V {
        self.verdict_with(false)
    }

    /// `aggregated_elsewhere`: an aggregate outside the select list (in
    /// `ORDER BY`) makes the query an aggregate even without keys.
    fn verdict_with(&self, aggregated_elsewhere: bool) -> V {
        let mut v = OK;
        for &k in &self.keys {
            v = v.and(KEYS[k].v);
        }
        for &a in &self.aggs {
            v = v.and(AGGS[a].v);
        }
        for &p in &self.preds {
            v = v.and(PREDS[p].v);
        }
        if let Some(h) = self.having {
            v = v.and(HAVINGS[h].v);
        }
        for s in self.sel_sub.iter().chain(&self.having_sub) {
            v = v.and(s.verdict());
        }
        if self.rollup && !self.keys.is_empty() {
            v = v.and(V::Bad("ROLLUP"));
        }
        if self.join.is_some() {
            v = v.and(V::Bad("join of dataset rows"));
        }
        let literal_only = self.aggs.iter().all(|&a| !AGGS[a].sql.contains('('));
        if self.keys.is_empty()
            && literal_only
            && self.having.is_none()
            && self.having_sub.is_none()
            && !aggregated_elsewhere
        {
            // `SELECT 42 FROM telemetry WHERE ...`: one row per dataset row,
            // so the row count of a group below the threshold is released.
            v = v.and(V::Bad("literal rows release the row count"));
        }
        v
    }

    fn key0_is_text(&self) -> bool {
        self.keys
            .first()
            .is_some_and(|&k| matches!(KEYS[k].sql, "site" | "shift"))
    }
}

const WRAP_KINDS: usize = 13;

impl Wrapper {
    fn post_sql(&self, core: &Core, refm: bool) -> Option<String> {
        let p = self.post?;
        Some(match p {
            0 => "a0 IS NOT NULL".to_owned(),
            1 => "a0 >= 1".to_owned(),
            2 => "a0 < 70".to_owned(),
            3 => format!("a0 > {}", self.sub.render(refm)),
            4 if !core.keys.is_empty() => "k0 IS NOT NULL".to_owned(),
            5 if core.key0_is_text() => "k0 <> 'secret-plant'".to_owned(),
            _ => "a0 IS NOT NULL".to_owned(),
        })
    }

    fn render(&self, core: &Core, refm: bool) -> String {
        let c = core.render(refm);
        let w = self
            .post_sql(core, refm)
            .map(|p| format!(" WHERE {p}"))
            .unwrap_or_default();
        let o = match self.order {
            0 => "",
            1 => " ORDER BY a0",
            _ => " ORDER BY a0 DESC LIMIT 3",
        };
        let th = if refm {
            format!(" WHERE {ROW_FILTER}")
        } else {
            String::new()
        };
        let th_having = if refm {
            format!(" HAVING {THRESHOLD}")
        } else {
            String::new()
        };
        let th_and = if refm {
            format!(" AND {THRESHOLD}")
        } else {
            String::new()
        };
        match self.kind {
            0 => format!("WITH x AS ({c}) SELECT * FROM x{w}{o}"),
            1 => format!("SELECT s.*, 7 AS p FROM ({c}) s{w}{o}"),
            2 => format!("SELECT * FROM ({c} ORDER BY a0 DESC LIMIT 3) s{w}{o}"),
            3 => format!(
                "SELECT s.*, rank() OVER (ORDER BY a0) AS r, count(*) OVER () AS tot FROM ({c}) s{w}{o}"
            ),
            4 => format!("SELECT count(*) AS g, max(a0) AS mx, min(a0) AS mn FROM ({c}) s{w}"),
            5 => format!("SELECT s.*, v.x FROM ({c}) s CROSS JOIN (VALUES (1), (2)) v(x){w}{o}"),
            6 => format!(
                "SELECT s.*, {} AS sq2 FROM ({c}) s{w}{o}",
                self.sub.render(refm)
            ),
            7 => format!(
                "SELECT * FROM ({c}) s WHERE EXISTS (SELECT 1 FROM telemetry WHERE temperature > 97){o}"
            ),
            8 => format!(
                "SELECT * FROM ({c}) s WHERE a0 IN (SELECT count(*) FROM telemetry{th} GROUP BY site{th_having}){o}"
            ),
            9 => {
                format!("SELECT * FROM ({c}) s WHERE a0 IN (SELECT temperature FROM telemetry){o}")
            }
            10 if core.keys.first().is_some_and(|&k| KEYS[k].sql == "site") => {
                format!(
                    "SELECT s.*, (SELECT count(*) FROM telemetry t2 WHERE t2.shift = 'day' AND t2.site = s.k0) AS c2 FROM ({c}) s{w}{o}"
                )
            }
            10 => format!(
                "SELECT s.*, (SELECT count(*) FROM telemetry t2{th}{th_having}) AS c2 FROM ({c}) s{w}{o}"
            ),
            11 => format!(
                "SELECT * FROM ({c}) s WHERE EXISTS (SELECT count(*) FROM telemetry{th} HAVING count(*) > 100{th_and}){o}"
            ),
            _ if !core.keys.is_empty() => {
                format!("SELECT k0, count(*) AS t, max(a0) AS m FROM ({c}) s{w} GROUP BY k0")
            }
            _ => format!("SELECT count(*) AS t, max(a0) AS m FROM ({c}) s{w}"),
        }
    }

    fn verdict(&self, core: &Core) -> V {
        let mut v = core.verdict();
        v = v.and(match self.kind {
            7 => V::Bad("EXISTS over dataset rows"),
            9 => V::Bad("IN subquery over dataset rows"),
            8 | 11 => UNK,
            10 if core.keys.first().is_some_and(|&k| KEYS[k].sql == "site") => UNK,
            _ => OK,
        });
        // The post filter (and a subquery in it) is only rendered by some kinds.
        let renders_post = !matches!(self.kind, 7 | 8 | 9 | 11);
        let uses_sub = self.kind == 6 || (self.post == Some(3) && renders_post);
        if uses_sub {
            v = v.and(self.sub.verdict());
        }
        v
    }
}

impl Derived {
    fn needed(&self) -> Vec<&'static str> {
        let mut cols: Vec<&'static str> = Vec::new();
        let all = self
            .keys
            .iter()
            .flat_map(|&k| KEYS[k].cols)
            .chain(self.aggs.iter().flat_map(|&a| AGGS[a].cols))
            .chain(self.outer_preds.iter().flat_map(|&p| PREDS[p].cols));
        for &c in all {
            if !cols.contains(&c) {
                cols.push(c);
            }
        }
        cols
    }

    fn render(&self, refm: bool) -> String {
        let mut items: Vec<String> = self.needed().iter().map(|c| (*c).to_owned()).collect();
        if let Some(e) = self.extra {
            let extra = EXTRAS[e];
            if extra.sql == "*" {
                if !refm {
                    items = vec!["*".to_owned()];
                }
            } else {
                let present = items.iter().any(|i| i == extra.sql);
                let dropped_from_reference = refm && matches!(extra.v, V::Bad(_));
                if !present && !dropped_from_reference {
                    items.push(extra.sql.to_owned());
                }
            }
        }
        if refm {
            items.push("machine_id AS m__".to_owned());
        }
        if items.is_empty() {
            items.push("site".to_owned());
        }
        let distinct = if self.distinct { "DISTINCT " } else { "" };
        let mut inner = format!(
            "SELECT {distinct}{} FROM telemetry{}{}",
            items.join(", "),
            where_clause(&pred_list(&self.inner_preds, refm)),
            TAILS[self.tail].0
        );
        if self.union {
            inner = format!("{inner} UNION ALL {inner}");
        }
        let mut sel: Vec<String> = Vec::new();
        for (i, &k) in self.keys.iter().enumerate() {
            sel.push(format!("{} AS k{i}", KEYS[k].sql));
        }
        for (j, &a) in self.aggs.iter().enumerate() {
            sel.push(format!("{} AS a{j}", AGGS[a].sql));
        }
        let outer_preds: Vec<String> = self
            .outer_preds
            .iter()
            .map(|&p| {
                if refm {
                    format!("({})", PREDS[p].sql)
                } else {
                    PREDS[p].sql.to_owned()
                }
            })
            .collect();
        let from = if self.cte {
            format!("WITH x AS ({inner}) SELECT {} FROM x", sel.join(", "))
        } else {
            format!("SELECT {} FROM ({inner}) s", sel.join(", "))
        };
        let mut sql = format!("{from}{}", where_clause(&outer_preds));
        if !self.keys.is_empty() {
            let keys: Vec<&str> = self.keys.iter().map(|&k| KEYS[k].sql).collect();
            let _ = write!(sql, " GROUP BY {}", keys.join(", "));
        }
        if refm {
            sql.push_str(" HAVING count(*) >= 5 AND count(DISTINCT m__) >= 5");
        }
        sql
    }

    fn verdict(&self) -> V {
        let mut v = OK;
        for &k in &self.keys {
            v = v.and(KEYS[k].v);
        }
        for &a in &self.aggs {
            v = v.and(AGGS[a].v);
        }
        for &p in self.inner_preds.iter().chain(&self.outer_preds) {
            v = v.and(PREDS[p].v);
        }
        if let Some(e) = self.extra {
            v = v.and(EXTRAS[e].v);
        }
        v = v.and(TAILS[self.tail].1);
        if self.distinct {
            v = v.and(V::Bad("DISTINCT below the aggregate"));
        }
        if self.union {
            v = v.and(V::Bad("UNION below the aggregate"));
        }
        let literal_only = self.aggs.iter().all(|&a| !AGGS[a].sql.contains('('));
        if self.keys.is_empty() && literal_only {
            v = v.and(V::Bad("literal rows release the row count"));
        }
        v
    }
}

impl RawSel {
    fn render(&self) -> String {
        let items: Vec<&str> = self.items.iter().map(|&i| RAW_ITEMS[i]).collect();
        let distinct = if self.distinct { "DISTINCT " } else { "" };
        format!(
            "SELECT {distinct}{} FROM telemetry{}{}",
            items.join(", "),
            where_clause(&pred_list(&self.preds, false)),
            TAILS[self.tail].0
        )
    }
}

fn render(shape: &Shape) -> Rendered {
    use Reference::{Exact, Superset};
    let (family, sql, reference, v, must_accept) = match shape {
        Shape::Simple(c) => (
            "simple",
            c.render(false),
            Some(Exact(c.render(true))),
            c.verdict(),
            true,
        ),
        Shape::Core(c, order, by) => {
            let limit = if *order == 2 { " LIMIT 3" } else { "" };
            let o = match (order, by) {
                (0, None) => String::new(),
                (_, Some(b)) => format!(" ORDER BY {}{limit}", ORDER_BY[*b].sql),
                (1, None) => " ORDER BY a0".to_owned(),
                _ => " ORDER BY a0 DESC LIMIT 3".to_owned(),
            };
            let v = by.map_or(c.verdict(), |b| c.verdict_with(true).and(ORDER_BY[b].v));
            let reference = if *order < 2 {
                Exact(format!("{}{o}", c.render(true)))
            } else {
                Superset(c.render(true))
            };
            (
                "core",
                format!("{}{o}", c.render(false)),
                Some(reference),
                v,
                false,
            )
        }
        Shape::Oracle(o) => {
            let (sql, reference, oracle) = o.render();
            return Rendered {
                family: "oracle",
                sql,
                reference: Some(Exact(reference)),
                v: OK,
                must_accept: false,
                oracle: Some(oracle),
            };
        }
        Shape::Wrap(c, w) => {
            let correlated = w.kind == 10 && c.keys.first().is_some_and(|&k| KEYS[k].sql == "site");
            let uses_order = !matches!(w.kind, 4 | 12..);
            let limited = w.kind == 2 || (w.order == 2 && uses_order);
            let reference = if correlated {
                None
            } else if limited {
                let kind = if w.kind == 2 { 0 } else { w.kind };
                let unlimited = Wrapper {
                    kind,
                    order: 0,
                    ..w.clone()
                };
                Some(Superset(unlimited.render(c, true)))
            } else {
                Some(Exact(w.render(c, true)))
            };
            (
                "wrapped",
                w.render(c, false),
                reference,
                w.verdict(c),
                false,
            )
        }
        Shape::Union(a, b) => {
            let k = |c: &Core| {
                if c.keys.is_empty() {
                    "'all'"
                } else {
                    "CAST(k0 AS VARCHAR)"
                }
            };
            let r = |refm: bool| {
                format!(
                    "SELECT {} AS k, CAST(a0 AS VARCHAR) AS v FROM ({}) s1 UNION ALL SELECT {}, CAST(a0 AS VARCHAR) FROM ({}) s2",
                    k(a),
                    a.render(refm),
                    k(b),
                    b.render(refm)
                )
            };
            (
                "union",
                r(false),
                Some(Exact(r(true))),
                a.verdict().and(b.verdict()),
                false,
            )
        }
        Shape::Join(a, b, left) => {
            let r = |refm: bool| {
                if a.keys.is_empty() {
                    format!(
                        "SELECT a.*, b.a0 AS b0 FROM ({}) a CROSS JOIN ({}) b",
                        a.render(refm),
                        b.render(refm)
                    )
                } else {
                    let kind = if *left { "LEFT JOIN" } else { "JOIN" };
                    format!(
                        "SELECT a.*, b.a0 AS b0 FROM ({}) a {kind} ({}) b ON a.k0 = b.k0",
                        a.render(refm),
                        b.render(refm)
                    )
                }
            };
            (
                "join",
                r(false),
                Some(Exact(r(true))),
                a.verdict().and(b.verdict()),
                false,
            )
        }
        Shape::Derived(d) => (
            "derived",
            d.render(false),
            Some(Exact(d.render(true))),
            d.verdict(),
            false,
        ),
        Shape::Raw(r) => {
            let v = r
                .preds
                .iter()
                .fold(V::Bad("dataset rows without aggregation"), |v, &p| {
                    v.and(PREDS[p].v)
                });
            ("raw", r.render(), None, v, false)
        }
        Shape::Static(i) => {
            let (sql, v, reference) = STATIC[*i];
            (
                "static",
                sql.to_owned(),
                reference.map(|r| Exact(r.to_owned())),
                v,
                false,
            )
        }
        Shape::StaticLimit(i) => {
            let (sql, superset) = STATIC_LIMIT[*i];
            (
                "static",
                sql.to_owned(),
                Some(Superset(superset.to_owned())),
                OK,
                false,
            )
        }
    };
    let reference = if matches!(v, V::Bad(_)) {
        None
    } else {
        reference
    };
    Rendered {
        family,
        sql,
        reference,
        v,
        must_accept,
        oracle: None,
    }
}

// ---------------------------------------------------------------------------
// Strategies.

fn indices(pool: &[Item], keep: impl Fn(&Item) -> bool) -> Vec<usize> {
    pool.iter()
        .enumerate()
        .filter(|(_, i)| keep(i))
        .map(|(n, _)| n)
        .collect()
}

fn is_ok(i: &Item) -> bool {
    i.v == V::Ok
}

/// Ok items, plus (with probability `rate`) one item that is not Ok.
fn mixed(
    pool: &'static [Item],
    size: std::ops::RangeInclusive<usize>,
    rate: f64,
) -> BoxedStrategy<Vec<usize>> {
    let ok = indices(pool, is_ok);
    let other = indices(pool, |i| !is_ok(i));
    (
        prop::sample::subsequence(ok, size),
        prop::option::weighted(rate, prop::sample::select(other)),
    )
        .prop_map(|(mut v, extra)| {
            v.extend(extra);
            v
        })
        .boxed()
}

fn sub_strategy(rate: f64) -> BoxedStrategy<Sub> {
    let ok_items: Vec<usize> = (0..SUB_ITEMS.len())
        .filter(|&i| SUB_ITEMS[i].2 == V::Ok)
        .collect();
    let other_items: Vec<usize> = (0..SUB_ITEMS.len())
        .filter(|&i| SUB_ITEMS[i].2 != V::Ok)
        .collect();
    let item = prop_oneof![
        4 => prop::sample::select(ok_items),
        1 => prop::sample::select(other_items),
    ];
    (item, mixed(PREDS, 0..=2, rate))
        .prop_map(|(item, preds)| Sub { item, preds })
        .boxed()
}

fn simple_strategy() -> BoxedStrategy<Core> {
    let keys = prop::sample::subsequence(indices(KEYS, is_ok), 0..=3);
    let aggs = prop::sample::subsequence(indices(AGGS, |i| i.plain), 1..=3);
    let preds = prop::sample::subsequence(indices(PREDS, is_ok), 0..=3);
    (keys, aggs, preds)
        .prop_map(|(keys, aggs, preds)| Core {
            keys,
            aggs,
            preds,
            having: None,
            sel_sub: None,
            having_sub: None,
            rollup: false,
            join: None,
            hide_keys: false,
        })
        .boxed()
}

fn core_strategy(rate: f64) -> BoxedStrategy<Core> {
    let ok_having = indices(HAVINGS, is_ok);
    let bad_having = indices(HAVINGS, |i| !is_ok(i));
    let having = prop_oneof![
        6 => Just(None),
        2 => prop::sample::select(ok_having).prop_map(Some),
        1 => prop::sample::select(bad_having).prop_map(Some),
    ];
    let parts = (
        mixed(KEYS, 0..=2, rate),
        mixed(AGGS, 1..=3, rate),
        mixed(PREDS, 0..=3, rate),
    );
    let extras = (
        having,
        prop::option::weighted(0.08, sub_strategy(rate)),
        prop::option::weighted(0.08, sub_strategy(rate)),
        prop::bool::weighted(rate / 3.0),
        prop::option::weighted(rate / 3.0, 0..JOINS.len()),
    );
    (parts, extras)
        .prop_map(
            |((keys, aggs, preds), (having, sel_sub, having_sub, rollup, join))| Core {
                keys,
                aggs,
                preds,
                having,
                sel_sub,
                having_sub,
                rollup,
                join,
                hide_keys: false,
            },
        )
        .boxed()
}

fn wrapper_strategy() -> BoxedStrategy<Wrapper> {
    (
        0..WRAP_KINDS,
        prop::option::weighted(0.4, 0..6usize),
        prop::sample::select(vec![0u8, 0, 1, 2]),
        sub_strategy(0.1),
    )
        .prop_map(|(kind, post, order, sub)| Wrapper {
            kind,
            post,
            order,
            sub,
        })
        .boxed()
}

fn derived_strategy() -> BoxedStrategy<Derived> {
    let rate = 0.12;
    let main = (
        mixed(KEYS, 0..=2, rate),
        mixed(AGGS, 1..=2, rate),
        mixed(PREDS, 0..=2, rate),
        mixed(PREDS, 0..=1, rate / 2.0),
    );
    let shape = (
        prop::option::weighted(0.35, 0..EXTRAS.len()),
        prop_oneof![8 => Just(0usize), 1 => 1..TAILS.len()],
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.05),
        any::<bool>(),
    );
    (main, shape)
        .prop_map(
            |((keys, aggs, inner_preds, outer_preds), (extra, tail, distinct, union, cte))| {
                Derived {
                    keys,
                    aggs,
                    inner_preds,
                    outer_preds,
                    extra,
                    tail,
                    distinct,
                    union,
                    cte,
                }
            },
        )
        .boxed()
}

fn raw_strategy() -> BoxedStrategy<RawSel> {
    (
        prop::sample::subsequence((0..RAW_ITEMS.len()).collect::<Vec<_>>(), 1..=3),
        mixed(PREDS, 0..=2, 0.3),
        prop_oneof![3 => Just(0usize), 1 => 1..TAILS.len()],
        prop::bool::weighted(0.15),
    )
        .prop_map(|(items, preds, tail, distinct)| RawSel {
            items,
            preds,
            tail,
            distinct,
        })
        .boxed()
}

fn oracle_strategy() -> BoxedStrategy<Oracle> {
    // Several keys make many small groups (the threshold drops some), and
    // small divisors hit their counts.
    let keys: Vec<usize> = [
        "site",
        "shift",
        "defect",
        "date_part('hour', ts)",
        "date_trunc('hour', ts)",
        "date_trunc('day', ts)",
    ]
    .iter()
    .map(|k| KEYS.iter().position(|i| i.sql == *k).unwrap())
    .collect();
    let n = prop_oneof![
        3 => 1i64..=25,
        1 => prop::sample::select(vec![40i64, 61, 120, 240, 443, 454, 480, 777, 836, 897]),
    ];
    (
        prop::sample::subsequence(keys, 0..=3),
        prop::sample::subsequence(indices(PREDS, is_ok), 0..=1),
        n,
        prop::bool::weighted(0.3),
        0u8..4,
    )
        .prop_map(|(keys, preds, n, entity, place)| Oracle {
            keys,
            preds,
            n,
            entity,
            place,
        })
        .boxed()
}

fn shape_strategy() -> BoxedStrategy<Shape> {
    let join =
        (core_strategy(0.06), core_strategy(0.06), any::<bool>()).prop_map(|(a, mut b, left)| {
            b.keys = a.keys.clone();
            b.rollup = a.rollup;
            Shape::Join(a, b, left)
        });
    prop_oneof![
        30 => simple_strategy().prop_map(Shape::Simple),
        20 => (
            core_strategy(0.12),
            prop::sample::select(vec![0u8, 0, 1, 2]),
            prop::option::weighted(0.2, 0..ORDER_BY.len()),
            prop::bool::weighted(0.15),
        )
            .prop_map(|(mut c, o, by, hide)| {
                c.hide_keys = hide;
                Shape::Core(c, o, by)
            }),
        8 => oracle_strategy().prop_map(Shape::Oracle),
        18 => (core_strategy(0.06), wrapper_strategy()).prop_map(|(c, w)| Shape::Wrap(c, w)),
        5 => (core_strategy(0.06), core_strategy(0.06)).prop_map(|(a, b)| Shape::Union(a, b)),
        5 => join,
        12 => derived_strategy().prop_map(Shape::Derived),
        6 => raw_strategy().prop_map(Shape::Raw),
        4 => (0..STATIC.len()).prop_map(Shape::Static),
        1 => (0..STATIC_LIMIT.len()).prop_map(Shape::StaticLimit),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------
// The fixture and the checker.

/// A sentinel so large that one filtered row in any sum or average (over at
/// most 897 rows) yields a number above `LEAK_MAGNITUDE`.
const SENTINEL: &str = "1000000000.0";
/// No legitimate output of the generated queries reaches this: sums of
/// temperature over all kept rows stay below 80 000, and the generator never
/// multiplies such sums.
const LEAK_MAGNITUDE: f64 = 100_000.0;

struct Fixture {
    machine_ids: BTreeSet<String>,
    operators: BTreeSet<String>,
    sites: BTreeSet<String>,
    shifts: BTreeSet<String>,
}

fn redteam_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/redteam")
}

/// Reads the fixture, writes the modified copy to `out`, and returns its values.
fn prepare_fixture(out: &Path) -> Fixture {
    let text = std::fs::read_to_string(redteam_dir().join("telemetry.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let columns: Vec<&str> = header.split(',').collect();
    assert_eq!(
        columns,
        [
            "machine_id",
            "site",
            "shift",
            "ts",
            "temperature",
            "vibration",
            "operator_name",
            "defect"
        ],
        "unexpected fixture header"
    );
    assert!(
        !text.contains('"'),
        "the fixture has quoted fields; this test's CSV handling is too simple"
    );
    let mut fixture = Fixture {
        machine_ids: BTreeSet::new(),
        operators: BTreeSet::new(),
        sites: BTreeSet::new(),
        shifts: BTreeSet::new(),
    };
    let mut written = String::new();
    written.push_str(header);
    written.push('\n');
    let mut rows = 0;
    let mut secret = 0;
    for line in lines.filter(|l| !l.is_empty()) {
        let mut fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 8, "bad fixture line: {line}");
        fixture.machine_ids.insert(fields[0].to_owned());
        fixture.sites.insert(fields[1].to_owned());
        fixture.shifts.insert(fields[2].to_owned());
        fixture.operators.insert(fields[6].to_owned());
        if fields[1] == "secret-plant" {
            fields[4] = SENTINEL;
            fields[5] = SENTINEL;
            secret += 1;
        }
        written.push_str(&fields.join(","));
        written.push('\n');
        rows += 1;
    }
    assert_eq!(rows, 897, "the fixture should have 897 rows");
    assert_eq!(secret, 120, "the fixture should have 120 secret-plant rows");
    std::fs::write(out, written).unwrap();
    fixture
}

/// All cells of an answer, row by row.
fn cells(batches: &[RecordBatch]) -> Vec<Cell> {
    answer_rows(batches).into_iter().flatten().collect()
}

/// The rows of an answer as the case runner compares them.
fn answer_rows(batches: &[RecordBatch]) -> Vec<Vec<Cell>> {
    casefile::rows_of(batches).unwrap().1
}

/// Whether `needle` occurs in `hay` as a whole token (not inside a longer
/// word: the shift `day` is not quoted by the word `days`).
fn contains_token(hay: &str, needle: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    hay.match_indices(needle).any(|(at, _)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + needle.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

impl Fixture {
    /// A data value quoted by a refusal (or error) message.
    fn message_leak(&self, message: &str, sql: &str) -> Option<String> {
        if let Some(v) = self
            .machine_ids
            .iter()
            .chain(&self.operators)
            .find(|v| contains_token(message, v))
        {
            return Some(format!("the message quotes the entity/denied value `{v}`"));
        }
        self.sites
            .iter()
            .chain(&self.shifts)
            .find(|v| contains_token(message, v) && !sql.contains(v.as_str()))
            .map(|v| format!("the message quotes `{v}`, which the SQL does not contain"))
    }

    /// A cell of an answer that should never be released.
    fn output_leak(&self, batches: &[RecordBatch]) -> Option<String> {
        for cell in cells(batches) {
            match cell {
                Cell::Null => {}
                Cell::Number(x) => {
                    if x.abs() >= LEAK_MAGNITUDE {
                        return Some(format!(
                            "the numeric cell {x} is sentinel-sized: a filtered row contributed"
                        ));
                    }
                }
                Cell::Text(t) => {
                    if let Some(v) = self
                        .machine_ids
                        .iter()
                        .chain(&self.operators)
                        .find(|v| t.contains(v.as_str()))
                    {
                        return Some(format!(
                            "the cell `{t}` contains the entity/denied value `{v}`"
                        ));
                    }
                    if t.contains("secret-plant") {
                        return Some(format!("the cell `{t}` contains the filtered site"));
                    }
                    if t.trim()
                        .parse::<f64>()
                        .is_ok_and(|x| x.abs() >= LEAK_MAGNITUDE)
                    {
                        return Some(format!(
                            "the text cell `{t}` is a sentinel-sized number: a filtered row contributed"
                        ));
                    }
                }
            }
        }
        None
    }
}

// ---------------------------------------------------------------------------
// Running and judging one query.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Panic,
    Hang,
    RefusalLeak,
    OutputLeak,
    AcceptedForbidden,
    ResultMismatch,
    OverRefusal,
    GeneratorOrReference,
    UnexpectedError,
    ErrorOracle,
}

#[derive(Debug, Clone)]
struct Failure {
    kind: Kind,
    detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Refused(String),
    Unplannable,
    Execution,
    Other,
}

struct Eval {
    outcome: Outcome,
    failure: Option<Failure>,
    compared: bool,
    note: Option<String>,
}

enum Governed {
    Answer(Vec<RecordBatch>),
    Refused(Refusal),
    Execution(String),
    Other(String),
    Panic(String),
    Hang,
}

const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Time spent in governed and in raw queries (summed over concurrent tasks).
static GOVERNED_NANOS: AtomicU64 = AtomicU64::new(0);
static RAW_NANOS: AtomicU64 = AtomicU64::new(0);

struct Timer(&'static AtomicU64, Instant);

impl Timer {
    fn new(total: &'static AtomicU64) -> Self {
        Self(total, Instant::now())
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        let nanos = u64::try_from(self.1.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// Everything one evaluation needs; shared by concurrent evaluations.
struct Checker {
    engine: GovernedEngine,
    raw: SessionContext,
    fixture: Fixture,
    now: DateTime<Utc>,
}

impl Checker {
    async fn governed(self: &Arc<Self>, sql: &str) -> Governed {
        let _timer = Timer::new(&GOVERNED_NANOS);
        let this = Arc::clone(self);
        let owned = sql.to_owned();
        // Spawned, so that a busy loop in the (synchronous) enforcer cannot
        // stop the timeout from firing, and a panic is caught as a `JoinError`.
        let handle = tokio::spawn(async move { this.engine.query(&owned, this.now).await });
        match tokio::time::timeout(QUERY_TIMEOUT, handle).await {
            Err(_) => Governed::Hang,
            Ok(Err(join)) if join.is_panic() => {
                let payload = join.into_panic();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(non-string panic payload)".to_owned());
                Governed::Panic(message)
            }
            Ok(Err(join)) => Governed::Other(join.to_string()),
            Ok(Ok(Ok(answer))) => Governed::Answer(answer.batches),
            Ok(Ok(Err(Error::Refused(refusal)))) => Governed::Refused(refusal),
            Ok(Ok(Err(Error::Execution { id }))) => Governed::Execution(id),
            Ok(Ok(Err(other))) => Governed::Other(other.to_string()),
        }
    }

    /// The single integer a raw query returns.
    async fn count(&self, sql: &str) -> Result<i64, String> {
        let batches = self.raw(sql).await?;
        match cells(&batches).first() {
            #[allow(clippy::cast_possible_truncation)]
            Some(Cell::Number(x)) => Ok(*x as i64),
            other => Err(format!("expected one number, got {other:?}")),
        }
    }

    async fn raw(&self, sql: &str) -> Result<Vec<RecordBatch>, String> {
        let _timer = Timer::new(&RAW_NANOS);
        let frame = self.raw.sql(sql).await.map_err(|e| e.strip_backtrace())?;
        frame.collect().await.map_err(|e| e.strip_backtrace())
    }

    async fn evaluate(self: Arc<Self>, q: Rendered) -> Eval {
        let fail = |outcome: Outcome, kind: Kind, detail: String| Eval {
            outcome,
            failure: Some(Failure { kind, detail }),
            compared: false,
            note: None,
        };
        match self.governed(&q.sql).await {
            Governed::Hang => fail(
                Outcome::Other,
                Kind::Hang,
                format!("no answer within {QUERY_TIMEOUT:?}"),
            ),
            Governed::Panic(message) => {
                fail(Outcome::Other, Kind::Panic, format!("panicked: {message}"))
            }
            Governed::Other(message) => fail(
                Outcome::Other,
                Kind::UnexpectedError,
                format!("unexpected error: {message}"),
            ),
            Governed::Execution(id) => {
                let message = format!("the query failed while executing (error id `{id}`)");
                if let Some(leak) = self.fixture.message_leak(&message, &q.sql) {
                    return fail(Outcome::Execution, Kind::RefusalLeak, leak);
                }
                if let Some(oracle) = &q.oracle {
                    match self.count(oracle).await {
                        Ok(0) => {
                            return fail(
                                Outcome::Execution,
                                Kind::ErrorOracle,
                                format!(
                                    "the query failed while executing although no released group makes its divisor zero: \
                                     a group the threshold drops (or a filtered row) was evaluated, and the failure reveals its count\n    \
                                     oracle (0 released groups hit the zero): {oracle}"
                                ),
                            );
                        }
                        Ok(_) => {}
                        Err(e) => {
                            return fail(
                                Outcome::Execution,
                                Kind::GeneratorOrReference,
                                format!("the oracle query fails: {e}"),
                            );
                        }
                    }
                }
                Eval {
                    outcome: Outcome::Execution,
                    failure: None,
                    compared: false,
                    note: Some(format!("execution error `{id}`")),
                }
            }
            Governed::Refused(refusal) => {
                let text = refusal.to_string();
                let unplannable = text.contains("cannot be planned");
                let outcome = if unplannable {
                    Outcome::Unplannable
                } else {
                    Outcome::Refused(refusal.rule.id().to_owned())
                };
                if let Some(leak) = self.fixture.message_leak(&text, &q.sql) {
                    return fail(outcome, Kind::RefusalLeak, format!("{leak}: {text}"));
                }
                if q.must_accept {
                    let kind = if unplannable {
                        Kind::GeneratorOrReference
                    } else {
                        Kind::OverRefusal
                    };
                    return fail(
                        outcome,
                        kind,
                        format!("a query of the simple family was refused: {text}"),
                    );
                }
                Eval {
                    outcome,
                    failure: None,
                    compared: false,
                    note: Some(text),
                }
            }
            Governed::Answer(batches) => {
                if let Some(leak) = self.fixture.output_leak(&batches) {
                    return fail(Outcome::Accepted, Kind::OutputLeak, leak);
                }
                if let V::Bad(why) = q.v {
                    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                    return fail(
                        Outcome::Accepted,
                        Kind::AcceptedForbidden,
                        format!(
                            "answered ({rows} rows) although it uses a forbidden construct: {why}"
                        ),
                    );
                }
                let Some(reference) = &q.reference else {
                    return Eval {
                        outcome: Outcome::Accepted,
                        failure: None,
                        compared: false,
                        note: None,
                    };
                };
                let (reference, superset) = match reference {
                    Reference::Exact(r) => (r, false),
                    Reference::Superset(r) => (r, true),
                };
                if let Some(oracle) = &q.oracle {
                    // A released group makes the divisor zero but the engine
                    // did not evaluate it: nothing to compare.
                    if self.count(oracle).await != Ok(0) {
                        return Eval {
                            outcome: Outcome::Accepted,
                            failure: None,
                            compared: false,
                            note: None,
                        };
                    }
                }
                match self.raw(reference).await {
                    Err(e) => {
                        let detail = format!(
                            "the reference query fails on the raw table: {e}\n    reference: {reference}"
                        );
                        if q.must_accept {
                            fail(Outcome::Accepted, Kind::GeneratorOrReference, detail)
                        } else {
                            Eval {
                                outcome: Outcome::Accepted,
                                failure: None,
                                compared: false,
                                note: Some(detail),
                            }
                        }
                    }
                    Ok(expected) => match if superset {
                        sub_multiset(&batches, &expected)
                    } else {
                        compare_results(&batches, &expected, false)
                    } {
                        Ok(()) => Eval {
                            outcome: Outcome::Accepted,
                            failure: None,
                            compared: true,
                            note: None,
                        },
                        Err(e) => fail(
                            Outcome::Accepted,
                            Kind::ResultMismatch,
                            format!(
                                "{e}\n    got:      {}\n    expected: {}\n    reference: {reference}",
                                show(&batches),
                                show(&expected)
                            ),
                        ),
                    },
                }
            }
        }
    }
}

/// Whether the rows of `got` are a sub-multiset of the rows of `all`
/// (columns by position, floats within a relative 1e-9).
fn sub_multiset(got: &[RecordBatch], all: &[RecordBatch]) -> Result<(), String> {
    let got = answer_rows(got);
    let all = answer_rows(all);
    if got.is_empty() {
        return Ok(());
    }
    let mut used = vec![false; all.len()];
    for (i, row) in got.iter().enumerate() {
        let found = all.iter().enumerate().position(|(j, r)| {
            !used[j] && r.len() == row.len() && r.iter().zip(row).all(|(a, b)| a.matches(b))
        });
        match found {
            Some(j) => used[j] = true,
            None => {
                return Err(format!(
                    "row {} of the answer is not a row of the reference (a LIMIT may only drop rows)",
                    i + 1
                ));
            }
        }
    }
    Ok(())
}

fn show(batches: &[RecordBatch]) -> String {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(batches)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let compact: String = text
        .lines()
        .filter(|l| !l.starts_with('+'))
        .take(12)
        .collect::<Vec<_>>()
        .join(" / ");
    format!("{rows} rows: {compact}")
}

// ---------------------------------------------------------------------------
// The test.

#[derive(Default)]
struct Stats {
    total: usize,
    accepted: usize,
    refused: usize,
    unplannable: usize,
    execution: usize,
    other: usize,
    compared: usize,
    by_family: BTreeMap<&'static str, [usize; 5]>,
    by_rule: BTreeMap<String, usize>,
    ok_refused: Vec<String>,
    ok_unplannable: Vec<String>,
    unknown_accepted: usize,
    unknown_refused: usize,
    notes: Vec<String>,
}

impl Stats {
    fn record(&mut self, q: &Rendered, e: &Eval) {
        self.total += 1;
        let slot = match &e.outcome {
            Outcome::Accepted => {
                self.accepted += 1;
                0
            }
            Outcome::Refused(rule) => {
                self.refused += 1;
                *self.by_rule.entry(rule.clone()).or_default() += 1;
                1
            }
            Outcome::Unplannable => {
                self.unplannable += 1;
                2
            }
            Outcome::Execution => {
                self.execution += 1;
                3
            }
            Outcome::Other => {
                self.other += 1;
                4
            }
        };
        self.by_family.entry(q.family).or_default()[slot] += 1;
        if e.compared {
            self.compared += 1;
        }
        match (&q.v, &e.outcome) {
            (V::Ok, Outcome::Refused(_)) if !q.must_accept && self.ok_refused.len() < 12 => {
                self.ok_refused.push(format!(
                    "{}\n      -> {}",
                    q.sql,
                    e.note.clone().unwrap_or_default()
                ));
            }
            (V::Ok, Outcome::Unplannable) if self.ok_unplannable.len() < 8 => {
                self.ok_unplannable.push(format!(
                    "{}\n      -> {}",
                    q.sql,
                    e.note.clone().unwrap_or_default()
                ));
            }
            (V::Unknown, Outcome::Accepted) => self.unknown_accepted += 1,
            (V::Unknown, Outcome::Refused(_)) => self.unknown_refused += 1,
            _ => {}
        }
        if let (Outcome::Execution | Outcome::Accepted, Some(note)) = (&e.outcome, &e.note)
            && self.notes.len() < 10
        {
            self.notes.push(format!("{}\n      -> {note}", q.sql));
        }
    }

    fn report(&self) -> String {
        let mut s = String::new();
        let pct = |n: usize| {
            if self.total == 0 {
                0.0
            } else {
                100.0 * n as f64 / self.total as f64
            }
        };
        let _ = writeln!(s, "queries: {}", self.total);
        let _ = writeln!(
            s,
            "  accepted:        {} ({:.1}%), {} compared with a reference",
            self.accepted,
            pct(self.accepted),
            self.compared
        );
        let _ = writeln!(
            s,
            "  refused:         {} ({:.1}%)",
            self.refused,
            pct(self.refused)
        );
        let _ = writeln!(
            s,
            "  unplannable:     {} ({:.1}%) (refused by DataFusion's planner)",
            self.unplannable,
            pct(self.unplannable)
        );
        let _ = writeln!(s, "  execution error: {}", self.execution);
        let _ = writeln!(s, "  other:           {}", self.other);
        let _ = writeln!(
            s,
            "  spec-unclear queries: {} accepted, {} refused",
            self.unknown_accepted, self.unknown_refused
        );
        let _ = writeln!(
            s,
            "  by family [accepted, refused, unplannable, execution, other]:"
        );
        for (family, counts) in &self.by_family {
            let _ = writeln!(s, "    {family:<8} {counts:?}");
        }
        let _ = writeln!(s, "  refusals by rule: {:?}", self.by_rule);
        if !self.ok_refused.is_empty() {
            let _ = writeln!(
                s,
                "  allowed-by-spec queries outside the simple family that were refused (informational):"
            );
            for q in &self.ok_refused {
                let _ = writeln!(s, "    {q}");
            }
        }
        if !self.ok_unplannable.is_empty() {
            let _ = writeln!(
                s,
                "  allowed-by-spec queries the planner rejected (informational):"
            );
            for q in &self.ok_unplannable {
                let _ = writeln!(s, "    {q}");
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "  notes (execution errors, reference failures):");
            for q in &self.notes {
                let _ = writeln!(s, "    {q}");
            }
        }
        s
    }
}

struct Counterexample {
    kind: Kind,
    family: &'static str,
    sql: String,
    detail: String,
    original: String,
}

const MAX_COUNTEREXAMPLES: usize = 10;
const MAX_PER_KIND: usize = 3;
/// Evaluations spent shrinking one counterexample, and all of them.
const MAX_SHRINK_STEPS: usize = 150;
const MAX_SHRINK_TOTAL: usize = 600;
/// Queries evaluated concurrently.
const BATCH: u64 = 8;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[test]
fn enforcer_holds_over_generated_queries() {
    let started = Instant::now();
    if std::env::var_os("ENFORCER_PROPS_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .try_init();
    }
    let cases = env_number("ENFORCER_PROPS_CASES", 1500);
    let seed = env_number("ENFORCER_PROPS_SEED", 0x5eed_da7a);

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("telemetry.csv");
    let fixture = prepare_fixture(&csv);
    let policy_text = std::fs::read_to_string(redteam_dir().join("telemetry.policy.json")).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (engine, raw) = rt.block_on(async {
        let policy = UsagePolicy::from_json_str(&policy_text).unwrap();
        let limits = ExecutionLimits {
            timeout: QUERY_TIMEOUT,
            ..ExecutionLimits::default()
        };
        let mut engine = GovernedEngine::new(limits).unwrap();
        let roots = [connector::rooted::own_folder(&csv)];
        engine.add_dataset(policy, &csv, &roots).await.unwrap();
        let raw = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
        // The raw twin: the same modified file, read once into memory (a
        // faster twin than a CSV scan per reference query).
        let file = SessionContext::new();
        file.register_csv("telemetry", csv.to_str().unwrap(), CsvReadOptions::new())
            .await
            .unwrap();
        let frame = file.table("telemetry").await.unwrap();
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let table = MemTable::try_new(schema, vec![frame.collect().await.unwrap()]).unwrap();
        raw.register_table("telemetry", Arc::new(table)).unwrap();
        (engine, raw)
    });
    // A fixed instant inside the policy's validity, so that runs are reproducible.
    let now = Utc.with_ymd_and_hms(2027, 6, 1, 12, 0, 0).unwrap();
    let checker = Arc::new(Checker {
        engine,
        raw,
        fixture,
        now,
    });

    // The raw twin must see the sentinel.
    let check = rt
        .block_on(
            checker.raw("SELECT max(temperature) AS m FROM telemetry WHERE site = 'secret-plant'"),
        )
        .unwrap();
    assert!(
        matches!(cells(&check).first(), Some(Cell::Number(x)) if *x >= LEAK_MAGNITUDE),
        "the sentinel is not in the modified fixture"
    );
    // The checker itself must see leaks in raw answers (else it checks nothing).
    for leaky in [
        "SELECT machine_id FROM telemetry LIMIT 1",
        "SELECT operator_name FROM telemetry LIMIT 1",
        "SELECT site FROM telemetry WHERE site = 'secret-plant' LIMIT 1",
        "SELECT avg(temperature) AS t FROM telemetry",
        "SELECT CAST(sum(vibration) AS VARCHAR) AS v FROM telemetry WHERE shift = 'day'",
    ] {
        let answer = rt.block_on(checker.raw(leaky)).unwrap();
        assert!(
            checker.fixture.output_leak(&answer).is_some(),
            "the checker misses the leak of {leaky}"
        );
    }
    assert!(
        checker
            .fixture
            .message_leak("no such value N-01 here", "")
            .is_some()
    );
    assert!(
        checker
            .fixture
            .message_leak("`pilot-line` is small", "SELECT 1")
            .is_some()
    );
    assert!(
        checker
            .fixture
            .message_leak("`pilot-line` is small", "SELECT 'pilot-line'")
            .is_none()
    );
    assert!(
        checker
            .fixture
            .message_leak("an interval of 3 days", "SELECT 1")
            .is_none()
    );

    // `ENFORCER_PROPS_RAW`: run one query on the raw twin and stop.
    if let Ok(sql) = std::env::var("ENFORCER_PROPS_RAW") {
        match rt.block_on(checker.raw(&sql)) {
            Ok(b) => println!(
                "{}",
                datafusion::arrow::util::pretty::pretty_format_batches(&b).unwrap()
            ),
            Err(e) => println!("raw query failed: {e}"),
        }
        return;
    }
    // `ENFORCER_PROPS_SQL`: run one query (e.g. a counterexample) and stop.
    if let Ok(sql) = std::env::var("ENFORCER_PROPS_SQL") {
        let outcome = match rt.block_on(checker.governed(&sql)) {
            Governed::Answer(b) => format!(
                "answered: {}\n    leak check: {:?}",
                show(&b),
                checker.fixture.output_leak(&b)
            ),
            Governed::Refused(r) => format!("refused: {r}"),
            Governed::Execution(id) => {
                format!("execution error {id} (set ENFORCER_PROPS_LOG=1 to see it)")
            }
            Governed::Other(e) => format!("other error: {e}"),
            Governed::Panic(m) => format!("panic: {m}"),
            Governed::Hang => "hang".to_owned(),
        };
        println!("{sql}\n    -> {outcome}");
        return;
    }

    // Controls for the error-oracle family: a division by zero on a
    // released group must fail (else that family checks nothing), on a
    // suppressed one it must not.
    let controls = [
        (
            "released",
            "SELECT site, count(*) AS n FROM telemetry GROUP BY site HAVING 1 / (count(*) - 480) >= 0",
        ),
        (
            "released",
            "SELECT * FROM (SELECT site, count(*) AS n FROM telemetry GROUP BY site) s WHERE 1 / (n - 480) >= 0",
        ),
        (
            "released, raw twin",
            "RAW SELECT site, count(*) AS n FROM telemetry GROUP BY site HAVING 1 / (count(*) - 480) >= 0",
        ),
        (
            "suppressed",
            "SELECT site, count(*) AS n FROM telemetry GROUP BY site HAVING 1 / (count(*) - 12) >= 0",
        ),
        (
            "suppressed",
            "SELECT * FROM (SELECT site, count(*) AS n FROM telemetry GROUP BY site) s WHERE 1 / (n - 12) >= 0",
        ),
        (
            "filtered",
            "SELECT site, count(*) AS n FROM telemetry GROUP BY site HAVING 1 / (count(*) - 120) >= 0",
        ),
    ];
    for (what, sql) in controls {
        let outcome = if let Some(raw_sql) = sql.strip_prefix("RAW ") {
            match rt.block_on(checker.raw(raw_sql)) {
                Ok(b) => format!("answered: {}", show(&b)),
                Err(e) => format!("failed: {e}"),
            }
        } else {
            match rt.block_on(checker.governed(sql)) {
                Governed::Answer(b) => format!("answered: {}", show(&b)),
                Governed::Refused(r) => format!("refused: {r}"),
                Governed::Execution(id) => format!("execution error {id}"),
                Governed::Other(e) => format!("other error: {e}"),
                Governed::Panic(m) => format!("panic: {m}"),
                Governed::Hang => "hang".to_owned(),
            }
        };
        println!("oracle control ({what}): {sql}\n    -> {outcome}");
    }

    let mut seed_bytes = [0u8; 32];
    for (i, b) in seed.to_le_bytes().iter().cycle().take(32).enumerate() {
        seed_bytes[i] = b.wrapping_add(u8::try_from(i).unwrap());
    }
    let config = Config {
        cases: u32::try_from(cases).unwrap_or(u32::MAX),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = shape_strategy();

    let mut stats = Stats::default();
    let mut failures: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut examples: Vec<Counterexample> = Vec::new();
    let mut hung = false;
    let mut shrink_spent = 0;
    let mut done = 0;

    'batches: while done < cases {
        // Generate a batch, evaluate it concurrently, judge it in order.
        let size = BATCH.min(cases - done);
        done += size;
        let mut trees = Vec::new();
        for _ in 0..size {
            trees.push(strategy.new_tree(&mut runner).unwrap());
        }
        let queries: Vec<Rendered> = trees.iter().map(|t| render(&t.current())).collect();
        let evals: Vec<Eval> = rt.block_on(async {
            let handles: Vec<_> = queries
                .iter()
                .map(|q| tokio::spawn(Arc::clone(&checker).evaluate(q.clone())))
                .collect();
            let mut evals = Vec::new();
            for h in handles {
                evals.push(h.await.unwrap());
            }
            evals
        });
        for ((mut tree, q), e) in trees.into_iter().zip(queries).zip(evals) {
            stats.record(&q, &e);
            let Some(failure) = e.failure else { continue };
            *failures.entry(failure.kind).or_default() += 1;
            if failure.kind == Kind::Hang {
                hung = true;
                examples.push(Counterexample {
                    kind: failure.kind,
                    family: q.family,
                    sql: q.sql.clone(),
                    detail: failure.detail,
                    original: q.sql,
                });
                break 'batches;
            }
            let same_kind = examples.iter().filter(|x| x.kind == failure.kind).count();
            if examples.len() >= MAX_COUNTEREXAMPLES || same_kind >= MAX_PER_KIND {
                continue;
            }
            // Shrink to a minimal query failing the same way.
            let mut best = (q.clone(), failure.clone());
            let mut steps = 0;
            let budget = MAX_SHRINK_STEPS.min(MAX_SHRINK_TOTAL.saturating_sub(shrink_spent));
            if tree.simplify() {
                loop {
                    steps += 1;
                    if steps > budget {
                        break;
                    }
                    let candidate = render(&tree.current());
                    match rt
                        .block_on(Arc::clone(&checker).evaluate(candidate.clone()))
                        .failure
                    {
                        Some(f) if f.kind == failure.kind => {
                            best = (candidate, f);
                            if !tree.simplify() {
                                break;
                            }
                        }
                        _ => {
                            if !tree.complicate() {
                                break;
                            }
                        }
                    }
                }
            }
            shrink_spent += steps;
            let (minimal, why) = best;
            if !examples
                .iter()
                .any(|x| x.kind == why.kind && x.sql == minimal.sql)
            {
                examples.push(Counterexample {
                    kind: why.kind,
                    family: minimal.family,
                    sql: minimal.sql,
                    detail: why.detail,
                    original: q.sql,
                });
            }
        }
    }

    let elapsed = started.elapsed();
    let mut report = stats.report();
    let _ = writeln!(
        report,
        "time: {elapsed:.1?} (seed {seed:#x}, {cases} cases; task time in governed queries {:.1?}, in raw queries {:.1?})",
        Duration::from_nanos(GOVERNED_NANOS.load(Ordering::Relaxed)),
        Duration::from_nanos(RAW_NANOS.load(Ordering::Relaxed)),
    );
    if !examples.is_empty() {
        let _ = writeln!(report, "\nFAILURES by kind: {failures:?}");
        for (n, x) in examples.iter().enumerate() {
            let _ = writeln!(
                report,
                "\n#{} {:?} [{}]\n  sql:    {}\n  what:   {}",
                n + 1,
                x.kind,
                x.family,
                x.sql,
                x.detail
            );
            if x.original != x.sql {
                let _ = writeln!(report, "  (shrunk from: {})", x.original);
            }
        }
    }
    println!("{report}");

    if hung {
        // A stuck task would block the runtime's shutdown.
        rt.shutdown_background();
        panic!("the enforcer hung; see the report above");
    }
    assert!(
        examples.is_empty(),
        "the enforcer failed on generated queries; see the report above"
    );
    let share = |n: usize| n as f64 / stats.total.max(1) as f64;
    assert!(
        share(stats.accepted) >= 0.15,
        "too few accepted queries ({}): the test would pass vacuously",
        stats.accepted
    );
    assert!(
        share(stats.refused) >= 0.15,
        "too few refused queries ({}): the test would pass vacuously",
        stats.refused
    );
    assert!(
        stats.compared * 5 >= stats.accepted,
        "too few answers compared with a reference ({})",
        stats.compared
    );
}
