//! The usage-policy model of `spec/usage-policy.md`, version 1: read and
//! written as JSON in exactly that format, and validated so that every error
//! names the offending field.

mod schema_check;
mod validate;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::refusal::{Refusal, Rule};

/// A provider's rulebook for one dataset (see the spec for each field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePolicy {
    /// Always `"UsagePolicy"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `1`.
    pub version: u32,
    /// Unique per issuer.
    pub id: String,
    /// The provider's participant id; equal to the signer of the signed policy.
    pub issuer: String,
    /// What the policy governs.
    pub target: Target,
    /// Who may contract; absent means any member of the data space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<Assignee>,
    /// Purposes a consumer may declare.
    pub purposes: Vec<String>,
    /// When contracting and querying is allowed.
    pub validity: Validity,
    /// Aggregate-only or row-level access.
    pub access: Access,
    /// The class of each column; unlisted columns are denied.
    pub columns: BTreeMap<String, ColumnClass>,
    /// A SQL boolean expression over the dataset's columns; only rows for
    /// which it is true are ever seen by a consumer's query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
    /// Required in aggregate mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation: Option<Aggregation>,
    /// Join rule; version 1 knows only `"none"`.
    #[serde(default)]
    pub joins: Joins,
    /// Quotas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Differential privacy settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<Privacy>,
}

/// `target` of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Dataset id, also the table name the consumer queries.
    pub dataset: String,
}

/// `assignee` of a policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignee {
    /// Participant ids allowed to contract (empty: no restriction by id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<String>,
    /// Credential attribute name -> allowed values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// `validity` of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validity {
    /// Start, RFC 3339.
    pub not_before: DateTime<Utc>,
    /// End, RFC 3339.
    pub not_after: DateTime<Utc>,
}

/// `access` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Only thresholded aggregates leave the provider.
    Aggregate,
    /// Rows of the allowed columns leave the provider.
    Rows,
}

/// The class of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnClass {
    /// Never referenced.
    Denied,
    /// The privacy unit: only `count(DISTINCT ...)`.
    Entity,
    /// Output, grouped on, compared with literals.
    Dimension,
    /// Aggregated (aggregate mode) or output and filtered (rows mode).
    Measure,
}

impl ColumnClass {
    /// The spec's name of the class.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Denied => "denied",
            Self::Entity => "entity",
            Self::Dimension => "dimension",
            Self::Measure => "measure",
        }
    }
}

/// `aggregation` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregation {
    /// Minimum rows per released group.
    pub min_rows: u64,
    /// Minimum distinct entities per released group.
    pub min_entities: u64,
    /// Allowed aggregate functions.
    pub functions: Vec<AggregateFunction>,
}

/// An aggregate function a policy may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AggregateFunction {
    /// `count(*)`, `count(c)`, `count(DISTINCT c)`.
    Count,
    /// `sum(m)`.
    Sum,
    /// `avg(m)`.
    Avg,
}

impl AggregateFunction {
    /// The SQL name of the function.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sum => "sum",
            Self::Avg => "avg",
        }
    }
}

/// `joins` rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Joins {
    /// No join that reads the dataset before aggregation.
    #[default]
    None,
}

/// `limits` of a policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Queries per agreement, all time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queries: Option<u64>,
    /// A result over this many rows is refused whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows_per_query: Option<u64>,
}

/// `privacy` settings (differential privacy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Privacy {
    /// Epsilon charged per query.
    pub epsilon_per_query: f64,
    /// Total epsilon per agreement.
    pub epsilon_total: f64,
    /// Clamping bounds per measure.
    pub bounds: BTreeMap<String, [f64; 2]>,
}

impl UsagePolicy {
    /// Parses a policy from JSON and validates it. Errors name the field.
    pub fn from_json_str(json: &str) -> Result<Self> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let policy: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "(document)".to_owned()
            } else {
                path
            };
            Error::invalid_policy(field, e.into_inner().to_string())
        })?;
        policy.validate()?;
        Ok(policy)
    }

    /// The policy as pretty JSON, in the spec's format.
    pub fn to_json_pretty(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::invalid_policy("(document)", e.to_string()))
    }

    /// The dataset id, which is also the table name.
    pub fn dataset(&self) -> &str {
        &self.target.dataset
    }

    /// The class of a column (unlisted columns are denied).
    pub fn class_of(&self, column: &str) -> ColumnClass {
        self.columns
            .get(column)
            .copied()
            .unwrap_or(ColumnClass::Denied)
    }

    /// The entity column, if the policy names one (aggregate mode needs one).
    pub fn entity_column(&self) -> Option<&str> {
        self.columns
            .iter()
            .find(|(_, class)| **class == ColumnClass::Entity)
            .map(|(name, _)| name.as_str())
    }

    /// Whether `function` is allowed in aggregate mode.
    pub fn allows_function(&self, function: AggregateFunction) -> bool {
        self.aggregation
            .as_ref()
            .is_some_and(|a| a.functions.contains(&function))
    }

    /// Whether the policy is in force at `now`.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.validity.not_before <= now && now <= self.validity.not_after
    }

    /// The validity check of every use of the policy (rule `validity`):
    /// `Ok` while the policy is in force at `now`, else the refusal that
    /// names `dataset`, the dataset the caller is about to read under it.
    pub fn in_force(&self, dataset: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
        if self.is_valid_at(now) {
            Ok(())
        } else {
            Err(Refusal::new(
                Rule::Validity,
                format!("the usage policy of `{dataset}` is not in force now"),
            ))
        }
    }

    /// `limits.max_rows_per_query`, if set.
    pub fn max_rows_per_query(&self) -> Option<u64> {
        self.limits.as_ref().and_then(|l| l.max_rows_per_query)
    }

    /// `limits.max_queries`, if set.
    pub fn max_queries(&self) -> Option<u64> {
        self.limits.as_ref().and_then(|l| l.max_queries)
    }
}
