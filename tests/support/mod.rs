//! Shared set-up of the cross-crate tests: an authority, and participants
//! whose connectors run with real sled stores in temporary homes and real
//! HTTP servers on loopback (port 0).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use connector::answer::AnswerFormat;
use connector::audit::AuditRecord;
use connector::client::HttpClient;
use connector::consumer::{Contract, RemoteAnswer};
use connector::home::{InitOptions, admin_token, init, issue_credential};
use connector::server::RunningConnector;
use connector::service::Connector;
use hyper::Method;
use policy::credential::{Attributes, Authority};
use policy::keys::KeyPair;
use serde_json::{Value, json};

pub const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/redteam");

pub fn shared(file: &str) -> PathBuf {
    Path::new(SHARED).join(file)
}

pub struct World {
    pub authority: Authority,
    pub dir: tempfile::TempDir,
    /// The catalog new participants publish to.
    pub catalog_url: std::sync::Mutex<Option<String>>,
}

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::new("authority", KeyPair::generate().unwrap());
        let json = serde_json::to_string(&authority.trusted()).unwrap();
        std::fs::write(dir.path().join("authority.json"), json).unwrap();
        Self {
            authority,
            dir,
            catalog_url: std::sync::Mutex::new(None),
        }
    }

    pub fn authority_file(&self) -> PathBuf {
        self.dir.path().join("authority.json")
    }

    /// Creates a participant home with a credential; returns the home.
    pub fn home(&self, id: &str, listen: &str, roots: Vec<PathBuf>, role: &str) -> PathBuf {
        let home = self.dir.path().join(id);
        init(
            &home,
            &InitOptions {
                id: id.to_owned(),
                authority_file: self.authority_file(),
                data_roots: roots,
                listen: Some(listen.to_owned()),
                catalog_url: self.catalog_url.lock().unwrap().clone(),
            },
        )
        .unwrap();
        let mut attributes = Attributes::default();
        attributes.set("role", role).unwrap();
        attributes.set("sme", "true").unwrap();
        issue_credential(&home, &self.authority, attributes, 3600).unwrap();
        home
    }
}

pub struct Running {
    pub connector: Arc<Connector>,
    pub url: String,
    pub home: PathBuf,
    server: RunningConnector,
}

impl Running {
    /// Stops the server and releases the stores.
    pub async fn stop(self) {
        let Self {
            connector, server, ..
        } = self;
        drop(connector);
        server.stop().await.unwrap();
    }

    /// Contracts (as a consumer) for `offer` at `url` for `purpose`,
    /// allowing 5 s for the provider's decision.
    pub async fn contract(&self, url: &str, offer: &str, purpose: &str) -> Contract {
        self.connector
            .negotiate(url, offer, purpose, std::time::Duration::from_secs(5))
            .await
            .unwrap()
    }

    /// Queries (as a consumer) under agreement `id`; the answer must come.
    pub async fn ask(&self, id: &str, sql: &str, format: AnswerFormat) -> RemoteAnswer {
        self.connector.query_remote(id, sql, format).await.unwrap()
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let token = admin_token(&self.home).unwrap();
        let auth = format!("Bearer {token}");
        let reply = HttpClient::new()
            .send(
                method,
                &format!("{}{path}", self.url),
                &[("authorization", auth.as_str())],
                body.map(|b| b.to_string().into_bytes()),
            )
            .await
            .unwrap();
        let value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        (reply.status.as_u16(), value)
    }
}

/// Starts a participant's connector on a free loopback port.
pub async fn start(world: &World, id: &str, roots: Vec<PathBuf>, role: &str) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let home = world.home(id, &addr.to_string(), roots, role);
    serve_home(home, listener).await
}

pub async fn serve_home(home: PathBuf, listener: tokio::net::TcpListener) -> Running {
    let connector = Arc::new(connector::home::open(&home).unwrap());
    let server = RunningConnector::start(Arc::clone(&connector), listener).unwrap();
    Running {
        connector,
        url: server.url(),
        home,
        server,
    }
}

/// A provider `platform-north` holding the red-team fixture, offered as
/// `telemetry_quality` under the shared policy (with `edit` applied).
pub async fn provider(world: &World, edit: impl FnOnce(&mut Value)) -> Running {
    let data = world.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(shared("telemetry.csv"), data.join("telemetry.csv")).unwrap();
    let running = start(world, "platform-north", vec![data.clone()], "platform").await;
    let (status, body) = running
        .admin(
            Method::POST,
            "/admin/datasets",
            Some(json!({ "id": "telemetry", "path": data.join("telemetry.csv") })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["rows"], 897);
    let mut policy: Value =
        serde_json::from_str(&std::fs::read_to_string(shared("telemetry.policy.json")).unwrap())
            .unwrap();
    edit(&mut policy);
    let (status, body) = running
        .admin(
            Method::POST,
            "/admin/offers",
            Some(json!({ "id": "telemetry_quality", "dataset": "telemetry", "policy": policy })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    running
}

/// The shared red-team policy, valid until 2099, in aggregate or rows mode.
pub fn redteam_policy(rows_mode: bool) -> policy::model::UsagePolicy {
    let text = std::fs::read_to_string(shared("telemetry.policy.json")).unwrap();
    let mut value: Value = serde_json::from_str(&text).unwrap();
    value["validity"]["not_after"] = "2099-12-31T23:59:59Z".into();
    if rows_mode {
        value["access"] = "rows".into();
        value.as_object_mut().unwrap().remove("aggregation");
    }
    policy::model::UsagePolicy::from_json_str(&value.to_string()).unwrap()
}

/// Every record of `running`'s audit log, in order.
pub fn audit_records(running: &Running) -> Vec<AuditRecord> {
    let store = running.connector.audit().store();
    let mut all = Vec::new();
    let mut from = 0;
    loop {
        let chunk = store.range(from, 10_000).unwrap();
        let Some(last) = chunk.last() else { break };
        from = last.seq + 1;
        all.extend(chunk);
    }
    all
}

/// Stops `running`, sets `option` to `value` (TOML) in its configuration
/// file and serves it again on the same address.
pub async fn reconfigure(running: Running, option: &str, value: &str) -> Running {
    let home = running.home.clone();
    let path = home.join("config.toml");
    running.stop().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with(&format!("{option} =")))
        .map(str::to_owned)
        .collect();
    // Top-level options come before any table.
    lines.insert(0, format!("{option} = {value}"));
    std::fs::write(&path, lines.join("\n")).unwrap();
    let listen = connector::config::ConnectorConfig::load(&home)
        .unwrap()
        .listen;
    serve_home(home, tokio::net::TcpListener::bind(&listen).await.unwrap()).await
}

/// `dataspace connector serve --home HOME` as a child process (to be killed
/// with SIGKILL), its output discarded.
pub fn spawn_provider(home: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_dataspace"))
        .args(["connector", "serve", "--home"])
        .arg(home)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits up to 30 s for `url/healthz` to answer 200.
pub async fn wait_healthy(url: &str) {
    let http = HttpClient::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let reply = http
            .send(Method::GET, &format!("{url}/healthz"), &[], None)
            .await;
        if reply.is_ok_and(|r| r.status == 200) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the provider did not come up at {url}");
}
