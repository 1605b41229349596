//! The demo's market history: backfilled through ingest's producer and folded by the
//! `market` projection as live ticks are, it gives every indicator on 1-hour and 1-day
//! candles, and the correlation matrix, values at once.

use coinfold_projections::ingest::history::{HistoryConfig, backfill, history_ticks};
use coinfold_tests::spawn_app;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_backfilled_history_fills_every_indicator_and_the_correlation(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections().await;
    // 40 days (MACD's signal needs 34 daily closes), the last one dense.
    let config = HistoryConfig {
        days: 40,
        minute_days: 1,
        ..HistoryConfig::demo(OffsetDateTime::now_utc())
    };
    let ticks = history_ticks(&config);
    let settings = &app.settings.kafka;
    let produced = backfill(
        &settings.brokers,
        "history-test",
        &settings.topic_prefix,
        ticks.clone(),
    )
    .await
    .expect("the history is produced");
    assert_eq!(produced.ticks, ticks.len() as u64);

    let complete = |answer: &Value, alias: &str| {
        answer["data"][alias]["nodes"][0]
            .as_object()
            .is_some_and(|point| point.values().all(|v| !v.is_null()))
    };
    let fields = "nodes { sma20 ema20 rsi14 macd macdSignal macdHistogram \
                  bollingerMid bollingerUpper bollingerLower volatility30 }";
    let query = format!(
        "{{ h: indicators(coin: \"BTC\", interval: \"1h\", first: 1) {{ {fields} }} \
           d: indicators(coin: \"DOGE\", interval: \"1d\", first: 1) {{ {fields} }} \
           correlation(coins: [\"BTC\", \"ETH\", \"SOL\"]) }}"
    );
    let answer = app
        .eventually(&query, json!({}), None, |r| {
            complete(r, "h") && complete(r, "d")
        })
        .await;
    let matrix = &answer["data"]["correlation"];
    for (i, row) in matrix.as_array().unwrap().iter().enumerate() {
        for (j, cell) in row.as_array().unwrap().iter().enumerate() {
            let value = cell.as_f64().unwrap_or_else(|| panic!("{answer}"));
            assert!((-1.0..=1.0).contains(&value), "{answer}");
            if i == j {
                assert!((value - 1.0).abs() < 1e-9);
            }
        }
    }
    // The newest price is the history's last, close to the recordings' first.
    let price = app
        .graphql("{ price(coin: \"BTC\") { price source } }", json!({}), None)
        .await;
    assert_eq!(price["data"]["price"]["source"], "coinbase", "{price}");
}
