//! The Coinbase connector: one Advanced Trade socket, one subscribe message per channel.
//!
//! `heartbeats` is always subscribed, because Coinbase closes a channel that has had no
//! update for 60–90 s. Every message of a connection carries the next `sequence_num`;
//! a jump is counted in the `sequence_gaps`/`missed_messages` metrics and logged, and
//! the count starts over with each connection.

use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::ParseError;
use super::coinbase::{self, CoinbaseBody, SequenceTracker};
use super::connector::ConnectorStats;
use super::websocket::{Handled, Protocol, WebsocketSettings};

/// `[ingest.coinbase]` in the configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CoinbaseSettings {
    /// `wss://advanced-trade-ws.coinbase.com`, or a replay server.
    pub endpoint: String,
    /// `BTC-USD`, …
    pub product_ids: Vec<String>,
    /// `market_trades`, `ticker`; `heartbeats` is added if missing.
    pub channels: Vec<String>,
    #[serde(default)]
    pub websocket: WebsocketSettings,
}

/// The Coinbase side of the websocket loop.
#[derive(Debug, Clone)]
pub struct Coinbase {
    url: String,
    product_ids: Vec<String>,
    channels: Vec<String>,
    sequence: SequenceTracker,
}

impl Coinbase {
    pub fn new(settings: &CoinbaseSettings) -> Result<Self, String> {
        if settings.product_ids.is_empty() {
            return Err("ingest.coinbase needs at least one product id".to_owned());
        }
        for product in &settings.product_ids {
            coinbase::split_product(product)
                .map_err(|e| format!("ingest.coinbase product {product:?}: {e}"))?;
        }
        let mut channels = settings.channels.clone();
        if !channels.iter().any(|c| c == "heartbeats") {
            channels.push("heartbeats".to_owned());
        }
        Ok(Self {
            url: settings.endpoint.clone(),
            product_ids: settings.product_ids.clone(),
            channels,
            sequence: SequenceTracker::default(),
        })
    }
}

impl Protocol for Coinbase {
    fn url(&self) -> &str {
        &self.url
    }

    fn on_open(&mut self) -> Vec<String> {
        self.sequence.reset();
        self.channels
            .iter()
            .map(|channel| {
                json!({"type": "subscribe", "product_ids": self.product_ids, "channel": channel})
                    .to_string()
            })
            .collect()
    }

    fn on_text(
        &mut self,
        raw: &[u8],
        received: OffsetDateTime,
        stats: &ConnectorStats,
    ) -> Result<Handled, ParseError> {
        let message = coinbase::parse(raw, received)?;
        if let Some(sequence) = message.sequence_num
            && let Some(missed) = self.sequence.observe(sequence)
        {
            ConnectorStats::add(&stats.sequence_gaps, 1);
            ConnectorStats::add(&stats.missed_messages, missed);
            tracing::warn!(
                sequence,
                missed,
                "coinbase sequence gap: messages were lost"
            );
        }
        Ok(match message.body {
            CoinbaseBody::Ticks(ticks) => Handled::ticks(ticks),
            CoinbaseBody::Heartbeat { .. } | CoinbaseBody::Subscriptions => Handled::nothing(),
            CoinbaseBody::Error { message } => {
                tracing::warn!(%message, "coinbase sent an error");
                Handled::nothing()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_subscribes_to_each_channel_with_heartbeats_and_counts_gaps() {
        let mut coinbase = Coinbase::new(&CoinbaseSettings {
            endpoint: "wss://advanced-trade-ws.coinbase.com".into(),
            product_ids: vec!["BTC-USD".into()],
            channels: vec!["market_trades".into()],
            websocket: WebsocketSettings::default(),
        })
        .unwrap();
        let sent = coinbase.on_open();
        assert_eq!(sent.len(), 2);
        assert!(sent[1].contains(r#""channel":"heartbeats""#));
        let stats = ConnectorStats::default();
        let now = OffsetDateTime::now_utc();
        let heartbeat = |n: u64| {
            format!(
                r#"{{"channel":"heartbeats","client_id":"","timestamp":"2026-04-07T14:30:10Z","sequence_num":{n},"events":[{{"current_time":"x","heartbeat_counter":"{n}"}}]}}"#
            )
        };
        for n in [0, 1, 4, 5] {
            coinbase
                .on_text(heartbeat(n).as_bytes(), now, &stats)
                .unwrap();
        }
        assert_eq!(stats.snapshot().sequence_gaps, 1);
        assert_eq!(stats.snapshot().missed_messages, 2);
        coinbase.on_open();
        coinbase
            .on_text(heartbeat(0).as_bytes(), now, &stats)
            .unwrap();
        assert_eq!(
            stats.snapshot().sequence_gaps,
            1,
            "a new connection starts over"
        );
        assert!(
            Coinbase::new(&CoinbaseSettings {
                endpoint: String::new(),
                product_ids: vec!["BTCUSD".into()],
                channels: vec![],
                websocket: WebsocketSettings::default(),
            })
            .is_err()
        );
    }
}
