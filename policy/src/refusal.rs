//! Refusals: a stable rule id and a message that never quotes data values.

use std::fmt;

/// The spec's stable rule ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Not exactly one `SELECT`.
    Statement,
    /// A table that is not a dataset of the caller's agreements.
    Table,
    /// A `denied` column is referenced.
    DeniedColumn,
    /// An `entity` column is used other than in `count(DISTINCT ...)`.
    EntityColumn,
    /// Dataset rows would leave without an enforced aggregate.
    AggregationRequired,
    /// An aggregate function the policy does not allow.
    AggregateFunction,
    /// An aggregate argument that is not a bare column of the right class.
    AggregateArgument,
    /// A group key that is not a dimension (or an allowed function of one).
    GroupKey,
    /// A filter on dataset rows that breaks rule 4.
    Filter,
    /// A plan shape the spec does not allow below an aggregate.
    Structure,
    /// A join that reads the dataset before aggregation.
    Join,
    /// The agreement or policy is not in force.
    Validity,
    /// The purpose is not covered.
    Purpose,
    /// The agreement's query quota is used up.
    Quota,
    /// The agreement was revoked.
    Revoked,
    /// The result has more rows than allowed.
    RowLimit,
    /// The privacy budget is used up.
    Budget,
}

impl Rule {
    /// The stable id of the rule, as written in the spec.
    pub fn id(self) -> &'static str {
        match self {
            Self::Statement => "statement",
            Self::Table => "table",
            Self::DeniedColumn => "denied_column",
            Self::EntityColumn => "entity_column",
            Self::AggregationRequired => "aggregation_required",
            Self::AggregateFunction => "aggregate_function",
            Self::AggregateArgument => "aggregate_argument",
            Self::GroupKey => "group_key",
            Self::Filter => "filter",
            Self::Structure => "structure",
            Self::Join => "join",
            Self::Validity => "validity",
            Self::Purpose => "purpose",
            Self::Quota => "quota",
            Self::Revoked => "revoked",
            Self::RowLimit => "row_limit",
            Self::Budget => "budget",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A query refused by the policy. The message names columns, functions or
/// clauses of the query and schema, never a value from the data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by rule `{rule}`: {message}")]
pub struct Refusal {
    /// The rule that refused the query.
    pub rule: Rule,
    /// What was wrong, in words.
    pub message: String,
}

impl Refusal {
    /// A refusal under `rule`.
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Self {
            rule,
            message: message.into(),
        }
    }

    /// A plan that DataFusion cannot rebuild as the enforcer rewrote it
    /// (rule `structure`), with the first line of what DataFusion said.
    pub fn unenforceable(detail: impl fmt::Display) -> Self {
        let detail = detail.to_string();
        let first_line = detail.lines().next().unwrap_or_default();
        Self::new(
            Rule::Structure,
            format!("the query cannot be enforced: {first_line}"),
        )
    }
}

/// Result of enforcement steps.
pub type Decision<T> = std::result::Result<T, Refusal>;
