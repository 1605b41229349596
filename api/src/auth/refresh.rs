//! Refresh tokens: opaque, random, stored as their SHA-256 in `auth_refresh_tokens`,
//! valid for 7 days by default and good for one use each.
//!
//! A login starts a *family*. Each refresh marks the presented token used and issues
//! the next one in the same family. A token presented a second time means it was
//! copied: the whole family is revoked (the thief's and the owner's tokens alike),
//! and the family's id, which access tokens carry as their session, is returned so the
//! caller can refuse that session's access tokens too. Logout revokes the family.

use std::time::Duration;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

const PREFIX: &str = "rt_";

/// A refresh token just issued.
pub struct IssuedRefresh {
    pub token: SecretString,
    pub user_id: Uuid,
    pub family: Uuid,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the refresh token is not known")]
    Unknown,
    #[error("the refresh token has expired")]
    Expired,
    #[error("the refresh token was revoked")]
    Revoked,
    /// Presented again after it was used: its family is now revoked.
    #[error("the refresh token was already used; every token of this login is revoked")]
    Reused { family: Uuid },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What a logout found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logout {
    /// The session was live; now it is over.
    Ended,
    /// The session had already ended: logged out, revoked (a reused token, a password
    /// change, a deactivation), or every token of it expired.
    AlreadyEnded,
}

#[derive(sqlx::FromRow)]
struct StoredToken {
    family_id: Uuid,
    user_id: Uuid,
    expires_at: OffsetDateTime,
    used_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

pub struct RefreshTokens {
    pool: PgPool,
    ttl: Duration,
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{PREFIX}{hex}")
}

impl RefreshTokens {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self { pool, ttl }
    }

    async fn insert(
        &self,
        conn: &mut sqlx::PgConnection,
        user_id: Uuid,
        family: Uuid,
        now: OffsetDateTime,
    ) -> Result<IssuedRefresh, sqlx::Error> {
        let token = new_token();
        let expires_at = now + self.ttl;
        sqlx::query(
            "INSERT INTO auth_refresh_tokens (token_hash, family_id, user_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(digest(&token))
        .bind(family)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
        Ok(IssuedRefresh {
            token: token.into(),
            user_id,
            family,
            expires_at,
        })
    }

    /// The first token of a new family (a login).
    pub async fn start(&self, user_id: Uuid) -> Result<IssuedRefresh, RefreshError> {
        let mut conn = self.pool.acquire().await?;
        Ok(self
            .insert(
                &mut conn,
                user_id,
                Uuid::now_v7(),
                OffsetDateTime::now_utc(),
            )
            .await?)
    }

    /// Uses `token` once: the next token of its family, or why not.
    pub async fn rotate(&self, token: &SecretString) -> Result<IssuedRefresh, RefreshError> {
        let now = OffsetDateTime::now_utc();
        let mut tx = self.pool.begin().await?;
        let row: Option<StoredToken> = sqlx::query_as(
            "SELECT family_id, user_id, expires_at, used_at, revoked_at \
             FROM auth_refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        )
        .bind(digest(token.expose_secret()))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(StoredToken {
            family_id: family,
            user_id,
            expires_at,
            used_at,
            revoked_at,
        }) = row
        else {
            return Err(RefreshError::Unknown);
        };
        if revoked_at.is_some() {
            return Err(RefreshError::Revoked);
        }
        if used_at.is_some() {
            revoke_family(&mut tx, family, now).await?;
            tx.commit().await?;
            tracing::warn!(user.id = %user_id, session = %family, "a refresh token was used twice; its family is revoked");
            return Err(RefreshError::Reused { family });
        }
        if expires_at <= now {
            return Err(RefreshError::Expired);
        }
        sqlx::query("UPDATE auth_refresh_tokens SET used_at = $2 WHERE token_hash = $1")
            .bind(digest(token.expose_secret()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let next = self.insert(&mut tx, user_id, family, now).await?;
        tx.commit().await?;
        Ok(next)
    }

    /// Ends the session (family) of `token` (logout): what it found, or None for an
    /// unknown token.
    pub async fn revoke(&self, token: &SecretString) -> Result<Option<Logout>, RefreshError> {
        let now = OffsetDateTime::now_utc();
        let mut tx = self.pool.begin().await?;
        let family: Option<Uuid> =
            sqlx::query_scalar("SELECT family_id FROM auth_refresh_tokens WHERE token_hash = $1")
                .bind(digest(token.expose_secret()))
                .fetch_optional(&mut *tx)
                .await?;
        let Some(family) = family else {
            return Ok(None);
        };
        // Live: a token of the family could still be used (not revoked, used or expired).
        let live: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM auth_refresh_tokens WHERE family_id = $1 \
             AND revoked_at IS NULL AND used_at IS NULL AND expires_at > $2)",
        )
        .bind(family)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        revoke_family(&mut tx, family, now).await?;
        tx.commit().await?;
        Ok(Some(if live {
            Logout::Ended
        } else {
            Logout::AlreadyEnded
        }))
    }

    /// Revokes a family (e.g. its user was deactivated).
    pub async fn revoke_family(&self, family: Uuid) -> Result<(), RefreshError> {
        let mut conn = self.pool.acquire().await?;
        revoke_family(&mut conn, family, OffsetDateTime::now_utc()).await?;
        Ok(())
    }

    /// Revokes every session of `user_id` but `keep` (a password change); how many.
    pub async fn revoke_other_sessions(
        &self,
        user_id: Uuid,
        keep: Option<Uuid>,
    ) -> Result<u64, RefreshError> {
        let revoked = sqlx::query(
            "UPDATE auth_refresh_tokens SET revoked_at = $3 \
             WHERE user_id = $1 AND revoked_at IS NULL AND family_id IS DISTINCT FROM $2",
        )
        .bind(user_id)
        .bind(keep)
        .bind(OffsetDateTime::now_utc())
        .execute(&self.pool)
        .await?;
        Ok(revoked.rows_affected())
    }

    /// True unless the family (an access token's session) has a token not revoked:
    /// a revoked session and one never started are both refused.
    pub async fn is_revoked(&self, family: Uuid) -> Result<bool, RefreshError> {
        Ok(sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM auth_refresh_tokens \
             WHERE family_id = $1 AND revoked_at IS NULL)",
        )
        .bind(family)
        .fetch_one(&self.pool)
        .await?)
    }
}

async fn revoke_family(
    conn: &mut sqlx::PgConnection,
    family: Uuid,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE auth_refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
