//! Change notifications on Redis pub/sub, published after a batch has committed.
//!
//! Channels (each deployment's or test's prefix in front, as for topics):
//!
//! | channel | payload |
//! |---|---|
//! | `coinfold.price.<COIN>` | `{coin, quote, price, source, at}` |
//! | `coinfold.candle.<COIN>.<interval>` | the candle row, on every change |
//! | `coinfold.portfolio.<id>` | `{portfolio_id, owner_id, position}`: holdings changed |
//! | `coinfold.alert.<owner id>` | `{alert_id, coin, observation}`: an alert triggered |
//! | `coinfold.sentiment.<COIN>` | the scored article |
//! | `coinfold.log` | empty: events were appended to the store ([`ring_log`]) |
//!
//! Redis is a cache and a doorbell, not a source of truth: a failed publish is logged
//! and the projection goes on (its rows are committed; a subscriber that missed a
//! doorbell reads the read model). Hot values (`coinfold:price:<COIN>:<QUOTE>`) are
//! written here too, after the commit, so the cache never shows an uncommitted value.

use std::sync::Arc;

use redis::aio::ConnectionManager;
use tokio::sync::Notify;

use super::Output;

/// The channel a notification topic is published on.
pub fn channel(prefix: &str, topic: &str) -> String {
    format!("{prefix}coinfold.{topic}")
}

/// The Redis key of a hot value.
pub fn cache_key(prefix: &str, key: &str) -> String {
    format!("{prefix}coinfold:{key}")
}

#[derive(Clone)]
pub struct Notifier {
    redis: ConnectionManager,
    prefix: String,
}

impl Notifier {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let redis = ConnectionManager::new(client).await?;
        Ok(Self {
            redis,
            prefix: prefix.to_owned(),
        })
    }

    /// Writes the batch's hot values, then publishes its notifications, in one pipeline.
    pub async fn publish(&self, out: Output) {
        if out.notifications.is_empty() && out.cache.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for (key, value) in &out.cache {
            pipe.set(cache_key(&self.prefix, key), value.to_string())
                .ignore();
        }
        for note in &out.notifications {
            pipe.publish(channel(&self.prefix, &note.topic), note.payload.to_string())
                .ignore();
        }
        let mut redis = self.redis.clone();
        if let Err(error) = pipe.query_async::<()>(&mut redis).await {
            tracing::warn!(%error, notifications = out.notifications.len(), "publishing changes to Redis failed");
        }
    }
}

/// The topic rung after appends to the event store commit.
pub const LOG_TOPIC: &str = "log";

/// Publishes `coinfold.log` (empty) each time the returned `Notify` is notified, as
/// `PgEventRepository::ringing` does after each commit; commits that come while a
/// publish is under way ring once more, not once each. Followers of the global log on
/// every API instance wake then instead of at their next poll. A failed publish is
/// logged: followers still poll. The task runs as long as the runtime.
pub fn ring_log(client: redis::Client, prefix: &str) -> Arc<Notify> {
    let committed = Arc::new(Notify::new());
    let rung = committed.clone();
    let channel = channel(prefix, LOG_TOPIC);
    tokio::spawn(async move {
        let mut redis: Option<ConnectionManager> = None;
        loop {
            rung.notified().await;
            if redis.is_none() {
                match ConnectionManager::new(client.clone()).await {
                    Ok(connection) => redis = Some(connection),
                    Err(error) => {
                        tracing::warn!(%error, "connecting to Redis for the log doorbell failed");
                        continue;
                    }
                }
            }
            if let Some(connection) = redis.as_mut()
                && let Err(error) = redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg("")
                    .query_async::<()>(connection)
                    .await
            {
                tracing::warn!(%error, "ringing the log doorbell failed");
            }
        }
    });
    committed
}
