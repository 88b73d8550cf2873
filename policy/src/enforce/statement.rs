//! Rule `statement`: exactly one `SELECT` (or `WITH ... SELECT`), within
//! the size limits ([`SqlLimits`]) that keep planning bounded whatever the
//! text: bytes, expression nesting, expression nodes and query blocks,
//! checked on the parsed text before anything is planned. Also refuses
//! grouping sets in every spelling the parser accepts (`ROLLUP`, `CUBE`,
//! `GROUPING SETS`, and the modifiers `WITH ROLLUP`, `WITH CUBE`, `WITH
//! TOTALS`, which DataFusion would otherwise ignore).

use std::ops::ControlFlow;

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, GroupByExpr, Query, Select, Statement, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::refusal::{Decision, Refusal, Rule};

/// Bounds on one SQL text, checked before planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlLimits {
    /// Longest SQL text, in bytes (`max_sql_bytes`).
    pub max_bytes: usize,
    /// Deepest nesting of expressions and subqueries (`max_sql_depth`).
    pub max_depth: usize,
    /// Most expression nodes (`max_sql_nodes`).
    pub max_nodes: usize,
    /// Most query blocks: `SELECT`s, including CTEs, subqueries and the arms
    /// of set operations (`max_sql_queries`).
    pub max_queries: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_depth: 128,
            max_nodes: 10_000,
            max_queries: 64,
        }
    }
}

/// Parses `sql` and returns its one query statement, or refuses.
pub fn parse_single_select(sql: &str) -> Decision<DfStatement> {
    parse_bounded_select(sql, &SqlLimits::default())
}

/// Parses `sql` within `limits` and returns its one query statement, or
/// refuses.
pub fn parse_bounded_select(sql: &str, limits: &SqlLimits) -> Decision<DfStatement> {
    if sql.len() > limits.max_bytes {
        return Err(Refusal::new(
            Rule::Statement,
            format!(
                "the SQL text has {} bytes; at most {} are allowed (`max_sql_bytes`)",
                sql.len(),
                limits.max_bytes
            ),
        ));
    }
    let statement = parse_one(sql)?;
    if let DfStatement::Statement(inner) = &statement {
        let mut shape = Shape::new(*limits);
        if let ControlFlow::Break(refusal) = inner.visit(&mut shape) {
            return Err(refusal);
        }
    }
    Ok(statement)
}

fn parse_one(sql: &str) -> Decision<DfStatement> {
    let dialect = GenericDialect {};
    let mut statements = DFParser::parse_sql_with_dialect(sql, &dialect).map_err(|e| {
        Refusal::new(
            Rule::Statement,
            format!("the SQL cannot be parsed: {}", first_line(&e.to_string())),
        )
    })?;
    if statements.len() != 1 {
        return Err(Refusal::new(
            Rule::Statement,
            format!(
                "exactly one `SELECT` statement is allowed, found {}",
                statements.len()
            ),
        ));
    }
    let Some(statement) = statements.pop_front() else {
        return Err(Refusal::new(Rule::Statement, "no statement found"));
    };
    match &statement {
        DfStatement::Statement(inner) if matches!(inner.as_ref(), Statement::Query(_)) => {
            Ok(statement)
        }
        other => Err(Refusal::new(
            Rule::Statement,
            format!(
                "only `SELECT` queries are allowed, not `{}`",
                statement_kind(other)
            ),
        )),
    }
}

/// Walks the parsed statement: nesting, sizes and grouping sets.
struct Shape {
    limits: SqlLimits,
    depth: usize,
    nodes: usize,
    queries: usize,
}

impl Shape {
    fn new(limits: SqlLimits) -> Self {
        Self {
            limits,
            depth: 0,
            nodes: 0,
            queries: 0,
        }
    }

    fn enter(&mut self) -> ControlFlow<Refusal> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return ControlFlow::Break(Refusal::new(
                Rule::Statement,
                format!(
                    "expressions and subqueries are nested more than {} deep (`max_sql_depth`); write long chains of `AND`, `OR` or `||` as `IN (...)` lists or split the query",
                    self.limits.max_depth
                ),
            ));
        }
        ControlFlow::Continue(())
    }
}

fn grouping_sets() -> Refusal {
    Refusal::new(
        Rule::GroupKey,
        "`GROUPING SETS`, `ROLLUP`, `CUBE` and `WITH ROLLUP`/`WITH CUBE`/`WITH TOTALS` are not allowed; write one `GROUP BY` per grouping and combine them with `UNION ALL`",
    )
}

impl Visitor for Shape {
    type Break = Refusal;

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<Refusal> {
        self.queries += 1;
        if self.queries > self.limits.max_queries {
            return ControlFlow::Break(Refusal::new(
                Rule::Statement,
                format!(
                    "the query has more than {} query blocks (`SELECT`s, CTEs, subqueries; `max_sql_queries`)",
                    self.limits.max_queries
                ),
            ));
        }
        self.enter()
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<Refusal> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<Refusal> {
        let modifiers = match &select.group_by {
            GroupByExpr::All(modifiers) | GroupByExpr::Expressions(_, modifiers) => modifiers,
        };
        if !modifiers.is_empty() {
            return ControlFlow::Break(grouping_sets());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &SqlExpr) -> ControlFlow<Refusal> {
        if matches!(
            expr,
            SqlExpr::Rollup(_) | SqlExpr::Cube(_) | SqlExpr::GroupingSets(_)
        ) {
            return ControlFlow::Break(grouping_sets());
        }
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return ControlFlow::Break(Refusal::new(
                Rule::Statement,
                format!(
                    "the query has more than {} expressions (`max_sql_nodes`)",
                    self.limits.max_nodes
                ),
            ));
        }
        self.enter()
    }

    fn post_visit_expr(&mut self, _expr: &SqlExpr) -> ControlFlow<Refusal> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }
}

fn statement_kind(statement: &DfStatement) -> String {
    match statement {
        DfStatement::Statement(inner) => {
            let text = inner.to_string();
            text.split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        }
        DfStatement::CreateExternalTable(_) => "CREATE EXTERNAL TABLE".to_owned(),
        DfStatement::CopyTo(_) => "COPY".to_owned(),
        DfStatement::Explain(_) => "EXPLAIN".to_owned(),
        DfStatement::Reset(_) => "RESET".to_owned(),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{accepted, refusal};
    use super::*;

    #[test]
    fn refuses_everything_but_one_select() {
        for sql in [
            "EXPLAIN SELECT count(*) FROM telemetry",
            "EXPLAIN ANALYZE SELECT count(*) FROM telemetry",
            "COPY (SELECT * FROM telemetry) TO 'leak.csv'",
            "CREATE EXTERNAL TABLE t2 STORED AS CSV LOCATION 'x.csv'",
            "CREATE TABLE t2 AS SELECT 1",
            "INSERT INTO telemetry VALUES (1)",
            "DELETE FROM telemetry",
            "SET datafusion.execution.batch_size = 1",
            "SHOW ALL",
            "DESCRIBE telemetry",
            "SELECT count(*) FROM telemetry; SELECT count(*) FROM telemetry",
            "",
            "SELEC 1",
        ] {
            assert_eq!(refusal(sql).rule, Rule::Statement, "{sql}");
        }
    }

    #[test]
    fn accepts_select_and_with_select() {
        accepted("SELECT count(*) FROM telemetry");
        accepted(
            "WITH x AS (SELECT site FROM telemetry) SELECT site, count(*) FROM x GROUP BY site",
        );
        assert!(parse_single_select("SELECT 1").is_ok());
    }
}
