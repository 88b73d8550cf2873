//! The openness list (开放清单) of a provider: what it opens, to whom, and
//! under which rules, as data and as a self-contained HTML page.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use policy::model::{Access, ColumnClass};
use serde::{Deserialize, Serialize};

use crate::model::{ColumnDescription, DatasetRecord, Participant};

/// What one provider opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpennessList {
    /// The provider's participant id.
    pub provider: String,
    /// Its display name.
    pub name: String,
    /// When the list was drawn up.
    pub generated_at: DateTime<Utc>,
    /// Its published datasets, by id.
    pub datasets: Vec<OpenDataset>,
}

/// One opened dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenDataset {
    /// Dataset id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Published version.
    pub version: u64,
    /// Sector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    /// Number of rows.
    pub row_count: u64,
    /// The provider connector's base URL.
    pub endpoint: String,
    /// Visible columns.
    pub columns: Vec<ColumnDescription>,
    /// One rule per offer.
    pub rules: Vec<OpennessRule>,
}

/// The rules of one offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpennessRule {
    /// The offer id.
    pub offer: String,
    /// The usage policy id.
    pub policy: String,
    /// Content hash of the signed policy.
    pub policy_hash: String,
    /// Who may contract.
    pub assignee: Audience,
    /// Purposes a consumer may declare.
    pub purposes: Vec<String>,
    /// Aggregate-only or row-level access.
    pub access: Access,
    /// Minimum rows per released group (aggregate mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rows: Option<u64>,
    /// Minimum distinct entities per released group (aggregate mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_entities: Option<u64>,
    /// Allowed aggregate functions.
    pub functions: Vec<String>,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// Queries per agreement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queries: Option<u64>,
    /// Largest result, in rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows_per_query: Option<u64>,
    /// Only rows for which this SQL condition holds are ever seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
    /// The readable columns and their classes.
    pub columns: BTreeMap<String, ColumnClass>,
}

/// To whom an offer opens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    /// True when any member of the data space may contract.
    pub any_member: bool,
    /// Participant ids allowed (empty: no restriction by id).
    pub participants: Vec<String>,
    /// Credential attribute name -> allowed values.
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// The openness list of `provider` over its published `records`.
pub fn openness_list(
    provider: &Participant,
    records: &[DatasetRecord],
    now: DateTime<Utc>,
) -> OpennessList {
    OpennessList {
        provider: provider.id.clone(),
        name: provider.name.clone(),
        generated_at: now,
        datasets: records.iter().map(open_dataset).collect(),
    }
}

fn open_dataset(record: &DatasetRecord) -> OpenDataset {
    let rules = record
        .offers
        .iter()
        .map(|offer| {
            let policy = &offer.policy;
            let assignee = policy.assignee.clone().unwrap_or_default();
            OpennessRule {
                offer: offer.id.clone(),
                policy: policy.id.clone(),
                policy_hash: offer.policy_hash.clone(),
                assignee: Audience {
                    any_member: assignee.participants.is_empty() && assignee.attributes.is_empty(),
                    participants: assignee.participants,
                    attributes: assignee.attributes,
                },
                purposes: policy.purposes.clone(),
                access: policy.access,
                min_rows: policy.aggregation.as_ref().map(|a| a.min_rows),
                min_entities: policy.aggregation.as_ref().map(|a| a.min_entities),
                functions: policy
                    .aggregation
                    .iter()
                    .flat_map(|a| &a.functions)
                    .map(|f| f.as_str().to_owned())
                    .collect(),
                not_before: policy.validity.not_before,
                not_after: policy.validity.not_after,
                max_queries: policy.max_queries(),
                max_rows_per_query: policy.max_rows_per_query(),
                row_filter: policy.row_filter.clone(),
                columns: policy
                    .columns
                    .iter()
                    .filter(|(_, class)| **class != ColumnClass::Denied)
                    .map(|(n, c)| (n.clone(), *c))
                    .collect(),
            }
        })
        .collect();
    OpenDataset {
        id: record.id.clone(),
        title: record.title.clone(),
        version: record.version,
        sector: record.sector.clone(),
        row_count: record.row_count,
        endpoint: record.endpoint.clone(),
        columns: record.columns.clone(),
        rules,
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;color:#222}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #bbb;padding:.3rem .6rem;text-align:left;vertical-align:top}\
th{background:#eee}code{background:#f4f4f4;padding:0 .2rem}";

/// The openness list as one HTML page: no scripts, no external resources,
/// every value escaped.
pub fn render_html(list: &OpennessList) -> String {
    let mut page = String::new();
    let name = escape_html(&list.name);
    let id = escape_html(&list.provider);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>开放清单 · Openness list of {name}</title><style>{STYLE}</style></head><body>\
         <h1>开放清单 · Openness list</h1><p>Provider <strong>{name}</strong> (<code>{id}</code>), \
         {} datasets, as of {}.</p>",
        list.datasets.len(),
        list.generated_at.to_rfc3339()
    );
    if list.datasets.is_empty() {
        page.push_str("<p>This provider opens no dataset.</p>");
    }
    for dataset in &list.datasets {
        render_dataset(&mut page, dataset);
    }
    page.push_str("</body></html>\n");
    page
}

fn render_dataset(page: &mut String, d: &OpenDataset) {
    let columns: Vec<String> = d
        .columns
        .iter()
        .map(|c| format!("{} ({}, {})", c.name, c.data_type, c.class.as_str()))
        .collect();
    let _ = write!(
        page,
        "<h2>{} <small>(<code>{}</code>, version {})</small></h2>\
         <p>Sector: {}. Rows: {}. Endpoint: <code>{}</code>.</p><p>Columns: {}</p>",
        escape_html(&d.title),
        escape_html(&d.id),
        d.version,
        escape_html(d.sector.as_deref().unwrap_or("none given")),
        d.row_count,
        escape_html(&d.endpoint),
        escape_html(&columns.join(", ")),
    );
    page.push_str(
        "<table><tr><th>Offer</th><th>To whom</th><th>Purposes</th><th>Access</th>\
         <th>Thresholds</th><th>Valid</th><th>Limits</th><th>Row filter</th></tr>",
    );
    for rule in &d.rules {
        let cells = [
            format!("{} (policy {})", rule.offer, rule.policy),
            audience_text(&rule.assignee),
            rule.purposes.join(", "),
            match rule.access {
                Access::Aggregate => format!("aggregate ({})", rule.functions.join(", ")),
                Access::Rows => "rows".to_owned(),
            },
            thresholds_text(rule),
            format!(
                "{} to {}",
                rule.not_before.to_rfc3339(),
                rule.not_after.to_rfc3339()
            ),
            limits_text(rule),
            rule.row_filter.clone().unwrap_or_else(|| "none".to_owned()),
        ];
        page.push_str("<tr>");
        for cell in cells {
            let _ = write!(page, "<td>{}</td>", escape_html(&cell));
        }
        page.push_str("</tr>");
    }
    page.push_str("</table>");
}

fn audience_text(audience: &Audience) -> String {
    if audience.any_member {
        return "any member".to_owned();
    }
    let mut parts = Vec::new();
    if !audience.participants.is_empty() {
        parts.push(format!("participants {}", audience.participants.join(", ")));
    }
    for (name, values) in &audience.attributes {
        parts.push(format!("{name} in {}", values.join(", ")));
    }
    parts.join("; ")
}

fn thresholds_text(rule: &OpennessRule) -> String {
    match (rule.min_rows, rule.min_entities) {
        (None, None) => "none".to_owned(),
        (rows, entities) => format!(
            "at least {} rows and {} entities per group",
            rows.unwrap_or(0),
            entities.unwrap_or(0)
        ),
    }
}

fn limits_text(rule: &OpennessRule) -> String {
    let queries = rule.max_queries.map_or_else(
        || "unlimited queries".to_owned(),
        |n| format!("{n} queries"),
    );
    let rows = rule.max_rows_per_query.map_or_else(
        || "no row cap".to_owned(),
        |n| format!("at most {n} rows per query"),
    );
    format!("{queries}; {rows}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape_html(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn an_empty_list_renders_a_complete_page() {
        let list = OpennessList {
            provider: "p<1>".into(),
            name: "P & Co".into(),
            generated_at: Utc::now(),
            datasets: Vec::new(),
        };
        let page = render_html(&list);
        assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
        assert!(page.contains("P &amp; Co") && page.contains("p&lt;1&gt;"));
        assert!(page.contains("opens no dataset"));
    }
}
