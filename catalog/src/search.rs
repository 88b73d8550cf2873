//! Search: an inverted index kept in memory, rebuilt from the store at
//! start and updated on every publication and withdrawal.
//!
//! Words of the title (weight 3), keywords (2) and description (1) map to
//! the datasets holding them (`token -> {slot -> weight}`); filters (provider,
//! sector, column, offered purpose, access mode) are facet sets of their
//! own (`facet -> {slot}`). A query walks the smallest of the sets it names
//! and probes the others, so it never scans every entry unless it names
//! nothing at all. Every word must match; hits are ordered by relevance (the
//! sum of the weights), then provider and id, so pages are stable.
//!
//! Tokens are lower-case runs of letters and digits; each CJK character is
//! a token of its own, so `开放` finds `数据开放清单`.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use policy::model::Access;
use serde::{Deserialize, Serialize};

use crate::model::{DatasetKey, DatasetRecord};
use crate::{Error, Result};

/// Page size when a query gives none.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// Most words in a query.
pub const MAX_QUERY_WORDS: usize = 32;
/// Longest indexed token, in characters; longer runs are not indexed.
pub const MAX_TOKEN_CHARS: usize = 64;

const TITLE_WEIGHT: u32 = 3;
const KEYWORD_WEIGHT: u32 = 2;
const DESCRIPTION_WEIGHT: u32 = 1;

/// A search: words and filters, all optional, and a page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Words to find in title, description and keywords; all must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Only datasets of this provider (participant id, exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Only datasets of this sector (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    /// Only datasets listing this column (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Only datasets with an offer for this purpose (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Only datasets with an offer in this access mode; with `purpose`, the
    /// same offer must allow both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// Page size, 1 to the catalog's maximum [default: 20].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Hits to skip [default: 0].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
}

/// One dataset found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The provider.
    pub provider: String,
    /// The dataset id.
    pub id: String,
    /// The published version.
    pub version: u64,
    /// Title.
    pub title: String,
    /// Sector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Purposes offered, sorted.
    pub purposes: Vec<String>,
    /// Access modes offered.
    pub access: Vec<Access>,
    /// When the data last changed.
    pub updated_at: DateTime<Utc>,
    /// Relevance: the summed weights of the matched words (0 without words).
    pub score: u32,
}

/// A page of hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    /// Hits in all pages.
    pub total: usize,
    /// Hits skipped.
    pub offset: usize,
    /// Page size.
    pub limit: usize,
    /// This page.
    pub hits: Vec<SearchHit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Facet {
    Provider(String),
    Sector(String),
    Column(String),
    Purpose(String),
    Access(&'static str),
}

fn access_name(access: Access) -> &'static str {
    match access {
        Access::Aggregate => "aggregate",
        Access::Rows => "rows",
    }
}

#[derive(Debug)]
struct Entry {
    hit: SearchHit,
    terms: Vec<String>,
    facets: Vec<Facet>,
    /// Per offer: its purposes (lower-case) and access mode.
    offers: Vec<(BTreeSet<String>, Access)>,
}

/// The inverted index over the published datasets.
#[derive(Debug, Default)]
pub struct SearchIndex {
    entries: Vec<Option<Entry>>,
    slots: HashMap<DatasetKey, u32>,
    free: Vec<u32>,
    terms: HashMap<String, HashMap<u32, u32>>,
    facets: HashMap<Facet, HashSet<u32>>,
}

/// A set a query intersects: a word's postings or a facet.
enum Constraint<'a> {
    Term(&'a HashMap<u32, u32>),
    Facet(&'a HashSet<u32>),
}

impl Constraint<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Term(postings) => postings.len(),
            Self::Facet(set) => set.len(),
        }
    }

    fn slots(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            Self::Term(postings) => Box::new(postings.keys().copied()),
            Self::Facet(set) => Box::new(set.iter().copied()),
        }
    }

    /// The weight of `slot` in this set, if it is in it.
    fn weight(&self, slot: u32) -> Option<u32> {
        match self {
            Self::Term(postings) => postings.get(&slot).copied(),
            Self::Facet(set) => set.contains(&slot).then_some(0),
        }
    }
}

impl SearchIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of indexed datasets.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Indexes `record`, replacing an earlier version of the same dataset.
    pub fn insert(&mut self, record: &DatasetRecord) {
        let key = record.key();
        self.remove(&key);
        let entry = entry_of(record);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.entries.push(None);
                u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
            }
        };
        for (term, weight) in weighted_terms(record) {
            self.terms.entry(term).or_default().insert(slot, weight);
        }
        for facet in &entry.facets {
            self.facets.entry(facet.clone()).or_default().insert(slot);
        }
        if let Some(place) = self.entries.get_mut(slot as usize) {
            *place = Some(entry);
        }
        self.slots.insert(key, slot);
    }

    /// Removes a dataset; its words and facets no longer find it.
    pub fn remove(&mut self, key: &DatasetKey) {
        let Some(slot) = self.slots.remove(key) else {
            return;
        };
        let Some(entry) = self.entries.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        for term in &entry.terms {
            if let Some(postings) = self.terms.get_mut(term) {
                postings.remove(&slot);
                if postings.is_empty() {
                    self.terms.remove(term);
                }
            }
        }
        for facet in &entry.facets {
            if let Some(set) = self.facets.get_mut(facet) {
                set.remove(&slot);
                if set.is_empty() {
                    self.facets.remove(facet);
                }
            }
        }
        self.free.push(slot);
    }

    /// The indexed version of a dataset.
    pub fn version_of(&self, key: &DatasetKey) -> Option<u64> {
        let slot = self.slots.get(key)?;
        self.entry(*slot).map(|entry| entry.hit.version)
    }

    /// The datasets of `provider`, by id.
    pub fn datasets_of(&self, provider: &str) -> Vec<DatasetKey> {
        let mut keys: Vec<DatasetKey> = self
            .facets
            .get(&Facet::Provider(provider.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|slot| self.entry(*slot))
            .map(|entry| DatasetKey::new(&entry.hit.provider, &entry.hit.id))
            .collect();
        keys.sort();
        keys
    }

    /// Runs `query`; pages hold at most `max_page_size` hits.
    pub fn search(&self, query: &SearchQuery, max_page_size: usize) -> Result<SearchPage> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE.min(max_page_size));
        if limit == 0 || limit > max_page_size {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {max_page_size}"),
            ));
        }
        let offset = query.offset.unwrap_or(0);
        let mut page = SearchPage {
            total: 0,
            offset,
            limit,
            hits: Vec::new(),
        };
        let Some(constraints) = self.constraints(query)? else {
            return Ok(page);
        };
        let mut found = self.matches(query, &constraints);
        page.total = found.len();
        let end = offset.saturating_add(limit).min(found.len());
        if offset >= end {
            return Ok(page);
        }
        found.select_nth_unstable_by(end - 1, rank);
        let top = found.get_mut(..end).unwrap_or_default();
        top.sort_unstable_by(rank);
        page.hits = top
            .get(offset..)
            .unwrap_or_default()
            .iter()
            .map(|(score, entry)| SearchHit {
                score: *score,
                ..entry.hit.clone()
            })
            .collect();
        Ok(page)
    }

    /// The sets `query` intersects; `None` when one of them is empty, so
    /// nothing can match.
    fn constraints(&self, query: &SearchQuery) -> Result<Option<Vec<Constraint<'_>>>> {
        let words = query.q.as_deref().map(tokenize).unwrap_or_default();
        let words: BTreeSet<String> = words.into_iter().collect();
        if words.len() > MAX_QUERY_WORDS {
            return Err(Error::invalid(
                "q",
                format!("has more than {MAX_QUERY_WORDS} words"),
            ));
        }
        let mut constraints = Vec::new();
        for word in &words {
            match self.terms.get(word) {
                Some(postings) => constraints.push(Constraint::Term(postings)),
                None => return Ok(None),
            }
        }
        for facet in facets_of_query(query) {
            match self.facets.get(&facet) {
                Some(set) => constraints.push(Constraint::Facet(set)),
                None => return Ok(None),
            }
        }
        Ok(Some(constraints))
    }

    /// Every entry in all `constraints` (and, with purpose and access, with
    /// one offer allowing both), with its score.
    fn matches<'a>(
        &'a self,
        query: &SearchQuery,
        constraints: &[Constraint<'_>],
    ) -> Vec<(u32, &'a Entry)> {
        let purpose = query.purpose.as_deref().map(str::to_lowercase);
        let same_offer = |entry: &Entry| match (&purpose, query.access) {
            (Some(purpose), Some(access)) => entry
                .offers
                .iter()
                .any(|(purposes, mode)| *mode == access && purposes.contains(purpose)),
            _ => true,
        };
        let Some(smallest) = constraints.iter().min_by_key(|c| c.len()) else {
            return self
                .entries
                .iter()
                .flatten()
                .map(|entry| (0, entry))
                .collect();
        };
        smallest
            .slots()
            .filter_map(|slot| {
                let score = constraints.iter().try_fold(0_u32, |sum, c| {
                    c.weight(slot).map(|w| sum.saturating_add(w))
                })?;
                let entry = self.entry(slot)?;
                same_offer(entry).then_some((score, entry))
            })
            .collect()
    }

    fn entry(&self, slot: u32) -> Option<&Entry> {
        self.entries.get(slot as usize).and_then(Option::as_ref)
    }
}

/// Relevance first, then provider and id.
fn rank(a: &(u32, &Entry), b: &(u32, &Entry)) -> Ordering {
    b.0.cmp(&a.0)
        .then_with(|| a.1.hit.provider.cmp(&b.1.hit.provider))
        .then_with(|| a.1.hit.id.cmp(&b.1.hit.id))
}

fn facets_of_query(query: &SearchQuery) -> Vec<Facet> {
    let mut facets = Vec::new();
    if let Some(provider) = &query.provider {
        facets.push(Facet::Provider(provider.clone()));
    }
    if let Some(sector) = &query.sector {
        facets.push(Facet::Sector(sector.trim().to_lowercase()));
    }
    if let Some(column) = &query.column {
        facets.push(Facet::Column(column.trim().to_lowercase()));
    }
    if let Some(purpose) = &query.purpose {
        facets.push(Facet::Purpose(purpose.trim().to_lowercase()));
    }
    if let Some(access) = query.access {
        facets.push(Facet::Access(access_name(access)));
    }
    facets
}

fn weighted_terms(record: &DatasetRecord) -> HashMap<String, u32> {
    let mut weights: HashMap<String, u32> = HashMap::new();
    let fields = [
        (record.title.as_str(), TITLE_WEIGHT),
        (record.description.as_str(), DESCRIPTION_WEIGHT),
    ];
    let keywords = record.keywords.iter().map(|k| (k.as_str(), KEYWORD_WEIGHT));
    for (text, weight) in fields.into_iter().chain(keywords) {
        for token in tokenize(text) {
            let sum = weights.entry(token).or_default();
            *sum = sum.saturating_add(weight);
        }
    }
    weights
}

fn entry_of(record: &DatasetRecord) -> Entry {
    let mut purposes = BTreeSet::new();
    let mut access = Vec::new();
    let mut offers = Vec::new();
    for offer in &record.offers {
        let policy = &offer.policy;
        purposes.extend(policy.purposes.iter().cloned());
        if !access.contains(&policy.access) {
            access.push(policy.access);
        }
        let lower: BTreeSet<String> = policy.purposes.iter().map(|p| p.to_lowercase()).collect();
        offers.push((lower, policy.access));
    }
    let mut list = vec![Facet::Provider(record.provider.clone())];
    if let Some(sector) = &record.sector {
        list.push(Facet::Sector(sector.trim().to_lowercase()));
    }
    list.extend(
        record
            .columns
            .iter()
            .map(|c| Facet::Column(c.name.trim().to_lowercase())),
    );
    list.extend(
        offers
            .iter()
            .flat_map(|(p, _)| p.iter().cloned().map(Facet::Purpose)),
    );
    list.extend(access.iter().map(|a| Facet::Access(access_name(*a))));
    let mut seen = HashSet::new();
    let facets: Vec<Facet> = list
        .into_iter()
        .filter(|f| seen.insert(f.clone()))
        .collect();
    Entry {
        hit: SearchHit {
            provider: record.provider.clone(),
            id: record.id.clone(),
            version: record.version,
            title: record.title.clone(),
            sector: record.sector.clone(),
            keywords: record.keywords.clone(),
            purposes: purposes.into_iter().collect(),
            access,
            updated_at: record.updated_at,
            score: 0,
        },
        terms: weighted_terms(record).into_keys().collect(),
        facets,
        offers,
    }
}

/// The tokens of `text`: lower-case runs of letters and digits, each CJK
/// character on its own; runs longer than [`MAX_TOKEN_CHARS`] are dropped.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut length = 0_usize;
    let flush = |current: &mut String, length: &mut usize, tokens: &mut Vec<String>| {
        if !current.is_empty() && *length <= MAX_TOKEN_CHARS {
            tokens.push(std::mem::take(current));
        }
        current.clear();
        *length = 0;
    };
    for c in text.chars() {
        if is_cjk(c) {
            flush(&mut current, &mut length, &mut tokens);
            tokens.push(c.to_string());
        } else if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
            length += 1;
        } else {
            flush(&mut current, &mut length, &mut tokens);
        }
    }
    flush(&mut current, &mut length, &mut tokens);
    tokens
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'     // hiragana, katakana
        | '\u{3400}'..='\u{4DBF}'   // CJK extension A
        | '\u{4E00}'..='\u{9FFF}'   // CJK unified ideographs
        | '\u{F900}'..='\u{FAFF}'   // CJK compatibility ideographs
        | '\u{20000}'..='\u{2EBEF}' // CJK extensions B to F
    )
}

#[cfg(test)]
mod tests {
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
    fn record(provider: &SampleProvider, n: usize) -> DatasetRecord {
        let word = |k: usize| WORDS[(n * 7 + k * 3) % WORDS.len()];
        let (purpose, access) = if n.is_multiple_of(3) {
            ("billing", Access::Rows)
        } else {
            ("maintenance", Access::Aggregate)
        };
        let policy = provider.policy(&format!("d{n}"), &[purpose], access);
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
            offers: vec![OfferRecord {
                id: format!("o{n}"),
                issued_at: 0,
                endpoint: "http://p.example".into(),
                policy_hash: "sha256:0".into(),
                policy,
            }],
            published_at: Utc::now(),
            signer_key_id: "kid".into(),
        }
    }

    /// The naive answer: scan every record.
    fn scan(records: &[DatasetRecord], query: &SearchQuery) -> Vec<(u32, String, String)> {
        let words: BTreeSet<String> = query
            .q
            .as_deref()
            .map(tokenize)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut hits: Vec<(u32, String, String)> = records
            .iter()
            .filter_map(|r| {
                let weights = weighted_terms(r);
                let score = words
                    .iter()
                    .try_fold(0, |sum, w| weights.get(w).map(|x| sum + x))?;
                let lower = |s: &str| s.to_lowercase();
                let ok =
                    query.provider.as_ref().is_none_or(|p| *p == r.provider)
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
                            query.purpose.as_ref().is_none_or(|p| {
                                o.policy.purposes.iter().any(|x| lower(x) == lower(p))
                            }) && query.access.is_none_or(|a| o.policy.access == a)
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
        let mut records: Vec<DatasetRecord> =
            (0..60).map(|n| record(&providers[n % 2], n)).collect();
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
    fn tokenizes_words_and_cjk_characters() {
        assert_eq!(
            tokenize("Spindle-Vibration, 2024!"),
            ["spindle", "vibration", "2024"]
        );
        assert_eq!(tokenize("数据开放 list"), ["数", "据", "开", "放", "list"]);
        assert!(tokenize(&"x".repeat(MAX_TOKEN_CHARS + 1)).is_empty());
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
}
