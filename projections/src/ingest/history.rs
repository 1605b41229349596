//! A market history for the demo, made by the recordings' price model and produced to
//! `coinfold.market.ticks` before the live replay starts.
//!
//! The recordings hold twelve minutes: no indicator (SMA(20), RSI(14), MACD,
//! volatility(30)) fills on a few 1-minute candles, no correlation has two returns in
//! common over an hour, and a portfolio's value history has nothing to show. So the demo
//! first backfills a past: Coinbase USD trades (source `coinbase`, trade ids
//! `history-<coin>-<n>`) that the `market` projection folds like live ones (candles,
//! indicators per closed candle, latest price), through the same producer.
//!
//! The path is the model's jump diffusion ([`super::synth`]), run **backwards** from
//! the coin's first recorded price at `end`, so that the live replay continues it with
//! no jump. Its volatility is the coin's real one (a third of the live recording's,
//! which is made to move visibly within minutes): over 90 days the live volatility
//! would take prices anywhere between a third and three times their level.
//!
//! - the last `minute_days` days: a trade every 15 s (each 1-minute candle has an open,
//!   a high, a low and a close);
//! - before, back to `days` days: a trade every 15 minutes (1-hour and 1-day candles are
//!   whole; the 1-minute and 5-minute candles of that stretch are single trades).
//!
//! Sizes share the coin's 24 h volume evenly over the day (log-normal around it), so
//! volumes are alike in both stretches. The same seed and `end` make the same ticks.

use coinfold_domain::values::{CoinSymbol, Price, Quantity, QuoteCurrency};
use rdkafka::producer::FutureProducer;
use rust_decimal::Decimal;
use time::{Duration, OffsetDateTime};
use tokio::sync::mpsc;

use super::connector::Ingested;
use super::producer::{self, IngestTopics, ProduceError, Produced};
use super::run::stream_topics;
use super::synth::{Rng, SynthCoin};
use super::{Source, TICK_SCHEMA, TakerSide, Tick, TickKind};

/// The seconds between two trades of the recent, dense stretch.
const DENSE_STEP: i64 = 15;
/// The seconds between two trades of the older, sparse stretch.
const SPARSE_STEP: i64 = 15 * 60;
/// The live recordings' volatility is about three times the real one.
const LIVE_TO_REAL_VOLATILITY: f64 = 3.0;
const SECONDS_PER_YEAR: f64 = 365.25 * 24.0 * 3600.0;

/// What history to make.
#[derive(Debug, Clone)]
pub struct HistoryConfig {
    /// The moment the history ends and the live replay takes over.
    pub end: OffsetDateTime,
    /// How far back it goes.
    pub days: u32,
    /// How many of the last days have a trade every 15 s.
    pub minute_days: u32,
    pub seed: u64,
    pub coins: Vec<SynthCoin>,
}

impl HistoryConfig {
    /// The demo's: 90 days, the last 2 dense, for the recordings' coins.
    pub fn demo(end: OffsetDateTime) -> Self {
        Self {
            end,
            days: 90,
            minute_days: 2,
            seed: 2026,
            coins: super::synth::demo_coins(),
        }
    }
}

/// The trade times, oldest first: sparse, then dense, ending one dense step before
/// `end`.
fn times(config: &HistoryConfig) -> Vec<OffsetDateTime> {
    let start = config.end - Duration::days(i64::from(config.days));
    let dense_start = config.end - Duration::days(i64::from(config.minute_days.min(config.days)));
    let mut times = Vec::new();
    let mut at = start;
    while at < dense_start {
        times.push(at);
        at += Duration::seconds(SPARSE_STEP);
    }
    let mut at = dense_start;
    while at < config.end {
        times.push(at);
        at += Duration::seconds(DENSE_STEP);
    }
    times
}

/// Every coin's history as ticks, in time order per coin (coin after coin).
pub fn history_ticks(config: &HistoryConfig) -> Vec<Tick> {
    let times = times(config);
    let mut rng = Rng(config.seed);
    let mut ticks = Vec::with_capacity(times.len() * config.coins.len());
    for coin in &config.coins {
        let Ok(symbol) = CoinSymbol::parse(coin.symbol) else {
            continue;
        };
        let prices = path_backwards(coin, &times, config.end, &mut rng);
        for (n, (at, mid)) in times.iter().zip(prices).enumerate() {
            let step = times
                .get(n + 1)
                .map_or(DENSE_STEP, |next| (*next - *at).whole_seconds());
            let share = coin.volume_24h * step as f64 / 86_400.0;
            let size = share * (0.8 * rng.normal() - 0.32).exp();
            let taker_buys = rng.unit() < 0.5;
            let (Some(price), Some(size)) = (
                decimal(mid, coin.price_places).and_then(|p| Price::new(p).ok()),
                decimal(size, coin.size_places)
                    .map(|s| s.max(Decimal::new(1, coin.size_places as u32)))
                    .and_then(|s| Quantity::new(s).ok()),
            ) else {
                continue;
            };
            ticks.push(Tick {
                schema: TICK_SCHEMA,
                source: Source::Coinbase,
                kind: TickKind::Trade,
                coin: symbol.clone(),
                quote: QuoteCurrency::usd(),
                price,
                size: Some(size),
                side: Some(if taker_buys {
                    TakerSide::Buy
                } else {
                    TakerSide::Sell
                }),
                trade_id: Some(format!("history-{}-{n}", coin.symbol)),
                volume_24h: None,
                exchange_time: *at,
                received_time: *at,
            });
        }
    }
    ticks
}

/// The mid at each of `times`, walking back from the coin's price at `end`: each step
/// undoes one step of the jump diffusion (Brownian with drift −σ²/2, jumps of σ = 0.5 %
/// three times an hour).
fn path_backwards(
    coin: &SynthCoin,
    times: &[OffsetDateTime],
    end: OffsetDateTime,
    rng: &mut Rng,
) -> Vec<f64> {
    let volatility = coin.annual_volatility / LIVE_TO_REAL_VOLATILITY;
    let mut prices = vec![0.0; times.len()];
    let mut price = coin.price;
    let mut later = end;
    for (slot, at) in prices.iter_mut().zip(times).rev() {
        let seconds = (later - *at).as_seconds_f64();
        let dt = seconds / SECONDS_PER_YEAR;
        let sigma = volatility * dt.sqrt();
        let mut log_move = sigma * rng.normal() - 0.5 * sigma * sigma;
        for _ in 0..rng.poisson(3.0 * seconds / 3600.0) {
            log_move += 0.005 * rng.normal();
        }
        price /= log_move.exp();
        *slot = price;
        later = *at;
    }
    prices
}

fn decimal(value: f64, places: usize) -> Option<Decimal> {
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    format!("{value:.places$}").parse().ok()
}

/// Produces `ticks` to the ticks topic of `prefix` through ingest's own producer
/// (the topics are made first if missing, as ingest makes them); what it sent.
pub async fn backfill(
    brokers: &str,
    client_id: &str,
    prefix: &str,
    ticks: Vec<Tick>,
) -> Result<Produced, ProduceError> {
    producer::ensure_topics(brokers, &stream_topics(prefix)).await?;
    let kafka: FutureProducer = producer::producer_config(brokers, client_id)
        .create()
        .map_err(ProduceError::Create)?;
    let topics = IngestTopics::new(prefix);
    let (tx, rx) = mpsc::channel(10_000);
    let feeding = tokio::spawn(async move {
        for tick in ticks {
            if tx.send(Ingested::Tick(tick)).await.is_err() {
                break;
            }
        }
    });
    let produced = producer::run(rx, kafka, &topics).await;
    let _ = feeding.await;
    produced
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn config() -> HistoryConfig {
        HistoryConfig {
            days: 10,
            minute_days: 1,
            ..HistoryConfig::demo(datetime!(2026-12-04 12:00 UTC))
        }
    }

    #[test]
    fn the_history_ends_at_the_live_price_dense_then_sparse_and_is_repeatable() {
        let config = config();
        let ticks = history_ticks(&config);
        assert_eq!(ticks, history_ticks(&config));
        let btc: Vec<&Tick> = ticks.iter().filter(|t| t.coin.as_str() == "BTC").collect();
        // 9 days of one trade per 15 minutes, one day of one per 15 s.
        assert_eq!(btc.len(), 9 * 96 + 5_760);
        assert_eq!(btc[0].exchange_time, datetime!(2026-11-24 12:00 UTC));
        let last = btc.last().unwrap();
        assert_eq!(last.exchange_time, datetime!(2026-12-04 11:59:45 UTC));
        assert!(
            btc.windows(2)
                .all(|w| w[0].exchange_time < w[1].exchange_time),
            "times go forward"
        );
        // The last price is one 15 s step away from the recording's first (68,900).
        let last_price = last.price.value();
        assert!(
            (Decimal::from(68_000)..Decimal::from(69_800)).contains(&last_price),
            "{last_price}"
        );
        // Every trade id is its own, and none looks like a live one.
        let ids: std::collections::BTreeSet<&str> =
            ticks.iter().filter_map(|t| t.trade_id.as_deref()).collect();
        assert_eq!(ids.len(), ticks.len());
        assert!(ids.iter().all(|id| id.starts_with("history-")));
    }

    #[test]
    fn the_path_moves_like_the_real_market() {
        let ticks = history_ticks(&HistoryConfig::demo(datetime!(2026-12-04 12:00 UTC)));
        for coin in ["BTC", "ETH", "SOL", "ADA", "DOGE"] {
            let prices: Vec<f64> = ticks
                .iter()
                .filter(|t| t.coin.as_str() == coin && t.exchange_time.minute() == 0)
                .filter(|t| t.exchange_time.second() == 0)
                .map(|t| rust_decimal::prelude::ToPrimitive::to_f64(&t.price.value()).unwrap())
                .collect();
            // Hourly log returns: their annualized deviation near the real volatility
            // (0.6 to 1.0), far from the live recording's three times that.
            let returns: Vec<f64> = prices.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
            let mean = returns.iter().sum::<f64>() / returns.len() as f64;
            let variance = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>()
                / (returns.len() - 1) as f64;
            let annual = (variance * 24.0 * 365.25).sqrt();
            assert!((0.4..1.4).contains(&annual), "{coin}: {annual}");
        }
    }
}
