//! Durability under a hard crash: a child process appends audit records as
//! fast as it can and prints each acknowledged `seq`; it is killed with
//! SIGKILL mid-flight. The reopened log must verify intact and hold every
//! record the child was told was stored.
//!
//! The child is this test binary run again with [`CHILD_ENV`] set to the
//! home folder, filtered to [`child_appends_until_killed`].

// Test helpers may unwrap and panic: a failing test should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use connector::audit::{
    AuditEntry, AuditLog, AuditStore, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, RecordKind,
    SledAuditStore, audit_dir, verify, verify_home,
};
use policy::keys::KeyPair;

/// Set in the child: the home folder to append to.
const CHILD_ENV: &str = "AUDIT_CRASH_CHILD_HOME";
/// Concurrent appenders in the child.
const APPENDERS: u64 = 16;

fn make_home(home: &Path) -> KeyPair {
    std::fs::create_dir_all(home.join("keys")).unwrap();
    let key = KeyPair::generate().unwrap();
    key.save(&home.join(PRIVATE_KEY_FILE), false).unwrap();
    key.public_key()
        .save_jwk(&home.join(PUBLIC_KEY_FILE), false)
        .unwrap();
    key
}

/// The child: appends until killed. Does nothing in a normal test run.
#[test]
fn child_appends_until_killed() {
    let Some(home) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let log = Arc::new(AuditLog::open_home(Path::new(&home), 50).unwrap());
        let tasks: Vec<_> = (0..APPENDERS)
            .map(|task| {
                let log = log.clone();
                tokio::spawn(async move {
                    for n in 0.. {
                        let entry = AuditEntry::new(RecordKind::QueryAnswered, "crash-child")
                            .with_rows(task)
                            .with_bytes(n);
                        let record = log.append(entry).await.unwrap();
                        // Stdout is line-buffered: each line is written out
                        // when printed, after the record is durable.
                        println!("ack {}", record.seq);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// Runs the child, kills it after `after`, and returns the acknowledged
/// sequence numbers it printed.
fn run_and_kill(home: &Path, after: Duration) -> BTreeSet<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_appends_until_killed", "--exact", "--nocapture"])
        .env(CHILD_ENV, home)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| line.strip_prefix("ack ")?.parse::<u64>().ok())
            .collect::<BTreeSet<u64>>()
    });
    std::thread::sleep(after);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
}

#[test]
fn every_acknowledged_record_survives_a_kill_9() {
    let home = tempfile::tempdir().unwrap();
    let key = make_home(home.path());
    let mut acked_total = 0;
    for round in 0..2 {
        let acked = run_and_kill(home.path(), Duration::from_millis(500));
        assert!(
            !acked.is_empty(),
            "round {round}: the child acknowledged nothing"
        );
        acked_total += acked.len();

        let report = verify_home(home.path()).unwrap();
        assert!(report.is_intact(), "round {round}: {report}");
        let store = SledAuditStore::open(&audit_dir(home.path())).unwrap();
        let len = store.len().unwrap();
        assert_eq!(report.records, len);
        let missing: Vec<u64> = acked.iter().copied().filter(|&s| s >= len).collect();
        assert!(
            missing.is_empty(),
            "round {round}: acknowledged but lost: {missing:?}"
        );
        for &seq in acked.iter().step_by(97) {
            assert_eq!(store.get(seq).unwrap().unwrap().seq, seq);
        }
        eprintln!(
            "round {round}: {} acknowledged, {len} stored, {report}",
            acked.len()
        );
    }
    assert!(acked_total > 0);

    // The log resumes after the crashes and stays intact.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store: Arc<dyn AuditStore> =
            Arc::new(SledAuditStore::open(&audit_dir(home.path())).unwrap());
        let before = store.len().unwrap();
        let log = AuditLog::open(store.clone(), Arc::new(key), 50).unwrap();
        let record = log
            .append(AuditEntry::new(RecordKind::Start, "after-crash"))
            .await
            .unwrap();
        // Unless a checkpoint fell due first.
        assert!(
            record.seq == before || record.seq == before + 1,
            "{}",
            record.seq
        );
        let report = verify(store.as_ref(), &log_key(home.path())).unwrap();
        assert!(report.is_intact(), "{report}");
        drop(store);
        log.close().await;
    });
}

fn log_key(home: &Path) -> policy::keys::PublicKey {
    policy::keys::PublicKey::load_jwk(&home.join(PUBLIC_KEY_FILE)).unwrap()
}
