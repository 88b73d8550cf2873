//! The whole catalog as DCAT 3 in JSON-LD, each dataset's offers as ODRL
//! offers (`odrl:hasPolicy`) with their rules as ODRL constraints.
//!
//! Terms DCAT and ODRL lack (access mode, group thresholds, credential
//! attributes, columns) use the `ds:` vocabulary, `urn:dataspace:vocab:`.
//! Datasets, offers and participants are named by URNs:
//! `urn:dataspace:dataset:<provider>:<id>`, `urn:dataspace:offer:<provider>:<id>`
//! and `urn:dataspace:participant:<id>`, each part percent-encoded.

use chrono::{DateTime, Utc};
use policy::model::{Access, UsagePolicy};
use serde_json::{Value, json};

use crate::client::encode_component;
use crate::model::{DatasetRecord, OfferRecord};

/// Media type of the export.
pub const JSON_LD: &str = "application/ld+json";

/// The JSON-LD `@context` of the export.
pub fn context() -> Value {
    json!({
        "dcat": "http://www.w3.org/ns/dcat#",
        "dct": "http://purl.org/dc/terms/",
        "odrl": "http://www.w3.org/ns/odrl/2/",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "ds": "urn:dataspace:vocab:"
    })
}

/// The `dcat:Catalog` holding `datasets` (entries from [`dataset_entry`]).
pub fn catalog_document(title: &str, datasets: Vec<Value>, now: DateTime<Utc>) -> Value {
    json!({
        "@context": context(),
        "@id": "urn:dataspace:catalog",
        "@type": "dcat:Catalog",
        "dct:title": title,
        "dct:modified": date_time(now),
        "dcat:dataset": datasets,
    })
}

/// The IRI of a participant.
pub fn participant_iri(id: &str) -> String {
    format!("urn:dataspace:participant:{}", encode_component(id))
}

/// The IRI of a dataset.
pub fn dataset_iri(provider: &str, id: &str) -> String {
    format!(
        "urn:dataspace:dataset:{}:{}",
        encode_component(provider),
        encode_component(id)
    )
}

/// The IRI of an offer.
pub fn offer_iri(provider: &str, id: &str) -> String {
    format!(
        "urn:dataspace:offer:{}:{}",
        encode_component(provider),
        encode_component(id)
    )
}

/// One `dcat:Dataset` with its distribution and ODRL offers.
pub fn dataset_entry(record: &DatasetRecord) -> Value {
    let iri = dataset_iri(&record.provider, &record.id);
    let columns: Vec<Value> = record
        .columns
        .iter()
        .map(|c| json!({"ds:name": c.name, "ds:type": c.data_type, "ds:class": c.class.as_str()}))
        .collect();
    let offers: Vec<Value> = record
        .offers
        .iter()
        .map(|o| offer_entry(record, &iri, o))
        .collect();
    let mut entry = json!({
        "@id": iri,
        "@type": "dcat:Dataset",
        "dct:identifier": record.id,
        "dct:title": record.title,
        "dct:description": record.description,
        "dcat:keyword": record.keywords,
        "dct:publisher": {"@id": participant_iri(&record.provider)},
        "dct:modified": date_time(record.updated_at),
        "dct:issued": date_time(record.published_at),
        "dcat:version": record.version.to_string(),
        "ds:rowCount": record.row_count,
        "ds:column": columns,
        "dcat:distribution": [{
            "@type": "dcat:Distribution",
            "dct:format": "application/vnd.apache.arrow.stream",
            "dcat:accessService": {
                "@type": "dcat:DataService",
                "dcat:endpointURL": {"@id": record.endpoint},
            },
        }],
        "odrl:hasPolicy": offers,
    });
    if let Some(sector) = &record.sector {
        entry["ds:sector"] = json!(sector);
    }
    entry
}

fn offer_entry(record: &DatasetRecord, dataset_iri: &str, offer: &OfferRecord) -> Value {
    let policy = &offer.policy;
    let mut permission = json!({
        "odrl:action": {"@id": "odrl:use"},
        "odrl:constraint": constraints(policy),
    });
    if let Some(assignee) = policy
        .assignee
        .as_ref()
        .filter(|a| !a.participants.is_empty())
    {
        let ids: Vec<Value> = assignee
            .participants
            .iter()
            .map(|p| json!({"@id": participant_iri(p)}))
            .collect();
        permission["odrl:assignee"] = Value::Array(ids);
    }
    json!({
        "@id": offer_iri(&record.provider, &offer.id),
        "@type": "odrl:Offer",
        "odrl:uid": offer.id,
        "odrl:assigner": {"@id": participant_iri(&record.provider)},
        "odrl:target": {"@id": dataset_iri},
        "ds:policyId": policy.id,
        "ds:policyHash": offer.policy_hash,
        "ds:endpoint": offer.endpoint,
        "odrl:permission": [permission],
    })
}

fn constraint(left: &str, operator: &str, right: Value) -> Value {
    json!({
        "odrl:leftOperand": {"@id": left},
        "odrl:operator": {"@id": operator},
        "odrl:rightOperand": right,
    })
}

fn constraints(policy: &UsagePolicy) -> Vec<Value> {
    let access = match policy.access {
        Access::Aggregate => "aggregate",
        Access::Rows => "rows",
    };
    let mut list = vec![
        constraint("odrl:purpose", "odrl:isAnyOf", json!(policy.purposes)),
        constraint(
            "odrl:dateTime",
            "odrl:gteq",
            date_time(policy.validity.not_before),
        ),
        constraint(
            "odrl:dateTime",
            "odrl:lteq",
            date_time(policy.validity.not_after),
        ),
        constraint("ds:accessMode", "odrl:eq", json!(access)),
    ];
    if let Some(aggregation) = &policy.aggregation {
        let functions: Vec<&str> = aggregation.functions.iter().map(|f| f.as_str()).collect();
        list.push(constraint(
            "ds:minRowsPerGroup",
            "odrl:gteq",
            json!(aggregation.min_rows),
        ));
        list.push(constraint(
            "ds:minEntitiesPerGroup",
            "odrl:gteq",
            json!(aggregation.min_entities),
        ));
        list.push(constraint(
            "ds:aggregateFunction",
            "odrl:isAnyOf",
            json!(functions),
        ));
    }
    if let Some(max) = policy.max_queries() {
        list.push(constraint("odrl:count", "odrl:lteq", json!(max)));
    }
    if let Some(max) = policy.max_rows_per_query() {
        list.push(constraint("ds:rowsPerQuery", "odrl:lteq", json!(max)));
    }
    for (name, values) in policy.assignee.iter().flat_map(|a| &a.attributes) {
        let mut c = constraint("ds:credentialAttribute", "odrl:isAnyOf", json!(values));
        c["ds:attribute"] = json!(name);
        list.push(c);
    }
    list
}

fn date_time(at: DateTime<Utc>) -> Value {
    json!({"@value": at.to_rfc3339(), "@type": "xsd:dateTime"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_of_an_iri_is_percent_encoded() {
        assert_eq!(
            dataset_iri("north:plant", "a b/c"),
            "urn:dataspace:dataset:north%3Aplant:a%20b%2Fc"
        );
        assert_eq!(offer_iri("north", "o~1"), "urn:dataspace:offer:north:o~1");
        assert_eq!(
            participant_iri("zürich"),
            "urn:dataspace:participant:z%C3%BCrich"
        );
    }
}
