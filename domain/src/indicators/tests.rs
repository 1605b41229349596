//! Every indicator against a naive reference on five kinds of price series, the
//! rolling deviations against exact (integer) references after a jump, the warm-up
//! lengths, edge cases (flat markets, bad values), parameter validation, a bit-exact
//! restore from JSON, and an operation count showing that per-update work does not
//! grow with the window (amortized, where a window is summed again).

use super::*;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use std::cell::Cell;
use std::cmp::Ordering;

// ---------------------------------------------------------------------------------
// Series
// ---------------------------------------------------------------------------------

/// xorshift64*: deterministic series without a new dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [−1, 1).
    fn signed(&mut self) -> f64 {
        2.0 * self.unit() - 1.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }
}

const LEN: usize = 3_000;

struct Series {
    name: &'static str,
    values: Vec<f64>,
    /// Mean absolute value: the scale for price-scaled tolerances.
    scale: f64,
}

impl Series {
    fn new(name: &'static str, values: Vec<f64>) -> Self {
        let scale = values.iter().map(|v| v.abs()).sum::<f64>() / values.len() as f64;
        Self {
            name,
            values,
            scale,
        }
    }
}

/// A multiplicative random walk from `start` with steps up to ±`step`.
fn walk(seed: u64, len: usize, start: f64, step: f64) -> Vec<f64> {
    let mut rng = Rng(seed);
    let mut x = start;
    (0..len)
        .map(|_| {
            x *= 1.0 + step * rng.signed();
            x
        })
        .collect()
}

fn btc_like(len: usize) -> Vec<f64> {
    walk(0x00B7_C000, len, 60_000.0, 0.003)
}

fn doge_like() -> Vec<f64> {
    walk(0xD06E, LEN, 0.07, 0.01)
}

fn sine_with_trend() -> Vec<f64> {
    (0..LEN)
        .map(|t| {
            let t = t as f64;
            100.0 + 0.02 * t + 15.0 * (2.0 * std::f64::consts::PI * t / 180.0).sin()
        })
        .collect()
}

/// A walk with one-candle outliers of ±20 % and occasional lasting ±20 % jumps.
fn spikes() -> Vec<f64> {
    let mut rng = Rng(0x5B1CE);
    let mut base = 1_000.0;
    (0..LEN)
        .map(|_| {
            base *= 1.0 + 0.002 * rng.signed();
            let roll = rng.unit();
            if roll < 0.005 {
                base *= if rng.unit() < 0.5 { 0.8 } else { 1.2 };
                base
            } else if roll < 0.035 {
                base * if rng.unit() < 0.5 { 0.8 } else { 1.2 }
            } else {
                base
            }
        })
        .collect()
}

/// A walk that stands still for long stretches (40 to 400 candles), longer than the
/// windows under test, so windows are wholly, partly and not at all flat.
fn flat_stretches() -> Vec<f64> {
    let mut rng = Rng(0xF1A7);
    let mut x = 250.0;
    let mut values = Vec::with_capacity(LEN);
    while values.len() < LEN {
        for _ in 0..40 + rng.below(360) {
            values.push(x);
        }
        for _ in 0..20 + rng.below(180) {
            x *= 1.0 + 0.005 * rng.signed();
            values.push(x);
        }
    }
    values.truncate(LEN);
    values
}

fn all_series() -> Vec<Series> {
    vec![
        Series::new("btc-like walk", btc_like(LEN)),
        Series::new("doge-like walk", doge_like()),
        Series::new("sine with trend", sine_with_trend()),
        Series::new("spikes and jumps", spikes()),
        Series::new("flat stretches", flat_stretches()),
    ]
}

#[test]
fn the_series_are_what_the_tests_assume() {
    let series = all_series();
    for s in &series {
        assert_eq!(s.values.len(), LEN, "{}", s.name);
        assert!(
            s.values.iter().all(|v| v.is_finite() && *v > 0.0),
            "{}",
            s.name
        );
    }
    assert!((30_000.0..120_000.0).contains(&series[0].scale));
    assert!((0.02..0.2).contains(&series[1].scale));
    // Outliers of 20 % exist...
    let jumps = series[3]
        .values
        .windows(2)
        .filter(|w| (w[1] / w[0] - 1.0).abs() > 0.15);
    assert!(jumps.count() > 50);
    // ...and so do flat stretches longer than every window under test.
    let flat = &series[4].values;
    let mut longest = 0;
    let mut run = 1;
    for w in flat.windows(2) {
        run = if w[0] == w[1] { run + 1 } else { 1 };
        longest = longest.max(run);
    }
    assert!(longest > 250, "longest flat stretch {longest}");
}

// ---------------------------------------------------------------------------------
// References: textbook formulas, recomputed from scratch at every step
// ---------------------------------------------------------------------------------

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Zero variance means every value is the same. (Testing `Σ(x − mean)² == 0` would not
/// do: the mean of equal floats need not round back to them.)
fn is_constant(xs: &[f64]) -> bool {
    xs.iter().all(|&x| x == xs[0])
}

fn ref_sma(xs: &[f64], period: usize) -> Vec<Option<f64>> {
    (0..xs.len())
        .map(|t| (t + 1 >= period).then(|| mean(&xs[t + 1 - period..=t])))
        .collect()
}

/// EMA by its recursive definition: the SMA of the first `period` values, then
/// `alpha·x + (1 − alpha)·previous`.
fn ref_ema(xs: &[f64], period: usize) -> Vec<Option<f64>> {
    let alpha = 2.0 / (period as f64 + 1.0);
    let mut ema = None;
    (0..xs.len())
        .map(|t| {
            if t + 1 == period {
                ema = Some(mean(&xs[..period]));
            } else if let Some(previous) = ema {
                ema = Some(alpha * xs[t] + (1.0 - alpha) * previous);
            }
            ema
        })
        .collect()
}

/// RSI by Wilder's procedure over the whole prefix.
fn ref_rsi(prefix: &[f64], period: usize) -> Option<f64> {
    if prefix.len() < period + 1 {
        return None;
    }
    let changes: Vec<f64> = prefix.windows(2).map(|w| w[1] - w[0]).collect();
    let gain = |c: f64| if c > 0.0 { c } else { 0.0 };
    let loss = |c: f64| if c < 0.0 { -c } else { 0.0 };
    let p = period as f64;
    let mut avg_gain = changes[..period].iter().map(|&c| gain(c)).sum::<f64>() / p;
    let mut avg_loss = changes[..period].iter().map(|&c| loss(c)).sum::<f64>() / p;
    for &c in &changes[period..] {
        avg_gain = (avg_gain * (p - 1.0) + gain(c)) / p;
        avg_loss = (avg_loss * (p - 1.0) + loss(c)) / p;
    }
    Some(if avg_loss == 0.0 && avg_gain == 0.0 {
        50.0
    } else if avg_loss == 0.0 {
        100.0
    } else {
        100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    })
}

fn ref_macd(xs: &[f64], fast: usize, slow: usize, signal: usize) -> Vec<Option<[f64; 3]>> {
    let (fast, slow) = (ref_ema(xs, fast), ref_ema(xs, slow));
    let line: Vec<(usize, f64)> = (0..xs.len())
        .filter_map(|t| Some((t, fast[t]? - slow[t]?)))
        .collect();
    let values: Vec<f64> = line.iter().map(|&(_, v)| v).collect();
    let signal = ref_ema(&values, signal);
    let mut out = vec![None; xs.len()];
    for (i, &(t, macd)) in line.iter().enumerate() {
        out[t] = signal[i].map(|s| [macd, s, macd - s]);
    }
    out
}

/// Population standard deviation, two-pass.
fn ref_bollinger(xs: &[f64], period: usize, k: f64) -> Vec<Option<[f64; 4]>> {
    (0..xs.len())
        .map(|t| {
            let w = &xs[(t + 1).checked_sub(period)?..=t];
            let m = mean(w);
            let sd = (w.iter().map(|x| (x - m).powi(2)).sum::<f64>() / period as f64).sqrt();
            Some([m, m + k * sd, m - k * sd, sd])
        })
        .collect()
}

fn log_returns(xs: &[f64]) -> Vec<f64> {
    xs.windows(2).map(|w| (w[1] / w[0]).ln()).collect()
}

/// Sample standard deviation (n − 1) of the last `window` log returns, annualized.
fn ref_volatility(xs: &[f64], window: usize, per_year: f64) -> Vec<Option<f64>> {
    let r = log_returns(xs);
    (0..xs.len())
        .map(|t| {
            // Price t closes return t − 1.
            let w = &r[t.checked_sub(window)?..t];
            let m = mean(w);
            let var = w.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (window - 1) as f64;
            Some(var.sqrt() * per_year.sqrt())
        })
        .collect()
}

/// Pearson, two-pass; undefined when either window is constant.
fn ref_correlation(xs: &[f64], ys: &[f64], window: usize) -> Vec<Option<f64>> {
    (0..xs.len())
        .map(|t| {
            let start = (t + 1).checked_sub(window)?;
            let (wx, wy) = (&xs[start..=t], &ys[start..=t]);
            if is_constant(wx) || is_constant(wy) {
                return None;
            }
            let (mx, my) = (mean(wx), mean(wy));
            let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
            for (x, y) in wx.iter().zip(wy) {
                sxy += (x - mx) * (y - my);
                sxx += (x - mx) * (x - mx);
                syy += (y - my) * (y - my);
            }
            Some(sxy / (sxx * syy).sqrt())
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------

/// Relative error within 1e-9, defined as `|got − want| ≤ 1e-9 · max(|want|, scale)`.
/// `scale` is the series' mean absolute value for price-scaled outputs (SMA, EMA, MACD,
/// Bollinger) and 1 for unitless ones (RSI/100, correlation, volatility), so outputs
/// near zero (a MACD crossing, a flat band) are judged against the size of what
/// produced them. Both must also agree exactly on whether there is an output yet.
fn assert_close(what: &str, t: usize, got: Option<&[f64]>, want: Option<&[f64]>, scale: f64) {
    match (got, want) {
        (None, None) => {}
        (Some(got), Some(want)) => {
            for (g, w) in got.iter().zip(want) {
                let tolerance = 1e-9 * w.abs().max(scale);
                assert!(
                    (g - w).abs() <= tolerance,
                    "{what}, value {t}: got {got:?}, want {want:?}"
                );
            }
        }
        _ => panic!("{what}, value {t}: warm-up differs: got {got:?}, want {want:?}"),
    }
}

fn assert_series_close<const N: usize>(
    what: &str,
    got: &[Option<[f64; N]>],
    want: &[Option<[f64; N]>],
    scale: f64,
) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (t, (g, w)) in got.iter().zip(want).enumerate() {
        assert_close(
            what,
            t,
            g.as_ref().map(|g| &g[..]),
            w.as_ref().map(|w| &w[..]),
            scale,
        );
    }
    assert!(want.iter().any(Option::is_some), "{what}: never warmed up");
}

fn one(v: Option<f64>) -> Option<[f64; 1]> {
    v.map(|v| [v])
}

// ---------------------------------------------------------------------------------
// Against the references
// ---------------------------------------------------------------------------------

#[test]
fn sma_matches_the_mean_of_the_window() {
    for s in all_series() {
        for period in [1, 7, 20, 200] {
            let mut sma = Sma::new(period).unwrap();
            let got: Vec<_> = s.values.iter().map(|&x| one(sma.update(x))).collect();
            let want: Vec<_> = ref_sma(&s.values, period).into_iter().map(one).collect();
            assert_series_close(
                &format!("SMA({period}) of {}", s.name),
                &got,
                &want,
                s.scale,
            );
        }
    }
}

#[test]
fn ema_matches_its_recursive_definition_seeded_with_the_sma() {
    for s in all_series() {
        for period in [1, 12, 26, 200] {
            let mut ema = Ema::new(period).unwrap();
            let got: Vec<_> = s.values.iter().map(|&x| one(ema.update(x))).collect();
            let want: Vec<_> = ref_ema(&s.values, period).into_iter().map(one).collect();
            assert_series_close(
                &format!("EMA({period}) of {}", s.name),
                &got,
                &want,
                s.scale,
            );
        }
    }
}

#[test]
fn rsi_matches_wilders_procedure_over_each_prefix() {
    for s in all_series() {
        for period in [5, 14, 100] {
            let mut rsi = Rsi::new(period).unwrap();
            let got: Vec<_> = s
                .values
                .iter()
                .map(|&x| one(rsi.update(x).map(|v| v / 100.0)))
                .collect();
            let want: Vec<_> = (1..=s.values.len())
                .map(|t| one(ref_rsi(&s.values[..t], period).map(|v| v / 100.0)))
                .collect();
            assert_series_close(&format!("RSI({period}) of {}", s.name), &got, &want, 1.0);
        }
    }
}

#[test]
fn macd_matches_the_difference_of_emas_and_its_signal_ema() {
    for s in all_series() {
        for (fast, slow, signal) in [(12, 26, 9), (3, 10, 4), (50, 100, 20)] {
            let mut macd = Macd::new(fast, slow, signal).unwrap();
            let got: Vec<_> = s
                .values
                .iter()
                .map(|&x| macd.update(x).map(|m| [m.macd, m.signal, m.histogram]))
                .collect();
            let want = ref_macd(&s.values, fast, slow, signal);
            let what = format!("MACD({fast}, {slow}, {signal}) of {}", s.name);
            assert_series_close(&what, &got, &want, s.scale);
            // The first output comes with the `slow + signal − 1`-th value.
            assert_eq!(
                got.iter().position(Option::is_some),
                Some(slow + signal - 2),
                "{what}"
            );
        }
    }
}

#[test]
fn bollinger_matches_the_two_pass_population_deviation() {
    for s in all_series() {
        for (period, k) in [(1, 2.0), (5, 1.0), (20, 2.0), (200, 2.5)] {
            let mut bands = Bollinger::new(period, k).unwrap();
            let got: Vec<_> = s
                .values
                .iter()
                .map(|&x| {
                    bands
                        .update(x)
                        .map(|b| [b.middle, b.upper, b.lower, b.stdev])
                })
                .collect();
            let want = ref_bollinger(&s.values, period, k);
            let what = format!("Bollinger({period}, {k}) of {}", s.name);
            assert_series_close(&what, &got, &want, s.scale);
        }
    }
}

#[test]
fn volatility_matches_the_sample_deviation_of_log_returns() {
    for s in all_series() {
        for (window, interval) in [(2, 60), (30, 3_600), (250, 86_400)] {
            let per_year = periods_per_year(interval);
            let mut vol = Volatility::new(window, per_year).unwrap();
            let got: Vec<_> = s.values.iter().map(|&x| one(vol.update(x))).collect();
            let want: Vec<_> = ref_volatility(&s.values, window, per_year)
                .into_iter()
                .map(one)
                .collect();
            let what = format!("volatility({window}, {interval} s) of {}", s.name);
            assert_series_close(&what, &got, &want, 1.0);
            assert_eq!(got.iter().position(Option::is_some), Some(window), "{what}");
        }
    }
}

#[test]
fn correlation_matches_two_pass_pearson() {
    let series = all_series();
    for (i, a) in series.iter().enumerate() {
        let b = &series[(i + 1) % series.len()];
        for window in [2, 10, 50, 250] {
            let mut corr = Correlation::new(window).unwrap();
            let got: Vec<_> = a
                .values
                .iter()
                .zip(&b.values)
                .map(|(&x, &y)| one(corr.update(x, y)))
                .collect();
            let want: Vec<_> = ref_correlation(&a.values, &b.values, window)
                .into_iter()
                .map(one)
                .collect();
            let what = format!("correlation({window}) of {} and {}", a.name, b.name);
            assert_series_close(&what, &got, &want, 1.0);
        }
    }
    // Against itself, scaled: 1 exactly after clamping, never above.
    let xs = btc_like(LEN);
    let mut corr = Correlation::new(20).unwrap();
    for &x in &xs {
        if let Some(r) = corr.update(x, 3.0 * x + 7.0) {
            assert!((r - 1.0).abs() <= 1e-9 && r <= 1.0, "{r}");
        }
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("S{i}")).collect()
}

#[test]
fn correlation_matrix_matches_pairwise_references() {
    let series = all_series();
    let prices: Vec<&[f64]> = series.iter().map(|s| &s.values[..]).collect();
    let returns: Vec<Vec<f64>> = prices.iter().map(|p| log_returns(p)).collect();
    for window in [30, 200] {
        let mut of_returns =
            CorrelationMatrix::of_log_returns(names(prices.len()), window).unwrap();
        let mut of_values = CorrelationMatrix::new(names(prices.len()), window).unwrap();
        let mut want_returns = vec![vec![Vec::new(); prices.len()]; prices.len()];
        let mut want_values = want_returns.clone();
        for i in 0..prices.len() {
            for j in (0..prices.len()).filter(|&j| j != i) {
                want_returns[i][j] = ref_correlation(&returns[i], &returns[j], window);
                want_values[i][j] = ref_correlation(prices[i], prices[j], window);
            }
        }
        for t in 0..LEN {
            let row: Vec<f64> = prices.iter().map(|p| p[t]).collect();
            of_returns.update(&row).unwrap();
            of_values.update(&row).unwrap();
            let (got_returns, got_values) = (of_returns.matrix(), of_values.matrix());
            for i in 0..prices.len() {
                assert_eq!(got_returns[i][i], Some(1.0));
                for j in (0..prices.len()).filter(|&j| j != i) {
                    // Row t closes return t − 1.
                    let want = t.checked_sub(1).and_then(|r| want_returns[i][j][r]);
                    let what = format!("log-return correlation({window}) {i}×{j}");
                    assert_close(
                        &what,
                        t,
                        got_returns[i][j].as_ref().map(std::slice::from_ref),
                        want.as_ref().map(std::slice::from_ref),
                        1.0,
                    );
                    let want = want_values[i][j][t];
                    let what = format!("correlation({window}) {i}×{j}");
                    assert_close(
                        &what,
                        t,
                        got_values[i][j].as_ref().map(std::slice::from_ref),
                        want.as_ref().map(std::slice::from_ref),
                        1.0,
                    );
                }
            }
        }
        assert_eq!(of_returns.names(), &names(prices.len())[..]);
    }
}

#[test]
fn sma_and_bollinger_do_not_drift_over_100k_updates() {
    let xs = btc_like(100_000);
    let scale = xs.iter().sum::<f64>() / xs.len() as f64;
    for period in [20, 500] {
        let mut sma = Sma::new(period).unwrap();
        let mut bands = Bollinger::new(period, 2.0).unwrap();
        let want_sma = ref_sma(&xs, period);
        let want_bands = ref_bollinger(&xs, period, 2.0);
        for (t, &x) in xs.iter().enumerate() {
            let got = sma.update(x);
            assert_close(
                "SMA over 100k",
                t,
                got.as_ref().map(std::slice::from_ref),
                want_sma[t].as_ref().map(std::slice::from_ref),
                scale,
            );
            let got = bands
                .update(x)
                .map(|b| [b.middle, b.upper, b.lower, b.stdev]);
            assert_close(
                "Bollinger over 100k",
                t,
                got.as_ref().map(|g| &g[..]),
                want_bands[t].as_ref().map(|w| &w[..]),
                scale,
            );
        }
        // The last value against its reference on a plain relative scale too.
        let (got, want) = (sma.value().unwrap(), want_sma[xs.len() - 1].unwrap());
        assert!((got - want).abs() <= 1e-12 * want.abs(), "{got} vs {want}");
    }
}

#[test]
fn the_shift_follows_the_data() {
    // The price doubles, then barely moves. Measured from the first price the window's
    // spread would be about 9 digits below the deviations and lose them; the
    // re-anchored shift keeps the deviation accurate relative to itself.
    let mut rng = Rng(0x5A1F7);
    let mut xs: Vec<f64> = (0..1_000)
        .map(|t| 60_000.0 * 2f64.powf(f64::from(t) / 999.0))
        .collect();
    let mut x = 120_000.0;
    xs.extend((0..1_000).map(|_| {
        x *= 1.0 + 1e-5 * rng.signed();
        x
    }));
    let mut bands = Bollinger::new(20, 2.0).unwrap();
    let want = ref_bollinger(&xs, 20, 2.0);
    for (t, &x) in xs.iter().enumerate() {
        if let (Some(got), Some(want)) = (bands.update(x), want[t]) {
            let (got, want) = (got.stdev, want[3]);
            assert!(
                (got - want).abs() <= 1e-9 * want,
                "value {t}: {got} vs {want}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Exact references: integer arithmetic on the f64 values themselves
// ---------------------------------------------------------------------------------

/// A natural number in base 2^32, least significant limb first: just enough arithmetic
/// for exact sums of products of f64 values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Nat(Vec<u32>);

impl Nat {
    fn new(mut limbs: Vec<u32>) -> Self {
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
        Self(limbs)
    }

    fn zero() -> Self {
        Self(Vec::new())
    }

    /// `m · 2^bits`.
    fn shifted(m: u64, bits: u32) -> Self {
        let mut limbs = vec![0; (bits / 32) as usize];
        let wide = u128::from(m) << (bits % 32);
        limbs.extend((0..3).map(|i| (wide >> (32 * i)) as u32));
        Self::new(limbs)
    }

    fn add(&self, other: &Self) -> Self {
        let mut limbs = Vec::with_capacity(self.0.len().max(other.0.len()) + 1);
        let mut carry = 0u64;
        for i in 0..self.0.len().max(other.0.len()) {
            let s = u64::from(*self.0.get(i).unwrap_or(&0))
                + u64::from(*other.0.get(i).unwrap_or(&0))
                + carry;
            limbs.push(s as u32);
            carry = s >> 32;
        }
        limbs.push(carry as u32);
        Self::new(limbs)
    }

    /// `self − other`, for `self >= other`.
    fn sub(&self, other: &Self) -> Self {
        let mut limbs = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let d = i64::from(self.0[i]) - i64::from(*other.0.get(i).unwrap_or(&0)) - borrow;
            limbs.push(d.rem_euclid(1 << 32) as u32);
            borrow = i64::from(d < 0);
        }
        assert_eq!(borrow, 0, "negative difference");
        Self::new(limbs)
    }

    fn mul(&self, other: &Self) -> Self {
        let mut limbs = vec![0u64; self.0.len() + other.0.len() + 1];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &b) in other.0.iter().enumerate() {
                let t = u64::from(a) * u64::from(b) + limbs[i + j] + carry;
                limbs[i + j] = t & 0xFFFF_FFFF;
                carry = t >> 32;
            }
            limbs[i + other.0.len()] += carry;
        }
        Self::new(limbs.into_iter().map(|l| l as u32).collect())
    }

    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// Within a few roundings (one per limb).
    fn to_f64(&self) -> f64 {
        self.0
            .iter()
            .rev()
            .fold(0.0, |acc, &limb| acc * 4_294_967_296.0 + f64::from(limb))
    }
}

/// Finite f64s as naturals over a common power of two: each `x` is exactly `±m · 2^e`
/// for integers `m` (53 bits at most) and `e`, so with `e0` the least `e` of the
/// values that are not 0, `x` is `(±m · 2^(e − e0)) · 2^e0`. An offset (the largest
/// negative numerator's magnitude) is added to every numerator so none is negative;
/// deviations do not depend on it.
fn as_naturals(xs: &[f64]) -> (Vec<Nat>, i32) {
    let parts: Vec<(bool, u64, i32)> = xs
        .iter()
        .map(|&x| {
            assert!(x.is_finite());
            let bits = x.to_bits();
            let biased = ((bits >> 52) & 0x7FF) as i32;
            let fraction = bits & ((1 << 52) - 1);
            let (m, e) = if biased == 0 {
                (fraction, -1074)
            } else {
                (fraction | (1 << 52), biased - 1075)
            };
            (x < 0.0, m, e)
        })
        .collect();
    // Zeros (m = 0) have no exponent to speak of.
    let e0 = parts
        .iter()
        .filter(|p| p.1 != 0)
        .map(|&(_, _, e)| e)
        .min()
        .unwrap_or(0);
    let magnitude = |m: u64, e: i32| Nat::shifted(m, e.saturating_sub(e0).max(0) as u32);
    let offset = parts
        .iter()
        .filter(|p| p.0)
        .map(|&(_, m, e)| magnitude(m, e))
        .max_by(Nat::cmp)
        .unwrap_or_else(Nat::zero);
    let naturals = parts
        .iter()
        .map(|&(negative, m, e)| {
            if negative {
                offset.sub(&magnitude(m, e))
            } else {
                offset.add(&magnitude(m, e))
            }
        })
        .collect();
    (naturals, e0)
}

/// `Σ(x − mean x)(y − mean y)` over paired f64 values, computed exactly as
/// `(n·Σxy − Σx·Σy) / n` in integers and converted to f64 only at the end (a few
/// roundings: relative error below 1e-15).
fn exact_co_moment(xs: &[f64], ys: &[f64]) -> f64 {
    assert_eq!(xs.len(), ys.len());
    let (a, ea) = as_naturals(xs);
    let (b, eb) = as_naturals(ys);
    let n = Nat::shifted(xs.len() as u64, 0);
    let sum = |v: &[Nat]| v.iter().fold(Nat::zero(), |s, x| s.add(x));
    let dot = a
        .iter()
        .zip(&b)
        .fold(Nat::zero(), |s, (x, y)| s.add(&x.mul(y)));
    let (p, q) = (n.mul(&dot), sum(&a).mul(&sum(&b)));
    let numerator = match p.cmp(&q) {
        Ordering::Less => -q.sub(&p).to_f64(),
        _ => p.sub(&q).to_f64(),
    };
    numerator * 2f64.powi(ea + eb) / xs.len() as f64
}

/// The population standard deviation of f64 values, exact but for the final roundings.
fn exact_population_stdev(xs: &[f64]) -> f64 {
    (exact_co_moment(xs, xs) / xs.len() as f64).sqrt()
}

/// 0 when equal (a constant window's deviation is exactly 0 on both sides).
fn relative_error(got: f64, want: f64) -> f64 {
    if got == want {
        0.0
    } else {
        (got - want).abs() / want.abs()
    }
}

/// 21 × 60 000, then 61 000.00 and 61 000.01 alternating: a jump, then quiet trading.
fn jump_then_quiet() -> Vec<f64> {
    let mut xs = vec![60_000.0; 21];
    xs.extend((0..60).map(|t| if t % 2 == 0 { 61_000.0 } else { 61_000.01 }));
    xs
}

#[test]
fn bollinger_is_exact_after_a_jump_then_quiet_trading() {
    // Sums anchored before the jump measure from 60 000; the windows after it spread
    // 0.01 around 61 000, and measured from 60 000 their variance would be 4e10
    // ((1 000 / 0.005)²), 10 digits, below the sums.
    let xs = jump_then_quiet();
    let mut bands = Bollinger::new(20, 2.0).unwrap();
    let mut quiet = 0;
    for (t, &x) in xs.iter().enumerate() {
        let Some(got) = bands.update(x) else {
            continue;
        };
        let window = &xs[t + 1 - 20..=t];
        // Exact for the f64 inputs: 61 000.01 is 61 000.010000000002037… as an f64, so
        // the quiet windows' deviation is 0.005000000001018634…, not 0.005.
        let want = exact_population_stdev(window);
        assert!(
            relative_error(got.stdev, want) <= 1e-12,
            "value {t}: stdev {:?}, exactly {want:?}",
            got.stdev
        );
        quiet += usize::from(window[0] != 60_000.0);
    }
    assert!(quiet >= 40, "{quiet} quiet windows");
}

#[test]
fn volatility_is_exact_after_a_jump_then_quiet_trading() {
    // The same prices: 20 returns of 0, one of ln(61 000 / 60 000) ≈ 0.0165, then
    // ±1.6e-7 alternating. A shift at the jump's return is 1e5 deviations from the
    // quiet windows.
    let xs = jump_then_quiet();
    // "Exact" is for the returns the indicator computes: the f64 `ln(p_t / p_{t−1})`
    // (this evaluates the same expression, so gets the same values), whose sample
    // deviation over the window is then computed exactly. Rounding in the division
    // and the logarithm is part of the input, not of the rolling sums under test.
    let returns = log_returns(&xs);
    // One period a year: the output is the deviation itself.
    let mut vol = Volatility::new(20, 1.0).unwrap();
    let mut quiet = 0;
    for (t, &x) in xs.iter().enumerate() {
        let Some(got) = vol.update(x) else {
            continue;
        };
        // Price t closes return t − 1.
        let window = &returns[t - 20..t];
        let want = (exact_co_moment(window, window) / 19.0).sqrt();
        assert!(
            relative_error(got, want) <= 1e-12,
            "value {t}: volatility {got:?}, exactly {want:?}"
        );
        quiet += usize::from(window.iter().all(|r| r.abs() < 1e-6));
    }
    assert!(quiet >= 40, "{quiet} quiet windows");
}

#[test]
fn correlation_is_exact_after_a_jump_then_quiet_trading() {
    // Both series jump at the same candle, then trade quietly: x alternates by 0.01,
    // y follows x's tick half the time and moves on its own otherwise.
    let xs = jump_then_quiet();
    let mut rng = Rng(0xC0_77E1);
    let ys: Vec<f64> = xs
        .iter()
        .enumerate()
        .map(|(t, &x)| {
            if t < 21 {
                3_000.0
            } else {
                let own = if rng.unit() < 0.5 { 0.02 } else { 0.0 };
                3_100.0 + (x - 61_000.0) + own
            }
        })
        .collect();
    let mut corr = Correlation::new(20).unwrap();
    let mut quiet = 0;
    for (t, (&x, &y)) in xs.iter().zip(&ys).enumerate() {
        let Some(got) = corr.update(x, y) else {
            continue;
        };
        let (wx, wy) = (&xs[t + 1 - 20..=t], &ys[t + 1 - 20..=t]);
        let want = exact_co_moment(wx, wy)
            / (exact_co_moment(wx, wx).sqrt() * exact_co_moment(wy, wy).sqrt());
        assert!(
            relative_error(got, want) <= 1e-12,
            "value {t}: correlation {got:?}, exactly {want:?}"
        );
        if wx[0] != 60_000.0 {
            quiet += 1;
            // Not a trivial ±1 (clamped) nor near 0 (where a relative bound is weak).
            assert!((0.1..0.99).contains(&want.abs()), "value {t}: {want}");
        }
    }
    assert!(quiet >= 40, "{quiet} quiet windows");
}

#[test]
fn the_exact_reference_is_exact() {
    // Values with short binary expansions, whose moments f64 gets right.
    let xs = [0.5, -1.25, 3.0, 1024.0, -0.001953125];
    let ys = [2.0, 0.25, -8.0, 1.5, 6.0];
    let naive = |a: &[f64], b: &[f64]| {
        let (ma, mb) = (mean(a), mean(b));
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - ma) * (y - mb))
            .sum::<f64>()
    };
    for (a, b) in [(&xs, &xs), (&xs, &ys), (&ys, &ys)] {
        let (got, want) = (exact_co_moment(a, b), naive(a, b));
        assert!(relative_error(got, want) <= 1e-14, "{got} vs {want}");
    }
    // −3 and 2^−40 as integers over 2^−92 (offset by 3·2^92): 0 and 3·2^92 + 2^52.
    let (a, e) = as_naturals(&[-3.0, 2f64.powi(-40)]);
    assert_eq!(e, -92);
    assert_eq!(a[0], Nat::zero());
    assert_eq!(a[1].to_f64(), 3.0 * 2f64.powi(92) + 2f64.powi(52));
    // Where f64 is not exact: the deviations of 2^53 and 2^53 + 2 are ±1, but their
    // squares' sum, 2, is lost next to 2^107 in a one-pass formula.
    let big = 2f64.powi(53);
    assert_eq!(exact_co_moment(&[big, big + 2.0], &[big, big + 2.0]), 2.0);
}

// ---------------------------------------------------------------------------------
// Edge cases
// ---------------------------------------------------------------------------------

#[test]
fn rsi_is_50_when_flat_100_without_losses_and_0_without_gains() {
    let flat = [42.0; 30];
    let rising: Vec<f64> = (0..30).map(f64::from).collect();
    let falling: Vec<f64> = rising.iter().rev().copied().collect();
    for (xs, want) in [(&flat[..], 50.0), (&rising, 100.0), (&falling, 0.0)] {
        let mut rsi = Rsi::new(14).unwrap();
        let outputs: Vec<_> = xs.iter().map(|&x| rsi.update(x)).collect();
        assert_eq!(outputs.iter().position(Option::is_some), Some(14));
        assert!(
            outputs[14..].iter().all(|&v| v == Some(want)),
            "{outputs:?}"
        );
    }
}

#[test]
fn a_constant_window_reports_exactly() {
    // 0.1 is not a sum of halves: Σ/n of equal values would not give 0.1 back.
    let xs: Vec<f64> = [1.0, 2.0, 3.0].into_iter().chain([0.1; 40]).collect();
    let mut sma = Sma::new(3).unwrap();
    let mut bands = Bollinger::new(3, 2.0).unwrap();
    let mut vol = Volatility::new(3, 365.0).unwrap();
    let mut corr = Correlation::new(3).unwrap();
    for (t, &x) in xs.iter().enumerate() {
        sma.update(x);
        bands.update(x);
        vol.update(x);
        corr.update(x, t as f64);
    }
    assert_eq!(sma.value(), Some(0.1));
    let expected = BollingerValue {
        middle: 0.1,
        upper: 0.1,
        lower: 0.1,
        stdev: 0.0,
    };
    assert_eq!(bands.value(), Some(expected));
    assert_eq!(vol.value(), Some(0.0));
    // Zero variance in one series: the correlation is undefined.
    assert_eq!(corr.value(), None);
    let mut matrix = CorrelationMatrix::new(names(2), 3).unwrap();
    for (t, &x) in xs.iter().enumerate() {
        matrix.update(&[x, t as f64]).unwrap();
    }
    assert_eq!(
        matrix.matrix(),
        vec![vec![Some(1.0), None], vec![None, Some(1.0)]]
    );
}

#[test]
fn volatility_skips_prices_that_are_not_positive() {
    let clean = btc_like(200);
    let mut dirty = Vec::new();
    for (t, &x) in clean.iter().enumerate() {
        if t % 17 == 5 {
            dirty.extend([0.0, -x, f64::NAN, f64::INFINITY]);
        }
        dirty.push(x);
    }
    let mut on_clean = Volatility::new(10, 365.0).unwrap();
    let mut on_dirty = Volatility::new(10, 365.0).unwrap();
    let want: Vec<_> = clean.iter().map(|&x| on_clean.update(x)).collect();
    let mut got = Vec::new();
    for &x in &dirty {
        let before = on_dirty.clone();
        let out = on_dirty.update(x);
        if x > 0.0 && x.is_finite() {
            got.push(out);
        } else {
            assert_eq!(out, None, "a skipped price yields no output");
            assert_eq!(
                on_dirty, before,
                "a skipped price leaves the state as it was"
            );
        }
    }
    assert_eq!(got, want);
    assert!(want.iter().flatten().count() > 150);
}

#[test]
fn values_that_are_not_finite_are_skipped_everywhere() {
    let clean = btc_like(300);
    let mut dirty = Vec::new();
    for (t, &x) in clean.iter().enumerate() {
        if t % 13 == 3 {
            dirty.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
        }
        dirty.push(x);
    }
    fn outputs<I: Clone, O: PartialEq + fmt::Debug>(
        mut indicator: I,
        xs: &[f64],
        update: impl Fn(&mut I, f64) -> Option<O>,
    ) -> Vec<O> {
        xs.iter()
            .filter_map(|&x| {
                let out = update(&mut indicator, x);
                if !x.is_finite() {
                    assert_eq!(out, None);
                }
                out
            })
            .collect()
    }
    macro_rules! same_on_both {
        ($make:expr, $update:expr) => {
            assert_eq!(
                outputs($make, &dirty, $update),
                outputs($make, &clean, $update)
            );
        };
    }
    same_on_both!(Sma::new(20).unwrap(), |i: &mut Sma, x| i.update(x));
    same_on_both!(Ema::new(20).unwrap(), |i: &mut Ema, x| i.update(x));
    same_on_both!(Rsi::new(14).unwrap(), |i: &mut Rsi, x| i.update(x));
    same_on_both!(Macd::new(12, 26, 9).unwrap(), |i: &mut Macd, x| i.update(x));
    same_on_both!(Bollinger::new(20, 2.0).unwrap(), |i: &mut Bollinger, x| i
        .update(x));
    same_on_both!(Correlation::new(20).unwrap(), |i: &mut Correlation, x| {
        i.update(x, x.sin())
    });
    // The pair is skipped whole when only one side is bad.
    let mut corr = Correlation::new(5).unwrap();
    for (t, &x) in clean[..20].iter().enumerate() {
        corr.update(x, t as f64);
    }
    let before = corr.clone();
    assert_eq!(corr.update(f64::NAN, 1.0), None);
    assert_eq!(corr.update(1.0, f64::INFINITY), None);
    assert_eq!(corr, before);
}

#[test]
fn correlation_matrix_rejects_bad_rows_whole() {
    let mut matrix = CorrelationMatrix::of_log_returns(names(3), 5).unwrap();
    matrix.update(&[1.0, 2.0, 3.0]).unwrap();
    let before = matrix.clone();
    assert_eq!(
        matrix.update(&[1.0, 2.0]),
        Err(IndicatorError::RowLength {
            expected: 3,
            got: 2
        })
    );
    assert_eq!(
        matrix.update(&[1.1, 0.0, 3.3]),
        Err(IndicatorError::UnusableValue("S1".into()))
    );
    assert_eq!(
        matrix.update(&[1.1, 2.2, f64::NAN]),
        Err(IndicatorError::UnusableValue("S2".into()))
    );
    assert_eq!(matrix, before);
    // Values as given may be negative; they still must be finite.
    let mut of_values = CorrelationMatrix::new(names(2), 5).unwrap();
    assert_eq!(of_values.update(&[-1.0, 0.0]), Ok(()));
    assert_eq!(
        of_values.update(&[f64::INFINITY, 0.0]),
        Err(IndicatorError::UnusableValue("S0".into()))
    );
}

#[test]
fn parameters_are_validated() {
    let too_short = |name, min, got| Some(IndicatorError::PeriodTooShort { name, min, got });
    assert_eq!(Sma::<f64>::new(0).err(), too_short("period", 1, 0));
    assert_eq!(Ema::<f64>::new(0).err(), too_short("period", 1, 0));
    assert_eq!(Rsi::<f64>::new(0).err(), too_short("period", 1, 0));
    assert_eq!(
        Macd::<f64>::new(0, 26, 9).err(),
        too_short("fast period", 1, 0)
    );
    assert_eq!(
        Macd::<f64>::new(12, 26, 0).err(),
        too_short("signal period", 1, 0)
    );
    for (fast, slow) in [(12, 12), (26, 12)] {
        assert_eq!(
            Macd::<f64>::new(fast, slow, 9),
            Err(IndicatorError::FastNotShorterThanSlow { fast, slow })
        );
    }
    assert_eq!(
        Bollinger::<f64>::new(0, 2.0).err(),
        too_short("period", 1, 0)
    );
    assert_eq!(
        Bollinger::<f64>::new(20, -1.0),
        Err(IndicatorError::InvalidBandWidth(-1.0))
    );
    assert!(Bollinger::<f64>::new(20, f64::NAN).is_err());
    assert!(Bollinger::<f64>::new(20, f64::INFINITY).is_err());
    assert!(Bollinger::<f64>::new(20, 0.0).is_ok());
    assert_eq!(
        Volatility::<f64>::new(1, 365.0).err(),
        too_short("window", 2, 1)
    );
    for per_year in [0.0, -365.0, f64::NAN, periods_per_year(0)] {
        assert!(matches!(
            Volatility::<f64>::new(30, per_year),
            Err(IndicatorError::InvalidPeriodsPerYear(_))
        ));
    }
    assert_eq!(Correlation::<f64>::new(1).err(), too_short("window", 2, 1));
    assert_eq!(
        CorrelationMatrix::<f64>::new(names(2), 1).err(),
        too_short("window", 2, 1)
    );
    assert_eq!(
        CorrelationMatrix::<f64>::of_log_returns(Vec::new(), 10),
        Err(IndicatorError::NoSeries)
    );
    let twice = vec!["BTC".to_string(), "ETH".into(), "BTC".into()];
    assert_eq!(
        CorrelationMatrix::<f64>::new(twice, 10),
        Err(IndicatorError::DuplicateSeries("BTC".into()))
    );
    // A message a user can read.
    assert_eq!(
        Sma::<f64>::new(0).unwrap_err().to_string(),
        "the period must be at least 1, got 0"
    );
}

#[test]
fn defaults_are_the_conventional_parameters() {
    assert_eq!(Rsi::<f64>::default(), Rsi::new(14).unwrap());
    assert_eq!(Macd::<f64>::default(), Macd::new(12, 26, 9).unwrap());
    assert_eq!(
        Bollinger::<f64>::default(),
        Bollinger::new(20, 2.0).unwrap()
    );
}

#[test]
fn periods_per_year_count_a_24_7_year() {
    assert_eq!(periods_per_year(60), 525_600.0);
    assert_eq!(periods_per_year(300), 105_120.0);
    assert_eq!(periods_per_year(3_600), 8_760.0);
    assert_eq!(periods_per_year(86_400), 365.0);
}

// ---------------------------------------------------------------------------------
// Restore from JSON
// ---------------------------------------------------------------------------------

/// Feeds `inputs[..split]`, round-trips the state through serde_json, then feeds the
/// rest to both the original and the restored copy: their outputs must agree bit for
/// bit. (`{:?}` prints the shortest string that parses back to the same bits, so equal
/// strings mean equal bits, −0.0 included.)
fn assert_resumes<I, T>(
    mut original: I,
    inputs: &[T],
    split: usize,
    step: impl Fn(&mut I, &T) -> String,
) where
    I: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
{
    for input in &inputs[..split] {
        step(&mut original, input);
    }
    let json = serde_json::to_string(&original).unwrap();
    let mut restored: I = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, original, "state after the round trip");
    let mut outputs = 0;
    for (t, input) in inputs.iter().enumerate().skip(split) {
        let (a, b) = (step(&mut original, input), step(&mut restored, input));
        assert_eq!(b, a, "value {t} after restoring at {split}");
        outputs += usize::from(a != "None");
    }
    assert!(outputs > 0);
}

#[test]
fn a_restored_indicator_continues_bit_for_bit() {
    let xs = btc_like(LEN);
    let doge = doge_like();
    let pairs: Vec<(f64, f64)> = xs.iter().copied().zip(doge.iter().copied()).collect();
    let rows: Vec<Vec<f64>> = pairs.iter().map(|&(x, y)| vec![x, y, x + y]).collect();
    let f = |out: Option<f64>| format!("{out:?}");
    // Mid-series, and inside the warm-up.
    for split in [LEN / 2, 7] {
        assert_resumes(Sma::new(20).unwrap(), &xs, split, |i, &x| f(i.update(x)));
        assert_resumes(Ema::new(20).unwrap(), &xs, split, |i, &x| f(i.update(x)));
        assert_resumes(Rsi::new(14).unwrap(), &xs, split, |i, &x| f(i.update(x)));
        assert_resumes(Macd::new(12, 26, 9).unwrap(), &xs, split, |i, &x| {
            format!("{:?}", i.update(x))
        });
        assert_resumes(Bollinger::new(20, 2.0).unwrap(), &xs, split, |i, &x| {
            format!("{:?}", i.update(x))
        });
        assert_resumes(
            Volatility::new(30, periods_per_year(60)).unwrap(),
            &xs,
            split,
            |i, &x| f(i.update(x)),
        );
        assert_resumes(
            Correlation::new(30).unwrap(),
            &pairs,
            split,
            |i, &(x, y)| f(i.update(x, y)),
        );
        assert_resumes(
            CorrelationMatrix::of_log_returns(names(3), 30).unwrap(),
            &rows,
            split,
            |i, row| {
                i.update(row).unwrap();
                format!("{:?}", i.matrix())
            },
        );
    }
}

#[test]
fn state_json_keeps_floats_as_exact_strings() {
    let mut sma = Sma::new(2).unwrap();
    sma.update(0.1);
    sma.update(60_000.123_456_789);
    let json = serde_json::to_value(&sma).unwrap();
    assert_eq!(
        json["window"],
        serde_json::json!(["0.1", "60000.123456789"])
    );
    let broken = json.to_string().replace("0.1", "zero point one");
    assert!(serde_json::from_str::<Sma>(&broken).is_err());
}

#[test]
fn a_state_stored_before_the_shift_followed_the_window_still_loads() {
    // Bollinger(3, 2) after 1, 2, 3, 4, as stored when the sums were `current` and a
    // `next` set that took over every window.
    let stored = r#"{"k": "2.0", "moments": {"len": 3, "window": ["2.0", "3.0", "4.0"],
        "current": {"count": 3, "shift": "1.0", "sum": {"sum": "6.0", "compensation": "0.0"},
            "sum_sq": {"sum": "14.0", "compensation": "0.0"}},
        "next": {"count": 1, "shift": "4.0", "sum": {"sum": "0.0", "compensation": "0.0"},
            "sum_sq": {"sum": "0.0", "compensation": "0.0"}},
        "last": "4.0", "run": 1}}"#;
    let restored: Bollinger = serde_json::from_str(stored).unwrap();
    let mut fresh = Bollinger::new(3, 2.0).unwrap();
    for x in [1.0, 2.0, 3.0, 4.0] {
        fresh.update(x);
    }
    assert_eq!(restored, fresh);
    // A correlation also kept the products around the next shifts.
    let mut corr = Correlation::new(3).unwrap();
    for (x, y) in [(1.0, 5.0), (2.0, 3.0), (3.0, 4.0), (4.0, 1.0)] {
        corr.update(x, y);
    }
    let mut old = serde_json::to_value(&corr).unwrap();
    for series in ["x", "y"] {
        let moments = old[series].as_object_mut().unwrap();
        let sums = moments.remove("sums").unwrap();
        moments.remove("owed");
        moments.insert("current".into(), sums.clone());
        moments.insert("next".into(), sums);
    }
    old["next_cross"] = old["cross"].clone();
    assert_eq!(serde_json::from_value::<Correlation>(old).unwrap(), corr);
}

// ---------------------------------------------------------------------------------
// Per-update work: counting operations
// ---------------------------------------------------------------------------------

thread_local! {
    static OPS: Cell<u64> = const { Cell::new(0) };
}

fn tick() {
    OPS.with(|ops| ops.set(ops.get() + 1));
}

fn take_ops() -> u64 {
    OPS.with(|ops| ops.replace(0))
}

/// An `f64` that counts every arithmetic operation, comparison, conversion, square
/// root, logarithm and absolute value done with it.
#[derive(Debug, Clone, Copy)]
struct Counted(f64);

impl PartialEq for Counted {
    fn eq(&self, other: &Self) -> bool {
        tick();
        self.0 == other.0
    }
}

impl PartialOrd for Counted {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        tick();
        self.0.partial_cmp(&other.0)
    }
}

macro_rules! counted_op {
    ($trait:ident, $method:ident, $op:tt) => {
        impl std::ops::$trait for Counted {
            type Output = Self;
            fn $method(self, other: Self) -> Self {
                tick();
                Counted(self.0 $op other.0)
            }
        }
    };
}

counted_op!(Add, add, +);
counted_op!(Sub, sub, -);
counted_op!(Mul, mul, *);
counted_op!(Div, div, /);

impl std::ops::Neg for Counted {
    type Output = Self;
    fn neg(self) -> Self {
        tick();
        Counted(-self.0)
    }
}

impl Real for Counted {
    fn from_f64(v: f64) -> Self {
        tick();
        Counted(v)
    }

    fn to_f64(self) -> f64 {
        tick();
        self.0
    }

    fn sqrt(self) -> Self {
        tick();
        Counted(self.0.sqrt())
    }

    fn ln(self) -> Self {
        tick();
        Counted(self.0.ln())
    }

    fn abs(self) -> Self {
        tick();
        Counted(self.0.abs())
    }
}

/// What an indicator's updates cost, in operations. An update *re-sums* when it
/// re-anchors rolling moments (what they owe goes up); the others are *plain*.
#[derive(Debug, Clone, Copy)]
struct Work {
    /// The most operations any plain update took.
    plain: u64,
    /// The most any plain update took once the indicator was warm (had produced its
    /// first output before that update).
    plain_warm: u64,
    /// Operations per update once warm, re-summing included: the amortized cost.
    amortized: f64,
    resums: usize,
}

fn no_moments<I>(_: &I) -> usize {
    0
}

/// Measures `update` over `inputs`. `is_warm` and `owed` (the re-summing the
/// indicator's moments owe, 0 if it has none) are asked outside the count.
fn work<I, T>(
    mut indicator: I,
    inputs: &[T],
    update: impl Fn(&mut I, &T),
    is_warm: impl Fn(&I) -> bool,
    owed: impl Fn(&I) -> usize,
) -> Work {
    let mut w = Work {
        plain: 0,
        plain_warm: 0,
        amortized: 0.0,
        resums: 0,
    };
    let (mut warm, mut warm_ops, mut warm_updates) = (false, 0, 0);
    for input in inputs {
        let owed_before = owed(&indicator);
        take_ops();
        update(&mut indicator, input);
        let ops = take_ops();
        if owed(&indicator) > owed_before {
            w.resums += 1;
        } else {
            w.plain = w.plain.max(ops);
            if warm {
                w.plain_warm = w.plain_warm.max(ops);
            }
        }
        if warm {
            warm_ops += ops;
            warm_updates += 1;
        }
        warm |= is_warm(&indicator);
        take_ops();
    }
    assert!(warm_updates > 0, "never warmed up");
    w.amortized = warm_ops as f64 / f64::from(warm_updates);
    w
}

/// The most operations one update may take, or take on average: a small constant.
/// Bollinger and volatility keep two compensated sums (adding the new value, removing
/// the leaving one), about 8 operations per compensated addition, and check whether
/// to re-anchor: about 70 a plain update. Correlation keeps five sums, about 150.
/// Re-anchoring adds, amortized, at most one value re-summed per update (plus two
/// windows in all): up to 10 and 30 more on a series that re-anchors all it can.
const SMALL: u64 = 64;
const TWO_SUMS: u64 = 96;
const FIVE_SUMS: u64 = 192;

const WINDOWS: [usize; 3] = [5, 50, 500];

/// Runs `measure` with windows of 5, 50 and 500 and checks that the costliest plain
/// update after warm-up costs the same for all three, and that plain updates and the
/// amortized cost stay under `bound`. A naive SMA that sums its window on every update
/// takes about `window` operations per update, and fails this (see
/// `the_op_count_catches_work_that_grows_with_the_window`).
fn assert_constant_work(what: &str, bound: u64, measure: impl Fn(usize) -> Work) {
    let measured = WINDOWS.map(&measure);
    let plain_warm = measured.map(|w| w.plain_warm);
    assert!(
        plain_warm.iter().all(|&ops| ops == plain_warm[0]),
        "{what}: per-update work grows with the window: {plain_warm:?} for windows {WINDOWS:?}"
    );
    for (window, w) in WINDOWS.iter().zip(measured) {
        assert!(
            w.plain <= bound && w.amortized <= bound as f64,
            "{what}, window {window}: {w:?}, over {bound}"
        );
    }
}

fn counted_walk(len: usize) -> Vec<Counted> {
    walk(0xC0DE, len, 60_000.0, 0.003)
        .into_iter()
        .map(Counted)
        .collect()
}

/// Each value 100 times smaller than the last, over and over: every window's mean is
/// far from the last one's in its own deviations, so with a window of 5 every update
/// would re-anchor if it could (`re_anchoring_stays_within_its_budget`).
fn collapsing(len: usize) -> Vec<f64> {
    (0..len).map(|t| 0.01f64.powi((t % 60) as i32)).collect()
}

#[test]
fn per_update_work_does_not_grow_with_the_window() {
    let xs = counted_walk(2_000);
    let ys = walk(0x0E7, 2_000, 3_000.0, 0.004);
    let pairs: Vec<(Counted, Counted)> =
        xs.iter().zip(&ys).map(|(&x, &y)| (x, Counted(y))).collect();
    let rows: Vec<[Counted; 3]> = pairs
        .iter()
        .map(|&(x, y)| [x, y, Counted(x.0 / y.0)])
        .collect();
    // For the moments: re-anchoring as often as the budget allows.
    let falls: Vec<Counted> = collapsing(2_000).into_iter().map(Counted).collect();
    let falls_with: Vec<(Counted, Counted)> = falls
        .iter()
        .zip(&ys)
        .map(|(&x, &y)| (x, Counted(y)))
        .collect();
    macro_rules! measure {
        ($name:literal, $bound:expr, $make:expr, $inputs:expr, $update:expr) => {
            measure!($name, $bound, $make, $inputs, $update, no_moments);
        };
        ($name:literal, $bound:expr, $make:expr, $inputs:expr, $update:expr, $owed:expr) => {
            assert_constant_work($name, $bound, |w| {
                work($make(w), $inputs, $update, |i| i.value().is_some(), $owed)
            });
        };
    }
    measure!(
        "SMA",
        SMALL,
        |w| Sma::new(w).unwrap(),
        &xs,
        |i: &mut Sma<_>, &x| {
            i.update(x);
        }
    );
    measure!(
        "EMA",
        SMALL,
        |w| Ema::new(w).unwrap(),
        &xs,
        |i: &mut Ema<_>, &x| {
            i.update(x);
        }
    );
    measure!(
        "RSI",
        SMALL,
        |w| Rsi::new(w).unwrap(),
        &xs,
        |i: &mut Rsi<_>, &x| {
            i.update(x);
        }
    );
    measure!(
        "MACD",
        SMALL,
        |w| Macd::new(w, 2 * w, w).unwrap(),
        &xs,
        |i: &mut Macd<_>, &x| {
            i.update(x);
        }
    );
    for inputs in [&xs, &falls] {
        measure!(
            "Bollinger",
            TWO_SUMS,
            |w| Bollinger::new(w, 2.0).unwrap(),
            inputs,
            |i: &mut Bollinger<_>, &x| {
                i.update(x);
            },
            |i: &Bollinger<_>| i.moments.owed
        );
        measure!(
            "volatility",
            TWO_SUMS,
            |w| Volatility::new(w, 365.0).unwrap(),
            inputs,
            |i: &mut Volatility<_>, &x| {
                i.update(x);
            },
            |i: &Volatility<_>| i.returns.owed
        );
    }
    for inputs in [&pairs, &falls_with] {
        measure!(
            "correlation",
            FIVE_SUMS,
            |w| Correlation::new(w).unwrap(),
            inputs,
            |i: &mut Correlation<_>, &(x, y)| {
                i.update(x, y);
            },
            |i: &Correlation<_>| i.x.owed + i.y.owed
        );
    }
    // N series: N·(N−1)/2 correlations and N log returns a row, whatever the window;
    // for N = 3, three correlations and three returns (a few operations each).
    assert_constant_work("correlation matrix", 3 * FIVE_SUMS + 3 * 16, |w| {
        let matrix = CorrelationMatrix::of_log_returns(names(3), w).unwrap();
        work(
            matrix,
            &rows,
            |i, row| assert_eq!(i.update(row), Ok(())),
            |i| i.pairs.iter().all(|p| p.value().is_some()),
            |i| i.pairs.iter().map(|p| p.x.owed + p.y.owed).sum(),
        )
    });
}

#[test]
fn re_anchoring_stays_within_its_budget() {
    let xs = collapsing(2_000);
    // Without the budget (nothing ever owed), most updates re-anchor (all of those
    // whose window is falling 100 times a value)...
    let mut unpaid = Moments::new(5);
    let mut paid = Moments::new(5);
    let (mut unpaid_resums, mut paid_resums) = (0, 0);
    for &x in &xs {
        unpaid.push(x);
        unpaid.owed = 0;
        if unpaid.drifted() {
            unpaid.reanchor();
            unpaid_resums += 1;
        }
        paid.push(x);
        if paid.drifted() {
            paid.reanchor();
            paid_resums += 1;
        }
    }
    // ...with it, at most one window is re-summed per window pushed, plus two.
    let allowed = xs.len() / 5 + 2;
    assert!(paid_resums <= allowed, "{paid_resums}");
    // The series asks for far more than that: the budget is what holds it.
    assert!(unpaid_resums > 3 * allowed, "{unpaid_resums}");
}

/// Sums its whole window on every update: what the op count must catch.
struct NaiveSma {
    period: usize,
    window: VecDeque<Counted>,
    last: Option<Counted>,
}

impl NaiveSma {
    fn update(&mut self, x: Counted) -> Option<Counted> {
        self.window.push_back(x);
        if self.window.len() > self.period {
            self.window.pop_front();
        }
        let sum = self.window.iter().fold(Counted(0.0), |s, &x| s + x);
        (self.window.len() == self.period).then(|| sum / Counted(self.period as f64))
    }
}

#[test]
fn the_op_count_catches_work_that_grows_with_the_window() {
    let xs = counted_walk(2_000);
    let measured = WINDOWS.map(|period| {
        let naive = NaiveSma {
            period,
            window: VecDeque::new(),
            last: None,
        };
        work(
            naive,
            &xs,
            |i, &x| i.last = i.update(x),
            |i| i.last.is_some(),
            no_moments,
        )
    });
    assert_eq!(measured.map(|w| w.plain_warm), [6, 51, 501]);
    assert_eq!(measured.map(|w| w.amortized), [6.0, 51.0, 501.0]);
}

// ---------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------

proptest! {
    #[test]
    fn the_sma_of_a_constant_series_is_the_constant(
        c in -1e12f64..1e12,
        period in 1usize..60,
        extra in 0usize..100,
    ) {
        let mut sma = Sma::new(period).unwrap();
        let mut out = None;
        for _ in 0..period + extra {
            out = sma.update(c);
        }
        prop_assert_eq!(out, Some(c));
    }

    #[test]
    fn correlation_stays_within_minus_one_and_one(
        pairs in proptest::collection::vec((-1e6f64..1e6, -1e6f64..1e6), 2..200),
        slope in -1e3f64..1e3,
        window in 2usize..40,
    ) {
        let mut free = Correlation::new(window).unwrap();
        // Exactly linear pairs: rounding would land just beyond ±1 without the clamp.
        let mut linear = Correlation::new(window).unwrap();
        for &(x, y) in &pairs {
            for r in [free.update(x, y), linear.update(x, slope * x + 5.0)].into_iter().flatten() {
                prop_assert!((-1.0..=1.0).contains(&r), "{}", r);
            }
        }
    }
}
