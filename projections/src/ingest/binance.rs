//! Binance spot websocket messages, single or combined streams (FEEDS.md).

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::{
    BINANCE_QUOTES, ParseError, Source, TICK_SCHEMA, TakerSide, Tick, TickKind, millis, price,
    quantity, short, split_concatenated_pair,
};

#[derive(Debug, Clone, PartialEq)]
pub enum BinanceMessage {
    Ticks(Vec<Tick>),
    /// The answer to a SUBSCRIBE/UNSUBSCRIBE request.
    SubscriptionResult {
        id: i64,
    },
    /// The server announces a restart: reconnect.
    ServerShutdown,
    /// The server refused a request.
    Error {
        code: i64,
        message: String,
    },
}

/// An aggTrade (`a`: aggregate trade id) or a trade (`t`: trade id); the rest is alike.
#[derive(Deserialize)]
struct TradeEvent {
    #[serde(rename = "s")]
    symbol: String,
    #[serde(rename = "a", alias = "t")]
    id: u64,
    #[serde(rename = "p")]
    price: String,
    #[serde(rename = "q")]
    quantity: String,
    #[serde(rename = "T")]
    trade_time: i64,
    #[serde(rename = "m")]
    buyer_is_maker: bool,
}

#[derive(Deserialize)]
struct Kline {
    #[serde(rename = "E")]
    event_time: i64,
    #[serde(rename = "s")]
    symbol: String,
    #[serde(rename = "k")]
    candle: Candle,
}

#[derive(Deserialize)]
struct Candle {
    #[serde(rename = "c")]
    close: String,
    #[serde(rename = "v")]
    volume: String,
}

#[derive(Deserialize)]
struct MiniTicker {
    #[serde(rename = "E")]
    event_time: i64,
    #[serde(rename = "s")]
    symbol: String,
    #[serde(rename = "c")]
    close: String,
    #[serde(rename = "v")]
    volume: String,
}

fn read<T: serde::de::DeserializeOwned>(kind: &str, data: Value) -> Result<T, ParseError> {
    serde_json::from_value(data).map_err(|e| ParseError::new(format!("{kind}: {e}")))
}

/// The taker's side: when the buyer is the maker, the seller took.
fn taker(buyer_is_maker: bool) -> TakerSide {
    if buyer_is_maker {
        TakerSide::Sell
    } else {
        TakerSide::Buy
    }
}

/// Reads one websocket text frame.
pub fn parse(raw: &[u8], received: OffsetDateTime) -> Result<BinanceMessage, ParseError> {
    let value: Value =
        serde_json::from_slice(raw).map_err(|e| ParseError::new(format!("not JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(ParseError::new("not a JSON object"));
    };
    if let Some(error) = object.get("error") {
        return Ok(BinanceMessage::Error {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: short(error.get("msg").and_then(Value::as_str).unwrap_or("")),
        });
    }
    if object.contains_key("result") {
        let id = object
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| ParseError::new("subscription answer without a numeric id"))?;
        return Ok(BinanceMessage::SubscriptionResult { id });
    }
    // Combined streams wrap every event as {"stream": …, "data": {…}}.
    let data = match object.remove("data") {
        Some(data) if object.contains_key("stream") => data,
        Some(_) => return Err(ParseError::new("`data` without `stream`")),
        None => Value::Object(object),
    };
    let event = data
        .get("e")
        .and_then(Value::as_str)
        .ok_or_else(|| ParseError::new("no event type `e`"))?
        .to_owned();
    let tick =
        |symbol: &str, kind, price_text: &str, size: Option<&str>, side, trade_id, time: i64| {
            let (coin, quote) = split_concatenated_pair(symbol, BINANCE_QUOTES)?;
            Ok::<_, ParseError>(Tick {
                schema: TICK_SCHEMA,
                source: Source::Binance,
                kind,
                coin,
                quote,
                price: price("p", price_text)?,
                size: size.map(|s| quantity("q", s)).transpose()?,
                side,
                trade_id,
                volume_24h: None,
                exchange_time: millis("T", time)?,
                received_time: received,
            })
        };
    let ticks = match event.as_str() {
        "aggTrade" | "trade" => {
            let t: TradeEvent = read(&event, data)?;
            // Aggregate ids and trade ids are separate sequences.
            let id = if event == "aggTrade" {
                format!("agg-{}", t.id)
            } else {
                t.id.to_string()
            };
            vec![tick(
                &t.symbol,
                TickKind::Trade,
                &t.price,
                Some(&t.quantity),
                Some(taker(t.buyer_is_maker)),
                Some(id),
                t.trade_time,
            )?]
        }
        "kline" => {
            let k: Kline = read("kline", data)?;
            vec![tick(
                &k.symbol,
                TickKind::Candle,
                &k.candle.close,
                Some(&k.candle.volume),
                None,
                None,
                k.event_time,
            )?]
        }
        "24hrMiniTicker" => {
            let m: MiniTicker = read("24hrMiniTicker", data)?;
            let mut t = tick(
                &m.symbol,
                TickKind::Ticker,
                &m.close,
                None,
                None,
                None,
                m.event_time,
            )?;
            t.volume_24h = Some(quantity("v", &m.volume)?);
            vec![t]
        }
        "serverShutdown" => return Ok(BinanceMessage::ServerShutdown),
        other => {
            return Err(ParseError::new(format!(
                "unknown event type {:?}",
                short(other)
            )));
        }
    };
    Ok(BinanceMessage::Ticks(ticks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-04-07 14:30 UTC);

    fn ticks(raw: &str) -> Vec<Tick> {
        match parse(raw.as_bytes(), NOW).unwrap() {
            BinanceMessage::Ticks(ticks) => ticks,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn agg_trades_from_a_combined_stream() {
        let raw = r#"{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}"#;
        let t = &ticks(raw)[0];
        assert_eq!((t.coin.as_str(), t.quote.as_str()), ("NKN", "USDT"));
        assert_eq!(t.price.to_string(), "0.3528");
        assert_eq!(t.size.unwrap().to_string(), "58");
        assert_eq!(t.side, Some(TakerSide::Buy));
        assert_eq!(t.trade_id.as_deref(), Some("agg-15683430"));
        assert_eq!(t.exchange_time, datetime!(2021-10-12 00:28:43.963 UTC));
        assert_eq!(t.received_time, NOW);
        assert_eq!(t.dedupe_key(), "binance:NKN:agg-15683430");
    }

    #[test]
    fn trades_klines_and_mini_tickers() {
        let trade = r#"{"e":"trade","E":1,"s":"BTCUSDT","t":12345,"p":"68900.50","q":"0.001","T":1712500210120,"m":true}"#;
        let t = &ticks(trade)[0];
        assert_eq!(
            (t.side, t.trade_id.as_deref()),
            (Some(TakerSide::Sell), Some("12345"))
        );

        let kline = r#"{"e":"kline","E":1712500210000,"s":"BNBBTC","k":{"t":1,"T":2,"s":"BNBBTC","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","n":100,"x":false,"q":"1.0000","V":"500","Q":"0.500","B":"0"}}"#;
        let k = &ticks(kline)[0];
        assert_eq!(
            (k.kind, k.price.to_string(), k.quote.as_str()),
            (TickKind::Candle, "0.002".into(), "BTC")
        );

        let mini = r#"{"e":"24hrMiniTicker","E":1712500210000,"s":"BNBBTC","c":"0.0025","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18"}"#;
        let m = &ticks(mini)[0];
        assert_eq!(
            (m.kind, m.volume_24h.unwrap().to_string()),
            (TickKind::Ticker, "10000".into())
        );
    }

    #[test]
    fn control_messages() {
        assert_eq!(
            parse(br#"{"result":null,"id":1}"#, NOW),
            Ok(BinanceMessage::SubscriptionResult { id: 1 })
        );
        assert_eq!(
            parse(br#"{"e":"serverShutdown","E":1}"#, NOW),
            Ok(BinanceMessage::ServerShutdown)
        );
        assert!(matches!(
            parse(
                br#"{"error":{"code":2,"msg":"Invalid request"},"id":3}"#,
                NOW
            ),
            Ok(BinanceMessage::Error { code: 2, .. })
        ));
    }

    /// The malformed corpus: each comes back as a reason, none panics.
    #[test]
    fn malformed_messages_give_reasons() {
        let cases: &[(&[u8], &str)] = &[
            (br#"{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"1"#, "not JSON"),
            (b"[]", "not a JSON object"),
            (b"\xff\xfe{}", "not JSON"),
            (br#"{"e":"aggTrade","s":"BTCUSDT","a":1,"p":1.5,"q":"1","T":1,"m":false}"#, "aggTrade"),
            (br#"{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"NaN","q":"1","T":1,"m":false}"#, "not a decimal"),
            (br#"{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"1e40","q":"1","T":1,"m":false}"#, "p:"),
            (br#"{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"-3","q":"1","T":1,"m":false}"#, "negative"),
            (br#"{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"3","q":"1","T":99999999999999999,"m":false}"#, "out of range"),
            (br#"{"e":"aggTrade","s":"BTCXYZ","a":1,"p":"3","q":"1","T":1,"m":false}"#, "no known quote"),
            (br#"{"e":"depthUpdate"}"#, "unknown event type"),
            (br#"{"E":1}"#, "no event type"),
            (br#"{"data":{"e":"trade"}}"#, "without `stream`"),
            (br#"{"result":null}"#, "numeric id"),
            (b"", "not JSON"),
        ];
        for (raw, reason) in cases {
            let error = parse(raw, NOW).expect_err(&String::from_utf8_lossy(raw));
            assert!(
                error.0.contains(reason),
                "{:?}: {error}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn no_input_panics(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse(&raw, NOW);
        }

        #[test]
        fn no_json_shaped_input_panics(p in "\\PC{0,30}", q in "\\PC{0,30}", t in proptest::num::i64::ANY, s in "[A-Z]{0,12}") {
            let raw = serde_json::json!({"e": "aggTrade", "s": s, "a": 1, "p": p, "q": q, "T": t, "m": false}).to_string();
            let _ = parse(raw.as_bytes(), NOW);
        }
    }
}
