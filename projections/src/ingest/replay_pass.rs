//! Passes of a looping playback: a recording played again and again, each pass moved to
//! the moment it is played and going on from where the one before ended.
//!
//! A recording holds a few minutes of market from a day long past. Played again as it
//! is, its times would be stale (a "last 24 h" query finds nothing), its trade ids and
//! sequence numbers would repeat (projections drop a tick they have seen by
//! [`Tick::dedupe_key`](super::Tick::dedupe_key)), and its price would jump back to the
//! first one. [`Looping`] reads a file once and then rewrites each message as it is sent:
//!
//! - **Times.** A pass lasts one [`Timeline::period`] of recorded time: the whole seconds
//!   from the header's `recorded_at` (or the first entry, if earlier) past the last
//!   entry, so recordings made together (the shipped ones) stay in step pass after pass.
//!   A recorded time `t` of pass `k` becomes `started + (k × period + t − origin) / speed`,
//!   where `origin` is the time of the file's first entry and `started` the wall-clock
//!   time at which the playback began: a message carries the time it is sent at. That
//!   holds for Binance `E`, `T` and the kline's `t`/`T`; Coinbase `timestamp`, trades'
//!   `time` and heartbeats' `current_time`; CoinGecko `last_updated_at` (seconds) and
//!   `last_updated`; RSS `pubDate`/`lastBuildDate` and NewsAPI `publishedAt`.
//! - **Ids.** Each family of numbers moves on by whole multiples of its range in the
//!   file (`max − min + 1`), so that every id of a pass is greater than every id of the
//!   pass before. Counters of a connection's messages (Coinbase `sequence_num` and
//!   `heartbeat_counter`) move on by `k` ranges in pass `k`: they count on by one
//!   without a gap. Ids that name a trade (Binance `a`, `t`, `f`, `l` and the kline's
//!   `f`/`L`; Coinbase `trade_id`) move on by the pass's *serial* ranges: the second
//!   on the wall clock at which the pass began, so that a playback started again later
//!   (a restarted `coinfold ingest` against the same database, which remembers dedupe
//!   keys for two days) does not repeat the ids of an earlier one.
//! - **Prices.** Even passes play the recorded path. Odd passes play it mirrored in log
//!   space per series (a Binance symbol, a Coinbase product, a CoinGecko coin and
//!   currency): `p' = first × last / p`, which starts at the last price of the pass
//!   before and ends at the first price, so the level never drifts however long the
//!   loop runs. `first` and `last` are the first and last prices of the series in the
//!   file (for CoinGecko, of its `/simple/price` answers). Under the mirror, highs and
//!   lows swap, a bid becomes `first × last / ask` and an ask `first × last / bid`
//!   (their quantities swap with them), the taker's side flips, and market caps scale
//!   with the price. A mirrored price is rounded to the decimals the recording uses
//!   for its series and written as wide as the recorded string (Binance's 8 places).
//! - **News.** An article's link (and a link-like `guid`) gets `played=` and the
//!   pass's serial in its query, other guids `-played-` and the serial: every pass,
//!   of every playback, brings new articles with the recorded headlines, scored
//!   again with their fresh times.
//!
//! Left as recorded: 24 h changes, 52 w highs and lows, volumes and quote volumes,
//! all-time highs and lows with their dates, supplies, and Atom feeds.
//! A message that is not JSON (recordings hold malformed ones on purpose, for the dead
//! letter tests) is sent unchanged, and so is a field that does not read.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use super::replay::{Feed, ReplayFile, Response, query_list};
use rewrite::Rewrite;

/// Where the entries of a file fall on the playback clock, pass after pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    /// The time of the file's first entry: due as the playback starts.
    pub origin: OffsetDateTime,
    /// How much recorded time one pass lasts, longer than the file's entries span.
    pub period: Duration,
}

impl Timeline {
    pub fn new(file: &ReplayFile) -> Self {
        let times = file
            .frames
            .iter()
            .map(|f| f.at)
            .chain(file.responses.iter().map(|r| r.at));
        let (first, last) = times
            .fold(
                None,
                |span: Option<(OffsetDateTime, OffsetDateTime)>, at| {
                    Some(span.map_or((at, at), |(a, b)| (a.min(at), b.max(at))))
                },
            )
            .unwrap_or((file.header.recorded_at, file.header.recorded_at));
        let since = file.header.recorded_at.min(first);
        Self {
            origin: first,
            period: Duration::seconds((last - since).whole_seconds().max(0) + 1),
        }
    }

    /// Recorded time from the start of pass 0 to the entry at `at` of pass `pass`, in
    /// nanoseconds.
    fn recorded_offset(&self, pass: u64, at: OffsetDateTime) -> i128 {
        self.period.whole_nanoseconds() * i128::from(pass) + (at - self.origin).whole_nanoseconds()
    }

    /// When the entry recorded at `at` is due in pass `pass`, on a playback clock that
    /// runs `speed` times faster than the recording.
    pub fn due(&self, pass: u64, at: OffsetDateTime, speed: f64) -> std::time::Duration {
        let nanos = self.recorded_offset(pass, at).max(0) as f64 / speed;
        std::time::Duration::from_nanos(nanos.min(u64::MAX as f64) as u64)
    }

    /// The wall-clock time at which the recorded time `at` of `pass` is played.
    pub fn wall(&self, pass: &Pass, at: OffsetDateTime) -> Option<OffsetDateTime> {
        let nanos = (self.recorded_offset(pass.number, at) as f64 / pass.speed) as i128;
        OffsetDateTime::from_unix_timestamp_nanos(pass.started.unix_timestamp_nanos() + nanos)
            .ok()
            .filter(|t| *t >= OffsetDateTime::UNIX_EPOCH)
    }
}

/// One pass being played.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pass {
    /// 0 for the first.
    pub number: u64,
    /// The wall-clock time at which the first entry of pass 0 was due.
    pub started: OffsetDateTime,
    /// The playback's speed (positive).
    pub speed: f64,
}

impl Pass {
    fn mirrored(&self) -> bool {
        self.number % 2 == 1
    }
}

/// Numbers that keep growing from pass to pass, each family by its own range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ids {
    BinanceAggregate,
    BinanceTrade,
    BinanceKline,
    CoinbaseTrade,
    CoinbaseSequence,
    CoinbaseHeartbeat,
}

impl Ids {
    /// Counters of a connection's messages, which a client checks for gaps: they go on
    /// by one from pass to pass. The other ids name trades, which projections remember.
    fn counts_messages(self) -> bool {
        matches!(self, Ids::CoinbaseSequence | Ids::CoinbaseHeartbeat)
    }
}

/// A price series' first and last price in the file, and its decimal places.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Series {
    first: Decimal,
    last: Decimal,
    places: u32,
}

impl Series {
    /// `first × last / price`, at the series' decimals.
    fn mirror(&self, price: Decimal) -> Option<Decimal> {
        if price <= Decimal::ZERO {
            return None;
        }
        let product = self.first.checked_mul(self.last)?;
        Some(product.checked_div(price)?.round_dp(self.places))
    }
}

/// What a file needs to be played pass after pass, read from it once.
#[derive(Debug, Clone)]
pub struct Looping {
    feed: Feed,
    timeline: Timeline,
    ids: HashMap<Ids, (u64, u64)>,
    series: HashMap<String, Series>,
}

const SIMPLE_PRICE: &str = "/api/v3/simple/price";
const MARKETS: &str = "/api/v3/coins/markets";

impl Looping {
    pub fn new(file: &ReplayFile) -> Self {
        let mut scan = Scan::default();
        match file.header.feed {
            Feed::Binance => {
                for frame in &file.frames {
                    if let Ok(value) = serde_json::from_str::<Value>(&frame.text) {
                        scan.binance(value.get("data").unwrap_or(&value));
                    }
                }
            }
            Feed::Coinbase => {
                for frame in &file.frames {
                    if let Ok(value) = serde_json::from_str::<Value>(&frame.text) {
                        scan.coinbase(&value);
                    }
                }
            }
            Feed::Http => {
                for response in file.responses.iter().filter(|r| r.status == 200) {
                    let path = response.path();
                    if path != SIMPLE_PRICE && path != MARKETS {
                        continue;
                    }
                    if let Ok(value) = serde_json::from_str::<Value>(&response.body) {
                        scan.coingecko(path, &response.get, &value);
                    }
                }
            }
        }
        Self {
            feed: file.header.feed,
            timeline: Timeline::new(file),
            ids: scan.ids,
            series: scan
                .series
                .into_iter()
                .filter_map(|(key, s)| {
                    let (first, last) = s.ends.or(s.fallback)?;
                    Some((
                        key,
                        Series {
                            first,
                            last,
                            places: s.places,
                        },
                    ))
                })
                .collect(),
        }
    }

    /// A websocket frame as it is sent in `pass`.
    pub fn frame(&self, text: &str, pass: &Pass) -> String {
        let Ok(mut value) = serde_json::from_str::<Value>(text) else {
            return text.to_owned();
        };
        let rewrite = Rewrite {
            looping: self,
            pass,
        };
        match self.feed {
            Feed::Binance => {
                let data = match value.get_mut("data") {
                    Some(data) => data,
                    None => &mut value,
                };
                rewrite.binance(data);
            }
            Feed::Coinbase => rewrite.coinbase(&mut value),
            Feed::Http => return text.to_owned(),
        }
        value.to_string()
    }

    /// The body of an HTTP response as it is answered in `pass`.
    pub fn body(&self, response: &Response, pass: &Pass) -> String {
        let body = &response.body;
        let rewrite = Rewrite {
            looping: self,
            pass,
        };
        if body.trim_start().starts_with('<') {
            return rewrite.rss(body);
        }
        let Ok(mut value) = serde_json::from_str::<Value>(body) else {
            return body.clone();
        };
        match response.path() {
            SIMPLE_PRICE => rewrite.simple_price(&mut value),
            MARKETS => {
                let currency = query_list(&response.get, "vs_currency");
                rewrite.markets(&mut value, currency.first().map_or("usd", String::as_str));
            }
            _ if value.get("articles").is_some() => rewrite.newsapi(&mut value),
            _ => return body.clone(),
        }
        value.to_string()
    }
}

/// A price or a number as a decimal: exchanges send strings, CoinGecko numbers.
fn decimal_of(value: &Value) -> Option<Decimal> {
    match value {
        Value::String(text) => super::decimal("", text).ok(),
        Value::Number(number) => super::decimal("", &number.to_string()).ok(),
        _ => None,
    }
}

/// A whole number, sent as a number or as a string of digits.
fn whole_of(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

#[derive(Debug, Default)]
struct SeriesScan {
    /// First and last price, from the prices that make the ticks.
    ends: Option<(Decimal, Decimal)>,
    /// The same from answers that only count when the others are missing
    /// (CoinGecko's `/coins/markets` when there is no `/simple/price`).
    fallback: Option<(Decimal, Decimal)>,
    places: u32,
}

#[derive(Debug, Default)]
struct Scan {
    ids: HashMap<Ids, (u64, u64)>,
    series: HashMap<String, SeriesScan>,
}

impl Scan {
    fn id(&mut self, family: Ids, value: Option<&Value>) {
        if let Some(id) = value.and_then(whole_of) {
            let range = self.ids.entry(family).or_insert((id, id));
            *range = (range.0.min(id), range.1.max(id));
        }
    }

    /// A price that goes into the series' decimals only.
    fn places(&mut self, key: &str, value: Option<&Value>) {
        if let Some(price) = value.and_then(decimal_of) {
            let series = self.series.entry(key.to_owned()).or_default();
            series.places = series.places.max(price.normalize().scale());
        }
    }

    /// A price that the series' ticks carry: it counts for its first and last too.
    fn price(&mut self, key: &str, value: Option<&Value>, fallback: bool) {
        self.places(key, value);
        if let Some(price) = value.and_then(decimal_of).filter(|p| *p > Decimal::ZERO) {
            let series = self.series.entry(key.to_owned()).or_default();
            let ends = if fallback {
                &mut series.fallback
            } else {
                &mut series.ends
            };
            *ends = Some((ends.map_or(price, |(first, _)| first), price));
        }
    }

    fn binance(&mut self, data: &Value) {
        let Some(symbol) = data.get("s").and_then(Value::as_str) else {
            return;
        };
        match data.get("e").and_then(Value::as_str) {
            Some("aggTrade" | "trade") => {
                self.id(Ids::BinanceAggregate, data.get("a"));
                for field in ["t", "f", "l"] {
                    self.id(Ids::BinanceTrade, data.get(field));
                }
                self.price(symbol, data.get("p"), false);
            }
            Some("kline") => {
                let Some(candle) = data.get("k") else { return };
                self.id(Ids::BinanceKline, candle.get("f"));
                self.id(Ids::BinanceKline, candle.get("L"));
                for field in ["o", "h", "l"] {
                    self.places(symbol, candle.get(field));
                }
                self.price(symbol, candle.get("c"), false);
            }
            Some("24hrMiniTicker") => {
                for field in ["o", "h", "l"] {
                    self.places(symbol, data.get(field));
                }
                self.price(symbol, data.get("c"), false);
            }
            _ => {}
        }
    }

    fn coinbase(&mut self, message: &Value) {
        self.id(Ids::CoinbaseSequence, message.get("sequence_num"));
        let Some(events) = message.get("events").and_then(Value::as_array) else {
            return;
        };
        for event in events {
            self.id(Ids::CoinbaseHeartbeat, event.get("heartbeat_counter"));
            for ticker in list(event, "tickers") {
                let Some(product) = ticker.get("product_id").and_then(Value::as_str) else {
                    continue;
                };
                for field in ["best_bid", "best_ask", "low_24_h", "high_24_h"] {
                    self.places(product, ticker.get(field));
                }
                self.price(product, ticker.get("price"), false);
            }
            for trade in list(event, "trades") {
                self.id(Ids::CoinbaseTrade, trade.get("trade_id"));
                if let Some(product) = trade.get("product_id").and_then(Value::as_str) {
                    self.price(product, trade.get("price"), false);
                }
            }
        }
    }

    fn coingecko(&mut self, path: &str, get: &str, value: &Value) {
        if path == SIMPLE_PRICE {
            let Some(coins) = value.as_object() else {
                return;
            };
            for (coin, prices) in coins {
                let Some(prices) = prices.as_object() else {
                    continue;
                };
                for (currency, price) in prices.iter().filter(|(k, _)| is_currency(k)) {
                    self.price(&format!("{coin}/{currency}"), Some(price), false);
                }
            }
        } else {
            let currency = query_list(get, "vs_currency");
            let currency = currency.first().map_or("usd", String::as_str);
            for coin in value.as_array().into_iter().flatten() {
                let Some(id) = coin.get("id").and_then(Value::as_str) else {
                    continue;
                };
                let key = format!("{id}/{currency}");
                self.places(&key, coin.get("high_24h"));
                self.places(&key, coin.get("low_24h"));
                self.price(&key, coin.get("current_price"), true);
            }
        }
    }
}

/// `/simple/price` keys that are prices: `usd`, not `usd_market_cap` or `last_updated_at`.
fn is_currency(key: &str) -> bool {
    !key.contains('_')
}

fn list<'a>(value: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

mod rewrite;
#[cfg(test)]
mod tests;
