//! The event store: cqrs-es's `PersistedEventRepository` over the foundation's tables.
//!
//! postgres-es writes events alone; this repository writes, in **one transaction**:
//! - the events, each with its metadata completed here: a UUIDv7 `event_id` per event,
//!   `recorded_at` (UTC), `effective_at` (the `executed_at` the event states, for
//!   trades), plus what the command brought (`actor`, `correlation_id`,
//!   `causation_id`, `command`, `idempotency_key`, and `traceparent` when traced);
//! - one outbox row per event, for the relay to publish to `coinfold.domain-events`,
//!   keyed by aggregate id, its headers the event's id and type (and trace context);
//! - the claims on usernames and e-mail addresses the events make (`reservations`);
//! - the idempotency key's row, when the command carried one;
//! - the snapshot, when cqrs-es asks for one.
//!
//! The events go in as one `INSERT … SELECT FROM unnest(…)` and their outbox rows as
//! another (per 10,000 events), in sequence order, whatever the command's size. After
//! the commit, a repository built `ringing` notifies its doorbell, which the API and the
//! alert evaluator turn into `coinfold.log` on Redis for the log's followers.
//!
//! A second writer of the same aggregate version fails on the events' primary key,
//! which becomes `OptimisticLockError` (cqrs-es's `AggregateConflict`); a second use
//! of the same idempotency key fails on that table's key, which the command service
//! turns into "answer the first result".

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::Aggregate;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use serde_json::{Map, Value, json};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::trace_context::{TRACEPARENT, TRACESTATE};

/// The topic outbox rows are published to.
pub const DOMAIN_EVENTS_TOPIC: &str = "coinfold.domain-events";

/// Metadata keys a command passes to the repository that are not stored as such.
pub(crate) const IDEMPOTENCY_HASH: &str = "idempotency_request_hash";
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency_key";
pub(crate) const ACTOR: &str = "actor";
pub(crate) const COMMAND: &str = "command";

#[derive(Debug, thiserror::Error)]
#[error("idempotency key already used by a concurrent command")]
pub struct IdempotencyKeyTaken;

/// Events appended per statement: an import of 100,000 trades is ten pairs of
/// statements, each well under PostgreSQL's message size.
const APPEND_CHUNK: usize = 10_000;

/// The columns of a chunk of events, as arrays for `unnest`.
#[derive(Default)]
struct AppendRows<'a> {
    event_ids: Vec<Uuid>,
    metadata: Vec<Value>,
    types: Vec<&'a str>,
    ids: Vec<&'a str>,
    sequences: Vec<i64>,
    event_types: Vec<&'a str>,
    versions: Vec<&'a str>,
    payloads: Vec<&'a Value>,
}

#[derive(Debug, Clone)]
pub struct PgEventRepository {
    pool: PgPool,
    topic: String,
    /// Notified after each append commits (see [`PgEventRepository::ringing`]).
    committed: Option<Arc<Notify>>,
}

impl PgEventRepository {
    /// `topic_prefix` is put in front of the outbox topic (tests use their own).
    pub fn new(pool: PgPool, topic_prefix: &str) -> Self {
        Self {
            pool,
            topic: format!("{topic_prefix}{DOMAIN_EVENTS_TOPIC}"),
            committed: None,
        }
    }

    /// Notifies `committed` after each append commits: a doorbell for whoever follows
    /// the global log (the API rings Redis with it, and its `events` subscriptions wake
    /// at once instead of at their next poll). Never waits.
    pub fn ringing(mut self, committed: Arc<Notify>) -> Self {
        self.committed = Some(committed);
        self
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn select_events(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: i64,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let rows = sqlx::query(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
             FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 \
             ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after_sequence)
        .fetch_all(&self.pool)
        .await
        .map_err(connection)?;
        rows.iter().map(serialized_event).collect()
    }

    async fn insert_all(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        events: &[SerializedEvent],
    ) -> Result<(), PersistenceError> {
        // Microseconds, what PostgreSQL's timestamptz holds: a time read back and
        // compared in SQL (load_as_of by recorded time) must equal the one written.
        let now = OffsetDateTime::now_utc();
        let recorded_at = now
            .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .map_err(unknown)?
            .format(&Rfc3339)
            .map_err(unknown)?;
        for chunk in events.chunks(APPEND_CHUNK) {
            self.insert_chunk(tx, chunk, &recorded_at).await?;
        }
        Ok(())
    }

    /// Appends `events` (of one aggregate, in sequence order) and their outbox rows in
    /// two statements: a command of one event costs what it did one at a time, and an
    /// import of many no longer a round trip per event. Rows go in in the order given
    /// (`ORDER BY n`), so global positions and outbox ids ascend with the sequence.
    async fn insert_chunk(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        events: &[SerializedEvent],
        recorded_at: &str,
    ) -> Result<(), PersistenceError> {
        let mut rows = AppendRows::default();
        for event in events {
            let event_id = Uuid::now_v7();
            rows.event_ids.push(event_id);
            rows.metadata
                .push(stored_metadata(event, event_id, recorded_at));
            rows.types.push(event.aggregate_type.as_str());
            rows.ids.push(event.aggregate_id.as_str());
            rows.sequences
                .push(i64::try_from(event.sequence).map_err(unknown)?);
            rows.event_types.push(event.event_type.as_str());
            rows.versions.push(event.event_version.as_str());
            rows.payloads.push(&event.payload);
        }
        // The trigger hands out positions in insertion order (`ORDER BY n`), so the
        // returned positions, ascending, are the events' in the order given.
        let mut positions: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT t, i, s, e, v, p, m FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], \
               $5::text[], $6::jsonb[], $7::jsonb[]) WITH ORDINALITY AS r(t, i, s, e, v, p, m, n) \
             ORDER BY n \
             RETURNING global_position",
        )
        .bind(&rows.types)
        .bind(&rows.ids)
        .bind(&rows.sequences)
        .bind(&rows.event_types)
        .bind(&rows.versions)
        .bind(&rows.payloads)
        .bind(&rows.metadata)
        .fetch_all(&mut **tx)
        .await
        .map_err(conflict_or_connection)?;
        positions.sort_unstable();
        if positions.len() != events.len() {
            return Err(PersistenceError::UnknownError(
                format!(
                    "{} events appended, {} positions returned",
                    events.len(),
                    positions.len()
                )
                .into(),
            ));
        }

        let mut messages = Vec::with_capacity(events.len());
        let mut headers = Vec::with_capacity(events.len());
        for (n, (event, position)) in events.iter().zip(positions).enumerate() {
            let (event_id, metadata, sequence) =
                (rows.event_ids[n], &rows.metadata[n], rows.sequences[n]);
            messages.push(json!({
                "schema": 1,
                "event_id": event_id,
                "global_position": position,
                "aggregate_type": event.aggregate_type,
                "aggregate_id": event.aggregate_id,
                "sequence": sequence,
                "event_type": event.event_type,
                "event_version": event.event_version,
                "payload": event.payload,
                "metadata": metadata,
            }));
            headers.push(outbox_headers(event_id, &event.event_type, metadata));
        }
        sqlx::query(
            "INSERT INTO outbox (event_id, topic, message_key, payload, headers) \
             SELECT r.id, $2, r.k, r.p, r.h FROM unnest($1::uuid[], $3::text[], $4::jsonb[], $5::jsonb[]) \
               WITH ORDINALITY AS r(id, k, p, h, n) \
             ORDER BY n",
        )
        .bind(&rows.event_ids)
        .bind(&self.topic)
        .bind(&rows.ids)
        .bind(&messages)
        .bind(&headers)
        .execute(&mut **tx)
        .await
        .map_err(connection)?;
        Ok(())
    }

    async fn insert_idempotency_key(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        events: &[SerializedEvent],
    ) -> Result<(), PersistenceError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        let metadata = &first.metadata;
        let (Some(key), Some(hash)) = (
            metadata.get(IDEMPOTENCY_KEY).and_then(Value::as_str),
            metadata.get(IDEMPOTENCY_HASH).and_then(Value::as_str),
        ) else {
            return Ok(());
        };
        let scope = metadata.get(ACTOR).and_then(Value::as_str).unwrap_or("");
        let command = metadata.get(COMMAND).and_then(Value::as_str).unwrap_or("");
        let response = json!({
            "aggregate_id": first.aggregate_id,
            "first_sequence": first.sequence,
            "version": last.sequence,
            "events": events.len(),
        });
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, command, request_hash, aggregate_type, aggregate_id, response) \
             VALUES ($1, $2, $3, decode($4, 'hex'), $5, $6, $7) ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(command)
        .bind(hash)
        .bind(&first.aggregate_type)
        .bind(&first.aggregate_id)
        .bind(&response)
        .execute(&mut **tx)
        .await
        .map_err(connection)?;
        if inserted.rows_affected() == 0 {
            return Err(PersistenceError::UnknownError(Box::new(
                IdempotencyKeyTaken,
            )));
        }
        Ok(())
    }
}

impl PersistedEventRepository for PgEventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.select_events(A::TYPE, aggregate_id, 0).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let after = i64::try_from(last_sequence).map_err(unknown)?;
        self.select_events(A::TYPE, aggregate_id, after).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        let row = sqlx::query(
            "SELECT aggregate_id, last_sequence, current_snapshot, payload FROM snapshots \
             WHERE aggregate_type = $1 AND aggregate_id = $2 \
             ORDER BY last_sequence DESC LIMIT 1",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(connection)?;
        row.map(|row| {
            Ok(SerializedSnapshot {
                aggregate_id: row.try_get("aggregate_id").map_err(deserialization)?,
                aggregate: row.try_get("payload").map_err(deserialization)?,
                current_sequence: to_usize(row.try_get("last_sequence").map_err(deserialization)?)?,
                current_snapshot: to_usize(
                    row.try_get("current_snapshot").map_err(deserialization)?,
                )?,
            })
        })
        .transpose()
    }

    #[tracing::instrument(
        name = "event_store.append",
        skip_all,
        fields(aggregate.type = A::TYPE, events = events.len())
    )]
    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let mut tx = self.pool.begin().await.map_err(connection)?;
        self.insert_all(&mut tx, events).await?;
        crate::reservations::apply(&mut tx, events).await?;
        self.insert_idempotency_key(&mut tx, events).await?;
        if let Some((aggregate_id, payload, snapshot)) = snapshot_update {
            let last_sequence = events.last().map_or(0, |e| e.sequence);
            // Snapshots are history too: `load_as_of` starts from the nearest one.
            sqlx::query(
                "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(A::TYPE)
            .bind(&aggregate_id)
            .bind(i64::try_from(last_sequence).map_err(unknown)?)
            .bind(i64::try_from(snapshot).map_err(unknown)?)
            .bind(&payload)
            .execute(&mut *tx)
            .await
            .map_err(connection)?;
        }
        tx.commit().await.map_err(conflict_or_connection)?;
        if let Some(committed) = &self.committed {
            committed.notify_one();
        }
        Ok(())
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let events = self.select_events(A::TYPE, aggregate_id, 0).await?;
        Ok(replay(events))
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let rows = sqlx::query(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
             FROM events WHERE aggregate_type = $1 ORDER BY global_position",
        )
        .bind(A::TYPE)
        .fetch_all(&self.pool)
        .await
        .map_err(connection)?;
        let events = rows
            .iter()
            .map(serialized_event)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(replay(events))
    }
}

fn replay(events: Vec<SerializedEvent>) -> ReplayStream {
    let (mut feed, stream) = ReplayStream::new(events.len().max(1));
    tokio::spawn(async move {
        for event in events {
            if feed.push(Ok(event)).await.is_err() {
                break;
            }
        }
    });
    stream
}

/// An outbox row's headers: the event's id and type, and its trace context if any.
fn outbox_headers(event_id: Uuid, event_type: &str, metadata: &Value) -> Value {
    let mut headers = Map::new();
    headers.insert("event_id".into(), json!(event_id));
    headers.insert("event_type".into(), json!(event_type));
    for key in [TRACEPARENT, TRACESTATE] {
        if let Some(value) = metadata.get(key) {
            headers.insert(key.into(), value.clone());
        }
    }
    Value::Object(headers)
}

/// The metadata stored with an event: what the command brought, minus the request
/// hash, plus the event's own id and times.
fn stored_metadata(event: &SerializedEvent, event_id: Uuid, recorded_at: &str) -> Value {
    let mut metadata = match &event.metadata {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    metadata.remove(IDEMPOTENCY_HASH);
    metadata.insert("event_id".into(), json!(event_id));
    metadata.insert("recorded_at".into(), json!(recorded_at));
    if let Some(effective_at) = find_executed_at(&event.payload, 4) {
        metadata.insert("effective_at".into(), effective_at.clone());
    }
    Value::Object(metadata)
}

/// The first `executed_at` in the payload, searched a few levels deep: trades and
/// transfers state when they happened, and that is the event's effective time.
fn find_executed_at(value: &Value, depth: usize) -> Option<&Value> {
    let Value::Object(map) = value else {
        return None;
    };
    if let Some(found) = map.get("executed_at").filter(|v| v.is_string()) {
        return Some(found);
    }
    if depth == 0 {
        return None;
    }
    map.values().find_map(|v| find_executed_at(v, depth - 1))
}

fn serialized_event(row: &PgRow) -> Result<SerializedEvent, PersistenceError> {
    Ok(SerializedEvent {
        aggregate_id: row.try_get("aggregate_id").map_err(deserialization)?,
        sequence: to_usize(row.try_get("sequence").map_err(deserialization)?)?,
        aggregate_type: row.try_get("aggregate_type").map_err(deserialization)?,
        event_type: row.try_get("event_type").map_err(deserialization)?,
        event_version: row.try_get("event_version").map_err(deserialization)?,
        payload: row.try_get("payload").map_err(deserialization)?,
        metadata: row.try_get("metadata").map_err(deserialization)?,
    })
}

fn to_usize(value: i64) -> Result<usize, PersistenceError> {
    usize::try_from(value).map_err(deserialization)
}

fn connection(error: sqlx::Error) -> PersistenceError {
    PersistenceError::ConnectionError(Box::new(error))
}

fn deserialization(error: impl std::error::Error + Send + Sync + 'static) -> PersistenceError {
    PersistenceError::DeserializationError(Box::new(error))
}

fn unknown(error: impl std::error::Error + Send + Sync + 'static) -> PersistenceError {
    PersistenceError::UnknownError(Box::new(error))
}

/// A unique violation on the events' key means another command wrote this version
/// first: an optimistic-concurrency conflict.
fn conflict_or_connection(error: sqlx::Error) -> PersistenceError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            PersistenceError::OptimisticLockError
        }
        _ => connection(error),
    }
}

/// Metadata as cqrs-es wants it (strings), from the command's context.
pub(crate) fn metadata_map(entries: &[(&str, Option<String>)]) -> HashMap<String, String> {
    entries
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| ((*k).to_owned(), v)))
        .collect()
}
