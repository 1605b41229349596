//! Portfolio accounting: lots, cost-basis methods, and the disposals a ledger implies.
//!
//! A portfolio's **ledger** is its trades and transfers. [`derive`] replays the ledger
//! in effective order (`executed_at`, then the order entries were recorded) and
//! returns the lots left and a [`Disposal`] for every sell and transfer out: which lots
//! it consumed, their cost, and, for a sell, the realized gain.
//!
//! Rules:
//! - a buy makes a lot whose cost is `quantity × price + fee`;
//! - a sell consumes lots by the method in force when the sell was recorded; its
//!   proceeds are `quantity × price − fee`, its realized gain is proceeds − the cost of
//!   the lots consumed;
//! - a transfer in makes a lot at the cost basis given with it; a transfer out consumes
//!   lots like a sell but realizes nothing: the lots (and their cost) leave;
//! - FIFO takes the oldest lots first, LIFO the newest, HIFO the highest unit cost
//!   (oldest first among equals); **average** takes the same fraction of every lot, so
//!   the cost consumed is `quantity × average unit cost` and the lots left keep the
//!   pool's average;
//! - a disposal larger than the holding at its effective time is refused.
//!
//! Corrections, voids and backdated entries are handled the same way as anything else:
//! the ledger changes and is replayed, so every disposal after the change is derived
//! again, and the events carry the disposals whose numbers changed. Costs are conserved
//! exactly: a partly consumed lot keeps `cost − consumed cost`, computed by subtraction.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::values::{CoinSymbol, MAX_SCALE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CostBasisMethod {
    #[default]
    Fifo,
    Lifo,
    Hifo,
    Average,
}

/// An acquisition still (partly) held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// The id of the trade or transfer that acquired it.
    pub lot_id: Uuid,
    pub coin: CoinSymbol,
    #[serde(with = "time::serde::rfc3339")]
    pub acquired_at: OffsetDateTime,
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    /// What the quantity left cost, fees included.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
}

/// Part of a lot taken by a disposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotConsumed {
    pub lot_id: Uuid,
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
}

/// What a sell or transfer out took from the holdings, and what it realized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposal {
    /// The trade or transfer this disposal belongs to.
    pub entry_id: Uuid,
    pub coin: CoinSymbol,
    pub method: CostBasisMethod,
    #[serde(with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    pub lots: Vec<LotConsumed>,
    /// Sum of the consumed lots' cost.
    #[serde(with = "rust_decimal::serde::str")]
    pub cost_basis: Decimal,
    /// For a sell: `quantity × price − fee`. Zero for a transfer.
    #[serde(with = "rust_decimal::serde::str")]
    pub proceeds: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub fee: Decimal,
    /// For a sell: `proceeds − cost_basis`. None for a transfer, which realizes nothing.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub realized_gain: Option<Decimal>,
}

/// One ledger entry, as accounting sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Movement {
    pub id: Uuid,
    /// The order entries were recorded in; breaks ties between equal `executed_at`.
    pub seq: u64,
    pub coin: CoinSymbol,
    pub executed_at: OffsetDateTime,
    pub quantity: Decimal,
    pub kind: MovementKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MovementKind {
    /// A buy or a transfer in, at this total cost.
    Acquire { cost: Decimal },
    /// A sell (`gross` = quantity × price) or, with `gross: None`, a transfer out.
    Dispose {
        method: CostBasisMethod,
        gross: Option<Decimal>,
        fee: Decimal,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountingError {
    #[error("insufficient holdings: {requested} {coin} requested at {at}, {available} held then")]
    InsufficientHoldings {
        coin: CoinSymbol,
        requested: Decimal,
        available: Decimal,
        at: OffsetDateTime,
    },
    #[error("the amounts are too large to account for")]
    Overflow,
}

/// The holdings and disposals a ledger implies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Derived {
    /// Per coin, the lots left in acquisition order.
    pub lots: BTreeMap<CoinSymbol, Vec<Lot>>,
    /// Per disposing entry id.
    pub disposals: BTreeMap<Uuid, Disposal>,
}

/// Replays `movements` in effective order. See the module documentation for the rules.
pub fn derive<'a>(
    movements: impl IntoIterator<Item = &'a Movement>,
) -> Result<Derived, AccountingError> {
    let mut ordered: Vec<&Movement> = movements.into_iter().collect();
    ordered.sort_by_key(|m| (m.executed_at, m.seq));
    let mut derived = Derived::default();
    for movement in ordered {
        derived.apply(movement)?;
    }
    derived.lots.retain(|_, lots| !lots.is_empty());
    Ok(derived)
}

impl Derived {
    /// Applies one movement that comes after every movement applied so far in
    /// effective order (`executed_at`, then `seq`); [`derive`] is these steps in that
    /// order. An oversell is refused before anything changes. Lots used up stay as empty
    /// lists until [`derive`]'s end drops them.
    pub fn apply(&mut self, movement: &Movement) -> Result<(), AccountingError> {
        let lots = self.lots.entry(movement.coin.clone()).or_default();
        match &movement.kind {
            MovementKind::Acquire { cost } => lots.push(Lot {
                lot_id: movement.id,
                coin: movement.coin.clone(),
                acquired_at: movement.executed_at,
                quantity: movement.quantity,
                cost: cost.normalize(),
            }),
            MovementKind::Dispose { method, gross, fee } => {
                let consumed = consume(lots, movement, *method)?;
                let cost_basis = sum(consumed.iter().map(|c| c.cost))?.normalize();
                let (proceeds, realized_gain) = match gross {
                    Some(gross) => {
                        let proceeds = gross.checked_sub(*fee).ok_or(AccountingError::Overflow)?;
                        let gain = proceeds
                            .checked_sub(cost_basis)
                            .ok_or(AccountingError::Overflow)?;
                        (proceeds.normalize(), Some(gain.normalize()))
                    }
                    None => (Decimal::ZERO, None),
                };
                self.disposals.insert(
                    movement.id,
                    Disposal {
                        entry_id: movement.id,
                        coin: movement.coin.clone(),
                        method: *method,
                        quantity: movement.quantity,
                        lots: consumed,
                        cost_basis,
                        proceeds,
                        fee: *fee,
                        realized_gain,
                    },
                );
            }
        }
        Ok(())
    }
}

fn sum(mut values: impl Iterator<Item = Decimal>) -> Result<Decimal, AccountingError> {
    values.try_fold(Decimal::ZERO, |total, v| {
        total.checked_add(v).ok_or(AccountingError::Overflow)
    })
}

/// How [`share`] rounds: costs half to even, average-cost quantities down (toward
/// zero; [`pro_rata`] hands out what is left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rounding {
    HalfToEven,
    TowardZero,
}

/// `value × part / whole`, for `part <= whole`, rounded once from the exact quotient
/// to the house scale (or to as many places as a `Decimal` can hold, for a share above
/// about 7.9e10). Multiplying `Decimal`s first would not do: a product of more than
/// 28 digits is rounded, not refused, and a quotient rounded from it can land on the
/// wrong side of a midpoint. So the mantissas are multiplied and divided as integers
/// ([`Wide`]), the scales folded into a power of ten.
fn share(
    value: Decimal,
    part: Decimal,
    whole: Decimal,
    rounding: Rounding,
) -> Result<Decimal, AccountingError> {
    if part == whole {
        return Ok(value);
    }
    if whole.is_zero() {
        return Err(AccountingError::Overflow);
    }
    let negative = value.is_sign_negative() ^ part.is_sign_negative() ^ whole.is_sign_negative();
    let [v, p, w] = [value, part, whole].map(|d| d.mantissa().unsigned_abs());
    let [sv, sp, sw] = [value, part, whole].map(|d| d.scale() as i32);
    for scale in (0..=MAX_SCALE).rev() {
        // share · 10^scale = v·p·10^(scale + sw − sv − sp) / w.
        let (mut quotient, beyond) = scaled_quotient(v, p, w, scale as i32 + sw - sv - sp)
            .ok_or(AccountingError::Overflow)?;
        let round_up = match rounding {
            Rounding::TowardZero => false,
            Rounding::HalfToEven => {
                beyond == Beyond::MoreThanHalf || (beyond == Beyond::Half && quotient.is_odd())
            }
        };
        if round_up {
            quotient = quotient.plus_one().ok_or(AccountingError::Overflow)?;
        }
        let Some(mantissa) = quotient.to_u128().and_then(|m| i128::try_from(m).ok()) else {
            continue;
        };
        let mantissa = if negative { -mantissa } else { mantissa };
        // Fails if the mantissa is over 96 bits: then fewer places.
        if let Ok(result) = Decimal::try_from_i128_with_scale(mantissa, scale) {
            return Ok(result.normalize());
        }
    }
    Err(AccountingError::Overflow)
}

/// Where the fraction a truncated quotient dropped lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Beyond {
    Nothing,
    LessThanHalf,
    Half,
    MoreThanHalf,
}

/// `⌊v·p·10^e / w⌋` (`e` may be negative) and what it dropped; `None` only if the
/// numerator passes 384 bits, which mantissas under 2^96 and `e` up to 46 cannot do.
fn scaled_quotient(v: u128, p: u128, w: u128, e: i32) -> Option<(Wide, Beyond)> {
    let product = Wide::from(v).times(p)?;
    if e >= 0 {
        let (quotient, rest) = product.times_ten_to(e.unsigned_abs())?.div_rem(w);
        // rest < w < 2^96, so 2·rest cannot overflow.
        let beyond = match (rest, (2 * rest).cmp(&w)) {
            (0, _) => Beyond::Nothing,
            (_, Ordering::Less) => Beyond::LessThanHalf,
            (_, Ordering::Equal) => Beyond::Half,
            (_, Ordering::Greater) => Beyond::MoreThanHalf,
        };
        return Some((quotient, beyond));
    }
    // Divide by w, then drop -e decimal digits one at a time: the last one dropped
    // (the most significant) against 5, and whether anything else was dropped.
    let (mut quotient, rest) = product.div_rem(w);
    let mut sticky = rest != 0;
    let mut last = 0;
    for i in 0..e.unsigned_abs() {
        if i > 0 {
            sticky |= last != 0;
        }
        let (q, digit) = quotient.div_rem(10);
        quotient = q;
        last = digit;
    }
    let beyond = match (last, sticky) {
        (0, false) => Beyond::Nothing,
        (0..5, _) => Beyond::LessThanHalf,
        (5, false) => Beyond::Half,
        _ => Beyond::MoreThanHalf,
    };
    Some((quotient, beyond))
}

/// An unsigned integer below 2^384 in base 2^32, least significant limb first: room
/// for a product of two `Decimal` mantissas (2^192) times 10^46 (under 2^153).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wide([u32; 12]);

impl From<u128> for Wide {
    fn from(v: u128) -> Self {
        let mut limbs = [0; 12];
        for (i, limb) in limbs.iter_mut().take(4).enumerate() {
            *limb = (v >> (32 * i)) as u32;
        }
        Self(limbs)
    }
}

impl Wide {
    /// `self · m`, or `None` past 384 bits.
    fn times(self, m: u128) -> Option<Self> {
        let m = Self::from(m).0;
        let mut out = [0u64; 16];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0;
            for (j, &b) in m.iter().take(4).enumerate() {
                // At most (2^32 − 1)² + 2·(2^32 − 1) < 2^64.
                let t = u64::from(a) * u64::from(b) + out[i + j] + carry;
                out[i + j] = t & 0xFFFF_FFFF;
                carry = t >> 32;
            }
            // Rows before this one reached out[i + 3] at most.
            out[i + 4] = carry;
        }
        if out[12..].iter().any(|&limb| limb != 0) {
            return None;
        }
        let mut limbs = [0; 12];
        for (limb, &o) in limbs.iter_mut().zip(&out) {
            *limb = o as u32;
        }
        Some(Self(limbs))
    }

    /// `self · 10^k`, or `None` past 384 bits.
    fn times_ten_to(mut self, mut k: u32) -> Option<Self> {
        while k > 0 {
            // 10^38 < 2^128.
            let step = k.min(38);
            self = self.times(10u128.pow(step))?;
            k -= step;
        }
        Some(self)
    }

    /// `(⌊self / d⌋, self mod d)` for `0 < d < 2^96`: each step divides a remainder
    /// below `d`, shifted by one limb, which stays under 2^128.
    fn div_rem(mut self, d: u128) -> (Self, u128) {
        debug_assert!(d != 0 && d >> 96 == 0);
        let mut rest = 0u128;
        for limb in self.0.iter_mut().rev() {
            let current = (rest << 32) | u128::from(*limb);
            *limb = (current / d) as u32;
            rest = current % d;
        }
        (self, rest)
    }

    fn is_odd(&self) -> bool {
        self.0[0] & 1 == 1
    }

    fn plus_one(mut self) -> Option<Self> {
        for limb in &mut self.0 {
            let (sum, carried) = limb.overflowing_add(1);
            *limb = sum;
            if !carried {
                return Some(self);
            }
        }
        None
    }

    fn to_u128(self) -> Option<u128> {
        if self.0[4..].iter().any(|&limb| limb != 0) {
            return None;
        }
        Some(
            self.0[..4]
                .iter()
                .rev()
                .fold(0, |acc, &limb| (acc << 32) | u128::from(limb)),
        )
    }
}

/// Takes `movement.quantity` from `lots` by `method`, returning what each lot gave.
fn consume(
    lots: &mut Vec<Lot>,
    movement: &Movement,
    method: CostBasisMethod,
) -> Result<Vec<LotConsumed>, AccountingError> {
    let wanted = movement.quantity;
    let available = sum(lots.iter().map(|l| l.quantity))?;
    if available < wanted {
        return Err(AccountingError::InsufficientHoldings {
            coin: movement.coin.clone(),
            requested: wanted,
            available,
            at: movement.executed_at,
        });
    }
    let taken: Vec<(usize, Decimal)> = match method {
        CostBasisMethod::Average => pro_rata(lots, wanted, available)?,
        ordered => {
            let mut order: Vec<usize> = (0..lots.len()).collect();
            match ordered {
                CostBasisMethod::Lifo => order.reverse(),
                CostBasisMethod::Hifo => {
                    // Highest unit cost first; the sort is stable, so equals stay oldest first.
                    let unit = |l: &Lot| l.cost.checked_div(l.quantity).unwrap_or(Decimal::ZERO);
                    order.sort_by(|&a, &b| unit(&lots[b]).cmp(&unit(&lots[a])));
                }
                _ => {}
            }
            let mut left = wanted;
            let mut taken = Vec::new();
            for index in order {
                if left.is_zero() {
                    break;
                }
                let take = left.min(lots[index].quantity);
                if !take.is_zero() {
                    taken.push((index, take));
                    left -= take;
                }
            }
            taken
        }
    };

    let mut consumed = Vec::with_capacity(taken.len());
    for (index, quantity) in taken {
        let lot = &mut lots[index];
        let cost = share(lot.cost, quantity, lot.quantity, Rounding::HalfToEven)?;
        lot.quantity = (lot.quantity - quantity).normalize();
        lot.cost = (lot.cost - cost).normalize();
        consumed.push(LotConsumed {
            lot_id: lot.lot_id,
            quantity,
            cost,
        });
    }
    lots.retain(|l| !l.quantity.is_zero());
    Ok(consumed)
}

/// Average cost: the same fraction of every lot. Each lot's part is rounded down to the
/// house scale and the few units of rounding left are taken from the lots with room.
fn pro_rata(
    lots: &[Lot],
    wanted: Decimal,
    available: Decimal,
) -> Result<Vec<(usize, Decimal)>, AccountingError> {
    if wanted == available {
        return Ok(lots.iter().map(|l| l.quantity).enumerate().collect());
    }
    let mut parts = Vec::with_capacity(lots.len());
    for lot in lots {
        parts.push(share(
            lot.quantity,
            wanted,
            available,
            Rounding::TowardZero,
        )?);
    }
    let mut left = wanted - sum(parts.iter().copied())?;
    for (part, lot) in parts.iter_mut().zip(lots) {
        if left.is_zero() {
            break;
        }
        let extra = left.min(lot.quantity - *part);
        *part += extra;
        left -= extra;
    }
    Ok(parts
        .into_iter()
        .enumerate()
        .filter(|(_, part)| !part.is_zero())
        .collect())
}

#[cfg(test)]
mod share_tests {
    //! [`share`] against long division on decimal digits, by the book: no code in
    //! common with [`Wide`], slow, and easy to check by hand.

    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    /// A natural number's decimal digits, most significant first, without leading
    /// zeros (0 has none).
    type Digits = Vec<u8>;

    fn trim(mut n: Digits) -> Digits {
        let zeros = n.iter().take_while(|&&d| d == 0).count();
        n.drain(..zeros);
        n
    }

    fn digits(n: u128) -> Digits {
        trim(n.to_string().bytes().map(|b| b - b'0').collect())
    }

    fn compare(a: &[u8], b: &[u8]) -> Ordering {
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }

    /// `a − b` for `a >= b`.
    fn minus(a: &[u8], b: &[u8]) -> Digits {
        let mut out = a.to_vec();
        let mut borrow = 0;
        for i in 0..out.len() {
            let at = out.len() - 1 - i;
            let take = if i < b.len() { b[b.len() - 1 - i] } else { 0 } + borrow;
            borrow = u8::from(out[at] < take);
            out[at] = out[at] + 10 * borrow - take;
        }
        trim(out)
    }

    fn times(a: &[u8], b: &[u8]) -> Digits {
        let mut out = vec![0u32; a.len() + b.len()];
        for (i, &x) in a.iter().rev().enumerate() {
            for (j, &y) in b.iter().rev().enumerate() {
                out[i + j] += u32::from(x) * u32::from(y);
            }
        }
        let mut carry = 0;
        for d in &mut out {
            let t = *d + carry;
            *d = t % 10;
            carry = t / 10;
        }
        trim(out.into_iter().rev().map(|d| d as u8).collect())
    }

    /// Long division: one quotient digit at a time, by repeated subtraction.
    fn divide(n: &[u8], d: &[u8]) -> (Digits, Digits) {
        let (mut quotient, mut rest) = (Vec::new(), Vec::new());
        for &digit in n {
            rest.push(digit);
            rest = trim(rest);
            let mut q = 0;
            while compare(&rest, d) != Ordering::Less {
                rest = minus(&rest, d);
                q += 1;
            }
            quotient.push(q);
        }
        (trim(quotient), rest)
    }

    /// The share at 18 places: `v·p·10^e / w` with `e = 18 + sw − sv − sp`, the
    /// power of ten on the side where it is positive.
    fn by_the_book(value: Decimal, part: Decimal, whole: Decimal, rounding: Rounding) -> Decimal {
        let e = 18 + whole.scale() as i32 - value.scale() as i32 - part.scale() as i32;
        let zeros = |k: i32| vec![0; k.max(0) as usize];
        let mantissa = |d: Decimal| digits(d.mantissa().unsigned_abs());
        let numerator = trim([times(&mantissa(value), &mantissa(part)), zeros(e)].concat());
        let denominator = [mantissa(whole), zeros(-e)].concat();
        let (quotient, rest) = divide(&numerator, &denominator);
        let mut q: u128 = quotient.iter().fold(0, |q, &d| q * 10 + u128::from(d));
        let half = compare(&times(&rest, &[2]), &denominator);
        if rounding == Rounding::HalfToEven
            && (half == Ordering::Greater || (half == Ordering::Equal && q % 2 == 1))
        {
            q += 1;
        }
        Decimal::from_i128_with_scale(q as i128, 18).normalize()
    }

    /// Up to 28 digits with up to 10 before the point, so the share of it fits at 18
    /// places.
    fn value() -> impl Strategy<Value = Decimal> {
        (0u32..=28)
            .prop_flat_map(|scale| (Just(scale), 1..=(scale + 10).min(28)))
            .prop_flat_map(|(scale, digits)| (0..10u128.pow(digits), Just(scale)))
            .prop_map(|(mantissa, scale)| Decimal::from_i128_with_scale(mantissa as i128, scale))
    }

    /// Any positive `Decimal`: a mantissa of up to 96 bits, a scale of up to 28.
    fn positive() -> impl Strategy<Value = Decimal> {
        (1u128..1 << 96, 0u32..=28)
            .prop_map(|(mantissa, scale)| Decimal::from_i128_with_scale(mantissa as i128, scale))
    }

    #[test]
    fn the_book_agrees_with_case_8() {
        let share = |value, part, whole| by_the_book(value, part, whole, Rounding::HalfToEven);
        let first = share(dec!(501.000002), dec!(1), dec!(5.00000002));
        assert_eq!(first, dec!(100.199999999200000003));
        let second = share(
            dec!(400.800002000799999997),
            dec!(2.00000001),
            dec!(4.00000002),
        );
        assert_eq!(second, dec!(200.400001000399999998));
    }

    #[test]
    fn a_share_too_large_for_18_places_keeps_the_places_that_fit() {
        // 10^24 / 3 has 24 digits before the point, and a mantissa below 2^96 (7.9e28)
        // has room for 5 more.
        let huge = dec!(1_000_000_000_000_000_000_000_000);
        let third = share(huge, dec!(1), dec!(3), Rounding::HalfToEven);
        assert_eq!(third, Ok(dec!(333_333_333_333_333_333_333_333.33333)));
        let two_thirds = share(huge, dec!(2), dec!(3), Rounding::HalfToEven);
        assert_eq!(two_thirds, Ok(dec!(666_666_666_666_666_666_666_666.66667)));
        let down = share(huge, dec!(2), dec!(3), Rounding::TowardZero);
        assert_eq!(down, Ok(dec!(666_666_666_666_666_666_666_666.66666)));
    }

    proptest! {
        #[test]
        fn shares_are_the_exact_quotient_rounded_once(
            value in value(),
            a in positive(),
            b in positive(),
        ) {
            let (part, whole) = if a <= b { (a, b) } else { (b, a) };
            for rounding in [Rounding::HalfToEven, Rounding::TowardZero] {
                prop_assert_eq!(
                    share(value, part, whole, rounding).unwrap(),
                    by_the_book(value, part, whole, rounding),
                    "{:?}", rounding
                );
            }
        }

        /// `(2q + 1)·10^−18 × p / 2p` is `q + ½` at the 18th place exactly: half to even
        /// gives `q` or `q + 1`, whichever is even, however many digits `p` has.
        #[test]
        fn midpoints_round_to_even(
            q in 0u128..10u128.pow(27),
            p in 1u128..1 << 95,
            scale in 0u32..=28,
        ) {
            let value = Decimal::from_i128_with_scale((2 * q + 1) as i128, 18);
            let part = Decimal::from_i128_with_scale(p as i128, scale);
            let whole = Decimal::from_i128_with_scale(2 * p as i128, scale);
            let even = q + q % 2;
            prop_assert_eq!(
                share(value, part, whole, Rounding::HalfToEven).unwrap(),
                Decimal::from_i128_with_scale(even as i128, 18).normalize()
            );
            prop_assert_eq!(
                share(value, part, whole, Rounding::TowardZero).unwrap(),
                Decimal::from_i128_with_scale(q as i128, 18).normalize()
            );
        }
    }
}
