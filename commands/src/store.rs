//! The event store's schema and how to bring a database up to it.
//!
//! The migrations live in the workspace's `migrations/` folder and are embedded at
//! compile time, so the `coinfold` binary carries its own schema.

use sqlx::PgPool;
use sqlx::migrate::{MigrateError, Migrator};

/// Every migration of the workspace, embedded from `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Brings the database up to the latest schema. Safe to run again and from several
/// processes at once: sqlx takes an advisory lock and skips what is applied.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}

/// The newest migration version this binary knows.
pub fn latest_version() -> Option<i64> {
    MIGRATOR.iter().map(|m| m.version).max()
}
