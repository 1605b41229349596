//! The checkpoint rows: `projection_checkpoints` (one per projection: source, position,
//! state) and `projection_offsets` (one per partition of a Kafka-fed projection).
//!
//! Lock order, everywhere: the checkpoint row first, then offset rows in partition
//! order. Live stream runners take the checkpoint row `FOR SHARE` (two processes holding
//! different partitions do not wait on each other); a rebuild's swap takes it
//! `FOR UPDATE`, which waits for the batches in flight and holds back new ones.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::ProjectionError;

/// The `source` column of a log projection.
pub const EVENT_STORE: &str = "event-store";

pub fn kafka_source(topic: &str) -> String {
    format!("kafka:{topic}")
}

/// Makes sure the projection's row exists (a new projection starts at the beginning).
pub async fn ensure(
    conn: &mut PgConnection,
    projection: &str,
    source: &str,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO public.projection_checkpoints (projection, source) VALUES ($1, $2) \
         ON CONFLICT (projection) DO NOTHING",
    )
    .bind(projection)
    .bind(source)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The position of a log projection, locked until the transaction ends.
pub async fn lock_position(
    conn: &mut PgConnection,
    projection: &str,
) -> Result<i64, ProjectionError> {
    let position = sqlx::query_scalar(
        "SELECT position FROM public.projection_checkpoints WHERE projection = $1 FOR UPDATE",
    )
    .bind(projection)
    .fetch_one(&mut *conn)
    .await?;
    Ok(position)
}

pub async fn position(conn: &mut PgConnection, projection: &str) -> Result<i64, ProjectionError> {
    let position: Option<i64> = sqlx::query_scalar(
        "SELECT position FROM public.projection_checkpoints WHERE projection = $1",
    )
    .bind(projection)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(position.unwrap_or(0))
}

pub async fn set_position(
    conn: &mut PgConnection,
    projection: &str,
    position: i64,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "UPDATE public.projection_checkpoints SET position = $2, updated_at = now() \
         WHERE projection = $1",
    )
    .bind(projection)
    .bind(position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_state(
    conn: &mut PgConnection,
    projection: &str,
    state: &str,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "UPDATE public.projection_checkpoints SET state = $2, updated_at = now() \
         WHERE projection = $1",
    )
    .bind(projection)
    .bind(state)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes the checkpoint row `FOR SHARE` (see the module's lock order).
pub async fn share(conn: &mut PgConnection, projection: &str) -> Result<(), ProjectionError> {
    sqlx::query("SELECT 1 FROM public.projection_checkpoints WHERE projection = $1 FOR SHARE")
        .bind(projection)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The next offset of each of `partitions` (0 for a partition never seen), with their
/// rows locked until the transaction ends.
pub async fn lock_offsets(
    conn: &mut PgConnection,
    projection: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, i64>, ProjectionError> {
    let mut sorted = partitions.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    // Rows first (a concurrent insert of the same row waits here, then does nothing),
    // then the lock, in partition order.
    sqlx::query(
        "INSERT INTO public.projection_offsets (projection, topic, partition, next_offset) \
         SELECT $1, $2, p, 0 FROM unnest($3::int[]) AS p \
         ORDER BY p \
         ON CONFLICT DO NOTHING",
    )
    .bind(projection)
    .bind(topic)
    .bind(&sorted)
    .execute(&mut *conn)
    .await?;
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition, next_offset FROM public.projection_offsets \
         WHERE projection = $1 AND topic = $2 AND partition = ANY($3) \
         ORDER BY partition FOR UPDATE",
    )
    .bind(projection)
    .bind(topic)
    .bind(&sorted)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Every partition's next offset (no lock).
pub async fn offsets(
    conn: &mut PgConnection,
    projection: &str,
) -> Result<BTreeMap<i32, i64>, ProjectionError> {
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition, next_offset FROM public.projection_offsets \
         WHERE projection = $1 ORDER BY partition",
    )
    .bind(projection)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Moves the offsets of `next`'s partitions and records `applied_by` (the process, see
/// [`process_name`]) and the time on their rows.
pub async fn set_offsets(
    conn: &mut PgConnection,
    projection: &str,
    topic: &str,
    next: &BTreeMap<i32, i64>,
    applied_by: &str,
) -> Result<(), ProjectionError> {
    if next.is_empty() {
        return Ok(());
    }
    let partitions: Vec<i32> = next.keys().copied().collect();
    let offsets: Vec<i64> = next.values().copied().collect();
    sqlx::query(
        "INSERT INTO public.projection_offsets \
             (projection, topic, partition, next_offset, applied_by, applied_at) \
         SELECT $1, $2, p, o, $5, now() FROM unnest($3::int[], $4::bigint[]) AS t(p, o) \
         ON CONFLICT (projection, topic, partition) DO UPDATE \
         SET next_offset = excluded.next_offset, applied_by = excluded.applied_by, \
             applied_at = excluded.applied_at",
    )
    .bind(projection)
    .bind(topic)
    .bind(&partitions)
    .bind(&offsets)
    .bind(applied_by)
    .execute(&mut *conn)
    .await?;
    // The checkpoint row's `updated_at` is left alone: other processes hold it
    // `FOR SHARE`, and an update here would wait for them.
    Ok(())
}

/// One partition's row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PartitionOffset {
    pub partition: i32,
    pub next_offset: i64,
    pub applied_by: String,
    pub applied_at: OffsetDateTime,
}

/// Every partition row of `projection`, in partition order (no lock).
pub async fn partitions(
    conn: &mut PgConnection,
    projection: &str,
) -> Result<Vec<PartitionOffset>, ProjectionError> {
    Ok(sqlx::query_as(
        "SELECT partition, next_offset, applied_by, applied_at FROM public.projection_offsets \
         WHERE projection = $1 ORDER BY partition",
    )
    .bind(projection)
    .fetch_all(&mut *conn)
    .await?)
}

/// This process as `projection_offsets.applied_by` names it: the static member name
/// when there is one, else `host:pid` (a pod's name, in Kubernetes).
pub fn process_name(instance_id: Option<&str>) -> String {
    if let Some(instance) = instance_id {
        return instance.to_owned();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}
