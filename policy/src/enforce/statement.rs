//! Rule `statement`: exactly one `SELECT` (or `WITH ... SELECT`).

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use super::refusal::{Decision, Refusal, Rule};

/// Parses `sql` and returns its one query statement, or refuses.
pub fn parse_single_select(sql: &str) -> Decision<DfStatement> {
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
