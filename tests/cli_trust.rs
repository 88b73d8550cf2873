//! End-to-end tests of the trust commands of the `dataspace` binary: keygen,
//! authority init and issue, policy sign and verify, and their refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use policy::credential::{TrustedAuthority, verify_credential};

/// The shared red-team policy, as a provider writes it.
fn policy_text() -> String {
    std::fs::read_to_string(support::shared("telemetry.policy.json")).unwrap()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dataspace"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let output = run(args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let output = run(args);
    assert_eq!(output.status.code(), Some(1), "{args:?} should fail");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn keygen_writes_an_owner_only_key_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = path(dir.path(), "keys");
    let stdout = ok(&["keygen", "--out", &out]);
    assert!(stdout.contains("key id: "), "{stdout}");
    let mode = std::fs::metadata(dir.path().join("keys/private.pk8"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(dir.path().join("keys/public.jwk.json").exists());
    let stderr = fails(&["keygen", "--out", &out]);
    assert!(stderr.contains("already exists"), "{stderr}");
}

#[test]
fn issue_sign_and_verify_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["keygen", "--out", &path(d, "platform")]);
    ok(&[
        "authority",
        "init",
        "--out",
        &path(d, "authority"),
        "--id",
        "ds-authority",
    ]);
    let credential_file = path(d, "platform/credential.jws");
    ok(&[
        "authority",
        "issue",
        "--authority",
        &path(d, "authority"),
        "--participant",
        "platform-north",
        "--name",
        "Platform North",
        "--public-key",
        &path(d, "platform/public.jwk.json"),
        "--attr",
        "role=provider",
        "--attr",
        "sme=false",
        "--attr",
        "tier=gold",
        "--days",
        "30",
        "--out",
        &credential_file,
    ]);

    let trusted: TrustedAuthority =
        serde_json::from_str(&std::fs::read_to_string(d.join("authority/authority.json")).unwrap())
            .unwrap();
    let jws = std::fs::read_to_string(&credential_file).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let credential = verify_credential(jws.trim(), &trusted, now, 60).unwrap();
    assert_eq!(credential.iss, "ds-authority");
    assert_eq!(credential.sub, "platform-north");
    assert_eq!(credential.attribute_values()["tier"], "gold");
    assert!(credential.exp - credential.iat == 30 * 86_400);

    let policy_file = path(d, "policy.json");
    std::fs::write(&policy_file, policy_text()).unwrap();
    let signed = path(d, "policy.jws");
    ok(&[
        "policy",
        "sign",
        "--key",
        &path(d, "platform/private.pk8"),
        &policy_file,
        "--out",
        &signed,
    ]);
    let stdout = ok(&[
        "policy",
        "verify",
        &signed,
        "--public-key",
        &path(d, "platform/public.jwk.json"),
    ]);
    assert!(
        stdout.contains("policy: urn:policy:redteam:telemetry-quality"),
        "{stdout}"
    );
    assert!(stdout.contains("issuer: platform-north"), "{stdout}");
    assert!(stdout.contains("dataset: telemetry"), "{stdout}");
    assert!(stdout.contains("content hash: sha256:"), "{stdout}");

    // Another participant's key is not the signer.
    ok(&["keygen", "--out", &path(d, "other")]);
    fails(&[
        "policy",
        "verify",
        &signed,
        "--public-key",
        &path(d, "other/public.jwk.json"),
    ]);

    // A changed byte in the payload breaks the signature.
    let text = std::fs::read_to_string(&signed).unwrap();
    let mut parts: Vec<String> = text.trim().split('.').map(str::to_owned).collect();
    let flipped = if parts[1].ends_with('A') { 'B' } else { 'A' };
    parts[1].pop();
    parts[1].push(flipped);
    let tampered = path(d, "tampered.jws");
    std::fs::write(&tampered, parts.join(".")).unwrap();
    fails(&["policy", "verify", &tampered]);
}

#[test]
fn issue_refuses_a_non_boolean_sme() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["keygen", "--out", &path(d, "p")]);
    ok(&["authority", "init", "--out", &path(d, "a")]);
    let stderr = fails(&[
        "authority",
        "issue",
        "--authority",
        &path(d, "a"),
        "--participant",
        "p",
        "--public-key",
        &path(d, "p/public.jwk.json"),
        "--attr",
        "sme=maybe",
    ]);
    assert!(stderr.contains("sme"), "{stderr}");
}

#[test]
fn sign_refuses_an_invalid_policy_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["keygen", "--out", &path(d, "p")]);
    let policy_file = path(d, "bad.json");
    std::fs::write(
        &policy_file,
        policy_text().replace("\"version\": 1", "\"version\": 7"),
    )
    .unwrap();
    let stderr = fails(&[
        "policy",
        "sign",
        "--key",
        &path(d, "p/private.pk8"),
        &policy_file,
    ]);
    assert!(stderr.contains("version"), "{stderr}");
}

#[test]
fn sign_refuses_a_key_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["keygen", "--out", &path(d, "p")]);
    let key = d.join("p/private.pk8");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let policy_file = path(d, "policy.json");
    std::fs::write(&policy_file, policy_text()).unwrap();
    let stderr = fails(&[
        "policy",
        "sign",
        "--key",
        &key.display().to_string(),
        &policy_file,
    ]);
    assert!(stderr.contains("chmod 600"), "{stderr}");
}
