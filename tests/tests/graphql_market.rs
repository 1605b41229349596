//! Market queries through `/graphql`, anonymous, over ticks produced to the test's
//! topic: price, prices, candles paged by cursor, indicators, and the lists that are
//! empty without CoinGecko and news (still connections).

use coinfold_tests::{data, error_code, spawn_app, usd_tick};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn market_queries_answer_from_the_projected_ticks(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections().await;
    // One BTC price per minute for five minutes, then ETH.
    let start = OffsetDateTime::now_utc()
        .replace_second(0)
        .unwrap()
        .replace_nanosecond(0)
        .unwrap()
        - time::Duration::minutes(5);
    let mut ticks: Vec<_> = (0..5)
        .map(|m| usd_tick("BTC", (100 + m).into(), start + time::Duration::minutes(m)))
        .collect();
    ticks.push(usd_tick(
        "ETH",
        10.into(),
        start + time::Duration::minutes(4),
    ));
    app.produce_ticks(&ticks).await;
    app.eventually("{ price(coin: \"ETH\") { price } }", json!({}), None, |r| {
        r["data"]["price"]["price"] == "10"
    })
    .await;

    let prices = app
        .graphql(
            "{ prices(coins: [\"BTC\", \"ETH\", \"DOGE\"]) { coin price quote source } }",
            json!({}),
            None,
        )
        .await;
    let prices = data(&prices, "prices").as_array().unwrap().clone();
    assert_eq!(prices.len(), 2, "{prices:?}");
    assert_eq!(prices[0]["coin"], "BTC");
    assert_eq!(prices[0]["price"], "104");

    // Candles newest first, two a page, until the first minute.
    let query = "query($after: String) { candles(coin: \"BTC\", interval: \"1m\", first: 2, after: $after) { \
                   pageInfo { hasNextPage endCursor } edges { node { openTime close } } } }";
    let mut closes = Vec::new();
    let mut after = serde_json::Value::Null;
    loop {
        let page = app.graphql(query, json!({ "after": after }), None).await;
        let candles = data(&page, "candles");
        for edge in candles["edges"].as_array().unwrap() {
            closes.push(edge["node"]["close"].as_str().unwrap().to_owned());
        }
        if candles["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = candles["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(closes, ["104", "103", "102", "101", "100"]);

    let indicators = app
        .graphql("{ indicators(coin: \"BTC\", interval: \"1m\") { edges { node { openTime close sma20 } } } }", json!({}), None)
        .await;
    let edges = data(&indicators, "indicators")["edges"]
        .as_array()
        .unwrap()
        .clone();
    // Indicators are written per closed candle: the four before the open one.
    assert_eq!(edges.len(), 4, "{indicators}");
    assert_eq!(edges[0]["node"]["close"], 103.0);

    let empty = app
        .graphql(
            "{ coins { edges { cursor } } news { edges { cursor } } marketOverview { coins } \
                   sentiment(coin: \"BTC\") { articles score } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(data(&empty, "coins")["edges"], json!([]));
    assert_eq!(data(&empty, "news")["edges"], json!([]));
    assert_eq!(data(&empty, "marketOverview")["coins"], 0);
    assert_eq!(data(&empty, "sentiment")["articles"], 0);

    for (query, field) in [
        (
            "{ candles(coin: \"BTC\", interval: \"2m\") { edges { cursor } } }",
            "interval",
        ),
        (
            "{ candles(coin: \"BTC\", interval: \"1m\", first: 1000) { edges { cursor } } }",
            "first",
        ),
        (
            "{ candles(coin: \"BTC\", interval: \"1m\", after: \"nope\") { edges { cursor } } }",
            "after",
        ),
        ("{ prices(coins: []) { coin } }", "coins"),
    ] {
        let answer = app.graphql(query, json!({}), None).await;
        assert_eq!(error_code(&answer), "VALIDATION", "{query}: {answer}");
        assert_eq!(
            answer["errors"][0]["extensions"]["field"], field,
            "{answer}"
        );
    }
}
