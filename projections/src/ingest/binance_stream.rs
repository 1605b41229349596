//! The Binance connector: one combined-stream socket for every configured pair.
//!
//! The streams go in the URL (`/stream?streams=btcusdt@aggTrade/…`), so a reconnect
//! needs no subscribe message. `serverShutdown` closes the socket and opens a new one
//! at once; pings are answered by the websocket loop.

use serde::Deserialize;
use time::OffsetDateTime;

use super::ParseError;
use super::binance::{self, BinanceMessage};
use super::connector::ConnectorStats;
use super::websocket::{Flow, Handled, Protocol, WebsocketSettings};

/// Binance allows at most this many streams on one connection.
pub const MAX_STREAMS: usize = 1_024;

/// `[ingest.binance]` in the configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BinanceSettings {
    /// `wss://stream.binance.com:9443`, or a replay server.
    pub endpoint: String,
    /// Lower-case pairs: `btcusdt`.
    pub pairs: Vec<String>,
    /// Stream kinds per pair: `aggTrade`, `trade`, `kline_1m`, `miniTicker`.
    pub streams: Vec<String>,
    #[serde(default)]
    pub websocket: WebsocketSettings,
}

impl BinanceSettings {
    /// The combined-stream URL, or why there is none.
    pub fn url(&self) -> Result<String, String> {
        let names: Vec<String> = self
            .pairs
            .iter()
            .flat_map(|pair| {
                self.streams
                    .iter()
                    .map(move |kind| format!("{}@{kind}", pair.to_ascii_lowercase()))
            })
            .collect();
        if names.is_empty() {
            return Err("ingest.binance needs at least one pair and one stream".to_owned());
        }
        if names.len() > MAX_STREAMS {
            return Err(format!(
                "ingest.binance asks for {} streams; one connection takes at most {MAX_STREAMS}",
                names.len()
            ));
        }
        if let Some(bad) = names.iter().find(|n| {
            !n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '@' || c == '_')
        }) {
            return Err(format!(
                "ingest.binance stream {bad:?} is not a stream name"
            ));
        }
        Ok(format!(
            "{}/stream?streams={}",
            self.endpoint.trim_end_matches('/'),
            names.join("/")
        ))
    }
}

/// The Binance side of the websocket loop.
#[derive(Debug, Clone)]
pub struct Binance {
    url: String,
}

impl Binance {
    /// A connector for a full combined-stream URL (see [`BinanceSettings::url`]).
    pub fn new(url: String) -> Self {
        Self { url }
    }
}

impl Protocol for Binance {
    fn url(&self) -> &str {
        &self.url
    }

    fn on_open(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn on_text(
        &mut self,
        raw: &[u8],
        received: OffsetDateTime,
        _stats: &ConnectorStats,
    ) -> Result<Handled, ParseError> {
        Ok(match binance::parse(raw, received)? {
            BinanceMessage::Ticks(ticks) => Handled::ticks(ticks),
            BinanceMessage::SubscriptionResult { .. } => Handled::nothing(),
            BinanceMessage::ServerShutdown => Handled {
                out: Vec::new(),
                flow: Flow::Reconnect("the server announced a shutdown"),
            },
            BinanceMessage::Error { code, message } => {
                tracing::warn!(code, %message, "binance refused a request");
                Handled::nothing()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[&str], streams: &[&str]) -> BinanceSettings {
        BinanceSettings {
            endpoint: "wss://stream.binance.com:9443/".into(),
            pairs: pairs.iter().map(|s| s.to_string()).collect(),
            streams: streams.iter().map(|s| s.to_string()).collect(),
            websocket: WebsocketSettings::default(),
        }
    }

    #[test]
    fn the_url_names_every_stream_of_every_pair() {
        assert_eq!(
            settings(&["BTCUSDT", "ethusdt"], &["aggTrade", "kline_1m"]).url(),
            Ok("wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade/btcusdt@kline_1m/ethusdt@aggTrade/ethusdt@kline_1m".to_owned())
        );
        assert!(settings(&[], &["aggTrade"]).url().is_err());
        assert!(settings(&["btc usdt"], &["aggTrade"]).url().is_err());
        let many: Vec<String> = (0..600).map(|i| format!("c{i}usdt")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(
            settings(&many, &["aggTrade", "kline_1m"])
                .url()
                .unwrap_err()
                .contains("1024")
        );
    }
}
