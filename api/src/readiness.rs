//! What `/ready` checks: that PostgreSQL, Redis and the Kafka broker answer, each
//! within the configured timeout. The checks run concurrently, so a dead dependency
//! costs one timeout, not three.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use serde::Serialize;
use sqlx::PgPool;

/// The dependencies the app needs, as the readiness probe sees them.
#[derive(Clone)]
pub struct Dependencies {
    pub db: PgPool,
    pub redis: redis::Client,
    pub kafka: Arc<AdminClient<DefaultClientContext>>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub up: bool,
    pub latency_ms: u64,
    /// Why it is down. Never holds a URL or credential: the clients' errors name the
    /// failure, not the address they were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Dependencies {
    pub async fn check_all(&self) -> Vec<Check> {
        let (postgres, redis, kafka) = tokio::join!(
            self.timed("postgres", self.check_postgres()),
            self.timed("redis", self.check_redis()),
            self.timed("kafka", self.check_kafka()),
        );
        vec![postgres, redis, kafka]
    }

    async fn timed(
        &self,
        name: &'static str,
        check: impl Future<Output = Result<(), String>>,
    ) -> Check {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(self.timeout, check).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        Check {
            name,
            up: outcome.is_ok(),
            latency_ms: started.elapsed().as_millis() as u64,
            error: outcome.err(),
        }
    }

    async fn check_postgres(&self) -> Result<(), String> {
        sqlx::query("SELECT 1")
            .execute(&self.db)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn check_redis(&self) -> Result<(), String> {
        let mut connection = self
            .redis
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let answer: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(format!("PING answered {answer:?}"))
        }
    }

    async fn check_kafka(&self) -> Result<(), String> {
        let admin = self.kafka.clone();
        let timeout = self.timeout;
        // librdkafka's metadata call blocks its thread.
        tokio::task::spawn_blocking(move || {
            let metadata = admin
                .inner()
                .fetch_metadata(None, timeout)
                .map_err(|e| e.to_string())?;
            if metadata.brokers().is_empty() {
                Err("the cluster reported no brokers".to_owned())
            } else {
                Ok(())
            }
        })
        .await
        .map_err(|e| format!("the check did not finish: {e}"))?
    }
}
