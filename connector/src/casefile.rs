//! Red-team case files (format: `shared/redteam/README.md`) and their runner.
//!
//! Each case's SQL goes through the governed engine; `rows` and `safe`
//! cases are compared with a reference query run on the raw tables with no
//! policy. Refusals must not quote any value of the tables' text columns
//! that the SQL itself does not contain.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;
use serde::Deserialize;

use crate::engine::GovernedEngine;
use crate::{Error, Result};

/// One case of a case file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique id.
    pub id: String,
    /// What the consumer sends.
    pub sql: String,
    /// `reject`, `rows` or `safe`.
    pub expect: Expect,
    /// The rule id a rejection is expected to carry (informational).
    #[serde(default)]
    pub rule: Option<String>,
    /// For `rows`/`safe`: SQL over the raw tables.
    #[serde(default)]
    pub reference: Option<String>,
    /// Compare row order too.
    #[serde(default)]
    pub ordered: bool,
}

/// The expected outcome of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Refused before execution, without leaking values.
    Reject,
    /// Answered, equal to the reference.
    Rows,
    /// Either of the two.
    Safe,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    case: Vec<Case>,
}

/// Reads the cases of a TOML case file.
pub fn read_cases(path: &Path) -> Result<Vec<Case>> {
    let fail = |reason: String| Error::CaseFile {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let file: CaseFile = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
    let mut seen = BTreeSet::new();
    for case in &file.case {
        if !seen.insert(case.id.clone()) {
            return Err(fail(format!("the case id `{}` appears twice", case.id)));
        }
        if case.expect != Expect::Reject && case.reference.is_none() {
            return Err(fail(format!(
                "the case `{}` expects `{:?}` but has no `reference`",
                case.id, case.expect
            )));
        }
    }
    Ok(file.case)
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The case id.
    pub id: String,
    /// `None` when the case passed, else why it failed.
    pub failure: Option<String>,
    /// The refusal's rule id, when the query was refused.
    pub rule: Option<String>,
}

/// Runs cases against a governed engine and a raw twin of its tables.
pub struct CaseRunner {
    engine: GovernedEngine,
    raw: SessionContext,
    text_values: BTreeSet<String>,
}

impl CaseRunner {
    /// A runner over `engine`; `tables` are the same providers, unguarded.
    pub async fn new(
        engine: GovernedEngine,
        tables: Vec<(String, Arc<dyn TableProvider>)>,
    ) -> Result<Self> {
        // The tables read their files through stores in the engine's
        // runtime (`crate::rooted`): the raw session shares it.
        let raw = SessionContext::new_with_state(
            datafusion::execution::session_state::SessionStateBuilder::new()
                .with_default_features()
                .with_runtime_env(Arc::clone(engine.state().runtime_env()))
                .build(),
        );
        let mut text_values = BTreeSet::new();
        for (name, table) in tables {
            raw.register_table(TableReference::bare(name.as_str()), table)
                .map_err(|e| Error::Table {
                    name: name.clone(),
                    path: String::new(),
                    reason: e.strip_backtrace(),
                })?;
            collect_text_values(&raw, &name, &mut text_values).await?;
        }
        Ok(Self {
            engine,
            raw,
            text_values,
        })
    }

    /// Runs one case.
    pub async fn run(&self, case: &Case) -> Outcome {
        let governed = self.engine.query(&case.sql, Utc::now()).await;
        let (failure, rule) = match governed {
            Err(Error::Refused(refusal)) => {
                let rule = Some(refusal.rule.id().to_owned());
                let failure = match (
                    case.expect,
                    self.leaked_value(&refusal.to_string(), &case.sql),
                ) {
                    (_, Some(_)) => Some(format!("the refusal quotes a data value: {refusal}")),
                    (Expect::Rows, None) => Some(format!("expected rows, got {refusal}")),
                    _ => None,
                };
                (failure, rule)
            }
            Err(other) => (
                Some(format!(
                    "expected {:?}, got an execution error: {other}",
                    case.expect
                )),
                None,
            ),
            Ok(answer) => {
                let failure = match case.expect {
                    Expect::Reject => Some(format!("expected a refusal, got {} rows", answer.rows)),
                    Expect::Rows | Expect::Safe => self
                        .compare_with_reference(case, &answer.batches)
                        .await
                        .err(),
                };
                (failure, None)
            }
        };
        Outcome {
            id: case.id.clone(),
            failure,
            rule,
        }
    }

    fn leaked_value(&self, message: &str, sql: &str) -> Option<String> {
        self.text_values
            .iter()
            .find(|v| message.contains(v.as_str()) && !sql.contains(v.as_str()))
            .cloned()
    }

    async fn compare_with_reference(
        &self,
        case: &Case,
        got: &[RecordBatch],
    ) -> std::result::Result<(), String> {
        let reference = case.reference.as_deref().unwrap_or_default();
        let expected = self
            .raw
            .sql(reference)
            .await
            .map_err(|e| format!("the reference query fails: {}", e.strip_backtrace()))?
            .collect()
            .await
            .map_err(|e| format!("the reference query fails: {}", e.strip_backtrace()))?;
        compare_results(got, &expected, case.ordered)
    }
}

async fn collect_text_values(
    ctx: &SessionContext,
    table: &str,
    out: &mut BTreeSet<String>,
) -> Result<()> {
    let fail = |e: datafusion::error::DataFusionError| Error::Table {
        name: table.to_owned(),
        path: String::new(),
        reason: e.strip_backtrace(),
    };
    let frame = ctx.table(TableReference::bare(table)).await.map_err(fail)?;
    for batch in frame.collect().await.map_err(fail)? {
        for column in batch.columns() {
            if !matches!(
                column.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) {
                continue;
            }
            let strings = cast(column, &DataType::Utf8).map_err(|e| fail(e.into()))?;
            let strings = strings.as_string::<i32>();
            for value in strings.iter().flatten() {
                if value.len() >= 3 {
                    out.insert(value.to_owned());
                }
            }
        }
    }
    Ok(())
}

/// One cell of an answer, normalised for comparison: numbers as `f64`,
/// everything else as its display text.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A null.
    Null,
    /// A number of any numeric type.
    Number(f64),
    /// Any other value, as Arrow displays it.
    Text(String),
}

impl Cell {
    fn sort_key(&self) -> String {
        match self {
            Self::Null => "0".to_owned(),
            Self::Number(n) => format!("1{n:+.6e}"),
            Self::Text(t) => format!("2{t}"),
        }
    }

    /// Whether two cells are the same value: numbers within a relative
    /// 1e-9 (two NaNs match), others exactly.
    pub fn matches(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Number(a), Self::Number(b)) => {
                a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
            }
            (a, b) => a == b,
        }
    }
}

/// The rows of an answer as cells, with the number of columns of its last
/// batch; fails only on a column Arrow cannot cast or display.
pub fn rows_of(batches: &[RecordBatch]) -> std::result::Result<(usize, Vec<Vec<Cell>>), String> {
    let mut width = 0;
    let mut rows = Vec::new();
    let options = FormatOptions::default();
    for batch in batches {
        width = batch.num_columns();
        let mut columns: Vec<Vec<Cell>> = Vec::with_capacity(width);
        for column in batch.columns() {
            columns.push(cells(column.as_ref(), &options)?);
        }
        for r in 0..batch.num_rows() {
            rows.push(
                columns
                    .iter()
                    .map(|c| c.get(r).cloned().unwrap_or(Cell::Null))
                    .collect(),
            );
        }
    }
    Ok((width, rows))
}

fn cells(
    column: &dyn Array,
    options: &FormatOptions<'_>,
) -> std::result::Result<Vec<Cell>, String> {
    if column.data_type().is_numeric() {
        let floats =
            cast(&column.slice(0, column.len()), &DataType::Float64).map_err(|e| e.to_string())?;
        let floats = floats.as_primitive::<Float64Type>();
        return Ok((0..floats.len())
            .map(|i| {
                if floats.is_null(i) {
                    Cell::Null
                } else {
                    Cell::Number(floats.value(i))
                }
            })
            .collect());
    }
    let formatter = ArrayFormatter::try_new(column, options).map_err(|e| e.to_string())?;
    Ok((0..column.len())
        .map(|i| {
            if column.is_null(i) {
                Cell::Null
            } else {
                Cell::Text(formatter.value(i).to_string())
            }
        })
        .collect())
}

/// Compares two results as the case format defines: same multiset of rows
/// (in order if `ordered`), columns by position, floats within a relative
/// 1e-9; two empty results are equal whatever their columns.
pub fn compare_results(
    got: &[RecordBatch],
    expected: &[RecordBatch],
    ordered: bool,
) -> std::result::Result<(), String> {
    let (got_width, mut got_rows) = rows_of(got)?;
    let (expected_width, mut expected_rows) = rows_of(expected)?;
    if got_rows.is_empty() && expected_rows.is_empty() {
        return Ok(());
    }
    if got_rows.len() != expected_rows.len() {
        return Err(format!(
            "got {} rows, the reference has {}",
            got_rows.len(),
            expected_rows.len()
        ));
    }
    if got_width != expected_width {
        return Err(format!(
            "got {got_width} columns, the reference has {expected_width}"
        ));
    }
    if !ordered {
        let key = |row: &Vec<Cell>| {
            row.iter()
                .map(Cell::sort_key)
                .collect::<Vec<_>>()
                .join("\u{1f}")
        };
        got_rows.sort_by_key(key);
        expected_rows.sort_by_key(key);
    }
    for (i, (g, e)) in got_rows.iter().zip(&expected_rows).enumerate() {
        if !(g.len() == e.len() && g.iter().zip(e).all(|(a, b)| a.matches(b))) {
            return Err(format!("row {} differs from the reference", i + 1));
        }
    }
    Ok(())
}
