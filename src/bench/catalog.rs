//! Catalog figures in the same report: publication rate with full signature
//! verification, search latency and restart time at a given catalog size
//! (the full 100,000-dataset run is `cargo bench -p dataspace-catalog`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use catalog::sample::{COMMON_WORDS, SampleProvider};
use catalog::search::SearchQuery;
use catalog::store::SledStore;
use catalog::{Catalog, CatalogSettings};
use chrono::Utc;
use policy::credential::{Authority, TrustedAuthority};
use policy::keys::KeyPair;
use serde::Serialize;

const PROVIDERS: usize = 20;
/// The `n`th of the catalog's common sample words (those of the generated
/// titles and of the searches), round and round.
fn word(n: usize) -> &'static str {
    COMMON_WORDS[n % COMMON_WORDS.len()]
}

/// The catalog figures.
#[derive(Debug, Clone, Serialize)]
pub struct CatalogFigures {
    /// Datasets published.
    pub datasets: usize,
    /// Publications per second (3 signatures verified each, durable store),
    /// on all cores.
    pub publications_per_second: f64,
    /// Search latency, median, milliseconds.
    pub search_p50_ms: f64,
    /// Search latency, 95th percentile, milliseconds.
    pub search_p95_ms: f64,
    /// Seconds to reopen the store and rebuild the index.
    pub restart_seconds: f64,
}

fn open(dir: &std::path::Path, trusted: &TrustedAuthority) -> Result<Catalog> {
    let store = SledStore::open(dir)?;
    Ok(Catalog::open(
        Arc::new(store),
        trusted.clone(),
        CatalogSettings::default(),
    )?)
}

/// Signed descriptions of datasets `0..count`, signed on all cores.
fn sign_all(providers: &[SampleProvider], count: usize) -> Result<Vec<String>> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let items: Vec<usize> = (0..count).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(count.div_ceil(cores).max(1))
            .map(|part| {
                scope.spawn(move || -> Result<Vec<String>> {
                    part.iter()
                        .map(|n| {
                            let provider = &providers[n % providers.len()];
                            let words = [word(*n), word(n / 7)];
                            let title = format!("{} {} line {n}", words[0], words[1]);
                            let description =
                                provider.description(&format!("ds_{n:06}"), &title, &words)?;
                            Ok(provider.sign(description)?.jws().to_owned())
                        })
                        .collect()
                })
            })
            .collect();
        let mut signed = Vec::new();
        for handle in handles {
            signed.extend(
                handle
                    .join()
                    .map_err(|_| anyhow!("a signing thread failed"))??,
            );
        }
        Ok(signed)
    })
}

/// Publishes `count` datasets, then searches and restarts.
pub fn figures(count: usize) -> Result<CatalogFigures> {
    let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
    let authority = Authority::new("authority", KeyPair::generate()?);
    let trusted = authority.trusted();
    let providers = (0..PROVIDERS)
        .map(|i| SampleProvider::new(&format!("provider-{i:03}")))
        .collect::<Result<Vec<_>, _>>()?;
    let catalog = open(dir.path(), &trusted)?;
    for provider in &providers {
        catalog.register(&authority.issue(
            &provider.membership(),
            Utc::now().timestamp(),
            86_400,
        )?)?;
    }
    let signed = sign_all(&providers, count)?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let start = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = signed
            .chunks(signed.len().div_ceil(cores).max(1))
            .map(|part| {
                let catalog = &catalog;
                scope.spawn(move || -> Result<()> {
                    for jws in part {
                        catalog.publish(jws)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow!("a publishing thread failed"))??;
        }
        Ok(())
    })?;
    let publish = start.elapsed();
    let mut latencies = search_latencies(&catalog)?;
    catalog.flush()?;
    drop(catalog);
    let start = Instant::now();
    let reopened = open(dir.path(), &trusted)?;
    let restart = start.elapsed();
    if reopened.len() != count {
        return Err(anyhow!(
            "the catalog reopened with {} of {count} datasets",
            reopened.len()
        ));
    }
    latencies.sort();
    let at = |q: f64| {
        let i = ((latencies.len().saturating_sub(1)) as f64 * q).round();
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "an index in range"
        )]
        let i = i as usize;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    Ok(CatalogFigures {
        datasets: count,
        publications_per_second: count as f64 / publish.as_secs_f64().max(1e-9),
        search_p50_ms: at(0.5),
        search_p95_ms: at(0.95),
        restart_seconds: restart.as_secs_f64(),
    })
}

/// Latencies of a mix of searches: one word, two words, word and provider.
fn search_latencies(catalog: &Catalog) -> Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    for i in 0..600 {
        let mut query = SearchQuery::default();
        match i % 3 {
            0 => query.q = Some(word(i).to_owned()),
            1 => query.q = Some(format!("{} {}", word(i), word(i / 3))),
            _ => {
                query.q = Some(word(i).to_owned());
                query.provider = Some(format!("provider-{:03}", i % PROVIDERS));
            }
        }
        query.limit = Some(20);
        let start = Instant::now();
        catalog.search(&query)?;
        latencies.push(start.elapsed());
    }
    Ok(latencies)
}
