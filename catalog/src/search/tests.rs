//! Tests of the index against a plain scan of the records.

use super::*;
use crate::model::{ColumnDescription, OfferRecord};
use crate::sample::{SampleProvider, column};
use policy::model::ColumnClass;

const WORDS: [&str; 8] = [
    "spindle",
    "vibration",
    "quality",
    "energy",
    "press",
    "weld",
    "paint",
    "torque",
];
const SECTORS: [&str; 3] = ["manufacturing", "automotive", "energy"];

/// A deterministic record: words, sector and offers chosen from `n`.
pub(crate) fn record(provider: &SampleProvider, n: usize) -> DatasetRecord {
    let word = |k: usize| WORDS[(n * 7 + k * 3) % WORDS.len()];
    let (purpose, access) = if n.is_multiple_of(3) {
        ("billing", Access::Rows)
    } else {
        ("maintenance", Access::Aggregate)
    };
    let offer = |id: String, policy| OfferRecord {
        id,
        issued_at: 0,
        endpoint: "http://p.example".into(),
        policy_hash: "sha256:0".into(),
        policy,
    };
    let mut offers = vec![offer(
        format!("o{n}"),
        provider.policy(&format!("d{n}"), &[purpose], access),
    )];
    if n.is_multiple_of(5) {
        // A second offer: `audit` rows, so `audit` + aggregate must not match.
        offers.push(offer(
            format!("p{n}"),
            provider.policy(&format!("d{n}"), &["Audit"], Access::Rows),
        ));
    }
    DatasetRecord {
        provider: provider.id.clone(),
        id: format!("d{n:03}"),
        version: 1,
        title: format!("{} {}", word(0), word(1)),
        description: format!("about {}", word(2)),
        keywords: vec![word(3).to_uppercase()],
        sector: Some(SECTORS[n % SECTORS.len()].to_owned()),
        columns: vec![
            column("plant", "Utf8", ColumnClass::Dimension),
            column(&format!("c{}", n % 4), "Int64", ColumnClass::Measure),
        ],
        row_count: n as u64,
        updated_at: Utc::now(),
        endpoint: "http://p.example".into(),
        offers,
        published_at: Utc::now(),
        signer_key_id: "kid".into(),
    }
}

/// The naive answer: scan every record.
fn scan(records: &[DatasetRecord], query: &SearchQuery) -> Vec<(u32, String, String)> {
    let words = query.words();
    let mut hits: Vec<(u32, String, String)> = records
        .iter()
        .filter_map(|r| {
            let weights: HashMap<String, u32> = text::weighted_terms(r).into_iter().collect();
            let score = words
                .iter()
                .try_fold(0, |sum, w| weights.get(w).map(|x| sum + x))?;
            let lower = |s: &str| s.to_lowercase();
            let ok = query.provider.as_ref().is_none_or(|p| *p == r.provider)
                && query
                    .sector
                    .as_ref()
                    .is_none_or(|s| r.sector.as_deref().map(lower) == Some(lower(s)))
                && query.column.as_ref().is_none_or(|c| {
                    r.columns
                        .iter()
                        .any(|x: &ColumnDescription| lower(&x.name) == lower(c))
                })
                && r.offers.iter().any(|o| {
                    query
                        .purpose
                        .as_ref()
                        .is_none_or(|p| o.policy.purposes.iter().any(|x| lower(x) == lower(p)))
                        && query.access.is_none_or(|a| o.policy.access == a)
                });
            ok.then(|| (score, r.provider.clone(), r.id.clone()))
        })
        .collect();
    hits.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| (&a.1, &a.2).cmp(&(&b.1, &b.2))));
    hits
}

fn all_pages(index: &SearchIndex, query: &SearchQuery) -> Vec<(u32, String, String)> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let page = index
            .search(
                &SearchQuery {
                    limit: Some(7),
                    offset: Some(offset),
                    ..query.clone()
                },
                7,
            )
            .unwrap();
        if page.hits.is_empty() {
            return out;
        }
        out.extend(page.hits.into_iter().map(|h| (h.score, h.provider, h.id)));
        offset += 7;
    }
}

fn queries() -> Vec<SearchQuery> {
    let mut queries = vec![SearchQuery::default()];
    for (i, word) in WORDS.iter().enumerate() {
        queries.push(SearchQuery {
            q: Some((*word).to_owned()),
            ..SearchQuery::default()
        });
        queries.push(SearchQuery {
            q: Some(format!("{word} {}", WORDS[(i + 3) % 8].to_uppercase())),
            ..SearchQuery::default()
        });
    }
    queries.push(SearchQuery {
        q: Some("spindle".into()),
        sector: Some("Energy".into()),
        ..SearchQuery::default()
    });
    queries.push(SearchQuery {
        column: Some("C2".into()),
        access: Some(Access::Aggregate),
        ..SearchQuery::default()
    });
    queries.push(SearchQuery {
        purpose: Some("billing".into()),
        access: Some(Access::Aggregate),
        ..SearchQuery::default()
    });
    for (purpose, access) in [
        ("audit", Access::Aggregate),
        ("AUDIT", Access::Rows),
        ("maintenance", Access::Aggregate),
    ] {
        queries.push(SearchQuery {
            purpose: Some(purpose.into()),
            access: Some(access),
            ..SearchQuery::default()
        });
    }
    queries.push(SearchQuery {
        purpose: Some("billing".into()),
        provider: Some("north".into()),
        ..SearchQuery::default()
    });
    queries.push(SearchQuery {
        q: Some("unknownword".into()),
        ..SearchQuery::default()
    });
    queries
}

#[test]
fn agrees_with_a_scan_through_inserts_updates_and_removals() {
    let providers = [
        SampleProvider::new("north").unwrap(),
        SampleProvider::new("south").unwrap(),
    ];
    let mut records: Vec<DatasetRecord> = (0..60).map(|n| record(&providers[n % 2], n)).collect();
    let mut index = SearchIndex::new();
    records.iter().for_each(|r| index.insert(r));
    for query in queries() {
        assert_eq!(
            all_pages(&index, &query),
            scan(&records, &query),
            "{query:?}"
        );
    }
    // Update every fifth record with other words, remove every seventh.
    for n in (0..60).step_by(5) {
        let mut updated = record(&providers[n % 2], n + 1);
        updated.id = records[n].id.clone();
        updated.provider = records[n].provider.clone();
        updated.version = 2;
        index.insert(&updated);
        records[n] = updated;
    }
    for n in (0..60).step_by(7).rev() {
        index.remove(&records[n].key());
        records.remove(n);
    }
    assert_eq!(index.len(), records.len());
    for query in queries() {
        assert_eq!(
            all_pages(&index, &query),
            scan(&records, &query),
            "{query:?}"
        );
    }
}

#[test]
fn removed_words_no_longer_find_the_dataset() {
    let provider = SampleProvider::new("north").unwrap();
    let mut index = SearchIndex::new();
    let mut r = record(&provider, 1);
    r.title = "Legacy gearbox".into();
    index.insert(&r);
    let find = |index: &SearchIndex, q: &str| {
        index
            .search(
                &SearchQuery {
                    q: Some(q.into()),
                    ..SearchQuery::default()
                },
                10,
            )
            .unwrap()
            .total
    };
    assert_eq!(find(&index, "gearbox"), 1);
    r.title = "Modern turbine".into();
    r.version = 2;
    index.insert(&r);
    assert_eq!((find(&index, "gearbox"), find(&index, "turbine")), (0, 1));
    assert_eq!(index.version_of(&r.key()), Some(2));
    index.remove(&r.key());
    assert_eq!((find(&index, "turbine"), index.len()), (0, 0));
    assert!(index.terms.is_empty() && index.facets.is_empty());
}

#[test]
fn refuses_bad_pages_and_long_queries() {
    let index = SearchIndex::new();
    for limit in [0, 101] {
        let err = index
            .search(
                &SearchQuery {
                    limit: Some(limit),
                    ..SearchQuery::default()
                },
                100,
            )
            .unwrap_err();
        assert!(
            matches!(err, Error::Invalid { ref field, .. } if field == "limit"),
            "{err}"
        );
    }
    let q = (0..40)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let err = index
        .search(
            &SearchQuery {
                q: Some(q),
                ..SearchQuery::default()
            },
            100,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid { ref field, .. } if field == "q"),
        "{err}"
    );
}

#[test]
fn compaction_keeps_the_answers() {
    let provider = SampleProvider::new("north").unwrap();
    let mut records: Vec<DatasetRecord> = (0..1500).map(|n| record(&provider, n)).collect();
    let mut index = SearchIndex::new();
    records.iter().for_each(|r| index.insert(r));
    for _ in 0..2 {
        for r in &mut records {
            r.version += 1;
            index.insert(r);
        }
    }
    assert!(
        index.entries.len() <= 2 * records.len() + 1024,
        "{}",
        index.entries.len()
    );
    let mut found = 0;
    for query in queries() {
        let pages = all_pages(&index, &query);
        found += pages.len();
        assert_eq!(pages, scan(&records, &query), "{query:?}");
    }
    assert!(found > records.len(), "the queries should find something");
}
