//! Crash safety: the provider is killed with SIGKILL while queries run; after
//! a restart its audit chain verifies and every query that got a 200 (and a
//! receipt) has its record, with the hash the receipt names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connector::answer::AnswerFormat;
use connector::audit::{AuditStore, SledAuditStore, verify_home};
use connector::client::HttpClient;
use hyper::Method;
use support::{World, provider, start};

fn spawn_provider(home: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dataspace"))
        .args(["connector", "serve", "--home"])
        .arg(home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_healthy(url: &str) {
    let http = HttpClient::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let reply = http
            .send(Method::GET, &format!("{url}/healthz"), &[], None)
            .await;
        if reply.is_ok_and(|r| r.status == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the provider did not come up at {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_provider_keeps_every_answered_query_in_its_chain() {
    let world = World::new();
    let in_process = provider(&world, |_| {}).await;
    let (home, url) = (in_process.home.clone(), in_process.url.clone());
    let consumer = start(&world, "sme-south", vec![], "sme").await;
    let contract = consumer
        .contract(&url, "telemetry_quality", "quality-analysis")
        .await;
    in_process.stop().await;

    let mut child = spawn_provider(&home);
    wait_healthy(&url).await;
    // Four clients query without pause; the provider is killed while their
    // queries are in flight.
    let receipts = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (c, id, receipts) = (
                Arc::clone(&consumer.connector),
                contract.id.clone(),
                Arc::clone(&receipts),
            );
            tokio::spawn(async move {
                let sql = "SELECT site, count(*) FROM telemetry GROUP BY site";
                while let Ok(answer) = c.query_remote(&id, sql, AnswerFormat::Arrow).await {
                    receipts
                        .lock()
                        .unwrap()
                        .push(answer.receipt.payload().clone());
                }
            })
        })
        .collect();
    let started = Instant::now();
    while receipts.lock().unwrap().len() < 40 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL, with queries in flight
    let _ = child.wait();
    for client in clients {
        client.await.unwrap();
    }
    let receipts = receipts.lock().unwrap().clone();
    assert!(
        receipts.len() >= 40,
        "only {} queries were answered",
        receipts.len()
    );

    let report = verify_home(&home).unwrap();
    assert!(report.first_broken.is_none(), "{report}");
    {
        let store = SledAuditStore::open(&home.join("audit")).unwrap();
        for receipt in &receipts {
            let record = store
                .get(receipt.audit_seq)
                .unwrap()
                .expect("an answered query lost its record");
            assert_eq!(record.hash, receipt.audit_hash);
            assert_eq!(record.agreement.as_deref(), Some(contract.id.as_str()));
        }
    }

    // It restarts on the same stores and answers again.
    let mut child = spawn_provider(&home);
    wait_healthy(&url).await;
    consumer
        .ask(
            &contract.id,
            "SELECT count(*) FROM telemetry",
            AnswerFormat::Arrow,
        )
        .await;
    child.kill().unwrap();
    let _ = child.wait();
    assert!(verify_home(&home).unwrap().first_broken.is_none());
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_audit_store_is_detected_and_named() {
    let world = World::new();
    let running = provider(&world, |_| {}).await;
    let home = running.home.clone();
    let consumer = start(&world, "sme-south", vec![], "sme").await;
    let contract = consumer
        .contract(&running.url, "telemetry_quality", "quality-analysis")
        .await;
    consumer
        .ask(
            &contract.id,
            "SELECT count(*) FROM telemetry",
            AnswerFormat::Arrow,
        )
        .await;
    consumer.stop().await;
    running.stop().await;
    assert!(verify_home(&home).unwrap().first_broken.is_none());

    // Edit one stored record the way an intruder with disk access would:
    // make the answered query look like it returned fewer rows.
    let target = {
        let db = sled::open(home.join("audit")).unwrap();
        let tree = db.open_tree(connector::audit::AUDIT_TREE).unwrap();
        let (key, value) = tree
            .iter()
            .map(Result::unwrap)
            .find(|(_, v)| String::from_utf8_lossy(v).contains("query_answered"))
            .unwrap();
        let seq = u64::from_be_bytes(key.as_ref().try_into().unwrap());
        let mut record: serde_json::Value = serde_json::from_slice(&value).unwrap();
        record["rows"] = serde_json::json!(0);
        tree.insert(key, serde_json::to_vec(&record).unwrap())
            .unwrap();
        db.flush().unwrap();
        seq
    };
    let report = verify_home(&home).unwrap();
    let broken = report
        .first_broken
        .clone()
        .expect("the edit went unnoticed");
    assert_eq!(broken.seq, target, "{report}");
    // `dataspace audit verify` says so and fails.
    let out = Command::new(env!("CARGO_BIN_EXE_dataspace"))
        .args(["audit", "verify", "--home"])
        .arg(&home)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{target}")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
