//! `coinfold projections status`: each projection's checkpoint, lag and state.

use std::fmt;

use sqlx::PgPool;
use time::OffsetDateTime;

use super::ProjectionError;
use super::checkpoint;
use super::rebuild::watermarks;
use super::registry::{ALL, Entry, Source};

/// One projection's line.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub name: &'static str,
    pub source: String,
    /// `running`, `rebuilding`, …; `new` when it has never run.
    pub state: String,
    /// A log projection's position, or the sum of a stream projection's next offsets.
    pub checkpoint: i64,
    /// Events (or messages) not applied yet; None when the broker could not be asked.
    pub lag: Option<i64>,
    pub updated_at: Option<OffsetDateTime>,
    /// A stream projection's partitions (empty for a log projection, or before its
    /// first batch).
    pub partitions: Vec<PartitionStatus>,
}

/// One partition of a stream projection: where it is and which process moved it last.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionStatus {
    pub partition: i32,
    pub next_offset: i64,
    pub lag: Option<i64>,
    pub applied_by: String,
    pub applied_at: OffsetDateTime,
}

/// The status of every known projection. `brokers`/`prefix` locate the topics.
pub async fn all(
    pool: &PgPool,
    brokers: &str,
    prefix: &str,
) -> Result<Vec<Status>, ProjectionError> {
    of(pool, brokers, prefix, ALL.iter()).await
}

/// The status of the projections `entries`, in their order.
pub async fn of(
    pool: &PgPool,
    brokers: &str,
    prefix: &str,
    entries: impl Iterator<Item = &Entry>,
) -> Result<Vec<Status>, ProjectionError> {
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    let mut lines = Vec::new();
    for entry in entries {
        let row: Option<(String, String, i64, OffsetDateTime)> = sqlx::query_as(
            "SELECT source, state, position, updated_at FROM projection_checkpoints \
             WHERE projection = $1",
        )
        .bind(entry.name)
        .fetch_optional(pool)
        .await?;
        let (state, updated_at, position) = match &row {
            Some((_, state, position, updated_at)) => (state.clone(), Some(*updated_at), *position),
            None => ("new".to_owned(), None, 0),
        };
        let line = match entry.source {
            Source::EventStore => Status {
                name: entry.name,
                source: checkpoint::EVENT_STORE.to_owned(),
                state,
                checkpoint: position,
                lag: Some((head - position).max(0)),
                updated_at,
                partitions: Vec::new(),
            },
            Source::Kafka(topic) => {
                let mut conn = pool.acquire().await?;
                let rows = checkpoint::partitions(&mut conn, entry.name).await?;
                let name = format!("{prefix}{topic}");
                let marks = match watermarks(brokers, &name).await {
                    Ok(marks) => Some(marks),
                    Err(error) => {
                        tracing::warn!(%error, topic = %name, "reading the topic's watermarks failed");
                        None
                    }
                };
                let next = |p: i32| {
                    rows.iter()
                        .find(|r| r.partition == p)
                        .map_or(0, |r| r.next_offset)
                };
                let lag = marks.as_ref().map(|marks| {
                    marks
                        .iter()
                        .map(|(p, (_, high))| (high - next(*p)).max(0))
                        .sum()
                });
                let partitions = rows
                    .iter()
                    .map(|r| PartitionStatus {
                        partition: r.partition,
                        next_offset: r.next_offset,
                        lag: marks.as_ref().and_then(|m| {
                            m.get(&r.partition)
                                .map(|(_, high)| (high - r.next_offset).max(0))
                        }),
                        applied_by: r.applied_by.clone(),
                        applied_at: r.applied_at,
                    })
                    .collect();
                Status {
                    name: entry.name,
                    source: checkpoint::kafka_source(topic),
                    state,
                    checkpoint: rows.iter().map(|r| r.next_offset).sum(),
                    lag,
                    // Batches move the partition rows, not the checkpoint row.
                    updated_at: rows.iter().map(|r| r.applied_at).max().or(updated_at),
                    partitions,
                }
            }
        };
        lines.push(line);
    }
    Ok(lines)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn or_unknown(lag: Option<i64>) -> String {
    lag.map_or_else(|| "?".to_owned(), |l| l.to_string())
}

/// The table `coinfold projections status` prints; with `partitions`, each stream
/// projection's partitions below it (offset, lag, the process that applied last).
pub struct Table<'a> {
    pub lines: &'a [Status],
    pub partitions: bool,
}

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<11} {:<32} {:<11} {:>12} {:>10}  updated",
            "projection", "source", "state", "checkpoint", "lag"
        )?;
        for s in self.lines {
            let updated = s.updated_at.map_or_else(|| "-".to_owned(), rfc3339);
            writeln!(
                f,
                "{:<11} {:<32} {:<11} {:>12} {:>10}  {}",
                s.name,
                s.source,
                s.state,
                s.checkpoint,
                or_unknown(s.lag),
                updated
            )?;
            if !self.partitions {
                continue;
            }
            for p in &s.partitions {
                writeln!(
                    f,
                    "  partition {:<3} {:<24} {:>22} {:>10}  {} by {}",
                    p.partition,
                    "",
                    p.next_offset,
                    or_unknown(p.lag),
                    rfc3339(p.applied_at),
                    if p.applied_by.is_empty() {
                        "?"
                    } else {
                        &p.applied_by
                    }
                )?;
            }
        }
        Ok(())
    }
}
