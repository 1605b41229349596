//! Runs a [`StreamProjection`] over a Kafka topic in a consumer group.
//!
//! The consumer runs with `enable.auto.commit=false` and `enable.auto.offset.store=false`:
//! rdkafka never stores or commits an offset on its own (a dropped 0.39 consumer would
//! otherwise store the offsets of messages it fetched but never applied, and a commit on
//! revoke would then skip them). The truth is `projection_offsets`, written in the
//! batch's transaction; after the commit the runner commits the same offsets to the
//! broker, so a restarted or rebalanced consumer starts near where the projection is,
//! never ahead of it. Two processes in one group split the partitions; a message both
//! fetch during a rebalance is applied by whichever commits first and dropped by the
//! other (the offset rows are locked and compared inside the transaction). Each offset
//! row names the process that moved it last ([`StreamSource::process_name`]).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::checkpoint::{self, kafka_source};
use super::notify::Notifier;
use super::{
    LIVE_SCHEMA, Output, ProjectionError, RunSettings, StreamMessage, StreamProjection, begin_in,
};
use crate::ingest::connector::DeadLetter;
use crate::ingest::producer::dead_letter_parts;

/// Where a stream projection reads and sends its dead letters.
#[derive(Debug, Clone)]
pub struct StreamSource {
    pub brokers: String,
    pub topic_prefix: String,
    /// The consumer group (every process of one projection uses the same).
    pub group_id: String,
    /// A stable name for this process in the group (Kafka static membership): a
    /// process that restarts under the same name takes its partitions back at once,
    /// instead of waiting for the group to give up on its former self. None: dynamic.
    pub instance_id: Option<String>,
}

impl StreamSource {
    pub fn topic(&self, name: &str) -> String {
        format!("{}{name}", self.topic_prefix)
    }

    /// This process's name in `projection_offsets.applied_by`.
    pub fn process_name(&self) -> String {
        checkpoint::process_name(self.instance_id.as_deref())
    }

    /// A consumer in the group, subscribed to `topic`; `member` (the projection's or
    /// worker's name) completes the static member id when there is one.
    pub fn subscribe(&self, topic: &str, member: &str) -> Result<StreamConsumer, ProjectionError> {
        let mut config = consumer_config(&self.brokers, &self.group_id);
        if let Some(instance) = &self.instance_id {
            config.set("group.instance.id", format!("{instance}.{member}"));
        }
        let consumer: StreamConsumer = config.create()?;
        consumer.subscribe(&[topic])?;
        Ok(consumer)
    }
}

/// A consumer that never stores or commits offsets by itself.
pub fn consumer_config(brokers: &str, group_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        // A fetch that finds nothing waits this long on the broker. tansu 0.6 answers
        // only when the wait ends, even if messages arrive meanwhile, so librdkafka's
        // 500 ms default put ~500 ms between a tick and its price update (the bench's
        // fan-out scenario); an idle consumer now asks 20 times a second.
        .set("fetch.wait.max.ms", "50")
        .set("max.poll.interval.ms", "300000");
    config
}

pub(crate) fn owned(message: &impl Message) -> StreamMessage {
    StreamMessage {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().unwrap_or_default().to_vec(),
    }
}

/// Reads one batch: waits for a first message, then takes what arrives within `linger`,
/// up to `batch_size`. None when cancelled.
pub(crate) async fn next_batch(
    consumer: &StreamConsumer,
    settings: &RunSettings,
    cancel: &CancellationToken,
) -> Result<Option<Vec<StreamMessage>>, ProjectionError> {
    let first = tokio::select! {
        () = cancel.cancelled() => return Ok(None),
        message = consumer.recv() => owned(&message?),
    };
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + settings.linger;
    while batch.len() < settings.batch_size {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(message) => batch.push(owned(&message?)),
            Err(_) => break,
        }
    }
    Ok(Some(batch))
}

/// Moves each partition's next offset past the messages of `batch`.
pub(crate) fn advance(next: &mut BTreeMap<i32, i64>, batch: &[StreamMessage]) {
    for message in batch {
        let entry = next.entry(message.partition).or_insert(0);
        *entry = (*entry).max(message.offset + 1);
    }
}

/// Commits `next` to the broker for `topic`. Only a hint for the group's next
/// assignment (a failure is logged): what was applied is recorded elsewhere.
pub(crate) fn commit_hint(
    consumer: &StreamConsumer,
    topic: &str,
    next: &BTreeMap<i32, i64>,
    who: &str,
) -> Result<(), ProjectionError> {
    let mut offsets = TopicPartitionList::new();
    for (partition, offset) in next {
        offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
        tracing::warn!(%error, who, "committing offsets to the broker failed");
    }
    Ok(())
}

/// Applies `batch` to the live tables: drops what the offset rows say was applied,
/// applies the rest and moves the offsets (signed `applied_by`), in one transaction.
/// Returns the new next offset of each partition in the batch.
pub async fn apply_batch<P: StreamProjection>(
    pool: &PgPool,
    projection: &P,
    topic: &str,
    batch: Vec<StreamMessage>,
    applied_by: &str,
    out: &mut Output,
) -> Result<BTreeMap<i32, i64>, ProjectionError> {
    let partitions: Vec<i32> = batch.iter().map(|m| m.partition).collect();
    let mut tx = begin_in(pool, LIVE_SCHEMA).await?;
    checkpoint::share(&mut tx, projection.name()).await?;
    let mut next = checkpoint::lock_offsets(&mut tx, projection.name(), topic, &partitions).await?;
    let fresh: Vec<StreamMessage> = batch
        .into_iter()
        .filter(|m| m.offset >= next.get(&m.partition).copied().unwrap_or(0))
        .collect();
    if fresh.is_empty() {
        tx.commit().await?;
        return Ok(next);
    }
    projection.apply(&mut tx, &fresh, out).await?;
    advance(&mut next, &fresh);
    checkpoint::set_offsets(&mut tx, projection.name(), topic, &next, applied_by).await?;
    tx.commit().await?;
    super::applied(projection.name(), fresh.len());
    Ok(next)
}

/// Runs until `cancel` fires; returns how many messages it applied or skipped as applied.
pub async fn run<P: StreamProjection>(
    pool: PgPool,
    projection: &P,
    source: &StreamSource,
    settings: &RunSettings,
    notifier: Option<&Notifier>,
    dead_letters: Option<&FutureProducer>,
    cancel: CancellationToken,
) -> Result<u64, ProjectionError> {
    let topic = source.topic(projection.topic());
    {
        let mut conn = pool.acquire().await?;
        checkpoint::ensure(
            &mut conn,
            projection.name(),
            &kafka_source(projection.topic()),
        )
        .await?;
    }
    let consumer = source.subscribe(&topic, projection.name())?;
    let process = source.process_name();
    tracing::info!(projection = projection.name(), %topic, group = %source.group_id, %process, "projection started");
    let mut seen = 0u64;
    while let Some(batch) = next_batch(&consumer, settings, &cancel).await? {
        seen += batch.len() as u64;
        let mut out = Output::default();
        let next = apply_batch(&pool, projection, &topic, batch, &process, &mut out).await?;
        // Only a hint for the next assignment; the projection's rows are the truth.
        commit_hint(&consumer, &topic, &next, projection.name())?;
        let rejected = std::mem::take(&mut out.rejected);
        if let Some(notifier) = notifier {
            notifier.publish(out).await;
        }
        if let Some(producer) = dead_letters {
            for reject in rejected {
                send_dead_letter(producer, source, projection, &topic, reject).await?;
            }
        }
    }
    Ok(seen)
}

async fn send_dead_letter<P: StreamProjection>(
    producer: &FutureProducer,
    source: &StreamSource,
    projection: &P,
    topic: &str,
    reject: super::Rejected,
) -> Result<(), ProjectionError> {
    tracing::warn!(projection = projection.name(), partition = reject.partition, offset = reject.offset, reason = %reject.reason, "message to the dead-letter topic");
    metrics::counter!("coinfold_dead_letters_total", "source" => projection.name()).increment(1);
    let (body, headers) = dead_letter_parts(&DeadLetter {
        source: projection.name(),
        topic: projection.topic(),
        reason: reject.reason,
        raw: reject.payload,
        received_time: OffsetDateTime::now_utc(),
    })
    .map_err(|e| ProjectionError::Invalid(e.to_string()))?;
    let dead_letter_topic = source.topic(crate::ingest::DEAD_LETTER_TOPIC);
    let record = FutureRecord::to(&dead_letter_topic)
        .key(topic)
        .payload(&body)
        .headers(headers);
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map(|_| ())
        .map_err(|(error, _)| ProjectionError::Kafka(error))
}
