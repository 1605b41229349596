//! Given/when/then for every Alert command, each refusal included, and the rules that
//! make triggering idempotent.

use super::*;
use cqrs_es::test::TestFramework;
use rust_decimal_macros::dec;
use time::macros::datetime;

type Given = TestFramework<Alert>;

const ALERT: Uuid = Uuid::from_u128(0xA1);
const OWNER: Uuid = Uuid::from_u128(0x0E);
const T0: OffsetDateTime = datetime!(2026-05-01 10:00 UTC);

fn above(threshold: Decimal) -> AlertCondition {
    AlertCondition::PriceAbove {
        threshold: Price::new(threshold).unwrap(),
    }
    .validated()
    .unwrap()
}

fn created(repeat: Repeat, cooldown_seconds: u32) -> AlertEvent {
    AlertEvent::Created {
        alert_id: ALERT,
        owner_id: OWNER,
        coin: CoinSymbol::parse("BTC").unwrap(),
        condition: above(dec!(50000)),
        repeat,
        cooldown_seconds,
        created_at: T0,
    }
}

fn seen(price: Decimal, minutes: i64) -> Observation {
    Observation {
        value: price,
        reference: None,
        previous: None,
        at: T0 + Duration::minutes(minutes),
    }
}

fn trigger(price: Decimal, minutes: i64) -> AlertCommand {
    AlertCommand::Trigger {
        observation: seen(price, minutes),
    }
}

fn triggered(price: Decimal, minutes: i64) -> AlertEvent {
    AlertEvent::Triggered {
        observation: seen(price, minutes),
    }
}

#[test]
fn create_arms_an_alert() {
    Given::with(())
        .given_no_previous_events()
        .when(AlertCommand::Create {
            alert_id: ALERT,
            owner_id: OWNER,
            coin: CoinSymbol::parse("BTC").unwrap(),
            condition: above(dec!(50000)),
            repeat: Repeat::OneShot,
            cooldown_seconds: 0,
            now: T0,
        })
        .then_expect_events(vec![created(Repeat::OneShot, 0)]);
}

#[test]
fn create_refusals() {
    Given::with(())
        .given(vec![created(Repeat::OneShot, 0)])
        .when(AlertCommand::Create {
            alert_id: ALERT,
            owner_id: OWNER,
            coin: CoinSymbol::parse("BTC").unwrap(),
            condition: above(dec!(1)),
            repeat: Repeat::OneShot,
            cooldown_seconds: 0,
            now: T0,
        })
        .then_expect_error(AlertError::AlreadyCreated);
    Given::with(())
        .given_no_previous_events()
        .when(AlertCommand::Create {
            alert_id: ALERT,
            owner_id: OWNER,
            coin: CoinSymbol::parse("BTC").unwrap(),
            condition: above(dec!(1)),
            repeat: Repeat::Recurring,
            cooldown_seconds: MAX_COOLDOWN_SECONDS + 1,
            now: T0,
        })
        .then_expect_error(AlertError::CooldownTooLong);
    Given::with(())
        .given_no_previous_events()
        .when(AlertCommand::Disable { now: T0 })
        .then_expect_error(AlertError::NotFound);
}

#[test]
fn a_met_condition_triggers() {
    Given::with(())
        .given(vec![created(Repeat::OneShot, 0)])
        .when(trigger(dec!(50001), 1))
        .then_expect_events(vec![triggered(dec!(50001), 1)]);
}

#[test]
fn a_trigger_that_does_not_meet_the_condition_is_refused() {
    Given::with(())
        .given(vec![created(Repeat::OneShot, 0)])
        .when(trigger(dec!(49999), 1))
        .then_expect_error(AlertError::ConditionNotMet);
}

#[test]
fn a_one_shot_alert_fires_once_until_rearmed() {
    let fired = vec![created(Repeat::OneShot, 0), triggered(dec!(50001), 1)];
    Given::with(())
        .given(fired.clone())
        .when(trigger(dec!(50001), 1))
        .then_expect_events(vec![]);
    Given::with(())
        .given(fired.clone())
        .when(trigger(dec!(60000), 30))
        .then_expect_events(vec![]);
    Given::with(())
        .given(fired.clone())
        .when(AlertCommand::Rearm {
            now: T0 + Duration::hours(1),
        })
        .then_expect_events(vec![AlertEvent::Rearmed {
            at: T0 + Duration::hours(1),
        }]);
    let mut rearmed = fired;
    rearmed.push(AlertEvent::Rearmed {
        at: T0 + Duration::hours(1),
    });
    Given::with(())
        .given(rearmed)
        .when(trigger(dec!(51000), 61))
        .then_expect_events(vec![triggered(dec!(51000), 61)]);
}

#[test]
fn a_recurring_alert_waits_out_its_cooldown() {
    let once = vec![created(Repeat::Recurring, 600), triggered(dec!(50001), 0)];
    Given::with(())
        .given(once.clone())
        .when(trigger(dec!(50500), 9))
        .then_expect_events(vec![]);
    Given::with(())
        .given(once.clone())
        .when(trigger(dec!(50500), 10))
        .then_expect_events(vec![triggered(dec!(50500), 10)]);
    // A late evaluation from before the last triggering changes nothing.
    Given::with(())
        .given(once)
        .when(trigger(dec!(50500), -5))
        .then_expect_events(vec![]);
}

#[test]
fn disable_rearm_and_delete() {
    Given::with(())
        .given(vec![created(Repeat::OneShot, 0)])
        .when(AlertCommand::Disable { now: T0 })
        .then_expect_events(vec![AlertEvent::Disabled { at: T0 }]);
    let disabled = vec![created(Repeat::OneShot, 0), AlertEvent::Disabled { at: T0 }];
    Given::with(())
        .given(disabled.clone())
        .when(AlertCommand::Disable { now: T0 })
        .then_expect_events(vec![]);
    Given::with(())
        .given(disabled.clone())
        .when(trigger(dec!(90000), 1))
        .then_expect_events(vec![]);
    Given::with(())
        .given(disabled)
        .when(AlertCommand::Rearm { now: T0 })
        .then_expect_events(vec![AlertEvent::Rearmed { at: T0 }]);
    Given::with(())
        .given(vec![created(Repeat::OneShot, 0)])
        .when(AlertCommand::Rearm { now: T0 })
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![created(Repeat::OneShot, 0)])
        .when(AlertCommand::Delete { now: T0 })
        .then_expect_events(vec![AlertEvent::Deleted { at: T0 }]);
}

#[test]
fn a_deleted_alert_is_gone() {
    let deleted = vec![created(Repeat::OneShot, 0), AlertEvent::Deleted { at: T0 }];
    Given::with(())
        .given(deleted.clone())
        .when(AlertCommand::Rearm { now: T0 })
        .then_expect_error(AlertError::NotFound);
    Given::with(())
        .given(deleted.clone())
        .when(AlertCommand::Delete { now: T0 })
        .then_expect_error(AlertError::NotFound);
    Given::with(())
        .given(deleted)
        .when(trigger(dec!(90000), 1))
        .then_expect_events(vec![]);
}

#[test]
fn every_condition_reads_its_observation() {
    let obs = |value: Decimal| Observation {
        value,
        reference: None,
        previous: None,
        at: T0,
    };
    let c = |condition: AlertCondition| condition.validated().unwrap();

    assert!(
        c(AlertCondition::PriceBelow {
            threshold: Price::new(dec!(100)).unwrap()
        })
        .is_met(&obs(dec!(100)))
    );
    assert!(
        !c(AlertCondition::PriceBelow {
            threshold: Price::new(dec!(100)).unwrap()
        })
        .is_met(&obs(dec!(100.01)))
    );
    assert!(c(AlertCondition::Change24h { percent: dec!(5) }).is_met(&obs(dec!(5.5))));
    assert!(!c(AlertCondition::Change24h { percent: dec!(5) }).is_met(&obs(dec!(-7))));
    assert!(c(AlertCondition::Change24h { percent: dec!(-5) }).is_met(&obs(dec!(-7))));
    assert!(
        c(AlertCondition::MoveWithin {
            percent: dec!(3),
            window_minutes: 60
        })
        .is_met(&obs(dec!(-3.2)))
    );
    assert!(
        !c(AlertCondition::MoveWithin {
            percent: dec!(3),
            window_minutes: 60
        })
        .is_met(&obs(dec!(2.9)))
    );
    assert!(
        c(AlertCondition::VolumeSpike {
            factor: dec!(3),
            window_minutes: 15
        })
        .is_met(&obs(dec!(3)))
    );
    assert!(c(AlertCondition::SentimentBelow { score: dec!(-0.4) }).is_met(&obs(dec!(-0.5))));
    assert!(c(AlertCondition::SentimentAbove { score: dec!(0.4) }).is_met(&obs(dec!(0.4))));

    let cross = c(AlertCondition::CrossesAverage {
        average: MovingAverage::Ema,
        period: 20,
        direction: Direction::Above,
    });
    let crossing = |previous, value| Observation {
        value,
        reference: Some(dec!(100)),
        previous: Some(previous),
        at: T0,
    };
    assert!(cross.is_met(&crossing(dec!(99), dec!(101))));
    assert!(
        !cross.is_met(&crossing(dec!(101), dec!(102))),
        "already above is not a cross"
    );
    assert!(
        !cross.is_met(&obs(dec!(101))),
        "a cross needs the average and the price before"
    );
    let down = c(AlertCondition::CrossesAverage {
        average: MovingAverage::Sma,
        period: 50,
        direction: Direction::Below,
    });
    assert!(down.is_met(&crossing(dec!(101), dec!(99))));
}

#[test]
fn conditions_validate_their_parameters_and_on_the_way_in() {
    let bad = [
        AlertCondition::PriceAbove {
            threshold: Price::new(dec!(0)).unwrap(),
        },
        AlertCondition::Change24h { percent: dec!(0) },
        AlertCondition::Change24h {
            percent: dec!(-100),
        },
        AlertCondition::MoveWithin {
            percent: dec!(5),
            window_minutes: 0,
        },
        AlertCondition::MoveWithin {
            percent: dec!(5),
            window_minutes: MAX_WINDOW_MINUTES + 1,
        },
        AlertCondition::VolumeSpike {
            factor: dec!(1),
            window_minutes: 10,
        },
        AlertCondition::CrossesAverage {
            average: MovingAverage::Sma,
            period: 1,
            direction: Direction::Above,
        },
        AlertCondition::SentimentAbove { score: dec!(1.5) },
    ];
    for condition in bad {
        assert!(
            matches!(condition.clone().validated(), Err(ValueError::Condition(_))),
            "{condition:?}"
        );
    }
    let json = r#"{"kind":"SENTIMENT_BELOW","score":"-2"}"#;
    assert!(serde_json::from_str::<AlertCondition>(json).is_err());
    let json = r#"{"kind":"MOVE_WITHIN","percent":"2.5","window_minutes":30}"#;
    assert_eq!(
        serde_json::from_str::<AlertCondition>(json).unwrap(),
        AlertCondition::MoveWithin {
            percent: dec!(2.5),
            window_minutes: 30
        }
    );
}
