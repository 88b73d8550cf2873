//! The `dataspace policy test` and `policy check` commands, run as a user
//! would, on the shared red-team fixture.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/redteam")
}

fn dataspace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dataspace"))
        .args(args)
        .output()
        .unwrap()
}

fn fixture_args() -> Vec<String> {
    let dir = shared();
    vec![
        "--policy".into(),
        dir.join("telemetry.policy.json").display().to_string(),
        "--table".into(),
        format!("telemetry={}", dir.join("telemetry.csv").display()),
    ]
}

fn run_cases(case_file: &str) -> Output {
    let mut args: Vec<String> = vec!["policy".into(), "test".into()];
    args.extend(fixture_args());
    args.push(case_file.into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    dataspace(&refs)
}

#[test]
fn all_shared_red_team_cases_pass() {
    let cases = shared().join("cases.toml");
    let out = run_cases(&cases.display().to_string());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("PASS ")).count(),
        40,
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("40 passed, 0 failed"));
}

#[test]
fn a_wrong_expectation_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.toml");
    std::fs::write(
        &file,
        r#"
[[case]]
id = "W1"
sql = "SELECT site, count(*) AS n FROM telemetry GROUP BY site"
expect = "rows"
reference = "SELECT site, count(*) AS n FROM telemetry GROUP BY site"

[[case]]
id = "W2"
sql = "SELECT site, count(*) AS n FROM telemetry GROUP BY site"
expect = "reject"

[[case]]
id = "W3"
sql = "SELECT operator_name FROM telemetry"
expect = "reject"
"#,
    )
    .unwrap();
    let out = run_cases(&file.display().to_string());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    // The raw reference includes secret-plant and the small groups: not equal.
    assert!(stdout.contains("FAIL W1"), "{stdout}");
    assert!(stdout.contains("FAIL W2: expected a refusal"), "{stdout}");
    assert!(stdout.contains("PASS W3"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("1 passed, 2 failed"));
}

#[test]
fn check_prints_decision_rule_and_plan() {
    let mut args: Vec<String> = vec!["policy".into(), "check".into()];
    args.extend(fixture_args());
    args.extend([
        "--sql".into(),
        "SELECT site, avg(temperature) FROM telemetry GROUP BY site".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = dataspace(&refs);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("decision: accepted"), "{stdout}");
    // The logical plan carries the threshold; the physical plan that runs
    // shows both barriers: the scan with its row filter inside, and the
    // threshold.
    assert!(
        stdout.contains(
            "Threshold: dataset=telemetry, __dataspace_rows >= 5, __dataspace_entities >= 5"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("GovernedScanExec: dataset=telemetry, row_filter=site@1 != secret-plant"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ThresholdExec: dataset=telemetry"),
        "{stdout}"
    );

    let mut args: Vec<String> = vec!["policy".into(), "check".into()];
    args.extend(fixture_args());
    args.extend(["--sql".into(), "SELECT machine_id FROM telemetry".into()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = dataspace(&refs);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("decision: refused"), "{stdout}");
    assert!(stdout.contains("rule: entity_column"), "{stdout}");
}
