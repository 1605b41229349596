//! Alerts with their state: what the owner sees, and what the evaluator watches (the
//! armed ones, by coin).

use coinfold_domain::alert::AlertEvent;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{aggregate_uuid, bad, decode, enum_text};
use crate::global_log::RecordedEvent;
use crate::projection::{LogProjection, Output, ProjectionError};

pub const NAME: &str = "alerts";
pub const TABLES: &[&str] = &["alerts"];

#[derive(Debug, Default, Clone, Copy)]
pub struct Alerts;

impl LogProjection for Alerts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        events: &[RecordedEvent],
        out: &mut Output,
    ) -> Result<(), ProjectionError> {
        for event in events.iter().filter(|e| e.aggregate_type == "Alert") {
            let id = aggregate_uuid(event)?;
            apply_one(tx, id, event, decode(event)?, out).await?;
        }
        Ok(())
    }
}

fn json_of<T: serde::Serialize>(
    event: &RecordedEvent,
    value: &T,
) -> Result<serde_json::Value, ProjectionError> {
    serde_json::to_value(value).map_err(|e| bad(event, e.to_string()))
}

async fn apply_one(
    tx: &mut PgConnection,
    id: Uuid,
    event: &RecordedEvent,
    payload: AlertEvent,
    out: &mut Output,
) -> Result<(), ProjectionError> {
    let position = event.global_position;
    match payload {
        AlertEvent::Created {
            owner_id,
            coin,
            condition,
            repeat,
            cooldown_seconds,
            created_at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO alerts (alert_id, owner_id, coin, condition, repeat, cooldown_seconds, \
                 status, times_triggered, last_triggered_at, last_observation, created_at, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'ARMED', 0, NULL, NULL, $7, $8)",
            )
            .bind(id)
            .bind(owner_id)
            .bind(coin.as_str())
            .bind(json_of(event, &condition)?)
            .bind(enum_text(&repeat))
            .bind(i32::try_from(cooldown_seconds).unwrap_or(i32::MAX))
            .bind(created_at)
            .bind(position)
            .execute(&mut *tx)
            .await?;
        }
        AlertEvent::Triggered { observation } => {
            // A one-shot alert waits to be re-armed; a recurring one stays armed.
            let row: Option<(Uuid, String)> = sqlx::query_as(
                "UPDATE alerts SET times_triggered = times_triggered + 1, last_triggered_at = $2, \
                 last_observation = $3, position = $4, \
                 status = CASE WHEN repeat = 'ONE_SHOT' THEN 'FIRED' ELSE status END \
                 WHERE alert_id = $1 RETURNING owner_id, coin",
            )
            .bind(id)
            .bind(observation.at)
            .bind(json_of(event, &observation)?)
            .bind(position)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((owner, coin)) = row {
                out.notify(
                    format!("alert.{owner}"),
                    json!({"alert_id": id, "coin": coin, "observation": observation, "position": position}),
                );
            }
        }
        AlertEvent::Rearmed { .. } => set_status(tx, id, "ARMED", position).await?,
        AlertEvent::Disabled { .. } => set_status(tx, id, "DISABLED", position).await?,
        AlertEvent::Deleted { .. } => set_status(tx, id, "DELETED", position).await?,
    }
    Ok(())
}

async fn set_status(
    tx: &mut PgConnection,
    id: Uuid,
    status: &str,
    position: i64,
) -> Result<(), ProjectionError> {
    sqlx::query("UPDATE alerts SET status = $2, position = $3 WHERE alert_id = $1")
        .bind(id)
        .bind(status)
        .bind(position)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
