//! `importTrades` through the API: the generic format with hand-computed FIFO numbers,
//! a second import of the same file recording nothing, Binance and Coinbase exports,
//! and bad files refused by line with nothing stored.

use coinfold_tests::{data, error_code, spawn_app, usd_tick};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

const IMPORT: &str = "mutation($p: ID!, $f: ImportFormat!, $csv: String!) { \
    importTrades(portfolioId: $p, format: $f, csv: $csv) { \
      imported alreadyRecorded skipped { line reason } receipt { version events } } }";

const GENERIC: &str = "executed_at,side,coin,quantity,price,quote,fee,external_id,note\n\
    2026-01-02T10:00:00Z,buy,BTC,2,100,,1,,\n\
    2026-01-03T10:00:00Z,buy,BTC,1,200,USD,,,second\n\
    2026-01-04T10:00:00Z,sell,BTC,1.5,300,,2,my-sell,\n";

async fn trades_stored(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TradeRecorded'")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn create(app: &coinfold_tests::TestApp, token: &str, currency: &str) -> String {
    let created = app
        .graphql(
            "mutation($i: CreatePortfolioInput!) { createPortfolio(input: $i) { id } }",
            json!({ "i": { "name": format!("in {currency}"), "currency": currency } }),
            Some(token),
        )
        .await;
    data(&created, "createPortfolio")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn imports_are_all_or_none_and_name_the_bad_line(pool: PgPool) {
    let app = spawn_app(&pool).await;
    let _projections = app.run_projections().await;
    let now = OffsetDateTime::now_utc();
    app.produce_ticks(&[
        usd_tick("BTC", Decimal::from(150), now),
        usd_tick("ETH", Decimal::from(10), now),
    ])
    .await;
    app.eventually(
        "{ prices(coins: [\"BTC\", \"ETH\"]) { coin } }",
        json!({}),
        None,
        |r| r["data"]["prices"].as_array().is_some_and(|p| p.len() == 2),
    )
    .await;
    let alice = app.sign_up("alice").await;
    let a = Some(alice.token.as_str());
    let usd = create(&app, &alice.token, "USD").await;

    // The generic file: the journey's three trades.
    let imported = app
        .graphql(
            IMPORT,
            json!({ "p": usd, "f": "GENERIC", "csv": GENERIC }),
            a,
        )
        .await;
    let result = data(&imported, "importTrades");
    assert_eq!(result["imported"], 3, "{imported}");
    assert_eq!(result["alreadyRecorded"], 0);
    assert_eq!(result["receipt"]["version"], 4);
    assert_eq!(trades_stored(&pool).await, 3);

    // FIFO by hand: the sell of 1.5 takes 1.5 of the first lot (2 for 201: 100.5 each),
    // cost 150.75, proceeds 450 - 2 = 448, realized 297.25; left 0.5 × 100.5 + 200 =
    // 250.25 at cost, worth 1.5 × 150 = 225.
    let summary = app
        .eventually(
            "query($p: ID!) { portfolio(id: $p) { summary { usd { value costBasis realizedGain } } } }",
            json!({ "p": usd }),
            a,
            |r| r["data"]["portfolio"]["summary"]["usd"]["costBasis"] == "250.25",
        )
        .await;
    let totals = &summary["data"]["portfolio"]["summary"]["usd"];
    let number = |v: &Value| v.as_str().and_then(|s| s.parse::<Decimal>().ok());
    assert_eq!(
        number(&totals["realizedGain"]),
        Some(Decimal::new(29725, 2))
    );
    assert_eq!(number(&totals["value"]), Some(Decimal::from(225)));

    // The same file again: nothing new (each row's external id is held).
    let again = app
        .graphql(
            IMPORT,
            json!({ "p": usd, "f": "GENERIC", "csv": GENERIC }),
            a,
        )
        .await;
    let result = data(&again, "importTrades");
    assert_eq!(
        (
            result["imported"].clone(),
            result["alreadyRecorded"].clone()
        ),
        (json!(0), json!(3))
    );
    assert_eq!(trades_stored(&pool).await, 3);

    // Bad files: VALIDATION naming the line, and not one trade stored.
    let header = "executed_at,side,coin,quantity,price\n";
    let good = "2026-02-01T00:00:00Z,buy,ETH,1,10\n";
    let bad: Vec<(String, &str, &str)> = vec![
        (
            format!("{header}{good}2026-02-02T00:00:00Z,buy,ETH,-1,10\n"),
            "line 3",
            "quantity",
        ),
        (
            format!("{header}{good}2026-02-02T00:00:00Z,buy,ETH,1e40,10\n"),
            "line 3",
            "quantity",
        ),
        (
            format!("{header}{good}2026-02-02T00:00:00Z,buy,ETH,1,lots\n"),
            "line 3",
            "price",
        ),
        (
            format!("{header}{good}2026-02-02,buy,ETH,1,10\n"),
            "line 3",
            "executed_at",
        ),
        (
            format!("{header}{good}{good}2026-02-02T00:00:00Z,sell,ETH,5,10\n"),
            "line 4",
            "insufficient holdings",
        ),
        (
            format!("{header}2026-02-02T00:00:00Z,buy,ZZZ,1,10\n"),
            "line 2",
            "unknown coin",
        ),
        (
            "executed_at,side,coin,quantity,price,quote\n2026-02-02T00:00:00Z,buy,ETH,1,10,EUR\n"
                .to_owned(),
            "line 2",
            "keeps its costs in USD",
        ),
        // An unclosed quote makes the rest of the file one cell.
        (
            format!("{header}\"2026-02-02T00:00:00Z,buy,ETH,1,10\n"),
            "line 2",
            "is not a time",
        ),
        (header.to_owned(), "line 1", "no trade"),
        ("side,coin\nbuy,ETH\n".to_owned(), "line 1", "executed_at"),
    ];
    for (csv, line, says) in &bad {
        let refused = app
            .graphql(IMPORT, json!({ "p": usd, "f": "GENERIC", "csv": csv }), a)
            .await;
        assert_eq!(error_code(&refused), "VALIDATION", "{csv}: {refused}");
        let error = &refused["errors"][0];
        assert_eq!(error["extensions"]["field"], *line, "{csv}: {refused}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(says),
            "{csv}: {message:?} should say {says:?}"
        );
        assert_eq!(trades_stored(&pool).await, 3, "{csv} stored something");
    }

    // Binance's export into a USDT portfolio: a fee in the coin traded moves the
    // holding (withheld from a buy, given on top of a sell) and its value at the
    // trade's price is the quote fee; a fee in BNB is kept in the note.
    let usdt = create(&app, &alice.token, "USDT").await;
    let binance = "Date(UTC),Pair,Side,Price,Executed,Amount,Fee\n\
        2026-01-05 14:02:11,BTCUSDT,BUY,40000.00,0.50000000BTC,20000.00000000USDT,0.00050000BTC\n\
        2026-01-05 14:04:00,ETHUSDT,BUY,2500.00,1.00000000ETH,2500.00000000USDT,0.00100000BNB\n\
        2026-01-05 15:00:00,ETHUSDT,SELL,3500.00,0.50000000ETH,1750.00000000USDT,0.00050000ETH\n";
    let imported = app
        .graphql(
            IMPORT,
            json!({ "p": usdt, "f": "BINANCE", "csv": binance }),
            a,
        )
        .await;
    assert_eq!(data(&imported, "importTrades")["imported"], 3, "{imported}");
    let stored: Vec<(Decimal, Decimal, Option<String>)> = sqlx::query_as(
        "SELECT (payload #>> '{TradeRecorded,trade,quantity}')::numeric, \
         (payload #>> '{TradeRecorded,trade,fee}')::numeric, payload #>> '{TradeRecorded,trade,note}' \
         FROM events WHERE aggregate_id = $1 AND event_type = 'TradeRecorded' ORDER BY sequence",
    )
    .bind(&usdt)
    .fetch_all(&pool)
    .await
    .unwrap();
    let number = |s: &str| s.parse::<Decimal>().unwrap();
    assert_eq!(
        stored,
        vec![
            (
                number("0.4995"),
                Decimal::from(20),
                Some(
                    "fee 0.0005 BTC withheld from the 0.5 BTC executed, valued 20 USDT".to_owned()
                )
            ),
            (
                Decimal::ONE,
                Decimal::ZERO,
                Some("fee 0.001 BNB (not in USDT, recorded as 0)".to_owned())
            ),
            (
                number("0.5005"),
                number("1.75"),
                Some(
                    "fee 0.0005 ETH given on top of the 0.5 ETH executed, valued 1.75 USDT"
                        .to_owned()
                )
            ),
        ]
    );
    // What the exchange holds: 0.4995 BTC for 20,000; 1 − 0.5005 = 0.4995 ETH, the
    // rest of the lot of 1 for 2,500 (FIFO), and the sell realized 1750 − 1251.25.
    let held = app
        .eventually(
            "query($p: ID!) { portfolio(id: $p) { summary { holdings { coin quantity costBasis realizedGain } } } }",
            json!({ "p": usdt }),
            a,
            |r| {
                r["data"]["portfolio"]["summary"]["holdings"]
                    .as_array()
                    .is_some_and(|h| h.len() == 2 && h.iter().all(|c| c["quantity"] == "0.4995"))
            },
        )
        .await;
    let mut holdings: Vec<(String, Decimal, Decimal, Decimal)> =
        held["data"]["portfolio"]["summary"]["holdings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let n = |v: &Value| v.as_str().map_or(Decimal::MIN, number);
                (
                    h["coin"].as_str().unwrap_or_default().to_owned(),
                    n(&h["quantity"]),
                    n(&h["costBasis"]),
                    n(&h["realizedGain"]),
                )
            })
            .collect();
    holdings.sort();
    assert_eq!(
        holdings,
        vec![
            (
                "BTC".to_owned(),
                number("0.4995"),
                Decimal::from(20000),
                Decimal::ZERO
            ),
            (
                "ETH".to_owned(),
                number("0.4995"),
                number("1248.75"),
                number("498.75")
            ),
        ]
    );

    // Coinbase's export: its preamble and a send are skipped, by line.
    let coinbase = "You can use this transaction report to inform your likely tax obligations.\n\
        \n\
        ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,Price at Transaction,Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes\n\
        abc1,2026-01-05 14:02:11 UTC,Buy,ETH,2,USD,\"$1,000.00\",$2000.00,$2010.00,$10.00,\n\
        abc2,2026-01-06 09:00:00 UTC,Send,ETH,-1,USD,\"$1,100.00\",,,,To a wallet\n";
    let imported = app
        .graphql(
            IMPORT,
            json!({ "p": usd, "f": "COINBASE", "csv": coinbase }),
            a,
        )
        .await;
    let result = data(&imported, "importTrades");
    assert_eq!(result["imported"], 1, "{imported}");
    assert_eq!(
        result["skipped"],
        json!([{ "line": 5, "reason": "Send is not a trade" }])
    );

    // Another user's portfolio: NOT_FOUND, whatever the file.
    let bob = app.sign_up("bob").await;
    let refused: Value = app
        .graphql(
            IMPORT,
            json!({ "p": usd, "f": "GENERIC", "csv": GENERIC }),
            Some(&bob.token),
        )
        .await;
    assert_eq!(error_code(&refused), "NOT_FOUND");
}
