//! The officer dashboard in a real browser: headless Chromium, driven over
//! WebDriver (chromedriver) with the connector's own HTTP client, loads
//! `/officer` from a live provider connector holding records, signs in with
//! the admin token, checks the chain status, applies a filter, checks the
//! rows shown (a consumer's markup stays text), and saves a screenshot to
//! `officer.png` in the target directory.
//!
//! Skips with a notice when `chromium` or `chromedriver` is missing, unless
//! `DATASPACE_REQUIRE_BROWSER` is set (as `.ci/run` does), then it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use connector::answer::AnswerFormat;
use connector::client::HttpClient;
use connector::home::admin_token;
use hyper::Method;
use serde_json::{Value, json};
use support::{World, contracted};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const HOSTILE_SQL: &str = "SELECT '<img src=x onerror=alert(1)>' AS x, * FROM telemetry";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .chain([
                PathBuf::from("/usr/bin"),
                PathBuf::from("/usr/lib/chromium"),
            ])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// chromedriver, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    http: HttpClient,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(driver: &Path, browser: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: HttpClient::new(),
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(reply) = driver
                .http
                .send(Method::GET, &format!("{}/status", driver.url), &[], None)
                .await
                && reply.json().is_ok_and(|s| s["value"]["ready"] == true)
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1300", "--no-first-run", "--disable-extensions"]
            }
        }}});
        let session = driver
            .call(Method::POST, "/session", Some(capabilities))
            .await;
        driver.session = session["sessionId"].as_str().unwrap().to_owned();
        driver
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = if self.session.is_empty() {
            format!("{}{path}", self.url)
        } else {
            format!("{}/session/{}{path}", self.url, self.session)
        };
        let reply = self
            .http
            .send(method, &url, &[], body.map(|b| b.to_string().into_bytes()))
            .await
            .unwrap();
        let value: Value = serde_json::from_slice(&reply.body).unwrap();
        assert!(reply.status.is_success(), "WebDriver {path}: {value}");
        value["value"].clone()
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .call(
                Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Waits until `script` returns `true`; the last value on time-out.
    async fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.script(script).await == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The rows of the records table, as `{column: text}`.
const ROWS: &str = "return Array.from(document.querySelectorAll('#records tbody tr')).map(tr => \
    Object.fromEntries(Array.from(tr.cells).map(td => [td.dataset.col, td.textContent])));";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_filters_records_in_chromium() {
    let browser = find_program(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = find_program(&["chromedriver"]);
    let (Some(browser), Some(driver)) = (browser, driver) else {
        if std::env::var_os("DATASPACE_REQUIRE_BROWSER").is_some() {
            panic!("DATASPACE_REQUIRE_BROWSER is set but chromium or chromedriver is missing");
        }
        println!(
            "SKIPPED: chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        );
        return;
    };

    // A provider holding records: two answered queries, one refused whose
    // SQL is markup.
    let world = World::new();
    let (provider, consumer, contract) = contracted(&world, |_| {}).await;
    for sql in [
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site",
        "SELECT count(*) AS n FROM telemetry",
    ] {
        consumer.ask(&contract.id, sql, AnswerFormat::Json).await;
    }
    consumer
        .connector
        .query_remote(&contract.id, HOSTILE_SQL, AnswerFormat::Json)
        .await
        .unwrap_err();
    let total = provider.connector.audit().store().len().unwrap();

    let web = Driver::start(&driver, &browser).await;
    web.call(
        Method::POST,
        "/url",
        Some(json!({ "url": format!("{}/officer", provider.url) })),
    )
    .await;
    web.wait_for(
        "the page",
        "return document.readyState === 'complete' && !!document.getElementById('token');",
    )
    .await;
    web.type_into("#token", &admin_token(&provider.home).unwrap())
        .await;
    web.click("#connect").await;
    web.wait_for(
        "the chain status",
        "return document.getElementById('chain-status').dataset.intact === 'true';",
    )
    .await;
    let status = web
        .script("return document.getElementById('chain-status').textContent;")
        .await;
    assert_eq!(
        status,
        format!("chain intact: {total} records, 0 checkpoints")
    );
    web.wait_for(
        "every record",
        &format!("return document.querySelectorAll('#records tbody tr').length === {total};"),
    )
    .await;
    web.wait_for("the charts", "return document.querySelectorAll('#chart-rules rect[data-rule=\"denied_column\"]').length === 1 \
        && document.querySelectorAll('#chart-timeline rect[data-kind]').length >= 2;").await;

    // Filter on refusals: only the refused query is shown, its SQL as text.
    web.click("#f-decision option[value='refused']").await;
    web.click("#apply").await;
    web.wait_for(
        "the filtered rows",
        "return document.querySelectorAll('#records tbody tr').length === 1;",
    )
    .await;
    let rows = web.script(ROWS).await;
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    let row = &rows[0];
    assert_eq!(row["decision"], "refused", "{row}");
    assert_eq!(row["rule"], "denied_column");
    assert_eq!(row["counterparty"], "sme-south");
    assert_eq!(row["purpose"], "quality-analysis");
    assert_eq!(row["kind"], "query_refused");
    assert!(
        row["sql"].as_str().unwrap().starts_with(HOSTILE_SQL),
        "{row}"
    );
    assert_eq!(
        web.script("return document.querySelectorAll('img').length;")
            .await,
        0
    );
    let status = web
        .script("return document.getElementById('records-status').textContent;")
        .await;
    assert_eq!(status, "1 record shown");

    // A dataset filter with no match empties the table.
    web.type_into("#f-counterparty", "nobody").await;
    web.click("#apply").await;
    web.wait_for(
        "no rows",
        "return document.querySelectorAll('#records tbody tr').length === 0 \
        && document.getElementById('records-status').textContent === '0 records shown';",
    )
    .await;
    let clear = web.find("#f-counterparty").await;
    web.call(
        Method::POST,
        &format!("/element/{clear}/clear"),
        Some(json!({})),
    )
    .await;
    web.click("#apply").await;
    web.wait_for(
        "the refusal again",
        "return document.querySelectorAll('#records tbody tr').length === 1;",
    )
    .await;

    // SQL from the page.
    web.click("#run-sql").await;
    web.wait_for(
        "the SQL answer",
        "return document.querySelectorAll('#sql-result tbody tr').length === 2;",
    )
    .await;

    let shot = web.call(Method::GET, "/screenshot", None).await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot.as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    // The target directory of this build (CARGO_TARGET_DIR may move it).
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        Into::into,
    );
    std::fs::create_dir_all(&target).unwrap();
    let saved = target.join("officer.png");
    std::fs::write(&saved, &png).unwrap();
    std::fs::write(world.dir.path().join("officer.png"), &png).unwrap();
    println!("screenshot: {}", saved.display());

    web.call(Method::DELETE, "", None).await;
    drop(web);
    consumer.stop().await;
    provider.stop().await;
}
