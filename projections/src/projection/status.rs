//! `coinfold projections status`: each projection's checkpoint, lag and state.

use std::fmt;

use sqlx::PgPool;
use time::OffsetDateTime;

use super::ProjectionError;
use super::checkpoint;
use super::rebuild::watermarks;
use super::registry::{ALL, Source};

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
}

/// The status of every known projection. `brokers`/`prefix` locate the topics.
pub async fn all(
    pool: &PgPool,
    brokers: &str,
    prefix: &str,
) -> Result<Vec<Status>, ProjectionError> {
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    let mut lines = Vec::with_capacity(ALL.len());
    for entry in ALL {
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
            },
            Source::Kafka(topic) => {
                let mut conn = pool.acquire().await?;
                let offsets = checkpoint::offsets(&mut conn, entry.name).await?;
                let name = format!("{prefix}{topic}");
                let lag = match watermarks(brokers, &name).await {
                    Ok(marks) => Some(
                        marks
                            .iter()
                            .map(|(p, (_, high))| {
                                (high - offsets.get(p).copied().unwrap_or(0)).max(0)
                            })
                            .sum(),
                    ),
                    Err(error) => {
                        tracing::warn!(%error, topic = %name, "reading the topic's watermarks failed");
                        None
                    }
                };
                Status {
                    name: entry.name,
                    source: checkpoint::kafka_source(topic),
                    state,
                    checkpoint: offsets.values().sum(),
                    lag,
                    updated_at,
                }
            }
        };
        lines.push(line);
    }
    Ok(lines)
}

/// The table `coinfold projections status` prints.
pub struct Table<'a>(pub &'a [Status]);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<11} {:<32} {:<11} {:>12} {:>10}  updated",
            "projection", "source", "state", "checkpoint", "lag"
        )?;
        for s in self.0 {
            let lag = s.lag.map_or_else(|| "?".to_owned(), |l| l.to_string());
            let updated = s.updated_at.map_or_else(
                || "-".to_owned(),
                |t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                },
            );
            writeln!(
                f,
                "{:<11} {:<32} {:<11} {:>12} {:>10}  {}",
                s.name, s.source, s.state, s.checkpoint, lag, updated
            )?;
        }
        Ok(())
    }
}
