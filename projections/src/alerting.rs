//! Alert evaluation: a worker on the tick stream that checks every armed alert of a
//! coin against each new price and sends `TriggerAlert` commands.
//!
//! It keeps per coin a minute-by-minute history (close and traded volume, eight days,
//! warmed from the 1-minute candles when it starts) and the last price, and reads the
//! armed alerts and the coins' sentiment from the read models, refreshed every second.
//! What each condition observes (see `AlertCondition::is_met`):
//!
//! | condition | value | from |
//! |---|---|---|
//! | price above / below | the tick's price in USD | the tick |
//! | 24 h change | % from the close 24 h before | minute history |
//! | move within W | % from the close W minutes before | minute history |
//! | volume spike over W | volume of the last W minutes ÷ the mean W-minute volume of the 24 h before | minute history |
//! | crosses SMA/EMA(n) | the price, with the average of the last n minute closes as reference and the previous price | minute history |
//! | sentiment below / above | the mean score of the coin's articles in the last 24 h | `read.sentiment_hourly` |
//!
//! Thresholds are in USD. A tick quoted in a dollar stablecoin (USDT, USDC) is converted
//! at that stablecoin's market rate ([`crate::queries::stablecoin_rates`]), kept in the
//! view and refreshed with it; while a stablecoin has no rate its ticks are skipped,
//! never taken at par (issue 18). Warming converts the stablecoin candles the same way,
//! at the rate of the moment of warming (a rate moves little over the history, and the
//! percent conditions do not see a constant factor); those without a rate are left out.
//!
//! Triggering is idempotent twice over: the command carries an idempotency key made of
//! the alert and the tick's dedupe key (a tick delivered twice is one command), and the
//! Alert aggregate fires a one-shot alert once until re-armed and a recurring one not
//! again within its cooldown. This worker is not a projection: a rebuild never runs it,
//! so rebuilding repeats no trigger. Offsets are committed only after the commands for
//! a batch have been answered.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant};

use coinfold_domain::alert::{AlertCondition, MovingAverage, Observation};
use coinfold_domain::indicators::{Ema, Sma};
use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::ingest::{TICKS_TOPIC, Tick, TickKind};
use crate::projection::stream_runner::{StreamSource, advance, commit_hint, next_batch};
use crate::projection::{ProjectionError, RunSettings};

/// Minutes of history kept per coin: a week's longest window plus the 24 h before it.
const HISTORY_MINUTES: usize = 8 * 24 * 60;

/// Quotes an alert's price is read in (an alert has no currency: its thresholds are
/// USD, and a stablecoin price is converted at the stablecoin's rate).
pub const USD_QUOTES: &[&str] = &["USD", "USDT", "USDC"];

/// What sends the `TriggerAlert` command (the command service, in the app).
pub trait AlertTrigger: Send + Sync {
    /// Returns true when the alert fired (an event was stored).
    fn trigger(
        &self,
        alert_id: Uuid,
        observation: Observation,
        idempotency_key: String,
    ) -> impl Future<Output = Result<bool, String>> + Send;
}

impl<T: AlertTrigger> AlertTrigger for &T {
    async fn trigger(
        &self,
        alert_id: Uuid,
        observation: Observation,
        idempotency_key: String,
    ) -> Result<bool, String> {
        (**self)
            .trigger(alert_id, observation, idempotency_key)
            .await
    }
}

/// An armed alert, as the evaluator needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmedAlert {
    pub alert_id: Uuid,
    pub coin: String,
    pub condition: AlertCondition,
    /// When the alert was created: a tick from before (a backlog being caught up, a
    /// backfilled history) judges a market the alert was not watching, and fires
    /// nothing.
    pub created_at: OffsetDateTime,
}

/// One coin's recent market, by minute.
#[derive(Debug, Default, Clone)]
pub struct CoinHistory {
    /// (minute start, close, volume), oldest first, at most [`HISTORY_MINUTES`].
    minutes: VecDeque<(i64, Decimal, Decimal)>,
    last_price: Option<Decimal>,
}

impl CoinHistory {
    /// Adds a price (and the volume it traded) at `at`.
    pub fn record(&mut self, at: OffsetDateTime, price: Decimal, volume: Decimal) {
        let minute = at.unix_timestamp().div_euclid(60) * 60;
        match self.minutes.back_mut() {
            Some(last) if last.0 == minute => {
                last.1 = price;
                last.2 += volume;
            }
            Some(last) if last.0 > minute => {
                // Late: its minute is already behind; only the volume counts.
                if let Some(slot) = self.minutes.iter_mut().rev().find(|m| m.0 == minute) {
                    slot.2 += volume;
                }
            }
            _ => self.minutes.push_back((minute, price, volume)),
        }
        while self.minutes.len() > HISTORY_MINUTES {
            self.minutes.pop_front();
        }
    }

    /// The close of the last minute that started at or before `at_or_before`.
    fn close_at(&self, at_or_before: i64) -> Option<Decimal> {
        self.minutes
            .iter()
            .rev()
            .find(|m| m.0 <= at_or_before)
            .map(|m| m.1)
    }

    fn volume_between(&self, from: i64, to: i64) -> Decimal {
        self.minutes
            .iter()
            .filter(|m| m.0 >= from && m.0 < to)
            .map(|m| m.2)
            .sum()
    }

    fn closes_before(&self, minute: i64, n: usize) -> Vec<Decimal> {
        let mut closes: Vec<Decimal> = self
            .minutes
            .iter()
            .rev()
            .filter(|m| m.0 < minute)
            .take(n)
            .map(|m| m.1)
            .collect();
        closes.reverse();
        closes
    }
}

fn percent_change(from: Decimal, to: Decimal) -> Option<Decimal> {
    if from.is_zero() {
        return None;
    }
    ((to - from) / from * Decimal::ONE_HUNDRED)
        .round_dp(8)
        .into()
}

/// Closes an EMA is warmed up over: its seed (the SMA of the first `period`) weighs
/// (1 − 2/(n+1))^(3n) ≈ e^-6 ≈ 0.25 % of the result by the end.
const EMA_WARM_UP_PERIODS: usize = 4;

/// The moving average of the last closes, by the same definitions as the read model's
/// indicators ([`coinfold_domain::indicators`]).
fn average(kind: MovingAverage, closes: &[Decimal], period: usize) -> Option<Decimal> {
    let mut last = None;
    match kind {
        MovingAverage::Sma => {
            let mut sma = Sma::new(period).ok()?;
            for close in closes {
                last = sma.update(close.to_f64()?).or(last);
            }
        }
        MovingAverage::Ema => {
            let mut ema = Ema::new(period).ok()?;
            for close in closes {
                last = ema.update(close.to_f64()?).or(last);
            }
        }
    }
    Decimal::from_f64(last?).map(|a| a.round_dp(12))
}

/// What `condition` observes now, or None when the history cannot tell yet.
pub fn observe(
    condition: &AlertCondition,
    history: &CoinHistory,
    previous: Option<Decimal>,
    price: Decimal,
    at: OffsetDateTime,
    sentiment: Option<f64>,
) -> Option<Observation> {
    let now = at.unix_timestamp();
    let minute = now.div_euclid(60) * 60;
    let plain = |value: Decimal| Observation {
        value,
        reference: None,
        previous: None,
        at,
    };
    match condition {
        AlertCondition::PriceAbove { .. } | AlertCondition::PriceBelow { .. } => Some(plain(price)),
        AlertCondition::Change24h { .. } => {
            let before = history.close_at(now - 24 * 3600)?;
            Some(Observation {
                reference: Some(before),
                ..plain(percent_change(before, price)?)
            })
        }
        AlertCondition::MoveWithin { window_minutes, .. } => {
            let before = history.close_at(now - i64::from(*window_minutes) * 60)?;
            Some(Observation {
                reference: Some(before),
                ..plain(percent_change(before, price)?)
            })
        }
        AlertCondition::VolumeSpike { window_minutes, .. } => {
            let window = i64::from(*window_minutes) * 60;
            let start = minute + 60 - window;
            let recent = history.volume_between(start, minute + 60);
            let day_before = history.volume_between(start - 24 * 3600, start);
            let usual = day_before * Decimal::from(window) / Decimal::from(24 * 3600);
            if usual.is_zero() {
                return None;
            }
            Some(Observation {
                reference: Some(usual.round_dp(12)),
                ..plain((recent / usual).round_dp(8))
            })
        }
        AlertCondition::CrossesAverage {
            average: kind,
            period,
            ..
        } => {
            let period = *period as usize;
            let wanted = match kind {
                MovingAverage::Sma => period,
                MovingAverage::Ema => period * EMA_WARM_UP_PERIODS,
            };
            let closes = history.closes_before(minute, wanted);
            if closes.len() < period {
                return None;
            }
            Some(Observation {
                value: price,
                reference: Some(average(*kind, &closes, period)?),
                previous: Some(previous?),
                at,
            })
        }
        AlertCondition::SentimentBelow { .. } | AlertCondition::SentimentAbove { .. } => {
            Some(plain(Decimal::from_f64(sentiment?)?.round_dp(6)))
        }
    }
}

/// The idempotency key of one alert's trigger by one tick.
pub fn trigger_key(alert_id: Uuid, tick: &Tick) -> String {
    let digest = Sha256::digest(tick.dedupe_key().as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("alert-trigger:{alert_id}:{hex}")
}

/// The evaluator's view of the read models, refreshed now and then.
#[derive(Debug, Default)]
struct View {
    armed: HashMap<String, Vec<ArmedAlert>>,
    sentiment: HashMap<String, f64>,
    /// USD per unit of each stablecoin quote with a known rate.
    rates: BTreeMap<String, Decimal>,
    loaded_at: Option<Instant>,
}

async fn load_view(pool: &PgPool, now: OffsetDateTime) -> Result<View, ProjectionError> {
    let rows: Vec<(Uuid, String, serde_json::Value, OffsetDateTime)> = sqlx::query_as(
        "SELECT alert_id, coin, condition, created_at FROM read.alerts WHERE status = 'ARMED'",
    )
    .fetch_all(pool)
    .await?;
    let mut armed: HashMap<String, Vec<ArmedAlert>> = HashMap::new();
    for (alert_id, coin, condition, created_at) in rows {
        match serde_json::from_value::<AlertCondition>(condition) {
            Ok(condition) => armed.entry(coin.clone()).or_default().push(ArmedAlert {
                alert_id,
                coin,
                condition,
                created_at,
            }),
            Err(error) => tracing::warn!(%alert_id, %error, "an alert's condition cannot be read"),
        }
    }
    let sentiment: Vec<(String, f64)> = sqlx::query_as(
        "SELECT coin, sum(score_sum) / sum(articles) FROM read.sentiment_hourly \
         WHERE hour > $1 GROUP BY coin HAVING sum(articles) > 0",
    )
    .bind(now - time::Duration::hours(24))
    .fetch_all(pool)
    .await?;
    let rates = crate::queries::stablecoin_rates(pool, None).await?;
    Ok(View {
        armed,
        sentiment: sentiment.into_iter().collect(),
        rates,
        loaded_at: Some(Instant::now()),
    })
}

/// Warms a coin's history from its 1-minute candles (USD quotes), oldest first; a
/// stablecoin close is converted at `rates`, and left out without one.
async fn warm(
    pool: &PgPool,
    coin: &str,
    now: OffsetDateTime,
    rates: &BTreeMap<String, Decimal>,
) -> Result<CoinHistory, ProjectionError> {
    let rows: Vec<(OffsetDateTime, String, Decimal, Decimal)> = sqlx::query_as(
        "SELECT open_time, quote, close, volume FROM read.candles \
         WHERE coin = $1 AND quote = ANY($2) AND interval = '1m' AND open_time > $3 \
         ORDER BY open_time",
    )
    .bind(coin)
    .bind(USD_QUOTES)
    .bind(now - time::Duration::days(8))
    .fetch_all(pool)
    .await?;
    let mut history = CoinHistory::default();
    for (at, quote, close, volume) in rows {
        if let Some(close) = usd_price(close, &quote, rates) {
            history.record(at, close, volume);
        }
    }
    Ok(history)
}

/// What an alert on `coin` observes right now, when its condition already holds: the
/// latest USD price (and the minute history and sentiment behind it) as the evaluator
/// would see them on the coin's next tick. An alert created while its condition holds
/// fires at once instead of on that tick. A crossing needs a price before and after,
/// so it never fires here; None too when the coin has no USD price yet.
pub async fn evaluate_now(
    pool: &PgPool,
    coin: &str,
    condition: &AlertCondition,
) -> Result<Option<Observation>, ProjectionError> {
    let rates = crate::queries::stablecoin_rates(pool, None).await?;
    let latest: Option<(String, Decimal, OffsetDateTime)> = sqlx::query_as(
        "SELECT quote, price, exchange_time FROM read.latest_prices \
         WHERE coin = $1 AND quote = ANY($2) ORDER BY array_position($2, quote) LIMIT 1",
    )
    .bind(coin)
    .bind(USD_QUOTES)
    .fetch_optional(pool)
    .await?;
    let Some((price, at)) =
        latest.and_then(|(quote, price, at)| Some((usd_price(price, &quote, &rates)?, at)))
    else {
        return Ok(None);
    };
    let history = warm(pool, coin, at, &rates).await?;
    let sentiment: Option<f64> = match condition {
        AlertCondition::SentimentBelow { .. } | AlertCondition::SentimentAbove { .. } => {
            sqlx::query_scalar(
                "SELECT sum(score_sum) / sum(articles) FROM read.sentiment_hourly \
                 WHERE coin = $1 AND hour > $2 HAVING sum(articles) > 0",
            )
            .bind(coin)
            .bind(OffsetDateTime::now_utc() - time::Duration::hours(24))
            .fetch_optional(pool)
            .await?
        }
        _ => None,
    };
    Ok(observe(condition, &history, None, price, at, sentiment).filter(|o| condition.is_met(o)))
}

/// A price quoted in `quote` in USD at the stablecoins' `rates`; None when `quote` is a
/// stablecoin without a rate.
pub fn usd_price(
    price: Decimal,
    quote: &str,
    rates: &BTreeMap<String, Decimal>,
) -> Option<Decimal> {
    crate::queries::to_usd(price, quote, rates)
}

/// The idempotency key of the trigger at an alert's creation.
pub fn creation_trigger_key(alert_id: Uuid) -> String {
    format!("alert-trigger:{alert_id}:created")
}

/// What the evaluator did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EvaluatorStats {
    pub ticks: u64,
    pub commands: u64,
    pub triggered: u64,
}

pub struct Evaluator<T> {
    pool: PgPool,
    trigger: T,
    refresh: Duration,
    view: View,
    coins: HashMap<String, CoinHistory>,
    stats: EvaluatorStats,
}

impl<T: AlertTrigger> Evaluator<T> {
    pub fn new(pool: PgPool, trigger: T) -> Self {
        Self {
            pool,
            trigger,
            refresh: Duration::from_secs(1),
            view: View::default(),
            coins: HashMap::new(),
            stats: EvaluatorStats::default(),
        }
    }

    pub fn stats(&self) -> EvaluatorStats {
        self.stats
    }

    /// Evaluates one tick against the armed alerts of its coin.
    pub async fn on_tick(&mut self, tick: &Tick) -> Result<(), ProjectionError> {
        if tick.kind == TickKind::Candle || !USD_QUOTES.contains(&tick.quote.as_str()) {
            return Ok(());
        }
        self.stats.ticks += 1;
        let stale = self
            .view
            .loaded_at
            .is_none_or(|at| at.elapsed() >= self.refresh);
        if stale {
            self.view = load_view(&self.pool, OffsetDateTime::now_utc()).await?;
        }
        let Some(price) = usd_price(tick.price.value(), tick.quote.as_str(), &self.view.rates)
        else {
            // A stablecoin without a rate: its price in USD is unknown.
            return Ok(());
        };
        let coin = tick.coin.as_str();
        if !self.coins.contains_key(coin) {
            let history = warm(&self.pool, coin, tick.exchange_time, &self.view.rates).await?;
            self.coins.insert(coin.to_owned(), history);
        }
        let (volume, _) = crate::models::market::traded(tick);
        let Some(history) = self.coins.get_mut(coin) else {
            return Ok(());
        };
        let previous = history.last_price;
        let sentiment = self.view.sentiment.get(coin).copied();
        let mut due = Vec::new();
        let armed = self.view.armed.get(coin).into_iter().flatten();
        for alert in armed.filter(|a| tick.exchange_time >= a.created_at) {
            if let Some(observation) = observe(
                &alert.condition,
                history,
                previous,
                price,
                tick.exchange_time,
                sentiment,
            )
            .filter(|o| alert.condition.is_met(o))
            {
                due.push((alert.alert_id, observation));
            }
        }
        history.record(tick.exchange_time, price, volume);
        history.last_price = Some(price);
        for (alert_id, observation) in due {
            self.stats.commands += 1;
            match self
                .trigger
                .trigger(alert_id, observation, trigger_key(alert_id, tick))
                .await
            {
                Ok(true) => {
                    self.stats.triggered += 1;
                    tracing::info!(alert.id = %alert_id, coin, "alert triggered");
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(alert.id = %alert_id, %error, "triggering an alert failed")
                }
            }
        }
        Ok(())
    }

    /// Reads `coinfold.market.ticks` in its own consumer group until `cancel` fires;
    /// commits a batch's offsets after its commands were answered.
    pub async fn run(
        mut self,
        source: &StreamSource,
        settings: &RunSettings,
        cancel: CancellationToken,
    ) -> Result<EvaluatorStats, ProjectionError> {
        let topic = source.topic(TICKS_TOPIC);
        let consumer = source.subscribe(&topic, "alert-evaluator")?;
        tracing::info!(%topic, group = %source.group_id, "alert evaluator started");
        while let Some(batch) = next_batch(&consumer, settings, &cancel).await? {
            for message in &batch {
                match serde_json::from_slice::<Tick>(&message.payload) {
                    Ok(tick) => self.on_tick(&tick).await?,
                    // The market projection dead-letters it; nothing to evaluate here.
                    Err(error) => tracing::debug!(%error, "not a tick"),
                }
            }
            let mut next = BTreeMap::new();
            advance(&mut next, &batch);
            commit_hint(&consumer, &topic, &next, "alert-evaluator")?;
        }
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coinfold_domain::alert::Direction;
    use coinfold_domain::values::Price;
    use rust_decimal_macros::dec;
    use time::macros::datetime;

    fn history(closes: &[(OffsetDateTime, Decimal, Decimal)]) -> CoinHistory {
        let mut h = CoinHistory::default();
        for (at, price, volume) in closes {
            h.record(*at, *price, *volume);
        }
        h
    }

    #[test]
    fn a_24h_change_is_measured_from_the_close_a_day_before() {
        let h = history(&[
            (datetime!(2026-01-01 10:00:30 UTC), dec!(100), dec!(1)),
            (datetime!(2026-01-02 09:59:00 UTC), dec!(108), dec!(1)),
        ]);
        let at = datetime!(2026-01-02 10:00:45 UTC);
        let condition = AlertCondition::Change24h { percent: dec!(10) };
        let o = observe(&condition, &h, None, dec!(111), at, None).unwrap();
        assert_eq!(o.value, dec!(11));
        assert!(condition.is_met(&o));
        // Without a day of history there is nothing to measure.
        let young = history(&[(datetime!(2026-01-02 09:00 UTC), dec!(100), dec!(1))]);
        assert_eq!(observe(&condition, &young, None, dec!(111), at, None), None);
    }

    #[test]
    fn a_cross_needs_the_previous_price_on_the_other_side() {
        let start = datetime!(2026-01-01 00:00 UTC);
        let closes: Vec<_> = (0..5)
            .map(|i| (start + time::Duration::minutes(i), dec!(100), dec!(0)))
            .collect();
        let h = history(&closes);
        let condition = AlertCondition::CrossesAverage {
            average: MovingAverage::Sma,
            period: 5,
            direction: Direction::Above,
        };
        let at = start + time::Duration::minutes(5);
        let crossed = observe(&condition, &h, Some(dec!(99)), dec!(101), at, None).unwrap();
        assert_eq!(crossed.reference, Some(dec!(100)));
        assert!(condition.is_met(&crossed));
        let ema = AlertCondition::CrossesAverage {
            average: MovingAverage::Ema,
            period: 5,
            direction: Direction::Above,
        };
        let crossed_ema = observe(&ema, &h, Some(dec!(99)), dec!(101), at, None).unwrap();
        assert_eq!(crossed_ema.reference, Some(dec!(100)));
        assert!(ema.is_met(&crossed_ema));
        let already_above =
            observe(&condition, &h, Some(dec!(100.5)), dec!(101), at, None).unwrap();
        assert!(!condition.is_met(&already_above));
    }

    #[test]
    fn a_volume_spike_compares_the_window_with_the_day_before() {
        let start = datetime!(2026-01-01 00:00 UTC);
        // A day of 1 per minute, then 10 in the last minute.
        let mut closes: Vec<_> = (0..1440)
            .map(|i| (start + time::Duration::minutes(i), dec!(100), dec!(1)))
            .collect();
        closes.push((start + time::Duration::minutes(1440), dec!(100), dec!(10)));
        let h = history(&closes);
        let condition = AlertCondition::VolumeSpike {
            factor: dec!(5),
            window_minutes: 1,
        };
        let at = start + time::Duration::minutes(1440) + time::Duration::seconds(30);
        let o = observe(&condition, &h, None, dec!(100), at, None).unwrap();
        assert_eq!(o.value, dec!(10));
        assert!(condition.is_met(&o));
    }

    #[test]
    fn a_stablecoin_tick_is_judged_at_its_rate_not_at_par() {
        let h = CoinHistory::default();
        let at = datetime!(2026-01-01 00:00 UTC);
        let above = AlertCondition::PriceAbove {
            threshold: Price::new(dec!(100)).unwrap(),
        };
        // USDT at 0.99: 100.5 USDT is 99.495 USD, under the threshold.
        let rates = BTreeMap::from([("USDT".to_owned(), dec!(0.99))]);
        let usd = usd_price(dec!(100.5), "USDT", &rates).unwrap();
        assert_eq!(usd, dec!(99.495));
        assert!(!above.is_met(&observe(&above, &h, None, usd, at, None).unwrap()));
        // At par it would have fired.
        assert!(above.is_met(&observe(&above, &h, None, dec!(100.5), at, None).unwrap()));
        // Without a rate there is no USD price; USD needs none.
        assert_eq!(usd_price(dec!(100.5), "USDC", &rates), None);
        assert_eq!(usd_price(dec!(100.5), "USD", &rates), Some(dec!(100.5)));
    }

    #[test]
    fn price_and_sentiment_conditions_read_the_tick_and_the_score() {
        let h = CoinHistory::default();
        let at = datetime!(2026-01-01 00:00 UTC);
        let above = AlertCondition::PriceAbove {
            threshold: Price::new(dec!(50)).unwrap(),
        };
        assert!(above.is_met(&observe(&above, &h, None, dec!(50), at, None).unwrap()));
        let gloomy = AlertCondition::SentimentBelow { score: dec!(-0.3) };
        assert!(observe(&gloomy, &h, None, dec!(1), at, None).is_none());
        let o = observe(&gloomy, &h, None, dec!(1), at, Some(-0.5)).unwrap();
        assert!(gloomy.is_met(&o));
    }
}
