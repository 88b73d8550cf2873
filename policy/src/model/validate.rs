//! Validation of a usage policy on its own (without the dataset's schema).

use std::collections::BTreeSet;

use datafusion::sql::sqlparser::{dialect::GenericDialect, parser::Parser};

use super::{Access, ColumnClass, UsagePolicy};
use crate::error::{Error, Result};

fn require_text(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid_policy(field, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid_policy(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

impl UsagePolicy {
    /// Checks every rule of the spec that does not need the dataset.
    pub fn validate(&self) -> Result<()> {
        if self.kind != "UsagePolicy" {
            return Err(Error::invalid_policy(
                "type",
                format!("must be `UsagePolicy`, not `{}`", self.kind),
            ));
        }
        if self.version != 1 {
            return Err(Error::invalid_policy(
                "version",
                format!("must be 1, not {}", self.version),
            ));
        }
        require_text("id", &self.id)?;
        require_text("issuer", &self.issuer)?;
        require_text("target.dataset", &self.target.dataset)?;
        self.validate_assignee()?;
        self.validate_purposes()?;
        if self.validity.not_before >= self.validity.not_after {
            return Err(Error::invalid_policy(
                "validity",
                "`not_before` must be earlier than `not_after`",
            ));
        }
        self.validate_columns()?;
        if let Some(filter) = &self.row_filter {
            validate_row_filter_syntax(filter)?;
        }
        self.validate_aggregation()?;
        self.validate_limits()?;
        self.validate_privacy()
    }

    fn validate_assignee(&self) -> Result<()> {
        let Some(assignee) = &self.assignee else {
            return Ok(());
        };
        for (i, p) in assignee.participants.iter().enumerate() {
            require_text(&format!("assignee.participants[{i}]"), p)?;
        }
        for (name, values) in &assignee.attributes {
            require_text("assignee.attributes", name)?;
            if values.is_empty() {
                return Err(Error::invalid_policy(
                    format!("assignee.attributes.{name}"),
                    "must list at least one allowed value",
                ));
            }
        }
        Ok(())
    }

    fn validate_purposes(&self) -> Result<()> {
        if self.purposes.is_empty() {
            return Err(Error::invalid_policy(
                "purposes",
                "must list at least one purpose",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, purpose) in self.purposes.iter().enumerate() {
            require_text(&format!("purposes[{i}]"), purpose)?;
            if !seen.insert(purpose) {
                return Err(Error::invalid_policy(
                    format!("purposes[{i}]"),
                    format!("repeats `{purpose}`"),
                ));
            }
        }
        Ok(())
    }

    fn validate_columns(&self) -> Result<()> {
        if self.columns.is_empty() {
            return Err(Error::invalid_policy(
                "columns",
                "must list at least one column",
            ));
        }
        for name in self.columns.keys() {
            require_text("columns", name)?;
        }
        let entities = self
            .columns
            .values()
            .filter(|c| **c == ColumnClass::Entity)
            .count();
        if self.access == Access::Aggregate && entities > 1 {
            return Err(Error::invalid_policy(
                "columns",
                "aggregate mode allows one `entity` column (the privacy unit)",
            ));
        }
        Ok(())
    }

    fn validate_aggregation(&self) -> Result<()> {
        match (self.access, &self.aggregation) {
            (Access::Rows, Some(_)) => Err(Error::invalid_policy(
                "aggregation",
                "is only allowed when `access` is `aggregate`",
            )),
            (Access::Rows, None) => Ok(()),
            (Access::Aggregate, None) => Err(Error::invalid_policy(
                "aggregation",
                "is required when `access` is `aggregate`",
            )),
            (Access::Aggregate, Some(aggregation)) => {
                if aggregation.min_rows < 1 {
                    return Err(Error::invalid_policy(
                        "aggregation.min_rows",
                        "must be at least 1",
                    ));
                }
                if aggregation.min_entities < 1 {
                    return Err(Error::invalid_policy(
                        "aggregation.min_entities",
                        "must be at least 1",
                    ));
                }
                if self.entity_column().is_none() {
                    return Err(Error::invalid_policy(
                        "aggregation.min_entities",
                        "needs a column of class `entity` in `columns`",
                    ));
                }
                if aggregation.functions.is_empty() {
                    return Err(Error::invalid_policy(
                        "aggregation.functions",
                        "must list at least one function",
                    ));
                }
                let unique: BTreeSet<_> =
                    aggregation.functions.iter().map(|f| f.as_str()).collect();
                if unique.len() != aggregation.functions.len() {
                    return Err(Error::invalid_policy(
                        "aggregation.functions",
                        "lists a function twice",
                    ));
                }
                Ok(())
            }
        }
    }

    fn validate_limits(&self) -> Result<()> {
        let Some(limits) = &self.limits else {
            return Ok(());
        };
        if limits.max_queries == Some(0) {
            return Err(Error::invalid_policy(
                "limits.max_queries",
                "must be at least 1",
            ));
        }
        if limits.max_rows_per_query == Some(0) {
            return Err(Error::invalid_policy(
                "limits.max_rows_per_query",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    fn validate_privacy(&self) -> Result<()> {
        let Some(privacy) = &self.privacy else {
            return Ok(());
        };
        if self.access != Access::Aggregate {
            return Err(Error::invalid_policy(
                "privacy",
                "is only allowed when `access` is `aggregate`",
            ));
        }
        let eps = privacy.epsilon_per_query;
        if !(eps.is_finite() && eps > 0.0) {
            return Err(Error::invalid_policy(
                "privacy.epsilon_per_query",
                "must be a positive number",
            ));
        }
        if !(privacy.epsilon_total.is_finite() && privacy.epsilon_total >= eps) {
            return Err(Error::invalid_policy(
                "privacy.epsilon_total",
                "must be a number at least `epsilon_per_query`",
            ));
        }
        for (measure, [lo, hi]) in &privacy.bounds {
            if self.class_of(measure) != ColumnClass::Measure {
                return Err(Error::invalid_policy(
                    format!("privacy.bounds.{measure}"),
                    "names a column that is not a `measure`",
                ));
            }
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(Error::invalid_policy(
                    format!("privacy.bounds.{measure}"),
                    "must be two finite numbers, low before high",
                ));
            }
        }
        for (name, class) in &self.columns {
            if *class == ColumnClass::Measure && !privacy.bounds.contains_key(name) {
                return Err(Error::invalid_policy(
                    "privacy.bounds",
                    format!("needs bounds for the measure `{name}`"),
                ));
            }
        }
        // Checked last so that a malformed `privacy` section is still reported precisely.
        Err(Error::invalid_policy(
            "privacy",
            "differential privacy is not supported by this version of the connector; remove `privacy` or use a newer connector",
        ))
    }
}

/// Parses `row_filter` as one SQL expression (never pasted into SQL text).
fn validate_row_filter_syntax(filter: &str) -> Result<()> {
    require_text("row_filter", filter)?;
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(filter).map_err(|e| {
        Error::invalid_policy("row_filter", format!("is not a SQL expression: {e}"))
    })?;
    parser.parse_expr().map_err(|e| {
        Error::invalid_policy("row_filter", format!("is not a SQL expression: {e}"))
    })?;
    if parser.peek_token().token != datafusion::sql::sqlparser::tokenizer::Token::EOF {
        return Err(Error::invalid_policy(
            "row_filter",
            "must be exactly one SQL expression",
        ));
    }
    Ok(())
}
