//! Catalog benchmark: 100,000 published datasets (override with
//! `CATALOG_BENCH_DATASETS`).
//!
//! - publication throughput with full signature verification (description,
//!   offer, embedded policy), through the domain API on one thread and on
//!   all cores, and through HTTP with concurrent clients;
//! - search latency p50/p95/p99 over a mix of queries, in process and over
//!   HTTP;
//! - restart time: reopen the sled store and rebuild the index.
//!
//! Run: `cargo bench -p dataspace-catalog --bench catalog`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use catalog::client::CatalogClient;
use catalog::publish::verify_publication;
use catalog::sample::{SampleProvider, column};
use catalog::search::SearchQuery;
use catalog::server::RunningCatalog;
use catalog::store::SledStore;
use catalog::{Catalog, CatalogSettings, DatasetDescription};
use chrono::Utc;
use policy::credential::{Authority, TrustedAuthority};
use policy::keys::KeyPair;
use policy::model::{Access, ColumnClass};

const PROVIDERS: usize = 100;
const COMMON: [&str; 24] = [
    "spindle",
    "vibration",
    "temperature",
    "gearbox",
    "bearing",
    "torque",
    "press",
    "weld",
    "paint",
    "energy",
    "quality",
    "scrap",
    "cycle",
    "downtime",
    "pressure",
    "humidity",
    "conveyor",
    "robot",
    "laser",
    "casting",
    "milling",
    "turbine",
    "pump",
    "valve",
];
const SECTORS: [&str; 8] = [
    "manufacturing",
    "automotive",
    "energy",
    "chemicals",
    "logistics",
    "aerospace",
    "food",
    "textiles",
];
const PURPOSES: [&str; 6] = [
    "predictive-maintenance",
    "quality-analysis",
    "demand-planning",
    "energy-optimisation",
    "research",
    "benchmarking",
];
const HTTP_UPDATES: usize = 5_000;
const HTTP_CLIENTS: usize = 16;
const SEARCHES: usize = 2_000;

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A word: common ones often, else one of 20,000 rare ones.
    fn word(&mut self) -> String {
        match self.below(3) {
            0 => format!("w{}", self.below(20_000)),
            _ => COMMON[self.below(COMMON.len())].to_owned(),
        }
    }
}

fn description(provider: &SampleProvider, n: usize, version: u64) -> DatasetDescription {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (n as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let id = format!("ds-{n:06}");
    let purposes = [
        PURPOSES[rng.below(PURPOSES.len())],
        PURPOSES[(n + 1) % PURPOSES.len()],
    ];
    let purposes: Vec<&str> = if purposes[0] == purposes[1] {
        vec![purposes[0]]
    } else {
        purposes.to_vec()
    };
    let access = if n.is_multiple_of(4) {
        Access::Rows
    } else {
        Access::Aggregate
    };
    let mut policy = provider.policy(&id, &purposes, access);
    let extra = format!("c{}", rng.below(40));
    policy.columns.insert(extra.clone(), ColumnClass::Measure);
    let offer = provider.offer(&format!("{id}-offer"), policy).unwrap();
    let title: Vec<String> = (0..3).map(|_| rng.word()).collect();
    let words: Vec<String> = (0..10).map(|_| rng.word()).collect();
    let keywords: Vec<String> = (0..3).map(|_| rng.word()).collect();
    let mut columns = vec![
        column("plant", "Utf8", ColumnClass::Dimension),
        column("vibration", "Float64", ColumnClass::Measure),
    ];
    if access == Access::Aggregate {
        columns.insert(0, column("machine_id", "Utf8", ColumnClass::Entity));
    }
    columns.push(column(&extra, "Float64", ColumnClass::Measure));
    DatasetDescription {
        id,
        provider: provider.id.clone(),
        version,
        title: title.join(" "),
        description: words.join(" "),
        keywords,
        sector: Some(SECTORS[n % SECTORS.len()].to_owned()),
        columns,
        row_count: rng.next() % 10_000_000,
        updated_at: Utc::now(),
        offers: vec![offer],
        endpoint: provider.endpoint.clone(),
    }
}

/// Signs descriptions `range` (version `version`) on all cores.
fn sign_all(
    providers: &[SampleProvider],
    range: std::ops::Range<usize>,
    version: u64,
) -> Vec<String> {
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    let items: Vec<usize> = range.collect();
    let chunk = items.len().div_ceil(cores).max(1);
    thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|n| {
                            let provider = &providers[n % providers.len()];
                            provider
                                .sign(description(provider, *n, version))
                                .unwrap()
                                .jws()
                                .to_owned()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn open(dir: &std::path::Path, trusted: &TrustedAuthority) -> Catalog {
    let store = SledStore::open(dir).unwrap();
    Catalog::open(Arc::new(store), trusted.clone(), CatalogSettings::default()).unwrap()
}

fn rate(count: usize, elapsed: Duration) -> String {
    format!(
        "{count} in {:.2} s = {:.0}/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    )
}

fn publish_sequential(catalog: &Catalog, signed: &[String]) -> Duration {
    let start = Instant::now();
    for jws in signed {
        catalog.publish(jws).unwrap();
    }
    start.elapsed()
}

fn publish_parallel(catalog: &Catalog, signed: &[String]) -> Duration {
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    let start = Instant::now();
    thread::scope(|scope| {
        for part in signed.chunks(signed.len().div_ceil(cores).max(1)) {
            scope.spawn(move || {
                part.iter()
                    .for_each(|jws| drop(catalog.publish(jws).unwrap()))
            });
        }
    });
    start.elapsed()
}

fn queries(count: usize) -> Vec<SearchQuery> {
    let mut rng = Rng(42);
    (0..count)
        .map(|i| {
            let mut q = SearchQuery::default();
            match i % QUERY_KINDS.len() {
                0 => q.q = Some(COMMON[rng.below(COMMON.len())].to_owned()),
                1 => {
                    q.q = Some(format!(
                        "{} {}",
                        COMMON[rng.below(COMMON.len())],
                        COMMON[rng.below(COMMON.len())]
                    ))
                }
                2 => q.q = Some(format!("w{}", rng.below(20_000))),
                3 => {
                    q.q = Some(COMMON[rng.below(COMMON.len())].to_owned());
                    q.sector = Some(SECTORS[rng.below(SECTORS.len())].to_owned());
                }
                4 => {
                    q.purpose = Some(PURPOSES[rng.below(PURPOSES.len())].to_owned());
                    q.access = Some(Access::Rows);
                }
                5 => q.column = Some(format!("c{}", rng.below(40))),
                _ => q.offset = Some(rng.below(1_000)),
            }
            q.limit = Some(20);
            q
        })
        .collect()
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at =
        |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    format!(
        "p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        at(0.50),
        at(0.95),
        at(0.99),
        at(1.0)
    )
}

const QUERY_KINDS: [&str; 7] = [
    "one common word",
    "two common words",
    "one rare word",
    "common word + sector",
    "purpose + access",
    "column",
    "no filter, offset",
];

fn search_in_process(catalog: &Catalog, queries: &[SearchQuery]) -> (Vec<Duration>, usize) {
    let mut hits = 0;
    let samples = queries
        .iter()
        .map(|q| {
            let start = Instant::now();
            hits += catalog.search(q).unwrap().total;
            start.elapsed()
        })
        .collect();
    (samples, hits)
}

/// Latency per kind of query (the kinds cycle through `queries`).
fn by_kind(samples: &[Duration]) {
    for (kind, name) in QUERY_KINDS.iter().enumerate() {
        let own: Vec<Duration> = samples
            .iter()
            .skip(kind)
            .step_by(QUERY_KINDS.len())
            .copied()
            .collect();
        println!("  {name}: {}", percentiles(own));
    }
}

async fn http_phase(catalog: Arc<Catalog>, updates: Vec<String>, queries: &[SearchQuery]) {
    let running = RunningCatalog::start(catalog, "127.0.0.1:0", 1 << 20)
        .await
        .unwrap();
    let client = CatalogClient::new(&running.url()).unwrap();
    let total = updates.len();
    let per_client = total.div_ceil(HTTP_CLIENTS);
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut updates = updates;
    while !updates.is_empty() {
        let part: Vec<String> = updates.drain(..per_client.min(updates.len())).collect();
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for jws in part {
                client.publish_jws(&jws).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    println!(
        "publication over HTTP ({HTTP_CLIENTS} clients, updates): {}",
        rate(total, start.elapsed())
    );
    let mut samples = Vec::with_capacity(queries.len());
    for q in queries {
        let start = Instant::now();
        client.search(q).await.unwrap();
        samples.push(start.elapsed());
    }
    println!(
        "search over HTTP ({} queries): {}",
        queries.len(),
        percentiles(samples)
    );
    running.stop().await.unwrap();
}

fn main() {
    let datasets: usize = std::env::var("CATALOG_BENCH_DATASETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("authority", KeyPair::generate().unwrap());
    let trusted = authority.trusted();
    let providers: Vec<SampleProvider> = (0..PROVIDERS)
        .map(|i| SampleProvider::new(&format!("provider-{i:03}")).unwrap())
        .collect();
    let catalog = open(dir.path(), &trusted);
    for provider in &providers {
        catalog
            .register(
                &authority
                    .issue(&provider.membership(), Utc::now().timestamp(), 86_400)
                    .unwrap(),
            )
            .unwrap();
    }

    let start = Instant::now();
    let signed = sign_all(&providers, 0..datasets, 1);
    let updates = sign_all(&providers, 0..HTTP_UPDATES.min(datasets), 2);
    println!(
        "signed {} descriptions (3 signatures each) in {:.2} s",
        signed.len() + updates.len(),
        start.elapsed().as_secs_f64()
    );

    let sample = &signed[..signed.len().min(10_000)];
    let start = Instant::now();
    for jws in sample {
        verify_publication(jws, |id| catalog.participant(id), Utc::now()).unwrap();
    }
    println!(
        "verification alone (3 signatures, no store, 1 thread): {}",
        rate(sample.len(), start.elapsed())
    );

    let half = datasets / 2;
    let elapsed = publish_sequential(&catalog, &signed[..half]);
    println!("publication, domain API, 1 thread: {}", rate(half, elapsed));
    let elapsed = publish_parallel(&catalog, &signed[half..]);
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "publication, domain API, {cores} threads: {}",
        rate(datasets - half, elapsed)
    );
    assert_eq!(catalog.len(), datasets);

    let queries = queries(SEARCHES);
    let (samples, hits) = search_in_process(&catalog, &queries);
    println!(
        "search, domain API ({SEARCHES} queries over {datasets} datasets, {:.0} hits on average): {}",
        hits as f64 / SEARCHES as f64,
        percentiles(samples.clone())
    );
    by_kind(&samples);

    let catalog = Arc::new(catalog);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(http_phase(
        Arc::clone(&catalog),
        updates,
        &queries[..SEARCHES / 2],
    ));
    catalog.flush().unwrap();
    drop(catalog);

    let start = Instant::now();
    let reopened = open(dir.path(), &trusted);
    let elapsed = start.elapsed();
    assert_eq!(reopened.len(), datasets);
    println!(
        "restart (reopen sled, rebuild the index of {datasets} datasets): {:.2} s",
        elapsed.as_secs_f64()
    );
    let (samples, _) = search_in_process(&reopened, &queries);
    println!("search after restart: {}", percentiles(samples));
}
