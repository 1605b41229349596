//! Operating the system: `/metrics` as Prometheus reads it; the alert rules and the
//! dashboard name only metrics it exposes; the outbox relay publishes every event to
//! `coinfold.domain-events` once, in order per aggregate.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use coinfold_api::roles;
use coinfold_commands::event_store::DOMAIN_EVENTS_TOPIC;
use coinfold_projections::ingest::producer::ensure_topics;
use coinfold_tests::ws::WsClient;
use coinfold_tests::{consume, data, spawn_app};
use rdkafka::Message;
use rdkafka::message::Headers;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// The value of the sample `name{labels}` in a Prometheus text page.
fn sample(page: &str, name_and_labels: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn metrics_count_operations_subscriptions_lag_and_backlog(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let alice = app.sign_up("alice").await;
    let prices = app
        .graphql("{ prices(coins: [\"BTC\"]) { coin } }", json!({}), None)
        .await;
    data(&prices, "prices");
    // A field the schema lacks is counted as `invalid`, not under its own name.
    let invalid = app.graphql("{ madeUpField }", json!({}), None).await;
    assert!(invalid["errors"].is_array());
    let mut subscriber = WsClient::connect(
        app.address,
        json!({ "authorization": format!("Bearer {}", alice.token) }),
    )
    .await
    .expect("a graphql-ws connection");
    subscriber
        .subscribe(
            "subscription { prices(coins: [\"BTC\"]) { coin } }",
            json!({}),
        )
        .await;

    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut page = String::new();
    for _ in 0..50 {
        let response = app.get("/metrics").await;
        assert_eq!(response.status(), 200);
        page = response.text().await.unwrap();
        if sample(&page, "coinfold_graphql_subscriptions_open").is_some_and(|open| open >= 1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expect = |name: &str| {
        sample(&page, name).unwrap_or_else(|| panic!("{name} is not on /metrics:\n{page}"))
    };
    assert!(
        expect("coinfold_graphql_requests_total{operation=\"mutation register\",outcome=\"ok\"}")
            >= 1.0
    );
    assert!(
        expect("coinfold_graphql_requests_total{operation=\"query prices\",outcome=\"ok\"}") >= 1.0
    );
    assert!(
        expect("coinfold_graphql_requests_total{operation=\"invalid\",outcome=\"error\"}") >= 1.0
    );
    assert!(
        !page.contains("madeUpField"),
        "a client's name became a label"
    );
    assert!(
        expect("coinfold_graphql_request_duration_seconds_count{operation=\"query prices\"}")
            >= 1.0
    );
    assert!(page.contains(
        "coinfold_graphql_request_duration_seconds_bucket{operation=\"query prices\",le=\"0.005\"}"
    ));
    assert!(expect("coinfold_graphql_subscriptions_open") >= 1.0);
    // No projection runs here: each log projection lags by every event, and no relay
    // runs: every event's outbox row waits.
    assert_eq!(
        expect("coinfold_projection_lag{projection=\"portfolios\",source=\"log\"}"),
        events as f64
    );
    assert_eq!(
        expect("coinfold_projection_checkpoint{projection=\"users\",source=\"log\"}"),
        0.0
    );
    assert_eq!(expect("coinfold_outbox_backlog"), events as f64);
    // This process's own figures.
    assert!(expect("process_resident_memory_bytes") > 1_000_000.0);
    // A counter of whole seconds (metrics counters are integers): present, maybe 0 yet.
    assert!(expect("process_cpu_seconds_total") >= 0.0);
    assert!(expect("process_threads") >= 2.0);

    drop(subscriber);
}

/// The monitoring files that name metrics: the alert rules, their unit tests' series and
/// the Grafana dashboard.
const MONITORING: &[&str] = &[
    "deploy/monitoring/rules/coinfold.rules.yml",
    "deploy/monitoring/rules/coinfold.rules.test.yml",
    "deploy/monitoring/grafana/dashboards/coinfold.json",
];

/// Every word of `text` that starts with `coinfold_` or `process_`: the metric names it
/// uses (a histogram's `_bucket`, `_sum` or `_count` as written).
fn metric_names(text: &str) -> BTreeSet<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| is_name(c)) {
        let word_and_after = &rest[start..];
        let end = word_and_after
            .find(|c: char| !is_name(c))
            .unwrap_or(word_and_after.len());
        let word = &word_and_after[..end];
        if word.starts_with("coinfold_") || word.starts_with("process_") {
            names.insert(word.to_owned());
        }
        rest = &word_and_after[end..];
    }
    names
}

/// The names of the samples on a Prometheus text page.
fn exposed_names(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn the_dashboard_and_the_alert_rules_use_only_metrics_that_are_exposed(pool: PgPool) {
    let app = spawn_app(&pool).await;
    // One request, so that the latency histogram has its series.
    let prices = app
        .graphql("{ prices(coins: [\"BTC\"]) { coin } }", json!({}), None)
        .await;
    data(&prices, "prices");
    let page = app.get("/metrics").await.text().await.unwrap();
    let exposed = exposed_names(&page);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut used = BTreeMap::new();
    for file in MONITORING {
        let text = std::fs::read_to_string(format!("{root}/{file}"))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let names = metric_names(&text);
        assert!(names.len() >= 5, "{file} names only {names:?}");
        for name in names {
            used.entry(name).or_insert(*file);
        }
    }
    let missing: Vec<_> = used
        .iter()
        .filter(|(name, _)| !exposed.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "named by the monitoring files but not on /metrics: {missing:?}\n{page}"
    );
    println!(
        "monitoring: {} metric names used, every one on /metrics ({} names there)",
        used.len(),
        exposed.len()
    );
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn two_relays_publish_every_event_once_in_order_per_aggregate(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    for (session, name) in [(&alice, "A"), (&bob, "B"), (&alice, "C")] {
        let created = app
            .graphql(
                "mutation($n: String!) { createPortfolio(input: { name: $n }) { id } }",
                json!({ "n": name }),
                Some(&session.token),
            )
            .await;
        let id = data(&created, "createPortfolio")["id"].clone();
        for new_name in ["x", "y"] {
            let renamed = app
                .graphql(
                    "mutation($id: ID!, $n: String!) { renamePortfolio(id: $id, name: $n) { id } }",
                    json!({ "id": id, "n": format!("{name}{new_name}") }),
                    Some(&session.token),
                )
                .await;
            data(&renamed, "renamePortfolio");
        }
    }
    let stored: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT metadata->>'event_id', aggregate_id, sequence FROM events ORDER BY global_position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 11, "2 users, 3 portfolios of 3 events each");

    // Two relays at once: one holds the lock and publishes, the other stands by.
    let topic = app.topics.topic(DOMAIN_EVENTS_TOPIC);
    ensure_topics(&app.settings.kafka.brokers, &[(topic.clone(), 6)])
        .await
        .expect("the topic exists");
    let cancel = CancellationToken::new();
    let relays: Vec<_> = (0..2)
        .map(|_| {
            let (settings, cancel) = (app.settings.clone(), cancel.clone());
            tokio::spawn(async move { roles::relay(&settings, cancel).await })
        })
        .collect();
    let messages = consume(
        &app.settings.kafka.brokers,
        &app.topics,
        &topic,
        stored.len(),
        Duration::from_secs(60),
    )
    .await;
    cancel.cancel();
    for relay in relays {
        relay.await.unwrap().expect("the relay stops cleanly");
    }

    let mut seen = BTreeSet::new();
    let mut sequences: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for message in &messages {
        let body: Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        assert_eq!(body["aggregate_id"], key.as_str(), "keyed by aggregate id");
        let header = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "event_id"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .expect("an event_id header");
        assert_eq!(body["event_id"], header.as_str());
        assert!(seen.insert(header), "published twice");
        sequences
            .entry(key)
            .or_default()
            .push(body["sequence"].as_i64().unwrap());
    }
    let expected: BTreeSet<String> = stored.iter().map(|(id, _, _)| id.clone()).collect();
    assert_eq!(seen, expected, "every stored event, nothing else");
    for (aggregate, sequence) in &sequences {
        let mut sorted = sequence.clone();
        sorted.sort_unstable();
        assert_eq!(sequence, &sorted, "{aggregate} out of order");
    }
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(waiting, 0);
}
