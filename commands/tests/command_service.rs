//! The command service against the real PostgreSQL, one database per test.

use std::collections::HashSet;
use std::sync::Arc;

use coinfold_commands::event_store::PgEventRepository;
use coinfold_commands::service::{
    Actor, CommandContext, CommandError, CommandOptions, CommandService,
};
use coinfold_domain::portfolio::{
    CostBasisMethod, Portfolio, PortfolioCommand, PortfolioError, Side, Trade,
};
use coinfold_domain::values::{
    Amount, CoinSymbol, Description, PortfolioName, Price, Quantity, QuoteCurrency,
};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateContext, EventStore};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

const OWNER: Uuid = Uuid::from_u128(0xB0B);

fn service(pool: &PgPool, options: CommandOptions) -> CommandService<Portfolio> {
    CommandService::new(PgEventRepository::new(pool.clone(), ""), (), options)
}

fn context() -> CommandContext {
    CommandContext::new(Actor::User(OWNER))
}

fn create(portfolio_id: Uuid) -> PortfolioCommand {
    PortfolioCommand::Create {
        portfolio_id,
        owner_id: OWNER,
        name: PortfolioName::parse("Main").unwrap(),
        description: Description::parse("").unwrap(),
        method: CostBasisMethod::Fifo,
        currency: QuoteCurrency::usd(),
        now: datetime!(2026-01-01 00:00 UTC),
    }
}

fn buy(n: u64, executed_at: OffsetDateTime) -> PortfolioCommand {
    PortfolioCommand::RecordTrade {
        trade: Trade {
            trade_id: Uuid::from_u128(n as u128 + 1),
            side: Side::Buy,
            coin: CoinSymbol::parse("BTC").unwrap(),
            quantity: Quantity::new(Decimal::new(n as i64 + 1, 2)).unwrap(),
            price: Price::new(Decimal::from(30_000 + n)).unwrap(),
            quote: QuoteCurrency::usd(),
            fee: Amount::new(Decimal::ONE).unwrap(),
            executed_at,
            note: None,
            external_id: None,
        },
    }
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_hundred_concurrent_trades_on_one_portfolio_are_all_stored(
    pool_options: PgPoolOptions,
    connect_options: PgConnectOptions,
) {
    let pool = pool_options
        .max_connections(20)
        .connect_with(connect_options)
        .await
        .unwrap();
    let service = Arc::new(service(
        &pool,
        CommandOptions {
            snapshot_every: Some(25),
            max_attempts: 200,
        },
    ));
    let id = Uuid::now_v7();
    service
        .execute(&id.to_string(), create(id), &context())
        .await
        .unwrap();

    let tasks: Vec<_> = (0..100)
        .map(|n| {
            let service = service.clone();
            tokio::spawn(async move {
                service
                    .execute(
                        &id.to_string(),
                        buy(n, datetime!(2026-01-02 00:00 UTC)),
                        &context(),
                    )
                    .await
            })
        })
        .collect();
    let mut versions = HashSet::new();
    for task in tasks {
        let outcome = task.await.unwrap().expect("every trade is stored");
        assert_eq!(outcome.events, 1);
        versions.insert(outcome.version);
    }

    assert_eq!(versions, (2..=101).collect::<HashSet<usize>>());
    let sequences: Vec<i64> = sqlx::query_scalar("SELECT sequence FROM events ORDER BY sequence")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(sequences, (1..=101).collect::<Vec<i64>>());
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM events WHERE event_type = 'TradeRecorded'"
        )
        .await,
        100
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM outbox").await, 101);
    assert_eq!(
        count(
            &pool,
            "SELECT count(DISTINCT metadata->>'event_id') FROM events"
        )
        .await,
        101
    );

    // The loaded portfolio (from its snapshot plus later events) holds all 100 lots.
    let store = PersistedEventStore::<_, Portfolio>::new_snapshot_store(
        PgEventRepository::new(pool.clone(), ""),
        25,
    );
    let mut loaded = store.load_aggregate(&id.to_string()).await.unwrap();
    let lots = loaded.aggregate().holdings().unwrap();
    assert_eq!(lots[&CoinSymbol::parse("BTC").unwrap()].len(), 100);
}

#[sqlx::test(migrations = "../migrations")]
async fn one_command_sent_ten_times_with_one_key_is_stored_once(
    pool_options: PgPoolOptions,
    connect_options: PgConnectOptions,
) {
    let pool = pool_options
        .max_connections(12)
        .connect_with(connect_options)
        .await
        .unwrap();
    let service = Arc::new(service(&pool, CommandOptions::default()));
    let id = Uuid::now_v7();
    service
        .execute(&id.to_string(), create(id), &context())
        .await
        .unwrap();

    let command = buy(7, datetime!(2026-01-02 00:00 UTC));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (service, command) = (service.clone(), command.clone());
            tokio::spawn(async move {
                service
                    .execute(
                        &id.to_string(),
                        command,
                        &context().with_idempotency_key("trade-7"),
                    )
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().expect("same key, same answer"));
    }
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM events WHERE event_type = 'TradeRecorded'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM idempotency_keys").await,
        1
    );
    assert!(
        outcomes.iter().all(|o| o.version == 2 && o.events == 1),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| !o.replayed).count(),
        1,
        "{outcomes:?}"
    );

    // The same key for another command is refused, and nothing is stored.
    let other = service
        .execute(
            &id.to_string(),
            buy(8, datetime!(2026-01-02 00:00 UTC)),
            &context().with_idempotency_key("trade-7"),
        )
        .await;
    assert!(
        matches!(other, Err(CommandError::IdempotencyKeyReused)),
        "{other:?}"
    );
    // Keys belong to their sender: another user's identical key is a different key.
    let mut someone_else = context().with_idempotency_key("trade-7");
    someone_else.actor = Actor::User(Uuid::from_u128(0xCAFE));
    let theirs = service
        .execute(
            &id.to_string(),
            buy(9, datetime!(2026-01-02 00:00 UTC)),
            &someone_else,
        )
        .await
        .unwrap();
    assert!(!theirs.replayed);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM events WHERE event_type = 'TradeRecorded'"
        )
        .await,
        2
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stale_expected_version_is_a_conflict_and_refusals_store_nothing(pool: PgPool) {
    let service = service(&pool, CommandOptions::default());
    let id = Uuid::now_v7();
    service
        .execute(&id.to_string(), create(id), &context())
        .await
        .unwrap();
    service
        .execute(
            &id.to_string(),
            buy(1, datetime!(2026-01-02 00:00 UTC)),
            &context(),
        )
        .await
        .unwrap();

    let mut stale = context();
    stale.expected_version = Some(1);
    let answer = service
        .execute(
            &id.to_string(),
            buy(2, datetime!(2026-01-02 00:00 UTC)),
            &stale,
        )
        .await;
    assert!(matches!(answer, Err(CommandError::Conflict)), "{answer:?}");

    let refused = service
        .execute(&id.to_string(), create(id), &context())
        .await;
    assert!(
        matches!(
            refused,
            Err(CommandError::Rejected(PortfolioError::AlreadyCreated))
        ),
        "{refused:?}"
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, 2);
    assert_eq!(count(&pool, "SELECT count(*) FROM outbox").await, 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn every_event_carries_its_metadata_and_an_outbox_row(pool: PgPool) {
    let service = service(&pool, CommandOptions::default());
    let id = Uuid::now_v7();
    let mut ctx = context().with_idempotency_key("k1");
    ctx.causation_id = Some(Uuid::from_u128(42));
    service
        .execute(&id.to_string(), create(id), &ctx)
        .await
        .unwrap();
    let executed_at = datetime!(2025-12-31 23:00 UTC);
    service
        .execute(&id.to_string(), buy(1, executed_at), &context())
        .await
        .unwrap();

    let rows: Vec<(String, Value)> =
        sqlx::query_as("SELECT event_type, metadata FROM events ORDER BY sequence")
            .fetch_all(&pool)
            .await
            .unwrap();
    let (created, first) = &rows[0];
    assert_eq!(created, "PortfolioCreated");
    assert_eq!(first["actor"], format!("user:{OWNER}"));
    assert_eq!(first["command"], "Create");
    assert_eq!(first["causation_id"], Uuid::from_u128(42).to_string());
    assert_eq!(first["idempotency_key"], "k1");
    assert!(first.get("idempotency_request_hash").is_none(), "{first}");
    let event_id: Uuid = first["event_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(event_id.get_version_num(), 7);
    assert!(first["recorded_at"].as_str().unwrap().ends_with('Z'));
    let (_, second) = &rows[1];
    assert_eq!(second["effective_at"], "2025-12-31T23:00:00Z");
    assert_ne!(second["correlation_id"], first["correlation_id"]);

    let outbox: Vec<(Uuid, String, String, Value)> =
        sqlx::query_as("SELECT event_id, topic, message_key, payload FROM outbox ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(outbox.len(), 2);
    assert_eq!(outbox[0].0, event_id);
    assert_eq!(outbox[0].1, "coinfold.domain-events");
    assert_eq!(outbox[0].2, id.to_string());
    assert_eq!(outbox[1].3["event_type"], "TradeRecorded");
    assert_eq!(outbox[1].3["sequence"], 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_snapshot_folds_each_event_once(pool: PgPool) {
    let service = service(
        &pool,
        CommandOptions {
            snapshot_every: Some(3),
            max_attempts: 3,
        },
    );
    let id = Uuid::now_v7();
    service
        .execute(&id.to_string(), create(id), &context())
        .await
        .unwrap();
    for n in 0..7 {
        service
            .execute(
                &id.to_string(),
                buy(n, datetime!(2026-01-02 00:00 UTC)),
                &context(),
            )
            .await
            .unwrap();
    }
    assert!(count(&pool, "SELECT count(*) FROM snapshots").await >= 2);

    let repo = PgEventRepository::new(pool.clone(), "");
    let mut from_snapshot =
        PersistedEventStore::<_, Portfolio>::new_snapshot_store(repo.clone(), 3)
            .load_aggregate(&id.to_string())
            .await
            .unwrap();
    let mut from_events = PersistedEventStore::<_, Portfolio>::new_event_store(repo)
        .load_aggregate(&id.to_string())
        .await
        .unwrap();
    assert_eq!(from_snapshot.aggregate(), from_events.aggregate());
    assert_eq!(from_events.aggregate().state().unwrap().entries.len(), 7);
}
