//! The read side against the real services: the portfolio read model agrees with the
//! aggregate; reads keep answering through a rebuild; a killed projector ends where a
//! clean rebuild ends; double-delivered ticks fire a one-shot alert once.

mod common;
#[allow(dead_code)] // stopping gracefully is for the stream-worker tests
#[path = "common/process.rs"]
mod process;
#[path = "common/seed.rs"]
mod seed;

use std::collections::BTreeMap;
use std::time::Duration;

use coinfold_api::project::CommandTrigger;
use coinfold_commands::event_store::PgEventRepository;
use coinfold_commands::service::{Actor, CommandContext, CommandOptions, CommandService};
use coinfold_domain::alert::{Alert, AlertCommand, AlertCondition, Repeat};
use coinfold_domain::portfolio::{CostBasisMethod, Portfolio, PortfolioCommand, Side, Trade};
use coinfold_domain::values::{
    Amount, CoinSymbol, Description, Note, PortfolioName, Price, Quantity, QuoteCurrency,
};
use coinfold_projections::alerting::{Evaluator, USD_QUOTES};
use coinfold_projections::ingest::producer::{ensure_topics, producer_config};
use coinfold_projections::ingest::replay::ReplayFile;
use coinfold_projections::ingest::{TICKS_TOPIC, TickKind};
use coinfold_projections::models::alerts::Alerts;
use coinfold_projections::models::portfolios::{self, Portfolios};
use coinfold_projections::projection::rebuild::rebuild_log;
use coinfold_projections::projection::registry::{ALL, CACHE_TABLES};
use coinfold_projections::projection::status;
use process::{Projector, env_or, produce};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rust_decimal::Decimal;
use sqlx::PgPool;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

fn trade(n: u128, side: Side, quantity: Decimal, price: Decimal, at: OffsetDateTime) -> Trade {
    Trade {
        trade_id: Uuid::from_u128(n),
        side,
        coin: CoinSymbol::parse("BTC").unwrap(),
        quantity: Quantity::new(quantity).unwrap(),
        price: Price::new(price).unwrap(),
        quote: QuoteCurrency::usd(),
        fee: Amount::new(Decimal::ONE).unwrap(),
        executed_at: at,
        note: None,
        external_id: None,
    }
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn the_portfolio_read_model_agrees_with_the_aggregate(pool: PgPool) {
    let service: CommandService<Portfolio> = CommandService::new(
        PgEventRepository::new(pool.clone(), ""),
        (),
        CommandOptions::default(),
    );
    let owner = Uuid::now_v7();
    let id = Uuid::now_v7();
    let context = CommandContext::new(Actor::User(owner));
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    let commands = vec![
        PortfolioCommand::Create {
            portfolio_id: id,
            owner_id: owner,
            name: PortfolioName::parse("Main").unwrap(),
            description: Description::parse("").unwrap(),
            method: CostBasisMethod::Fifo,
            currency: QuoteCurrency::usd(),
            now: datetime!(2026-01-01 00:00 UTC),
        },
        PortfolioCommand::RecordTrade {
            trade: trade(
                1,
                Side::Buy,
                d("1"),
                d("100"),
                datetime!(2026-01-02 00:00 UTC),
            ),
        },
        PortfolioCommand::RecordTrade {
            trade: trade(
                2,
                Side::Buy,
                d("2"),
                d("200"),
                datetime!(2026-01-03 00:00 UTC),
            ),
        },
        PortfolioCommand::RecordTrade {
            trade: trade(
                3,
                Side::Sell,
                d("1.5"),
                d("300"),
                datetime!(2026-01-04 00:00 UTC),
            ),
        },
        // Backdated before everything: the sell is derived again.
        PortfolioCommand::RecordTrade {
            trade: trade(
                4,
                Side::Buy,
                d("1"),
                d("50"),
                datetime!(2026-01-01 12:00 UTC),
            ),
        },
        PortfolioCommand::CorrectTrade {
            trade: trade(
                1,
                Side::Buy,
                d("1"),
                d("110"),
                datetime!(2026-01-02 00:00 UTC),
            ),
        },
        PortfolioCommand::VoidTrade {
            trade_id: Uuid::from_u128(2),
            reason: Note::parse("entered twice").unwrap(),
        },
    ];
    for command in commands {
        service
            .execute(&id.to_string(), command, &context)
            .await
            .expect("command accepted");
    }
    assert_eq!(seed::catch_up(&pool, &Portfolios).await, 7);

    let loaded = coinfold_commands::history::load_as_of::<Portfolio>(
        &pool,
        &id.to_string(),
        coinfold_commands::history::AsOf::Version(7),
        &coinfold_commands::upcasting::upcasters_for("Portfolio"),
    )
    .await
    .expect("loaded")
    .expect("the portfolio exists");
    let aggregate = loaded.aggregate;
    let lots = aggregate.holdings().unwrap();
    let expected: Vec<(Uuid, Decimal, Decimal)> = lots
        .values()
        .flatten()
        .map(|l| (l.lot_id, l.quantity.normalize(), l.cost.normalize()))
        .collect();
    let mut rows: Vec<(Uuid, Decimal, Decimal)> = sqlx::query_as(
        "SELECT lot_id, quantity, cost FROM read.portfolio_lots WHERE portfolio_id = $1",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    for row in &mut rows {
        row.1 = row.1.normalize();
        row.2 = row.2.normalize();
    }
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    rows.sort();
    assert_eq!(rows, expected_sorted, "lots");
    // FIFO: the sell of 1.5 took the backdated lot (1 @ 50 + 1 fee) and half of lot 1.
    let realized: Decimal = aggregate
        .state()
        .unwrap()
        .disposals
        .values()
        .filter_map(|d| d.realized_gain)
        .sum();
    let (quantity, cost, gain): (Decimal, Decimal, Decimal) = sqlx::query_as(
        "SELECT quantity, cost_basis, realized_gain FROM read.portfolio_holdings \
         WHERE portfolio_id = $1 AND coin = 'BTC'",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(quantity.normalize(), d("0.5"));
    assert_eq!(cost, expected.iter().map(|l| l.2).sum::<Decimal>());
    assert_eq!(gain, realized);
    assert_eq!(gain, d("450") - d("1") - d("51") - d("55.5"));
    let (voided, version): (bool, i64) = sqlx::query_as(
        "SELECT t.voided, p.version FROM read.portfolio_transactions t \
         JOIN read.portfolios p USING (portfolio_id) WHERE t.entry_id = $1",
    )
    .bind(Uuid::from_u128(2))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(voided);
    assert_eq!(version, 7);
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn reads_keep_answering_during_a_rebuild_and_see_the_new_tables(pool: PgPool) {
    seed::seed_events(&pool, 20_000, 11).await;
    seed::catch_up(&pool, &Portfolios).await;
    let before = seed::checksums(&pool, "read", portfolios::TABLES).await;
    let oid = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT 'read.portfolio_holdings'::regclass::oid::bigint")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let old_table = oid(pool.clone()).await;

    // A reader that never stops asking, and notes which table answered.
    let stop = tokio_util::sync::CancellationToken::new();
    let reader = {
        let (pool, stop) = (pool.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut answers, mut errors, mut tables) = (0u64, Vec::new(), Vec::new());
            while !stop.is_cancelled() {
                let answer: Result<(i64, i64), _> = sqlx::query_as(
                    "SELECT count(*), 'read.portfolio_holdings'::regclass::oid::bigint \
                     FROM read.portfolio_holdings",
                )
                .fetch_one(&pool)
                .await;
                match answer {
                    Ok((rows, table)) => {
                        answers += 1;
                        if tables.last() != Some(&table) {
                            tables.push(table);
                        }
                        assert!(rows > 0, "a reader saw an empty table");
                    }
                    Err(error) => errors.push(error.to_string()),
                }
            }
            (answers, errors, tables)
        })
    };
    let mut last_progress = None;
    let report = rebuild_log(&pool, &Portfolios, 500, &mut |p| last_progress = Some(*p))
        .await
        .expect("rebuilt");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    let (answers, errors, tables) = reader.await.unwrap();
    let progress = last_progress.expect("progress was reported");
    println!(
        "rebuild: {} events in {:.2} s ({:.0} events/s); reader: {answers} answers, tables {tables:?}",
        report.applied,
        report.elapsed.as_secs_f64(),
        progress.rate()
    );
    assert!(
        errors.is_empty(),
        "reads failed during the rebuild: {errors:?}"
    );
    assert!(answers > 10, "only {answers} reads during the rebuild");
    let new_table = oid(pool.clone()).await;
    assert_ne!(new_table, old_table, "the tables were swapped");
    assert_eq!(tables.first(), Some(&old_table));
    assert_eq!(
        tables.last(),
        Some(&new_table),
        "readers see the new table after the swap"
    );
    // The swap may leave a few events to the live fold (see `catch_up`).
    seed::catch_up(&pool, &Portfolios).await;
    assert_eq!(
        seed::checksums(&pool, "read", portfolios::TABLES).await,
        before
    );
    assert!(progress.applied > 0 && progress.applied <= progress.total);
    let (state, position): (String, i64) = sqlx::query_as(
        "SELECT state, position FROM projection_checkpoints WHERE projection = 'portfolios'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((state.as_str(), position), ("running", report.position));
    // The live projection goes on from the swapped-in checkpoint.
    seed::seed_events(&pool, 100, 12).await;
    seed::catch_up(&pool, &Portfolios).await;
    let (read, created): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM read.portfolios), \
                (SELECT count(*) FROM events WHERE event_type = 'PortfolioCreated')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(created > before["portfolios"].0);
    assert_eq!(read, created);
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn every_tick_twice_still_fires_each_one_shot_alert_once(pool: PgPool) {
    let recording = ReplayFile::open(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../recordings/binance.jsonl"
    )))
    .expect("the shipped recording reads");
    let ticks: Vec<_> = recording
        .ticks()
        .into_iter()
        .filter(|t| t.kind != TickKind::Candle && USD_QUOTES.contains(&t.quote.as_str()))
        .collect();
    // A coin that rises from its first price and one that falls (from the recording).
    let series = |coin: &str| -> Vec<&coinfold_projections::ingest::Tick> {
        ticks.iter().filter(|t| t.coin.as_str() == coin).collect()
    };
    let moves = |coin: &str| {
        let s = series(coin);
        let first = s[0].price.value();
        let max = s.iter().map(|t| t.price.value()).max().unwrap();
        let min = s.iter().map(|t| t.price.value()).min().unwrap();
        (first, max, min)
    };
    let coins = ["BTC", "ETH", "SOL", "ADA", "DOGE"];
    let up = *coins
        .iter()
        .find(|c| {
            let (f, max, _) = moves(c);
            max > f
        })
        .expect("a coin rises");
    let down = *coins
        .iter()
        .find(|c| {
            let (f, _, min) = moves(c);
            min < f
        })
        .expect("a coin falls");
    let (first, max, _) = moves(up);
    let above = ((first + max) / Decimal::TWO).round_dp(8);
    let (first, _, min) = moves(down);
    let below = ((first + min) / Decimal::TWO).round_dp(8);
    let rising = series(up);

    let service: CommandService<Alert> = CommandService::new(
        PgEventRepository::new(pool.clone(), ""),
        (),
        CommandOptions::default(),
    );
    let owner = Uuid::now_v7();
    let context = CommandContext::new(Actor::User(owner));
    let mut alerts = BTreeMap::new();
    for (name, coin, condition, repeat) in [
        (
            "one-shot above",
            up,
            AlertCondition::PriceAbove {
                threshold: Price::new(above).unwrap(),
            },
            Repeat::OneShot,
        ),
        (
            "one-shot below",
            down,
            AlertCondition::PriceBelow {
                threshold: Price::new(below).unwrap(),
            },
            Repeat::OneShot,
        ),
        (
            "recurring above",
            up,
            AlertCondition::PriceAbove {
                threshold: Price::new(above).unwrap(),
            },
            Repeat::Recurring,
        ),
    ] {
        let id = Uuid::now_v7();
        service
            .execute(
                &id.to_string(),
                AlertCommand::Create {
                    alert_id: id,
                    owner_id: owner,
                    coin: CoinSymbol::parse(coin).unwrap(),
                    condition,
                    repeat,
                    cooldown_seconds: 120,
                    // Created before the recording starts: its ticks come after.
                    now: ticks[0].exchange_time - time::Duration::seconds(1),
                },
                &context,
            )
            .await
            .unwrap();
        alerts.insert(name, id);
    }
    seed::catch_up(&pool, &Alerts).await;
    // The recording is in USDT: the alerts' USD thresholds need USDT's rate (1 here,
    // so the thresholds taken from the recording's prices keep their meaning).
    seed_usdt_rate(&pool).await;

    let trigger = CommandTrigger::new(pool.clone(), "");
    let mut evaluator = Evaluator::new(pool.clone(), &trigger);
    for tick in &ticks {
        evaluator.on_tick(tick).await.expect("evaluated");
        evaluator.on_tick(tick).await.expect("evaluated again");
    }
    let fired: BTreeMap<String, i64> = sqlx::query_as(
        "SELECT aggregate_id, count(*) FROM events WHERE event_type = 'AlertTriggered' GROUP BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let count = |name: &str| fired.get(&alerts[name].to_string()).copied().unwrap_or(0);
    // The recurring alert: every tick at or above the threshold, at most once per
    // cooldown, counted by hand over the same series.
    let mut expected_recurring = 0;
    let mut last: Option<OffsetDateTime> = None;
    for tick in &rising {
        if tick.price.value() >= above
            && last.is_none_or(|at| tick.exchange_time >= at + time::Duration::seconds(120))
        {
            expected_recurring += 1;
            last = Some(tick.exchange_time);
        }
    }
    let stats = evaluator.stats();
    println!(
        "alerts: {} ticks twice, {} commands, {} triggered; one-shot above {}, below {}, recurring {} (expected {expected_recurring})",
        ticks.len(),
        stats.commands,
        stats.triggered,
        count("one-shot above"),
        count("one-shot below"),
        count("recurring above"),
    );
    assert_eq!(count("one-shot above"), 1);
    assert_eq!(count("one-shot below"), 1);
    assert!(expected_recurring > 1);
    assert_eq!(count("recurring above"), expected_recurring);
    assert!(
        stats.commands > stats.triggered,
        "duplicates were sent and absorbed"
    );
    assert_eq!(stats.triggered as i64, 2 + expected_recurring);
}

/// USDT's own USD price, 1: what turns USDT-quoted ticks into USD for the evaluator.
async fn seed_usdt_rate(pool: &PgPool) {
    sqlx::query(
        "INSERT INTO read.latest_prices (coin, quote, price, source, exchange_time) \
         VALUES ('USDT', 'USD', 1, 'test', now())",
    )
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn ticks_from_before_an_alert_was_created_fire_nothing(pool: PgPool) {
    // A backlog or a backfilled history read after the alert was created: its ticks
    // judge a market the alert was not watching.
    let service: CommandService<Alert> = CommandService::new(
        PgEventRepository::new(pool.clone(), ""),
        (),
        CommandOptions::default(),
    );
    let created = OffsetDateTime::now_utc();
    let id = Uuid::now_v7();
    service
        .execute(
            &id.to_string(),
            AlertCommand::Create {
                alert_id: id,
                owner_id: Uuid::now_v7(),
                coin: CoinSymbol::parse("BTC").unwrap(),
                condition: AlertCondition::PriceAbove {
                    threshold: Price::new(Decimal::ONE).unwrap(),
                },
                repeat: Repeat::Recurring,
                cooldown_seconds: 0,
                now: created,
            },
            &CommandContext::new(Actor::User(Uuid::now_v7())),
        )
        .await
        .unwrap();
    seed::catch_up(&pool, &Alerts).await;
    let trigger = CommandTrigger::new(pool.clone(), "");
    let mut evaluator = Evaluator::new(pool.clone(), &trigger);
    let tick = |at: OffsetDateTime| coinfold_projections::ingest::Tick {
        schema: coinfold_projections::ingest::TICK_SCHEMA,
        source: coinfold_projections::ingest::Source::Coinbase,
        kind: TickKind::Ticker,
        coin: CoinSymbol::parse("BTC").unwrap(),
        quote: coinfold_domain::values::QuoteCurrency::usd(),
        price: Price::new(Decimal::from(100)).unwrap(),
        size: None,
        side: None,
        trade_id: None,
        volume_24h: None,
        exchange_time: at,
        received_time: at,
    };
    for minutes in [90, 60, 1] {
        evaluator
            .on_tick(&tick(created - time::Duration::minutes(minutes)))
            .await
            .unwrap();
    }
    assert_eq!(evaluator.stats().triggered, 0, "{:?}", evaluator.stats());
    evaluator
        .on_tick(&tick(created + time::Duration::seconds(1)))
        .await
        .unwrap();
    assert_eq!(evaluator.stats().triggered, 1, "{:?}", evaluator.stats());
}

const FOUR: [&str; 4] = ["portfolios", "users", "alerts", "market"];

/// Events and messages not applied yet by the four projections (as `projections
/// status` counts them).
async fn lag(pool: &PgPool, brokers: &str, prefix: &str) -> i64 {
    let four = ALL.iter().filter(|e| FOUR.contains(&e.name));
    status::of(pool, brokers, prefix, four)
        .await
        .unwrap()
        .iter()
        .map(|s| s.lag.expect("the broker answers"))
        .sum()
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_projector_killed_again_and_again_ends_equal_to_a_clean_rebuild(pool: PgPool) {
    let brokers = env_or("KAFKA_BROKERS", "127.0.0.1:9092");
    let projector = Projector::for_test(&pool);
    let events = seed::seed_events(&pool, 50_000, 21).await;
    let topic = format!("{}{TICKS_TOPIC}", projector.prefix);
    ensure_topics(&brokers, &[(topic.clone(), 3)])
        .await
        .expect("topic created");
    let ticks = seed::tick_series(50_000, 22, 50);
    let producer: FutureProducer = producer_config(&brokers, "crash-test").create().unwrap();
    produce(&producer, &topic, &ticks, |_| None).await;

    // Kill it at random points until it has been killed ten times while behind.
    let mut rng = seed::Rng::new(23);
    let mut kills_while_behind = 0;
    let mut lags = Vec::new();
    while kills_while_behind < 10 {
        // Each run joins a fresh consumer group: tansu 0.6 kept a group stalled for
        // minutes after a member was killed (static membership helped only at first).
        // The projection does not depend on the broker's offsets: a fresh group starts
        // at the beginning and the offsets in PostgreSQL drop what was applied, which
        // is the property under test.
        let child = projector.spawn(&format!("projections-{kills_while_behind}"), &FOUR);
        tokio::time::sleep(Duration::from_millis(600 + rng.below(1600))).await;
        drop(child); // SIGKILL
        let behind = lag(&pool, &brokers, &projector.prefix).await;
        lags.push(behind);
        assert!(
            behind > 0,
            "caught up after {kills_while_behind} kills (lags {lags:?}): make the test bigger"
        );
        kills_while_behind += 1;
    }
    let child = projector.spawn(&format!("projections-{kills_while_behind}"), &FOUR);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while lag(&pool, &brokers, &projector.prefix).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the projector did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(child);
    println!(
        "crash test: {events} events, {} tick messages, lag after each kill {lags:?}",
        ticks.len()
    );

    let names = FOUR;
    let tables: Vec<&str> = ALL
        .iter()
        .filter(|e| names.contains(&e.name))
        .flat_map(|e| e.tables.iter().copied())
        .filter(|t| !CACHE_TABLES.contains(t))
        .collect();
    let after_crashes = seed::checksums(&pool, "read", &tables).await;
    // Two empty tables would compare equal: every compared table has rows.
    for (table, (rows, _)) in &after_crashes {
        assert!(
            *rows > 0,
            "read.{table} is empty: the test proves nothing about it"
        );
    }
    let candles = after_crashes["candles"].0;
    let indicators = after_crashes["indicators"].0;
    assert!(
        candles > 900 && indicators > 900,
        "{candles} candles, {indicators} indicator rows"
    );
    for name in names {
        let output = projector
            .command(&["projections", "rebuild", name])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "rebuild {name}: {stdout}{stderr}");
        let last_progress = stderr
            .rsplit('\r')
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        println!("{last_progress}\n{}", stdout.trim());
    }
    let rebuilt = seed::checksums(&pool, "read", &tables).await;
    for table in &tables {
        assert_eq!(
            after_crashes[*table], rebuilt[*table],
            "{table} differs from a clean rebuild"
        );
    }
    let status = projector
        .command(&["projections", "status"])
        .output()
        .unwrap();
    println!("{}", String::from_utf8_lossy(&status.stdout));
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_committed_batch_is_announced_on_redis(pool: PgPool) {
    use coinfold_projections::models::market::Market;
    use coinfold_projections::projection::RunSettings;
    use coinfold_projections::projection::notify::{Notifier, cache_key, channel};
    use coinfold_projections::projection::stream_runner::{self, StreamSource};
    use futures_util::StreamExt;

    let brokers = env_or("KAFKA_BROKERS", "127.0.0.1:9092");
    let redis_url = env_or("REDIS_URL", "redis://127.0.0.1:6379");
    let prefix = format!("test-{}.", Uuid::new_v4().simple());
    let topic = format!("{prefix}{TICKS_TOPIC}");
    ensure_topics(&brokers, &[(topic.clone(), 1)])
        .await
        .unwrap();
    let redis = redis::Client::open(redis_url.as_str()).unwrap();
    let mut pubsub = redis.get_async_pubsub().await.expect("Redis answers");
    pubsub
        .subscribe(channel(&prefix, "price.BTC"))
        .await
        .unwrap();
    pubsub
        .subscribe(channel(&prefix, "candle.BTC.1m"))
        .await
        .unwrap();

    let source = StreamSource {
        brokers: brokers.clone(),
        topic_prefix: prefix.clone(),
        group_id: format!("{prefix}market"),
        instance_id: None,
    };
    let notifier = Notifier::connect(&redis_url, &prefix).await.unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let runner = {
        let (pool, cancel) = (pool.clone(), cancel.clone());
        tokio::spawn(async move {
            let producer: FutureProducer =
                producer_config(&source.brokers, "dlq").create().unwrap();
            stream_runner::run(
                pool,
                &Market,
                &source,
                &RunSettings::default(),
                Some(&notifier),
                Some(&producer),
                cancel,
            )
            .await
        })
    };
    let ticks: Vec<_> = seed::tick_series(10, 31, 0)
        .into_iter()
        .filter(|t| t.coin.as_str() == "BTC")
        .collect();
    let producer: FutureProducer = producer_config(&brokers, "ticks").create().unwrap();
    for tick in &ticks {
        let body = serde_json::to_vec(tick).unwrap();
        producer
            .send(
                FutureRecord::to(&topic).key("BTC").payload(&body),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let last = ticks.last().unwrap().price.value().to_string();
    let mut messages = pubsub.on_message();
    let mut seen = (false, false);
    while !(seen.0 && seen.1) {
        let message = tokio::time::timeout(Duration::from_secs(60), messages.next())
            .await
            .expect("a notification within a minute")
            .expect("the subscription is open");
        let payload: serde_json::Value =
            serde_json::from_slice(message.get_payload_bytes()).unwrap();
        if message.get_channel_name().ends_with("price.BTC") && payload["price"] == last.as_str() {
            seen.0 = true;
        }
        if message.get_channel_name().ends_with("candle.BTC.1m") {
            seen.1 = true;
        }
    }
    drop(messages);
    cancel.cancel();
    runner.await.unwrap().expect("the runner stopped cleanly");
    // The hot value is in Redis, and only what PostgreSQL committed.
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let cached: String = redis::cmd("GET")
        .arg(cache_key(&prefix, "price:BTC:USDT"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let stored: Decimal =
        sqlx::query_scalar("SELECT price FROM read.latest_prices WHERE coin = 'BTC'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored.to_string(), last);
    assert!(
        cached.contains(&format!("\"price\":\"{last}\"")),
        "{cached}"
    );
}
