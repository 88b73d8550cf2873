//! No SQL text can crash or hang the provider: deep `AND` chains, deep
//! parentheses, deep `||` chains, deep `CASE` nesting, deep subquery
//! nesting, many CTEs and texts over `max_sql_bytes`, sent over HTTP to a
//! real connector, each get a clear refusal (rule `statement`, naming the
//! limit), and the connector answers the next query. Run in debug and in
//! release builds alike (`cargo test`, `cargo test --release`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use connector::answer::AnswerFormat;

mod support;
use support::{World, contracted};

fn deep_and(n: usize) -> String {
    let chain = (0..n)
        .map(|i| format!("site <> '{}'", i % 10))
        .collect::<Vec<_>>()
        .join(" AND ");
    format!("SELECT site, count(*) FROM telemetry WHERE {chain} GROUP BY site")
}

fn deep_or(n: usize) -> String {
    let chain = (0..n)
        .map(|i| format!("site = '{}'", i % 10))
        .collect::<Vec<_>>()
        .join(" OR ");
    format!("SELECT site, count(*) FROM telemetry WHERE {chain} GROUP BY site")
}

fn deep_concat(n: usize) -> String {
    let chain = vec!["site"; n].join(" || ");
    format!("SELECT {chain} AS s, count(*) AS n FROM telemetry GROUP BY site")
}

fn deep_parentheses(n: usize) -> String {
    format!(
        "SELECT site, count(*) FROM telemetry WHERE {}site = 'a'{} GROUP BY site",
        "(".repeat(n),
        ")".repeat(n)
    )
}

fn deep_case(n: usize) -> String {
    let mut expr = "count(*)".to_owned();
    for i in 0..n {
        expr = format!("CASE WHEN count(*) > {i} THEN {expr} ELSE 0 END");
    }
    format!("SELECT site, {expr} AS n FROM telemetry GROUP BY site")
}

fn deep_subqueries(n: usize) -> String {
    let mut query = "SELECT site, count(*) AS n FROM telemetry GROUP BY site".to_owned();
    for _ in 0..n {
        query = format!("SELECT site, n FROM ({query}) q");
    }
    query
}

fn many_ctes(n: usize) -> String {
    let mut ctes =
        vec!["c0 AS (SELECT site, count(*) AS n FROM telemetry GROUP BY site)".to_owned()];
    for i in 1..n {
        ctes.push(format!("c{i} AS (SELECT site, n FROM c{})", i - 1));
    }
    format!("WITH {} SELECT * FROM c{}", ctes.join(", "), n - 1)
}

fn huge_in_list(n: usize) -> String {
    let items = (0..n)
        .map(|i| format!("'s{i}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT site, count(*) FROM telemetry WHERE site IN ('north-plant', {items}) GROUP BY site"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sql_is_refused_and_the_connector_stays_up() {
    let world = World::new();
    // A quota large enough for every probe.
    let (provider, consumer, contract) =
        contracted(&world, |p| p["limits"]["max_queries"] = 10_000.into()).await;
    let good = "SELECT site, count(*) AS n FROM telemetry GROUP BY site";

    let cases: Vec<(&str, String, &str)> = vec![
        ("3,000 ANDed conjuncts", deep_and(3_000), "max_sql_depth"),
        ("3,000 ORed comparisons", deep_or(3_000), "max_sql_depth"),
        ("6,000 chained ||", deep_concat(6_000), "max_sql_depth"),
        (
            "1,000 nested parentheses",
            deep_parentheses(1_000),
            "cannot be parsed",
        ),
        ("300 nested CASE", deep_case(300), ""),
        ("200 nested subqueries", deep_subqueries(200), ""),
        ("800 chained CTEs", many_ctes(800), "max_sql_queries"),
        ("a 70 KiB text", huge_in_list(9_000), "max_sql_bytes"),
    ];
    for (what, sql, names) in &cases {
        let error = consumer
            .connector
            .query_remote(&contract.id, sql, AnswerFormat::Json)
            .await
            .expect_err(what);
        let text = error.to_string();
        assert!(text.contains("statement"), "{what}: {text}");
        assert!(
            text.contains(names),
            "{what}: `{names}` not named in {text}"
        );
        // The provider is still up and answers.
        let answer = consumer.ask(&contract.id, good, AnswerFormat::Json).await;
        assert!(answer.receipt.payload().rows > 0, "{what}");
    }

    // Within the limits, long but shallow queries are answered.
    for sql in [
        deep_and(100),
        huge_in_list(1_000),
        deep_subqueries(20),
        many_ctes(30),
    ] {
        let answer = consumer.ask(&contract.id, &sql, AnswerFormat::Json).await;
        assert!(answer.receipt.payload().rows > 0, "{}", &sql[..60]);
    }
    consumer.stop().await;
    provider.stop().await;
}
