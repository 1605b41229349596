//! Subscriptions over graphql-ws with a real client: prices arrive after ticks are
//! produced; candles follow the open candle and open the next; a portfolio is revalued
//! on each price and holding change, for its owner only; a triggered alert reaches its
//! owner and nobody else; `events(after:)` resumes after a disconnect with no gap and
//! no repeat. Set `TRANSCRIPT=1` to print
//! what the subscribers receive.

use std::collections::BTreeSet;
use std::time::Duration;

use coinfold_tests::ws::WsClient;
use coinfold_tests::{TestApp, data, spawn_app, spawn_app_with, usd_tick};
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
/// message (its payload); the subscription may need a moment to reach Redis, and the
/// projections' consumer group a moment to form (at most 60 s in all).
async fn tick_until_received(app: &TestApp, client: &mut WsClient, prices: &[&str]) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut produced = 0;
    for price in prices.iter().cycle() {
        let at = OffsetDateTime::now_utc();
        app.produce_ticks(&[usd_tick("BTC", price.parse().unwrap(), at)])
            .await;
        produced += 1;
        if let Some(payload) = client.next(Duration::from_millis(200)).await {
            return payload;
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
    }
    panic!("nothing received within 60 s, after {produced} ticks");
}

/// Produces a BTC tick at `price` now and waits until the market read model has it:
/// a coin must be known before trades or alerts name it.
async fn btc_priced_at(app: &TestApp, price: &str) {
    app.produce_ticks(&[usd_tick(
        "BTC",
        price.parse().unwrap(),
        OffsetDateTime::now_utc(),
    )])
    .await;
    app.eventually("{ price(coin: \"BTC\") { price } }", json!({}), None, |r| {
        r["data"]["price"]["price"] == price
    })
    .await;
}

/// Subscribes with `query` and expects it refused with `code`, then completed.
async fn assert_refused(client: &mut WsClient, query: &str, variables: Value, code: &str) {
    client.subscribe(query, variables).await;
    let refused = client.receive(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], code,
        "{refused}"
    );
    let ended = client.receive(Duration::from_secs(10)).await.unwrap();
    assert_eq!(ended["type"], "complete", "{ended}");
}

fn rfc3339(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        value.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn prices_arrive_after_ticks_are_produced(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections().await;
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
    // The exchange time is a DateTime (epoch milliseconds overflow GraphQL's Int).
    let at = OffsetDateTime::parse(
        update["at"].as_str().expect("at is a DateTime string"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        (OffsetDateTime::now_utc() - at).abs() < time::Duration::minutes(2),
        "{at}"
    );
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
    let _projections = app.run_projections().await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    btc_priced_at(&app, "900").await;
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
    assert_refused(&mut anonymous, query, json!({}), "UNAUTHENTICATED").await;

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
    let _projections = app.run_projections().await;
    btc_priced_at(&app, "100").await;
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

/// The next payload whose `data.<field>` satisfies `wanted`, skipping the others;
/// panics after `wait` without one.
async fn next_where(
    who: &str,
    client: &mut WsClient,
    field: &str,
    wait: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + wait;
    let mut skipped = Vec::new();
    while let Some(payload) = client
        .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        show(who, &payload);
        let value = payload["data"][field].clone();
        if wanted(&value) {
            return value;
        }
        skipped.push(value);
    }
    panic!("{who}: no {field} as wanted within {wait:?}; received {skipped:?}");
}

/// A new portfolio of the caller's holding 2 BTC bought at 80; its id.
async fn two_btc_at_80(app: &TestApp, token: &str) -> String {
    let portfolio = app.create_portfolio(token, "p").await;
    let buy = json!({ "side": "BUY", "coin": "BTC", "quantity": "2", "price": "80",
                      "executedAt": "2026-01-01T00:00:00Z" });
    data(
        &app.graphql(TRADE, json!({ "p": portfolio, "t": buy }), Some(token))
            .await,
        "recordTrade",
    );
    portfolio
}

fn decimal(value: &Value) -> Decimal {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a decimal string"))
        .parse()
        .unwrap()
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_portfolio_is_revalued_on_price_and_holding_changes_for_its_owner_only(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections().await;
    btc_priced_at(&app, "100").await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    // 2 BTC at 80: cost basis 160.
    let portfolio = two_btc_at_80(&app, &alice.token).await;

    let query = "subscription($id: ID!) { portfolio(id: $id) { \
        holdings { coin quantity costBasis realizedGain price value unrealizedGain } \
        usd { value costBasis realizedGain unrealizedGain } } }";
    let mut bobs = WsClient::connect(app.address, bearer(&bob.token))
        .await
        .unwrap();
    assert_refused(&mut bobs, query, json!({ "id": portfolio }), "NOT_FOUND").await;

    let mut alices = WsClient::connect(app.address, bearer(&alice.token))
        .await
        .unwrap();
    alices.subscribe(query, json!({ "id": portfolio })).await;
    // Valued at once: 2 × 100 = 200, unrealized 200 − 160 = 40 (the trade may still be
    // on its way to the read model).
    let now = next_where(
        "alice",
        &mut alices,
        "portfolio",
        Duration::from_secs(10),
        |p| !p["holdings"].as_array().unwrap().is_empty(),
    )
    .await;
    assert_eq!(decimal(&now["usd"]["value"]), Decimal::from(200), "{now}");
    assert_eq!(decimal(&now["usd"]["costBasis"]), Decimal::from(160));
    assert_eq!(decimal(&now["usd"]["unrealizedGain"]), Decimal::from(40));

    // A price change revalues it: 2 × 150 = 300, unrealized 140.
    app.produce_ticks(&[usd_tick(
        "BTC",
        "150".parse().unwrap(),
        OffsetDateTime::now_utc(),
    )])
    .await;
    let repriced = next_where(
        "alice",
        &mut alices,
        "portfolio",
        Duration::from_secs(15),
        |p| decimal(&p["usd"]["value"]) == Decimal::from(300),
    )
    .await;
    assert_eq!(
        decimal(&repriced["holdings"][0]["price"]),
        Decimal::from(150)
    );
    assert_eq!(
        decimal(&repriced["usd"]["unrealizedGain"]),
        Decimal::from(140)
    );

    // A change of holdings revalues it: sell 1 at 150, realized 150 − 80 = 70; what is
    // left is 1 BTC worth 150 over a cost basis of 80.
    let sell = json!({ "side": "SELL", "coin": "BTC", "quantity": "1", "price": "150",
                       "executedAt": "2026-01-02T00:00:00Z" });
    data(
        &app.graphql(
            TRADE,
            json!({ "p": portfolio, "t": sell }),
            Some(&alice.token),
        )
        .await,
        "recordTrade",
    );
    let sold = next_where(
        "alice",
        &mut alices,
        "portfolio",
        Duration::from_secs(15),
        |p| decimal(&p["holdings"][0]["quantity"]) == Decimal::ONE,
    )
    .await;
    assert_eq!(decimal(&sold["usd"]["value"]), Decimal::from(150), "{sold}");
    assert_eq!(decimal(&sold["usd"]["costBasis"]), Decimal::from(80));
    assert_eq!(decimal(&sold["usd"]["realizedGain"]), Decimal::from(70));
    assert_eq!(decimal(&sold["usd"]["unrealizedGain"]), Decimal::from(70));
    assert_eq!(
        bobs.receive(Duration::from_millis(500)).await,
        None,
        "bob received alice's portfolio"
    );
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_portfolio_subscription_sends_at_most_one_summary_a_second_and_only_changes(
    pool: PgPool,
) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections().await;
    btc_priced_at(&app, "100").await;
    let alice = app.sign_up("alice").await;
    let portfolio = two_btc_at_80(&app, &alice.token).await;
    let mut client = WsClient::connect(app.address, bearer(&alice.token))
        .await
        .unwrap();
    client
        .subscribe(
            "subscription($id: ID!) { portfolio(id: $id) { usd { value } } }",
            json!({ "id": portfolio }),
        )
        .await;
    next_where(
        "alice",
        &mut client,
        "portfolio",
        Duration::from_secs(10),
        |p| decimal(&p["usd"]["value"]) == Decimal::from(200),
    )
    .await;

    // 30 new prices over several seconds, five at a time: a summary at most once a
    // second, and the last price's among them. A reader of its own notes each summary
    // as it arrives.
    let reader = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut received = Vec::new();
        while let Some(payload) = client
            .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            let value = decimal(&payload["data"]["portfolio"]["usd"]["value"]);
            received.push((tokio::time::Instant::now(), value));
            if value == Decimal::from(260) {
                break;
            }
        }
        (client, received)
    });
    for burst in 0..6 {
        let ticks: Vec<_> = (1..=5)
            .map(|i| {
                let price = Decimal::from(100 + burst * 5 + i);
                usd_tick("BTC", price, OffsetDateTime::now_utc())
            })
            .collect();
        app.produce_ticks(&ticks).await;
    }
    let (mut client, received) = reader.await.unwrap();
    let values: Vec<Decimal> = received.iter().map(|(_, v)| *v).collect();
    assert_eq!(values.last(), Some(&Decimal::from(260)), "{values:?}");
    assert!(values.len() >= 2, "{values:?}");
    for pair in received.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_millis(900),
            "two summaries {gap:?} apart: {values:?}"
        );
    }

    // The same price again and again changes no figure: nothing is sent.
    let same: Vec<_> = (0..10)
        .map(|i| {
            usd_tick(
                "BTC",
                Decimal::from(130),
                OffsetDateTime::now_utc() + time::Duration::milliseconds(i),
            )
        })
        .collect();
    app.produce_ticks(&same).await;
    assert_eq!(
        client.next(Duration::from_secs(3)).await,
        None,
        "a summary with no change"
    );
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn an_alert_whose_condition_holds_at_creation_fires_without_another_tick(pool: PgPool) {
    // No evaluator: only the creation itself can fire the alert.
    let app = spawn_app_with(&pool, |s| s.projections.alerts = false).await;
    let _projections = app.run_projections().await;
    btc_priced_at(&app, "100").await;
    let alice = app.sign_up("alice").await;
    let create = |condition: &str| {
        format!(
            "mutation {{ createAlert(input: {{ coin: \"BTC\", condition: {{ {condition} }} }}) {{ id }} }}"
        )
    };
    let mut ids = Vec::new();
    for condition in ["priceAbove: \"90\"", "priceAbove: \"1000\""] {
        let created = app
            .graphql(&create(condition), json!({}), Some(&alice.token))
            .await;
        ids.push(
            data(&created, "createAlert")["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let listed = app
        .eventually(
            "{ alerts { nodes { id status timesTriggered lastObservation } } }",
            json!({}),
            Some(&alice.token),
            |r| {
                r["data"]["alerts"]["nodes"]
                    .as_array()
                    .is_some_and(|nodes| nodes.len() == 2 && nodes[0]["status"] == "FIRED")
            },
        )
        .await;
    let nodes = &listed["data"]["alerts"]["nodes"];
    assert_eq!(nodes[0]["id"], ids[0].as_str());
    assert_eq!(nodes[0]["timesTriggered"], 1);
    assert_eq!(nodes[0]["lastObservation"]["value"], "100", "{listed}");
    assert_eq!(nodes[1]["id"], ids[1].as_str());
    assert_eq!(nodes[1]["status"], "ARMED", "{listed}");
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn candles_follow_the_open_candle_and_open_the_next(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections().await;
    let mut client = WsClient::connect(app.address, json!({})).await.unwrap();

    // An interval the market does not keep is refused.
    assert_refused(
        &mut client,
        "subscription { candles(coin: \"BTC\", interval: \"7m\") }",
        json!({}),
        "VALIDATION",
    )
    .await;

    client
        .subscribe(
            "subscription { candles(coin: \"BTC\", interval: \"1m\") }",
            json!({}),
        )
        .await;
    // A minute ten minutes ago, so that every tick is inside it and in order.
    let now = OffsetDateTime::now_utc();
    let minute = now
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap()
        - time::Duration::minutes(10);
    let at = |seconds: i64| minute + time::Duration::seconds(seconds);
    // The subscription may need a moment to reach Redis: the opening tick repeats
    // (same time, same price) until a candle arrives.
    let mut first = None;
    for _ in 0..100 {
        app.produce_ticks(&[usd_tick("BTC", "100".parse().unwrap(), at(5))])
            .await;
        if let Some(payload) = client.next(Duration::from_millis(200)).await {
            show("anonymous", &payload);
            first = Some(payload["data"]["candles"].clone());
            break;
        }
    }
    let first = first.expect("a candle after 100 ticks");
    assert_eq!(first["coin"], "BTC");
    assert_eq!(first["interval"], "1m");
    assert_eq!(rfc3339(&first["candle"]["open_time"]), minute);
    assert_eq!(decimal(&first["candle"]["open"]), Decimal::from(100));

    // The open candle moves: high 120, low 90, close 95.
    app.produce_ticks(&[
        usd_tick("BTC", "120".parse().unwrap(), at(20)),
        usd_tick("BTC", "90".parse().unwrap(), at(40)),
        usd_tick("BTC", "95".parse().unwrap(), at(55)),
    ])
    .await;
    let moved = next_where(
        "anonymous",
        &mut client,
        "candles",
        Duration::from_secs(15),
        |c| decimal(&c["candle"]["close"]) == Decimal::from(95),
    )
    .await;
    let candle = &moved["candle"];
    assert_eq!(candle["open_time"], first["candle"]["open_time"]);
    assert_eq!(
        [
            &candle["open"],
            &candle["high"],
            &candle["low"],
            &candle["close"]
        ]
        .map(decimal),
        [100, 120, 90, 95].map(Decimal::from)
    );

    // A tick in the next minute opens the next candle.
    app.produce_ticks(&[usd_tick("BTC", "97".parse().unwrap(), at(62))])
        .await;
    let next = next_where(
        "anonymous",
        &mut client,
        "candles",
        Duration::from_secs(15),
        |c| c["candle"]["open_time"] != first["candle"]["open_time"],
    )
    .await;
    assert_eq!(decimal(&next["candle"]["open"]), Decimal::from(97));
    assert_eq!(
        rfc3339(&next["candle"]["open_time"]),
        minute + time::Duration::minutes(1)
    );
}

/// Every commit rings the log's doorbell (`coinfold.log` on Redis): `events`
/// subscribers on every instance learn of new events from it instead of waiting for
/// their next look at the log.
#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_commit_rings_the_log_doorbell(pool: PgPool) {
    use futures_util::StreamExt;
    use secrecy::ExposeSecret;

    let app = spawn_app(&pool).await;
    let client = redis::Client::open(app.settings.redis.url.expose_secret()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    let channel = format!("{}coinfold.log", app.topics.prefix);
    pubsub.subscribe(&channel).await.unwrap();
    let mut rings = pubsub.on_message();
    // Registering commits the user's first event.
    app.sign_up("alice").await;
    let rung = tokio::time::timeout(Duration::from_secs(10), rings.next())
        .await
        .expect("the doorbell rang within 10 s of the commit")
        .expect("a message");
    assert_eq!(rung.get_channel_name(), channel);
}
