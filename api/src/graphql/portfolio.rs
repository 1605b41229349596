//! Portfolios: `portfolios`, `portfolio(id, asOf)`, `portfolioHistory`, and the
//! mutations of the Portfolio aggregate.
//!
//! Reads come from the read model (`read.portfolios` and its tables), except a
//! portfolio `asOf` a past moment, which is folded from the log (as an auditor needs
//! it: what was recorded by then, or what we know now about then) and valued at the
//! prices of then. Every mutation checks ownership on the write side (the portfolio's
//! creation event), so a portfolio is usable the moment `createPortfolio` returns; its
//! read model follows within the projection's lag.

use async_graphql::connection::{Connection, OpaqueCursor};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use coinfold_commands::history::{AsOf, Loaded, history, load_as_of};
use coinfold_commands::import::{self, ImportFormat};
use coinfold_commands::upcasting::{upcast_payload, upcasters_for};
use coinfold_domain::portfolio::{
    CostBasisMethod, Portfolio, PortfolioCommand, PortfolioError, Record, Side, Trade, TransferIn,
    TransferOut,
};
use coinfold_domain::values::{
    Amount, CoinSymbol, Description, ExternalId, Note, PortfolioName, Price, Quantity,
    QuoteCurrency, ValueError,
};
use coinfold_projections::queries::{self, HoldingValue, QueryError, Summary, Totals};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::{ApiError, command_error};
use super::page::Page;
use super::{Api, Receipt, api, entry_id, known_coin, owned, require_user, user_context};
use crate::auth::Principal;

const PORTFOLIO: &str = "Portfolio";

#[derive(Enum, Copy, Clone, Eq, PartialEq, Serialize)]
#[graphql(remote = "coinfold_domain::portfolio::CostBasisMethod")]
pub enum CostBasis {
    Fifo,
    Lifo,
    Hifo,
    Average,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Serialize)]
#[graphql(remote = "coinfold_domain::portfolio::Side")]
pub enum TradeSide {
    Buy,
    Sell,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Serialize)]
pub enum TransactionKind {
    Buy,
    Sell,
    TransferIn,
    TransferOut,
}

/// Which past a portfolio `asOf` a time is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum AsOfBasis {
    /// What had been recorded by then (later corrections left out): an audit.
    #[default]
    Recorded,
    /// What we know now about that moment (trades executed by then, with every
    /// correction and void recorded since).
    Effective,
}

/// A portfolio: live from the read model, or as of a past moment.
#[derive(SimpleObject)]
#[graphql(complex, name = "Portfolio")]
pub struct PortfolioView {
    pub id: ID,
    pub name: String,
    pub description: String,
    pub cost_basis_method: CostBasis,
    /// What trades are quoted in and costs are kept in.
    pub currency: String,
    pub created_at: OffsetDateTime,
    pub archived: bool,
    /// The number of events folded in.
    pub version: i64,
    /// Set when this is the portfolio as of a past moment.
    pub as_of: Option<OffsetDateTime>,
    #[graphql(skip)]
    portfolio_id: Uuid,
    #[graphql(skip)]
    past: Option<Box<Past>>,
}

struct Past {
    portfolio: Portfolio,
    base_currency: String,
}

#[derive(FromRow)]
struct PortfolioRow {
    portfolio_id: Uuid,
    name: String,
    description: String,
    method: String,
    currency: String,
    created_at: OffsetDateTime,
    archived_at: Option<OffsetDateTime>,
    version: i64,
}

fn method_of(stored: &str) -> Result<CostBasis, ApiError> {
    serde_json::from_value::<CostBasisMethod>(Value::String(stored.to_owned()))
        .map(Into::into)
        .map_err(|_| ApiError::internal(format!("stored cost basis method {stored:?}")))
}

impl PortfolioView {
    fn live(row: PortfolioRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: ID(row.portfolio_id.to_string()),
            portfolio_id: row.portfolio_id,
            name: row.name,
            description: row.description,
            cost_basis_method: method_of(&row.method)?,
            currency: row.currency,
            created_at: row.created_at,
            archived: row.archived_at.is_some(),
            version: row.version,
            as_of: None,
            past: None,
        })
    }
}

/// A trade or transfer.
#[derive(SimpleObject)]
pub struct Transaction {
    pub id: ID,
    pub kind: TransactionKind,
    pub coin: String,
    pub quantity: Decimal,
    /// Trades only.
    pub price: Option<Decimal>,
    pub quote: Option<String>,
    pub fee: Decimal,
    /// What an acquisition cost (a buy: quantity × price + fee; a transfer in: its basis).
    pub cost: Option<Decimal>,
    pub executed_at: OffsetDateTime,
    pub note: Option<String>,
    pub external_id: Option<String>,
    pub voided: bool,
    #[graphql(skip)]
    seq: i64,
}

#[derive(FromRow)]
struct TransactionRow {
    entry_id: Uuid,
    seq: i64,
    kind: String,
    coin: String,
    quantity: Decimal,
    price: Option<Decimal>,
    quote: Option<String>,
    fee: Decimal,
    cost: Option<Decimal>,
    executed_at: OffsetDateTime,
    note: Option<String>,
    external_id: Option<String>,
    voided: bool,
}

fn kind_of(stored: &str) -> Result<TransactionKind, ApiError> {
    Ok(match stored {
        "BUY" => TransactionKind::Buy,
        "SELL" => TransactionKind::Sell,
        "TRANSFER_IN" => TransactionKind::TransferIn,
        "TRANSFER_OUT" => TransactionKind::TransferOut,
        other => return Err(ApiError::internal(format!("stored kind {other:?}"))),
    })
}

impl TryFrom<TransactionRow> for Transaction {
    type Error = ApiError;

    fn try_from(row: TransactionRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: ID(row.entry_id.to_string()),
            kind: kind_of(&row.kind)?,
            coin: row.coin,
            quantity: row.quantity,
            price: row.price,
            quote: row.quote,
            fee: row.fee,
            cost: row.cost,
            executed_at: row.executed_at,
            note: row.note,
            external_id: row.external_id,
            voided: row.voided,
            seq: row.seq,
        })
    }
}

fn entry_transaction(entry: &coinfold_domain::portfolio::Entry) -> Transaction {
    let note = |n: &Option<Note>| n.as_ref().map(|n| n.as_str().to_owned());
    let base = |kind, coin: &CoinSymbol, quantity: Quantity, at, n: &Option<Note>| Transaction {
        id: ID(entry.id().to_string()),
        kind,
        coin: coin.as_str().to_owned(),
        quantity: quantity.value(),
        price: None,
        quote: None,
        fee: Decimal::ZERO,
        cost: None,
        executed_at: at,
        note: note(n),
        external_id: None,
        voided: entry.voided,
        seq: i64::try_from(entry.seq).unwrap_or(i64::MAX),
    };
    match &entry.record {
        Record::Trade(t) => Transaction {
            price: Some(t.price.value()),
            quote: Some(t.quote.as_str().to_owned()),
            fee: t.fee.value(),
            cost: (t.side == Side::Buy)
                .then(|| t.quantity.value() * t.price.value() + t.fee.value()),
            external_id: t.external_id.as_ref().map(|e| e.as_str().to_owned()),
            ..base(
                match t.side {
                    Side::Buy => TransactionKind::Buy,
                    Side::Sell => TransactionKind::Sell,
                },
                &t.coin,
                t.quantity,
                t.executed_at,
                &t.note,
            )
        },
        Record::TransferIn(t) => Transaction {
            cost: Some(t.cost_basis.value()),
            ..base(
                TransactionKind::TransferIn,
                &t.coin,
                t.quantity,
                t.executed_at,
                &t.note,
            )
        },
        Record::TransferOut(t) => base(
            TransactionKind::TransferOut,
            &t.coin,
            t.quantity,
            t.executed_at,
            &t.note,
        ),
    }
}

/// One coin, valued.
#[derive(SimpleObject)]
pub struct Holding {
    pub coin: String,
    pub quantity: Decimal,
    pub cost_basis: Decimal,
    pub realized_gain: Decimal,
    /// The USD price it is valued at; null while the coin has none.
    pub price: Option<Decimal>,
    pub value: Option<Decimal>,
    pub unrealized_gain: Option<Decimal>,
    /// Unrealized gain over cost basis, in %.
    pub unrealized_pct: Option<Decimal>,
}

impl From<HoldingValue> for Holding {
    fn from(h: HoldingValue) -> Self {
        Self {
            coin: h.coin,
            quantity: h.quantity,
            cost_basis: h.cost_basis,
            realized_gain: h.realized_gain,
            price: h.price,
            value: h.value,
            unrealized_gain: h.unrealized_gain,
            unrealized_pct: h.unrealized_pct,
        }
    }
}

/// Totals in one currency.
#[derive(SimpleObject)]
#[graphql(name = "PortfolioTotals")]
pub struct TotalsView {
    pub currency: String,
    pub value: Decimal,
    pub cost_basis: Decimal,
    pub realized_gain: Decimal,
    pub unrealized_gain: Decimal,
    /// Realized plus unrealized gain over everything ever invested, in %.
    pub roi_pct: Option<Decimal>,
}

impl From<Totals> for TotalsView {
    fn from(t: Totals) -> Self {
        Self {
            currency: t.currency,
            value: t.value,
            cost_basis: t.cost_basis,
            realized_gain: t.realized_gain,
            unrealized_gain: t.unrealized_gain,
            roi_pct: t.roi_pct,
        }
    }
}

/// The portfolio valued: in USD, and in the owner's base currency when a rate is known.
#[derive(SimpleObject)]
pub struct PortfolioSummary {
    pub holdings: Vec<Holding>,
    pub usd: TotalsView,
    pub base: Option<TotalsView>,
    /// The held coins with the highest and the lowest unrealized %.
    pub best: Option<String>,
    pub worst: Option<String>,
    /// Coins held that have no price (valued at nothing, so the totals say so).
    pub unpriced: Vec<String>,
}

impl From<Summary> for PortfolioSummary {
    fn from(s: Summary) -> Self {
        Self {
            holdings: s.holdings.into_iter().map(Into::into).collect(),
            usd: s.usd.into(),
            base: s.base.map(Into::into),
            best: s.best,
            worst: s.worst,
            unpriced: s.unpriced,
        }
    }
}

fn query_error(error: QueryError) -> ApiError {
    match error {
        QueryError::NotFound => ApiError::NotFound("portfolio"),
        QueryError::Invalid(message) => ApiError::validation("input", message),
        QueryError::Database(e) => ApiError::internal(e),
    }
}

/// The portfolio's USD value at one moment.
#[derive(SimpleObject)]
pub struct ValuePoint {
    pub at: OffsetDateTime,
    pub value: Decimal,
}

#[ComplexObject]
impl PortfolioView {
    /// Holdings valued at the latest prices (as of a past moment: at the prices of then).
    async fn summary(&self, ctx: &Context<'_>) -> Result<PortfolioSummary, ApiError> {
        let pool = &api(ctx).pool;
        let summary = match &self.past {
            None => queries::portfolio_summary(pool, self.portfolio_id).await,
            Some(past) => {
                let (positions, invested) = past
                    .portfolio
                    .positions()
                    .map_err(|e| ApiError::internal(format!("a stored ledger: {e}")))?;
                queries::value_holdings(
                    pool,
                    self.portfolio_id,
                    &past.base_currency,
                    positions,
                    invested,
                    self.as_of,
                )
                .await
            }
        };
        summary.map(Into::into).map_err(query_error)
    }

    /// Trades and transfers, voided ones included, in the order they were executed.
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<OpaqueCursor<(OffsetDateTime, i64)>, Transaction>, ApiError> {
        let page: Page<(OffsetDateTime, i64)> = Page::new(first, after)?;
        let key = |t: &Transaction| (t.executed_at, t.seq);
        if let Some(past) = &self.past {
            let mut rows: Vec<Transaction> = past
                .portfolio
                .state()
                .map(|s| s.entries.iter().map(entry_transaction).collect())
                .unwrap_or_default();
            rows.sort_by_key(key);
            return Ok(page.slice(rows, key));
        }
        let (after_time, after_seq) = page.after.unwrap_or((
            OffsetDateTime::UNIX_EPOCH - time::Duration::days(365 * 100),
            -1,
        ));
        let rows: Vec<TransactionRow> = sqlx::query_as(
            "SELECT entry_id, seq, kind, coin, quantity, price, quote, fee, cost, executed_at, \
                    note, external_id, voided \
             FROM read.portfolio_transactions \
             WHERE portfolio_id = $1 AND (executed_at, seq) > ($2, $3) \
             ORDER BY executed_at, seq LIMIT $4",
        )
        .bind(self.portfolio_id)
        .bind(after_time)
        .bind(after_seq)
        .bind(page.fetch())
        .fetch_all(&api(ctx).pool)
        .await
        .map_err(ApiError::internal)?;
        let rows = rows
            .into_iter()
            .map(Transaction::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page.connection(rows, key))
    }

    /// The USD value at each step of `interval` ("1m", "5m", "1h", "1d") from `from`
    /// to `to` (at most 1,000 steps), at the candle closes of each moment.
    async fn value_history(
        &self,
        ctx: &Context<'_>,
        interval: String,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<ValuePoint>, ApiError> {
        let points = queries::portfolio_value_history(
            &api(ctx).pool,
            self.portfolio_id,
            &interval,
            from,
            to,
        )
        .await
        .map_err(|e| match e {
            QueryError::Invalid(m) => ApiError::validation("interval", m),
            other => query_error(other),
        })?;
        Ok(points
            .into_iter()
            .map(|(at, value)| ValuePoint { at, value })
            .collect())
    }
}

fn parse_id(id: &ID) -> Result<Uuid, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound("portfolio"))
}

/// One stored event of a portfolio, with its metadata (who, why, when).
#[derive(SimpleObject)]
pub struct HistoryEntry {
    pub sequence: i64,
    pub global_position: i64,
    pub event_type: String,
    /// The version as stored (`payload` is brought to the current one).
    pub event_version: String,
    pub event_id: Option<String>,
    /// `user:<id>` or `system:<role>`.
    pub actor: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub recorded_at: Option<String>,
    /// When what the event records happened (a trade's execution time).
    pub effective_at: Option<String>,
    /// The event, brought to its current shape.
    pub payload: Json<Value>,
}

#[derive(Default)]
pub struct PortfolioQuery;

#[Object]
impl PortfolioQuery {
    /// The caller's portfolios, oldest first.
    async fn portfolios(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default = false)] include_archived: bool,
    ) -> Result<Connection<OpaqueCursor<(OffsetDateTime, Uuid)>, PortfolioView>, ApiError> {
        let principal = require_user(ctx)?;
        let page: Page<(OffsetDateTime, Uuid)> = Page::new(first, after)?;
        let (after_time, after_id) = page
            .after
            .unwrap_or((OffsetDateTime::UNIX_EPOCH, Uuid::nil()));
        let rows: Vec<PortfolioRow> = sqlx::query_as(
            "SELECT portfolio_id, name, description, method, currency, created_at, archived_at, \
                    version \
             FROM read.portfolios \
             WHERE owner_id = $1 AND (created_at, portfolio_id) > ($2, $3) \
               AND ($4 OR archived_at IS NULL) \
             ORDER BY created_at, portfolio_id LIMIT $5",
        )
        .bind(principal.user_id)
        .bind(after_time)
        .bind(after_id)
        .bind(include_archived)
        .bind(page.fetch())
        .fetch_all(&api(ctx).pool)
        .await
        .map_err(ApiError::internal)?;
        let rows = rows
            .into_iter()
            .map(PortfolioView::live)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page.connection(rows, |p| (p.created_at, p.portfolio_id)))
    }

    /// One of the caller's portfolios: now, or `asOf` a past moment.
    async fn portfolio(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<OffsetDateTime>,
        #[graphql(desc = "RECORDED when left out")] basis: Option<AsOfBasis>,
    ) -> Result<PortfolioView, ApiError> {
        let principal = require_user(ctx)?;
        let api = api(ctx);
        let Some(at) = as_of else {
            let row: Option<PortfolioRow> = sqlx::query_as(
                "SELECT portfolio_id, name, description, method, currency, created_at, \
                        archived_at, version \
                 FROM read.portfolios WHERE portfolio_id = $1 AND owner_id = $2",
            )
            .bind(parse_id(&id)?)
            .bind(principal.user_id)
            .fetch_optional(&api.pool)
            .await
            .map_err(ApiError::internal)?;
            return PortfolioView::live(row.ok_or(ApiError::NotFound("portfolio"))?);
        };
        let portfolio_id = owned(api, PORTFOLIO, "portfolio", &id, &principal).await?;
        let as_of = match basis.unwrap_or_default() {
            AsOfBasis::Recorded => AsOf::RecordedAt(at),
            AsOfBasis::Effective => AsOf::EffectiveAt(at),
        };
        let loaded: Option<Loaded<Portfolio>> = load_as_of(
            &api.pool,
            &portfolio_id.to_string(),
            as_of,
            &upcasters_for(PORTFOLIO),
        )
        .await
        .map_err(ApiError::internal)?;
        let loaded = loaded.ok_or(ApiError::NotFound("portfolio"))?;
        let base_currency: Option<String> =
            sqlx::query_scalar("SELECT base_currency FROM read.users WHERE user_id = $1")
                .bind(principal.user_id)
                .fetch_optional(&api.pool)
                .await
                .map_err(ApiError::internal)?;
        let state = loaded
            .aggregate
            .state()
            .ok_or(ApiError::NotFound("portfolio"))?;
        let mut view = PortfolioView {
            id: ID(state.portfolio_id.to_string()),
            portfolio_id: state.portfolio_id,
            name: state.name.as_str().to_owned(),
            description: state.description.as_str().to_owned(),
            cost_basis_method: state.method.into(),
            currency: state.currency.as_str().to_owned(),
            created_at: state.created_at,
            archived: state.archived,
            version: i64::try_from(loaded.version).unwrap_or(i64::MAX),
            as_of: Some(at),
            past: None,
        };
        view.past = Some(Box::new(Past {
            portfolio: loaded.aggregate,
            base_currency: base_currency.unwrap_or_else(|| "USD".to_owned()),
        }));
        Ok(view)
    }

    /// A portfolio's events, oldest first, with who sent each and why (its actor and
    /// correlation id): the audit trail.
    async fn portfolio_history(
        &self,
        ctx: &Context<'_>,
        id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<OpaqueCursor<i64>, HistoryEntry>, ApiError> {
        let principal = require_user(ctx)?;
        let api = api(ctx);
        let portfolio_id = owned(api, PORTFOLIO, "portfolio", &id, &principal)
            .await?
            .to_string();
        let page: Page<i64> = Page::new(first, after)?;
        let events = history(
            &api.pool,
            PORTFOLIO,
            &portfolio_id,
            page.after.unwrap_or(0),
            page.fetch(),
        )
        .await
        .map_err(ApiError::internal)?;
        let rows = events
            .into_iter()
            .map(|event| {
                let meta = |key: &str| {
                    event
                        .metadata
                        .get(key)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                HistoryEntry {
                    sequence: event.sequence,
                    global_position: event.global_position,
                    event_id: meta("event_id"),
                    actor: meta("actor"),
                    correlation_id: meta("correlation_id"),
                    causation_id: meta("causation_id"),
                    recorded_at: meta("recorded_at"),
                    effective_at: meta("effective_at"),
                    payload: Json(upcast_payload(
                        PORTFOLIO,
                        &event.event_type,
                        &event.event_version,
                        event.payload,
                    )),
                    event_type: event.event_type,
                    event_version: event.event_version,
                }
            })
            .collect();
        Ok(page.connection(rows, |e| e.sequence))
    }
}

#[derive(InputObject, Serialize)]
pub struct CreatePortfolioInput {
    /// 1 to 100 characters.
    pub name: String,
    #[graphql(default)]
    pub description: String,
    #[graphql(default_with = "CostBasis::Fifo")]
    pub cost_basis_method: CostBasis,
    /// What trades are quoted in and costs are kept in.
    #[graphql(default_with = "\"USD\".to_owned()")]
    pub currency: String,
}

#[derive(InputObject, Serialize, Clone)]
pub struct TradeInput {
    /// Your own id for the trade; without one, an id is made (from the idempotency key
    /// when there is one, so a retry names the same trade).
    pub trade_id: Option<ID>,
    pub side: TradeSide,
    pub coin: String,
    pub quantity: Decimal,
    /// The unit price in `quote`.
    pub price: Decimal,
    /// The portfolio's currency when left out.
    pub quote: Option<String>,
    /// In the quote currency.
    #[graphql(default)]
    pub fee: Decimal,
    pub executed_at: OffsetDateTime,
    pub note: Option<String>,
    /// The exchange's id of the trade (imports skip what they already hold).
    pub external_id: Option<String>,
}

#[derive(InputObject, Serialize)]
pub struct TransferInInput {
    pub transfer_id: Option<ID>,
    pub coin: String,
    pub quantity: Decimal,
    /// What the coins cost where they come from, in the portfolio's currency.
    pub cost_basis: Decimal,
    pub executed_at: OffsetDateTime,
    pub note: Option<String>,
}

#[derive(InputObject, Serialize)]
pub struct TransferOutInput {
    pub transfer_id: Option<ID>,
    pub coin: String,
    pub quantity: Decimal,
    pub executed_at: OffsetDateTime,
    pub note: Option<String>,
}

/// The export an `importTrades` CSV comes from.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Serialize)]
#[graphql(name = "ImportFormat")]
pub enum ImportFormatInput {
    /// Binance's Spot trade history.
    Binance,
    /// Coinbase's transaction history.
    Coinbase,
    /// coinfold's own columns: executed_at, side, coin, quantity, price, and optionally
    /// quote, fee, external_id, note.
    Generic,
}

impl From<ImportFormatInput> for ImportFormat {
    fn from(format: ImportFormatInput) -> Self {
        match format {
            ImportFormatInput::Binance => ImportFormat::Binance,
            ImportFormatInput::Coinbase => ImportFormat::Coinbase,
            ImportFormatInput::Generic => ImportFormat::Generic,
        }
    }
}

/// What an import stored.
#[derive(SimpleObject)]
pub struct ImportResult {
    pub receipt: Receipt,
    /// Trades recorded now.
    pub imported: i32,
    /// Trades the portfolio already held (same external id), not recorded again.
    pub already_recorded: i32,
    /// Lines that hold no trade (a Coinbase send, receive or conversion).
    pub skipped: Vec<SkippedLine>,
}

#[derive(SimpleObject)]
pub struct SkippedLine {
    pub line: i32,
    pub reason: String,
}

/// A value of an input field, or VALIDATION naming the field.
pub(crate) fn field<T>(name: &str, value: Result<T, ValueError>) -> Result<T, ApiError> {
    value.map_err(|e| ApiError::validation(name, e.to_string()))
}

pub(crate) fn portfolio_refusal(error: PortfolioError) -> ApiError {
    match error {
        PortfolioError::NotFound => ApiError::NotFound("portfolio"),
        PortfolioError::TradeNotFound(_) => ApiError::NotFound("trade"),
        PortfolioError::ZeroQuantity => ApiError::validation("quantity", error.to_string()),
        PortfolioError::QuoteCurrencyMismatch { .. } => {
            ApiError::validation("quote", error.to_string())
        }
        PortfolioError::DuplicateExternalId(_) => {
            ApiError::validation("externalId", error.to_string())
        }
        PortfolioError::Accounting(_) => ApiError::validation("quantity", error.to_string()),
        PortfolioError::ImportSize => ApiError::validation("csv", error.to_string()),
        PortfolioError::Import { error, .. } => portfolio_refusal(*error),
        PortfolioError::AlreadyCreated
        | PortfolioError::Archived
        | PortfolioError::DuplicateEntry(_)
        | PortfolioError::TradeVoided(_) => ApiError::Conflict(error.to_string()),
    }
}

fn optional<T>(
    name: &str,
    raw: &Option<String>,
    parse: impl Fn(&str) -> Result<T, ValueError>,
) -> Result<Option<T>, ApiError> {
    raw.as_deref().map(|r| field(name, parse(r))).transpose()
}

/// A new entry's coin (one the market knows) and id (see `entry_id`); `prefix` names
/// the input (`trade`, `transfer`).
async fn new_entry(
    ctx: &Context<'_>,
    prefix: &str,
    raw_coin: &str,
    given_id: &Option<ID>,
    id_field: &str,
    idempotency_key: &Option<String>,
) -> Result<(CoinSymbol, Uuid), ApiError> {
    let principal = require_user(ctx)?;
    let coin = coin(ctx, &format!("{prefix}.coin"), raw_coin).await?;
    let id = entry_id(
        &format!("{prefix}.{id_field}"),
        given_id,
        &principal,
        idempotency_key,
    )?;
    Ok((coin, id))
}

/// VALIDATION naming the first line whose coin the market does not know.
async fn unknown_coins(ctx: &Context<'_>, trades: &[(u64, Trade)]) -> Result<(), ApiError> {
    let mut coins: Vec<&str> = trades.iter().map(|(_, t)| t.coin.as_str()).collect();
    coins.sort_unstable();
    coins.dedup();
    let known: Vec<String> = sqlx::query_scalar(
        "SELECT coin FROM read.latest_prices WHERE coin = ANY($1) \
         UNION SELECT coin FROM read.coins WHERE coin = ANY($1)",
    )
    .bind(&coins)
    .fetch_all(&api(ctx).pool)
    .await
    .map_err(ApiError::internal)?;
    match trades
        .iter()
        .find(|(_, t)| !known.iter().any(|k| k == t.coin.as_str()))
    {
        Some((line, trade)) => Err(ApiError::validation(
            &format!("line {line}"),
            format!(
                "coin: unknown coin {}: the market has no price for it",
                trade.coin
            ),
        )),
        None => Ok(()),
    }
}

/// A coin the market knows, or VALIDATION naming `name`.
async fn coin(ctx: &Context<'_>, name: &str, raw: &str) -> Result<CoinSymbol, ApiError> {
    let coin = field(name, CoinSymbol::parse(raw))?;
    known_coin(api(ctx), name, coin).await
}

/// A trade checked field by field (`prefix` names the input, e.g. `trade` or a CSV
/// line), its id made as `entry_id` says.
pub(crate) fn trade_of(
    prefix: &str,
    input: &TradeInput,
    coin: CoinSymbol,
    currency: &QuoteCurrency,
    trade_id: Uuid,
) -> Result<Trade, ApiError> {
    let name = |f: &str| format!("{prefix}.{f}");
    Ok(Trade {
        trade_id,
        side: input.side.into(),
        coin,
        quantity: field(&name("quantity"), Quantity::new(input.quantity))?,
        price: field(&name("price"), Price::new(input.price))?,
        quote: match &input.quote {
            Some(quote) => field(&name("quote"), QuoteCurrency::parse(quote))?,
            None => currency.clone(),
        },
        fee: field(&name("fee"), Amount::new(input.fee))?,
        executed_at: input.executed_at,
        note: optional(&name("note"), &input.note, |r| Note::parse(r))?,
        external_id: optional(&name("externalId"), &input.external_id, |r| {
            ExternalId::parse(r)
        })?,
    })
}

#[derive(Default)]
pub struct PortfolioMutation;

impl PortfolioMutation {
    /// Runs `command` on a portfolio the caller owns.
    async fn run(
        ctx: &Context<'_>,
        id: &ID,
        mutation: &str,
        input: &impl Serialize,
        idempotency_key: Option<String>,
        command: impl FnOnce(
            &coinfold_domain::portfolio::PortfolioState,
        ) -> Result<PortfolioCommand, ApiError>,
    ) -> Result<Receipt, ApiError> {
        let principal = require_user(ctx)?;
        let api = api(ctx);
        let portfolio_id = parse_id(id)?.to_string();
        let context = user_context(&principal, mutation, &(id, input), idempotency_key);
        let state = Self::load_owned(api, &principal, &portfolio_id).await?;
        let command = command(&state)?;
        let outcome = api
            .portfolios
            .execute(&portfolio_id, command, &context)
            .await
            .map_err(|e| command_error(e, portfolio_refusal))?;
        Ok(Receipt::from(outcome))
    }

    /// The caller's portfolio as the write side holds it: the loaded state names its
    /// owner, so there is no separate ownership query. Another user's, or none, is
    /// NOT_FOUND.
    async fn load_owned(
        api: &Api,
        principal: &Principal,
        portfolio_id: &str,
    ) -> Result<coinfold_domain::portfolio::PortfolioState, ApiError> {
        api.portfolios
            .load(portfolio_id)
            .await
            .map_err(|e| command_error(e, portfolio_refusal))?
            .into_state()
            .filter(|state| state.owner_id == principal.user_id)
            .ok_or(ApiError::NotFound("portfolio"))
    }
}

#[Object]
impl PortfolioMutation {
    /// Creates a portfolio owned by the caller.
    async fn create_portfolio(
        &self,
        ctx: &Context<'_>,
        input: CreatePortfolioInput,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        let principal = require_user(ctx)?;
        let api = api(ctx);
        let portfolio_id = Uuid::now_v7();
        let command = PortfolioCommand::Create {
            portfolio_id,
            owner_id: principal.user_id,
            name: field("name", PortfolioName::parse(&input.name))?,
            description: field("description", Description::parse(&input.description))?,
            method: input.cost_basis_method.into(),
            currency: field("currency", QuoteCurrency::parse(&input.currency))?,
            now: OffsetDateTime::now_utc(),
        };
        let context = user_context(&principal, "createPortfolio", &input, idempotency_key);
        let outcome = api
            .portfolios
            .execute(&portfolio_id.to_string(), command, &context)
            .await
            .map_err(|e| command_error(e, portfolio_refusal))?;
        Ok(Receipt::from(outcome))
    }

    async fn rename_portfolio(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: String,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        Self::run(ctx, &id, "renamePortfolio", &name, idempotency_key, |_| {
            Ok(PortfolioCommand::Rename {
                name: field("name", PortfolioName::parse(&name))?,
            })
        })
        .await
    }

    /// The method later sells use; past sells keep theirs.
    async fn set_cost_basis_method(
        &self,
        ctx: &Context<'_>,
        id: ID,
        method: CostBasis,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        Self::run(
            ctx,
            &id,
            "setCostBasisMethod",
            &method,
            idempotency_key,
            |_| {
                Ok(PortfolioCommand::ChangeCostBasisMethod {
                    method: method.into(),
                })
            },
        )
        .await
    }

    /// Archives a portfolio: it keeps its history and takes no more entries.
    async fn archive_portfolio(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        Self::run(ctx, &id, "archivePortfolio", &(), idempotency_key, |_| {
            Ok(PortfolioCommand::Archive {
                now: OffsetDateTime::now_utc(),
            })
        })
        .await
    }

    /// Records a trade. A sell of more than is held then is refused (VALIDATION).
    async fn record_trade(
        &self,
        ctx: &Context<'_>,
        portfolio_id: ID,
        trade: TradeInput,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        let (coin, trade_id) = new_entry(
            ctx,
            "trade",
            &trade.coin,
            &trade.trade_id,
            "tradeId",
            &idempotency_key,
        )
        .await?;
        Self::run(
            ctx,
            &portfolio_id,
            "recordTrade",
            &trade,
            idempotency_key,
            |state| {
                Ok(PortfolioCommand::RecordTrade {
                    trade: trade_of("trade", &trade, coin, &state.currency, trade_id)?,
                })
            },
        )
        .await
        .map(|r| r.with_entry(trade_id))
    }

    /// Imports the trades of a CSV export (`format`: BINANCE, COINBASE or GENERIC; the
    /// columns are documented in `coinfold_commands::import`), all or none: the first
    /// bad row answers VALIDATION with `extensions.field` = `line N` and nothing is
    /// stored. Trades already recorded (same external id) are skipped, so importing
    /// a file twice records it once.
    async fn import_trades(
        &self,
        ctx: &Context<'_>,
        portfolio_id: ID,
        format: ImportFormatInput,
        csv: String,
        idempotency_key: Option<String>,
    ) -> Result<ImportResult, ApiError> {
        let principal = require_user(ctx)?;
        let api = api(ctx);
        let id = parse_id(&portfolio_id)?.to_string();
        // Owner first: another user's portfolio is NOT_FOUND whatever the file holds.
        let state = Self::load_owned(api, &principal, &id).await?;
        let parsed = import::parse(format.into(), &csv, state.portfolio_id, &state.currency)
            .map_err(|e| {
                ApiError::validation(
                    &format!("line {}", e.line),
                    format!("{}: {}", e.column, e.message),
                )
            })?;
        unknown_coins(ctx, &parsed.trades).await?;
        let (command, lines) = import::command(parsed.trades);
        let context = user_context(
            &principal,
            "importTrades",
            &(&portfolio_id, format, &csv),
            idempotency_key,
        );
        let outcome = api
            .portfolios
            .execute(&id, command, &context)
            .await
            .map_err(|e| {
                command_error(e, |error| match lines.refusal(error) {
                    // The refused trade's line instead of its place in the batch.
                    (Some(line), error) => match portfolio_refusal(error) {
                        ApiError::Validation { field, message } => ApiError::validation(
                            &format!("line {line}"),
                            format!("{field}: {message}"),
                        ),
                        other => other,
                    },
                    (None, error) => portfolio_refusal(error),
                })
            })?;
        let receipt = Receipt::from(outcome);
        let imported = usize::try_from(receipt.events).unwrap_or(0);
        Ok(ImportResult {
            already_recorded: i32::try_from(lines.count().saturating_sub(imported))
                .unwrap_or(i32::MAX),
            imported: i32::try_from(imported).unwrap_or(i32::MAX),
            skipped: parsed
                .skipped
                .into_iter()
                .map(|s| SkippedLine {
                    line: i32::try_from(s.line).unwrap_or(i32::MAX),
                    reason: s.reason,
                })
                .collect(),
            receipt,
        })
    }

    /// Replaces a recorded trade's details; `trade.tradeId` names it.
    async fn correct_trade(
        &self,
        ctx: &Context<'_>,
        portfolio_id: ID,
        trade: TradeInput,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        // Authenticated first: an anonymous caller learns nothing from the checks below.
        require_user(ctx)?;
        let coin = coin(ctx, "trade.coin", &trade.coin).await?;
        let trade_id = trade
            .trade_id
            .as_ref()
            .ok_or_else(|| ApiError::validation("trade.tradeId", "name the trade to correct"))?
            .parse::<Uuid>()
            .map_err(|_| ApiError::NotFound("trade"))?;
        Self::run(
            ctx,
            &portfolio_id,
            "correctTrade",
            &trade,
            idempotency_key,
            |state| {
                Ok(PortfolioCommand::CorrectTrade {
                    trade: trade_of("trade", &trade, coin, &state.currency, trade_id)?,
                })
            },
        )
        .await
        .map(|r| r.with_entry(trade_id))
    }

    /// Voids a trade: it stays in the history, and counts for nothing.
    async fn void_trade(
        &self,
        ctx: &Context<'_>,
        portfolio_id: ID,
        trade_id: ID,
        reason: String,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        require_user(ctx)?;
        let entry: Uuid = trade_id.parse().map_err(|_| ApiError::NotFound("trade"))?;
        Self::run(
            ctx,
            &portfolio_id,
            "voidTrade",
            &(&trade_id, &reason),
            idempotency_key,
            |_| {
                Ok(PortfolioCommand::VoidTrade {
                    trade_id: entry,
                    reason: field("reason", Note::parse(&reason))?,
                })
            },
        )
        .await
        .map(|r| r.with_entry(entry))
    }

    /// Coins arriving from elsewhere, at a stated cost basis.
    async fn transfer_in(
        &self,
        ctx: &Context<'_>,
        portfolio_id: ID,
        transfer: TransferInInput,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        let (coin, transfer_id) = new_entry(
            ctx,
            "transfer",
            &transfer.coin,
            &transfer.transfer_id,
            "transferId",
            &idempotency_key,
        )
        .await?;
        Self::run(
            ctx,
            &portfolio_id,
            "transferIn",
            &transfer,
            idempotency_key,
            |_| {
                Ok(PortfolioCommand::TransferIn {
                    transfer: TransferIn {
                        transfer_id,
                        coin,
                        quantity: field("transfer.quantity", Quantity::new(transfer.quantity))?,
                        cost_basis: field("transfer.costBasis", Amount::new(transfer.cost_basis))?,
                        executed_at: transfer.executed_at,
                        note: optional("transfer.note", &transfer.note, |r| Note::parse(r))?,
                    },
                })
            },
        )
        .await
        .map(|r| r.with_entry(transfer_id))
    }

    /// Coins leaving for elsewhere: lots move out, nothing is realized.
    async fn transfer_out(
        &self,
        ctx: &Context<'_>,
        portfolio_id: ID,
        transfer: TransferOutInput,
        idempotency_key: Option<String>,
    ) -> Result<Receipt, ApiError> {
        let (coin, transfer_id) = new_entry(
            ctx,
            "transfer",
            &transfer.coin,
            &transfer.transfer_id,
            "transferId",
            &idempotency_key,
        )
        .await?;
        Self::run(
            ctx,
            &portfolio_id,
            "transferOut",
            &transfer,
            idempotency_key,
            |_| {
                Ok(PortfolioCommand::TransferOut {
                    transfer: TransferOut {
                        transfer_id,
                        coin,
                        quantity: field("transfer.quantity", Quantity::new(transfer.quantity))?,
                        executed_at: transfer.executed_at,
                        note: optional("transfer.note", &transfer.note, |r| Note::parse(r))?,
                    },
                })
            },
        )
        .await
        .map(|r| r.with_entry(transfer_id))
    }
}
