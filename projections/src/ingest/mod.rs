//! Market and news ingest: turning what exchanges and newsrooms send into coinfold's
//! messages on the topics.
//!
//! Every parser here is pure (bytes in, messages or a reason out) and total: no input
//! makes it panic, and a message it cannot read comes back as a [`ParseError`] whose
//! reason goes to `coinfold.dead-letter` with the raw bytes. The connectors own the
//! sockets and poll loops and send what they read down a channel to the producer.
//!
//! Parsers:
//! - [`Tick`]: the one normalized shape of a trade or a price from any source.
//! - [`binance`]: combined-stream messages (aggTrade, trade, kline, 24hrMiniTicker,
//!   serverShutdown, subscription answers).
//! - [`coinbase`]: Advanced Trade channels (ticker, market_trades, heartbeats,
//!   subscriptions) and `sequence_num` gap counting.
//! - [`coingecko`]: `/simple/price` prices and `/coins/markets` coin metadata.
//! - [`news`]: RSS/Atom (feed-rs) and NewsAPI articles, URL hashes, coin tagging.
//!
//! Connectors ([`connector`] has what they share: messages, counters, backoff):
//! - [`websocket`]: the reconnecting socket loop, with [`binance_stream`] and
//!   [`coinbase_stream`] as its two protocols;
//! - [`coingecko_poller`] and [`news_poller`]: HTTP polls that back off on 429.
//!
//! Out: [`producer`] (idempotent, zstd, ticks keyed by coin, dead letters keyed by the
//! topic they were meant for); [`run`] wires a [`run::Plan`] of connectors, the producer
//! and the sentiment worker into the `coinfold ingest` role.
//!
//! Recordings: [`replay`] (the JSON-lines format), [`replay_server`] (plays a file as
//! the exchange would, and survives being killed and restarted), [`replay_pass`] (each
//! pass of a looping playback: times moved to now, ids forward, prices continued),
//! [`synth`] (the model that made the shipped files in `recordings/`), [`history`]
//! (the same model run backwards: the demo's 90 days of market history).

pub mod binance;
pub mod binance_stream;
pub mod coinbase;
pub mod coinbase_stream;
pub mod coingecko;
pub mod coingecko_poller;
pub mod connector;
pub mod history;
mod http;
pub mod news;
pub mod news_poller;
pub mod producer;
pub mod replay;
pub mod replay_pass;
pub mod replay_server;
pub mod run;
pub mod synth;
pub mod websocket;

use std::fmt;
use std::str::FromStr;

use coinfold_domain::values::{CoinSymbol, Price, Quantity, QuoteCurrency};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Version of the [`Tick`] message on `coinfold.market.ticks`.
pub const TICK_SCHEMA: u32 = 1;
/// Version of the coin metadata message on `coinfold.market.coins`.
pub const COIN_SCHEMA: u32 = 1;

/// The topics ingest writes (each deployment or test puts its prefix in front).
pub const TICKS_TOPIC: &str = "coinfold.market.ticks";
pub const COINS_TOPIC: &str = "coinfold.market.coins";
pub const ARTICLES_TOPIC: &str = "coinfold.news.articles";
pub const SENTIMENT_TOPIC: &str = "coinfold.news.sentiment";
pub const DEAD_LETTER_TOPIC: &str = "coinfold.dead-letter";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Binance,
    Coinbase,
    Coingecko,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Binance => "binance",
            Source::Coinbase => "coinbase",
            Source::Coingecko => "coingecko",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TickKind {
    /// One executed trade (has a size, usually a side and a trade id).
    Trade,
    /// A last price from a ticker or a price API.
    Ticker,
    /// The close of a candle so far, from a kline stream (size: its volume so far).
    Candle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TakerSide {
    Buy,
    Sell,
}

/// A trade or a price, whatever its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    pub schema: u32,
    pub source: Source,
    pub kind: TickKind,
    pub coin: CoinSymbol,
    pub quote: QuoteCurrency,
    pub price: Price,
    pub size: Option<Quantity>,
    /// The aggressor's side, where the source says.
    pub side: Option<TakerSide>,
    pub trade_id: Option<String>,
    /// 24 h volume in the coin, where a ticker carries it.
    pub volume_24h: Option<Quantity>,
    #[serde(with = "time::serde::rfc3339")]
    pub exchange_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub received_time: OffsetDateTime,
}

impl Tick {
    /// What projections use to drop a tick they have seen: a trade is known by its
    /// source and trade id; a price by its source, pair and exchange time.
    pub fn dedupe_key(&self) -> String {
        match &self.trade_id {
            Some(id) => format!("{}:{}:{}", self.source, self.coin, id),
            None => format!(
                "{}:{}-{}:{:?}:{}",
                self.source,
                self.coin,
                self.quote,
                self.kind,
                self.exchange_time.unix_timestamp_nanos()
            ),
        }
    }
}

/// Why a message could not be read. The reason is short, names the field, and never
/// repeats the whole input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// A decimal from an exchange's string (`"0.35280000"`) or JSON number, checked as a
/// price: finite, not negative, at most 18 places, not absurdly large.
pub(crate) fn price(field: &str, raw: &str) -> Result<Price, ParseError> {
    Price::new(decimal(field, raw)?).map_err(|e| ParseError::new(format!("{field}: {e}")))
}

pub(crate) fn quantity(field: &str, raw: &str) -> Result<Quantity, ParseError> {
    Quantity::new(decimal(field, raw)?).map_err(|e| ParseError::new(format!("{field}: {e}")))
}

pub(crate) fn decimal(field: &str, raw: &str) -> Result<Decimal, ParseError> {
    let raw = raw.trim();
    let parsed = if raw.contains(['e', 'E']) {
        Decimal::from_scientific(raw)
    } else {
        Decimal::from_str(raw)
    };
    parsed
        .map_err(|_| ParseError::new(format!("{field}: {:?} is not a decimal number", short(raw))))
}

/// Milliseconds since the epoch, as Binance sends them.
pub(crate) fn millis(field: &str, ms: i64) -> Result<OffsetDateTime, ParseError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| ParseError::new(format!("{field}: {ms} ms is out of range")))
}

/// At most 40 characters of untrusted input, for a reason.
pub(crate) fn short(raw: &str) -> String {
    let mut text: String = raw.chars().take(40).collect();
    if raw.chars().count() > 40 {
        text.push('…');
    }
    text
}

/// Splits an exchange pair such as `BTCUSDT` by the longest known quote suffix.
pub fn split_concatenated_pair(
    pair: &str,
    quotes: &[&str],
) -> Result<(CoinSymbol, QuoteCurrency), ParseError> {
    let upper = pair.to_ascii_uppercase();
    let quote = quotes
        .iter()
        .filter(|q| upper.len() > q.len() && upper.ends_with(*q))
        .max_by_key(|q| q.len())
        .ok_or_else(|| {
            ParseError::new(format!(
                "pair {:?} has no known quote currency",
                short(pair)
            ))
        })?;
    let base = &upper[..upper.len() - quote.len()];
    let coin = CoinSymbol::parse(base).map_err(|e| ParseError::new(format!("pair: {e}")))?;
    let quote = QuoteCurrency::parse(quote).map_err(|e| ParseError::new(format!("pair: {e}")))?;
    Ok((coin, quote))
}

/// Quote currencies Binance pairs end with, longest matched first.
pub const BINANCE_QUOTES: &[&str] = &[
    "USDT", "USDC", "FDUSD", "TUSD", "BUSD", "DAI", "BTC", "ETH", "BNB", "EUR", "GBP", "TRY",
    "BRL", "JPY", "USD",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_on_the_longest_known_quote() {
        let split = |p| {
            split_concatenated_pair(p, BINANCE_QUOTES).map(|(c, q)| (c.to_string(), q.to_string()))
        };
        assert_eq!(split("BTCUSDT"), Ok(("BTC".into(), "USDT".into())));
        assert_eq!(split("ethbtc"), Ok(("ETH".into(), "BTC".into())));
        assert_eq!(split("BNBFDUSD"), Ok(("BNB".into(), "FDUSD".into())));
        assert!(split("USDT").is_err());
        assert!(split("XYZ123").is_err());
    }

    #[test]
    fn decimals_accept_exchange_forms_and_refuse_the_rest() {
        assert_eq!(
            decimal("p", "0.35280000").unwrap().to_string(),
            "0.35280000"
        );
        assert_eq!(decimal("p", "1.5e-5").unwrap().to_string(), "0.000015");
        for bad in [
            "NaN",
            "",
            "1,5",
            "inf",
            "0x10",
            "99999999999999999999999999999999999",
        ] {
            assert!(decimal("p", bad).is_err(), "{bad}");
        }
        assert!(price("p", "-1").is_err());
        assert!(quantity("q", "0.0000000000000000001").is_err());
    }
}
