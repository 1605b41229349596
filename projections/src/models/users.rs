//! Users (name, base currency, state), their watchlists, and usage: how many events each
//! user's commands produced, by event type, over every aggregate.

use std::collections::BTreeMap;

use coinfold_domain::user::UserEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{acting_user, aggregate_uuid, decode, recorded_at};
use crate::global_log::RecordedEvent;
use crate::projection::{LogProjection, Output, ProjectionError};

pub const NAME: &str = "users";
pub const TABLES: &[&str] = &["users", "watchlists", "usage"];

#[derive(Debug, Default, Clone, Copy)]
pub struct Users;

impl LogProjection for Users {
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
        _out: &mut Output,
    ) -> Result<(), ProjectionError> {
        // Usage is counted for the whole batch and written once.
        let mut usage: BTreeMap<(Uuid, &str), i64> = BTreeMap::new();
        for event in events {
            if let Some(user) = acting_user(event) {
                *usage.entry((user, event.event_type.as_str())).or_default() += 1;
            }
            if event.aggregate_type == "User" {
                let id = aggregate_uuid(event)?;
                apply_one(tx, id, event, decode(event)?).await?;
            }
        }
        if !usage.is_empty() {
            let users: Vec<Uuid> = usage.keys().map(|k| k.0).collect();
            let types: Vec<&str> = usage.keys().map(|k| k.1).collect();
            let counts: Vec<i64> = usage.values().copied().collect();
            sqlx::query(
                "INSERT INTO usage (user_id, event_type, count) \
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[]) \
                 ON CONFLICT (user_id, event_type) DO UPDATE SET count = usage.count + excluded.count",
            )
            .bind(&users)
            .bind(&types)
            .bind(&counts)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

async fn apply_one(
    tx: &mut PgConnection,
    id: Uuid,
    event: &RecordedEvent,
    payload: UserEvent,
) -> Result<(), ProjectionError> {
    match payload {
        UserEvent::Registered {
            username,
            registered_at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO users (user_id, username, base_currency, registered_at, deactivated, position) \
                 VALUES ($1, $2, 'USD', $3, false, $4)",
            )
            .bind(id)
            .bind(username.as_str())
            .bind(registered_at)
            .bind(event.global_position)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        UserEvent::PreferencesUpdated { preferences } => {
            sqlx::query("UPDATE users SET base_currency = $2 WHERE user_id = $1")
                .bind(id)
                .bind(preferences.base_currency.as_str())
                .execute(&mut *tx)
                .await?;
        }
        UserEvent::Deactivated { .. } => {
            sqlx::query("UPDATE users SET deactivated = true WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        UserEvent::WatchlistCoinAdded { coin } => {
            sqlx::query(
                "INSERT INTO watchlists (user_id, coin, added_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(coin.as_str())
            .bind(recorded_at(event)?)
            .execute(&mut *tx)
            .await?;
        }
        UserEvent::WatchlistCoinRemoved { coin } => {
            sqlx::query("DELETE FROM watchlists WHERE user_id = $1 AND coin = $2")
                .bind(id)
                .bind(coin.as_str())
                .execute(&mut *tx)
                .await?;
        }
        // Credentials, e-mail and profile are the write side's business (no read model
        // shows them); the position still moves.
        UserEvent::EmailChanged { .. }
        | UserEvent::PasswordChanged { .. }
        | UserEvent::ProfileUpdated { .. }
        | UserEvent::ApiKeyIssued { .. }
        | UserEvent::ApiKeyRevoked { .. } => {}
    }
    sqlx::query("UPDATE users SET position = $2 WHERE user_id = $1")
        .bind(id)
        .bind(event.global_position)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
