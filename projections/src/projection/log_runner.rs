//! Runs a [`LogProjection`] over the global log: batches of events, each applied with
//! its checkpoint in one transaction. An event that carries a trace context is
//! applied in a `projection.apply` span of that trace ([`crate::trace`]).

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::checkpoint::{self, EVENT_STORE};
use super::notify::Notifier;
use super::{LIVE_SCHEMA, LogProjection, Output, ProjectionError, RunSettings, applied, begin_in};
use crate::global_log::GlobalLog;
use crate::trace;

/// What one call of [`fold_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Applied events up to this position.
    Applied { events: usize, position: i64 },
    /// Nothing new below the high-water mark.
    CaughtUp,
    /// The checkpoint moved under us (another process or a rebuild's swap); read again.
    Moved,
}

/// Folds the next batch after the live checkpoint into the live tables.
pub async fn fold_batch<P: LogProjection>(
    pool: &PgPool,
    log: &mut GlobalLog,
    projection: &P,
    batch_size: usize,
    out: &mut Output,
) -> Result<Step, ProjectionError> {
    let after = {
        let mut conn = pool.acquire().await?;
        checkpoint::position(&mut conn, projection.name()).await?
    };
    let limit = i64::try_from(batch_size).unwrap_or(i64::MAX);
    let events = log.read_after(after, limit).await?;
    let Some(last) = events.last().map(|e| e.global_position) else {
        return Ok(Step::CaughtUp);
    };
    // Each traced event is applied in a span of its command's trace, until the commit.
    let _spans: Vec<tracing::Span> = events
        .iter()
        .filter(|e| trace::is_traced(&e.metadata))
        .map(|e| {
            let span = tracing::info_span!(
                "projection.apply",
                projection = projection.name(),
                event.name = %e.event_type,
                event.global_position = e.global_position,
                aggregate.id = %e.aggregate_id,
            );
            trace::continue_from(&span, &e.metadata);
            span
        })
        .collect();
    let mut tx = begin_in(pool, LIVE_SCHEMA).await?;
    if checkpoint::lock_position(&mut tx, projection.name()).await? != after {
        return Ok(Step::Moved);
    }
    projection.apply(&mut tx, &events, out).await?;
    checkpoint::set_position(&mut tx, projection.name(), last).await?;
    tx.commit().await?;
    applied(projection.name(), events.len());
    Ok(Step::Applied {
        events: events.len(),
        position: last,
    })
}

/// Runs until `cancel` fires; returns how many events it applied.
pub async fn run<P: LogProjection>(
    pool: PgPool,
    projection: &P,
    settings: &RunSettings,
    notifier: Option<&Notifier>,
    cancel: CancellationToken,
) -> Result<u64, ProjectionError> {
    {
        let mut conn = pool.acquire().await?;
        checkpoint::ensure(&mut conn, projection.name(), EVENT_STORE).await?;
    }
    let mut log = GlobalLog::new(pool.clone());
    let mut applied = 0u64;
    tracing::info!(projection = projection.name(), "projection started");
    while !cancel.is_cancelled() {
        let mut out = Output::default();
        match fold_batch(&pool, &mut log, projection, settings.batch_size, &mut out).await? {
            Step::Applied { events, position } => {
                applied += events as u64;
                tracing::debug!(
                    projection = projection.name(),
                    events,
                    position,
                    "batch applied"
                );
                if let Some(notifier) = notifier {
                    notifier.publish(out).await;
                }
            }
            Step::Moved => {}
            Step::CaughtUp => {
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = tokio::time::sleep(settings.idle_poll) => {}
                }
            }
        }
    }
    Ok(applied)
}
