//! Alerts and the watchlist: `alerts`, `watchlist`, `usage`; `createAlert`,
//! `disableAlert`, `rearmAlert`, `deleteAlert`, `addToWatchlist`,
//! `removeFromWatchlist`.
//!
//! Lists come from the read models (`read.alerts`, `read.watchlists`, `read.usage`);
//! alert mutations check ownership on the write side, as portfolios do. The watchlist
//! is part of the User aggregate: its mutations act on the caller alone.

use async_graphql::connection::{Connection, OpaqueCursor};
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, OneofObject, SimpleObject};
use coinfold_domain::alert::{
    AlertCommand, AlertCondition, AlertError, Direction, MovingAverage, Repeat,
};
use coinfold_domain::user::UserCommand;
use coinfold_domain::values::{CoinSymbol, Price};
use coinfold_projections::alerting;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::{ApiError, command_error, user_refusal};
use super::page::Page;
use super::portfolio::field;
use super::{Receipt, api, entry_id, known_coin, not_anothers, owned, require_user, user_context};

const ALERT: &str = "Alert";

#[derive(Enum, Copy, Clone, Eq, PartialEq, Serialize)]
#[graphql(remote = "coinfold_domain::alert::Repeat")]
pub enum AlertRepeat {
    /// Fires once, then waits to be re-armed.
    OneShot,
    /// Fires again after the cooldown.
    Recurring,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Serialize)]
#[graphql(remote = "coinfold_domain::alert::MovingAverage")]
pub enum Average {
    Sma,
    Ema,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Serialize)]
#[graphql(remote = "coinfold_domain::alert::Direction")]
pub enum CrossDirection {
    /// From below to above.
    Above,
    /// From above to below.
    Below,
}

#[derive(InputObject, Serialize)]
pub struct MoveWithinInput {
    pub percent: Decimal,
    pub window_minutes: u32,
}

#[derive(InputObject, Serialize)]
pub struct VolumeSpikeInput {
    pub factor: Decimal,
    pub window_minutes: u32,
}

#[derive(InputObject, Serialize)]
pub struct CrossesAverageInput {
    pub average: Average,
    pub period: u32,
    pub direction: CrossDirection,
}

/// Exactly one condition.
#[derive(OneofObject, Serialize)]
pub enum AlertConditionInput {
    /// The USD price is at or above this.
    PriceAbove(Decimal),
    /// The USD price is at or below this.
    PriceBelow(Decimal),
    /// The 24-hour change reaches this % (a rise if positive, a fall if negative).
    Change24h(Decimal),
    /// The price moves by at least `percent` either way within the window.
    MoveWithin(MoveWithinInput),
    /// Volume over the window is at least `factor` times its usual level.
    VolumeSpike(VolumeSpikeInput),
    /// The price crosses its moving average of `period` 1-minute candles.
    CrossesAverage(CrossesAverageInput),
    /// The sentiment score (−1 to 1) falls to or below this.
    SentimentBelow(Decimal),
    /// The sentiment score rises to or above this.
    SentimentAbove(Decimal),
}

impl AlertConditionInput {
    fn condition(&self) -> Result<AlertCondition, ApiError> {
        let threshold = |value: Decimal| field("condition", Price::new(value));
        let condition = match self {
            Self::PriceAbove(v) => AlertCondition::PriceAbove {
                threshold: threshold(*v)?,
            },
            Self::PriceBelow(v) => AlertCondition::PriceBelow {
                threshold: threshold(*v)?,
            },
            Self::Change24h(percent) => AlertCondition::Change24h { percent: *percent },
            Self::MoveWithin(m) => AlertCondition::MoveWithin {
                percent: m.percent,
                window_minutes: m.window_minutes,
            },
            Self::VolumeSpike(v) => AlertCondition::VolumeSpike {
                factor: v.factor,
                window_minutes: v.window_minutes,
            },
            Self::CrossesAverage(c) => AlertCondition::CrossesAverage {
                average: MovingAverage::from(c.average),
                period: c.period,
                direction: Direction::from(c.direction),
            },
            Self::SentimentBelow(score) => AlertCondition::SentimentBelow { score: *score },
            Self::SentimentAbove(score) => AlertCondition::SentimentAbove { score: *score },
        };
        field("condition", condition.validated())
    }
}

#[derive(InputObject, Serialize)]
pub struct CreateAlertInput {
    /// Your own id for the alert; see `TradeInput.tradeId`.
    pub alert_id: Option<ID>,
    pub coin: String,
    pub condition: AlertConditionInput,
    #[graphql(default_with = "AlertRepeat::OneShot")]
    pub repeat: AlertRepeat,
    /// For a recurring alert: how long after firing it may fire again (at most 30 days).
    #[graphql(default = 3600)]
    pub cooldown_seconds: u32,
}

/// An alert as its owner sees it.
#[derive(SimpleObject)]
pub struct AlertView {
    pub id: ID,
    pub coin: String,
    /// The condition as stored, tagged by `kind`, e.g. `{"kind": "PRICE_ABOVE", "threshold": "70000"}`.
    pub condition: Json<Value>,
    pub repeat: String,
    pub cooldown_seconds: i32,
    /// ARMED, FIRED, DISABLED (a deleted alert is not listed).
    pub status: String,
    pub times_triggered: i64,
    pub last_triggered_at: Option<OffsetDateTime>,
    /// What the last trigger observed.
    pub last_observation: Option<Json<Value>>,
    pub created_at: OffsetDateTime,
    #[graphql(skip)]
    alert_id: Uuid,
}

#[derive(FromRow)]
struct AlertRow {
    alert_id: Uuid,
    coin: String,
    condition: Value,
    repeat: String,
    cooldown_seconds: i32,
    status: String,
    times_triggered: i64,
    last_triggered_at: Option<OffsetDateTime>,
    last_observation: Option<Value>,
    created_at: OffsetDateTime,
}

impl From<AlertRow> for AlertView {
    fn from(row: AlertRow) -> Self {
        Self {
            id: ID(row.alert_id.to_string()),
            alert_id: row.alert_id,
            coin: row.coin,
            condition: Json(row.condition),
            repeat: row.repeat,
            cooldown_seconds: row.cooldown_seconds,
            status: row.status,
            times_triggered: row.times_triggered,
            last_triggered_at: row.last_triggered_at,
            last_observation: row.last_observation.map(Json),
            created_at: row.created_at,
        }
    }
}

/// A coin on the caller's watchlist, with its latest USD price.
#[derive(SimpleObject)]
pub struct WatchedCoin {
    pub coin: String,
    pub added_at: OffsetDateTime,
    pub price: Option<Decimal>,
}

/// How many events the caller's commands produced, by event type.
#[derive(SimpleObject)]
pub struct Usage {
    pub event_type: String,
    pub count: i64,
}

#[derive(Default)]
pub struct AlertQuery;

#[Object]
impl AlertQuery {
    /// The caller's alerts, oldest first (deleted ones left out).
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<OpaqueCursor<(OffsetDateTime, Uuid)>, AlertView>, ApiError> {
        let principal = require_user(ctx)?;
        let page: Page<(OffsetDateTime, Uuid)> = Page::new(first, after)?;
        let (after_time, after_id) = page
            .after
            .unwrap_or((OffsetDateTime::UNIX_EPOCH, Uuid::nil()));
        let rows: Vec<AlertRow> = sqlx::query_as(
            "SELECT alert_id, coin, condition, repeat, cooldown_seconds, status, \
                    times_triggered, last_triggered_at, last_observation, created_at \
             FROM read.alerts \
             WHERE owner_id = $1 AND status <> 'DELETED' AND (created_at, alert_id) > ($2, $3) \
             ORDER BY created_at, alert_id LIMIT $4",
        )
        .bind(principal.user_id)
        .bind(after_time)
        .bind(after_id)
        .bind(page.fetch())
        .fetch_all(&api(ctx).pool)
        .await
        .map_err(ApiError::internal)?;
        let rows = rows.into_iter().map(AlertView::from).collect();
        Ok(page.connection(rows, |a: &AlertView| (a.created_at, a.alert_id)))
    }

    /// The caller's watchlist, by coin.
    async fn watchlist(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<OpaqueCursor<String>, WatchedCoin>, ApiError> {
        let principal = require_user(ctx)?;
        let page: Page<String> = Page::new(first, after)?;
        let rows: Vec<(String, OffsetDateTime)> = sqlx::query_as(
            "SELECT coin, added_at FROM read.watchlists \
             WHERE user_id = $1 AND coin > $2 ORDER BY coin LIMIT $3",
        )
        .bind(principal.user_id)
        .bind(page.after.clone().unwrap_or_default())
        .bind(page.fetch())
        .fetch_all(&api(ctx).pool)
        .await
        .map_err(ApiError::internal)?;
        // The USD price as a holding is valued: a stablecoin quote at its market rate.
        let coins: Vec<String> = rows.iter().map(|(coin, _)| coin.clone()).collect();
        let prices = coinfold_projections::queries::usd_prices(&api(ctx).pool, &coins, None)
            .await
            .map_err(ApiError::internal)?;
        let rows = rows
            .into_iter()
            .map(|(coin, added_at)| WatchedCoin {
                price: prices.get(&coin).copied(),
                coin,
                added_at,
            })
            .collect();
        Ok(page.connection(rows, |w: &WatchedCoin| w.coin.clone()))
    }

    /// How many events the caller's commands produced, by event type.
    async fn usage(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<OpaqueCursor<String>, Usage>, ApiError> {
        let principal = require_user(ctx)?;
        let page: Page<String> = Page::new(first, after)?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT event_type, count FROM read.usage \
             WHERE user_id = $1 AND event_type > $2 ORDER BY event_type LIMIT $3",
        )
        .bind(principal.user_id)
        .bind(page.after.clone().unwrap_or_default())
        .bind(page.fetch())
        .fetch_all(&api(ctx).pool)
        .await
        .map_err(ApiError::internal)?;
        let rows = rows
            .into_iter()
            .map(|(event_type, count)| Usage { event_type, count })
            .collect();
        Ok(page.connection(rows, |u: &Usage| u.event_type.clone()))
    }
}

fn alert_refusal(error: AlertError) -> ApiError {
    match error {
        AlertError::NotFound => ApiError::NotFound("alert"),
        AlertError::CooldownTooLong => ApiError::validation("cooldownSeconds", error.to_string()),
        AlertError::AlreadyCreated | AlertError::ConditionNotMet => {
            ApiError::Conflict(error.to_string())
        }
    }
}

/// Fires a new alert whose condition already holds at the latest price, as the
/// evaluator would on the coin's next tick (with the same system actor). A failure
/// here is logged and left to that tick: the alert itself was created.
async fn fire_if_met(api: &super::Api, alert_id: Uuid, coin: &str, condition: &AlertCondition) {
    let observation = match alerting::evaluate_now(&api.pool, coin, condition).await {
        Ok(Some(observation)) => observation,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(alert.id = %alert_id, %error, "evaluating a new alert failed");
            return;
        }
    };
    let key = alerting::creation_trigger_key(alert_id);
    match crate::project::trigger_alert(&api.alerts, alert_id, observation, key).await {
        Ok(true) => tracing::info!(alert.id = %alert_id, coin, "alert triggered at creation"),
        Ok(false) => {}
        Err(error) => {
            tracing::warn!(alert.id = %alert_id, %error, "triggering a new alert failed")
        }
    }
}

#[derive(Default)]
pub struct AlertMutation;

impl AlertMutation {
    async fn run(
        ctx: &Context<'_>,
        id: &ID,
        mutation: &str,
        idempotency_key: Option<String>,
        command: AlertCommand,
    ) -> Result<Receipt, ApiError> {
        let principal = require_user(ctx)?;
        let api = api(ctx);
        let alert_id = owned(api, ALERT, "alert", id, &principal).await?;
        let context = user_context(&principal, mutation, id, idempotency_key);
        let outcome = api
            .alerts
            .execute(&alert_id.to_string(), command, &context)
            .await
            .map_err(|e| command_error(e, alert_refusal))?;
        Ok(outcome.into())
    }

    async fn watch(
        ctx: &Context<'_>,
        mutation: &str,
        raw: &str,
        idempotency_key: Option<String>,
        command: impl FnOnce(CoinSymbol) -> UserCommand,
    ) -> Result<Receipt, ApiError> {
        let principal = require_user(ctx)?;
        let api = api(ctx);
        let coin = field("coin", CoinSymbol::parse(raw))?;
        let coin = if mutation == "addToWatchlist" {
            known_coin(api, "coin", coin).await?
        } else {
            coin
        };
        let context = user_context(&principal, mutation, &coin.as_str(), idempotency_key);
        let outcome = api
            .users
            .commands()
            .execute(&principal.user_id.to_string(), command(coin), &context)
            .await
            .map_err(|e| command_error(e, user_refusal))?;
        Ok(outcome.into())
    }
}

#[Object]
impl AlertMutation {
    /// Creates an alert on a coin the market knows.
    async fn create_alert(
        &self,
        ctx: &Context<'_>,
        input: CreateAlertInput,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        let principal = require_user(ctx)?;
        let api = api(ctx);
        let coin = field("coin", CoinSymbol::parse(&input.coin))?;
        let coin = known_coin(api, "coin", coin).await?;
        let alert_id = entry_id("alertId", &input.alert_id, &principal, &idempotency_key)?;
        if input.alert_id.is_some() {
            not_anothers(api, ALERT, "alert", alert_id, &principal).await?;
        }
        let condition = input.condition.condition()?;
        let command = AlertCommand::Create {
            alert_id,
            owner_id: principal.user_id,
            coin: coin.clone(),
            condition: condition.clone(),
            repeat: Repeat::from(input.repeat),
            cooldown_seconds: input.cooldown_seconds,
            now: OffsetDateTime::now_utc(),
        };
        let context = user_context(&principal, "createAlert", &input, idempotency_key);
        let outcome = api
            .alerts
            .execute(&alert_id.to_string(), command, &context)
            .await
            .map_err(|e| command_error(e, alert_refusal))?;
        if !outcome.replayed {
            fire_if_met(api, alert_id, coin.as_str(), &condition).await;
        }
        Ok(outcome.into())
    }

    /// Stops an alert from firing until it is re-armed.
    async fn disable_alert(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        let now = OffsetDateTime::now_utc();
        Self::run(
            ctx,
            &id,
            "disableAlert",
            idempotency_key,
            AlertCommand::Disable { now },
        )
        .await
    }

    /// Arms a fired or disabled alert again.
    async fn rearm_alert(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        let now = OffsetDateTime::now_utc();
        Self::run(
            ctx,
            &id,
            "rearmAlert",
            idempotency_key,
            AlertCommand::Rearm { now },
        )
        .await
    }

    async fn delete_alert(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        let now = OffsetDateTime::now_utc();
        Self::run(
            ctx,
            &id,
            "deleteAlert",
            idempotency_key,
            AlertCommand::Delete { now },
        )
        .await
    }

    async fn add_to_watchlist(
        &self,
        ctx: &Context<'_>,
        coin: String,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        Self::watch(ctx, "addToWatchlist", &coin, idempotency_key, |coin| {
            UserCommand::AddToWatchlist { coin }
        })
        .await
    }

    async fn remove_from_watchlist(
        &self,
        ctx: &Context<'_>,
        coin: String,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        Self::watch(ctx, "removeFromWatchlist", &coin, idempotency_key, |coin| {
            UserCommand::RemoveFromWatchlist { coin }
        })
        .await
    }
}
