//! Column lineage: where each output column of a plan node comes from, and
//! whether the node's rows are still unaggregated rows of a governed dataset.

use std::sync::Arc;

use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::expr::ScalarFunction;

use crate::model::ColumnClass;
use crate::refusal::{Decision, Refusal, Rule};

/// One governed column that a value derives from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The dataset id.
    pub table: Arc<str>,
    /// The column name in the dataset.
    pub column: Arc<str>,
    /// Its class under the dataset's policy.
    pub class: ColumnClass,
}

/// How a value relates to governed columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Col {
    /// Not derived from unaggregated governed values: literals, or outputs
    /// of enforced aggregates.
    Clean,
    /// A governed column, passed through unchanged.
    Bare(Source),
    /// `date_trunc(unit, c)` or `date_part(unit, c)` of a bare column `c`.
    KeyFn(Source),
    /// Any other expression over governed values.
    Derived(Vec<Source>),
}

impl Col {
    /// Every governed column this value derives from.
    pub fn sources(&self) -> Vec<&Source> {
        match self {
            Self::Clean => vec![],
            Self::Bare(s) | Self::KeyFn(s) => vec![s],
            Self::Derived(v) => v.iter().collect(),
        }
    }

    /// One value derived from all of `values`: clean if none of them
    /// derives from a governed column, else derived from each such column
    /// (each named once, in order).
    pub fn merge(values: Vec<Col>) -> Col {
        let mut sources: Vec<Source> = Vec::new();
        for value in values {
            for s in value.sources() {
                if !sources.contains(s) {
                    sources.push(s.clone());
                }
            }
        }
        if sources.is_empty() {
            Col::Clean
        } else {
            Col::Derived(sources)
        }
    }
}

/// Lineage padded or collapsed to `width` columns. When the shapes do not
/// line up (grouping sets, mark joins), every column conservatively derives
/// from every source.
pub fn fit_width(cols: Vec<Col>, width: usize) -> Vec<Col> {
    if cols.len() == width {
        return cols;
    }
    vec![Col::merge(cols); width]
}

/// What the enforcer knows about the output of one plan node.
#[derive(Debug, Clone, Default)]
pub struct Rel {
    /// One entry per field of the node's schema.
    pub cols: Vec<Col>,
    /// Governed datasets whose unaggregated rows flow out of this node.
    pub unaggregated: Vec<Arc<str>>,
    /// Why these rows can no longer feed an enforced aggregate (rule 6).
    pub impure: Option<Refusal>,
}

impl Rel {
    /// A relation with no governed content (VALUES, aggregated results).
    pub fn clean(width: usize) -> Self {
        Self {
            cols: vec![Col::Clean; width],
            unaggregated: vec![],
            impure: None,
        }
    }

    /// Marks the rows as unfit for an enforced aggregate, keeping the first reason.
    pub fn taint(&mut self, reason: Refusal) {
        if !self.unaggregated.is_empty() && self.impure.is_none() {
            self.impure = Some(reason);
        }
    }

    /// Joins the row provenance of several inputs.
    pub fn merge_rows(inputs: &[&Rel]) -> (Vec<Arc<str>>, Option<Refusal>) {
        let mut tables: Vec<Arc<str>> = Vec::new();
        let mut impure = None;
        for rel in inputs {
            for t in &rel.unaggregated {
                if !tables.contains(t) {
                    tables.push(t.clone());
                }
            }
            if impure.is_none() {
                impure.clone_from(&rel.impure);
            }
        }
        (tables, impure)
    }
}

/// A relation with its schema, for resolving column references.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// The schema the expressions are written against.
    pub schema: &'a DFSchema,
    /// What is known about its columns.
    pub rel: &'a Rel,
}

/// The scopes an expression can see: its input, then enclosing queries
/// (for correlated subqueries), innermost first.
#[derive(Clone, Copy)]
pub struct Scopes<'a> {
    /// The node's own input.
    pub local: Scope<'a>,
    /// Outer queries, innermost first.
    pub outer: &'a [Scope<'a>],
}

impl Scopes<'_> {
    /// The lineage of a column of the local scope.
    pub fn column(&self, column: &Column) -> Decision<Col> {
        lookup(self.local, column)
    }

    /// The lineage of an outer reference.
    pub fn outer_column(&self, column: &Column) -> Decision<Col> {
        for scope in self.outer {
            if let Ok(col) = lookup(*scope, column) {
                return Ok(col);
            }
        }
        Err(Refusal::new(
            Rule::Structure,
            format!("cannot resolve the outer reference `{column}`"),
        ))
    }
}

fn lookup(scope: Scope<'_>, column: &Column) -> Decision<Col> {
    let index = scope.schema.index_of_column(column).map_err(|_| {
        Refusal::new(
            Rule::Structure,
            format!("cannot resolve the column `{column}`"),
        )
    })?;
    Ok(scope.rel.cols.get(index).cloned().unwrap_or(Col::Clean))
}

/// Whether `expr` is `date_trunc(<literal>, x)` or `date_part(<literal>, x)`;
/// returns `x`.
pub fn key_function_argument(expr: &Expr) -> Option<&Expr> {
    let Expr::ScalarFunction(ScalarFunction { func, args }) = expr else {
        return None;
    };
    let name = func.name().to_ascii_lowercase();
    if !matches!(
        name.as_str(),
        "date_trunc" | "date_part" | "datetrunc" | "datepart"
    ) {
        return None;
    }
    match args.as_slice() {
        [Expr::Literal(unit, _), arg] if unit.data_type().is_string() || is_utf8(unit) => Some(arg),
        _ => None,
    }
}

fn is_utf8(value: &datafusion::common::ScalarValue) -> bool {
    matches!(
        value,
        datafusion::common::ScalarValue::Utf8(Some(_))
            | datafusion::common::ScalarValue::Utf8View(Some(_))
            | datafusion::common::ScalarValue::LargeUtf8(Some(_))
    )
}

/// The lineage of an expression evaluated over `scopes`. Subquery results
/// count as clean here: subqueries are enforced on their own.
pub fn classify(expr: &Expr, scopes: &Scopes<'_>) -> Decision<Col> {
    match expr {
        Expr::Alias(alias) => classify(&alias.expr, scopes),
        Expr::Column(c) => scopes.column(c),
        Expr::OuterReferenceColumn(_, c) => scopes.outer_column(c),
        _ => {
            if let Some(arg) = key_function_argument(expr)
                && let Col::Bare(source) = classify(arg, scopes)?
            {
                return Ok(Col::KeyFn(source));
            }
            let mut parts = Vec::new();
            for child in direct_children(expr) {
                parts.push(classify(child, scopes)?);
            }
            Ok(Col::merge(parts))
        }
    }
}

/// An expression with no column, outer reference, subquery, aggregate,
/// window function or placeholder: its value does not depend on any row.
pub fn is_constant(expr: &Expr) -> bool {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut constant = true;
    let _ = expr.apply(|e| {
        if matches!(
            e,
            Expr::Column(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::ScalarSubquery(_)
                | Expr::SetComparison(_)
                | Expr::AggregateFunction(_)
                | Expr::WindowFunction(_)
                | Expr::Placeholder(_)
                | Expr::ScalarVariable(..)
                | Expr::Unnest(_)
        ) {
            constant = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    constant
}

/// The direct sub-expressions of `expr` (not descending into subquery plans).
pub fn direct_children(expr: &Expr) -> Vec<&Expr> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut out = Vec::new();
    let _ = expr.apply_children(|child| {
        out.push(child);
        Ok(TreeNodeRecursion::Continue)
    });
    out
}
