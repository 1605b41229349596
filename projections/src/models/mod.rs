//! The read models: one module per projection, each a fold that writes its own tables
//! in schema `read` (unqualified names; see [`crate::projection`]).
//!
//! | projection | source | tables |
//! |---|---|---|
//! | [`portfolios`] | event store | portfolios, portfolio_transactions, portfolio_disposals, portfolio_lots, portfolio_holdings |
//! | [`users`] | event store | users, watchlists, usage |
//! | [`alerts`] | event store | alerts |
//! | [`market`] | `coinfold.market.ticks` | latest_prices, candles, indicators, market_series, tick_watermarks |
//! | [`coins`] | `coinfold.market.coins` | coins |
//! | [`sentiment`] | `coinfold.news.sentiment` | scored_articles, sentiment_hourly |
//!
//! Every value written comes from the events or messages (never the clock), so a
//! rebuild writes the same rows.

pub mod alerts;
pub mod coins;
pub mod market;
pub mod portfolios;
pub mod sentiment;
pub mod users;

use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::global_log::RecordedEvent;
use crate::projection::ProjectionError;
use coinfold_domain::upcasting::upcast_payload;

/// The stored event, upcast to the current shape and read as the domain's event type.
pub(crate) fn decode<E: DeserializeOwned>(event: &RecordedEvent) -> Result<E, ProjectionError> {
    let payload = upcast_payload(
        &event.aggregate_type,
        &event.event_type,
        &event.event_version,
        event.payload.clone(),
    );
    serde_json::from_value(payload).map_err(|e| bad(event, e.to_string()))
}

pub(crate) fn bad(event: &RecordedEvent, reason: impl Into<String>) -> ProjectionError {
    ProjectionError::BadEvent {
        position: event.global_position,
        event_type: event.event_type.clone(),
        reason: reason.into(),
    }
}

/// The event's aggregate id, which for every aggregate here is a UUID.
pub(crate) fn aggregate_uuid(event: &RecordedEvent) -> Result<uuid::Uuid, ProjectionError> {
    event
        .aggregate_id
        .parse()
        .map_err(|_| bad(event, "aggregate id is not a UUID"))
}

/// `recorded_at` from the event's metadata.
pub(crate) fn recorded_at(event: &RecordedEvent) -> Result<OffsetDateTime, ProjectionError> {
    event
        .metadata
        .get("recorded_at")
        .and_then(Value::as_str)
        .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok())
        .ok_or_else(|| bad(event, "metadata has no recorded_at"))
}

/// The user whose command wrote the event, if a user did (`actor` = `user:<id>`).
pub(crate) fn acting_user(event: &RecordedEvent) -> Option<uuid::Uuid> {
    event
        .metadata
        .get("actor")
        .and_then(Value::as_str)
        .and_then(|actor| actor.strip_prefix("user:"))
        .and_then(|id| id.parse().ok())
}

/// The start of the `seconds`-long interval holding `at` (UTC, from the epoch).
pub(crate) fn floor_to(at: OffsetDateTime, seconds: i64) -> OffsetDateTime {
    let t = at.unix_timestamp();
    OffsetDateTime::from_unix_timestamp(t - t.rem_euclid(seconds))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The serde name of a unit enum variant (`FIFO`, `ONE_SHOT`): one spelling in the
/// events and the read models.
pub(crate) fn enum_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
