//! Audit and time travel: an aggregate's events with their metadata, and its state
//! at any past point.
//!
//! - [`history`]: the events after a version, oldest first, with their metadata (event
//!   id, actor, correlation and causation ids, recorded and effective times), as
//!   stored: auditors see what was written, not an upcast copy.
//! - [`load_as_of`]: the state at a version, at a recorded time (what the system knew
//!   then), or at an effective time (what we know now about that moment, e.g. a
//!   trade entered later but executed before it). It starts from the nearest snapshot
//!   at or below the version it needs and folds the (upcast) events after it.

use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use cqrs_es::{Aggregate, EventEnvelope};
use serde_json::Value;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::upcasting::upcast;

/// A state an aggregate can be asked for at an effective time.
pub trait EffectiveTime: Sized {
    /// The aggregate as it stood at `at`, as far as it is known now.
    fn effective_as_of(&self, at: OffsetDateTime) -> Self;
}

impl EffectiveTime for coinfold_domain::portfolio::Portfolio {
    fn effective_as_of(&self, at: OffsetDateTime) -> Self {
        coinfold_domain::portfolio::Portfolio::effective_as_of(self, at)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// After the event with this sequence number.
    Version(usize),
    /// What had been recorded by this time.
    RecordedAt(OffsetDateTime),
    /// What we know now about this moment.
    EffectiveAt(OffsetDateTime),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    pub sequence: i64,
    pub global_position: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
}

/// An aggregate loaded at a past point.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub aggregate: A,
    /// The last event folded in.
    pub version: usize,
    /// The snapshot it started from (its last sequence), if any.
    pub from_snapshot: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("reading the event store failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a stored event does not read back: {0}")]
    Corrupt(String),
}

/// The `owner_id` that an aggregate's first event (`Created`) names; None when there is
/// no such aggregate. Owners never change, so this answers for every later command.
pub async fn owner(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<Uuid>, HistoryError> {
    let owner: Option<Option<String>> = sqlx::query_scalar(
        "SELECT payload -> 'Created' ->> 'owner_id' FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = 1",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(pool)
    .await?;
    owner
        .flatten()
        .map(|id| {
            id.parse()
                .map_err(|_| HistoryError::Corrupt(format!("owner_id {id:?} is not a uuid")))
        })
        .transpose()
}

/// Up to `limit` events of one aggregate with `sequence > after`, oldest first.
pub async fn history(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<HistoryEvent>, HistoryError> {
    let rows = sqlx::query(
        "SELECT sequence, global_position, event_type, event_version, payload, metadata \
         FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 \
         ORDER BY sequence LIMIT $4",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(after)
    .bind(limit.clamp(1, 1000))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(HistoryEvent {
                sequence: row.try_get("sequence")?,
                global_position: row.try_get("global_position")?,
                event_type: row.try_get("event_type")?,
                event_version: row.try_get("event_version")?,
                payload: row.try_get("payload")?,
                metadata: row.try_get("metadata")?,
            })
        })
        .collect()
}

/// The aggregate at `as_of`, or None if it did not exist then.
pub async fn load_as_of<A>(
    pool: &PgPool,
    aggregate_id: &str,
    as_of: AsOf,
    upcasters: &[Box<dyn EventUpcaster>],
) -> Result<Option<Loaded<A>>, HistoryError>
where
    A: Aggregate + EffectiveTime,
{
    let version: Option<i64> =
        match as_of {
            AsOf::Version(version) => {
                let version = i64::try_from(version).unwrap_or(i64::MAX);
                sqlx::query_scalar(
                    "SELECT max(sequence) FROM events \
                 WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence <= $3",
                )
                .bind(A::TYPE)
                .bind(aggregate_id)
                .bind(version)
                .fetch_one(pool)
                .await?
            }
            AsOf::RecordedAt(at) => {
                sqlx::query_scalar(
                    "SELECT max(sequence) FROM events \
                 WHERE aggregate_type = $1 AND aggregate_id = $2 \
                   AND (metadata->>'recorded_at')::timestamptz <= $3",
                )
                .bind(A::TYPE)
                .bind(aggregate_id)
                .bind(at)
                .fetch_one(pool)
                .await?
            }
            AsOf::EffectiveAt(_) => sqlx::query_scalar(
                "SELECT max(sequence) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
            )
            .bind(A::TYPE)
            .bind(aggregate_id)
            .fetch_one(pool)
            .await?,
        };
    let Some(version) = version else {
        return Ok(None);
    };

    // The nearest snapshot at or below the version; one that no longer reads (the
    // aggregate's shape changed) is passed over and the events are folded from 1.
    let snapshot: Option<(i64, Value)> = sqlx::query_as(
        "SELECT last_sequence, payload FROM snapshots \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND last_sequence <= $3 \
         ORDER BY last_sequence DESC LIMIT 1",
    )
    .bind(A::TYPE)
    .bind(aggregate_id)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    let (mut aggregate, start) = match snapshot
        .and_then(|(seq, payload)| serde_json::from_value::<A>(payload).ok().map(|a| (a, seq)))
    {
        Some((aggregate, seq)) => (aggregate, Some(seq)),
        None => (A::default(), None),
    };

    let rows = sqlx::query(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
         FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
           AND sequence > $3 AND sequence <= $4 ORDER BY sequence",
    )
    .bind(A::TYPE)
    .bind(aggregate_id)
    .bind(start.unwrap_or(0))
    .bind(version)
    .fetch_all(pool)
    .await?;
    for row in rows {
        let sequence: i64 = row.try_get("sequence")?;
        let stored = SerializedEvent {
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: usize::try_from(sequence)
                .map_err(|e| HistoryError::Corrupt(e.to_string()))?,
            aggregate_type: row.try_get("aggregate_type")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: row.try_get("payload")?,
            metadata: row.try_get("metadata")?,
        };
        let envelope = EventEnvelope::<A>::try_from(upcast(stored, upcasters))
            .map_err(|e| HistoryError::Corrupt(format!("event {sequence}: {e}")))?;
        aggregate.apply(envelope.payload);
    }
    if let AsOf::EffectiveAt(at) = as_of {
        aggregate = aggregate.effective_as_of(at);
    }
    Ok(Some(Loaded {
        aggregate,
        version: usize::try_from(version).unwrap_or(0),
        from_snapshot: start.and_then(|s| usize::try_from(s).ok()),
    }))
}
