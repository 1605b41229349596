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

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
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

/// `value × part / whole`, for `part <= whole`, at the house scale. Multiplies first,
/// so shares that come out even are exact (30 × 1 / 3 = 10); only a product too large
/// for `Decimal` falls back to multiplying by the fraction.
fn share(
    value: Decimal,
    part: Decimal,
    whole: Decimal,
    rounding: RoundingStrategy,
) -> Result<Decimal, AccountingError> {
    if part == whole {
        return Ok(value);
    }
    let exact = value.checked_mul(part).and_then(|p| p.checked_div(whole));
    let result = match exact {
        Some(result) => result,
        None => part
            .checked_div(whole)
            .and_then(|fraction| value.checked_mul(fraction))
            .ok_or(AccountingError::Overflow)?,
    };
    Ok(result
        .round_dp_with_strategy(MAX_SCALE, rounding)
        .normalize())
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
        let cost = share(
            lot.cost,
            quantity,
            lot.quantity,
            RoundingStrategy::MidpointNearestEven,
        )?;
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
            RoundingStrategy::ToZero,
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
