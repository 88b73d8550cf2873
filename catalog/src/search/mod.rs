//! Search: an inverted index kept in memory, rebuilt from the store at
//! start and updated on every publication and withdrawal.
//!
//! Words of the title (weight 3), keywords (2) and description (1) map to
//! the datasets holding them (`token -> [(slot, weight)]`); filters
//! (provider, sector, column, offered purpose, access mode) are posting
//! lists of their own (`facet -> [slot]`). A query walks the shortest list
//! it names and seeks the others, so it never scans every entry; a query
//! that names nothing lists the datasets in key order. Every word must
//! match; hits are ordered by relevance (the sum of the weights), then
//! provider and id, so pages are stable.
//!
//! Tokens are lower-case runs of letters and digits; each CJK character is
//! a token of its own, so `开放` finds `数据开放清单`.

mod postings;
mod text;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use policy::model::Access;
use serde::{Deserialize, Serialize};

use self::postings::{Cursor, Postings};
pub use self::text::{MAX_TERM_WEIGHT, MAX_TOKEN_CHARS, tokenize};
use crate::model::{DatasetKey, DatasetRecord};
use crate::{Error, Result};

/// Page size when a query gives none.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// Most words in a query.
pub const MAX_QUERY_WORDS: usize = 32;
/// Highest score: every word of a query with its highest weight.
const MAX_SCORE: u32 = MAX_QUERY_WORDS as u32 * text::MAX_TERM_WEIGHT;

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

impl SearchQuery {
    /// The distinct words of `q`, as the index keeps them (see
    /// [`tokenize`]); none without `q`.
    pub fn words(&self) -> BTreeSet<String> {
        self.q
            .as_deref()
            .map(tokenize)
            .unwrap_or_default()
            .into_iter()
            .collect()
    }
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
    /// One offer allows both this purpose and this access mode.
    Offer(String, &'static str),
}

fn access_name(access: Access) -> &'static str {
    match access {
        Access::Aggregate => "aggregate",
        Access::Rows => "rows",
    }
}

/// What the index keeps of one dataset.
#[derive(Debug)]
struct Entry {
    hit: SearchHit,
    terms: Vec<(String, u32)>,
    facets: Vec<Facet>,
}

/// The first bytes of `provider \0 id`, zero-padded: ordering them orders
/// the keys, except when they are equal (then the full keys decide).
type SortPrefix = [u8; 32];

fn sort_prefix(key: &DatasetKey) -> SortPrefix {
    let mut prefix = [0; 32];
    let bytes = key.provider.bytes().chain([0]).chain(key.id.bytes());
    for (place, byte) in prefix.iter_mut().zip(bytes) {
        *place = byte;
    }
    prefix
}

/// A dataset found, with what ranking needs inline.
struct Candidate {
    score: u32,
    prefix: SortPrefix,
    slot: u32,
}

/// The inverted index over the published datasets.
#[derive(Debug, Default)]
pub struct SearchIndex {
    /// By slot; `None` once removed. Slots are never reused until
    /// [`SearchIndex::compact`] renumbers them.
    entries: Vec<Option<Box<Entry>>>,
    prefixes: Vec<SortPrefix>,
    slots: BTreeMap<DatasetKey, u32>,
    terms: HashMap<String, Postings>,
    facets: HashMap<Facet, Postings>,
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
        self.place(key, Box::new(entry_of(record)));
    }

    /// Puts `entry` in a new slot, after every other.
    fn place(&mut self, key: DatasetKey, entry: Box<Entry>) {
        let Ok(slot) = u32::try_from(self.entries.len()) else {
            return self.compact_then_place(key, entry);
        };
        for (term, weight) in &entry.terms {
            self.terms
                .entry(term.clone())
                .or_default()
                .push(slot, *weight);
        }
        for facet in &entry.facets {
            self.facets.entry(facet.clone()).or_default().push(slot, 0);
        }
        self.entries.push(Some(entry));
        self.prefixes.push(sort_prefix(&key));
        self.slots.insert(key, slot);
    }

    /// When the slots run out: renumber, then place. (An index of more
    /// than 2^32 live datasets drops the entry.)
    fn compact_then_place(&mut self, key: DatasetKey, entry: Box<Entry>) {
        if self.entries.len() > self.slots.len() {
            self.compact();
            self.place(key, entry);
        }
    }

    /// Removes a dataset; its words and facets no longer find it.
    pub fn remove(&mut self, key: &DatasetKey) {
        let Some(slot) = self.slots.remove(key) else {
            return;
        };
        let Some(entry) = self.entries.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        let entries = &self.entries;
        let alive = |s: u32| entries.get(s as usize).is_some_and(Option::is_some);
        for (term, _) in &entry.terms {
            if let Some(postings) = self.terms.get_mut(term) {
                postings.bury(alive);
                if postings.live_len() == 0 {
                    self.terms.remove(term);
                }
            }
        }
        for facet in &entry.facets {
            if let Some(postings) = self.facets.get_mut(facet) {
                postings.bury(alive);
                if postings.live_len() == 0 {
                    self.facets.remove(facet);
                }
            }
        }
        if self.entries.len() > 2 * self.slots.len() + 1024 {
            self.compact();
        }
    }

    /// Renumbers the live entries in key order, dropping dead slots.
    fn compact(&mut self) {
        let mut entries = std::mem::take(&mut self.entries);
        let slots = std::mem::take(&mut self.slots);
        *self = Self::default();
        for (key, slot) in slots {
            if let Some(entry) = entries.get_mut(slot as usize).and_then(Option::take) {
                self.place(key, entry);
            }
        }
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
            .map(Postings::items)
            .unwrap_or_default()
            .iter()
            .filter_map(|(slot, _)| self.entry(*slot))
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
        let Some(mut lists) = self.lists(query)? else {
            return Ok(page);
        };
        if lists.is_empty() {
            page.total = self.len();
            page.hits = self.in_key_order(offset, limit);
            return Ok(page);
        }
        lists.sort_by_key(|list| list.live_len());
        let found = self.intersect(&lists);
        page.total = found.len();
        let end = offset.saturating_add(limit).min(found.len());
        if offset >= end {
            return Ok(page);
        }
        let mut top = self.best(&found, end);
        let rank = |a: &Candidate, b: &Candidate| self.rank(a, b);
        top.select_nth_unstable_by(end - 1, rank);
        let top = top.get_mut(..end).unwrap_or_default();
        top.sort_unstable_by(rank);
        page.hits = top
            .get(offset..)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| self.hit(c.slot, c.score))
            .collect();
        Ok(page)
    }

    /// The matches that can rank among the first `end`: those scoring at
    /// least the `end`-th best score (found by counting scores, which are
    /// small), ready for ranking.
    fn best(&self, found: &[(u32, u32)], end: usize) -> Vec<Candidate> {
        let mut counts = vec![0_usize; MAX_SCORE as usize + 1];
        for (_, score) in found {
            if let Some(count) = counts.get_mut(*score as usize) {
                *count += 1;
            }
        }
        let mut seen = 0;
        let threshold = (0..=MAX_SCORE)
            .rev()
            .find(|score| {
                seen += counts.get(*score as usize).copied().unwrap_or(0);
                seen >= end
            })
            .unwrap_or(0);
        found
            .iter()
            .filter(|(_, score)| *score >= threshold)
            .map(|(slot, score)| Candidate {
                score: *score,
                prefix: self
                    .prefixes
                    .get(*slot as usize)
                    .copied()
                    .unwrap_or_default(),
                slot: *slot,
            })
            .collect()
    }

    /// The posting lists `query` names; `None` when one of them is missing,
    /// so nothing can match.
    fn lists(&self, query: &SearchQuery) -> Result<Option<Vec<&Postings>>> {
        let words = query.words();
        if words.len() > MAX_QUERY_WORDS {
            return Err(Error::invalid(
                "q",
                format!("has more than {MAX_QUERY_WORDS} words"),
            ));
        }
        let mut lists = Vec::new();
        for word in &words {
            match self.terms.get(word) {
                Some(postings) => lists.push(postings),
                None => return Ok(None),
            }
        }
        for facet in facets_of_query(query) {
            match self.facets.get(&facet) {
                Some(postings) => lists.push(postings),
                None => return Ok(None),
            }
        }
        Ok(Some(lists))
    }

    /// The live slots in all `lists` (shortest first), with their scores.
    fn intersect(&self, lists: &[&Postings]) -> Vec<(u32, u32)> {
        let Some((driver, others)) = lists.split_first() else {
            return Vec::new();
        };
        let driver_len = driver.items().len();
        let mut cursors: Vec<Cursor<'_>> =
            others.iter().map(|l| Cursor::new(l, driver_len)).collect();
        let mut found = Vec::new();
        for (slot, weight) in driver.items() {
            if self.entry(*slot).is_none() {
                continue;
            }
            let score = cursors.iter_mut().try_fold(*weight, |sum, cursor| {
                cursor.seek(*slot).map(|w| sum.saturating_add(w))
            });
            if let Some(score) = score {
                found.push((*slot, score.min(MAX_SCORE)));
            }
        }
        found
    }

    /// Relevance first, then provider and id.
    fn rank(&self, a: &Candidate, b: &Candidate) -> Ordering {
        b.score
            .cmp(&a.score)
            .then_with(|| a.prefix.cmp(&b.prefix))
            .then_with(|| {
                let key = |slot| self.entry(slot).map(|e| (&e.hit.provider, &e.hit.id));
                key(a.slot).cmp(&key(b.slot))
            })
    }

    /// A page of every dataset, in key order.
    fn in_key_order(&self, offset: usize, limit: usize) -> Vec<SearchHit> {
        self.slots
            .values()
            .skip(offset)
            .take(limit)
            .filter_map(|slot| self.hit(*slot, 0))
            .collect()
    }

    fn hit(&self, slot: u32, score: u32) -> Option<SearchHit> {
        self.entry(slot).map(|entry| SearchHit {
            score,
            ..entry.hit.clone()
        })
    }

    fn entry(&self, slot: u32) -> Option<&Entry> {
        self.entries.get(slot as usize).and_then(|e| e.as_deref())
    }
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
    let purpose = query.purpose.as_ref().map(|p| p.trim().to_lowercase());
    match (purpose, query.access) {
        (Some(purpose), Some(access)) => facets.push(Facet::Offer(purpose, access_name(access))),
        (Some(purpose), None) => facets.push(Facet::Purpose(purpose)),
        (None, Some(access)) => facets.push(Facet::Access(access_name(access))),
        (None, None) => {}
    }
    facets
}

fn entry_of(record: &DatasetRecord) -> Entry {
    let mut purposes = BTreeSet::new();
    let mut access = Vec::new();
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
    for offer in &record.offers {
        let policy = &offer.policy;
        let mode = access_name(policy.access);
        purposes.extend(policy.purposes.iter().cloned());
        if !access.contains(&policy.access) {
            access.push(policy.access);
        }
        list.push(Facet::Access(mode));
        for purpose in &policy.purposes {
            let purpose = purpose.trim().to_lowercase();
            list.push(Facet::Purpose(purpose.clone()));
            list.push(Facet::Offer(purpose, mode));
        }
    }
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
        terms: text::weighted_terms(record),
        facets,
    }
}

#[cfg(test)]
pub(crate) mod tests;
