//! What durable replay protection costs (a benchmark, not a test): request
//! tokens verified per second by a `TokenVerifier` whose replay guard is the
//! in-memory one (the connector before replay ids were durable) or the sled
//! one in a temporary folder (each accepted token flushed before the call
//! returns), with 1, 4, 16 and 64 threads verifying at once, as the
//! connector's blocking pool does under load.
//!
//! Run: `cargo bench -p dataspace-connector --bench replay`
//! (`BENCH_TOKENS` sets the tokens verified per scenario, default 6400).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::too_many_lines)]

use std::sync::Arc;
use std::time::Instant;

use connector::replay::{REPLAY_TREE, SledReplayGuard};
use policy::credential::{Attributes, Authority, Membership};
use policy::keys::KeyPair;
use policy::replay::{InMemoryReplayGuard, ReplayGuard};
use policy::token::{TokenVerifier, issue_request_token};

fn main() {
    let tokens: usize = std::env::var("BENCH_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6400);
    let authority = Authority::new("authority", KeyPair::generate().unwrap());
    let key = KeyPair::generate().unwrap();
    let member = Membership {
        participant_id: "sme-south".into(),
        name: "sme-south".into(),
        public_key: key.public_key(),
        attributes: Attributes::default(),
    };
    let now = chrono::Utc::now().timestamp();
    let credential: Arc<str> = authority.issue(&member, now, 3600).unwrap().into();
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let sled_guard =
        SledReplayGuard::open(db.open_tree(REPLAY_TREE).unwrap(), dir.path(), now).unwrap();
    let guards: [(&str, Arc<dyn ReplayGuard>); 2] = [
        ("in memory", Arc::new(InMemoryReplayGuard::new())),
        ("sled, flushed", Arc::new(sled_guard)),
    ];
    println!("| replay guard | threads | tokens verified per second |");
    println!("|---|---|---|");
    for (name, guard) in guards {
        let verifier = Arc::new(TokenVerifier::new(
            authority.trusted(),
            "platform-north",
            guard,
        ));
        for threads in [1, 4, 16, 64] {
            let rate = run(&verifier, &key, &credential, threads, tokens);
            println!("| {name} | {threads} | {rate:.0} |");
        }
    }
}

/// Tokens verified per second by `threads` threads sharing `total` tokens,
/// signed beforehand so that only verification is timed.
fn run(
    verifier: &Arc<TokenVerifier>,
    key: &KeyPair,
    credential: &Arc<str>,
    threads: usize,
    total: usize,
) -> f64 {
    let now = chrono::Utc::now().timestamp();
    let share = total / threads;
    let batches: Vec<Vec<String>> = (0..threads)
        .map(|_| {
            (0..share)
                .map(|_| issue_request_token(key, "sme-south", "platform-north", now, 120).unwrap())
                .collect()
        })
        .collect();
    let started = Instant::now();
    let handles: Vec<_> = batches
        .into_iter()
        .map(|tokens| {
            let (verifier, credential) = (Arc::clone(verifier), Arc::clone(credential));
            std::thread::spawn(move || {
                for token in tokens {
                    verifier.verify(&token, &credential, now).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    (share * threads) as f64 / started.elapsed().as_secs_f64()
}
