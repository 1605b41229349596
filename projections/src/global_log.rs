//! Reading the event store's global log in position order, without gaps.
//!
//! Every event gets a `global_position` from a sequence when it is inserted. Positions
//! are handed out in insert order but become visible in *commit* order: a writer can
//! take position 5, stay open, and commit after another writer committed position 6.
//! A reader that saw 6 and moved its checkpoint to 6 would never see 5. This module
//! never returns a position until every transaction that could still hold a smaller
//! one has finished.
//!
//! ## The high-water mark
//!
//! The schema makes every writer take its transaction id *before* its position (the
//! `events_assign_position` trigger). The reader then takes a **mark**, in this order,
//! each step its own statement:
//!
//! 1. `last`: the sequence's last handed-out value (`pg_sequence_last_value`);
//! 2. `fence`: a transaction id assigned to the reader itself (`pg_current_xact_id()`,
//!    a one-statement transaction that writes nothing).
//!
//! Every position `<= last` was handed out before step 1, by a transaction whose id was
//! assigned even earlier, and ids are assigned in increasing order, so that id is
//! `< fence`. Once a later snapshot's `xmin` (the oldest transaction still in flight) is
//! `>= fence`, all of those transactions have committed or rolled back: the positions
//! `<= last` are final, and `last` becomes the safe high-water mark. Positions of
//! rolled-back transactions are simply never there.
//!
//! Why not the snapshot's `xmax` instead of a fence: PostgreSQL computes `xmax` as one
//! past the latest *completed* id, and a writer holding a larger id may still be in
//! flight. The concurrency test caught exactly that.
//!
//! Writers take no lock beyond `nextval`. The reader keeps the marks it has taken and
//! retires them as `xmin` passes them, so under continuous writes it trails by one
//! call, and on an idle database a mark is retired by the call that took it. It takes a
//! fence only when the sequence has moved, so an idle reader consumes no transaction
//! ids. The price: a transaction left open anywhere in the PostgreSQL cluster holds the
//! mark back until it ends (transaction ids are cluster-wide). See
//! `docs/adr/0001-global-log-high-water-mark.md`.

use std::collections::VecDeque;

use serde_json::Value;
use sqlx::PgPool;

/// Pending marks kept at most. Under a long-running transaction marks pile up; past
/// this many, the newest is replaced instead, which only delays, never skips.
const MAX_PENDING_MARKS: usize = 1024;

/// An event as stored, in the global log.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RecordedEvent {
    pub global_position: i64,
    /// The id of the transaction that wrote the event (`xid8`); events written together
    /// share it.
    pub transaction_id: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The event's version within its aggregate, from 1.
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum GlobalLogError {
    #[error("reading the global log failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("invalid read: {0}")]
    InvalidArgument(&'static str),
    #[error("the database returned a transaction id that is not a number: {0:?}")]
    BadTransactionId(String),
}

/// Positions up to `last` are final once no transaction older than `fence` is in flight.
#[derive(Debug, Clone, Copy)]
struct Mark {
    last: i64,
    fence: u64,
}

/// A catch-up reader of the global log. Each projection owns one: it remembers the
/// marks it has taken, which is what lets it trail writers by only one call.
#[derive(Debug)]
pub struct GlobalLog {
    pool: PgPool,
    pending: VecDeque<Mark>,
    safe: i64,
}

impl GlobalLog {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            pending: VecDeque::new(),
            safe: 0,
        }
    }

    /// The highest position below which the log is final: every event at or below it
    /// is visible now or will never exist.
    pub async fn high_water_mark(&mut self) -> Result<i64, GlobalLogError> {
        // Three statements, in this order: each statement's snapshot is taken when it
        // starts, and each step must happen after the previous one completed.
        let last: Option<i64> =
            sqlx::query_scalar("SELECT pg_sequence_last_value('events_global_position_seq')")
                .fetch_one(&self.pool)
                .await?;
        let newest = self.pending.back().map_or(self.safe, |m| m.last);
        if let Some(last) = last.filter(|&last| last > newest) {
            let fence: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
                .fetch_one(&self.pool)
                .await?;
            let mark = Mark {
                last,
                fence: parse_xid(&fence)?,
            };
            if self.pending.len() < MAX_PENDING_MARKS {
                self.pending.push_back(mark);
            } else if let Some(back) = self.pending.back_mut() {
                *back = mark;
            }
        }
        if self.pending.is_empty() {
            return Ok(self.safe);
        }
        let xmin: String =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                .fetch_one(&self.pool)
                .await?;
        let xmin = parse_xid(&xmin)?;
        while let Some(mark) = self.pending.front().copied() {
            if mark.fence > xmin {
                break;
            }
            self.safe = mark.last;
            self.pending.pop_front();
        }
        Ok(self.safe)
    }

    /// Up to `limit` events with `after < global_position <= high-water mark`, in
    /// position order. Pass the last position you applied as `after`; an empty answer
    /// means you are caught up for now.
    pub async fn read_after(
        &mut self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, GlobalLogError> {
        if after < 0 {
            return Err(GlobalLogError::InvalidArgument("`after` must be >= 0"));
        }
        if limit <= 0 {
            return Err(GlobalLogError::InvalidArgument("`limit` must be > 0"));
        }
        let high_water_mark = self.high_water_mark().await?;
        if high_water_mark <= after {
            return Ok(Vec::new());
        }
        let events = sqlx::query_as::<_, RecordedEvent>(
            "SELECT global_position, transaction_id::text::bigint AS transaction_id, \
                    aggregate_type, aggregate_id, sequence, event_type, event_version, \
                    payload, metadata \
             FROM events \
             WHERE global_position > $1 AND global_position <= $2 \
             ORDER BY global_position \
             LIMIT $3",
        )
        .bind(after)
        .bind(high_water_mark)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(events)
    }
}

fn parse_xid(text: &str) -> Result<u64, GlobalLogError> {
    text.parse()
        .map_err(|_| GlobalLogError::BadTransactionId(text.to_owned()))
}
