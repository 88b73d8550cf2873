//! Data roots cannot be escaped, through the real HTTP service: a folder
//! with a link leading out of the roots is refused at registration; a link
//! added to a registered folder, or a registered file swapped for a link,
//! refuses the query with an error that names the dataset and the file
//! and says how to mend it; no response carries a value from outside;
//! links that stay inside a root are read; the plain path works.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use connector::answer::AnswerFormat;
use hyper::Method;
use serde_json::json;
use support::{Running, World, start};

const PURPOSE: &str = "quality-analysis";
/// A value only the file outside the roots holds.
const OUTSIDE_VALUE: &str = "Zebulon-9";

fn write_csv(path: &Path, rows: &[(&str, i64)]) {
    let mut text = String::from("site,reading\n");
    for (site, reading) in rows {
        text.push_str(&format!("{site},{reading}\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn assert_clean(text: &str) {
    assert!(
        !text.contains(OUTSIDE_VALUE) && !text.contains("99999"),
        "an outside value in {text}"
    );
}

/// A data root `data` (three rows in `readings/a.csv` and `single.csv`)
/// and, beside it, `outside/secret.csv`.
struct Layout {
    root: PathBuf,
    secret: PathBuf,
}

fn layout(world: &World) -> Layout {
    let root = world.dir.path().join("data");
    let outside = world.dir.path().join("outside");
    for dir in [root.join("readings"), outside.clone()] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let rows = [("north", 1), ("south", 2), ("east", 3)];
    write_csv(&root.join("readings/a.csv"), &rows);
    write_csv(&root.join("single.csv"), &rows);
    let secret = outside.join("secret.csv");
    write_csv(&secret, &[(OUTSIDE_VALUE, 99999)]);
    Layout { root, secret }
}

async fn register(provider: &Running, id: &str, path: &Path) -> (u16, serde_json::Value) {
    provider
        .admin(
            Method::POST,
            "/admin/datasets",
            Some(json!({ "id": id, "path": path })),
        )
        .await
}

/// Registers `id` at `path`, offers it as `<id>_offer` in rows mode, and
/// contracts for it as `consumer`; returns the agreement id.
async fn offered(provider: &Running, consumer: &Running, id: &str, path: &Path) -> String {
    let (status, body) = register(provider, id, path).await;
    assert_eq!(status, 201, "{body}");
    let policy = json!({
        "type": "UsagePolicy", "version": 1, "id": format!("urn:policy:{id}"),
        "issuer": "platform-north", "target": { "dataset": id }, "purposes": [PURPOSE],
        "validity": { "not_before": "2020-01-01T00:00:00Z", "not_after": "2099-12-31T23:59:59Z" },
        "access": "rows", "columns": { "site": "dimension", "reading": "measure" },
    });
    let offer = format!("{id}_offer");
    let (status, body) = provider
        .admin(
            Method::POST,
            "/admin/offers",
            Some(json!({ "id": offer, "dataset": id, "policy": policy })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    consumer.contract(&provider.url, &offer, PURPOSE).await.id
}

/// The query's answer as JSON text, or the error's text.
async fn ask(consumer: &Running, agreement: &str, sql: &str) -> Result<String, String> {
    match consumer
        .connector
        .query_remote(agreement, sql, AnswerFormat::Json)
        .await
    {
        Ok(answer) => Ok(String::from_utf8(answer.body).unwrap()),
        Err(e) => Err(e.to_string()),
    }
}

fn assert_refused(outcome: Result<String, String>, dataset: &str, path: &str) {
    let error = match outcome {
        Ok(answer) => panic!("answered {answer}"),
        Err(error) => error,
    };
    assert_clean(&error);
    for needle in [
        format!("`{dataset}`"),
        format!("`{path}`"),
        "replace the link with the file itself".to_owned(),
        "`data_roots`".to_owned(),
    ] {
        assert!(error.contains(&needle), "{needle} not in {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_out_of_the_data_roots_are_refused_at_registration_and_at_query() {
    let world = World::new();
    let layout = layout(&world);
    let provider = start(
        &world,
        "platform-north",
        vec![layout.root.clone()],
        "platform",
    )
    .await;
    let consumer = start(&world, "sme-south", vec![], "sme").await;
    let sql = "SELECT site, reading FROM readings ORDER BY reading";

    // (a) A folder with a link out of the roots is not registered.
    let linked = layout.root.join("linked");
    std::fs::create_dir(&linked).unwrap();
    write_csv(&linked.join("a.csv"), &[("west", 4)]);
    symlink(&layout.secret, linked.join("b.csv")).unwrap();
    let (status, body) = register(&provider, "linked", &linked).await;
    assert_eq!(status, 403, "{body}");
    let error = body["error"].as_str().unwrap();
    assert_clean(error);
    assert!(
        error.contains("`linked`") && error.contains("`linked/b.csv`"),
        "{error}"
    );
    assert!(
        error.contains("add its target's folder to `data_roots`"),
        "{error}"
    );
    let (_, listed) = provider.admin(Method::GET, "/admin/datasets", None).await;
    assert!(!listed.to_string().contains("linked"), "{listed}");

    // (e) The plain path: a folder registered and queried.
    let folder = layout.root.join("readings");
    let readings = offered(&provider, &consumer, "readings", &folder).await;

    // (b) A link added to the registered folder refuses the query.
    symlink(&layout.secret, folder.join("b.csv")).unwrap();
    assert_refused(
        ask(&consumer, &readings, sql).await,
        "readings",
        "readings/b.csv",
    );
    // Mended by the owner: answered again, from the folder only.
    std::fs::remove_file(folder.join("b.csv")).unwrap();
    let answer = ask(&consumer, &readings, sql).await.unwrap();
    assert!(
        answer.contains("north") && answer.contains("east"),
        "{answer}"
    );
    assert_clean(&answer);
    // Once the engine has listed the folder, a link added later is not
    // read at all (the listing is kept until the dataset is registered
    // again, and registering it again is refused).
    symlink(&layout.secret, folder.join("b.csv")).unwrap();
    let later = ask(&consumer, &readings, sql).await;
    assert_clean(&format!("{later:?}"));
    let (status, body) = register(&provider, "readings", &folder).await;
    assert_eq!(status, 403, "{body}");
    assert_clean(&body.to_string());
    let after = ask(&consumer, &readings, sql).await;
    assert_clean(&format!("{after:?}"));

    // (c) A registered file swapped for a link is refused at the next query.
    let file = layout.root.join("single.csv");
    let single = offered(&provider, &consumer, "single", &file).await;
    let sql_single = "SELECT site, reading FROM single";
    let answer = ask(&consumer, &single, sql_single).await.unwrap();
    assert!(answer.contains("south"), "{answer}");
    std::fs::remove_file(&file).unwrap();
    symlink(&layout.secret, &file).unwrap();
    for _ in 0..2 {
        assert_refused(
            ask(&consumer, &single, sql_single).await,
            "single",
            "single.csv",
        );
    }

    // (d) Links that stay inside a root are read like the files.
    let elsewhere = layout.root.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    write_csv(&elsewhere.join("c.csv"), &[("west", 4)]);
    let mirrored = layout.root.join("mirrored");
    std::fs::create_dir(&mirrored).unwrap();
    write_csv(&mirrored.join("a.csv"), &[("north", 1)]);
    symlink(elsewhere.join("c.csv"), mirrored.join("c.csv")).unwrap();
    let (status, body) = register(&provider, "mirrored", &mirrored).await;
    assert_eq!((status, &body["rows"]), (201, &json!(2)), "{body}");

    // The provider is still up, and its audit log holds the refusals
    // with the file named, and no outside value.
    let (status, _) = provider.admin(Method::GET, "/admin/datasets", None).await;
    assert_eq!(status, 200);
    let records = provider.connector.audit().store().range(0, 10_000).unwrap();
    let refusals: Vec<String> = records
        .iter()
        .filter_map(|r| r.detail.clone())
        .filter(|d| d.contains("leads outside the data roots"))
        .collect();
    assert!(refusals.len() >= 3, "{refusals:?}");
    assert_clean(&format!("{records:?}"));
    consumer.stop().await;
    provider.stop().await;
}
