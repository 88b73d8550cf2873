//! The usage policies the demo's platform offers its data under
//! (`docs/usage-policy.md`): aggregates only for the telemetry, rows for the
//! supplier scorecard.

use anyhow::{Context, Result};
use chrono::{Duration, SecondsFormat, Utc};
use policy::model::UsagePolicy;
use serde_json::{Value, json};

/// Valid from yesterday for a year.
fn validity() -> Value {
    let now = Utc::now();
    json!({
        "not_before": (now - Duration::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true),
        "not_after": (now + Duration::days(365)).to_rfc3339_opts(SecondsFormat::Secs, true),
    })
}

fn load(value: &Value) -> Result<UsagePolicy> {
    UsagePolicy::from_json_str(&value.to_string()).context("a demo policy is invalid")
}

/// Machine telemetry: aggregates by site, line, shift, time and defect over
/// groups of at least 10 readings from 5 machines; operator names denied;
/// the prototype lab filtered out.
pub fn telemetry(issuer: &str) -> Result<UsagePolicy> {
    load(&json!({
        "type": "UsagePolicy",
        "version": 1,
        "id": "urn:policy:demo:telemetry-quality",
        "issuer": issuer,
        "target": { "dataset": "telemetry" },
        "purposes": ["quality-analysis", "predictive-maintenance"],
        "validity": validity(),
        "access": "aggregate",
        "columns": {
            "machine_id": "entity",
            "site": "dimension",
            "line": "dimension",
            "shift": "dimension",
            "ts": "dimension",
            "defect": "dimension",
            "temperature": "measure",
            "vibration": "measure",
            "energy_kwh": "measure",
            "operator_name": "denied"
        },
        "row_filter": "site <> 'prototype-lab'",
        "aggregation": { "min_rows": 10, "min_entities": 5, "functions": ["count", "sum", "avg"] },
        "joins": "none",
        "limits": { "max_queries": 1000, "max_rows_per_query": 10000 }
    }))
}

/// Supplier scorecard: rows of figures, without prices and contacts, and
/// without the restricted suppliers.
pub fn suppliers(issuer: &str) -> Result<UsagePolicy> {
    load(&json!({
        "type": "UsagePolicy",
        "version": 1,
        "id": "urn:policy:demo:supplier-scorecard",
        "issuer": issuer,
        "target": { "dataset": "supplier_quality" },
        "purposes": ["supplier-development"],
        "validity": validity(),
        "access": "rows",
        "columns": {
            "supplier": "dimension",
            "region": "dimension",
            "part": "dimension",
            "week": "dimension",
            "delivered": "measure",
            "defects_ppm": "measure",
            "on_time_rate": "measure",
            "unit_price": "denied",
            "contact_email": "denied"
        },
        "row_filter": "region <> 'restricted'",
        "joins": "none",
        "limits": { "max_queries": 200, "max_rows_per_query": 1000 }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_policies_are_valid_and_name_their_issuer() {
        assert_eq!(telemetry("p").unwrap().issuer, "p");
        assert_eq!(suppliers("p").unwrap().issuer, "p");
    }
}
