//! Claims on values that must be unique across aggregates (usernames, e-mail
//! addresses, API key hashes), written in the transaction that stores the event making
//! the claim.
//!
//! This is the one place where the write side looks across aggregates; it works on
//! the stored form of the events so the repository stays generic.

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use serde_json::Value;
use sqlx::{Postgres, Transaction};

/// Another aggregate already holds this value.
#[derive(Debug, thiserror::Error)]
#[error("this {kind} is already taken")]
pub struct ValueTaken {
    pub kind: &'static str,
}

/// Claims and releases what `events` imply, or fails with [`ValueTaken`].
pub(crate) async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    events: &[SerializedEvent],
) -> Result<(), PersistenceError> {
    for event in events.iter().filter(|e| e.aggregate_type == "User") {
        let body = |variant: &str, field: &str| {
            event
                .payload
                .get(variant)
                .and_then(|v| v.get(field))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match event.event_type.as_str() {
            "UserRegistered" => {
                if let Some(username) = body("Registered", "username") {
                    claim(tx, "username", &username, &event.aggregate_id).await?;
                }
                if let Some(email) = body("Registered", "email") {
                    claim(tx, "email", &email, &event.aggregate_id).await?;
                }
            }
            "EmailChanged" => {
                sqlx::query("DELETE FROM user_reservations WHERE kind = 'email' AND user_id = $1")
                    .bind(&event.aggregate_id)
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| PersistenceError::ConnectionError(Box::new(e)))?;
                if let Some(email) = body("EmailChanged", "new") {
                    claim(tx, "email", &email, &event.aggregate_id).await?;
                }
            }
            "ApiKeyIssued" => {
                let hash = event
                    .payload
                    .get("ApiKeyIssued")
                    .and_then(|v| v.get("key"))
                    .and_then(|v| v.get("hash"))
                    .and_then(Value::as_str);
                if let Some(hash) = hash {
                    claim(tx, "api_key", hash, &event.aggregate_id).await?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

async fn claim(
    tx: &mut Transaction<'_, Postgres>,
    kind: &'static str,
    value: &str,
    owner: &str,
) -> Result<(), PersistenceError> {
    let claimed = sqlx::query(
        "INSERT INTO user_reservations (kind, value, user_id) VALUES ($1, $2, $3) \
         ON CONFLICT (kind, value) DO NOTHING",
    )
    .bind(kind)
    .bind(value)
    .bind(owner)
    .execute(&mut **tx)
    .await
    .map_err(|e| PersistenceError::ConnectionError(Box::new(e)))?;
    if claimed.rows_affected() == 0 {
        return Err(PersistenceError::UnknownError(Box::new(ValueTaken {
            kind,
        })));
    }
    Ok(())
}

/// The user holding `value` of `kind` (`"username"` or `"email"`, in their normalized
/// form, or `"api_key"`, a key's hash), if anyone does.
pub async fn holder(pool: &sqlx::PgPool, kind: &str, value: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT user_id FROM user_reservations WHERE kind = $1 AND value = $2")
        .bind(kind)
        .bind(value)
        .fetch_optional(pool)
        .await
}
