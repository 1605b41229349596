//! Market data from `coinfold.market.ticks`: the latest price per coin and quote, OHLCV
//! candles (1m, 5m, 1h, 1d) and indicators per closed candle.
//!
//! - **Duplicates**: a tick is applied once per [`Tick::dedupe_key`] (kept in
//!   `tick_seen`), so a tick the producer or a replay delivers twice counts once.
//! - **Candles** are per coin and quote, whatever the source: trades bring price and
//!   volume, tickers price only; kline ticks are the exchange's own candles and are left
//!   out (they would count volume twice). A tick later than the open candle's interval
//!   closes it; an empty interval has no candle. A tick *older* than the open candle
//!   (late) updates its own candle's high, low and volume if that candle exists, never
//!   its close or the indicators already computed from it.
//! - **Indicators** are the domain's incremental ones ([`coinfold_domain::indicators`]),
//!   fed each closed candle's close: O(1) per candle. Their state and the open candle are
//!   kept per series in `market_series`, in the batch's transaction, so a restart
//!   continues exactly where the last commit left off, and a rebuild gives the same
//!   numbers bit for bit.

use std::collections::{BTreeMap, HashMap, HashSet};

use coinfold_domain::indicators::{
    Bollinger, Ema, IndicatorError, Macd, Rsi, Sma, Volatility, periods_per_year,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use time::{Duration, OffsetDateTime};

use super::floor_to;
use crate::ingest::{TICKS_TOPIC, Tick, TickKind};
use crate::projection::{Output, ProjectionError, Rejected, StreamMessage, StreamProjection};

pub const NAME: &str = "market";
pub const TABLES: &[&str] = &[
    "latest_prices",
    "candles",
    "indicators",
    "market_series",
    "tick_seen",
];

/// How long a dedupe key is kept, counted back from a batch's newest tick.
const DEDUPE_HORIZON: Duration = Duration::days(2);

/// The candle intervals, with their length in seconds.
pub const INTERVALS: [(&str, i64); 4] = [("1m", 60), ("5m", 300), ("1h", 3600), ("1d", 86_400)];

/// Window of the volatility figure, in candles.
pub const VOLATILITY_WINDOW: usize = 30;

#[derive(Debug, Default, Clone, Copy)]
pub struct Market;

impl StreamProjection for Market {
    fn name(&self) -> &'static str {
        NAME
    }

    fn topic(&self) -> &'static str {
        TICKS_TOPIC
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[StreamMessage],
        out: &mut Output,
    ) -> Result<(), ProjectionError> {
        let ticks = fresh_ticks(tx, messages, out).await?;
        if ticks.is_empty() {
            return Ok(());
        }
        write_latest_prices(tx, &ticks, out).await?;
        fold_candles(tx, &ticks, out).await?;
        Ok(())
    }
}

/// The batch's ticks that parse and were not applied before, in order.
async fn fresh_ticks(
    tx: &mut PgConnection,
    messages: &[StreamMessage],
    out: &mut Output,
) -> Result<Vec<Tick>, ProjectionError> {
    let mut ticks = Vec::with_capacity(messages.len());
    let mut keys = Vec::with_capacity(messages.len());
    let mut times = Vec::with_capacity(messages.len());
    let mut in_batch = HashSet::new();
    for message in messages {
        match serde_json::from_slice::<Tick>(&message.payload) {
            Ok(tick) => {
                let key = tick.dedupe_key();
                if in_batch.insert(key.clone()) {
                    keys.push(key);
                    times.push(tick.exchange_time);
                    ticks.push(tick);
                }
            }
            Err(error) => out
                .rejected
                .push(Rejected::of(message, format!("not a tick: {error}"))),
        }
    }
    if ticks.is_empty() {
        return Ok(ticks);
    }
    let fresh: HashSet<String> = sqlx::query_scalar(
        "INSERT INTO tick_seen (dedupe_key, exchange_time) \
         SELECT * FROM unnest($1::text[], $2::timestamptz[]) \
         ON CONFLICT DO NOTHING RETURNING dedupe_key",
    )
    .bind(&keys)
    .bind(&times)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    if let Some(newest) = times.iter().max() {
        sqlx::query("DELETE FROM tick_seen WHERE exchange_time < $1")
            .bind(*newest - DEDUPE_HORIZON)
            .execute(&mut *tx)
            .await?;
    }
    Ok(ticks
        .into_iter()
        .zip(keys)
        .filter(|(_, key)| fresh.contains(key))
        .map(|(tick, _)| tick)
        .collect())
}

async fn write_latest_prices(
    tx: &mut PgConnection,
    ticks: &[Tick],
    out: &mut Output,
) -> Result<(), ProjectionError> {
    // The newest tick per pair in this batch (on a tie, the later one).
    let mut newest: BTreeMap<(&str, &str), &Tick> = BTreeMap::new();
    for tick in ticks {
        let slot = newest
            .entry((tick.coin.as_str(), tick.quote.as_str()))
            .or_insert(tick);
        if tick.exchange_time >= slot.exchange_time {
            *slot = tick;
        }
    }
    for tick in newest.into_values() {
        let updated = sqlx::query(
            "INSERT INTO latest_prices (coin, quote, price, source, exchange_time, volume_24h) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (coin, quote) DO UPDATE SET price = excluded.price, \
             source = excluded.source, exchange_time = excluded.exchange_time, \
             volume_24h = coalesce(excluded.volume_24h, latest_prices.volume_24h) \
             WHERE latest_prices.exchange_time <= excluded.exchange_time",
        )
        .bind(tick.coin.as_str())
        .bind(tick.quote.as_str())
        .bind(tick.price.value())
        .bind(tick.source.to_string())
        .bind(tick.exchange_time)
        .bind(tick.volume_24h.map(|v| v.value()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 1 {
            let payload = json!({
                "coin": tick.coin.as_str(),
                "quote": tick.quote.as_str(),
                "price": tick.price.value().to_string(),
                "source": tick.source.to_string(),
                "at": tick.exchange_time.unix_timestamp_nanos() / 1_000_000,
            });
            out.cache.push((
                format!("price:{}:{}", tick.coin.as_str(), tick.quote.as_str()),
                payload.clone(),
            ));
            out.notify(format!("price.{}", tick.coin.as_str()), payload);
        }
    }
    Ok(())
}

/// One OHLCV candle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    #[serde(with = "time::serde::rfc3339")]
    pub open_time: OffsetDateTime,
    #[serde(with = "rust_decimal::serde::str")]
    pub open: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub high: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub low: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub close: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub volume: Decimal,
    pub trades: i64,
}

impl Candle {
    fn open(open_time: OffsetDateTime, tick: &Tick) -> Self {
        let price = tick.price.value();
        let mut candle = Self {
            open_time,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: Decimal::ZERO,
            trades: 0,
        };
        candle.add_volume(tick);
        candle
    }

    fn add(&mut self, tick: &Tick) {
        let price = tick.price.value();
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.close = price;
        self.add_volume(tick);
    }

    fn add_volume(&mut self, tick: &Tick) {
        let (volume, trades) = traded(tick);
        self.volume += volume;
        self.trades += trades;
    }
}

/// What a tick adds to a candle's volume and trade count: a trade its size and one; a
/// ticker nothing.
/// What a tick traded: its size and 1 for a trade, nothing for a ticker or candle.
pub(crate) fn traded(tick: &Tick) -> (Decimal, i64) {
    match tick.kind {
        TickKind::Trade => (tick.size.map_or(Decimal::ZERO, |s| s.value()), 1),
        TickKind::Ticker | TickKind::Candle => (Decimal::ZERO, 0),
    }
}

/// The incremental indicators of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorSet {
    pub sma_20: Sma,
    pub ema_20: Ema,
    pub rsi_14: Rsi,
    pub macd: Macd,
    pub bollinger: Bollinger,
    pub volatility: Volatility,
}

impl IndicatorSet {
    pub fn new(interval_seconds: i64) -> Result<Self, IndicatorError> {
        let seconds = u64::try_from(interval_seconds).unwrap_or(60);
        Ok(Self {
            sma_20: Sma::new(20)?,
            ema_20: Ema::new(20)?,
            // RSI(14), MACD(12, 26, 9), Bollinger(20, 2): the domain's defaults.
            rsi_14: Rsi::default(),
            macd: Macd::default(),
            bollinger: Bollinger::default(),
            volatility: Volatility::new(VOLATILITY_WINDOW, periods_per_year(seconds))?,
        })
    }

    fn update(&mut self, close: f64) -> IndicatorRow {
        let macd = self.macd.update(close);
        let bollinger = self.bollinger.update(close);
        IndicatorRow {
            close,
            sma_20: self.sma_20.update(close),
            ema_20: self.ema_20.update(close),
            rsi_14: self.rsi_14.update(close),
            macd: macd.as_ref().map(|m| m.macd),
            macd_signal: macd.as_ref().map(|m| m.signal),
            macd_histogram: macd.as_ref().map(|m| m.histogram),
            bollinger_mid: bollinger.as_ref().map(|b| b.middle),
            bollinger_upper: bollinger.as_ref().map(|b| b.upper),
            bollinger_lower: bollinger.as_ref().map(|b| b.lower),
            volatility: self.volatility.update(close),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct IndicatorRow {
    close: f64,
    sma_20: Option<f64>,
    ema_20: Option<f64>,
    rsi_14: Option<f64>,
    macd: Option<f64>,
    macd_signal: Option<f64>,
    macd_histogram: Option<f64>,
    bollinger_mid: Option<f64>,
    bollinger_upper: Option<f64>,
    bollinger_lower: Option<f64>,
    volatility: Option<f64>,
}

/// What `market_series` keeps per coin, quote and interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Series {
    candle: Candle,
    indicators: IndicatorSet,
}

type SeriesKey = (String, String, &'static str);

async fn fold_candles(
    tx: &mut PgConnection,
    ticks: &[Tick],
    out: &mut Output,
) -> Result<(), ProjectionError> {
    let priced: Vec<&Tick> = ticks
        .iter()
        .filter(|t| t.kind != TickKind::Candle)
        .collect();
    if priced.is_empty() {
        return Ok(());
    }
    let mut series = load_series(tx, &priced).await?;
    // Candles to write (closed and open), indicator rows, and late updates of candles
    // not in this batch.
    let mut candles: BTreeMap<(SeriesKey, OffsetDateTime), Candle> = BTreeMap::new();
    let mut indicator_rows: Vec<(SeriesKey, OffsetDateTime, IndicatorRow)> = Vec::new();
    let mut late: Vec<(SeriesKey, OffsetDateTime, Decimal, i64, Decimal)> = Vec::new();
    for tick in priced {
        for (interval, seconds) in INTERVALS {
            let key: SeriesKey = (
                tick.coin.as_str().to_owned(),
                tick.quote.as_str().to_owned(),
                interval,
            );
            let at = floor_to(tick.exchange_time, seconds);
            match series.get_mut(&key) {
                None => {
                    let indicators = IndicatorSet::new(seconds)
                        .map_err(|e| ProjectionError::Invalid(e.to_string()))?;
                    let candle = Candle::open(at, tick);
                    candles.insert((key.clone(), at), candle.clone());
                    series.insert(key, Series { candle, indicators });
                }
                Some(s) if at == s.candle.open_time => {
                    s.candle.add(tick);
                    candles.insert((key, at), s.candle.clone());
                }
                Some(s) if at > s.candle.open_time => {
                    let closed = s.candle.open_time;
                    let close = s.candle.close.to_f64().unwrap_or(f64::NAN);
                    let row = s.indicators.update(close);
                    indicator_rows.push((key.clone(), closed, row));
                    s.candle = Candle::open(at, tick);
                    candles.insert((key, at), s.candle.clone());
                }
                Some(_) => {
                    if let Some(candle) = candles.get_mut(&(key.clone(), at)) {
                        let close = candle.close;
                        candle.add(tick);
                        candle.close = close;
                    } else {
                        let (volume, trades) = traded(tick);
                        late.push((key, at, tick.price.value(), trades, volume));
                    }
                }
            }
        }
    }
    write_candles(tx, &candles).await?;
    for ((coin, quote, interval), at, price, trades, volume) in late {
        sqlx::query(
            "UPDATE candles SET high = greatest(high, $5), low = least(low, $5), \
             volume = volume + $6, trades = trades + $7 \
             WHERE coin = $1 AND quote = $2 AND interval = $3 AND open_time = $4",
        )
        .bind(coin)
        .bind(quote)
        .bind(interval)
        .bind(at)
        .bind(price)
        .bind(volume)
        .bind(trades)
        .execute(&mut *tx)
        .await?;
    }
    write_indicators(tx, &indicator_rows).await?;
    write_series(tx, &series).await?;
    // One notification per series: its newest candle.
    let mut newest: HashMap<&SeriesKey, (&OffsetDateTime, &Candle)> = HashMap::new();
    for ((key, at), candle) in &candles {
        newest.insert(key, (at, candle));
    }
    let mut newest: Vec<_> = newest.into_iter().collect();
    newest.sort_by(|a, b| a.0.cmp(b.0));
    for ((coin, quote, interval), (_, candle)) in newest {
        out.notify(
            format!("candle.{coin}.{interval}"),
            json!({"coin": coin, "quote": quote, "interval": interval, "candle": candle}),
        );
    }
    Ok(())
}

async fn load_series(
    tx: &mut PgConnection,
    ticks: &[&Tick],
) -> Result<HashMap<SeriesKey, Series>, ProjectionError> {
    let mut pairs: Vec<(&str, &str)> = ticks
        .iter()
        .map(|t| (t.coin.as_str(), t.quote.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let coins: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let quotes: Vec<&str> = pairs.iter().map(|p| p.1).collect();
    let rows: Vec<(String, String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT coin, quote, interval, state FROM market_series \
         WHERE (coin, quote) IN (SELECT * FROM unnest($1::text[], $2::text[])) FOR UPDATE",
    )
    .bind(&coins)
    .bind(&quotes)
    .fetch_all(&mut *tx)
    .await?;
    let mut series = HashMap::with_capacity(rows.len());
    for (coin, quote, interval, state) in rows {
        let Some((interval, _)) = INTERVALS.iter().find(|(name, _)| *name == interval) else {
            continue;
        };
        let state: Series = serde_json::from_value(state).map_err(|e| {
            ProjectionError::Invalid(format!("market_series {coin}-{quote} {interval}: {e}"))
        })?;
        series.insert((coin, quote, *interval), state);
    }
    Ok(series)
}

async fn write_candles(
    tx: &mut PgConnection,
    candles: &BTreeMap<(SeriesKey, OffsetDateTime), Candle>,
) -> Result<(), ProjectionError> {
    if candles.is_empty() {
        return Ok(());
    }
    let mut coin = Vec::new();
    let mut quote = Vec::new();
    let mut interval = Vec::new();
    let mut open_time = Vec::new();
    let (mut open, mut high, mut low, mut close, mut volume) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut trades = Vec::new();
    for (((c, q, i), at), candle) in candles {
        coin.push(c.as_str());
        quote.push(q.as_str());
        interval.push(*i);
        open_time.push(*at);
        open.push(candle.open);
        high.push(candle.high);
        low.push(candle.low);
        close.push(candle.close);
        volume.push(candle.volume);
        trades.push(candle.trades);
    }
    sqlx::query(
        "INSERT INTO candles (coin, quote, interval, open_time, open, high, low, close, volume, trades) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::numeric[], \
                              $6::numeric[], $7::numeric[], $8::numeric[], $9::numeric[], $10::bigint[]) \
         ON CONFLICT (coin, quote, interval, open_time) DO UPDATE SET open = excluded.open, \
         high = excluded.high, low = excluded.low, close = excluded.close, \
         volume = excluded.volume, trades = excluded.trades",
    )
    .bind(&coin)
    .bind(&quote)
    .bind(&interval)
    .bind(&open_time)
    .bind(&open)
    .bind(&high)
    .bind(&low)
    .bind(&close)
    .bind(&volume)
    .bind(&trades)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn write_indicators(
    tx: &mut PgConnection,
    rows: &[(SeriesKey, OffsetDateTime, IndicatorRow)],
) -> Result<(), ProjectionError> {
    for ((coin, quote, interval), at, row) in rows {
        sqlx::query(
            "INSERT INTO indicators (coin, quote, interval, open_time, close, sma_20, ema_20, \
             rsi_14, macd, macd_signal, macd_histogram, bollinger_mid, bollinger_upper, \
             bollinger_lower, volatility_30) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (coin, quote, interval, open_time) DO NOTHING",
        )
        .bind(coin)
        .bind(quote)
        .bind(*interval)
        .bind(*at)
        .bind(row.close)
        .bind(row.sma_20)
        .bind(row.ema_20)
        .bind(row.rsi_14)
        .bind(row.macd)
        .bind(row.macd_signal)
        .bind(row.macd_histogram)
        .bind(row.bollinger_mid)
        .bind(row.bollinger_upper)
        .bind(row.bollinger_lower)
        .bind(row.volatility)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

async fn write_series(
    tx: &mut PgConnection,
    series: &HashMap<SeriesKey, Series>,
) -> Result<(), ProjectionError> {
    let mut sorted: Vec<_> = series.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for ((coin, quote, interval), state) in sorted {
        let state = serde_json::to_value(state)
            .map_err(|e| ProjectionError::Invalid(format!("market_series: {e}")))?;
        sqlx::query(
            "INSERT INTO market_series (coin, quote, interval, state) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (coin, quote, interval) DO UPDATE SET state = excluded.state",
        )
        .bind(coin)
        .bind(quote)
        .bind(*interval)
        .bind(state)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn buckets_start_on_the_interval() {
        let at = datetime!(2026-04-07 14:31:59.9 UTC);
        assert_eq!(floor_to(at, 60), datetime!(2026-04-07 14:31 UTC));
        assert_eq!(floor_to(at, 300), datetime!(2026-04-07 14:30 UTC));
        assert_eq!(floor_to(at, 3600), datetime!(2026-04-07 14:00 UTC));
        assert_eq!(floor_to(at, 86_400), datetime!(2026-04-07 00:00 UTC));
    }
}
