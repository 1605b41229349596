//! Subscriptions over graphql-ws with a real client: prices arrive after ticks are
//! produced; a triggered alert reaches its owner and nobody else; `events(after:)`
//! resumes after a disconnect with no gap and no repeat. Set `TRANSCRIPT=1` to print
//! what the subscribers receive.

use std::collections::BTreeSet;
use std::time::Duration;

use coinfold_tests::ws::WsClient;
use coinfold_tests::{TestApp, data, spawn_app, usd_tick};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

fn show(who: &str, payload: &Value) {
    if std::env::var_os("TRANSCRIPT").is_some() {
        println!("{who} <- {payload}");
    }
}

fn bearer(token: &str) -> Value {
    json!({ "authorization": format!("Bearer {token}") })
}

/// Produces a BTC tick at each price in turn, every 200 ms, until `client` receives a
/// message (its payload); the subscription may need a moment to reach Redis.
async fn tick_until_received(app: &TestApp, client: &mut WsClient, prices: &[&str]) -> Value {
    for price in prices.iter().cycle().take(100) {
        let at = OffsetDateTime::now_utc();
        app.produce_ticks(&[usd_tick("BTC", price.parse().unwrap(), at)])
            .await;
        if let Some(payload) = client.next(Duration::from_millis(200)).await {
            return payload;
        }
    }
    panic!("nothing received after 100 ticks");
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn prices_arrive_after_ticks_are_produced(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections();
    let mut client = WsClient::connect(app.address, json!({})).await.unwrap();
    client
        .subscribe(
            "subscription { prices(coins: [\"BTC\"]) { coin quote price source at } }",
            json!({}),
        )
        .await;
    let first = tick_until_received(&app, &mut client, &["101.5", "102.5"]).await;
    show("anonymous", &first);
    let update = &first["data"]["prices"];
    assert_eq!(update["coin"], "BTC");
    assert_eq!(update["quote"], "USD");
    assert!(["101.5", "102.5"].contains(&update["price"].as_str().unwrap()));
    // The next tick comes through as it is projected.
    app.produce_ticks(&[usd_tick(
        "BTC",
        "777.25".parse().unwrap(),
        OffsetDateTime::now_utc(),
    )])
    .await;
    let mut seen = Vec::new();
    while let Some(payload) = client.next(Duration::from_secs(10)).await {
        show("anonymous", &payload);
        seen.push(
            payload["data"]["prices"]["price"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        if seen.last().map(String::as_str) == Some("777.25") {
            break;
        }
    }
    assert_eq!(seen.last().map(String::as_str), Some("777.25"), "{seen:?}");

    // A bad credential closes the connection at init.
    let refused = WsClient::connect(app.address, json!({ "authorization": "Bearer nope" })).await;
    assert!(refused.is_err());
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_triggered_alert_reaches_its_owner_only(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections();
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    // The coin must be known before an alert can watch it.
    app.produce_ticks(&[usd_tick(
        "BTC",
        "900".parse().unwrap(),
        OffsetDateTime::now_utc(),
    )])
    .await;
    app.eventually("{ price(coin: \"BTC\") { price } }", json!({}), None, |r| {
        r["data"]["price"]["price"].is_string()
    })
    .await;
    let created = app
        .graphql(
            "mutation { createAlert(input: { coin: \"BTC\", condition: { priceAbove: \"1000\" } }) { id } }",
            json!({}),
            Some(&alice.token),
        )
        .await;
    let alert_id = data(&created, "createAlert")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let query = "subscription { alertTriggered { alertId coin observation } }";
    let mut alices = WsClient::connect(app.address, bearer(&alice.token))
        .await
        .unwrap();
    alices.subscribe(query, json!({})).await;
    let mut bobs = WsClient::connect(app.address, bearer(&bob.token))
        .await
        .unwrap();
    bobs.subscribe(query, json!({})).await;
    // Anonymous connections cannot subscribe to alerts.
    let mut anonymous = WsClient::connect(app.address, json!({})).await.unwrap();
    anonymous.subscribe(query, json!({})).await;
    let refused = anonymous.receive(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{refused}"
    );

    let fired = tick_until_received(&app, &mut alices, &["1500"]).await;
    show("alice", &fired);
    let fired = &fired["data"]["alertTriggered"];
    assert_eq!(fired["alertId"], alert_id.as_str());
    assert_eq!(fired["coin"], "BTC");
    let observed: Decimal = fired["observation"]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(observed >= Decimal::from(1000));
    assert_eq!(
        bobs.next(Duration::from_secs(2)).await,
        None,
        "bob saw alice's alert"
    );
}

const EVENTS: &str = "subscription($after: Int!) { events(after: $after) { \
    globalPosition aggregateType aggregateId sequence eventType actor } }";
const TRADE: &str =
    "mutation($p: ID!, $t: TradeInput!) { recordTrade(portfolioId: $p, trade: $t) { version } }";

async fn trades(app: &TestApp, token: &str, portfolio: &str, count: usize) {
    for n in 0..count {
        let trade = json!({ "side": "BUY", "coin": "BTC", "quantity": "1", "price": (100 + n).to_string(),
                            "executedAt": "2026-01-01T00:00:00Z" });
        data(
            &app.graphql(TRADE, json!({ "p": portfolio, "t": trade }), Some(token))
                .await,
            "recordTrade",
        );
    }
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn events_resume_after_a_disconnect_without_gap_or_repeat(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections();
    app.produce_ticks(&[usd_tick(
        "BTC",
        "100".parse().unwrap(),
        OffsetDateTime::now_utc(),
    )])
    .await;
    app.eventually("{ price(coin: \"BTC\") { price } }", json!({}), None, |r| {
        r["data"]["price"]["price"].is_string()
    })
    .await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let create = "mutation { createPortfolio(input: { name: \"p\" }) { id } }";
    let mine = app.graphql(create, json!({}), Some(&alice.token)).await;
    let mine = data(&mine, "createPortfolio")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs = app.graphql(create, json!({}), Some(&bob.token)).await;
    let theirs = data(&theirs, "createPortfolio")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    trades(&app, &alice.token, &mine, 3).await;
    trades(&app, &bob.token, &theirs, 3).await;

    // Alice's events so far: her registration, her portfolio and 3 trades. Read 3,
    // then drop the connection while more are written.
    let mut client = WsClient::connect(app.address, bearer(&alice.token))
        .await
        .unwrap();
    client.subscribe(EVENTS, json!({ "after": 0 })).await;
    let mut seen: Vec<Value> = Vec::new();
    for _ in 0..3 {
        let payload = client
            .next(Duration::from_secs(10))
            .await
            .expect("an event");
        show("alice (first connection)", &payload);
        seen.push(payload["data"]["events"].clone());
    }
    drop(client);
    trades(&app, &alice.token, &mine, 4).await;
    trades(&app, &bob.token, &theirs, 2).await;

    let last = seen.last().unwrap()["globalPosition"].as_i64().unwrap();
    let mut client = WsClient::connect(app.address, bearer(&alice.token))
        .await
        .unwrap();
    client.subscribe(EVENTS, json!({ "after": last })).await;
    // 1 + 1 + 3 + 4 = 9 events of hers in all; then it goes live.
    while seen.len() < 9 {
        let payload = client
            .next(Duration::from_secs(10))
            .await
            .expect("an event");
        show("alice (resumed)", &payload);
        seen.push(payload["data"]["events"].clone());
    }
    trades(&app, &alice.token, &mine, 1).await;
    let live = client
        .next(Duration::from_secs(10))
        .await
        .expect("a live event");
    show("alice (live)", &live);
    seen.push(live["data"]["events"].clone());
    assert_eq!(client.next(Duration::from_millis(500)).await, None);

    let positions: Vec<i64> = seen
        .iter()
        .map(|e| e["globalPosition"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    // No gap: her portfolio's sequence runs 1..=9 without a hole, and nothing of
    // Bob's came through.
    let portfolio_sequences: Vec<i64> = seen
        .iter()
        .filter(|e| e["aggregateId"] == mine.as_str())
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(portfolio_sequences, (1..=9).collect::<Vec<_>>());
    let aggregates: BTreeSet<&str> = seen
        .iter()
        .map(|e| e["aggregateId"].as_str().unwrap())
        .collect();
    assert_eq!(
        aggregates,
        BTreeSet::from([alice.user_id.as_str(), mine.as_str()])
    );
}
