//! Audit and time travel against the real PostgreSQL.

use coinfold_commands::event_store::PgEventRepository;
use coinfold_commands::history::{AsOf, history, load_as_of};
use coinfold_commands::service::{Actor, CommandContext, CommandOptions, CommandService};
use coinfold_commands::upcasting::upcasters_for;
use coinfold_domain::portfolio::{
    CostBasisMethod, Portfolio, PortfolioCommand, PortfolioEvent, Side, Trade,
};
use coinfold_domain::values::{
    Amount, CoinSymbol, Description, PortfolioName, Price, Quantity, QuoteCurrency,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use uuid::Uuid;

fn context() -> CommandContext {
    CommandContext::new(Actor::User(Uuid::from_u128(1)))
}

fn create(id: Uuid) -> PortfolioCommand {
    PortfolioCommand::Create {
        portfolio_id: id,
        owner_id: Uuid::from_u128(1),
        name: PortfolioName::parse("Audit me").unwrap(),
        description: Description::parse("").unwrap(),
        method: CostBasisMethod::Fifo,
        currency: QuoteCurrency::usd(),
        now: datetime!(2026-01-01 00:00 UTC),
    }
}

fn trade(n: u128, side: Side, quantity: i64, price: i64, executed_at: OffsetDateTime) -> Trade {
    Trade {
        trade_id: Uuid::from_u128(n),
        side,
        coin: CoinSymbol::parse("BTC").unwrap(),
        quantity: Quantity::new(Decimal::from(quantity)).unwrap(),
        price: Price::new(Decimal::from(price)).unwrap(),
        quote: QuoteCurrency::usd(),
        fee: Amount::new(Decimal::ZERO).unwrap(),
        executed_at,
        note: None,
        external_id: None,
    }
}

fn realized(p: &Portfolio) -> Decimal {
    p.state()
        .unwrap()
        .disposals
        .values()
        .filter_map(|d| d.realized_gain)
        .sum()
}

fn held(p: &Portfolio) -> Decimal {
    p.holdings()
        .unwrap()
        .values()
        .flatten()
        .map(|l| l.quantity)
        .sum()
}

async fn recorded_at(pool: &PgPool, sequence: i64) -> OffsetDateTime {
    let text: String =
        sqlx::query_scalar("SELECT metadata->>'recorded_at' FROM events WHERE sequence = $1")
            .bind(sequence)
            .fetch_one(pool)
            .await
            .unwrap();
    OffsetDateTime::parse(&text, &Rfc3339).unwrap()
}

/// Buy 2 @ 100 (executed Jan 2), sell 1 @ 150 (Jan 5), then the buy is corrected to
/// @ 80. Snapshots every 2 events, so later loads start from one.
#[sqlx::test(migrations = "../migrations")]
async fn load_as_of_returns_the_state_at_each_past_point(pool: PgPool) {
    let service: CommandService<Portfolio> = CommandService::new(
        PgEventRepository::new(pool.clone(), ""),
        (),
        CommandOptions {
            snapshot_every: Some(2),
            max_attempts: 3,
        },
    );
    let id = Uuid::now_v7();
    let aggregate_id = id.to_string();
    let jan = |day: i64| datetime!(2026-01-01 12:00 UTC) + time::Duration::days(day - 1);
    for command in [
        create(id),
        PortfolioCommand::RecordTrade {
            trade: trade(1, Side::Buy, 2, 100, jan(2)),
        },
        PortfolioCommand::RecordTrade {
            trade: trade(2, Side::Sell, 1, 150, jan(5)),
        },
        PortfolioCommand::CorrectTrade {
            trade: trade(1, Side::Buy, 2, 80, jan(2)),
        },
    ] {
        service
            .execute(&aggregate_id, command, &context())
            .await
            .unwrap();
        // recorded_at has microsecond resolution; keep the four apart.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let upcasters = upcasters_for("Portfolio");
    let load = |as_of| {
        let (pool, aggregate_id, upcasters) = (&pool, &aggregate_id, &upcasters);
        async move {
            load_as_of::<Portfolio>(pool, aggregate_id, as_of, upcasters)
                .await
                .unwrap()
        }
    };

    // By version.
    let v2 = load(AsOf::Version(2)).await.unwrap();
    assert_eq!(
        (v2.version, held(&v2.aggregate), realized(&v2.aggregate)),
        (2, Decimal::from(2), Decimal::ZERO)
    );
    let v3 = load(AsOf::Version(3)).await.unwrap();
    assert_eq!(realized(&v3.aggregate), Decimal::from(50));
    assert_eq!(v3.from_snapshot, Some(2));
    let now = load(AsOf::Version(99)).await.unwrap();
    assert_eq!(
        (now.version, realized(&now.aggregate)),
        (4, Decimal::from(70))
    );
    assert_eq!(now.from_snapshot, Some(4));

    // By recorded time: what the system knew just after the sell, before the correction.
    let known = load(AsOf::RecordedAt(recorded_at(&pool, 3).await))
        .await
        .unwrap();
    assert_eq!(
        (known.version, realized(&known.aggregate)),
        (3, Decimal::from(50))
    );
    let before_anything = load(AsOf::RecordedAt(
        recorded_at(&pool, 1).await - time::Duration::seconds(1),
    ))
    .await;
    assert!(before_anything.is_none());

    // By effective time: Jan 3, as we know it now (the corrected price, no sell yet).
    let jan_3 = load(AsOf::EffectiveAt(jan(3))).await.unwrap();
    assert_eq!(held(&jan_3.aggregate), Decimal::from(2));
    let lots = jan_3.aggregate.holdings().unwrap();
    assert_eq!(
        lots.values().flatten().map(|l| l.cost).sum::<Decimal>(),
        Decimal::from(160)
    );
    assert!(jan_3.aggregate.state().unwrap().disposals.is_empty());

    // Never-existing aggregates load as None.
    let none = load_as_of::<Portfolio>(&pool, "nobody", AsOf::Version(5), &upcasters)
        .await
        .unwrap();
    assert!(none.is_none());
}

#[sqlx::test(migrations = "../migrations")]
async fn history_pages_through_events_with_their_metadata(pool: PgPool) {
    let service: CommandService<Portfolio> = CommandService::new(
        PgEventRepository::new(pool.clone(), ""),
        (),
        CommandOptions::default(),
    );
    let id = Uuid::now_v7();
    service
        .execute(&id.to_string(), create(id), &context())
        .await
        .unwrap();
    for n in 1..=4 {
        let trade = trade(n, Side::Buy, 1, 100, datetime!(2026-01-02 00:00 UTC));
        service
            .execute(
                &id.to_string(),
                PortfolioCommand::RecordTrade { trade },
                &context(),
            )
            .await
            .unwrap();
    }
    let first = history(&pool, "Portfolio", &id.to_string(), 0, 2)
        .await
        .unwrap();
    let rest = history(&pool, "Portfolio", &id.to_string(), 2, 10)
        .await
        .unwrap();
    assert_eq!(first.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(
        rest.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert_eq!(first[0].event_type, "PortfolioCreated");
    assert_eq!(rest[0].event_version, "2");
    assert_eq!(
        rest[0].metadata["actor"],
        format!("user:{}", Uuid::from_u128(1))
    );
    assert_eq!(rest[0].metadata["effective_at"], "2026-01-02T00:00:00Z");
    assert!(first[0].global_position < rest[0].global_position);
}

/// A TradeRecorded of version 1 (stored before fees were recorded) still loads, both
/// for a new command and for time travel.
#[sqlx::test(migrations = "../migrations")]
async fn a_trade_stored_before_fees_existed_still_loads(pool: PgPool) {
    let service: CommandService<Portfolio> = CommandService::new(
        PgEventRepository::new(pool.clone(), ""),
        (),
        CommandOptions::default(),
    );
    let id = Uuid::now_v7();
    service
        .execute(&id.to_string(), create(id), &context())
        .await
        .unwrap();

    let v1 = json!({"TradeRecorded": {
        "trade": {"trade_id": Uuid::from_u128(7), "side": "BUY", "coin": "BTC", "quantity": "2",
                  "price": "100", "quote": "USD", "executed_at": "2025-06-01T00:00:00Z",
                  "note": null, "external_id": null},
        "method": "FIFO", "disposal": null, "rederived": []}});
    assert!(
        serde_json::from_value::<PortfolioEvent>(v1.clone()).is_err(),
        "without the upcaster this shape would not load"
    );
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('Portfolio', $1, 2, 'TradeRecorded', '1', $2, '{}')",
    )
    .bind(id.to_string())
    .bind(&v1)
    .execute(&pool)
    .await
    .unwrap();

    // Loading for a command folds the old event: the sell finds the lot, at cost 200.
    let sell = trade(8, Side::Sell, 1, 150, datetime!(2025-07-01 00:00 UTC));
    service
        .execute(
            &id.to_string(),
            PortfolioCommand::RecordTrade { trade: sell },
            &context(),
        )
        .await
        .unwrap();
    let loaded = load_as_of::<Portfolio>(
        &pool,
        &id.to_string(),
        AsOf::Version(3),
        &upcasters_for("Portfolio"),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(realized(&loaded.aggregate), Decimal::from(50));
    let state = loaded.aggregate.state().unwrap();
    let fee = match &state.entries[0].record {
        coinfold_domain::portfolio::Record::Trade(t) => t.fee,
        other => panic!("{other:?}"),
    };
    assert!(fee.is_zero());
    let stored: Value = sqlx::query_scalar("SELECT payload FROM events WHERE sequence = 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, v1, "the stored event itself is never rewritten");
}
