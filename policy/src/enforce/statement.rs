//! Rule `statement`: exactly one `SELECT` (or `WITH ... SELECT`).

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use super::refusal::{Decision, Refusal, Rule};

/// Parses `sql` and returns its one query statement, or refuses.
pub fn parse_single_select(sql: &str) -> Decision<DfStatement> {
    let dialect = GenericDialect {};
    let mut statements = DFParser::parse_sql_with_dialect(sql, &dialect).map_err(|e| {
        Refusal::new(Rule::Statement, format!("the SQL cannot be parsed: {}", first_line(&e.to_string())))
    })?;
    if statements.len() != 1 {
        return Err(Refusal::new(
            Rule::Statement,
            format!("exactly one `SELECT` statement is allowed, found {}", statements.len()),
        ));
    }
    let Some(statement) = statements.pop_front() else {
        return Err(Refusal::new(Rule::Statement, "no statement found"));
    };
    match &statement {
        DfStatement::Statement(inner) if matches!(inner.as_ref(), Statement::Query(_)) => Ok(statement),
        other => Err(Refusal::new(
            Rule::Statement,
            format!("only `SELECT` queries are allowed, not `{}`", statement_kind(other)),
        )),
    }
}

fn statement_kind(statement: &DfStatement) -> String {
    match statement {
        DfStatement::Statement(inner) => {
            let text = inner.to_string();
            text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
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
