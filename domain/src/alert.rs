//! The Alert aggregate: a condition on a coin, and whether it has fired.
//!
//! The evaluation worker (read side) watches ticks and sends `Trigger` with what it
//! observed; this aggregate decides whether that is a new triggering:
//! - the observation must meet the condition ([`AlertCondition::is_met`]), or the
//!   trigger is refused: an evaluator bug cannot fire an alert;
//! - a one-shot alert fires once, then waits to be re-armed;
//! - a recurring alert fires again only after its cooldown;
//! - a trigger for a disabled or deleted alert, or one older than the last triggering
//!   (evaluations can arrive late or twice), changes nothing.
//!
//! So sending the same trigger any number of times stores one `Triggered`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::values::{CoinSymbol, Price, ValueError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MovingAverage {
    Sma,
    Ema,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    /// From below to above.
    Above,
    /// From above to below.
    Below,
}

/// What an alert watches. Construct with [`AlertCondition::validated`] (deserializing
/// runs the same checks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "SCREAMING_SNAKE_CASE",
    try_from = "RawCondition"
)]
pub enum AlertCondition {
    /// The price is at or above the threshold.
    PriceAbove { threshold: Price },
    /// The price is at or below the threshold.
    PriceBelow { threshold: Price },
    /// The 24-hour change reaches `percent` (a rise if positive, a fall if negative).
    Change24h {
        #[serde(with = "rust_decimal::serde::str")]
        percent: Decimal,
    },
    /// The price moves by at least `percent` either way within `window_minutes`.
    MoveWithin {
        #[serde(with = "rust_decimal::serde::str")]
        percent: Decimal,
        window_minutes: u32,
    },
    /// Volume over the window is at least `factor` times its usual level.
    VolumeSpike {
        #[serde(with = "rust_decimal::serde::str")]
        factor: Decimal,
        window_minutes: u32,
    },
    /// The price crosses its moving average of `period` candles in `direction`.
    CrossesAverage {
        average: MovingAverage,
        period: u32,
        direction: Direction,
    },
    /// The coin's sentiment score (−1 to 1) falls to or below `score`.
    SentimentBelow {
        #[serde(with = "rust_decimal::serde::str")]
        score: Decimal,
    },
    /// The coin's sentiment score rises to or above `score`.
    SentimentAbove {
        #[serde(with = "rust_decimal::serde::str")]
        score: Decimal,
    },
}

/// The same shape, unchecked: what arrives before validation.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
enum RawCondition {
    PriceAbove {
        threshold: Price,
    },
    PriceBelow {
        threshold: Price,
    },
    Change24h {
        #[serde(with = "rust_decimal::serde::str")]
        percent: Decimal,
    },
    MoveWithin {
        #[serde(with = "rust_decimal::serde::str")]
        percent: Decimal,
        window_minutes: u32,
    },
    VolumeSpike {
        #[serde(with = "rust_decimal::serde::str")]
        factor: Decimal,
        window_minutes: u32,
    },
    CrossesAverage {
        average: MovingAverage,
        period: u32,
        direction: Direction,
    },
    SentimentBelow {
        #[serde(with = "rust_decimal::serde::str")]
        score: Decimal,
    },
    SentimentAbove {
        #[serde(with = "rust_decimal::serde::str")]
        score: Decimal,
    },
}

impl TryFrom<RawCondition> for AlertCondition {
    type Error = ValueError;
    fn try_from(raw: RawCondition) -> Result<Self, Self::Error> {
        let condition = match raw {
            RawCondition::PriceAbove { threshold } => Self::PriceAbove { threshold },
            RawCondition::PriceBelow { threshold } => Self::PriceBelow { threshold },
            RawCondition::Change24h { percent } => Self::Change24h { percent },
            RawCondition::MoveWithin {
                percent,
                window_minutes,
            } => Self::MoveWithin {
                percent,
                window_minutes,
            },
            RawCondition::VolumeSpike {
                factor,
                window_minutes,
            } => Self::VolumeSpike {
                factor,
                window_minutes,
            },
            RawCondition::CrossesAverage {
                average,
                period,
                direction,
            } => Self::CrossesAverage {
                average,
                period,
                direction,
            },
            RawCondition::SentimentBelow { score } => Self::SentimentBelow { score },
            RawCondition::SentimentAbove { score } => Self::SentimentAbove { score },
        };
        condition.validated()
    }
}

/// Longest window a condition may look back over: one week.
pub const MAX_WINDOW_MINUTES: u32 = 7 * 24 * 60;

fn rule(ok: bool, what: &'static str) -> Result<(), ValueError> {
    if ok {
        Ok(())
    } else {
        Err(ValueError::Condition(what))
    }
}

impl AlertCondition {
    /// Checks the parameters: thresholds above zero, percentages within ±1000 % (a
    /// fall cannot pass −100 %), windows of 1 minute to a week, periods of 2 to 500
    /// candles, spike factors above 1 and at most 1000, sentiment scores within ±1.
    pub fn validated(self) -> Result<Self, ValueError> {
        let hundred = Decimal::from(100);
        let thousand = Decimal::from(1000);
        let window = |minutes: u32| (1..=MAX_WINDOW_MINUTES).contains(&minutes);
        match &self {
            Self::PriceAbove { threshold } | Self::PriceBelow { threshold } => {
                rule(!threshold.is_zero(), "a price threshold must be above zero")?;
            }
            Self::Change24h { percent } => rule(
                !percent.is_zero() && *percent > -hundred && *percent <= thousand,
                "a 24 h change must be non-zero, above -100 % and at most 1000 %",
            )?,
            Self::MoveWithin {
                percent,
                window_minutes,
            } => rule(
                *percent > Decimal::ZERO && *percent <= thousand && window(*window_minutes),
                "a move must be above 0 % and at most 1000 %, within 1 minute to a week",
            )?,
            Self::VolumeSpike {
                factor,
                window_minutes,
            } => rule(
                *factor > Decimal::ONE && *factor <= thousand && window(*window_minutes),
                "a volume spike factor must be above 1 and at most 1000, within 1 minute to a week",
            )?,
            Self::CrossesAverage { period, .. } => rule(
                (2..=500).contains(period),
                "a moving average period must be 2 to 500 candles",
            )?,
            Self::SentimentBelow { score } | Self::SentimentAbove { score } => rule(
                *score >= -Decimal::ONE && *score <= Decimal::ONE,
                "a sentiment score must be between -1 and 1",
            )?,
        }
        Ok(self)
    }

    /// Whether an observation meets the condition. `observed` is, by condition: the
    /// price; the 24 h change in %; the move in % (either way); the volume as a
    /// multiple of its usual level; the price, with `reference` the moving average and
    /// `previous` the price before (for a cross); the sentiment score.
    pub fn is_met(&self, observation: &Observation) -> bool {
        let value = observation.value;
        match self {
            Self::PriceAbove { threshold } => value >= threshold.value(),
            Self::PriceBelow { threshold } => value <= threshold.value(),
            Self::Change24h { percent } if percent.is_sign_positive() => value >= *percent,
            Self::Change24h { percent } => value <= *percent,
            Self::MoveWithin { percent, .. } => value.abs() >= *percent,
            Self::VolumeSpike { factor, .. } => value >= *factor,
            Self::CrossesAverage { direction, .. } => {
                match (observation.reference, observation.previous) {
                    (Some(average), Some(previous)) => match direction {
                        Direction::Above => previous < average && value >= average,
                        Direction::Below => previous > average && value <= average,
                    },
                    _ => false,
                }
            }
            Self::SentimentBelow { score } => value <= *score,
            Self::SentimentAbove { score } => value >= *score,
        }
    }
}

/// What the evaluator saw. See [`AlertCondition::is_met`] for what each field means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    #[serde(with = "rust_decimal::serde::str")]
    pub value: Decimal,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub reference: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub previous: Option<Decimal>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Repeat {
    /// Fires once, then waits to be re-armed.
    OneShot,
    /// Fires again after the cooldown.
    Recurring,
}

/// Longest cooldown: 30 days.
pub const MAX_COOLDOWN_SECONDS: u32 = 30 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertCommand {
    Create {
        alert_id: Uuid,
        owner_id: Uuid,
        coin: CoinSymbol,
        condition: AlertCondition,
        repeat: Repeat,
        cooldown_seconds: u32,
        now: OffsetDateTime,
    },
    Trigger {
        observation: Observation,
    },
    Rearm {
        now: OffsetDateTime,
    },
    Disable {
        now: OffsetDateTime,
    },
    Delete {
        now: OffsetDateTime,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertEvent {
    Created {
        alert_id: Uuid,
        owner_id: Uuid,
        coin: CoinSymbol,
        condition: AlertCondition,
        repeat: Repeat,
        cooldown_seconds: u32,
        #[serde(with = "time::serde::rfc3339")]
        created_at: OffsetDateTime,
    },
    Triggered {
        observation: Observation,
    },
    Rearmed {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    Disabled {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    Deleted {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

impl cqrs_es::DomainEvent for AlertEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "AlertCreated",
            Self::Triggered { .. } => "AlertTriggered",
            Self::Rearmed { .. } => "AlertRearmed",
            Self::Disabled { .. } => "AlertDisabled",
            Self::Deleted { .. } => "AlertDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error("the alert already exists")]
    AlreadyCreated,
    #[error("the alert does not exist")]
    NotFound,
    #[error("the cooldown must be at most {MAX_COOLDOWN_SECONDS} seconds")]
    CooldownTooLong,
    #[error("the observation does not meet the alert's condition")]
    ConditionNotMet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertStatus {
    Armed,
    /// A one-shot alert that fired and waits to be re-armed.
    Fired,
    Disabled,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    pub alert_id: Uuid,
    pub owner_id: Uuid,
    pub coin: CoinSymbol,
    pub condition: AlertCondition,
    pub repeat: Repeat,
    pub cooldown_seconds: u32,
    pub status: AlertStatus,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_triggered_at: Option<OffsetDateTime>,
    pub times_triggered: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    state: Option<AlertState>,
}

fn utc(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(UtcOffset::UTC)
}

impl Alert {
    pub fn state(&self) -> Option<&AlertState> {
        self.state.as_ref()
    }

    pub fn decide(&self, command: AlertCommand) -> Result<Vec<AlertEvent>, AlertError> {
        let Some(state) = &self.state else {
            return match command {
                AlertCommand::Create {
                    alert_id,
                    owner_id,
                    coin,
                    condition,
                    repeat,
                    cooldown_seconds,
                    now,
                } => {
                    if cooldown_seconds > MAX_COOLDOWN_SECONDS {
                        return Err(AlertError::CooldownTooLong);
                    }
                    Ok(vec![AlertEvent::Created {
                        alert_id,
                        owner_id,
                        coin,
                        condition,
                        repeat,
                        cooldown_seconds,
                        created_at: utc(now),
                    }])
                }
                _ => Err(AlertError::NotFound),
            };
        };
        match command {
            AlertCommand::Create { .. } => Err(AlertError::AlreadyCreated),
            AlertCommand::Trigger { observation } => {
                let observation = Observation {
                    at: utc(observation.at),
                    ..observation
                };
                if state.status != AlertStatus::Armed {
                    return Ok(vec![]);
                }
                if let Some(last) = state.last_triggered_at {
                    let cooldown = Duration::seconds(i64::from(state.cooldown_seconds));
                    if observation.at < last + cooldown {
                        return Ok(vec![]);
                    }
                }
                if !state.condition.is_met(&observation) {
                    return Err(AlertError::ConditionNotMet);
                }
                Ok(vec![AlertEvent::Triggered { observation }])
            }
            _ if state.status == AlertStatus::Deleted => Err(AlertError::NotFound),
            AlertCommand::Rearm { now } => Ok(match state.status {
                AlertStatus::Armed => vec![],
                _ => vec![AlertEvent::Rearmed { at: utc(now) }],
            }),
            AlertCommand::Disable { now } => Ok(match state.status {
                AlertStatus::Disabled => vec![],
                _ => vec![AlertEvent::Disabled { at: utc(now) }],
            }),
            AlertCommand::Delete { now } => Ok(vec![AlertEvent::Deleted { at: utc(now) }]),
        }
    }

    pub fn evolve(&mut self, event: &AlertEvent) {
        if let AlertEvent::Created {
            alert_id,
            owner_id,
            coin,
            condition,
            repeat,
            cooldown_seconds,
            ..
        } = event
        {
            self.state = Some(AlertState {
                alert_id: *alert_id,
                owner_id: *owner_id,
                coin: coin.clone(),
                condition: condition.clone(),
                repeat: *repeat,
                cooldown_seconds: *cooldown_seconds,
                status: AlertStatus::Armed,
                last_triggered_at: None,
                times_triggered: 0,
            });
            return;
        }
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match event {
            AlertEvent::Created { .. } => {}
            AlertEvent::Triggered { observation } => {
                state.last_triggered_at = Some(observation.at);
                state.times_triggered += 1;
                if state.repeat == Repeat::OneShot {
                    state.status = AlertStatus::Fired;
                }
            }
            AlertEvent::Rearmed { .. } => state.status = AlertStatus::Armed,
            AlertEvent::Disabled { .. } => state.status = AlertStatus::Disabled,
            AlertEvent::Deleted { .. } => state.status = AlertStatus::Deleted,
        }
    }
}

cqrs_aggregate!(Alert, "Alert", AlertCommand, AlertEvent, AlertError);

#[cfg(test)]
mod tests;
