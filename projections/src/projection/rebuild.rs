//! Blue/green rebuilds: fold from the beginning into shadow tables while the live ones
//! keep serving (and keep being updated), then swap them in atomically.
//!
//! 1. `rebuild_<name>` gets an empty copy of each of the projection's tables
//!    (`CREATE TABLE … (LIKE read.x INCLUDING ALL)`); the checkpoint's state shows
//!    `rebuilding`.
//! 2. The projection's own code folds the whole source into it, batch by batch, with
//!    `search_path` pointing at the shadow schema. Nothing is published: notifications
//!    are dropped, and alert triggers are not a projection's business at all (the
//!    evaluator is a separate worker), so a rebuild repeats no side effect.
//! 3. Caught up, one transaction locks the live checkpoint (`FOR UPDATE`: live batches in
//!    flight finish first, new ones wait), folds what arrived meanwhile, moves the live
//!    tables out and the shadow tables into `read`, sets the checkpoint to where the
//!    shadow got, and commits. Readers see the old tables or the new ones, never a mix;
//!    a query running during the swap delays it rather than failing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::checkpoint::{self, EVENT_STORE, kafka_source};
use super::stream_runner::{StreamSource, advance, consumer_config, next_batch};
use super::{
    LIVE_SCHEMA, LogProjection, Output, ProjectionError, RunSettings, StreamProjection, begin_in,
    set_schema,
};
use crate::global_log::GlobalLog;

/// How far a rebuild has got.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub applied: u64,
    /// Events (or messages) in the source when the rebuild started.
    pub total: u64,
    pub elapsed: Duration,
}

impl Progress {
    pub fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.applied as f64 / seconds
        } else {
            0.0
        }
    }

    /// Seconds left at the rate so far.
    pub fn eta(&self) -> Option<Duration> {
        let rate = self.rate();
        (rate > 0.0 && self.total >= self.applied)
            .then(|| Duration::from_secs_f64((self.total - self.applied) as f64 / rate))
    }
}

/// What a finished rebuild did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub projection: &'static str,
    /// Events or messages folded into the new tables.
    pub applied: u64,
    pub elapsed: Duration,
    /// For a log projection, the position the new tables are at.
    pub position: i64,
}

/// Reports progress against the size the source had when the rebuild started.
struct Meter {
    started: Instant,
    total: u64,
}

impl Meter {
    fn new(total: i64) -> Self {
        Self {
            started: Instant::now(),
            total: u64::try_from(total).unwrap_or(0),
        }
    }

    fn report(&self, applied: u64, progress: &mut (dyn FnMut(&Progress) + Send)) {
        progress(&Progress {
            applied,
            total: self.total.max(applied),
            elapsed: self.started.elapsed(),
        });
    }
}

fn shadow_schema(name: &str) -> String {
    format!("rebuild_{name}")
}

fn retired_schema(name: &str) -> String {
    format!("retired_{name}")
}

fn quoted(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Creates the empty shadow tables (dropping what a crashed rebuild left).
async fn prepare(
    pool: &PgPool,
    name: &'static str,
    source: &str,
    tables: &[&str],
) -> Result<(), ProjectionError> {
    let shadow = quoted(&shadow_schema(name));
    let mut tx = pool.begin().await?;
    checkpoint::ensure(&mut tx, name, source).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {shadow} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {shadow}"))
        .execute(&mut *tx)
        .await?;
    for table in tables {
        let table = quoted(table);
        sqlx::query(&format!(
            "CREATE TABLE {shadow}.{table} (LIKE {}.{table} INCLUDING ALL)",
            quoted(LIVE_SCHEMA)
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let mut conn = pool.acquire().await?;
    // Not in the transaction above: `FOR SHARE` holders must not delay the start.
    checkpoint::set_state(&mut conn, name, "rebuilding").await?;
    Ok(())
}

/// Moves the live tables out and the shadow ones in (inside the caller's transaction).
async fn swap(tx: &mut PgConnection, name: &str, tables: &[&str]) -> Result<(), ProjectionError> {
    let shadow = quoted(&shadow_schema(name));
    let retired = quoted(&retired_schema(name));
    let live = quoted(LIVE_SCHEMA);
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {retired} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {retired}"))
        .execute(&mut *tx)
        .await?;
    for table in tables {
        let table = quoted(table);
        sqlx::query(&format!("ALTER TABLE {live}.{table} SET SCHEMA {retired}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {shadow}.{table} SET SCHEMA {live}"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(&format!("DROP SCHEMA {retired} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("DROP SCHEMA {shadow} CASCADE"))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// After a failure: the live tables are untouched; only the state says so.
async fn abandon(pool: &PgPool, name: &str) {
    if let Ok(mut conn) = pool.acquire().await {
        let _ = checkpoint::set_state(&mut conn, name, "running").await;
    }
}

/// Rebuilds a log projection from position 0.
pub async fn rebuild_log<P: LogProjection>(
    pool: &PgPool,
    projection: &P,
    batch_size: usize,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Report, ProjectionError> {
    prepare(pool, projection.name(), EVENT_STORE, projection.tables()).await?;
    let result = fold_log_and_swap(pool, projection, batch_size, progress).await;
    if result.is_err() {
        abandon(pool, projection.name()).await;
    }
    result
}

/// Events folded before the shadow tables are first analyzed; again at each doubling.
const FIRST_ANALYZE: u64 = 10_000;

/// Gives the planner the shadow tables' sizes as they grow. Made empty and never
/// analyzed, they were planned as tiny: the per-batch statements that take a few
/// portfolios (`portfolio_id = ANY($1)`) read whole tables instead of their indexes,
/// one sequential scan per table per batch, and a rebuild slowed as it went.
async fn analyze(pool: &PgPool, shadow: &str, tables: &[&str]) -> Result<(), ProjectionError> {
    for table in tables {
        sqlx::query(&format!("ANALYZE {}.{}", quoted(shadow), quoted(table)))
            .execute(pool)
            .await?;
    }
    Ok(())
}

async fn fold_log_and_swap<P: LogProjection>(
    pool: &PgPool,
    projection: &P,
    batch_size: usize,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Report, ProjectionError> {
    let shadow = shadow_schema(projection.name());
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await?;
    let meter = Meter::new(total);
    let limit = i64::try_from(batch_size).unwrap_or(i64::MAX);
    let mut log = GlobalLog::new(pool.clone());
    let mut position = 0;
    let mut applied = 0u64;
    let mut analyze_at = FIRST_ANALYZE;
    // Everything committed when the rebuild started must be in the new tables before
    // they are swapped in. The high-water mark can trail for a while (any transaction
    // open in the cluster holds it back, ADR 0001), so an empty read is not the end.
    let target: i64 = sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    loop {
        let events = log.read_after(position, limit).await?;
        let Some(last) = events.last().map(|e| e.global_position) else {
            if position >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let mut tx = begin_in(pool, &shadow).await?;
        projection
            .apply(&mut tx, &events, &mut Output::default())
            .await?;
        tx.commit().await?;
        position = last;
        applied += events.len() as u64;
        meter.report(applied, progress);
        if applied >= analyze_at {
            analyze(pool, &shadow, projection.tables()).await?;
            analyze_at *= 2;
        }
    }
    // The swap: what arrived meanwhile, then the tables, under the checkpoint's lock.
    let mut tx = pool.begin().await?;
    checkpoint::lock_position(&mut tx, projection.name()).await?;
    set_schema(&mut tx, &shadow).await?;
    loop {
        let events = log.read_after(position, limit).await?;
        let Some(last) = events.last().map(|e| e.global_position) else {
            break;
        };
        projection
            .apply(&mut tx, &events, &mut Output::default())
            .await?;
        position = last;
        applied += events.len() as u64;
    }
    swap(&mut tx, projection.name(), projection.tables()).await?;
    checkpoint::set_position(&mut tx, projection.name(), position).await?;
    checkpoint::set_state(&mut tx, projection.name(), "running").await?;
    tx.commit().await?;
    meter.report(applied, progress);
    Ok(Report {
        projection: projection.name(),
        applied,
        elapsed: meter.started.elapsed(),
        position,
    })
}

/// The partitions of `topic` with their low and high watermarks.
pub async fn watermarks(
    brokers: &str,
    topic: &str,
) -> Result<BTreeMap<i32, (i64, i64)>, ProjectionError> {
    let brokers = brokers.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = consumer_config(&brokers, "coinfold-watermarks").create()?;
        let timeout = Duration::from_secs(10);
        let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
        let mut marks = BTreeMap::new();
        for t in metadata.topics().iter().filter(|t| t.name() == topic) {
            for partition in t.partitions() {
                let marks_of = consumer.fetch_watermarks(&topic, partition.id(), timeout)?;
                marks.insert(partition.id(), marks_of);
            }
        }
        Ok(marks)
    })
    .await
    .map_err(|e| ProjectionError::Invalid(format!("watermark task: {e}")))?
}

/// Rebuilds a stream projection from the beginning of its topic (as far as the topic's
/// retention keeps it).
pub async fn rebuild_stream<P: StreamProjection>(
    pool: &PgPool,
    projection: &P,
    source: &StreamSource,
    settings: &RunSettings,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Report, ProjectionError> {
    let topic = source.topic(projection.topic());
    prepare(
        pool,
        projection.name(),
        &kafka_source(projection.topic()),
        projection.tables(),
    )
    .await?;
    let result = fold_stream_and_swap(pool, projection, source, &topic, settings, progress).await;
    if result.is_err() {
        abandon(pool, projection.name()).await;
    }
    result
}

async fn fold_stream_and_swap<P: StreamProjection>(
    pool: &PgPool,
    projection: &P,
    source: &StreamSource,
    topic: &str,
    settings: &RunSettings,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Report, ProjectionError> {
    let shadow = shadow_schema(projection.name());
    let marks = watermarks(&source.brokers, topic).await?;
    let meter = Meter::new(marks.values().map(|(low, high)| high - low).sum());
    // Its own group, offsets assigned by hand and never committed: the live group's
    // position is not touched.
    let group = format!(
        "{}.rebuild-{}",
        source.group_id,
        uuid::Uuid::new_v4().simple()
    );
    let consumer: StreamConsumer = consumer_config(&source.brokers, &group).create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in marks.keys() {
        assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut next: BTreeMap<i32, i64> = marks.iter().map(|(p, (low, _))| (*p, *low)).collect();
    let mut applied = 0u64;
    let never = CancellationToken::new();
    let behind = |next: &BTreeMap<i32, i64>, goal: &BTreeMap<i32, i64>| {
        goal.iter()
            .any(|(p, target)| next.get(p).copied().unwrap_or(0) < *target)
    };
    let start_goal: BTreeMap<i32, i64> = marks.iter().map(|(p, (_, high))| (*p, *high)).collect();
    while behind(&next, &start_goal) {
        let Some(batch) = next_batch(&consumer, settings, &never).await? else {
            break;
        };
        let mut tx = begin_in(pool, &shadow).await?;
        projection
            .apply(&mut tx, &batch, &mut Output::default())
            .await?;
        tx.commit().await?;
        advance(&mut next, &batch);
        applied += batch.len() as u64;
        meter.report(applied, progress);
    }
    // The swap: catch up with the live offsets under the checkpoint's lock.
    let mut tx = pool.begin().await?;
    checkpoint::lock_position(&mut tx, projection.name()).await?;
    set_schema(&mut tx, &shadow).await?;
    let live = checkpoint::offsets(&mut tx, projection.name()).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while behind(&next, &live) {
        if Instant::now() > deadline {
            return Err(ProjectionError::Invalid(format!(
                "the rebuild could not reach the live offsets {live:?} (at {next:?})"
            )));
        }
        let Some(batch) = next_batch(&consumer, settings, &never).await? else {
            break;
        };
        projection
            .apply(&mut tx, &batch, &mut Output::default())
            .await?;
        advance(&mut next, &batch);
        applied += batch.len() as u64;
    }
    swap(&mut tx, projection.name(), projection.tables()).await?;
    let applied_by = format!("rebuild {}", source.process_name());
    checkpoint::set_offsets(&mut tx, projection.name(), topic, &next, &applied_by).await?;
    checkpoint::set_state(&mut tx, projection.name(), "running").await?;
    tx.commit().await?;
    meter.report(applied, progress);
    Ok(Report {
        projection: projection.name(),
        applied,
        elapsed: meter.started.elapsed(),
        position: 0,
    })
}
