//! Portfolios: their transactions, disposals, lots and holdings.
//!
//! The events carry the derived numbers (each sell's disposal, the disposals a backdated
//! entry re-derived), so this fold does no accounting: it stores transactions and the
//! current disposal of each sell or transfer out, then, once per batch and per portfolio
//! touched, derives lots (acquisitions minus what the disposals consumed) and holdings
//! (lots summed per coin, plus realized gains) in SQL.

use std::collections::BTreeMap;

use coinfold_domain::portfolio::accounting::Disposal;
use coinfold_domain::portfolio::{PortfolioEvent, Side, Trade, TransferIn, TransferOut};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{aggregate_uuid, decode, enum_text};
use crate::global_log::RecordedEvent;
use crate::projection::{LogProjection, Output, ProjectionError};

pub const NAME: &str = "portfolios";
pub const TABLES: &[&str] = &[
    "portfolios",
    "portfolio_transactions",
    "portfolio_disposals",
    "portfolio_lots",
    "portfolio_holdings",
];

#[derive(Debug, Default, Clone, Copy)]
pub struct Portfolios;

impl LogProjection for Portfolios {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        events: &[RecordedEvent],
        out: &mut Output,
    ) -> Result<(), ProjectionError> {
        // Each portfolio's version and position, written once per batch (its last
        // event's), not once per event.
        let mut versions: BTreeMap<Uuid, (i64, i64)> = BTreeMap::new();
        let mut writes = Writes::default();
        for event in events.iter().filter(|e| e.aggregate_type == "Portfolio") {
            let id = aggregate_uuid(event)?;
            apply_one(tx, &mut writes, id, event, decode(event)?).await?;
            versions.insert(id, (event.sequence, event.global_position));
        }
        writes.flush(tx).await?;
        if versions.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = versions.keys().copied().collect();
        let (sequences, positions): (Vec<i64>, Vec<i64>) = versions.values().copied().unzip();
        sqlx::query(
            "UPDATE portfolios p SET version = v.version, position = v.position \
             FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS v(id, version, position) \
             WHERE p.portfolio_id = v.id",
        )
        .bind(&ids)
        .bind(&sequences)
        .bind(&positions)
        .execute(&mut *tx)
        .await?;
        derive_lots_and_holdings(tx, &ids).await?;
        let owners: Vec<(Uuid, Uuid, i64)> = sqlx::query_as(
            "SELECT portfolio_id, owner_id, position FROM portfolios WHERE portfolio_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        for (portfolio_id, owner_id, position) in owners {
            out.notify(
                format!("portfolio.{portfolio_id}"),
                json!({"portfolio_id": portfolio_id, "owner_id": owner_id, "position": position}),
            );
        }
        Ok(())
    }
}

/// Applies one event. Trades and disposals go into `writes`; any other statement
/// flushes `writes` first, so the tables change in the events' order.
async fn apply_one(
    tx: &mut PgConnection,
    writes: &mut Writes,
    id: Uuid,
    event: &RecordedEvent,
    payload: PortfolioEvent,
) -> Result<(), ProjectionError> {
    if !matches!(payload, PortfolioEvent::TradeRecorded { .. }) {
        writes.flush(tx).await?;
    }
    match payload {
        PortfolioEvent::Created {
            owner_id,
            name,
            description,
            method,
            currency,
            created_at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO portfolios (portfolio_id, owner_id, name, description, method, \
                 currency, created_at, archived_at, version, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9)",
            )
            .bind(id)
            .bind(owner_id)
            .bind(name.as_str())
            .bind(description.as_str())
            .bind(enum_text(&method))
            .bind(currency.as_str())
            .bind(created_at)
            .bind(event.sequence)
            .bind(event.global_position)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        PortfolioEvent::Renamed { name } => {
            set_column(tx, id, "name", name.as_str()).await?;
        }
        PortfolioEvent::DescriptionChanged { description } => {
            set_column(tx, id, "description", description.as_str()).await?;
        }
        PortfolioEvent::CostBasisMethodChanged { method } => {
            set_column(tx, id, "method", &enum_text(&method)).await?;
        }
        PortfolioEvent::Archived { archived_at } => {
            sqlx::query("UPDATE portfolios SET archived_at = $2 WHERE portfolio_id = $1")
                .bind(id)
                .bind(archived_at)
                .execute(&mut *tx)
                .await?;
        }
        PortfolioEvent::TradeRecorded {
            trade,
            disposal,
            rederived,
            ..
        } => {
            writes.trade(id, event.sequence, trade);
            writes.disposals(id, disposal.into_iter().chain(rederived));
        }
        PortfolioEvent::TradeCorrected {
            trade,
            disposal,
            rederived,
        } => {
            // A sell corrected into a buy has no disposal any more.
            delete_disposal(tx, id, trade.trade_id).await?;
            writes.trade(id, event.sequence, trade);
            writes.disposals(id, disposal.into_iter().chain(rederived));
        }
        PortfolioEvent::TradeVoided {
            trade_id,
            reason,
            rederived,
        } => {
            sqlx::query(
                "UPDATE portfolio_transactions SET voided = true, void_reason = $3 \
                 WHERE portfolio_id = $1 AND entry_id = $2",
            )
            .bind(id)
            .bind(trade_id)
            .bind(reason.as_str())
            .execute(&mut *tx)
            .await?;
            delete_disposal(tx, id, trade_id).await?;
            writes.disposals(id, rederived);
        }
        PortfolioEvent::TransferredIn {
            transfer,
            rederived,
        } => {
            insert_transfer_in(tx, id, event.sequence, &transfer).await?;
            writes.disposals(id, rederived);
        }
        PortfolioEvent::TransferredOut {
            transfer,
            disposal,
            rederived,
            ..
        } => {
            insert_transfer_out(tx, id, event.sequence, &transfer).await?;
            writes.disposals(id, std::iter::once(disposal).chain(rederived));
        }
    }
    Ok(())
}

async fn set_column(
    tx: &mut PgConnection,
    id: Uuid,
    column: &'static str,
    value: &str,
) -> Result<(), ProjectionError> {
    // `column` is one of three literals above, never input.
    sqlx::query(&format!(
        "UPDATE portfolios SET {column} = $2 WHERE portfolio_id = $1"
    ))
    .bind(id)
    .bind(value)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn insert_transfer_in(
    tx: &mut PgConnection,
    id: Uuid,
    seq: i64,
    transfer: &TransferIn,
) -> Result<(), ProjectionError> {
    insert_transfer(
        tx,
        id,
        seq,
        Transfer {
            entry_id: transfer.transfer_id,
            kind: "TRANSFER_IN",
            coin: transfer.coin.as_str(),
            quantity: transfer.quantity.value(),
            cost: Some(transfer.cost_basis.value()),
            executed_at: transfer.executed_at,
            note: transfer.note.as_ref().map(|v| v.as_str()),
        },
    )
    .await
}

async fn insert_transfer_out(
    tx: &mut PgConnection,
    id: Uuid,
    seq: i64,
    transfer: &TransferOut,
) -> Result<(), ProjectionError> {
    insert_transfer(
        tx,
        id,
        seq,
        Transfer {
            entry_id: transfer.transfer_id,
            kind: "TRANSFER_OUT",
            coin: transfer.coin.as_str(),
            quantity: transfer.quantity.value(),
            cost: None,
            executed_at: transfer.executed_at,
            note: transfer.note.as_ref().map(|v| v.as_str()),
        },
    )
    .await
}

struct Transfer<'a> {
    entry_id: Uuid,
    kind: &'static str,
    coin: &'a str,
    quantity: Decimal,
    cost: Option<Decimal>,
    executed_at: time::OffsetDateTime,
    note: Option<&'a str>,
}

async fn insert_transfer(
    tx: &mut PgConnection,
    id: Uuid,
    seq: i64,
    transfer: Transfer<'_>,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO portfolio_transactions (portfolio_id, entry_id, seq, kind, coin, quantity, \
         price, quote, fee, cost, executed_at, note, external_id, voided, void_reason) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, 0, $7, $8, $9, NULL, false, NULL)",
    )
    .bind(id)
    .bind(transfer.entry_id)
    .bind(seq)
    .bind(transfer.kind)
    .bind(transfer.coin)
    .bind(transfer.quantity)
    .bind(transfer.cost)
    .bind(transfer.executed_at)
    .bind(transfer.note)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn delete_disposal(
    tx: &mut PgConnection,
    id: Uuid,
    entry: Uuid,
) -> Result<(), ProjectionError> {
    sqlx::query("DELETE FROM portfolio_disposals WHERE portfolio_id = $1 AND entry_id = $2")
        .bind(id)
        .bind(entry)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Trades and disposals to upsert, written with one statement per table: recording
/// trades is most of any portfolio's log, and a statement per row was most of a
/// rebuild's time. A later row for the same key replaces an earlier one, as a second
/// upsert would; a correction keeps its trade's first `seq`, because the upsert leaves
/// `seq` alone and `apply_one` flushes before a correction.
#[derive(Default)]
struct Writes {
    trades: BTreeMap<(Uuid, Uuid), (i64, Trade)>,
    disposals: BTreeMap<(Uuid, Uuid), Disposal>,
}

impl Writes {
    fn trade(&mut self, portfolio: Uuid, seq: i64, trade: Trade) {
        self.trades
            .insert((portfolio, trade.trade_id), (seq, trade));
    }

    fn disposals(&mut self, portfolio: Uuid, disposals: impl IntoIterator<Item = Disposal>) {
        for disposal in disposals {
            self.disposals
                .insert((portfolio, disposal.entry_id), disposal);
        }
    }

    async fn flush(&mut self, tx: &mut PgConnection) -> Result<(), ProjectionError> {
        if !self.trades.is_empty() {
            write_trades(tx, &std::mem::take(&mut self.trades)).await?;
        }
        if !self.disposals.is_empty() {
            write_disposals(tx, &std::mem::take(&mut self.disposals)).await?;
        }
        Ok(())
    }
}

async fn write_trades(
    tx: &mut PgConnection,
    trades: &BTreeMap<(Uuid, Uuid), (i64, Trade)>,
) -> Result<(), ProjectionError> {
    let n = trades.len();
    let (mut portfolios, mut entries, mut seqs) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut kinds, mut coins, mut quantities) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut prices, mut quotes, mut fees) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut costs, mut times, mut notes, mut externals) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for ((portfolio, entry), (seq, trade)) in trades {
        let price = trade.price.value();
        let fee = trade.fee.value();
        let (kind, cost) = match trade.side {
            Side::Buy => ("BUY", Some(trade.quantity.value() * price + fee)),
            Side::Sell => ("SELL", None),
        };
        portfolios.push(*portfolio);
        entries.push(*entry);
        seqs.push(*seq);
        kinds.push(kind);
        coins.push(trade.coin.as_str());
        quantities.push(trade.quantity.value());
        prices.push(price);
        quotes.push(trade.quote.as_str());
        fees.push(fee);
        costs.push(cost);
        times.push(trade.executed_at);
        notes.push(trade.note.as_ref().map(|v| v.as_str()));
        externals.push(trade.external_id.as_ref().map(|v| v.as_str()));
    }
    // A correction keeps the entry's first `seq` (the order it was recorded in).
    sqlx::query(
        "INSERT INTO portfolio_transactions (portfolio_id, entry_id, seq, kind, coin, quantity, \
         price, quote, fee, cost, executed_at, note, external_id, voided, void_reason) \
         SELECT *, false, NULL FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], \
           $5::text[], $6::numeric[], $7::numeric[], $8::text[], $9::numeric[], $10::numeric[], \
           $11::timestamptz[], $12::text[], $13::text[]) \
         ON CONFLICT (portfolio_id, entry_id) DO UPDATE SET kind = excluded.kind, \
         coin = excluded.coin, quantity = excluded.quantity, price = excluded.price, \
         quote = excluded.quote, fee = excluded.fee, cost = excluded.cost, \
         executed_at = excluded.executed_at, note = excluded.note, external_id = excluded.external_id",
    )
    .bind(&portfolios)
    .bind(&entries)
    .bind(&seqs)
    .bind(&kinds)
    .bind(&coins)
    .bind(&quantities)
    .bind(&prices)
    .bind(&quotes)
    .bind(&fees)
    .bind(&costs)
    .bind(&times)
    .bind(&notes)
    .bind(&externals)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn write_disposals(
    tx: &mut PgConnection,
    disposals: &BTreeMap<(Uuid, Uuid), Disposal>,
) -> Result<(), ProjectionError> {
    let n = disposals.len();
    let (mut portfolios, mut entries, mut coins) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut quantities, mut bases, mut proceeds) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut fees, mut gains, mut lots) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for ((portfolio, entry), disposal) in disposals {
        portfolios.push(*portfolio);
        entries.push(*entry);
        coins.push(disposal.coin.as_str());
        quantities.push(disposal.quantity);
        bases.push(disposal.cost_basis);
        proceeds.push(disposal.proceeds);
        fees.push(disposal.fee);
        gains.push(disposal.realized_gain);
        lots.push(
            serde_json::to_value(&disposal.lots)
                .map_err(|e| ProjectionError::Invalid(format!("disposal lots: {e}")))?,
        );
    }
    sqlx::query(
        "INSERT INTO portfolio_disposals (portfolio_id, entry_id, coin, quantity, cost_basis, \
         proceeds, fee, realized_gain, lots) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::numeric[], $5::numeric[], \
           $6::numeric[], $7::numeric[], $8::numeric[], $9::jsonb[]) \
         ON CONFLICT (portfolio_id, entry_id) DO UPDATE SET coin = excluded.coin, \
         quantity = excluded.quantity, cost_basis = excluded.cost_basis, \
         proceeds = excluded.proceeds, fee = excluded.fee, \
         realized_gain = excluded.realized_gain, lots = excluded.lots",
    )
    .bind(&portfolios)
    .bind(&entries)
    .bind(&coins)
    .bind(&quantities)
    .bind(&bases)
    .bind(&proceeds)
    .bind(&fees)
    .bind(&gains)
    .bind(&lots)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Lots = acquisitions minus what current disposals consumed (a lot fully consumed is
/// gone); holdings = lots per coin, with every coin's realized gains.
async fn derive_lots_and_holdings(
    tx: &mut PgConnection,
    ids: &[Uuid],
) -> Result<(), ProjectionError> {
    sqlx::query("DELETE FROM portfolio_lots WHERE portfolio_id = ANY($1)")
        .bind(ids)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO portfolio_lots (portfolio_id, lot_id, coin, acquired_at, quantity, cost) \
         SELECT t.portfolio_id, t.entry_id, t.coin, t.executed_at, \
                t.quantity - coalesce(c.quantity, 0), t.cost - coalesce(c.cost, 0) \
         FROM portfolio_transactions t \
         LEFT JOIN ( \
             SELECT d.portfolio_id, (l ->> 'lot_id')::uuid AS lot_id, \
                    sum((l ->> 'quantity')::numeric) AS quantity, sum((l ->> 'cost')::numeric) AS cost \
             FROM portfolio_disposals d CROSS JOIN LATERAL jsonb_array_elements(d.lots) AS l \
             WHERE d.portfolio_id = ANY($1) \
             GROUP BY 1, 2 \
         ) c ON c.portfolio_id = t.portfolio_id AND c.lot_id = t.entry_id \
         WHERE t.portfolio_id = ANY($1) AND NOT t.voided AND t.kind IN ('BUY', 'TRANSFER_IN') \
           AND t.quantity - coalesce(c.quantity, 0) > 0",
    )
    .bind(ids)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM portfolio_holdings WHERE portfolio_id = ANY($1)")
        .bind(ids)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO portfolio_holdings (portfolio_id, coin, quantity, cost_basis, realized_gain) \
         SELECT portfolio_id, coin, sum(quantity), sum(cost), sum(realized) FROM ( \
             SELECT portfolio_id, coin, quantity, cost, 0::numeric AS realized \
             FROM portfolio_lots WHERE portfolio_id = ANY($1) \
             UNION ALL \
             SELECT portfolio_id, coin, 0, 0, coalesce(realized_gain, 0) \
             FROM portfolio_disposals WHERE portfolio_id = ANY($1) \
         ) AS x GROUP BY portfolio_id, coin",
    )
    .bind(ids)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
