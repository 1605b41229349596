//! Coinbase Advanced Trade websocket messages (FEEDS.md), and `sequence_num` gaps.
//!
//! `market_trades` sides are read as the taker's side (what crossed the spread).

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{ParseError, Source, TICK_SCHEMA, TakerSide, Tick, TickKind, price, quantity, short};
use coinfold_domain::values::{CoinSymbol, QuoteCurrency};

#[derive(Debug, Clone, PartialEq)]
pub struct CoinbaseMessage {
    /// Numbers every message of one connection; a gap means messages were lost.
    pub sequence_num: Option<u64>,
    pub body: CoinbaseBody,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CoinbaseBody {
    Ticks(Vec<Tick>),
    Heartbeat { counter: u64 },
    Subscriptions,
    Error { message: String },
}

#[derive(Deserialize)]
struct Envelope {
    channel: String,
    timestamp: Option<String>,
    sequence_num: Option<u64>,
    #[serde(default)]
    events: Vec<Value>,
}

#[derive(Deserialize)]
struct TickerEvent {
    #[serde(default)]
    tickers: Vec<Ticker>,
}

#[derive(Deserialize)]
struct Ticker {
    product_id: String,
    price: String,
    volume_24_h: Option<String>,
}

#[derive(Deserialize)]
struct TradesEvent {
    #[serde(default)]
    trades: Vec<Trade>,
}

#[derive(Deserialize)]
struct Trade {
    trade_id: String,
    product_id: String,
    price: String,
    size: String,
    side: String,
    time: String,
}

fn time(field: &str, raw: &str) -> Result<OffsetDateTime, ParseError> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|_| ParseError::new(format!("{field}: {:?} is not an RFC 3339 time", short(raw))))
}

/// `BTC-USD` → (BTC, USD).
pub fn split_product(product: &str) -> Result<(CoinSymbol, QuoteCurrency), ParseError> {
    let (base, quote) = product.split_once('-').ok_or_else(|| {
        ParseError::new(format!("product {:?} is not BASE-QUOTE", short(product)))
    })?;
    Ok((
        CoinSymbol::parse(base).map_err(|e| ParseError::new(format!("product: {e}")))?,
        QuoteCurrency::parse(quote).map_err(|e| ParseError::new(format!("product: {e}")))?,
    ))
}

fn read<T: serde::de::DeserializeOwned>(what: &str, value: Value) -> Result<T, ParseError> {
    serde_json::from_value(value).map_err(|e| ParseError::new(format!("{what}: {e}")))
}

/// Reads one websocket text frame.
pub fn parse(raw: &[u8], received: OffsetDateTime) -> Result<CoinbaseMessage, ParseError> {
    let value: Value =
        serde_json::from_slice(raw).map_err(|e| ParseError::new(format!("not JSON: {e}")))?;
    if value.get("type").and_then(Value::as_str) == Some("error") {
        let message = value.get("message").and_then(Value::as_str).unwrap_or("");
        return Ok(CoinbaseMessage {
            sequence_num: None,
            body: CoinbaseBody::Error {
                message: short(message),
            },
        });
    }
    let envelope: Envelope = read("envelope", value)?;
    let body = match envelope.channel.as_str() {
        "ticker" | "ticker_batch" => {
            let at = time(
                "timestamp",
                envelope
                    .timestamp
                    .as_deref()
                    .ok_or_else(|| ParseError::new("ticker without timestamp"))?,
            )?;
            let mut ticks = Vec::new();
            for event in envelope.events {
                for ticker in read::<TickerEvent>("ticker event", event)?.tickers {
                    let (coin, quote) = split_product(&ticker.product_id)?;
                    ticks.push(Tick {
                        schema: TICK_SCHEMA,
                        source: Source::Coinbase,
                        kind: TickKind::Ticker,
                        coin,
                        quote,
                        price: price("price", &ticker.price)?,
                        size: None,
                        side: None,
                        trade_id: None,
                        volume_24h: ticker
                            .volume_24_h
                            .as_deref()
                            .map(|v| quantity("volume_24_h", v))
                            .transpose()?,
                        exchange_time: at,
                        received_time: received,
                    });
                }
            }
            CoinbaseBody::Ticks(ticks)
        }
        "market_trades" => {
            let mut ticks = Vec::new();
            for event in envelope.events {
                for trade in read::<TradesEvent>("market_trades event", event)?.trades {
                    let (coin, quote) = split_product(&trade.product_id)?;
                    let side = match trade.side.as_str() {
                        "BUY" => TakerSide::Buy,
                        "SELL" => TakerSide::Sell,
                        other => {
                            return Err(ParseError::new(format!(
                                "side {:?} is not BUY or SELL",
                                short(other)
                            )));
                        }
                    };
                    ticks.push(Tick {
                        schema: TICK_SCHEMA,
                        source: Source::Coinbase,
                        kind: TickKind::Trade,
                        coin,
                        quote,
                        price: price("price", &trade.price)?,
                        size: Some(quantity("size", &trade.size)?),
                        side: Some(side),
                        trade_id: Some(trade.trade_id),
                        volume_24h: None,
                        exchange_time: time("time", &trade.time)?,
                        received_time: received,
                    });
                }
            }
            CoinbaseBody::Ticks(ticks)
        }
        "heartbeats" => {
            // The counter arrives as a number or as a string.
            let counter = envelope
                .events
                .first()
                .and_then(|e| e.get("heartbeat_counter"))
                .and_then(|c| {
                    c.as_u64()
                        .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
                })
                .ok_or_else(|| ParseError::new("heartbeat without a counter"))?;
            CoinbaseBody::Heartbeat { counter }
        }
        "subscriptions" => CoinbaseBody::Subscriptions,
        other => {
            return Err(ParseError::new(format!(
                "unknown channel {:?}",
                short(other)
            )));
        }
    };
    Ok(CoinbaseMessage {
        sequence_num: envelope.sequence_num,
        body,
    })
}

/// Follows one connection's `sequence_num` and counts what went missing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SequenceTracker {
    last: Option<u64>,
    /// Gaps seen so far (each is one metric increment).
    pub gaps: u64,
    /// Messages lost in those gaps.
    pub missed: u64,
}

impl SequenceTracker {
    /// Records a sequence number; returns how many messages were skipped before it.
    /// A repeat or an older number (a replay) is not a gap.
    pub fn observe(&mut self, sequence: u64) -> Option<u64> {
        let gap = match self.last {
            Some(last) if sequence > last + 1 => Some(sequence - last - 1),
            _ => None,
        };
        if let Some(missing) = gap {
            self.gaps += 1;
            self.missed += missing;
        }
        self.last = Some(self.last.map_or(sequence, |last| last.max(sequence)));
        gap
    }

    /// A new connection numbers from scratch.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-04-07 14:30:11 UTC);

    #[test]
    fn tickers_and_trades() {
        let ticker = r#"{"channel":"ticker","client_id":"","timestamp":"2026-04-07T14:30:10.123Z","sequence_num":12,"events":[{"type":"snapshot","tickers":[{"type":"ticker","product_id":"BTC-USD","price":"68900.50","volume_24_h":"12345.6","low_24_h":"67000","high_24_h":"69500","low_52_w":"25000","high_52_w":"73000","price_percent_chg_24_h":"1.85","best_bid":"68900.00","best_bid_quantity":"0.5","best_ask":"68901.00","best_ask_quantity":"0.4"}]}]}"#;
        let message = parse(ticker.as_bytes(), NOW).unwrap();
        assert_eq!(message.sequence_num, Some(12));
        let CoinbaseBody::Ticks(ticks) = message.body else {
            panic!()
        };
        assert_eq!(ticks[0].price.to_string(), "68900.5");
        assert_eq!(ticks[0].volume_24h.unwrap().to_string(), "12345.6");
        assert_eq!(
            ticks[0].exchange_time,
            datetime!(2026-04-07 14:30:10.123 UTC)
        );

        let trades = r#"{"channel":"market_trades","client_id":"","timestamp":"2026-04-07T14:30:10.2Z","sequence_num":13,"events":[{"type":"update","trades":[{"trade_id":"995098700","product_id":"BTC-USD","price":"68900.50","size":"0.0015","side":"BUY","time":"2026-04-07T14:30:10.120Z"},{"trade_id":"995098701","product_id":"ETH-USD","price":"3500","size":"2","side":"SELL","time":"2026-04-07T14:30:10.121Z"}]}]}"#;
        let CoinbaseBody::Ticks(ticks) = parse(trades.as_bytes(), NOW).unwrap().body else {
            panic!()
        };
        assert_eq!(ticks.len(), 2);
        assert_eq!(ticks[1].dedupe_key(), "coinbase:ETH:995098701");
        assert_eq!(ticks[1].side, Some(TakerSide::Sell));
    }

    #[test]
    fn heartbeat_counters_come_as_numbers_or_strings() {
        for counter in ["42", "\"42\""] {
            let raw = format!(
                r#"{{"channel":"heartbeats","client_id":"","timestamp":"2026-04-07T14:30:10Z","sequence_num":1,"events":[{{"current_time":"2026-04-07 14:30:10.000000000+00:00","heartbeat_counter":{counter}}}]}}"#
            );
            assert_eq!(
                parse(raw.as_bytes(), NOW).unwrap().body,
                CoinbaseBody::Heartbeat { counter: 42 }
            );
        }
        let ack = r#"{"channel":"subscriptions","client_id":"","timestamp":"2026-04-07T14:30:10Z","sequence_num":0,"events":[{"subscriptions":{"market_trades":["BTC-USD"]}}]}"#;
        assert_eq!(
            parse(ack.as_bytes(), NOW).unwrap().body,
            CoinbaseBody::Subscriptions
        );
        let error = r#"{"type":"error","message":"failure to subscribe"}"#;
        assert!(matches!(
            parse(error.as_bytes(), NOW).unwrap().body,
            CoinbaseBody::Error { .. }
        ));
    }

    #[test]
    fn sequence_gaps_are_counted() {
        let mut tracker = SequenceTracker::default();
        assert_eq!(tracker.observe(1), None);
        assert_eq!(tracker.observe(2), None);
        assert_eq!(tracker.observe(5), Some(2));
        assert_eq!(tracker.observe(5), None);
        assert_eq!(tracker.observe(3), None);
        assert_eq!(tracker.observe(9), Some(3));
        assert_eq!((tracker.gaps, tracker.missed), (2, 5));
        tracker.reset();
        assert_eq!(tracker.observe(0), None);
    }

    #[test]
    fn malformed_messages_give_reasons() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"channel":"market_trades","events":[{"trades":[{"trade_id":"1","product_id":"BTC-USD","price":"1","size":"1","side":"BUY","time":"yesterday"}]}]}"#,
                "RFC 3339",
            ),
            (
                r#"{"channel":"market_trades","events":[{"trades":[{"trade_id":"1","product_id":"BTCUSD","price":"1","size":"1","side":"BUY","time":"2026-04-07T14:30:10Z"}]}]}"#,
                "BASE-QUOTE",
            ),
            (
                r#"{"channel":"market_trades","events":[{"trades":[{"trade_id":"1","product_id":"BTC-USD","price":"1","size":"1","side":"HOLD","time":"2026-04-07T14:30:10Z"}]}]}"#,
                "BUY or SELL",
            ),
            (
                r#"{"channel":"market_trades","events":[{"trades":[{"trade_id":1,"product_id":"BTC-USD"}]}]}"#,
                "market_trades event",
            ),
            (r#"{"channel":"ticker","events":[]}"#, "without timestamp"),
            (
                r#"{"channel":"ticker","timestamp":"2026-04-07T14:30:10Z","events":[{"tickers":[{"product_id":"BTC-USD","price":"NaN"}]}]}"#,
                "not a decimal",
            ),
            (
                r#"{"channel":"heartbeats","events":[{"heartbeat_counter":"many"}]}"#,
                "counter",
            ),
            (r#"{"channel":"level2","events":[]}"#, "unknown channel"),
            (r#"{"events":[]}"#, "envelope"),
            (r#"{"channel":"ticker","#, "not JSON"),
        ];
        for (raw, reason) in cases {
            let error = parse(raw.as_bytes(), NOW).expect_err(raw);
            assert!(error.0.contains(reason), "{raw}: {error}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_input_panics(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse(&raw, NOW);
        }
    }
}
