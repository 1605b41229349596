//! Rate limits per signed-in user and per client address, shared by every API
//! instance: a counter per key and minute in Redis (`INCR`, expiring with its
//! minute). A request over either limit is answered 429 `RATE_LIMITED` with the
//! seconds until the minute turns.
//!
//! When Redis cannot be reached the request passes and the failure is logged: the
//! limit protects the service, and refusing everyone while Redis restarts would be
//! the outage it exists to prevent.

use std::net::IpAddr;

use redis::aio::MultiplexedConnection;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use uuid::Uuid;

/// Who a request is counted against.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    User(Uuid),
    Address(IpAddr),
}

pub struct RateLimiter {
    client: redis::Client,
    connection: Mutex<Option<MultiplexedConnection>>,
    prefix: String,
    per_user: u64,
    per_address: u64,
}

impl RateLimiter {
    /// `prefix` goes before every key (the deployment's topic prefix, so tests and
    /// deployments sharing a Redis do not count together).
    pub fn new(client: redis::Client, prefix: &str, per_user: u64, per_address: u64) -> Self {
        Self {
            client,
            connection: Mutex::new(None),
            prefix: prefix.to_owned(),
            per_user,
            per_address,
        }
    }

    /// Counts one request against each subject; the seconds to wait when one is over
    /// its limit.
    pub async fn check(&self, subjects: &[Subject]) -> Result<(), u64> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let (minute, retry_after) = (now.div_euclid(60), 60 - now.rem_euclid(60) as u64);
        for subject in subjects {
            let (key, limit) = match subject {
                Subject::User(id) => (format!("user.{id}"), self.per_user),
                Subject::Address(ip) => (format!("ip.{ip}"), self.per_address),
            };
            if limit == 0 {
                continue;
            }
            let key = format!("{}coinfold.ratelimit.{key}.{minute}", self.prefix);
            match self.count(&key).await {
                Ok(count) if count > limit => return Err(retry_after),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "rate limit not checked: Redis failed");
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    async fn count(&self, key: &str) -> redis::RedisResult<u64> {
        let mut slot = self.connection.lock().await;
        let mut connection = match slot.as_ref() {
            Some(connection) => connection.clone(),
            None => {
                let connection = self.client.get_multiplexed_async_connection().await?;
                *slot = Some(connection.clone());
                connection
            }
        };
        drop(slot);
        let result: redis::RedisResult<(u64,)> = redis::pipe()
            .atomic()
            .incr(key, 1u64)
            .expire(key, 120)
            .ignore()
            .query_async(&mut connection)
            .await;
        if result.is_err() {
            // Connect again next time.
            *self.connection.lock().await = None;
        }
        result.map(|(count,)| count)
    }
}
