//! The demo's test twin: `dataspace demo` run as a user runs it (smaller
//! data), its narrated steps checked, and `--serve` checked to keep live
//! services until interrupted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use connector::client::HttpClient;
use hyper::Method;

const BIN: &str = env!("CARGO_BIN_EXE_dataspace");

#[test]
fn the_demo_walks_through_every_step_and_exits_zero() {
    let out = Command::new(BIN)
        .args(["demo", "--rows", "30000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for step in 1..=10 {
        assert!(
            stdout.contains(&format!("[{step}/10]")),
            "step {step}:\n{stdout}"
        );
    }
    for expected in [
        "search \"machine telemetry\": 1 dataset(s)",
        "platform-north/telemetry",
        "signed receipt verified",
        "| east-plant  | early |",
        "refused by rule `entity_column`",
        "refused by rule `denied_column`: the column `operator_name`",
        "refused by rule `aggregation_required`",
        "refused by rule `denied_column`: the column `contact_email`",
        "refused by rule `revoked`",
        "chain intact",
        "query_answered",
        "Done in",
    ] {
        assert!(stdout.contains(expected), "missing `{expected}`:\n{stdout}");
    }
    // The policies' filters hold in what the SME was shown.
    assert!(!stdout.contains("| prototype-lab"), "{stdout}");
    assert!(!stdout.contains("| restricted"), "{stdout}");
    // The catalog never lists the denied column.
    let columns = stdout
        .lines()
        .find(|l| l.contains("signed description verified"))
        .unwrap();
    assert!(!columns.contains("operator_name"), "{columns}");
}

#[test]
fn the_demo_refuses_a_folder_in_use_and_bad_row_counts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious.txt"), "keep me").unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--rows", "1000", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("precious.txt")).unwrap(),
        "keep me"
    );
    let out = Command::new(BIN)
        .args(["demo", "--rows", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rows"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_the_services_up_until_interrupted_and_keeps_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("space");
    let mut child = Command::new(BIN)
        .args(["demo", "--rows", "5000", "--serve", "--dir"])
        .arg(&home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("Press Ctrl-C")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("no prompt to stop:\n{}", seen.join("\n"));
            }
        }
    }
    let url_of = |name: &str| {
        seen.iter()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(name)
                    .and_then(|rest| rest.split_whitespace().next())
                    .filter(|url| url.starts_with("http://"))
            })
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no {name} URL:\n{}", seen.join("\n")))
    };
    let catalog = url_of("catalog");
    let platform = url_of("platform");
    let http = HttpClient::new();
    let reply = http
        .send(
            Method::GET,
            &format!("{catalog}/.well-known/dcat"),
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(reply.status.as_u16(), 200);
    assert!(String::from_utf8_lossy(&reply.body).contains("telemetry"));
    let reply = http
        .send(Method::GET, &format!("{platform}/offers"), &[], None)
        .await
        .unwrap();
    assert_eq!(reply.status.as_u16(), 200);
    assert!(String::from_utf8_lossy(&reply.body).contains("supplier_scorecard"));

    python_reads_the_arrow_answer(&seen);

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(home.join("platform-north/admin.token").exists());
    assert!(home.join("data/telemetry.parquet").exists());
}

/// Runs `examples/query_arrow.py` as `--serve` prints it, when python3 has
/// pyarrow and cryptography (`.ci/run` installs them and sets
/// `DATASPACE_REQUIRE_PYARROW`, which turns a missing module into a failure).
fn python_reads_the_arrow_answer(seen: &[String]) {
    let usable = Command::new("python3")
        .args(["-c", "import pyarrow, cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        assert!(
            std::env::var_os("DATASPACE_REQUIRE_PYARROW").is_none(),
            "python3 with pyarrow and cryptography is required"
        );
        eprintln!("skipped: python3 with pyarrow and cryptography is not installed");
        return;
    }
    let line = seen
        .iter()
        .find(|l| l.contains("examples/query_arrow.py"))
        .expect("the python command line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |flag: &str| {
        let at = words.iter().position(|w| *w == flag).unwrap();
        words[at + 1].to_owned()
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/query_arrow.py");
    let run = |sql: &str| {
        Command::new("python3")
            .arg(script)
            .args(["--home", &after("--home")])
            .args(["--provider", &after("--provider")])
            .args(["--agreement", &after("--agreement")])
            .arg(sql)
            .output()
            .unwrap()
    };
    let out =
        run("SELECT part, count(*) AS weeks FROM supplier_quality GROUP BY part ORDER BY part");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("{'part': 'bearing', 'weeks': "), "{stdout}");
    assert!(stderr.contains("6 rows from platform-north"), "{stderr}");
    let refused = run("SELECT contact_email FROM supplier_quality");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("denied_column"), "{stderr}");
    assert!(
        !stderr.contains("@supplier"),
        "a refusal quotes no value: {stderr}"
    );
}
