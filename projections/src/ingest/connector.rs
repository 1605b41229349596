//! What every connector shares: the messages it emits, its counters, its backoff.
//!
//! A connector owns one upstream (a socket or a poll loop), turns what arrives into
//! [`Ingested`] messages and sends them down a channel to the producer
//! ([`super::producer`]), which writes the topics. Keeping Kafka out of the connectors
//! lets them be tested against a replay server alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::coingecko::CoinMarket;
use super::news::Article;
use super::{ParseError, Tick};

/// One message for the topics.
#[derive(Debug, Clone)]
pub enum Ingested {
    /// To `coinfold.market.ticks`, keyed by coin.
    Tick(Tick),
    /// To `coinfold.market.coins`, keyed by CoinGecko id.
    Coin(CoinMarket),
    /// To `coinfold.news.articles`, keyed by the hash of its URL.
    Article(Article),
    /// To `coinfold.dead-letter`, keyed by the topic it was meant for.
    DeadLetter(DeadLetter),
}

/// A message that could not be read: the bytes as they came, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Who sent it: `binance`, `coinbase`, `coingecko`, `rss`, `newsapi`.
    pub source: &'static str,
    /// The topic it would have gone to (without the prefix).
    pub topic: &'static str,
    pub reason: String,
    pub raw: Vec<u8>,
    pub received_time: OffsetDateTime,
}

/// Counters of one connector, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct ConnectorStats {
    pub messages: AtomicU64,
    pub ticks: AtomicU64,
    pub dead_letters: AtomicU64,
    /// Connections opened (websocket) or requests answered (poller).
    pub connections: AtomicU64,
    /// Connections that ended and were opened again.
    pub reconnects: AtomicU64,
    /// Coinbase `sequence_num` gaps, and the messages they lost.
    pub sequence_gaps: AtomicU64,
    pub missed_messages: AtomicU64,
    /// 429 answers (CoinGecko, NewsAPI).
    pub rate_limited: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    pub messages: u64,
    pub ticks: u64,
    pub dead_letters: u64,
    pub connections: u64,
    pub reconnects: u64,
    pub sequence_gaps: u64,
    pub missed_messages: u64,
    pub rate_limited: u64,
}

impl ConnectorStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StatsSnapshot {
            messages: read(&self.messages),
            ticks: read(&self.ticks),
            dead_letters: read(&self.dead_letters),
            connections: read(&self.connections),
            reconnects: read(&self.reconnects),
            sequence_gaps: read(&self.sequence_gaps),
            missed_messages: read(&self.missed_messages),
            rate_limited: read(&self.rate_limited),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The producer has gone away: the connector stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the producer channel is closed")]
pub struct Closed;

/// A connector's way out: its channel to the producer and its counters.
#[derive(Debug, Clone)]
pub struct Emitter {
    pub source: &'static str,
    tx: mpsc::Sender<Ingested>,
    pub stats: Arc<ConnectorStats>,
}

impl Emitter {
    pub fn new(source: &'static str, tx: mpsc::Sender<Ingested>) -> Self {
        Self {
            source,
            tx,
            stats: Arc::new(ConnectorStats::default()),
        }
    }

    pub async fn send(&self, message: Ingested) -> Result<(), Closed> {
        if matches!(message, Ingested::Tick(_)) {
            ConnectorStats::add(&self.stats.ticks, 1);
        }
        self.tx.send(message).await.map_err(|_| Closed)
    }

    pub async fn ticks(&self, ticks: Vec<Tick>) -> Result<(), Closed> {
        for tick in ticks {
            self.send(Ingested::Tick(tick)).await?;
        }
        Ok(())
    }

    /// Sends an unreadable message to the dead-letter topic, logged once here.
    pub async fn dead_letter(
        &self,
        topic: &'static str,
        raw: &[u8],
        reason: &ParseError,
        received_time: OffsetDateTime,
    ) -> Result<(), Closed> {
        ConnectorStats::add(&self.stats.dead_letters, 1);
        tracing::warn!(source = self.source, %reason, bytes = raw.len(), "message to the dead-letter topic");
        self.tx
            .send(Ingested::DeadLetter(DeadLetter {
                source: self.source,
                topic,
                reason: reason.to_string(),
                raw: raw.to_vec(),
                received_time,
            }))
            .await
            .map_err(|_| Closed)
    }
}

impl Emitter {
    /// For a page of which some entries did not read (the rest went out): the whole
    /// page to the dead-letter topic once, with every entry's reason. Nothing when all
    /// entries read.
    pub async fn partly_read(
        &self,
        topic: &'static str,
        raw: &[u8],
        problems: &[ParseError],
        received_time: OffsetDateTime,
    ) -> Result<(), Closed> {
        if problems.is_empty() {
            return Ok(());
        }
        let reasons: Vec<String> = problems.iter().map(ToString::to_string).collect();
        self.dead_letter(topic, raw, &ParseError(reasons.join("; ")), received_time)
            .await
    }
}

/// Exponential backoff with jitter: the n-th delay is drawn from [c/2, c] where
/// c = min(max, initial · 2ⁿ), so clients that lost the same server spread out.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// After a connection that worked: start again from the initial delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Reconnect timing shared by the connectors (configuration, in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct BackoffSettings {
    pub initial_ms: u64,
    pub max_ms: u64,
}

impl Default for BackoffSettings {
    fn default() -> Self {
        Self {
            initial_ms: 500,
            max_ms: 30_000,
        }
    }
}

impl BackoffSettings {
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_millis(self.initial_ms),
            Duration::from_millis(self.max_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<Duration> = (0..6).map(|_| backoff.next_delay()).collect();
        let ceilings = [100, 200, 400, 800, 1000, 1000];
        for (delay, ceiling) in delays.iter().zip(ceilings) {
            let ceiling = Duration::from_millis(ceiling);
            assert!(
                *delay >= ceiling / 2 && *delay <= ceiling,
                "{delay:?} not in [{:?}, {ceiling:?}]",
                ceiling / 2
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
