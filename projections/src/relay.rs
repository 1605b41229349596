//! The outbox relay: the `relay` role.
//!
//! Every command's transaction writes one `outbox` row per event (`coinfold-commands`'
//! event store). The relay publishes those rows, oldest first, to their topic
//! (`coinfold.domain-events`), keyed by aggregate id, with the row's headers (the
//! event id and type) as Kafka headers, and marks them published once the broker has
//! acknowledged every message of the batch. A row that carries a trace context is
//! published in a `relay.publish` span of that trace, whose `traceparent` the message
//! carries ([`crate::trace`]).
//!
//! - **At least once.** A crash between the broker's acknowledgement and the `UPDATE`
//!   publishes the batch again on restart; outside consumers drop a repeat by the
//!   `event_id` header. Nothing is ever lost: a row stays unpublished until the broker
//!   has it.
//! - **In order per aggregate.** Two events of one aggregate are never written by
//!   concurrent transactions (the second writer of a version conflicts), so the earlier
//!   row commits first and is read first; the idempotent producer keeps a key's messages
//!   in order within its partition.
//! - **One relay at a time.** Several `relay` processes may run (for availability);
//!   they take a PostgreSQL advisory lock, and only its holder publishes. When it dies,
//!   its connection closes, the lock is free and another takes over.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio_util::sync::CancellationToken;

/// The advisory lock the publishing relay holds (an arbitrary constant: "relay" in ASCII).
const LOCK: i64 = 0x72_656c_6179;

/// How the relay runs.
#[derive(Debug, Clone, Copy)]
pub struct RelaySettings {
    /// Rows published per batch.
    pub batch_size: i64,
    /// The pause before looking again when the outbox was empty.
    pub idle: Duration,
    /// How long a delivery may take before the batch is failed (and retried).
    pub delivery_timeout: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            idle: Duration::from_millis(50),
            delivery_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the outbox could not be read or marked: {0}")]
    Database(#[from] sqlx::Error),
    #[error("publishing outbox row {id} to {topic} failed: {source}")]
    Delivery {
        id: i64,
        topic: String,
        source: KafkaError,
    },
}

/// What a relay did until it stopped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    pub messages: u64,
    pub batches: u64,
}

/// One outbox row.
#[derive(Debug, sqlx::FromRow)]
struct Row {
    id: i64,
    topic: String,
    message_key: String,
    /// The JSON as stored, sent as it is (no parse and serialize per row).
    payload: String,
    headers: Value,
}

/// Publishes the outbox until `cancel` fires. It first waits for the relay lock.
pub async fn run(
    pool: &PgPool,
    producer: &FutureProducer,
    settings: RelaySettings,
    cancel: CancellationToken,
) -> Result<Relayed, RelayError> {
    let mut relayed = Relayed::default();
    // The lock lives as long as this connection: it is held, not returned to the pool,
    // until the relay stops.
    let Some(mut lock) = take_lock(pool, settings.idle, &cancel).await? else {
        return Ok(relayed);
    };
    tracing::info!("relay: publishing the outbox");
    let result = async {
        while !cancel.is_cancelled() {
            let published = publish_batch(pool, producer, settings).await?;
            if published > 0 {
                relayed.messages += published;
                relayed.batches += 1;
                metrics::counter!("coinfold_relay_published_total").increment(published);
            }
            if published < settings.batch_size.unsigned_abs() {
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = tokio::time::sleep(settings.idle) => {}
                }
            }
        }
        Ok(relayed)
    }
    .await;
    // Release explicitly: the connection goes back to the pool, not closed.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK)
        .execute(&mut *lock)
        .await;
    result
}

/// Waits until this process holds the relay lock; None if cancelled first.
async fn take_lock(
    pool: &PgPool,
    pause: Duration,
    cancel: &CancellationToken,
) -> Result<Option<PoolConnection<Postgres>>, RelayError> {
    let mut conn = pool.acquire().await?;
    let mut said = false;
    loop {
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK)
            .fetch_one(&mut *conn)
            .await?;
        if taken {
            return Ok(Some(conn));
        }
        if !said {
            tracing::info!("relay: another relay publishes; standing by");
            said = true;
        }
        tokio::select! {
            () = cancel.cancelled() => return Ok(None),
            () = tokio::time::sleep(pause.max(Duration::from_millis(500))) => {}
        }
    }
}

/// Publishes the oldest unpublished rows (at most one batch) and marks them; how many.
pub async fn publish_batch(
    pool: &PgPool,
    producer: &FutureProducer,
    settings: RelaySettings,
) -> Result<u64, RelayError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, topic, message_key, payload::text AS payload, headers FROM outbox \
         WHERE published_at IS NULL ORDER BY id LIMIT $1",
    )
    .bind(settings.batch_size)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut deliveries = Vec::with_capacity(rows.len());
    // A traced row is published in a span of its command's trace, from enqueueing to
    // the mark; the message carries that span's context.
    let mut spans = Vec::new();
    for row in &rows {
        let headers = if crate::trace::is_traced(&row.headers) {
            let span = tracing::info_span!(
                "relay.publish",
                messaging.destination = %row.topic,
                outbox.id = row.id,
            );
            crate::trace::continue_from(&span, &row.headers);
            let mut headers = row.headers.clone();
            for (key, value) in crate::trace::context_of(&span) {
                headers[key] = Value::String(value);
            }
            spans.push(span);
            kafka_headers(&headers)
        } else {
            kafka_headers(&row.headers)
        };
        let mut record = FutureRecord::to(&row.topic)
            .key(&row.message_key)
            .payload(&row.payload)
            .headers(headers);
        // Enqueued now, in the batch's order; a full queue is waited out.
        let started = tokio::time::Instant::now();
        let delivery = loop {
            match producer.send_result(record) {
                Ok(delivery) => break delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if started.elapsed() < settings.delivery_timeout =>
                {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((source, _)) => {
                    return Err(RelayError::Delivery {
                        id: row.id,
                        topic: row.topic.clone(),
                        source,
                    });
                }
            }
        };
        deliveries.push(delivery);
    }
    for (row, delivery) in rows.iter().zip(deliveries) {
        let failed = match tokio::time::timeout(settings.delivery_timeout, delivery).await {
            Ok(Ok(Ok(_))) => None,
            Ok(Ok(Err((source, _)))) => Some(source),
            Ok(Err(_cancelled)) => Some(KafkaError::Canceled),
            Err(_late) => Some(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageTimedOut,
            )),
        };
        if let Some(source) = failed {
            return Err(RelayError::Delivery {
                id: row.id,
                topic: row.topic.clone(),
                source,
            });
        }
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
        .bind(&ids)
        .execute(pool)
        .await?;
    drop(spans);
    Ok(rows.len() as u64)
}

/// The row's `headers` object as Kafka headers: strings as they are, anything else as
/// its JSON text.
fn kafka_headers(headers: &Value) -> OwnedHeaders {
    let mut out = OwnedHeaders::new();
    if let Value::Object(map) = headers {
        for (key, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out = out.insert(Header {
                key,
                value: Some(text.as_bytes()),
            });
        }
    }
    out
}

/// Rows not published yet (the relay's backlog).
pub async fn backlog(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers;
    use serde_json::json;

    use super::*;

    #[test]
    fn headers_keep_strings_and_render_the_rest_as_json() {
        let headers = kafka_headers(&json!({"event_id": "e-1", "n": 3, "x": {"a": true}}));
        let pairs: Vec<(String, String)> = headers
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    String::from_utf8(h.value.unwrap_or_default().to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("event_id".to_owned(), "e-1".to_owned()),
                ("n".to_owned(), "3".to_owned()),
                ("x".to_owned(), r#"{"a":true}"#.to_owned()),
            ]
        );
        assert_eq!(kafka_headers(&json!([1, 2])).count(), 0);
    }
}
