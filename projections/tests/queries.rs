//! Query-time reads over read models written by hand: valuation, base currency, value
//! over time, search ranking.

use coinfold_projections::queries::{
    market_overview, portfolio_summary, portfolio_value_history, search_coins, usd_per_unit,
    usd_prices,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use sqlx::PgPool;
use time::macros::datetime;
use uuid::Uuid;

async fn exec(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sql).execute(pool).await.expect(sql);
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_summary_values_holdings_in_usd_and_the_base_currency(pool: PgPool) {
    let id = Uuid::from_u128(1);
    exec(&pool, "
        INSERT INTO read.users VALUES ('00000000-0000-0000-0000-000000000002', 'ann', 'EUR', '2026-01-01Z', false, 1);
        INSERT INTO read.portfolios VALUES ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000002',
            'Main', '', 'FIFO', 'USD', '2026-01-01Z', NULL, 5, 5);
        INSERT INTO read.portfolio_holdings VALUES
            ('00000000-0000-0000-0000-000000000001', 'BTC', 0.5, 100, 50),
            ('00000000-0000-0000-0000-000000000001', 'ETH', 2, 3000, 0),
            ('00000000-0000-0000-0000-000000000001', 'SOL', 10, 500, 0);
        INSERT INTO read.portfolio_transactions VALUES
            ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000a', 1, 'BUY', 'BTC', 1, 200, 'USD', 0, 200, '2026-01-02Z', NULL, NULL, false, NULL),
            ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000b', 2, 'BUY', 'ETH', 2, 1500, 'USD', 0, 3000, '2026-01-02Z', NULL, NULL, false, NULL),
            ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000c', 3, 'BUY', 'SOL', 10, 50, 'USD', 0, 500, '2026-01-02Z', NULL, NULL, false, NULL),
            ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000d', 4, 'BUY', 'SOL', 99, 50, 'USD', 0, 4950, '2026-01-02Z', NULL, NULL, true, 'typo');
        INSERT INTO read.latest_prices VALUES
            ('BTC', 'USD', 60000, 'coinbase', '2026-03-01Z', NULL),
            ('BTC', 'USDT', 60060, 'binance', '2026-03-01Z', NULL),
            ('BTC', 'EUR', 55000, 'coinbase', '2026-03-01Z', NULL),
            ('ETH', 'USD', 2500, 'coinbase', '2026-03-01Z', NULL),
            ('ETH', 'USDT', 2600, 'binance', '2026-03-01Z', NULL);
    ").await;
    let summary = portfolio_summary(&pool, id).await.unwrap();
    let btc = &summary.holdings[0];
    assert_eq!(
        (btc.coin.as_str(), btc.value, btc.unrealized_gain),
        ("BTC", Some(dec!(30000)), Some(dec!(29900)))
    );
    // USD before the stablecoins.
    assert_eq!(summary.holdings[1].price, Some(dec!(2500)));
    assert_eq!(summary.unpriced, vec!["SOL".to_owned()]);
    assert_eq!(summary.usd.value, dec!(35000));
    assert_eq!(summary.usd.cost_basis, dec!(3600));
    assert_eq!(summary.usd.unrealized_gain, dec!(31900));
    assert_eq!(summary.usd.realized_gain, dec!(50));
    // (50 + 31900) / (200 + 3000 + 500) invested; the voided buy is not invested.
    assert_eq!(summary.usd.roi_pct, Some(dec!(863.5135)));
    let base = summary.base.expect("EUR through BTC-USD / BTC-EUR");
    assert_eq!(base.currency, "EUR");
    assert_eq!(base.value, dec!(32083.33333333));
    assert_eq!(
        (summary.best.as_deref(), summary.worst.as_deref()),
        (Some("BTC"), Some("ETH"))
    );
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn value_over_time_follows_holdings_and_closes(pool: PgPool) {
    exec(&pool, "
        INSERT INTO read.portfolio_transactions VALUES
            ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000a', 1, 'BUY', 'BTC', 1, 100, 'USD', 0, 100, '2026-03-01T00:00Z', NULL, NULL, false, NULL),
            ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000b', 2, 'SELL', 'BTC', 0.5, 120, 'USD', 0, NULL, '2026-03-01T02:00Z', NULL, NULL, false, NULL);
        INSERT INTO read.candles VALUES
            ('BTC', 'USD', '1h', '2026-03-01T00:00Z', 100, 100, 100, 100, 1, 1),
            ('BTC', 'USD', '1h', '2026-03-01T01:00Z', 110, 110, 110, 110, 1, 1),
            ('BTC', 'USD', '1h', '2026-03-01T02:00Z', 120, 120, 120, 120, 1, 1);
    ").await;
    let points = portfolio_value_history(
        &pool,
        Uuid::from_u128(1),
        "1h",
        datetime!(2026-02-28 23:00 UTC),
        datetime!(2026-03-01 03:00 UTC),
    )
    .await
    .unwrap();
    let values: Vec<Decimal> = points.iter().map(|p| p.1.normalize()).collect();
    assert_eq!(values, [dec!(0), dec!(100), dec!(110), dec!(60), dec!(60)]);
}

/// A portfolio of ann (base USD) holding 10 SOL bought for 1000.
const SOL_PORTFOLIO: &str = "
    INSERT INTO read.users VALUES ('00000000-0000-0000-0000-000000000002', 'ann', 'USD', '2026-01-01Z', false, 1);
    INSERT INTO read.portfolios VALUES ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000002',
        'Main', '', 'FIFO', 'USD', '2026-01-01Z', NULL, 1, 1);
    INSERT INTO read.portfolio_holdings VALUES
        ('00000000-0000-0000-0000-000000000001', 'SOL', 10, 1000, 0);
    INSERT INTO read.portfolio_transactions VALUES
        ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000a', 1, 'BUY', 'SOL', 10, 100, 'USD', 0, 1000, '2026-03-01T00:00Z', NULL, NULL, false, NULL);
";

// Issue 18: USDT is not USD (a USDT trade is refused in a USD portfolio), so a USDT
// price is valued at USDT's market rate, never at par.
#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_usdt_price_is_valued_at_the_usdt_rate_not_at_par(pool: PgPool) {
    let id = Uuid::from_u128(1);
    exec(&pool, SOL_PORTFOLIO).await;
    exec(
        &pool,
        "
        INSERT INTO read.latest_prices VALUES
            ('BTC', 'USD', 60000, 'coinbase', '2026-03-01Z', NULL),
            ('BTC', 'USDT', 60060, 'binance', '2026-03-01Z', NULL),
            ('SOL', 'USDT', 150, 'binance', '2026-03-01Z', NULL);
    ",
    )
    .await;
    let rate = dec!(60000) / dec!(60060);
    assert_eq!(rate.round_dp(9), dec!(0.999000999));
    assert_eq!(usd_per_unit(&pool, "USDT", None).await.unwrap(), Some(rate));
    assert_eq!(
        usd_per_unit(&pool, "USDC", None).await.unwrap(),
        None,
        "no BTC-USDC: no rate, not 1"
    );
    let summary = portfolio_summary(&pool, id).await.unwrap();
    let sol = &summary.holdings[0];
    assert_eq!(sol.price, Some(dec!(150) * rate));
    assert_eq!(sol.value, Some((dec!(1500) * rate).round_dp(8)));
    assert_eq!(sol.value, Some(dec!(1498.50149850)));
    assert_eq!(summary.usd.value, dec!(1498.50149850));
    assert!(summary.unpriced.is_empty());

    // USDT's own USD price is its rate, before the cross rate.
    exec(&pool, "INSERT INTO read.latest_prices VALUES ('USDT', 'USD', 0.9995, 'kraken', '2026-03-01Z', NULL)").await;
    assert_eq!(
        usd_per_unit(&pool, "USDT", None).await.unwrap(),
        Some(dec!(0.9995))
    );
    let prices = usd_prices(&pool, &["SOL".to_owned(), "USDT".to_owned()], None)
        .await
        .unwrap();
    assert_eq!(prices.get("USDT"), Some(&dec!(0.9995)));
    assert_eq!(prices.get("SOL"), Some(&dec!(149.925)));

    // Without a rate at all the coin is unpriced.
    exec(
        &pool,
        "DELETE FROM read.latest_prices WHERE coin = 'USDT' OR (coin = 'BTC' AND quote = 'USD')",
    )
    .await;
    assert_eq!(usd_per_unit(&pool, "USDT", None).await.unwrap(), None);
    let summary = portfolio_summary(&pool, id).await.unwrap();
    assert_eq!(summary.holdings[0].price, None);
    assert_eq!(summary.unpriced, vec!["SOL".to_owned()]);
    assert_eq!(summary.usd.value, dec!(0));
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn past_values_convert_usdt_closes_at_the_rate_of_then(pool: PgPool) {
    exec(&pool, SOL_PORTFOLIO).await;
    exec(
        &pool,
        "
        INSERT INTO read.candles VALUES
            ('SOL', 'USDT', '1h', '2026-03-01T00:00Z', 150, 150, 150, 150, 1, 1),
            ('SOL', 'USDT', '1h', '2026-03-01T01:00Z', 160, 160, 160, 160, 1, 1),
            ('BTC', 'USD', '1h', '2026-03-01T01:00Z', 60000, 60000, 60000, 60000, 1, 1),
            ('BTC', 'USDT', '1h', '2026-03-01T01:00Z', 60060, 60060, 60060, 60060, 1, 1),
            ('SOL', 'USDT', '1m', '2026-03-01T00:30Z', 150, 150, 150, 150, 1, 1),
            ('SOL', 'USDT', '1m', '2026-03-01T01:00Z', 160, 160, 160, 160, 1, 1),
            ('BTC', 'USD', '1m', '2026-03-01T01:00Z', 60000, 60000, 60000, 60000, 1, 1),
            ('BTC', 'USDT', '1m', '2026-03-01T01:00Z', 60060, 60060, 60060, 60060, 1, 1);
    ",
    )
    .await;
    let points = portfolio_value_history(
        &pool,
        Uuid::from_u128(1),
        "1h",
        datetime!(2026-03-01 00:00 UTC),
        datetime!(2026-03-01 01:00 UTC),
    )
    .await
    .unwrap();
    let values: Vec<Decimal> = points.iter().map(|p| p.1).collect();
    // At 00:00 there is no BTC cross yet: no rate, no value (not 1500 at par).
    assert_eq!(
        values,
        [
            dec!(0),
            (dec!(1600) * dec!(60000) / dec!(60060)).round_dp(8)
        ]
    );
    assert_eq!(values[1], dec!(1598.40159840));
    let then = usd_prices(
        &pool,
        &["SOL".to_owned()],
        Some(datetime!(2026-03-01 01:30 UTC)),
    )
    .await
    .unwrap();
    assert_eq!(
        then.get("SOL"),
        Some(&(dec!(160) * dec!(60000) / dec!(60060)))
    );
    let before = usd_prices(
        &pool,
        &["SOL".to_owned()],
        Some(datetime!(2026-03-01 00:59 UTC)),
    )
    .await
    .unwrap();
    assert!(before.is_empty());
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn search_ranks_symbol_then_name_and_pages(pool: PgPool) {
    exec(&pool, "
        INSERT INTO read.coins VALUES
            ('BTC', 'bitcoin', 'Bitcoin', 1, 1000, 50, NULL, 60000, 2.5, '2026-03-01Z'),
            ('BCH', 'bitcoin-cash', 'Bitcoin Cash', 15, 10, 2, NULL, 400, -3.1, '2026-03-01Z'),
            ('WBTC', 'wrapped-bitcoin', 'Wrapped Bitcoin', 12, 12, 1, NULL, 60000, 2.4, '2026-03-01Z'),
            ('BTT', 'bittorrent', 'BitTorrent', 50, 1, 1, NULL, 0.000001, 9.9, '2026-03-01Z'),
            ('ETH', 'ethereum', 'Ethereum', 2, 400, 20, NULL, 3000, -0.5, '2026-03-01Z');
    ").await;
    let names = |rows: Vec<coinfold_projections::queries::CoinRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.coin).collect()
    };
    assert_eq!(
        names(search_coins(&pool, "btc", 10, 0).await.unwrap()),
        ["BTC"]
    );
    assert_eq!(
        names(search_coins(&pool, "Bit", 10, 0).await.unwrap()),
        ["BTC", "BCH", "BTT", "WBTC"]
    );
    assert_eq!(
        names(search_coins(&pool, "b", 2, 2).await.unwrap()),
        ["BTT", "WBTC"]
    );
    assert!(
        search_coins(&pool, "%", 10, 0).await.unwrap().is_empty(),
        "LIKE characters match themselves"
    );
    assert!(search_coins(&pool, "  ", 10, 0).await.is_err());
    let overview = market_overview(&pool, 2).await.unwrap();
    assert_eq!(overview.total_market_cap, dec!(1423));
    assert_eq!(overview.coins, 5);
    assert_eq!(names(overview.gainers), ["BTT", "BTC"]);
    assert_eq!(names(overview.losers), ["BCH", "ETH"]);
    // With fewer coins going one way than asked for, the list is shorter: a coin that
    // went down is never a gainer, nor one that went up a loser.
    let overview = market_overview(&pool, 4).await.unwrap();
    assert_eq!(names(overview.gainers), ["BTT", "BTC", "WBTC"]);
    assert_eq!(names(overview.losers), ["BCH", "ETH"]);
    exec(
        &pool,
        "UPDATE read.coins SET change_24h_pct = 0 WHERE coin = 'ETH'",
    )
    .await;
    let overview = market_overview(&pool, 4).await.unwrap();
    assert_eq!(
        names(overview.losers),
        ["BCH"],
        "an unchanged coin is neither"
    );
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn correlation_of_log_returns_over_shared_candles(pool: PgPool) {
    use coinfold_projections::queries::correlation;
    // A rises and falls; B moves the same way (x2 returns); C the opposite way.
    let closes_a = [100.0, 110.0, 99.0, 108.9, 103.455, 113.8005];
    let mut sql = String::new();
    for (i, a) in closes_a.iter().enumerate() {
        let b = a * a / 100.0;
        let c = 10_000.0 / a;
        for (coin, close) in [("AAA", *a), ("BBB", b), ("CCC", c)] {
            sql.push_str(&format!(
                "INSERT INTO read.candles VALUES ('{coin}', 'USD', '1h', '2026-03-01T{i:02}:00Z', {close}, {close}, {close}, {close}, 1, 1);"
            ));
        }
    }
    // A candle only one coin has is left out.
    sql.push_str("INSERT INTO read.candles VALUES ('AAA', 'USD', '1h', '2026-03-01T09:00Z', 1, 1, 1, 1, 1, 1);");
    exec(&pool, &sql).await;
    let coins: Vec<String> = ["AAA", "BBB", "CCC"].map(String::from).to_vec();
    let m = correlation(&pool, &coins, "1h", 5).await.unwrap();
    let close = |x: Option<f64>, y: f64| (x.unwrap() - y).abs() < 1e-9;
    assert!(
        close(m[0][0], 1.0) && close(m[0][1], 1.0) && close(m[0][2], -1.0),
        "{m:?}"
    );
    assert!(close(m[1][2], -1.0));
    assert!(correlation(&pool, &coins[..1], "1h", 5).await.is_err());
}

/// Records what the evaluator would trigger.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<(Uuid, Decimal)>>);

impl coinfold_projections::alerting::AlertTrigger for Recorder {
    async fn trigger(
        &self,
        alert_id: Uuid,
        observation: coinfold_domain::alert::Observation,
        _idempotency_key: String,
    ) -> Result<bool, String> {
        self.0.lock().unwrap().push((alert_id, observation.value));
        Ok(true)
    }
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_usdt_tick_is_judged_against_a_usd_threshold_at_the_usdt_rate(pool: PgPool) {
    use coinfold_domain::alert::AlertCondition;
    use coinfold_domain::values::{CoinSymbol, Price, QuoteCurrency};
    use coinfold_projections::ingest::{Source, TICK_SCHEMA, Tick, TickKind};

    let alert = Uuid::from_u128(7);
    let condition = AlertCondition::PriceAbove {
        threshold: Price::new(dec!(100)).unwrap(),
    };
    sqlx::query(
        "INSERT INTO read.alerts VALUES ($1, $2, 'SOL', $3, 'RECURRING', 0, 'ARMED', 0, NULL, NULL, '2026-01-01Z', 1)",
    )
    .bind(alert)
    .bind(Uuid::from_u128(2))
    .bind(serde_json::to_value(&condition).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    exec(
        &pool,
        "
        INSERT INTO read.latest_prices VALUES
            ('BTC', 'USD', 60000, 'coinbase', '2026-03-01Z', NULL),
            ('BTC', 'USDT', 60060, 'binance', '2026-03-01Z', NULL);
    ",
    )
    .await;
    let recorder = Recorder::default();
    let mut evaluator = coinfold_projections::alerting::Evaluator::new(pool.clone(), &recorder);
    let tick = |quote: &str, price: Decimal, second: i64| Tick {
        schema: TICK_SCHEMA,
        source: Source::Binance,
        kind: TickKind::Ticker,
        coin: CoinSymbol::parse("SOL").unwrap(),
        quote: QuoteCurrency::parse(quote).unwrap(),
        price: Price::new(price).unwrap(),
        size: None,
        side: None,
        trade_id: None,
        volume_24h: None,
        exchange_time: datetime!(2026-03-01 00:00 UTC) + time::Duration::seconds(second),
        received_time: datetime!(2026-03-01 00:00 UTC) + time::Duration::seconds(second),
    };
    let rate = dec!(60000) / dec!(60060);
    // 100.05 USDT is 99.95 USD: under the threshold (at par it would fire).
    evaluator
        .on_tick(&tick("USDT", dec!(100.05), 1))
        .await
        .unwrap();
    // USDC has no rate here: its tick is skipped, not taken at par.
    evaluator
        .on_tick(&tick("USDC", dec!(1000), 2))
        .await
        .unwrap();
    assert!(recorder.0.lock().unwrap().is_empty());
    // 100.2 USDT is 100.0999 USD: over it.
    evaluator
        .on_tick(&tick("USDT", dec!(100.2), 3))
        .await
        .unwrap();
    assert_eq!(*recorder.0.lock().unwrap(), [(alert, dec!(100.2) * rate)]);
}
