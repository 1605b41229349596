//! Projections: named folds with a checkpoint, written in one transaction.
//!
//! A projection reads one source — the event store's global log ([`LogProjection`]) or
//! one Kafka topic ([`StreamProjection`]) — and, for each batch, writes its read-model
//! changes **and** its checkpoint in one PostgreSQL transaction. A crash before the
//! commit loses the batch and its checkpoint together; a crash after it keeps both. So
//! redelivery changes nothing:
//!
//! - a log projection's checkpoint is the last global position applied; the runner reads
//!   it under `FOR UPDATE` at the start of every batch and drops a batch whose start no
//!   longer matches (another process, or a rebuild's swap, moved it);
//! - a stream projection's checkpoint is the next offset per partition
//!   (`projection_offsets`, one row each); inside the transaction, messages below it are
//!   dropped, so a message fetched twice (a rebalance, a restart before the broker
//!   commit) is applied once. The broker's committed offset is only a starting hint: it
//!   is stored and committed *after* the transaction, and never ahead of it.
//!
//! Projection code writes unqualified table names; the runner sets
//! `search_path` to the live schema `read` or to a rebuild's shadow schema, which is how
//! [`rebuild`] folds the same code into copies of the tables and swaps them in.
//!
//! Side effects leave only through [`Output`]: notifications, published on Redis after
//! the commit by the live runner, and never by a rebuild.

pub mod checkpoint;
pub mod log_runner;
pub mod notify;
pub mod rebuild;
pub mod registry;
pub mod status;
pub mod stream_runner;

use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use sqlx::PgConnection;

use crate::global_log::{GlobalLogError, RecordedEvent};

/// The schema the API reads and live projections write.
pub const LIVE_SCHEMA: &str = "read";

/// What changed, for the API's subscriptions: `topic` is a channel suffix such as
/// `price.BTC` or `portfolio.<id>`; see [`notify`] for the channel names.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub topic: String,
    pub payload: Value,
}

/// A message a stream projection could not read: skipped (never retried forever), and
/// sent to the dead-letter topic with its reason by the live runner.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
    pub payload: Vec<u8>,
}

impl Rejected {
    pub fn of(message: &StreamMessage, reason: String) -> Self {
        Self {
            partition: message.partition,
            offset: message.offset,
            reason,
            payload: message.payload.clone(),
        }
    }
}

/// What a batch produced besides its rows.
#[derive(Debug, Default)]
pub struct Output {
    pub notifications: Vec<Notification>,
    pub rejected: Vec<Rejected>,
    /// Hot values for Redis (`SET key value`), written after the commit.
    pub cache: Vec<(String, Value)>,
}

impl Output {
    pub fn notify(&mut self, topic: impl Into<String>, payload: Value) {
        self.notifications.push(Notification {
            topic: topic.into(),
            payload,
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Log(#[from] GlobalLogError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("event {position} ({event_type}) cannot be read: {reason}")]
    BadEvent {
        position: i64,
        event_type: String,
        reason: String,
    },
    #[error("unknown projection {0:?} (known: {1})")]
    Unknown(String, String),
    #[error("{0}")]
    Invalid(String),
}

/// A fold over the event store's global log.
pub trait LogProjection: Send + Sync {
    /// The projection's name: its checkpoint row and its CLI name.
    fn name(&self) -> &'static str;
    /// The tables it owns in `read` (a rebuild copies and swaps exactly these).
    fn tables(&self) -> &'static [&'static str];
    /// Applies `events` (in position order, none applied before) through `tx`.
    fn apply(
        &self,
        tx: &mut PgConnection,
        events: &[RecordedEvent],
        out: &mut Output,
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send;
}

/// A message from a Kafka topic, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamMessage {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

/// A fold over one Kafka topic.
pub trait StreamProjection: Send + Sync {
    fn name(&self) -> &'static str;
    /// The topic, without the deployment's prefix (e.g. `coinfold.market.ticks`).
    fn topic(&self) -> &'static str;
    fn tables(&self) -> &'static [&'static str];
    /// Applies `messages` (per partition in offset order, none applied before).
    fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[StreamMessage],
        out: &mut Output,
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send;
}

/// How a runner batches.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Events or messages per transaction, at most.
    pub batch_size: usize,
    /// How long a stream runner waits for more messages once one has arrived.
    pub linger: Duration,
    /// How long a caught-up log runner sleeps before it looks again.
    pub idle_poll: Duration,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            linger: Duration::from_millis(20),
            idle_poll: Duration::from_millis(100),
        }
    }
}

/// Counts what a live runner committed: `coinfold_projection_applied_total{projection}`
/// (events or messages; a rebuild is not counted).
pub(crate) fn applied(projection: &'static str, count: usize) {
    metrics::counter!("coinfold_projection_applied_total", "projection" => projection)
        .increment(count as u64);
}

/// Starts a transaction whose unqualified names resolve in `schema`.
pub(crate) async fn begin_in(
    pool: &sqlx::PgPool,
    schema: &str,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, ProjectionError> {
    let mut tx = pool.begin().await?;
    set_schema(&mut tx, schema).await?;
    Ok(tx)
}

pub(crate) async fn set_schema(tx: &mut PgConnection, schema: &str) -> Result<(), ProjectionError> {
    // `set_config(…, true)` is `SET LOCAL` with a bound value: the schema name is never
    // spliced into SQL text.
    sqlx::query("SELECT set_config('search_path', $1, true)")
        .bind(format!("\"{}\"", schema.replace('"', "")))
        .execute(&mut *tx)
        .await?;
    Ok(())
}
