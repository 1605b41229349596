//! `coinfold history`: a portfolio's events with their metadata, one block per event,
//! and optionally its state at a past point. Plain text for a terminal; the same data
//! reaches GraphQL clients as `portfolioHistory` and `portfolio(id, asOf:)`.

use std::fmt::Write;

use coinfold_commands::history::{AsOf, HistoryEvent, Loaded, history, load_as_of};
use coinfold_commands::upcasting::{upcast_payload, upcasters_for};
use coinfold_domain::portfolio::{Disposal, Portfolio, PortfolioEvent, Side, Trade};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// The text `coinfold history` prints.
pub async fn render(
    pool: &PgPool,
    portfolio: Uuid,
    as_of: Option<AsOf>,
    after: i64,
    limit: i64,
) -> anyhow::Result<String> {
    let id = portfolio.to_string();
    let events = history(pool, "Portfolio", &id, after, limit).await?;
    let mut out = String::new();
    if events.is_empty() && after == 0 {
        writeln!(out, "portfolio {id}: no events")?;
        return Ok(out);
    }
    writeln!(
        out,
        "portfolio {id}: events {} to {}",
        events.first().map_or(0, |e| e.sequence),
        events.last().map_or(0, |e| e.sequence)
    )?;
    for event in &events {
        let meta = |key: &str| {
            event
                .metadata
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_owned()
        };
        writeln!(
            out,
            "#{:<4} {}  {:<26} v{}  recorded {}  effective {}  by {}",
            event.sequence,
            meta("event_id"),
            event.event_type,
            event.event_version,
            meta("recorded_at"),
            meta("effective_at"),
            meta("actor"),
        )?;
        writeln!(out, "      {}", describe(event))?;
    }
    if let Some(as_of) = as_of {
        out.push_str(&render_state(pool, &id, as_of).await?);
    }
    Ok(out)
}

async fn render_state(pool: &PgPool, id: &str, as_of: AsOf) -> anyhow::Result<String> {
    let mut out = String::new();
    let label = match as_of {
        AsOf::Version(v) => format!("version {v}"),
        AsOf::RecordedAt(t) => format!("recorded time {}", rfc3339(t)),
        AsOf::EffectiveAt(t) => format!("effective time {}", rfc3339(t)),
    };
    let loaded: Option<Loaded<Portfolio>> =
        load_as_of(pool, id, as_of, &upcasters_for("Portfolio")).await?;
    let Some(loaded) = loaded else {
        writeln!(out, "\nas of {label}: the portfolio did not exist")?;
        return Ok(out);
    };
    let snapshot = loaded.from_snapshot.map_or("no snapshot".to_owned(), |s| {
        format!("from snapshot at {s}")
    });
    writeln!(
        out,
        "\nas of {label}: version {}, {snapshot}",
        loaded.version
    )?;
    let Some(state) = loaded.aggregate.state() else {
        return Ok(out);
    };
    writeln!(
        out,
        "  name {:?}, cost basis {:?}, currency {}{}",
        state.name.as_str(),
        state.method,
        state.currency,
        if state.archived { ", archived" } else { "" }
    )?;
    let holdings = loaded.aggregate.holdings()?;
    if holdings.is_empty() {
        writeln!(out, "  holdings: none")?;
    }
    for (coin, lots) in &holdings {
        let quantity: Decimal = lots.iter().map(|l| l.quantity).sum();
        let cost: Decimal = lots.iter().map(|l| l.cost).sum();
        writeln!(
            out,
            "  {coin:<6} {quantity} held, cost {cost} {} in {} lot(s)",
            state.currency,
            lots.len()
        )?;
    }
    let realized: Decimal = state
        .disposals
        .values()
        .filter_map(|d| d.realized_gain)
        .sum();
    writeln!(out, "  realized gain {realized} {}", state.currency)?;
    Ok(out)
}

fn describe(event: &HistoryEvent) -> String {
    let payload = upcast_payload(
        "Portfolio",
        &event.event_type,
        &event.event_version,
        event.payload.clone(),
    );
    match serde_json::from_value::<PortfolioEvent>(payload) {
        Ok(parsed) => summary(&parsed),
        Err(error) => format!("(does not read as a current portfolio event: {error})"),
    }
}

fn trade_text(t: &Trade) -> String {
    let side = match t.side {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    };
    format!(
        "{side} {} {} @ {} {}, fee {}, executed {}",
        t.quantity,
        t.coin,
        t.price,
        t.quote,
        t.fee,
        rfc3339(t.executed_at)
    )
}

fn disposal_text(d: &Disposal) -> String {
    let lots: Vec<String> = d
        .lots
        .iter()
        .map(|l| format!("{}×{}", short(l.lot_id), l.quantity))
        .collect();
    let gain = d
        .realized_gain
        .map_or("realizes nothing (transfer)".to_owned(), |g| {
            format!("realized {g}")
        });
    format!(
        "{:?}: cost {} from lots [{}], proceeds {}, {gain}",
        d.method,
        d.cost_basis,
        lots.join(", "),
        d.proceeds
    )
}

fn rederived_text(rederived: &[Disposal]) -> String {
    if rederived.is_empty() {
        String::new()
    } else {
        let each: Vec<String> = rederived
            .iter()
            .map(|d| {
                format!(
                    "{} now {}",
                    short(d.entry_id),
                    d.realized_gain.map_or("-".into(), |g| g.to_string())
                )
            })
            .collect();
        format!("; re-derived {}", each.join(", "))
    }
}

/// The last 8 hex digits: a UUIDv7's first ones are its timestamp, alike for ids made
/// together.
fn short(id: Uuid) -> String {
    let hex = id.simple().to_string();
    hex[hex.len() - 8..].to_owned()
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

fn summary(event: &PortfolioEvent) -> String {
    match event {
        PortfolioEvent::Created {
            name,
            method,
            currency,
            owner_id,
            ..
        } => {
            format!(
                "created {:?} ({method:?}, {currency}) for {owner_id}",
                name.as_str()
            )
        }
        PortfolioEvent::Renamed { name } => format!("renamed to {:?}", name.as_str()),
        PortfolioEvent::DescriptionChanged { .. } => "description changed".to_owned(),
        PortfolioEvent::CostBasisMethodChanged { method } => format!("cost basis now {method:?}"),
        PortfolioEvent::TradeRecorded {
            trade,
            disposal,
            rederived,
            ..
        } => format!(
            "trade {}: {}{}{}",
            short(trade.trade_id),
            trade_text(trade),
            disposal
                .as_ref()
                .map_or(String::new(), |d| format!("; {}", disposal_text(d))),
            rederived_text(rederived)
        ),
        PortfolioEvent::TradeCorrected {
            trade,
            disposal,
            rederived,
        } => format!(
            "trade {} corrected to {}{}{}",
            short(trade.trade_id),
            trade_text(trade),
            disposal
                .as_ref()
                .map_or(String::new(), |d| format!("; {}", disposal_text(d))),
            rederived_text(rederived)
        ),
        PortfolioEvent::TradeVoided {
            trade_id,
            reason,
            rederived,
        } => format!(
            "trade {} voided ({:?}){}",
            short(*trade_id),
            reason.as_str(),
            rederived_text(rederived)
        ),
        PortfolioEvent::TransferredIn {
            transfer,
            rederived,
        } => format!(
            "transfer in {}: {} {} at cost {}{}",
            short(transfer.transfer_id),
            transfer.quantity,
            transfer.coin,
            transfer.cost_basis,
            rederived_text(rederived)
        ),
        PortfolioEvent::TransferredOut {
            transfer,
            disposal,
            rederived,
            ..
        } => format!(
            "transfer out {}: {} {}; {}{}",
            short(transfer.transfer_id),
            transfer.quantity,
            transfer.coin,
            disposal_text(disposal),
            rederived_text(rederived)
        ),
        PortfolioEvent::Archived { archived_at } => {
            format!("archived at {}", rfc3339(*archived_at))
        }
    }
}
