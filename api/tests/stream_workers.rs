//! The Kafka-fed workers as they run in production: two `coinfold project` processes
//! split a topic's partitions and one takes over when the other stops; the alert
//! evaluator commits its offsets after its commands, so a restart resumes after them
//! and a group that lost its offsets fires nothing twice.

mod common;
#[allow(dead_code)] // free_port is for the tests that run a listening role
#[path = "common/process.rs"]
mod process;
#[allow(dead_code)] // this file uses the tick series, catch_up and the checksums
#[path = "common/seed.rs"]
mod seed;

use std::time::Duration;

use coinfold_api::project::CommandTrigger;
use coinfold_commands::event_store::PgEventRepository;
use coinfold_commands::service::{Actor, CommandContext, CommandOptions, CommandService};
use coinfold_domain::alert::{Alert, AlertCommand, AlertCondition, Repeat};
use coinfold_domain::values::{CoinSymbol, Price};
use coinfold_projections::alerting::{Evaluator, EvaluatorStats};
use coinfold_projections::ingest::TICKS_TOPIC;
use coinfold_projections::ingest::producer::{ensure_topics, producer_config};
use coinfold_projections::models::alerts::Alerts;
use coinfold_projections::projection::RunSettings;
use coinfold_projections::projection::checkpoint::{self, PartitionOffset};
use coinfold_projections::projection::registry::{CACHE_TABLES, find};
use coinfold_projections::projection::status;
use coinfold_projections::projection::stream_runner::{StreamSource, consumer_config};
use process::{Projector, env_or, produce};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use rust_decimal::Decimal;
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PARTITIONS: i32 = 4;

async fn market_partitions(pool: &PgPool) -> Vec<PartitionOffset> {
    let mut conn = pool.acquire().await.unwrap();
    checkpoint::partitions(&mut conn, "market").await.unwrap()
}

/// Messages the market projection has not applied yet (as `projections status` counts
/// them).
async fn market_lag(pool: &PgPool, brokers: &str, prefix: &str) -> i64 {
    let market = find("market").unwrap();
    status::of(pool, brokers, prefix, std::iter::once(market))
        .await
        .unwrap()[0]
        .lag
        .expect("the broker answers")
}

fn applied_by(rows: &[PartitionOffset], pid: u32) -> Vec<i32> {
    let suffix = format!(":{pid}");
    rows.iter()
        .filter(|r| r.applied_by.ends_with(&suffix))
        .map(|r| r.partition)
        .collect()
}

/// The broker, `coinfold` pointed at the test's database with a fresh topic prefix,
/// and that prefix's tick topic, made with `PARTITIONS` partitions.
async fn tick_topic(pool: &PgPool) -> (String, Projector, String) {
    let brokers = env_or("KAFKA_BROKERS", "127.0.0.1:9092");
    let projector = Projector::for_test(pool);
    let topic = format!("{}{TICKS_TOPIC}", projector.prefix);
    ensure_topics(&brokers, &[(topic.clone(), PARTITIONS)])
        .await
        .expect("topic created");
    (brokers, projector, topic)
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn two_projectors_split_the_partitions_and_one_takes_over_when_the_other_stops(pool: PgPool) {
    let (brokers, projector, topic) = tick_topic(&pool).await;
    // Five coins over four partitions, each coin on one: every partition gets ticks.
    let partition_of = |tick: &coinfold_projections::ingest::Tick| {
        let index = seed::COINS
            .iter()
            .position(|c| *c == tick.coin.as_str())
            .unwrap();
        Some(index as i32 % PARTITIONS)
    };
    let ticks = seed::tick_series(150_000, 41, 40);
    let producer: FutureProducer = producer_config(&brokers, "split-test").create().unwrap();

    // Both processes in one consumer group; ticks keep coming until each has applied
    // batches of its own partitions.
    let first = projector.spawn("split", &["market"]);
    let second = projector.spawn("split", &["market"]);
    let (a, b) = (first.pid(), second.pid());
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    let split = loop {
        let upto = (sent + 400).min(ticks.len());
        produce(&producer, &topic, &ticks[sent..upto], partition_of).await;
        sent = upto;
        let rows = market_partitions(&pool).await;
        let (of_a, of_b) = (applied_by(&rows, a), applied_by(&rows, b));
        if !of_a.is_empty() && !of_b.is_empty() {
            break (of_a, of_b);
        }
        assert!(
            Instant::now() < deadline && sent < ticks.len(),
            "the two processes did not split the partitions: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!(
        "split: after {sent} ticks, process {a} applied partitions {:?}, process {b} {:?}",
        split.0, split.1
    );

    // The second stops as Kubernetes stops a pod; the first takes its partitions.
    assert!(
        second.stop(Duration::from_secs(30)).await,
        "the second process stopped cleanly on SIGTERM"
    );
    let upto = (sent + 5_000).min(ticks.len());
    produce(&producer, &topic, &ticks[sent..upto], partition_of).await;
    sent = upto;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let behind = market_lag(&pool, &brokers, &projector.prefix).await;
        if behind == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first process did not take over: {behind} behind, {:?}",
            market_partitions(&pool).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let rows = market_partitions(&pool).await;
    assert_eq!(
        applied_by(&rows, a),
        (0..PARTITIONS).collect::<Vec<_>>(),
        "after the second stopped, the first applied every partition: {rows:?}"
    );
    assert!(
        first.stop(Duration::from_secs(30)).await,
        "the first stopped cleanly"
    );
    let status = projector
        .command(&["projections", "status", "--partitions"])
        .output()
        .unwrap();
    println!(
        "split: {sent} ticks\n{}",
        String::from_utf8_lossy(&status.stdout)
    );

    // Neither a message applied twice nor one lost: equal to a clean rebuild.
    let tables: Vec<&str> = find("market")
        .unwrap()
        .tables
        .iter()
        .copied()
        .filter(|t| !CACHE_TABLES.contains(t))
        .collect();
    let live = seed::checksums(&pool, "read", &tables).await;
    // Two empty tables would compare equal: every compared table has rows.
    for (table, (rows, _)) in &live {
        assert!(
            *rows > 0,
            "read.{table} is empty: the test proves nothing about it"
        );
    }
    let output = projector
        .command(&["projections", "rebuild", "market"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "rebuild market: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rebuilt = seed::checksums(&pool, "read", &tables).await;
    assert!(live["candles"].0 > 0, "{live:?}");
    for table in &tables {
        assert_eq!(
            live[*table], rebuilt[*table],
            "{table} differs from a clean rebuild"
        );
    }
}

/// The group's committed offset of partition 0 of `topic`.
fn committed(brokers: &str, group: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = consumer_config(brokers, group).create().unwrap();
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(topic, 0);
    let offsets = consumer
        .committed_offsets(wanted, Duration::from_secs(10))
        .expect("the group's offsets");
    match offsets.find_partition(topic, 0).map(|e| e.offset()) {
        Some(Offset::Offset(offset)) => offset,
        _ => 0,
    }
}

/// Runs an evaluator in `group` until the group has committed `through` on partition 0.
async fn evaluate_until_committed(
    pool: &PgPool,
    source: &StreamSource,
    topic: &str,
    through: i64,
) -> EvaluatorStats {
    let cancel = CancellationToken::new();
    let task = {
        let (pool, source, cancel) = (pool.clone(), source.clone(), cancel.clone());
        tokio::spawn(async move {
            let trigger = CommandTrigger::new(pool.clone(), "");
            Evaluator::new(pool, &trigger)
                .run(&source, &RunSettings::default(), cancel)
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let at = committed(&source.brokers, &source.group_id, topic);
        if at >= through {
            break;
        }
        assert!(
            Instant::now() < deadline && !task.is_finished(),
            "{} committed {at} of {through}",
            source.group_id
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cancel.cancel();
    task.await.unwrap().expect("the evaluator stopped cleanly")
}

async fn triggered(pool: &PgPool, alert: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'AlertTriggered'",
    )
    .bind(alert.to_string())
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn the_evaluator_commits_after_its_commands_and_a_restart_fires_nothing_twice(pool: PgPool) {
    let brokers = env_or("KAFKA_BROKERS", "127.0.0.1:9092");
    let prefix = format!("test-{}.", Uuid::new_v4().simple());
    let topic = format!("{prefix}{TICKS_TOPIC}");
    ensure_topics(&brokers, &[(topic.clone(), 1)])
        .await
        .unwrap();
    let btc: Vec<_> = seed::tick_series(3_000, 43, 0)
        .into_iter()
        .filter(|t| t.coin.as_str() == "BTC")
        .collect();
    let (early, late) = btc.split_at(btc.len() - 20);
    // A threshold the early ticks cross upwards.
    let first = early[0].price.value();
    let high = early.iter().map(|t| t.price.value()).max().unwrap();
    assert!(high > first, "the series rises");
    let threshold = ((first + high) / Decimal::TWO).round_dp(8);
    let service: CommandService<Alert> = CommandService::new(
        PgEventRepository::new(pool.clone(), ""),
        (),
        CommandOptions::default(),
    );
    let alert = Uuid::now_v7();
    service
        .execute(
            &alert.to_string(),
            AlertCommand::Create {
                alert_id: alert,
                owner_id: Uuid::now_v7(),
                coin: CoinSymbol::parse("BTC").unwrap(),
                condition: AlertCondition::PriceAbove {
                    threshold: Price::new(threshold).unwrap(),
                },
                repeat: Repeat::OneShot,
                cooldown_seconds: 60,
                // Created before the series: an alert fires only on later ticks.
                now: early[0].exchange_time - time::Duration::seconds(1),
            },
            &CommandContext::new(Actor::User(Uuid::now_v7())),
        )
        .await
        .unwrap();
    // The evaluator reads armed alerts from the read model, and USDT's USD rate (the
    // series is in USDT) from the latest prices: 1 here.
    seed::catch_up(&pool, &Alerts).await;
    sqlx::query(
        "INSERT INTO read.latest_prices (coin, quote, price, source, exchange_time) \
         VALUES ('USDT', 'USD', 1, 'test', now())",
    )
    .execute(&pool)
    .await
    .unwrap();

    let producer: FutureProducer = producer_config(&brokers, "evaluator-test")
        .create()
        .unwrap();
    produce(&producer, &topic, early, |_| Some(0)).await;
    let source = |group: &str| StreamSource {
        brokers: brokers.clone(),
        topic_prefix: prefix.clone(),
        group_id: format!("{prefix}{group}"),
        instance_id: None,
    };
    let group = source("evaluator");
    let one = evaluate_until_committed(&pool, &group, &topic, early.len() as i64).await;
    assert_eq!(one.ticks, early.len() as u64, "{one:?}");
    assert_eq!(one.triggered, 1, "{one:?}");
    assert_eq!(triggered(&pool, alert).await, 1);

    // Restarted in the same group, it reads only what came after its commit.
    produce(&producer, &topic, late, |_| Some(0)).await;
    let total = btc.len() as i64;
    let two = evaluate_until_committed(&pool, &group, &topic, total).await;
    assert_eq!(two.ticks, late.len() as u64, "{two:?}");
    assert_eq!(two.triggered, 0, "{two:?}");

    // A group that lost its offsets reads everything again. The alerts read model was
    // not moved since, so it still says armed: the commands go out again and change
    // nothing (idempotency keys, and the one-shot alert has fired).
    let fresh = evaluate_until_committed(&pool, &source("evaluator-again"), &topic, total).await;
    assert_eq!(fresh.ticks, total as u64, "{fresh:?}");
    assert!(fresh.commands > 0, "{fresh:?}");
    assert_eq!(fresh.triggered, 0, "{fresh:?}");
    assert_eq!(triggered(&pool, alert).await, 1);
    println!(
        "evaluator: {} ticks then {} after a restart; first run {one:?}, restart {two:?}, fresh group {fresh:?}",
        early.len(),
        late.len()
    );
}

/// The demo's second run: ingest has filled the topic before the projection's group
/// joins, and keeps producing while it catches up. The projection applies the backlog
/// and what follows it.
#[sqlx::test(migrator = "coinfold_commands::store::MIGRATOR")]
async fn a_projector_joining_a_filled_topic_applies_the_backlog_and_what_follows(pool: PgPool) {
    let (brokers, projector, topic) = tick_topic(&pool).await;
    let ticks = seed::tick_series(26_000, 47, 0);
    let (backlog, live) = ticks.split_at(24_000);
    let producer: FutureProducer = producer_config(&brokers, "backlog-test").create().unwrap();
    for chunk in backlog.chunks(2_000) {
        produce(&producer, &topic, chunk, |_| None).await;
    }

    let running = projector.spawn("backlog", &["market"]);
    let started = Instant::now();
    // Ticks keep arriving while it catches up, as ingest's do.
    for chunk in live.chunks(100) {
        produce(&producer, &topic, chunk, |_| None).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = started + Duration::from_secs(180);
    loop {
        let behind = market_lag(&pool, &brokers, &projector.prefix).await;
        if behind == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{behind} of {} ticks not applied after {:?}: {:?}",
            ticks.len(),
            started.elapsed(),
            market_partitions(&pool).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "backlog: {} ticks waiting and {} more arriving, all applied {:?} after the projector started",
        backlog.len(),
        live.len(),
        started.elapsed()
    );
    let applied: i64 = market_partitions(&pool)
        .await
        .iter()
        .map(|p| p.next_offset)
        .sum();
    assert_eq!(applied, ticks.len() as i64);
    assert!(
        running.stop(Duration::from_secs(30)).await,
        "it stopped cleanly"
    );
}
