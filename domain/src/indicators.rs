//! Technical indicators over candle closes, updated one closed candle at a time with
//! constant work per candle (amortized, where a window is summed again: see the shift).
//!
//! **Incremental.** Each indicator keeps just enough state to produce its next output
//! without looking back over its window: rolling sums with a ring buffer
//! (`VecDeque`) of the values that must later leave them (SMA, Bollinger, volatility,
//! correlation), or a recursive average (EMA, RSI, MACD). An update pushes one value,
//! pops at most one, and does a fixed amount of arithmetic however long the window,
//! but for the occasional re-anchoring below, whose cost the later updates pay back.
//!
//! **Compensated sums.** A running sum that adds each new value and subtracts the one
//! leaving would drift: every addition rounds, and the errors never leave with the
//! values. The sums here are Neumaier-compensated: each addition's rounding error is
//! recovered exactly and kept in a second term, so after any number of updates the
//! sum is within about one rounding of the exact sum of the current window.
//!
//! **The shift trick.** Variance from rolling sums, `Σx² − (Σx)²/n`, subtracts two
//! numbers of size `n·x²`; with BTC at 60 000 and a window spread of a few dollars that
//! cancellation would destroy most digits. So the sums are of `x − shift`: deviations
//! and their squares stay small and little cancels, as long as the shift is near the
//! window. About `log10(((mean − shift) / stdev)²)` digits are still lost, so no fixed
//! shift will do (from a price that has since doubled, or to a window flat but for one
//! small move, 7 digits or more would go), nor one that moves only on a schedule: after
//! a jump from 60 000 to 61 000 and quiet trading at ±0.005, a shift from before the
//! jump is 4e10 variances away, and every window until the schedule moves it loses 10
//! digits. So the shift follows the window. The first value is the shift; after each
//! update, if the window's mean is more than 10 deviations from the shift
//! (`(mean − shift)² > 100 · variance`, up to which the variance keeps all but about
//! 2.6 of its 16 digits), the window, kept anyway to remove leaving values, is summed
//! again around its mean. That update costs O(window), on credit: each update pays
//! back the re-summing of one value, and re-anchoring waits while more than one window
//! is owed, so however the data moves at most one value per update, plus two windows,
//! is summed again: O(1) amortized. A trend re-anchors about every three windows, a jump once or
//! twice; only a window whose spread collapses at every update (each value a hundredth
//! of the last, say) asks for more, and may then wait up to a window, losing digits
//! meanwhile.
//!
//! **Constant windows.** A window of identical values has a variance of exactly zero,
//! but rolling sums only get near zero. Each rolling indicator counts how many of the
//! latest values are equal, so a constant window reports exactly: SMA and the
//! Bollinger middle give the value itself, the deviation is 0, and a correlation is
//! undefined (`None`).
//!
//! **Counting operations.** Every indicator is generic over [`Real`] (`f64` by
//! default), the only arithmetic it uses. The tests instantiate the indicators with a
//! `Real` that counts every operation and check that the most operations an update
//! takes, re-anchoring aside, is the same for windows of 5, 50 and 500, and that the
//! average, re-anchoring included, stays under the same bound for all three, also on
//! a series that re-anchors all the budget allows: the O(1) claims, tested.
//!
//! **Unusable values.** A value an indicator cannot use (not finite; for volatility and
//! log-return matrices also not positive) is skipped: `update` returns `None` and the
//! state is untouched, so one bad candle cannot poison sums that outlive it. `value()`
//! still gives the last output.
//!
//! **Persistence.** All state is `Serialize`/`Deserialize` so a projection can store it
//! with its checkpoint. Floats in state are written as their shortest round-trip
//! decimal *strings*: a restored indicator must continue bit for bit, and JSON numbers
//! only come back exact if every reader parses them exactly (serde_json's default
//! parser is one ulp off for about 3 % of prices near 60 000).

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Add, Div, Mul, Neg, Sub};

use serde::{Deserialize, Serialize};

/// The arithmetic the indicators use. `f64` in production; a counting type in the
/// tests, which is how per-update work is measured.
pub trait Real:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + fmt::Debug
{
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn sqrt(self) -> Self;
    fn ln(self) -> Self;
    fn abs(self) -> Self;
}

impl Real for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }

    fn to_f64(self) -> f64 {
        self
    }

    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }

    fn ln(self) -> Self {
        f64::ln(self)
    }

    fn abs(self) -> Self {
        f64::abs(self)
    }
}

/// An indicator's parameters were invalid, or a correlation-matrix row was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IndicatorError {
    #[error("the {name} must be at least {min}, got {got}")]
    PeriodTooShort {
        name: &'static str,
        min: usize,
        got: usize,
    },
    #[error("the fast period ({fast}) must be shorter than the slow period ({slow})")]
    FastNotShorterThanSlow { fast: usize, slow: usize },
    #[error("the band width k must be finite and not negative, got {0}")]
    InvalidBandWidth(f64),
    #[error("periods per year must be finite and positive, got {0}")]
    InvalidPeriodsPerYear(f64),
    #[error("a correlation matrix needs at least one series")]
    NoSeries,
    #[error("the series name {0:?} appears more than once")]
    DuplicateSeries(String),
    #[error("expected a row of {expected} values, got {got}")]
    RowLength { expected: usize, got: usize },
    #[error("row skipped: the value of series {0:?} is not usable")]
    UnusableValue(String),
}

/// How many candles of `interval_seconds` fit in a year. Crypto trades around the
/// clock, so a year is 365 × 86 400 s (not 252 trading days). An interval of 0 gives
/// infinity, which [`Volatility::new`] rejects.
pub fn periods_per_year(interval_seconds: u64) -> f64 {
    365.0 * 86_400.0 / interval_seconds as f64
}

fn check_period(name: &'static str, got: usize, min: usize) -> Result<(), IndicatorError> {
    if got < min {
        return Err(IndicatorError::PeriodTooShort { name, min, got });
    }
    Ok(())
}

fn usable<R: Real>(x: R) -> bool {
    x.to_f64().is_finite()
}

fn count<R: Real>(n: usize) -> R {
    R::from_f64(n as f64)
}

/// Serde for the floats in indicator state: each as the shortest decimal string that
/// parses back to the same bits (see the module header for why not JSON numbers).
mod exact {
    use super::Real;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    struct Text<R>(R);

    impl<R: Real> Serialize for Text<R> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_str(&format_args!("{:?}", self.0.to_f64()))
        }
    }

    impl<'de, R: Real> Deserialize<'de> for Text<R> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let text = String::deserialize(deserializer)?;
            text.parse::<f64>()
                .map(|v| Text(R::from_f64(v)))
                .map_err(serde::de::Error::custom)
        }
    }

    pub(super) mod one {
        use super::*;

        pub(in crate::indicators) fn serialize<R: Real, S: Serializer>(
            value: &R,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            Text(*value).serialize(serializer)
        }

        pub(in crate::indicators) fn deserialize<'de, R: Real, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<R, D::Error> {
            Text::deserialize(deserializer).map(|t| t.0)
        }
    }

    pub(super) mod option {
        use super::*;

        pub(in crate::indicators) fn serialize<R: Real, S: Serializer>(
            value: &Option<R>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            value.map(Text).serialize(serializer)
        }

        pub(in crate::indicators) fn deserialize<'de, R: Real, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<R>, D::Error> {
            Option::<Text<R>>::deserialize(deserializer).map(|o| o.map(|t| t.0))
        }
    }

    pub(super) mod seq {
        use super::*;

        pub(in crate::indicators) fn serialize<'a, R, C, S>(
            values: &'a C,
            serializer: S,
        ) -> Result<S::Ok, S::Error>
        where
            R: Real + 'a,
            &'a C: IntoIterator<Item = &'a R>,
            S: Serializer,
        {
            serializer.collect_seq(values.into_iter().map(|v| Text(*v)))
        }

        pub(in crate::indicators) fn deserialize<'de, R, C, D>(
            deserializer: D,
        ) -> Result<C, D::Error>
        where
            R: Real,
            C: FromIterator<R>,
            D: Deserializer<'de>,
        {
            Vec::<Text<R>>::deserialize(deserializer).map(|v| v.into_iter().map(|t| t.0).collect())
        }
    }
}

/// A Neumaier-compensated sum: `sum + compensation` is the sum of everything added,
/// short only of the (tiny) roundings of the compensation itself, so adding and
/// later subtracting each value of a rolling window does not drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: Real")]
struct CompensatedSum<R> {
    #[serde(with = "exact::one")]
    sum: R,
    #[serde(with = "exact::one")]
    compensation: R,
}

impl<R: Real> CompensatedSum<R> {
    fn zero() -> Self {
        Self {
            sum: R::from_f64(0.0),
            compensation: R::from_f64(0.0),
        }
    }

    fn add(&mut self, x: R) {
        let t = self.sum + x;
        // The rounding error of `sum + x`, exact when computed from the larger operand.
        let lost = if self.sum.abs() >= x.abs() {
            (self.sum - t) + x
        } else {
            (x - t) + self.sum
        };
        self.compensation = self.compensation + lost;
        self.sum = t;
    }

    fn value(&self) -> R {
        self.sum + self.compensation
    }
}

/// Compensated sums of `x − shift` and `(x − shift)²` over the values added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: Real")]
struct Anchored<R> {
    #[serde(with = "exact::one")]
    shift: R,
    sum: CompensatedSum<R>,
    sum_sq: CompensatedSum<R>,
}

impl<R: Real> Anchored<R> {
    fn at(shift: R) -> Self {
        Self {
            shift,
            sum: CompensatedSum::zero(),
            sum_sq: CompensatedSum::zero(),
        }
    }

    /// Adds `x`; returns `x − shift`.
    fn add(&mut self, x: R) -> R {
        let d = x - self.shift;
        self.sum.add(d);
        self.sum_sq.add(d * d);
        d
    }

    /// Removes an `x` added earlier (recomputing exactly what was added); returns
    /// `x − shift`.
    fn remove(&mut self, x: R) -> R {
        let d = x - self.shift;
        self.sum.add(-d);
        self.sum_sq.add(-(d * d));
        d
    }
}

/// What one [`Moments::push`] did, for sums kept alongside (correlation's products).
struct Pushed<R> {
    /// The value's deviation from the shift.
    added: R,
    /// The leaving value's deviation from the shift.
    left: Option<R>,
}

/// The sums are re-anchored once `(mean − shift)² > DRIFT · variance`: the mean is
/// more than 10 deviations from the shift. Up to there the variance is within about
/// `4 · DRIFT` roundings (2.6 digits, a relative error under 1e-13).
const DRIFT: f64 = 100.0;

/// Rolling shifted sums over the last `len` values, and how many of the latest values
/// are equal (to report constant windows exactly).
///
/// The first value is the shift. After that the shift moves only when the window has
/// moved away from it ([`Moments::drifted`]): [`Moments::reanchor`] then sums the
/// window again from its values, around its mean. That update costs O(`len`); `owed`
/// makes it O(1) amortized (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: Real")]
struct Moments<R> {
    len: usize,
    /// The raw values, to remove leaving values and to sum the window again.
    #[serde(with = "exact::seq")]
    window: VecDeque<R>,
    /// The sums over the window. States stored before the shift followed the window
    /// call them `current` (and have a second set, `next`, which is ignored).
    #[serde(alias = "current")]
    sums: Anchored<R>,
    #[serde(with = "exact::one")]
    last: R,
    run: usize,
    /// Re-summing not yet paid for, in values: a re-anchoring adds `len`, each push pays
    /// one back, and re-anchoring waits while more than `len` is owed.
    #[serde(default)]
    owed: usize,
}

impl<R: Real> Moments<R> {
    fn new(len: usize) -> Self {
        Self {
            len,
            window: VecDeque::new(),
            sums: Anchored::at(R::from_f64(0.0)),
            last: R::from_f64(0.0),
            run: 0,
            owed: 0,
        }
    }

    /// Adds `x` and removes the value leaving the window, around the current shift.
    fn push(&mut self, x: R) -> Pushed<R> {
        self.run = if !self.window.is_empty() && x == self.last {
            (self.run + 1).min(self.len)
        } else {
            1
        };
        self.last = x;
        if self.window.is_empty() {
            self.sums = Anchored::at(x);
        }
        self.window.push_back(x);
        let added = self.sums.add(x);
        let mut left = None;
        if self.window.len() > self.len
            && let Some(old) = self.window.pop_front()
        {
            left = Some(self.sums.remove(old));
        }
        self.owed = self.owed.saturating_sub(1);
        Pushed { added, left }
    }

    /// Whether to re-anchor: the window is full and not constant, its mean is more
    /// than 10 deviations from the shift, and at most one window of re-summing is
    /// owed. A variance the shift has already ruined is no obstacle: its error is
    /// about `(mean − shift)²` roundings, far below `(mean − shift)² / DRIFT`.
    fn drifted(&self) -> bool {
        if !self.is_full() || self.is_constant() || self.owed > self.len {
            return false;
        }
        // (mean − shift)² > DRIFT · variance, times n²:
        // (Σ(x − shift))² > DRIFT · n · Σ(x − mean)².
        let s = self.sum();
        s * s > R::from_f64(DRIFT) * count(self.len) * self.sum_sq_dev()
    }

    /// Sums the window again around its mean.
    fn reanchor(&mut self) {
        self.sums = Anchored::at(self.mean());
        for &x in &self.window {
            self.sums.add(x);
        }
        self.owed += self.len;
    }

    /// Re-anchors if the window has [drifted](Moments::drifted).
    fn follow(&mut self) {
        if self.drifted() {
            self.reanchor();
        }
    }

    /// Each value's deviation from the shift, oldest first.
    fn deviations(&self) -> impl Iterator<Item = R> + '_ {
        self.window.iter().map(|&x| x - self.sums.shift)
    }

    fn is_full(&self) -> bool {
        self.window.len() == self.len
    }

    fn is_constant(&self) -> bool {
        self.run >= self.len
    }

    fn sum(&self) -> R {
        self.sums.sum.value()
    }

    fn mean(&self) -> R {
        if self.is_constant() {
            self.last
        } else {
            self.sums.shift + self.sum() / count(self.len)
        }
    }

    /// `Σ(x − mean)²` over the window; never negative, exactly 0 for a constant window.
    fn sum_sq_dev(&self) -> R {
        let zero = R::from_f64(0.0);
        if self.is_constant() {
            return zero;
        }
        let s = self.sum();
        let dev = self.sums.sum_sq.value() - s * s / count(self.len);
        if dev > zero { dev } else { zero }
    }
}

/// Simple moving average of the last `period` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: Real")]
pub struct Sma<R: Real = f64> {
    period: usize,
    #[serde(with = "exact::seq")]
    window: VecDeque<R>,
    sum: CompensatedSum<R>,
    run: usize,
}

impl<R: Real> Sma<R> {
    /// Fails if `period` is 0.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        check_period("period", period, 1)?;
        Ok(Self {
            period,
            window: VecDeque::new(),
            sum: CompensatedSum::zero(),
            run: 0,
        })
    }

    /// Output from the `period`-th value on.
    pub fn update(&mut self, x: R) -> Option<R> {
        if !usable(x) {
            return None;
        }
        self.run = match self.window.back() {
            Some(&last) if last == x => (self.run + 1).min(self.period),
            _ => 1,
        };
        self.sum.add(x);
        self.window.push_back(x);
        if self.window.len() > self.period
            && let Some(old) = self.window.pop_front()
        {
            self.sum.add(-old);
        }
        self.value()
    }

    pub fn value(&self) -> Option<R> {
        if self.window.len() < self.period {
            return None;
        }
        if self.run >= self.period {
            // A constant window: the value itself, not a rounded sum divided back.
            return self.window.back().copied();
        }
        Some(self.sum.value() / count(self.period))
    }
}

/// Exponential moving average, alpha = 2/(period + 1), seeded with the SMA of the
/// first `period` values (the conventional definition), so the output starts at the
/// `period`-th value and does not depend on an arbitrary first value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: Real")]
pub struct Ema<R: Real = f64> {
    period: usize,
    #[serde(with = "exact::one")]
    alpha: R,
    seen: usize,
    /// The plain sum of the first `period` values, then the average itself. A plain
    /// sum suffices: it is summed once, over one window, and never rolled.
    #[serde(with = "exact::one")]
    state: R,
}

impl<R: Real> Ema<R> {
    /// Fails if `period` is 0.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        check_period("period", period, 1)?;
        Ok(Self::with_period(period))
    }

    fn with_period(period: usize) -> Self {
        Self {
            period,
            alpha: R::from_f64(2.0 / (period as f64 + 1.0)),
            seen: 0,
            state: R::from_f64(0.0),
        }
    }

    /// Output from the `period`-th value on.
    pub fn update(&mut self, x: R) -> Option<R> {
        if !usable(x) {
            return None;
        }
        if self.seen < self.period {
            self.state = self.state + x;
            self.seen += 1;
            if self.seen == self.period {
                self.state = self.state / count(self.period);
            }
        } else {
            self.state = self.state + self.alpha * (x - self.state);
        }
        self.value()
    }

    pub fn value(&self) -> Option<R> {
        (self.seen == self.period).then_some(self.state)
    }
}

/// Relative strength index with Wilder's smoothing: the first average gain and loss
/// are the simple means of the first `period` changes, then
/// `avg = (avg·(period − 1) + current) / period`; RSI = 100 − 100/(1 + gain/loss).
/// With no losses RSI is 100; with neither gains nor losses (a flat market) it is 50,
/// the neutral reading, rather than undefined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: Real")]
pub struct Rsi<R: Real = f64> {
    period: usize,
    #[serde(with = "exact::option")]
    previous: Option<R>,
    changes: usize,
    /// Sums of gains and losses over the first `period` changes, then their averages.
    #[serde(with = "exact::one")]
    gain: R,
    #[serde(with = "exact::one")]
    loss: R,
}

impl<R: Real> Rsi<R> {
    pub const DEFAULT_PERIOD: usize = 14;

    /// Fails if `period` is 0.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        check_period("period", period, 1)?;
        Ok(Self::with_period(period))
    }

    fn with_period(period: usize) -> Self {
        Self {
            period,
            previous: None,
            changes: 0,
            gain: R::from_f64(0.0),
            loss: R::from_f64(0.0),
        }
    }

    /// Output from the `period + 1`-th value on (it takes `period` changes).
    pub fn update(&mut self, x: R) -> Option<R> {
        if !usable(x) {
            return None;
        }
        let previous = self.previous.replace(x)?;
        let change = x - previous;
        let zero = R::from_f64(0.0);
        let (gain, loss) = if change > zero {
            (change, zero)
        } else {
            (zero, -change)
        };
        if self.changes < self.period {
            self.gain = self.gain + gain;
            self.loss = self.loss + loss;
            self.changes += 1;
            if self.changes == self.period {
                self.gain = self.gain / count(self.period);
                self.loss = self.loss / count(self.period);
            }
        } else {
            let keep = count::<R>(self.period.saturating_sub(1));
            let n = count::<R>(self.period);
            self.gain = (self.gain * keep + gain) / n;
            self.loss = (self.loss * keep + loss) / n;
        }
        self.value()
    }

    pub fn value(&self) -> Option<R> {
        if self.changes < self.period {
            return None;
        }
        let zero = R::from_f64(0.0);
        let hundred = R::from_f64(100.0);
        if self.loss == zero {
            if self.gain == zero {
                return Some(R::from_f64(50.0));
            }
            return Some(hundred);
        }
        let rs = self.gain / self.loss;
        Some(hundred - hundred / (R::from_f64(1.0) + rs))
    }
}

impl<R: Real> Default for Rsi<R> {
    /// RSI(14), Wilder's original period.
    fn default() -> Self {
        Self::with_period(Self::DEFAULT_PERIOD)
    }
}

/// One MACD reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MacdValue<R = f64> {
    /// EMA(fast) − EMA(slow).
    pub macd: R,
    /// EMA(signal) of the MACD line.
    pub signal: R,
    /// `macd − signal`.
    pub histogram: R,
}

/// Moving average convergence/divergence. Both EMAs are SMA-seeded, so the MACD line
/// starts with the slow EMA; the signal line is an SMA-seeded EMA of that line, and
/// output starts once it exists (after `slow + signal − 1` values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: Real")]
pub struct Macd<R: Real = f64> {
    fast: Ema<R>,
    slow: Ema<R>,
    signal: Ema<R>,
}

impl<R: Real> Macd<R> {
    pub const DEFAULT_FAST: usize = 12;
    pub const DEFAULT_SLOW: usize = 26;
    pub const DEFAULT_SIGNAL: usize = 9;

    /// Fails if a period is 0 or `fast` is not shorter than `slow`.
    pub fn new(fast: usize, slow: usize, signal: usize) -> Result<Self, IndicatorError> {
        check_period("fast period", fast, 1)?;
        check_period("signal period", signal, 1)?;
        if fast >= slow {
            return Err(IndicatorError::FastNotShorterThanSlow { fast, slow });
        }
        Ok(Self {
            fast: Ema::new(fast)?,
            slow: Ema::new(slow)?,
            signal: Ema::new(signal)?,
        })
    }

    pub fn update(&mut self, x: R) -> Option<MacdValue<R>> {
        if !usable(x) {
            return None;
        }
        let fast = self.fast.update(x);
        if let (Some(fast), Some(slow)) = (fast, self.slow.update(x)) {
            self.signal.update(fast - slow);
        }
        self.value()
    }

    pub fn value(&self) -> Option<MacdValue<R>> {
        let signal = self.signal.value()?;
        let macd = self.fast.value()? - self.slow.value()?;
        Some(MacdValue {
            macd,
            signal,
            histogram: macd - signal,
        })
    }
}

impl<R: Real> Default for Macd<R> {
    /// MACD(12, 26, 9), the conventional parameters.
    fn default() -> Self {
        Self {
            fast: Ema::with_period(Self::DEFAULT_FAST),
            slow: Ema::with_period(Self::DEFAULT_SLOW),
            signal: Ema::with_period(Self::DEFAULT_SIGNAL),
        }
    }
}

/// One Bollinger reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BollingerValue<R = f64> {
    /// The SMA.
    pub middle: R,
    /// `middle + k·stdev`.
    pub upper: R,
    /// `middle − k·stdev`.
    pub lower: R,
    /// Population standard deviation over the window (as Bollinger defined the bands).
    pub stdev: R,
}

/// Bollinger bands: SMA ± k population standard deviations over `period` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: Real")]
pub struct Bollinger<R: Real = f64> {
    #[serde(with = "exact::one")]
    k: R,
    moments: Moments<R>,
}

impl<R: Real> Bollinger<R> {
    pub const DEFAULT_PERIOD: usize = 20;
    pub const DEFAULT_K: f64 = 2.0;

    /// Fails if `period` is 0 or `k` is negative or not finite.
    pub fn new(period: usize, k: f64) -> Result<Self, IndicatorError> {
        check_period("period", period, 1)?;
        if !(k.is_finite() && k >= 0.0) {
            return Err(IndicatorError::InvalidBandWidth(k));
        }
        Ok(Self {
            k: R::from_f64(k),
            moments: Moments::new(period),
        })
    }

    /// Output from the `period`-th value on.
    pub fn update(&mut self, x: R) -> Option<BollingerValue<R>> {
        if !usable(x) {
            return None;
        }
        self.moments.push(x);
        self.moments.follow();
        self.value()
    }

    pub fn value(&self) -> Option<BollingerValue<R>> {
        let m = &self.moments;
        if !m.is_full() {
            return None;
        }
        let middle = m.mean();
        let stdev = (m.sum_sq_dev() / count(m.len)).sqrt();
        let band = self.k * stdev;
        Some(BollingerValue {
            middle,
            upper: middle + band,
            lower: middle - band,
            stdev,
        })
    }
}

impl<R: Real> Default for Bollinger<R> {
    /// Bollinger(20, 2), the conventional parameters.
    fn default() -> Self {
        Self {
            k: R::from_f64(Self::DEFAULT_K),
            moments: Moments::new(Self::DEFAULT_PERIOD),
        }
    }
}

/// Annualized volatility: the sample standard deviation (n − 1) of the last `window`
/// log returns `ln(x_t / x_{t−1})`, times `sqrt(periods_per_year)`.
///
/// A price that is not positive has no log return: it is skipped (`update` returns
/// `None`, state untouched) and the next return is taken from the last good price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: Real")]
pub struct Volatility<R: Real = f64> {
    #[serde(with = "exact::one")]
    annualization: R,
    #[serde(with = "exact::option")]
    previous: Option<R>,
    returns: Moments<R>,
}

impl<R: Real> Volatility<R> {
    /// Fails if `window` is below 2 (a sample deviation needs two returns) or
    /// `periods_per_year` is not finite and positive (see [`periods_per_year`]).
    pub fn new(window: usize, periods_per_year: f64) -> Result<Self, IndicatorError> {
        check_period("window", window, 2)?;
        if !(periods_per_year.is_finite() && periods_per_year > 0.0) {
            return Err(IndicatorError::InvalidPeriodsPerYear(periods_per_year));
        }
        Ok(Self {
            annualization: R::from_f64(periods_per_year.sqrt()),
            previous: None,
            returns: Moments::new(window),
        })
    }

    /// Output once `window` returns exist, i.e. from the `window + 1`-th price on.
    pub fn update(&mut self, price: R) -> Option<R> {
        if !(usable(price) && price > R::from_f64(0.0)) {
            return None;
        }
        let previous = self.previous.replace(price)?;
        self.returns.push((price / previous).ln());
        self.returns.follow();
        self.value()
    }

    pub fn value(&self) -> Option<R> {
        let m = &self.returns;
        if !m.is_full() {
            return None;
        }
        let variance = m.sum_sq_dev() / count(m.len.saturating_sub(1));
        Some(variance.sqrt() * self.annualization)
    }
}

/// Rolling Pearson correlation of two paired series over `window` pairs. `None` until
/// the window is full and whenever either series is constant over it (zero variance
/// leaves the correlation undefined). Rounding is clamped into [−1, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: Real")]
pub struct Correlation<R: Real = f64> {
    x: Moments<R>,
    y: Moments<R>,
    /// `Σ(x − shift_x)(y − shift_y)` over the window, with the shifts of `x` and `y`.
    /// They re-anchor together, and this is summed again when they do. (States stored
    /// before the shifts followed the window also have a `next_cross`, now ignored.)
    cross: CompensatedSum<R>,
}

impl<R: Real> Correlation<R> {
    /// Fails if `window` is below 2.
    pub fn new(window: usize) -> Result<Self, IndicatorError> {
        check_period("window", window, 2)?;
        Ok(Self::with_window(window))
    }

    fn with_window(window: usize) -> Self {
        Self {
            x: Moments::new(window),
            y: Moments::new(window),
            cross: CompensatedSum::zero(),
        }
    }

    /// A pair is used or skipped whole: if either value is not finite, neither counts.
    pub fn update(&mut self, x: R, y: R) -> Option<R> {
        if !(usable(x) && usable(y)) {
            return None;
        }
        let (px, py) = (self.x.push(x), self.y.push(y));
        self.cross.add(px.added * py.added);
        if let (Some(lx), Some(ly)) = (px.left, py.left) {
            self.cross.add(-(lx * ly));
        }
        // Both or neither: the products need both shifts. The two windows are pushed
        // in step and re-anchored together, so they owe the same.
        if self.x.drifted() || self.y.drifted() {
            self.x.reanchor();
            self.y.reanchor();
            self.cross = CompensatedSum::zero();
            for (dx, dy) in self.x.deviations().zip(self.y.deviations()) {
                self.cross.add(dx * dy);
            }
        }
        self.value()
    }

    pub fn value(&self) -> Option<R> {
        if !self.x.is_full() || self.x.is_constant() || self.y.is_constant() {
            return None;
        }
        let zero = R::from_f64(0.0);
        let (vx, vy) = (self.x.sum_sq_dev(), self.y.sum_sq_dev());
        if !(vx > zero && vy > zero) {
            return None;
        }
        let n = count::<R>(self.x.len);
        let cov = self.cross.value() - self.x.sum() * self.y.sum() / n;
        let r = cov / (vx.sqrt() * vy.sqrt());
        let one = R::from_f64(1.0);
        Some(if r > one {
            one
        } else if r < -one {
            -one
        } else {
            r
        })
    }
}

/// Rolling correlations between N named series fed one aligned row at a time, one
/// [`Correlation`] per pair: a row costs O(N²), still independent of the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: Real")]
pub struct CorrelationMatrix<R: Real = f64> {
    names: Vec<String>,
    log_returns: bool,
    /// The last row, when correlating log returns.
    #[serde(with = "exact::seq")]
    previous: Vec<R>,
    /// Pairs (i, j), i < j, in row-major order.
    pairs: Vec<Correlation<R>>,
}

impl<R: Real> CorrelationMatrix<R> {
    /// Correlates the values as given. Fails on no names, a repeated name or a window
    /// below 2.
    pub fn new(names: Vec<String>, window: usize) -> Result<Self, IndicatorError> {
        Self::build(names, window, false)
    }

    /// Correlates the log returns of prices, which is what "the correlation of BTC and
    /// ETH" usually means: prices that both trend correlate whether or not they move
    /// together. Rows are prices; the first row only sets the reference, so output
    /// starts at row `window + 1`.
    pub fn of_log_returns(names: Vec<String>, window: usize) -> Result<Self, IndicatorError> {
        Self::build(names, window, true)
    }

    fn build(names: Vec<String>, window: usize, log_returns: bool) -> Result<Self, IndicatorError> {
        check_period("window", window, 2)?;
        if names.is_empty() {
            return Err(IndicatorError::NoSeries);
        }
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(IndicatorError::DuplicateSeries(name.clone()));
            }
        }
        let n = names.len();
        Ok(Self {
            names,
            log_returns,
            previous: Vec::new(),
            pairs: (0..n * (n - 1) / 2)
                .map(|_| Correlation::with_window(window))
                .collect(),
        })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Feeds one row, in the order of the names. A row of the wrong length, or with a
    /// value that is not finite (or, for log returns, not positive), is rejected
    /// whole and leaves the state untouched.
    pub fn update(&mut self, row: &[R]) -> Result<(), IndicatorError> {
        if row.len() != self.names.len() {
            return Err(IndicatorError::RowLength {
                expected: self.names.len(),
                got: row.len(),
            });
        }
        let zero = R::from_f64(0.0);
        for (name, &v) in self.names.iter().zip(row) {
            // `usable` first: past it `v` is a number, so `<=` is the negation of `>`.
            if !usable(v) || (self.log_returns && v <= zero) {
                return Err(IndicatorError::UnusableValue(name.clone()));
            }
        }
        let values: Vec<R> = if !self.log_returns {
            row.to_vec()
        } else if self.previous.is_empty() {
            // The first row of prices: no returns yet.
            self.previous = row.to_vec();
            return Ok(());
        } else {
            let returns = self.previous.iter().zip(row).map(|(&p, &x)| (x / p).ln());
            let returns = returns.collect();
            self.previous = row.to_vec();
            returns
        };
        let mut pairs = self.pairs.iter_mut();
        for (i, &x) in values.iter().enumerate() {
            for &y in &values[i + 1..] {
                if let Some(pair) = pairs.next() {
                    pair.update(x, y);
                }
            }
        }
        Ok(())
    }

    /// The correlation of series `i` and `j`, `i < j`: pairs are stored row by row.
    fn pair(&self, i: usize, j: usize) -> Option<f64> {
        let n = self.names.len();
        let index = i * n - i * (i + 1) / 2 + (j - i - 1);
        let pair = self.pairs.get(index)?;
        pair.value().map(Real::to_f64)
    }

    /// Row `i`, column `j` is the correlation of series `i` and `j` (`None` while
    /// undefined); the diagonal is 1.
    pub fn matrix(&self) -> Vec<Vec<Option<f64>>> {
        let n = self.names.len();
        let cell = |i: usize, j: usize| match i.cmp(&j) {
            std::cmp::Ordering::Less => self.pair(i, j),
            std::cmp::Ordering::Equal => Some(1.0),
            std::cmp::Ordering::Greater => self.pair(j, i),
        };
        (0..n)
            .map(|i| (0..n).map(|j| cell(i, j)).collect())
            .collect()
    }
}

#[cfg(test)]
mod tests;
