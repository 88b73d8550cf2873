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

#![warn(clippy::too_many_lines)]
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
use catalog::sample::{
    COMMON_WORDS, EXTRA_COLUMNS, PURPOSES, RARE_WORDS, SECTORS, SampleRng, register_all,
    sample_providers, sign_numbered,
};
use catalog::search::SearchQuery;
use catalog::server::RunningCatalog;
use catalog::store::SledStore;
use catalog::{Catalog, CatalogSettings};
use chrono::Utc;
use policy::credential::{Authority, TrustedAuthority};
use policy::keys::KeyPair;
use policy::model::Access;

const PROVIDERS: usize = 100;
const HTTP_UPDATES: usize = 5_000;
const HTTP_CLIENTS: usize = 16;
const SEARCHES: usize = 2_000;

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
    let mut rng = SampleRng::new(42);
    (0..count)
        .map(|i| {
            let mut q = SearchQuery::default();
            match i % QUERY_KINDS.len() {
                0 => q.q = Some(COMMON_WORDS[rng.below(COMMON_WORDS.len())].to_owned()),
                1 => {
                    q.q = Some(format!(
                        "{} {}",
                        COMMON_WORDS[rng.below(COMMON_WORDS.len())],
                        COMMON_WORDS[rng.below(COMMON_WORDS.len())]
                    ))
                }
                2 => q.q = Some(format!("w{}", rng.below(RARE_WORDS))),
                3 => {
                    q.q = Some(COMMON_WORDS[rng.below(COMMON_WORDS.len())].to_owned());
                    q.sector = Some(SECTORS[rng.below(SECTORS.len())].to_owned());
                }
                4 => {
                    q.purpose = Some(PURPOSES[rng.below(PURPOSES.len())].to_owned());
                    q.access = Some(Access::Rows);
                }
                5 => q.column = Some(format!("c{}", rng.below(EXTRA_COLUMNS))),
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

/// A catalog in a temporary folder with [`PROVIDERS`] registered
/// providers, and the authority that admitted them.
struct Setup {
    dir: tempfile::TempDir,
    trusted: TrustedAuthority,
    providers: Vec<catalog::sample::SampleProvider>,
    catalog: Catalog,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new("authority", KeyPair::generate().unwrap());
    let trusted = authority.trusted();
    let providers = sample_providers(PROVIDERS).unwrap();
    let catalog = open(dir.path(), &trusted);
    register_all(&catalog, &authority, &providers).unwrap();
    Setup {
        dir,
        trusted,
        providers,
        catalog,
    }
}

/// Verification alone, then publication on one thread and on all cores.
fn publication_phase(catalog: &Catalog, signed: &[String]) {
    let sample = &signed[..signed.len().min(10_000)];
    let start = Instant::now();
    for jws in sample {
        verify_publication(jws, |id| catalog.participant(id), Utc::now()).unwrap();
    }
    println!(
        "verification alone (3 signatures, no store, 1 thread): {}",
        rate(sample.len(), start.elapsed())
    );
    let half = signed.len() / 2;
    let elapsed = publish_sequential(catalog, &signed[..half]);
    println!("publication, domain API, 1 thread: {}", rate(half, elapsed));
    let elapsed = publish_parallel(catalog, &signed[half..]);
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "publication, domain API, {cores} threads: {}",
        rate(signed.len() - half, elapsed)
    );
    assert_eq!(catalog.len(), signed.len());
}

/// Reopens the store in `dir` and searches again.
fn restart_phase(
    dir: &std::path::Path,
    trusted: &TrustedAuthority,
    datasets: usize,
    queries: &[SearchQuery],
) {
    let start = Instant::now();
    let reopened = open(dir, trusted);
    let elapsed = start.elapsed();
    assert_eq!(reopened.len(), datasets);
    println!(
        "restart (reopen sled, rebuild the index of {datasets} datasets): {:.2} s",
        elapsed.as_secs_f64()
    );
    let (samples, _) = search_in_process(&reopened, queries);
    println!("search after restart: {}", percentiles(samples));
}

fn main() {
    let datasets: usize = std::env::var("CATALOG_BENCH_DATASETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let Setup {
        dir,
        trusted,
        providers,
        catalog,
    } = setup();
    let start = Instant::now();
    let signed = sign_numbered(&providers, 0..datasets, 1).unwrap();
    let updates = sign_numbered(&providers, 0..HTTP_UPDATES.min(datasets), 2).unwrap();
    println!(
        "signed {} descriptions (3 signatures each) in {:.2} s",
        signed.len() + updates.len(),
        start.elapsed().as_secs_f64()
    );
    publication_phase(&catalog, &signed);

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
    // Connection tasks the server left in the runtime still hold the
    // catalog, and with it the store's lock: end them before reopening.
    drop(runtime);
    drop(catalog);
    restart_phase(dir.path(), &trusted, datasets, &queries);
}
