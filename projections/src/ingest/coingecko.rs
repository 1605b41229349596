//! CoinGecko REST answers (FEEDS.md): `/simple/price` becomes ticks, `/coins/markets`
//! becomes coin metadata. Numbers are JSON numbers here (floats upstream), read into
//! `Decimal` through their shortest text form; most can be null.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{ParseError, Source, TICK_SCHEMA, Tick, TickKind, decimal, price, short};
use coinfold_domain::values::{CoinId, CoinSymbol, QuoteCurrency};

fn number(field: &str, value: &Value) -> Result<Option<Decimal>, ParseError> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => decimal(field, &n.to_string()).map(Some),
        other => Err(ParseError::new(format!(
            "{field}: expected a number, got {}",
            kind(other)
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `/simple/price?ids=…&vs_currencies=…&include_last_updated_at=true` → one ticker tick
/// per coin and currency. `coins` maps the ids asked for to their symbols; ids not
/// asked for are passed over, and so are null prices.
pub fn parse_simple_price(
    raw: &[u8],
    received: OffsetDateTime,
    coins: &BTreeMap<CoinId, CoinSymbol>,
    currencies: &[QuoteCurrency],
) -> Result<Vec<Tick>, ParseError> {
    let value: Value =
        serde_json::from_slice(raw).map_err(|e| ParseError::new(format!("not JSON: {e}")))?;
    let Value::Object(by_id) = value else {
        return Err(ParseError::new("not a JSON object"));
    };
    let mut ticks = Vec::new();
    for (id, quotes) in &by_id {
        let Ok(coin_id) = CoinId::parse(id) else {
            return Err(ParseError::new(format!(
                "coin id {:?} is not valid",
                short(id)
            )));
        };
        let Some(symbol) = coins.get(&coin_id) else {
            continue;
        };
        let Value::Object(quotes) = quotes else {
            return Err(ParseError::new(format!(
                "{id}: expected an object, got {}",
                kind(quotes)
            )));
        };
        let updated = match quotes.get("last_updated_at") {
            Some(Value::Number(n)) => n
                .as_i64()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .ok_or_else(|| ParseError::new(format!("{id}.last_updated_at is out of range")))?,
            Some(Value::Null) | None => received,
            Some(other) => {
                return Err(ParseError::new(format!(
                    "{id}.last_updated_at: expected a number, got {}",
                    kind(other)
                )));
            }
        };
        for currency in currencies {
            let key = currency.as_str().to_ascii_lowercase();
            let Some(value) = quotes.get(&key) else {
                continue;
            };
            let Some(amount) = number(&format!("{id}.{key}"), value)? else {
                continue;
            };
            ticks.push(Tick {
                schema: TICK_SCHEMA,
                source: Source::Coingecko,
                kind: TickKind::Ticker,
                coin: symbol.clone(),
                quote: currency.clone(),
                price: price(&format!("{id}.{key}"), &amount.to_string())?,
                size: None,
                side: None,
                trade_id: None,
                volume_24h: None,
                exchange_time: updated,
                received_time: received,
            });
        }
    }
    Ok(ticks)
}

/// One coin's metadata from `/coins/markets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoinMarket {
    pub id: CoinId,
    pub symbol: CoinSymbol,
    pub name: String,
    pub rank: Option<u32>,
    pub current_price: Option<Decimal>,
    pub market_cap: Option<Decimal>,
    pub total_volume: Option<Decimal>,
    pub price_change_percentage_24h: Option<Decimal>,
    pub circulating_supply: Option<Decimal>,
    pub total_supply: Option<Decimal>,
    pub max_supply: Option<Decimal>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_updated: Option<OffsetDateTime>,
}

/// A `/coins/markets` page: the coins that read, and a reason for each that did not
/// (one bad entry does not cost the page).
pub fn parse_markets(raw: &[u8]) -> Result<(Vec<CoinMarket>, Vec<ParseError>), ParseError> {
    let value: Value =
        serde_json::from_slice(raw).map_err(|e| ParseError::new(format!("not JSON: {e}")))?;
    let Value::Array(entries) = value else {
        return Err(ParseError::new(format!(
            "expected an array, got {}",
            kind(&value)
        )));
    };
    let mut coins = Vec::with_capacity(entries.len());
    let mut problems = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        match market(entry) {
            Ok(coin) => coins.push(coin),
            Err(e) => problems.push(ParseError::new(format!("entry {index}: {e}"))),
        }
    }
    Ok((coins, problems))
}

fn market(entry: &Value) -> Result<CoinMarket, ParseError> {
    let text = |field: &str| {
        entry
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| ParseError::new(format!("{field} is missing or not a string")))
    };
    let num = |field: &str| number(field, entry.get(field).unwrap_or(&Value::Null));
    let id = CoinId::parse(text("id")?).map_err(|e| ParseError::new(e.to_string()))?;
    let symbol = CoinSymbol::parse(text("symbol")?).map_err(|e| ParseError::new(e.to_string()))?;
    let name = text("name")?.chars().take(100).collect();
    let rank = match entry.get("market_cap_rank") {
        Some(Value::Number(n)) => n.as_u64().and_then(|r| u32::try_from(r).ok()),
        _ => None,
    };
    let last_updated = match entry.get("last_updated").and_then(Value::as_str) {
        Some(t) => Some(OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
            ParseError::new(format!("last_updated {:?} is not RFC 3339", short(t)))
        })?),
        None => None,
    };
    Ok(CoinMarket {
        id,
        symbol,
        name,
        rank,
        current_price: num("current_price")?,
        market_cap: num("market_cap")?,
        total_volume: num("total_volume")?,
        price_change_percentage_24h: num("price_change_percentage_24h")?,
        circulating_supply: num("circulating_supply")?,
        total_supply: num("total_supply")?,
        max_supply: num("max_supply")?,
        last_updated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-04-07 14:30 UTC);

    fn coins() -> BTreeMap<CoinId, CoinSymbol> {
        [("bitcoin", "BTC"), ("ethereum", "ETH")]
            .into_iter()
            .map(|(id, s)| (CoinId::parse(id).unwrap(), CoinSymbol::parse(s).unwrap()))
            .collect()
    }

    fn currencies() -> Vec<QuoteCurrency> {
        vec![QuoteCurrency::usd(), QuoteCurrency::parse("EUR").unwrap()]
    }

    #[test]
    fn simple_price_gives_a_tick_per_coin_and_currency() {
        let raw = br#"{"bitcoin":{"usd":68900.5,"usd_market_cap":1.35e12,"usd_24h_vol":2.1e10,"usd_24h_change":1.85,"eur":63500.25,"last_updated_at":1711356300},"ethereum":{"usd":3500,"eur":null,"last_updated_at":1711356301},"dogecoin":{"usd":0.1}}"#;
        let ticks = parse_simple_price(raw, NOW, &coins(), &currencies()).unwrap();
        let summary: Vec<(String, String, String)> = ticks
            .iter()
            .map(|t| (t.coin.to_string(), t.quote.to_string(), t.price.to_string()))
            .collect();
        assert_eq!(
            summary,
            [
                ("BTC".into(), "USD".into(), "68900.5".into()),
                ("BTC".into(), "EUR".into(), "63500.25".into()),
                ("ETH".into(), "USD".into(), "3500".into()),
            ]
        );
        assert_eq!(ticks[0].exchange_time, datetime!(2024-03-25 08:45 UTC));
    }

    #[test]
    fn markets_read_with_nulls_and_bad_entries_apart() {
        let raw = br#"[
          {"id":"bitcoin","symbol":"btc","name":"Bitcoin","image":"x","current_price":68900.5,"market_cap":1350000000000,"market_cap_rank":1,"fully_diluted_valuation":null,"total_volume":21000000000,"high_24h":69500,"low_24h":67000,"price_change_24h":1250.5,"price_change_percentage_24h":1.85,"market_cap_change_24h":null,"market_cap_change_percentage_24h":null,"circulating_supply":19650000,"total_supply":21000000,"max_supply":21000000,"ath":73000,"ath_change_percentage":-5.6,"ath_date":"2024-03-14T07:10:36.635Z","atl":67.81,"atl_change_percentage":101500,"atl_date":"2013-07-06T00:00:00.000Z","roi":null,"last_updated":"2026-04-07T14:29:55.000Z"},
          {"id":"shiba-inu","symbol":"shib","name":"Shiba Inu","current_price":2.345e-5,"market_cap":null,"market_cap_rank":null,"max_supply":null,"last_updated":null},
          {"id":"Bad Id","symbol":"x","name":"x"},
          {"id":"weird","symbol":"w","name":"W","current_price":"12"}
        ]"#;
        let (coins, problems) = parse_markets(raw).unwrap();
        assert_eq!(coins.len(), 2);
        assert_eq!(coins[0].rank, Some(1));
        assert_eq!(coins[0].max_supply, Some(Decimal::from(21_000_000)));
        assert_eq!(coins[1].current_price.unwrap().to_string(), "0.00002345");
        assert_eq!(coins[1].market_cap, None);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].0.starts_with("entry 2"), "{problems:?}");
        assert!(
            problems[1].0.contains("expected a number, got a string"),
            "{problems:?}"
        );
    }

    #[test]
    fn malformed_answers_give_reasons() {
        let cases: &[(&[u8], &str)] = &[
            (b"{\"bitcoin\":", "not JSON"),
            (b"[]", "not a JSON object"),
            (br#"{"bitcoin":[1]}"#, "expected an object"),
            (br#"{"bitcoin":{"usd":"68900"}}"#, "expected a number"),
            (br#"{"bitcoin":{"usd":-1}}"#, "negative"),
            (br#"{"bitcoin":{"usd":1e300}}"#, "not a decimal"),
            (
                br#"{"bitcoin":{"usd":1,"last_updated_at":1e30}}"#,
                "out of range",
            ),
            (br#"{"BAD ID":{"usd":1}}"#, "coin id"),
        ];
        for (raw, reason) in cases {
            let error = parse_simple_price(raw, NOW, &coins(), &currencies())
                .expect_err(&String::from_utf8_lossy(raw));
            assert!(
                error.0.contains(reason),
                "{}: {error}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(parse_markets(b"{}").is_err());
    }

    proptest::proptest! {
        #[test]
        fn no_input_panics(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse_simple_price(&raw, NOW, &coins(), &currencies());
            let _ = parse_markets(&raw);
        }
    }
}
