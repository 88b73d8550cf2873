//! Crash safety: the provider is killed with SIGKILL while queries run; after
//! a restart its audit chain verifies and every query that got a 200 (and a
//! receipt) has its record, with the hash the receipt names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connector::answer::AnswerFormat;
use connector::audit::{AuditStore, Evidence, SledAuditStore, verify_home, verify_home_against};
use support::{World, contracted, kill, serve_in_child, wait_healthy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_provider_keeps_every_answered_query_in_its_chain() {
    let world = World::new();
    let (in_process, consumer, contract) = contracted(&world, |_| {}).await;
    let (home, url) = (in_process.home.clone(), in_process.url.clone());
    in_process.stop().await;

    let child = serve_in_child(&home, &url).await;
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
    kill(child); // with queries in flight
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
    // The consumer's kept receipts, as evidence: every one is in the log.
    let kept: Vec<Evidence> = consumer
        .connector
        .all_receipts()
        .unwrap()
        .iter()
        .map(|r| Evidence {
            source: format!("receipt #{}", r.payload().audit_seq),
            jws: r.jws().to_owned(),
        })
        .collect();
    assert!(kept.len() >= receipts.len());
    let (report, evidence) = verify_home_against(&home, &kept, &[]).unwrap();
    assert!(report.is_intact(), "{report}");
    assert!(evidence.holds(), "{evidence}");
    assert_eq!(evidence.matched as usize, kept.len());

    // It restarts on the same stores and answers again.
    let child = serve_in_child(&home, &url).await;
    consumer.count(&contract.id).await;
    kill(child);
    assert!(verify_home(&home).unwrap().first_broken.is_none());
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_audit_store_is_detected_and_named() {
    let world = World::new();
    let (running, consumer, contract) = contracted(&world, |_| {}).await;
    let home = running.home.clone();
    consumer.count(&contract.id).await;
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

/// The owner's side of a disk fault, through the CLI: the provider's audit
/// store loses its last records; `connector serve` refuses to start, naming
/// the first lost record; `audit verify --receipts` with the consumer's
/// exported receipts names the receipts the log contradicts; starting with
/// `--recover-audit` signs a `recovered` record, and the same receipts are
/// then reported as lost by an admitted recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_audit_log_is_refused_then_recovered_and_receipts_tell_what_was_lost() {
    let world = World::new();
    let (running, consumer, contract) = contracted(&world, |_| {}).await;
    let (home, url) = (running.home.clone(), running.url.clone());
    let mut seqs = Vec::new();
    for _ in 0..6 {
        let answer = consumer.count(&contract.id).await;
        seqs.push(answer.receipt.payload().audit_seq);
    }
    let consumer_home = consumer.home.clone();
    consumer.stop().await;
    running.stop().await;
    let dataspace = env!("CARGO_BIN_EXE_dataspace");
    let receipts = world.dir.path().join("receipts");
    let out = Command::new(dataspace)
        .args(["receipts", "export", "--home"])
        .arg(&consumer_home)
        .arg("--out")
        .arg(&receipts)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(&receipts).unwrap().count(), seqs.len());

    // The records of the last three queries vanish, as a torn tail would.
    let cut = seqs[3];
    SledAuditStore::open(&home.join("audit"))
        .unwrap()
        .remove_from(cut)
        .unwrap();
    let out = Command::new(dataspace)
        .args(["connector", "serve", "--home"])
        .arg(&home)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "served on a cut log");
    assert!(
        stderr.contains(&format!("broken at record #{cut}")) && stderr.contains("--recover-audit"),
        "{stderr}"
    );
    let verify = |extra: &[&str]| {
        let out = Command::new(dataspace)
            .args(["audit", "verify", "--home"])
            .arg(&home)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let receipts_arg = receipts.to_str().unwrap();
    let (ok, text) = verify(&["--receipts", receipts_arg]);
    assert!(!ok, "{text}");
    assert!(text.contains(&format!("broken at record #{cut}")), "{text}");
    assert!(
        text.contains("3 matched") && text.contains("3 contradicted"),
        "{text}"
    );

    // Recovery, then a normal start on the recovered log.
    let mut child = Command::new(dataspace)
        .args(["connector", "serve", "--recover-audit", "--home"])
        .arg(&home)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_healthy(&url).await;
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("audit log recovered"), "{stderr}");
    assert!(stderr.contains(&format!("records #{cut}..=")), "{stderr}");
    let (ok, text) = verify(&[]);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("recovered at #{cut}")), "{text}");
    let (ok, text) = verify(&["--receipts", receipts_arg]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("3 matched") && text.contains("3 lost as a signed recovery admits"),
        "{text}"
    );
    assert!(text.contains("0 contradicted"), "{text}");
    kill(serve_in_child(&home, &url).await);
}
