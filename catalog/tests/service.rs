//! Integration tests: the real server on port 0 over a sled store in a
//! temporary folder, driven through the client.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::path::Path;
use std::sync::Arc;

use catalog::client::CatalogClient;
use catalog::config::CatalogConfig;
use catalog::sample::{SampleProvider, column};
use catalog::search::{SearchPage, SearchQuery};
use catalog::server::{RunningCatalog, open_catalog};
use catalog::{DatasetDescription, Error};
use chrono::Utc;
use policy::credential::Authority;
use policy::keys::KeyPair;
use policy::model::{Access, ColumnClass};
use serde_json::Value;

struct World {
    home: tempfile::TempDir,
    authority: Authority,
    north: SampleProvider,
    south: SampleProvider,
}

impl World {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let authority = Authority::new("authority", KeyPair::generate().unwrap());
        let trusted = serde_json::to_string(&authority.trusted()).unwrap();
        std::fs::write(home.path().join("authority.json"), trusted).unwrap();
        Self {
            home,
            authority,
            north: SampleProvider::new("platform-north").unwrap(),
            south: SampleProvider::new("platform-south").unwrap(),
        }
    }

    async fn start(&self) -> (RunningCatalog, CatalogClient) {
        let config = CatalogConfig {
            authority_key: Some("authority.json".into()),
            ..CatalogConfig::default()
        };
        let catalog = open_catalog(self.home.path(), &config).unwrap();
        let running =
            RunningCatalog::start(Arc::new(catalog), "127.0.0.1:0", config.max_body_bytes)
                .await
                .unwrap();
        let client = CatalogClient::new(&running.url()).unwrap();
        (running, client)
    }

    fn credential(&self, provider: &SampleProvider) -> String {
        self.authority
            .issue(&provider.membership(), Utc::now().timestamp(), 3600)
            .unwrap()
    }

    async fn register_all(&self, client: &CatalogClient) {
        for provider in [&self.north, &self.south] {
            let participant = client.register(&self.credential(provider)).await.unwrap();
            assert_eq!(participant.public_key, provider.key.public_key());
        }
    }
}

fn query(q: &str) -> SearchQuery {
    SearchQuery {
        q: Some(q.to_owned()),
        ..SearchQuery::default()
    }
}

fn ids(page: &SearchPage) -> Vec<String> {
    page.hits
        .iter()
        .map(|h| format!("{}/{}", h.provider, h.id))
        .collect()
}

/// Publishes the sample datasets: north has gearbox, spindle and a rows
/// offer on press energy; south has spindle and paint.
async fn publish_samples(world: &World, client: &CatalogClient) {
    let north = &world.north;
    let south = &world.south;
    let mut samples = vec![
        (
            north,
            north
                .description("gearbox", "Gearbox vibration", &["vibration", "gearbox"])
                .unwrap(),
        ),
        (
            north,
            north
                .description("spindle", "Spindle vibration and temperature", &["spindle"])
                .unwrap(),
        ),
        (
            south,
            south
                .description("spindle", "Spindle wear", &["spindle", "wear"])
                .unwrap(),
        ),
        (
            south,
            south
                .description("paint", "Paint shop quality", &["quality"])
                .unwrap(),
        ),
    ];
    let mut energy = north
        .description("press-energy", "Press energy", &["energy"])
        .unwrap();
    energy.sector = Some("Energy".into());
    energy.columns = vec![
        column("plant", "Utf8", ColumnClass::Dimension),
        column("kwh", "Float64", ColumnClass::Measure),
    ];
    let mut policy = north.policy("press-energy", &["demand-planning"], Access::Rows);
    policy.columns.insert("kwh".into(), ColumnClass::Measure);
    energy.offers = vec![north.offer("press-energy-rows", policy).unwrap()];
    samples.push((north, energy));
    for (provider, description) in samples {
        let receipt = client
            .publish(&provider.sign(description).unwrap())
            .await
            .unwrap();
        assert_eq!((receipt.version, receipt.replaced), (1, None));
    }
}

#[tokio::test]
async fn register_publish_search_update_and_unpublish() {
    let world = World::new();
    let (running, client) = world.start().await;
    client.health().await.unwrap();
    world.register_all(&client).await;
    publish_samples(&world, &client).await;

    // Words: relevance (title 3, keyword 2, description 1), then provider and id.
    let page = client.search(&query("spindle")).await.unwrap();
    assert_eq!(
        ids(&page),
        ["platform-north/spindle", "platform-south/spindle"]
    );
    assert_eq!((page.hits[0].score, page.hits[1].score), (6, 6));
    let page = client.search(&query("vibration")).await.unwrap();
    assert_eq!(
        ids(&page),
        ["platform-north/gearbox", "platform-north/spindle"]
    );
    assert_eq!((page.hits[0].score, page.hits[1].score), (6, 4));
    let page = client.search(&query("VIBRATION gearbox")).await.unwrap();
    assert_eq!(ids(&page), ["platform-north/gearbox"]);
    assert_eq!(
        client.search(&query("spindle paint")).await.unwrap().total,
        0
    );

    // Filters.
    let by = |f: fn(&mut SearchQuery)| {
        let mut q = SearchQuery::default();
        f(&mut q);
        q
    };
    let page = client
        .search(&by(|q| q.provider = Some("platform-south".into())))
        .await
        .unwrap();
    assert_eq!(
        ids(&page),
        ["platform-south/paint", "platform-south/spindle"]
    );
    let page = client
        .search(&by(|q| q.sector = Some("energy".into())))
        .await
        .unwrap();
    assert_eq!(ids(&page), ["platform-north/press-energy"]);
    let page = client
        .search(&by(|q| q.column = Some("KWH".into())))
        .await
        .unwrap();
    assert_eq!(ids(&page), ["platform-north/press-energy"]);
    let page = client
        .search(&by(|q| q.access = Some(Access::Rows)))
        .await
        .unwrap();
    assert_eq!(ids(&page), ["platform-north/press-energy"]);
    let page = client
        .search(&by(|q| q.purpose = Some("predictive-maintenance".into())))
        .await
        .unwrap();
    assert_eq!(page.total, 4);
    let page = client
        .search(&by(|q| {
            q.purpose = Some("demand-planning".into());
            q.access = Some(Access::Aggregate);
        }))
        .await
        .unwrap();
    assert_eq!(page.total, 0);
    let mut q = query("spindle");
    q.provider = Some("platform-south".into());
    assert_eq!(
        ids(&client.search(&q).await.unwrap()),
        ["platform-south/spindle"]
    );

    // Pagination: stable order, pages partition the hits.
    let all = client.search(&SearchQuery::default()).await.unwrap();
    assert_eq!(all.total, 5);
    let mut paged = Vec::new();
    for offset in [0, 2, 4] {
        let page = client
            .search(&SearchQuery {
                limit: Some(2),
                offset: Some(offset),
                ..SearchQuery::default()
            })
            .await
            .unwrap();
        assert_eq!((page.total, page.offset, page.limit), (5, offset, 2));
        paged.extend(ids(&page));
    }
    assert_eq!(paged, ids(&all));
    let err = client
        .search(&SearchQuery {
            limit: Some(101),
            ..SearchQuery::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Refused { status: 400, ref field, .. } if field.as_deref() == Some("limit")),
        "{err}"
    );

    // Show: the record and the provider's JWS, which verifies.
    let shown = client.show("platform-north", "gearbox").await.unwrap();
    assert_eq!(shown.dataset.title, "Gearbox vibration");
    let verified = shown.verify().unwrap();
    assert_eq!(verified.signer(), world.north.key.public_key());

    // Update: the version grows, search follows, old words are gone.
    let mut update = world
        .north
        .description("gearbox", "Planetary gear wear", &["planetary"])
        .unwrap();
    update.version = 2;
    let receipt = client
        .publish(&world.north.sign(update.clone()).unwrap())
        .await
        .unwrap();
    assert_eq!((receipt.version, receipt.replaced), (2, Some(1)));
    assert_eq!(client.search(&query("gearbox")).await.unwrap().total, 0);
    let page = client.search(&query("planetary")).await.unwrap();
    assert_eq!(
        (ids(&page), page.hits[0].version),
        (vec!["platform-north/gearbox".to_owned()], 2)
    );
    assert_eq!(
        client
            .show("platform-north", "gearbox")
            .await
            .unwrap()
            .dataset
            .version,
        2
    );
    let err = client
        .publish(&world.north.sign(update).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Refused { status: 409, .. }), "{err}");

    // Unpublish: only with the provider's signed request.
    let foreign = world.south.unpublish("gearbox", 2).unwrap();
    let err = client
        .unpublish_jws("platform-north", "gearbox", foreign.jws())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refused {
                status: 400 | 403,
                ..
            }
        ),
        "{err}"
    );
    let receipt = client
        .unpublish(&world.north.unpublish("gearbox", 2).unwrap())
        .await
        .unwrap();
    assert_eq!(receipt.version, 2);
    assert_eq!(client.search(&query("planetary")).await.unwrap().total, 0);
    let err = client.show("platform-north", "gearbox").await.unwrap_err();
    assert!(matches!(err, Error::Refused { status: 404, .. }), "{err}");
    assert_eq!(
        client.search(&SearchQuery::default()).await.unwrap().total,
        4
    );
    running.stop().await.unwrap();
}

/// Everything a reader can see of the catalog.
async fn snapshot(client: &CatalogClient) -> (Value, Value, Value) {
    let shown = client.show("platform-north", "spindle").await.unwrap();
    let page = client.search(&SearchQuery::default()).await.unwrap();
    let mut dcat = client.dcat().await.unwrap();
    dcat["dct:modified"] = Value::Null;
    (
        serde_json::to_value(shown).unwrap(),
        serde_json::to_value(page).unwrap(),
        dcat,
    )
}

#[tokio::test]
async fn forged_unsigned_and_foreign_publications_are_refused_and_change_nothing() {
    let world = World::new();
    let (running, client) = world.start().await;
    world.register_all(&client).await;
    publish_samples(&world, &client).await;
    let before = snapshot(&client).await;

    let mut hijack: DatasetDescription = world
        .north
        .description("spindle", "Hijacked spindle", &["hijacked"])
        .unwrap();
    hijack.version = 7;
    let genuine = world.north.sign(hijack.clone()).unwrap();
    let attempts: Vec<(&str, String, &[u16])> = vec![
        (
            "tampered payload",
            jws::tamper_title(genuine.jws(), "Tampered spindle"),
            &[401],
        ),
        (
            "spliced payload",
            jws::splice(
                genuine.jws(),
                world
                    .north
                    .sign(world.north.description("x", "X", &[]).unwrap())
                    .unwrap()
                    .jws(),
            ),
            &[401],
        ),
        ("alg none", jws::unsigned(genuine.jws()), &[400]),
        (
            "plain JSON",
            serde_json::to_string(&hijack).unwrap(),
            &[400],
        ),
        (
            "signed by another participant",
            world.south.sign(hijack.clone()).unwrap().jws().to_owned(),
            &[403],
        ),
        (
            "foreign offer inside",
            {
                let mut d = hijack.clone();
                let policy = world.south.policy("spindle", &["audit"], Access::Rows);
                let mut offer_policy = policy;
                offer_policy.issuer = "platform-north".into();
                d.offers
                    .push(world.south.offer("foreign", offer_policy).unwrap());
                world.north.sign(d).unwrap().jws().to_owned()
            },
            &[403],
        ),
        (
            "unregistered provider",
            {
                let stranger = SampleProvider::new("stranger").unwrap();
                stranger
                    .sign(stranger.description("spindle", "Stranger", &[]).unwrap())
                    .unwrap()
                    .jws()
                    .to_owned()
            },
            &[403],
        ),
        (
            "denied column listed",
            {
                let mut d = hijack.clone();
                d.columns
                    .push(column("operator_name", "Utf8", ColumnClass::Denied));
                world.north.sign(d).unwrap().jws().to_owned()
            },
            &[400],
        ),
    ];
    for (what, jws, statuses) in attempts {
        let err = client.publish_jws(&jws).await.unwrap_err();
        match err {
            Error::Refused {
                status,
                ref message,
                ..
            } => {
                assert!(statuses.contains(&status), "{what}: {status} {message}");
                assert!(
                    !message.is_empty() && !message.contains("internal"),
                    "{what}: {message}"
                );
            }
            other => panic!("{what}: {other}"),
        }
    }
    let forged_delete = jws::tamper_title(world.north.unpublish("spindle", 9).unwrap().jws(), "x");
    assert!(
        client
            .unpublish_jws("platform-north", "spindle", &forged_delete)
            .await
            .is_err()
    );
    assert_eq!(snapshot(&client).await, before);
    assert_eq!(client.search(&query("hijacked")).await.unwrap().total, 0);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_credential_not_from_the_authority_is_refused() {
    let world = World::new();
    let (running, client) = world.start().await;
    let rogue = Authority::new("authority", KeyPair::generate().unwrap());
    let credential = rogue
        .issue(&world.north.membership(), Utc::now().timestamp(), 3600)
        .unwrap();
    let err = client.register(&credential).await.unwrap_err();
    assert!(matches!(err, Error::Refused { status: 401, .. }), "{err}");
    let err = client.participant("platform-north").await.unwrap_err();
    assert!(matches!(err, Error::Refused { status: 404, .. }), "{err}");
    let tampered = jws::tamper_title(&world.credential(&world.north), "x");
    assert!(matches!(
        client.register(&tampered).await,
        Err(Error::Refused { status: 401, .. })
    ));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn dcat_export_carries_datasets_and_odrl_offers() {
    let world = World::new();
    let (running, client) = world.start().await;
    world.register_all(&client).await;
    publish_samples(&world, &client).await;
    let dcat = client.dcat().await.unwrap();
    let text = serde_json::to_string(&dcat).unwrap();
    let _: Value = serde_json::from_str(&text).unwrap();
    for prefix in ["dcat", "dct", "odrl"] {
        assert!(
            dcat["@context"][prefix]
                .as_str()
                .unwrap()
                .starts_with("http"),
            "{prefix}"
        );
    }
    assert_eq!(dcat["@type"], "dcat:Catalog");
    let datasets = dcat["dcat:dataset"].as_array().unwrap();
    assert_eq!(datasets.len(), 5);
    assert!(datasets.iter().all(|d| d["@type"] == "dcat:Dataset"));
    let energy = datasets
        .iter()
        .find(|d| d["dct:identifier"] == "press-energy")
        .unwrap();
    assert_eq!(energy["dct:title"], "Press energy");
    assert_eq!(
        energy["dcat:distribution"][0]["dcat:accessService"]["dcat:endpointURL"]["@id"],
        world.north.endpoint
    );
    let offers = energy["odrl:hasPolicy"].as_array().unwrap();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0]["@type"], "odrl:Offer");
    assert_eq!(offers[0]["odrl:uid"], "press-energy-rows");
    let constraints = offers[0]["odrl:permission"][0]["odrl:constraint"]
        .as_array()
        .unwrap();
    let purpose = constraints
        .iter()
        .find(|c| c["odrl:leftOperand"]["@id"] == "odrl:purpose")
        .unwrap();
    assert_eq!(
        purpose["odrl:rightOperand"],
        serde_json::json!(["demand-planning"])
    );
    let mode = constraints
        .iter()
        .find(|c| c["odrl:leftOperand"]["@id"] == "ds:accessMode")
        .unwrap();
    assert_eq!(mode["odrl:rightOperand"], "rows");
    let gearbox = datasets
        .iter()
        .find(|d| d["dct:identifier"] == "gearbox")
        .unwrap();
    let constraints = gearbox["odrl:hasPolicy"][0]["odrl:permission"][0]["odrl:constraint"]
        .as_array()
        .unwrap();
    let min_entities = constraints
        .iter()
        .find(|c| c["odrl:leftOperand"]["@id"] == "ds:minEntitiesPerGroup")
        .unwrap();
    assert_eq!(min_entities["odrl:rightOperand"], 3);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn openness_list_as_json_and_html_carries_the_rules() {
    let world = World::new();
    let (running, client) = world.start().await;
    world.register_all(&client).await;
    publish_samples(&world, &client).await;
    let list = client.openness("platform-north").await.unwrap();
    let ids: Vec<&str> = list.datasets.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["gearbox", "press-energy", "spindle"]);
    let gearbox = &list.datasets[0].rules[0];
    assert_eq!(
        gearbox.purposes,
        ["predictive-maintenance", "quality-analysis"]
    );
    assert_eq!(
        (gearbox.access, gearbox.min_rows, gearbox.min_entities),
        (Access::Aggregate, Some(10), Some(3))
    );
    assert!(!gearbox.assignee.any_member);
    assert_eq!(gearbox.assignee.attributes["sme"], ["true"]);
    assert!(!gearbox.columns.contains_key("operator_name"));
    let energy = &list.datasets[1].rules[0];
    assert_eq!((energy.access, energy.min_rows), (Access::Rows, None));

    let html = client.openness_html("platform-north").await.unwrap();
    for needle in [
        "开放清单",
        "Gearbox vibration",
        "predictive-maintenance",
        "at least 10 rows and 3 entities per group",
        "sme in true",
        "demand-planning",
        &gearbox.not_after.to_rfc3339(),
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
    assert!(!html.contains("operator_name"));
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_restarted_catalog_keeps_and_finds_everything() {
    let world = World::new();
    let (running, client) = world.start().await;
    world.register_all(&client).await;
    publish_samples(&world, &client).await;
    client
        .unpublish(&world.south.unpublish("paint", 1).unwrap())
        .await
        .unwrap();
    running.stop().await.unwrap();
    drop(client);
    assert!(Path::new(&world.home.path().join("store")).is_dir());

    let (running, client) = world.start().await;
    assert_eq!(running.catalog().len(), 4);
    assert_eq!(
        ids(&client.search(&query("spindle")).await.unwrap()),
        ["platform-north/spindle", "platform-south/spindle"]
    );
    assert_eq!(client.search(&query("paint")).await.unwrap().total, 0);
    assert!(
        client
            .show("platform-north", "gearbox")
            .await
            .unwrap()
            .verify()
            .is_ok()
    );
    // Versions survive: replaying version 1 is refused, also for the withdrawn one.
    let replay = world
        .south
        .sign(
            world
                .south
                .description("paint", "Paint shop quality", &[])
                .unwrap(),
        )
        .unwrap();
    assert!(matches!(
        client.publish(&replay).await,
        Err(Error::Refused { status: 409, .. })
    ));
    let participant = client.participant("platform-south").await.unwrap();
    assert_eq!(participant.key_id, world.south.key.public_key().key_id());
    running.stop().await.unwrap();
}

/// Hand-made JWS forgeries.
mod jws {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            }
        }
        out
    }

    fn decode(text: &str) -> Vec<u8> {
        let values: Vec<u32> = text
            .bytes()
            .map(|c| ALPHABET.iter().position(|a| *a == c).unwrap() as u32)
            .collect();
        let mut out = Vec::new();
        for chunk in values.chunks(4) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, v)| n | v << (18 - 6 * i));
            for i in 0..chunk.len() - 1 {
                out.push((n >> (16 - 8 * i)) as u8);
            }
        }
        out
    }

    fn parts(jws: &str) -> Vec<&str> {
        jws.split('.').collect()
    }

    /// The same JWS with `title` (or `name`) changed in its payload.
    pub fn tamper_title(jws: &str, title: &str) -> String {
        let p = parts(jws);
        let mut payload: serde_json::Value = serde_json::from_slice(&decode(p[1])).unwrap();
        let member = if payload.get("title").is_some() {
            "title"
        } else if payload.get("name").is_some() {
            "name"
        } else {
            "at"
        };
        payload[member] = title.into();
        format!(
            "{}.{}.{}",
            p[0],
            encode(&serde_json::to_vec(&payload).unwrap()),
            p[2]
        )
    }

    /// The header and signature of `a` around the payload of `b`.
    pub fn splice(a: &str, b: &str) -> String {
        format!("{}.{}.{}", parts(a)[0], parts(b)[1], parts(a)[2])
    }

    /// The payload of `jws` under an `alg: none` header, without signature.
    pub fn unsigned(jws: &str) -> String {
        let header = encode(br#"{"alg":"none","typ":"dataset+jws"}"#);
        format!("{header}.{}.", parts(jws)[1])
    }

    #[test]
    fn round_trips() {
        for text in ["", "a", "ab", "abc", "abcd", "{\"x\":\"ü\"}"] {
            assert_eq!(decode(&encode(text.as_bytes())), text.as_bytes());
        }
    }
}
