//! The tick stream: the market projection against a bare consumer of the same topic.

use std::time::{Duration, Instant};

use anyhow::Context;
use coinfold_api::project;
use coinfold_projections::ingest::TICKS_TOPIC;
use coinfold_projections::ingest::producer::{ensure_topics, producer_config};
use coinfold_projections::ingest::run::stream_topics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::report::{Figure, number};
use crate::{Bench, seed};

/// Projections running in this process until stopped or dropped.
pub struct Running {
    cancel: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Running {
    fn start(bench: &Bench, only: &[&str]) -> Self {
        let cancel = CancellationToken::new();
        let settings = bench.app.settings.clone();
        let only: Vec<String> = only.iter().map(|s| (*s).to_owned()).collect();
        let stop = cancel.clone();
        let task = tokio::spawn(async move { project::run(&settings, &only, stop).await });
        Self {
            cancel,
            task: Some(task),
        }
    }

    /// Stops the projections and waits until they have finished their batch.
    async fn stop(mut self) -> anyhow::Result<()> {
        self.cancel.cancel();
        match self.task.take() {
            Some(task) => task.await.context("the projections panicked")?,
            None => Ok(()),
        }
    }
}

/// Every projection (the alert evaluator is off in the bench's settings), started once.
pub async fn ensure_projections(bench: &Bench, slot: &mut Option<Running>) -> anyhow::Result<()> {
    if slot.is_none() {
        let settings = &bench.app.settings;
        ensure_topics(
            &settings.kafka.brokers,
            &stream_topics(&settings.kafka.topic_prefix),
        )
        .await?;
        *slot = Some(Running::start(bench, &[]));
    }
    Ok(())
}

/// Gives every coin a USD price (one ticker tick each, folded by the market projection
/// alone, which then stops): trades are refused for a coin the market has no price for.
pub async fn price_coins(bench: &Bench) -> anyhow::Result<()> {
    let settings = &bench.app.settings;
    ensure_topics(
        &settings.kafka.brokers,
        &stream_topics(&settings.kafka.topic_prefix),
    )
    .await?;
    let now = time::OffsetDateTime::now_utc();
    let ticks: Vec<_> = seed::COINS
        .iter()
        .zip([60_000, 3_000, 150, 1, 1])
        .map(|(coin, price)| {
            coinfold_tests::usd_tick(coin, rust_decimal::Decimal::from(price), now)
        })
        .collect();
    bench.app.produce_ticks(&ticks).await;
    let market = Running::start(bench, &["market"]);
    let started = Instant::now();
    while market_applied(bench).await? < ticks.len() as i64 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the market projection did not apply {} ticks in 120 s",
            ticks.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    market.stop().await
}

/// The sum of the market projection's next offsets over its partitions.
async fn market_applied(bench: &Bench) -> anyhow::Result<i64> {
    let applied: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(next_offset), 0)::bigint FROM projection_offsets WHERE projection = 'market'",
    )
    .fetch_one(&bench.pool)
    .await?;
    Ok(applied)
}

/// `ticks` trade ticks produced to the tick topic (six partitions, keyed by coin, as
/// ingest makes it), then read by a bare consumer, then folded by the market
/// projection (latest prices, candles, indicators) from the start.
pub async fn ticks(bench: &Bench, slot: &mut Option<Running>) -> anyhow::Result<Vec<Figure>> {
    let settings = &bench.app.settings;
    let brokers = &settings.kafka.brokers;
    ensure_topics(brokers, &stream_topics(&settings.kafka.topic_prefix)).await?;
    let topic = format!("{}{TICKS_TOPIC}", settings.kafka.topic_prefix);
    let count = bench.sizes.ticks;
    let ticks = seed::tick_series(count, 5, 0);
    let producer: FutureProducer = producer_config(brokers, "bench-producer").create()?;
    let producing = Instant::now();
    for chunk in ticks.chunks(5_000) {
        let sends = chunk.iter().map(|tick| {
            let body = serde_json::to_vec(tick).expect("a tick serializes");
            let producer = &producer;
            let topic = &topic;
            async move {
                producer
                    .send(
                        FutureRecord::to(topic)
                            .key(tick.coin.as_str())
                            .payload(&body),
                        Duration::from_secs(60),
                    )
                    .await
                    .map_err(|(e, _)| e)
            }
        });
        for sent in futures_util::future::join_all(sends).await {
            sent?;
        }
    }
    let produce_rate = count as f64 / producing.elapsed().as_secs_f64();

    // The ceiling: a bare consumer with a group of its own, from the start, in a thread.
    let (brokers_owned, topic_owned) = (brokers.clone(), topic.clone());
    let group = format!("{}bench-bare-consumer", settings.kafka.topic_prefix);
    let raw_elapsed = tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers_owned)
            .set("group.id", &group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()?;
        consumer.subscribe(&[&topic_owned])?;
        let started = Instant::now();
        let mut read = 0usize;
        while read < count {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "the bare consumer read {read} of {count} in 10 minutes"
            );
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                message?;
                read += 1;
            }
        }
        Ok(started.elapsed().as_secs_f64())
    })
    .await??;

    // coinfold: the market projection alone, from its checkpoint (the set-up's
    // prices) to the last tick.
    let before = market_applied(bench).await?;
    let started = Instant::now();
    let market = Running::start(bench, &["market"]);
    loop {
        let applied = market_applied(bench).await? - before;
        if applied >= count as i64 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1_800),
            "the market projection applied {applied} of {count} in 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    market.stop().await?;
    ensure_projections(bench, slot).await?;
    Ok(vec![
        Figure::new(
            "ticks",
            format!("market projection, {} ticks", number(count as f64)),
            count as f64 / elapsed,
            "ticks/s",
        )
        .ceiling("bare rdkafka consumer", count as f64 / raw_elapsed)
        .detail("coinfold", format!("{elapsed:.1} s (group join included)"))
        .detail(
            "consumer",
            format!("{raw_elapsed:.1} s (group join included)"),
        )
        .detail("produced at", format!("{} ticks/s", number(produce_rate))),
    ])
}
