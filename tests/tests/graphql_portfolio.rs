//! Portfolios through `/graphql`, as a client uses them: the journey from sign-up to a
//! valued portfolio, its past and its audit trail; another user's ids answered
//! NOT_FOUND everywhere (table-driven over the whole schema); bad input refused with
//! the field named and nothing stored. Prices come the real way: ticks produced to
//! the test's topic, folded by the projections running beside the app.

use std::collections::BTreeSet;

use coinfold_tests::ws::WsClient;
use coinfold_tests::{TestApp, data, error_code, spawn_app, usd_tick};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

const CREATE: &str = "mutation($input: CreatePortfolioInput!, $key: String) { \
    createPortfolio(input: $input, idempotencyKey: $key) { id version replayed } }";
const TRADE: &str = "mutation($p: ID!, $t: TradeInput!, $key: String) { \
    recordTrade(portfolioId: $p, trade: $t, idempotencyKey: $key) { id version events entryId replayed } }";
const SUMMARY: &str = "query($id: ID!, $asOf: DateTime, $basis: AsOfBasis) { \
    portfolio(id: $id, asOf: $asOf, basis: $basis) { id name version asOf \
      summary { holdings { coin quantity costBasis realizedGain price value unrealizedGain } \
                usd { value costBasis realizedGain unrealizedGain roiPct } unpriced } \
      transactions(first: 10) { edges { node { kind quantity } } } } }";
const HISTORY: &str = "query($id: ID!, $after: String) { \
    portfolioHistory(id: $id, first: 2, after: $after) { \
      pageInfo { hasNextPage endCursor } \
      edges { node { sequence eventType actor correlationId recordedAt payload } } } }";
const PRICE: &str = "query { price(coin: \"BTC\") { price quote } }";

fn dec(value: &Value) -> Decimal {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a decimal string, not {value}"))
        .parse()
        .expect("a decimal")
}

fn trade(side: &str, quantity: &str, price: &str, fee: &str, at: OffsetDateTime) -> Value {
    json!({
        "side": side, "coin": "BTC", "quantity": quantity, "price": price, "fee": fee,
        "executedAt": at.format(&time::format_description::well_known::Rfc3339).unwrap(),
    })
}

/// Sends BTC (and ETH) prices through the tick topic and waits until the API serves
/// BTC at `btc`.
async fn market(app: &TestApp, btc: &str) {
    let now = OffsetDateTime::now_utc();
    app.produce_ticks(&[
        usd_tick(
            "BTC",
            "100".parse().unwrap(),
            now - time::Duration::minutes(5),
        ),
        usd_tick(
            "ETH",
            "10".parse().unwrap(),
            now - time::Duration::minutes(5),
        ),
        usd_tick("BTC", btc.parse().unwrap(), now),
    ])
    .await;
    app.eventually(PRICE, json!({}), None, |r| {
        r["data"]["price"]["price"].as_str() == Some(btc)
    })
    .await;
}

async fn create(app: &TestApp, token: &str, name: &str) -> String {
    let created = app
        .graphql(CREATE, json!({ "input": { "name": name } }), Some(token))
        .await;
    data(&created, "createPortfolio")["id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_users_journey_from_sign_up_to_an_audited_portfolio(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections().await;
    market(&app, "150").await;
    let alice = app.sign_up("alice").await;
    let token = Some(alice.token.as_str());

    let id = create(&app, &alice.token, "Long term").await;
    let day = OffsetDateTime::now_utc() - time::Duration::days(3);
    let buy = app
        .graphql(
            TRADE,
            json!({ "p": id, "t": trade("BUY", "2", "100", "1", day), "key": "buy-1" }),
            token,
        )
        .await;
    let first_buy = data(&buy, "recordTrade").clone();
    assert_eq!(first_buy["events"], 1);
    // A retry with the key is the first answer, and stores nothing.
    let retry = app
        .graphql(
            TRADE,
            json!({ "p": id, "t": trade("BUY", "2", "100", "1", day), "key": "buy-1" }),
            token,
        )
        .await;
    assert_eq!(data(&retry, "recordTrade")["replayed"], true);
    assert_eq!(data(&retry, "recordTrade")["entryId"], first_buy["entryId"]);
    let second = trade("BUY", "1", "200", "0", day + time::Duration::hours(1));
    data(
        &app.graphql(TRADE, json!({ "p": id, "t": second }), token)
            .await,
        "recordTrade",
    );
    let after_buys = OffsetDateTime::now_utc();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    // Selling more than is held is refused, naming the quantity; nothing is stored.
    let oversell = trade("SELL", "5", "300", "0", day + time::Duration::hours(2));
    let refused = app
        .graphql(TRADE, json!({ "p": id, "t": oversell }), token)
        .await;
    assert_eq!(error_code(&refused), "VALIDATION", "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "quantity");
    let sell = trade("SELL", "1.5", "300", "2", day + time::Duration::hours(2));
    let sold = app
        .graphql(TRADE, json!({ "p": id, "t": sell }), token)
        .await;
    assert_eq!(data(&sold, "recordTrade")["version"], 4);

    // By hand, FIFO: the sell takes 1.5 of the first lot (2 for 201): cost 150.75,
    // proceeds 1.5 × 300 − 2 = 448, realized 297.25. Held: 0.5 (50.25) + 1 (200) =
    // 1.5 for 250.25, worth 1.5 × 150 = 225, unrealized −25.25. Invested 201 + 200 =
    // 401; ROI (297.25 − 25.25) / 401 = 67.8304 %.
    let live = app
        .eventually(SUMMARY, json!({ "id": id }), token, |r| {
            r["data"]["portfolio"]["version"] == 4
        })
        .await;
    let summary = &live["data"]["portfolio"]["summary"];
    let btc = &summary["holdings"][0];
    assert_eq!(btc["coin"], "BTC");
    assert_eq!(dec(&btc["quantity"]), "1.5".parse().unwrap());
    assert_eq!(dec(&btc["costBasis"]), "250.25".parse().unwrap());
    assert_eq!(dec(&btc["realizedGain"]), "297.25".parse().unwrap());
    assert_eq!(dec(&btc["value"]), "225".parse().unwrap());
    assert_eq!(dec(&btc["unrealizedGain"]), "-25.25".parse().unwrap());
    assert_eq!(dec(&summary["usd"]["roiPct"]), "67.8304".parse().unwrap());
    assert_eq!(summary["unpriced"], json!([]));

    // As recorded just after the two buys: 3 BTC for 401, nothing realized, valued at
    // the candle of then.
    let past = app
        .graphql(
            SUMMARY,
            json!({ "id": id, "asOf": after_buys.format(&time::format_description::well_known::Rfc3339).unwrap() }),
            token,
        )
        .await;
    let portfolio = data(&past, "portfolio");
    assert_eq!(portfolio["version"], 3, "{past}");
    let btc = &portfolio["summary"]["holdings"][0];
    assert_eq!(dec(&btc["quantity"]), "3".parse().unwrap());
    assert_eq!(dec(&btc["costBasis"]), "401".parse().unwrap());
    assert_eq!(dec(&btc["realizedGain"]), Decimal::ZERO);
    assert_eq!(dec(&btc["value"]), dec(&btc["price"]) * Decimal::from(3));
    assert_eq!(
        portfolio["transactions"]["edges"].as_array().unwrap().len(),
        2
    );
    // As known now about the moment of the first buy (effective time).
    let first = app
        .graphql(
            SUMMARY,
            json!({ "id": id, "basis": "EFFECTIVE",
                    "asOf": day.format(&time::format_description::well_known::Rfc3339).unwrap() }),
            token,
        )
        .await;
    let btc = &data(&first, "portfolio")["summary"]["holdings"][0];
    assert_eq!(dec(&btc["quantity"]), "2".parse().unwrap());

    // The audit trail, two events a page: who did what, each request its own
    // correlation id; the refused oversell left nothing.
    let mut events = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .graphql(HISTORY, json!({ "id": id, "after": after }), token)
            .await;
        let history = data(&page, "portfolioHistory");
        events.extend(history["edges"].as_array().unwrap().iter().cloned());
        if history["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = history["pageInfo"]["endCursor"].clone();
    }
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["node"]["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "PortfolioCreated",
            "TradeRecorded",
            "TradeRecorded",
            "TradeRecorded"
        ]
    );
    let actor = format!("user:{}", alice.user_id);
    let correlations: BTreeSet<&str> = events
        .iter()
        .map(|e| {
            assert_eq!(e["node"]["actor"], actor.as_str());
            e["node"]["correlationId"].as_str().unwrap()
        })
        .collect();
    assert_eq!(correlations.len(), 4);
    assert_eq!(
        events[3]["node"]["payload"]["TradeRecorded"]["disposal"]["realized_gain"],
        "297.25"
    );

    // The portfolio is listed for its owner, and for nobody else.
    let list = "{ portfolios(first: 5) { edges { node { id name } } } }";
    let listed = app.graphql(list, json!({}), token).await;
    assert_eq!(
        data(&listed, "portfolios")["edges"][0]["node"]["id"],
        id.as_str()
    );
    let bob = app.sign_up("bob").await;
    let other = app.graphql(list, json!({}), Some(&bob.token)).await;
    assert_eq!(data(&other, "portfolios")["edges"], json!([]));
}

/// Every argument of type ID in the schema, as `field.argument` (subscriptions as
/// `subscription:field.argument`).
async fn id_arguments(app: &TestApp) -> BTreeSet<String> {
    let introspection = app
        .graphql(
            "{ __schema { queryType { fields { name args { name type { name ofType { name } } } } } \
                          mutationType { fields { name args { name type { name ofType { name } } } } } \
                          subscriptionType { fields { name args { name type { name ofType { name } } } } } } }",
            json!({}),
            None,
        )
        .await;
    let schema = &introspection["data"]["__schema"];
    let mut found = BTreeSet::new();
    for (root, prefix) in [
        ("queryType", ""),
        ("mutationType", ""),
        ("subscriptionType", "subscription:"),
    ] {
        for field in schema[root]["fields"].as_array().expect("fields") {
            for arg in field["args"].as_array().expect("args") {
                let ty = &arg["type"];
                if ty["name"] == "ID" || ty["ofType"]["name"] == "ID" {
                    found.insert(format!(
                        "{prefix}{}.{}",
                        field["name"].as_str().unwrap(),
                        arg["name"].as_str().unwrap()
                    ));
                }
            }
        }
    }
    found
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn another_users_ids_answer_not_found_everywhere(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections().await;
    market(&app, "150").await;
    let alice = app.sign_up("alice").await;
    let bob = app.sign_up("bob").await;
    let (a, b) = (Some(alice.token.as_str()), Some(bob.token.as_str()));

    // Alice's things: a portfolio with a trade, an alert, an API key.
    let portfolio = create(&app, &alice.token, "Alice's").await;
    let now = OffsetDateTime::now_utc();
    let recorded = app
        .graphql(
            TRADE,
            json!({ "p": portfolio, "t": trade("BUY", "1", "100", "0", now) }),
            a,
        )
        .await;
    let trade_id = data(&recorded, "recordTrade")["entryId"].clone();
    let alert = app
        .graphql(
            "mutation { createAlert(input: { coin: \"BTC\", condition: { priceAbove: \"1000000\" } }) { id } }",
            json!({}),
            a,
        )
        .await;
    let alert = data(&alert, "createAlert")["id"].clone();
    let key = app
        .graphql(
            "mutation { createApiKey(name: \"ci\") { id } }",
            json!({}),
            a,
        )
        .await;
    let key = data(&key, "createApiKey")["id"].clone();
    let bobs = create(&app, &bob.token, "Bob's").await;

    // Every ID argument in the schema, called by Bob with Alice's ids. A resolver
    // added without a row here fails the first assertion.
    let t = |side: &str| trade(side, "1", "100", "0", now);
    let table: Vec<(&str, &str, Value)> = vec![
        (
            "portfolio.id",
            "query($id: ID!) { portfolio(id: $id) { id } }",
            json!({ "id": portfolio }),
        ),
        (
            "portfolioHistory.id",
            "query($id: ID!) { portfolioHistory(id: $id) { edges { cursor } } }",
            json!({ "id": portfolio }),
        ),
        (
            "renamePortfolio.id",
            "mutation($id: ID!) { renamePortfolio(id: $id, name: \"mine\") { id } }",
            json!({ "id": portfolio }),
        ),
        (
            "setCostBasisMethod.id",
            "mutation($id: ID!) { setCostBasisMethod(id: $id, method: LIFO) { id } }",
            json!({ "id": portfolio }),
        ),
        (
            "archivePortfolio.id",
            "mutation($id: ID!) { archivePortfolio(id: $id) { id } }",
            json!({ "id": portfolio }),
        ),
        (
            "recordTrade.portfolioId",
            TRADE,
            json!({ "p": portfolio, "t": t("BUY") }),
        ),
        (
            "correctTrade.portfolioId",
            "mutation($p: ID!, $t: TradeInput!) { correctTrade(portfolioId: $p, trade: $t) { id } }",
            json!({ "p": portfolio, "t": { "tradeId": trade_id, "side": "BUY", "coin": "BTC", "quantity": "9", "price": "1", "executedAt": "2026-01-01T00:00:00Z" } }),
        ),
        (
            "voidTrade.portfolioId",
            "mutation($p: ID!, $t: ID!) { voidTrade(portfolioId: $p, tradeId: $t, reason: \"x\") { id } }",
            json!({ "p": portfolio, "t": trade_id }),
        ),
        // Bob's own portfolio with Alice's trade id: no such trade there.
        (
            "voidTrade.tradeId",
            "mutation($p: ID!, $t: ID!) { voidTrade(portfolioId: $p, tradeId: $t, reason: \"x\") { id } }",
            json!({ "p": bobs, "t": trade_id }),
        ),
        (
            "importTrades.portfolioId",
            "mutation($p: ID!, $csv: String!) { importTrades(portfolioId: $p, format: GENERIC, csv: $csv) { imported } }",
            json!({ "p": portfolio, "csv": "executed_at,side,coin,quantity,price\n2026-01-01T00:00:00Z,buy,BTC,1,100\n" }),
        ),
        (
            "transferIn.portfolioId",
            "mutation($p: ID!) { transferIn(portfolioId: $p, transfer: { coin: \"BTC\", quantity: \"1\", costBasis: \"1\", executedAt: \"2026-01-01T00:00:00Z\" }) { id } }",
            json!({ "p": portfolio }),
        ),
        (
            "transferOut.portfolioId",
            "mutation($p: ID!) { transferOut(portfolioId: $p, transfer: { coin: \"BTC\", quantity: \"1\", executedAt: \"2026-01-01T00:00:00Z\" }) { id } }",
            json!({ "p": portfolio }),
        ),
        (
            "disableAlert.id",
            "mutation($id: ID!) { disableAlert(id: $id) { id } }",
            json!({ "id": alert }),
        ),
        (
            "rearmAlert.id",
            "mutation($id: ID!) { rearmAlert(id: $id) { id } }",
            json!({ "id": alert }),
        ),
        (
            "deleteAlert.id",
            "mutation($id: ID!) { deleteAlert(id: $id) { id } }",
            json!({ "id": alert }),
        ),
        (
            "revokeApiKey.id",
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({ "id": key }),
        ),
    ];
    // Subscriptions with an id, over graphql-ws.
    let subscriptions: Vec<(&str, &str, Value)> = vec![(
        "subscription:portfolio.id",
        "subscription($id: ID!) { portfolio(id: $id) { unpriced } }",
        json!({ "id": portfolio }),
    )];
    let covered: BTreeSet<String> = table
        .iter()
        .chain(&subscriptions)
        .map(|(name, _, _)| (*name).to_owned())
        .collect();
    assert_eq!(
        id_arguments(&app).await,
        covered,
        "every ID argument needs a row in this table"
    );
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    for (name, query, variables) in &table {
        let answer = app.graphql(query, variables.clone(), b).await;
        assert_eq!(error_code(&answer), "NOT_FOUND", "{name}: {answer}");
    }
    for (name, query, variables) in &subscriptions {
        let mut client = WsClient::connect(
            app.address,
            json!({ "authorization": format!("Bearer {}", bob.token) }),
        )
        .await
        .unwrap();
        client.subscribe(query, variables.clone()).await;
        let answer = client
            .receive(std::time::Duration::from_secs(10))
            .await
            .expect("an answer");
        assert_eq!(
            answer["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{name}: {answer}"
        );
    }
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events_after, events_before, "Bob's calls stored nothing");

    // And Alice still reaches all of it.
    let mine = app
        .graphql(
            "query($id: ID!) { portfolioHistory(id: $id) { edges { cursor } } }",
            json!({ "id": portfolio }),
            a,
        )
        .await;
    assert_eq!(
        data(&mine, "portfolioHistory")["edges"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn bad_trades_name_the_field_and_store_nothing(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections().await;
    market(&app, "150").await;
    let alice = app.sign_up("alice").await;
    let token = Some(alice.token.as_str());
    let id = create(&app, &alice.token, "Main").await;
    let now = OffsetDateTime::now_utc();
    let with = |change: (&str, Value)| {
        let mut t = trade("BUY", "1", "100", "0", now);
        t[change.0] = change.1;
        t
    };
    let cases: Vec<(Value, &str)> = vec![
        (with(("quantity", json!("-1"))), "trade.quantity"),
        (with(("quantity", json!("0"))), "quantity"),
        (with(("quantity", json!("1e40"))), ""),
        (
            with(("quantity", json!("100000000000000000000000"))),
            "trade.quantity",
        ),
        (
            with(("quantity", json!("0.0000000000000000001"))),
            "trade.quantity",
        ),
        (with(("price", json!("-5"))), "trade.price"),
        (with(("fee", json!("-0.1"))), "trade.fee"),
        (with(("coin", json!("ZZZ"))), "trade.coin"),
        (with(("coin", json!("not a coin!"))), "trade.coin"),
        (with(("quote", json!("EUR"))), "quote"),
        (with(("executedAt", json!("yesterday"))), ""),
    ];
    for (input, field) in &cases {
        let answer = app
            .graphql(TRADE, json!({ "p": id, "t": input }), token)
            .await;
        assert_eq!(error_code(&answer), "VALIDATION", "{input}: {answer}");
        if !field.is_empty() {
            assert_eq!(
                answer["errors"][0]["extensions"]["field"], *field,
                "{input}: {answer}"
            );
        }
    }
    let trades: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TradeRecorded'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(trades, 0);
}
