//! The Portfolio aggregate: a user's trades and transfers, and the lots they leave.
//!
//! [`Portfolio::decide`] holds every rule; [`Portfolio::evolve`] only records what an
//! event says. Events carry their derived values (a sell's lots and realized gain, and
//! the disposals that a backdated entry, a correction or a void re-derived), so readers
//! fold them without recomputing. The accounting itself is in [`accounting`].

pub mod accounting;

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

pub use accounting::{AccountingError, CostBasisMethod, Disposal, Lot, LotConsumed};
use accounting::{Derived, Movement, MovementKind};

use crate::values::{
    Amount, CoinSymbol, Description, ExternalId, Note, PortfolioName, Price, Quantity,
    QuoteCurrency,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Side {
    Buy,
    Sell,
}

/// A trade as the user states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub trade_id: Uuid,
    pub side: Side,
    pub coin: CoinSymbol,
    pub quantity: Quantity,
    pub price: Price,
    pub quote: QuoteCurrency,
    /// In the quote currency: added to a buy's cost, taken from a sell's proceeds.
    pub fee: Amount,
    #[serde(with = "time::serde::rfc3339")]
    pub executed_at: OffsetDateTime,
    pub note: Option<Note>,
    pub external_id: Option<ExternalId>,
}

/// Coins arriving from elsewhere (another wallet or exchange), at a stated cost basis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferIn {
    pub transfer_id: Uuid,
    pub coin: CoinSymbol,
    pub quantity: Quantity,
    /// What the coins cost where they come from, in the portfolio's currency.
    pub cost_basis: Amount,
    #[serde(with = "time::serde::rfc3339")]
    pub executed_at: OffsetDateTime,
    pub note: Option<Note>,
}

/// Coins leaving for elsewhere: lots move out, nothing is realized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferOut {
    pub transfer_id: Uuid,
    pub coin: CoinSymbol,
    pub quantity: Quantity,
    #[serde(with = "time::serde::rfc3339")]
    pub executed_at: OffsetDateTime,
    pub note: Option<Note>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortfolioCommand {
    Create {
        portfolio_id: Uuid,
        owner_id: Uuid,
        name: PortfolioName,
        description: Description,
        method: CostBasisMethod,
        /// The currency every trade is quoted in and costs are kept in.
        currency: QuoteCurrency,
        /// Put in by the command service: the aggregate reads no clock.
        now: OffsetDateTime,
    },
    Rename {
        name: PortfolioName,
    },
    ChangeDescription {
        description: Description,
    },
    ChangeCostBasisMethod {
        method: CostBasisMethod,
    },
    RecordTrade {
        trade: Trade,
    },
    /// Replaces a recorded trade's details (same id).
    CorrectTrade {
        trade: Trade,
    },
    VoidTrade {
        trade_id: Uuid,
        reason: Note,
    },
    TransferIn {
        transfer: TransferIn,
    },
    TransferOut {
        transfer: TransferOut,
    },
    Archive {
        now: OffsetDateTime,
    },
    /// Records many trades at once (an exchange's export), all or none: one
    /// `TradeRecorded` per trade, in the order given, each decided on the portfolio as
    /// the trades before it left it. A trade whose external id is already recorded
    /// (in the portfolio, voided or not, or earlier in the batch) is skipped, so
    /// importing the same file twice records it once.
    ImportTrades {
        trades: Vec<Trade>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortfolioEvent {
    Created {
        portfolio_id: Uuid,
        owner_id: Uuid,
        name: PortfolioName,
        description: Description,
        method: CostBasisMethod,
        currency: QuoteCurrency,
        #[serde(with = "time::serde::rfc3339")]
        created_at: OffsetDateTime,
    },
    Renamed {
        name: PortfolioName,
    },
    DescriptionChanged {
        description: Description,
    },
    CostBasisMethodChanged {
        method: CostBasisMethod,
    },
    TradeRecorded {
        trade: Trade,
        /// The method a sell uses, now and when it is derived again.
        method: CostBasisMethod,
        /// For a sell: the lots it consumed and what it realized.
        disposal: Option<Disposal>,
        /// Other disposals whose numbers changed because this trade is backdated.
        rederived: Vec<Disposal>,
    },
    TradeCorrected {
        trade: Trade,
        disposal: Option<Disposal>,
        rederived: Vec<Disposal>,
    },
    TradeVoided {
        trade_id: Uuid,
        reason: Note,
        rederived: Vec<Disposal>,
    },
    TransferredIn {
        transfer: TransferIn,
        rederived: Vec<Disposal>,
    },
    TransferredOut {
        transfer: TransferOut,
        method: CostBasisMethod,
        disposal: Disposal,
        rederived: Vec<Disposal>,
    },
    Archived {
        #[serde(with = "time::serde::rfc3339")]
        archived_at: OffsetDateTime,
    },
}

impl cqrs_es::DomainEvent for PortfolioEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "PortfolioCreated",
            Self::Renamed { .. } => "PortfolioRenamed",
            Self::DescriptionChanged { .. } => "PortfolioDescriptionChanged",
            Self::CostBasisMethodChanged { .. } => "CostBasisMethodChanged",
            Self::TradeRecorded { .. } => "TradeRecorded",
            Self::TradeCorrected { .. } => "TradeCorrected",
            Self::TradeVoided { .. } => "TradeVoided",
            Self::TransferredIn { .. } => "TransferredIn",
            Self::TransferredOut { .. } => "TransferredOut",
            Self::Archived { .. } => "PortfolioArchived",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        match self {
            // Version 1 was stored before fees were recorded; it is upcast on load
            // (coinfold-commands' `upcasting` module).
            Self::TradeRecorded { .. } => "2",
            _ => "1",
        }
        .to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortfolioError {
    #[error("the portfolio already exists")]
    AlreadyCreated,
    #[error("the portfolio does not exist")]
    NotFound,
    #[error("the portfolio is archived")]
    Archived,
    #[error("the quantity must be greater than zero")]
    ZeroQuantity,
    #[error("the trade is quoted in {given}, but this portfolio keeps its costs in {expected}")]
    QuoteCurrencyMismatch {
        given: QuoteCurrency,
        expected: QuoteCurrency,
    },
    #[error("an entry with id {0} is already recorded")]
    DuplicateEntry(Uuid),
    #[error("a trade with external id {0:?} is already recorded")]
    DuplicateExternalId(String),
    #[error("no trade with id {0}")]
    TradeNotFound(Uuid),
    #[error("trade {0} is voided")]
    TradeVoided(Uuid),
    #[error(transparent)]
    Accounting(#[from] AccountingError),
    /// An imported trade was refused: `index` counts from 0 in the batch.
    #[error("trade {} of the import: {error}", index + 1)]
    Import {
        index: usize,
        error: Box<PortfolioError>,
    },
    #[error("an import holds at least one trade and at most {MAX_IMPORT}")]
    ImportSize,
}

/// Most trades one import may hold.
pub const MAX_IMPORT: usize = 100_000;

/// One ledger entry as stored in the aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub voided: bool,
    /// The method in force when the entry was recorded (used if it disposes).
    pub method: CostBasisMethod,
    pub record: Record,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    Trade(Trade),
    TransferIn(TransferIn),
    TransferOut(TransferOut),
}

impl Entry {
    pub fn executed_at(&self) -> OffsetDateTime {
        match &self.record {
            Record::Trade(t) => t.executed_at,
            Record::TransferIn(t) => t.executed_at,
            Record::TransferOut(t) => t.executed_at,
        }
    }

    pub fn id(&self) -> Uuid {
        match &self.record {
            Record::Trade(t) => t.trade_id,
            Record::TransferIn(t) => t.transfer_id,
            Record::TransferOut(t) => t.transfer_id,
        }
    }

    fn movement(&self) -> Result<Movement, AccountingError> {
        let overflow = || AccountingError::Overflow;
        let (coin, executed_at, quantity, kind) = match &self.record {
            Record::Trade(trade) => {
                let gross = trade
                    .quantity
                    .value()
                    .checked_mul(trade.price.value())
                    .ok_or_else(overflow)?;
                let kind = match trade.side {
                    Side::Buy => MovementKind::Acquire {
                        cost: gross.checked_add(trade.fee.value()).ok_or_else(overflow)?,
                    },
                    Side::Sell => MovementKind::Dispose {
                        method: self.method,
                        gross: Some(gross),
                        fee: trade.fee.value(),
                    },
                };
                (&trade.coin, trade.executed_at, trade.quantity, kind)
            }
            Record::TransferIn(t) => (
                &t.coin,
                t.executed_at,
                t.quantity,
                MovementKind::Acquire {
                    cost: t.cost_basis.value(),
                },
            ),
            Record::TransferOut(t) => (
                &t.coin,
                t.executed_at,
                t.quantity,
                MovementKind::Dispose {
                    method: self.method,
                    gross: None,
                    fee: Decimal::ZERO,
                },
            ),
        };
        Ok(Movement {
            id: self.id(),
            seq: self.seq,
            coin: coin.clone(),
            executed_at,
            quantity: quantity.value(),
            kind,
        })
    }
}

/// One coin of a portfolio: what is held, what that cost, and what selling it realized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub coin: CoinSymbol,
    pub quantity: Decimal,
    pub cost_basis: Decimal,
    pub realized_gain: Decimal,
}

/// The portfolio's state: what its events have said, nothing computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortfolioState {
    pub portfolio_id: Uuid,
    pub owner_id: Uuid,
    pub name: PortfolioName,
    pub description: Description,
    pub method: CostBasisMethod,
    pub currency: QuoteCurrency,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub archived: bool,
    pub entries: Vec<Entry>,
    /// The current disposal of every sell and transfer out, by entry id.
    pub disposals: BTreeMap<Uuid, Disposal>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Portfolio {
    state: Option<PortfolioState>,
}

impl Portfolio {
    pub fn state(&self) -> Option<&PortfolioState> {
        self.state.as_ref()
    }

    pub fn into_state(self) -> Option<PortfolioState> {
        self.state
    }

    /// The lots held now, per coin (derived from the ledger; no rule is applied twice:
    /// this replays the same derivation `decide` used).
    pub fn holdings(&self) -> Result<BTreeMap<CoinSymbol, Vec<Lot>>, AccountingError> {
        match &self.state {
            Some(state) => Ok(derive_ledger(&state.entries)?.lots),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Each coin's position (held or once held), and the cost of every acquisition not
    /// voided (what was ever invested), derived as `holdings` is.
    pub fn positions(&self) -> Result<(Vec<Position>, Decimal), AccountingError> {
        let Some(state) = &self.state else {
            return Ok((Vec::new(), Decimal::ZERO));
        };
        let movements = state
            .entries
            .iter()
            .filter(|e| !e.voided)
            .map(Entry::movement)
            .collect::<Result<Vec<_>, _>>()?;
        let mut invested = Decimal::ZERO;
        for movement in &movements {
            if let MovementKind::Acquire { cost } = movement.kind {
                invested = invested
                    .checked_add(cost)
                    .ok_or(AccountingError::Overflow)?;
            }
        }
        let derived = accounting::derive(&movements)?;
        let empty = |coin: &CoinSymbol| Position {
            coin: coin.clone(),
            quantity: Decimal::ZERO,
            cost_basis: Decimal::ZERO,
            realized_gain: Decimal::ZERO,
        };
        let mut out: BTreeMap<CoinSymbol, Position> = BTreeMap::new();
        for (coin, lots) in &derived.lots {
            let p = out.entry(coin.clone()).or_insert_with(|| empty(coin));
            for lot in lots {
                p.quantity += lot.quantity;
                p.cost_basis += lot.cost;
            }
        }
        for disposal in derived.disposals.values() {
            let p = out
                .entry(disposal.coin.clone())
                .or_insert_with(|| empty(&disposal.coin));
            p.realized_gain += disposal.realized_gain.unwrap_or_default();
        }
        Ok((out.into_values().collect(), invested))
    }

    /// The portfolio as it stood at effective time `at`, as far as we know now: the
    /// entries executed up to `at` (corrections and voids recorded later included),
    /// with their disposals. Exact, because a disposal depends only on the entries
    /// before it in effective order.
    pub fn effective_as_of(&self, at: OffsetDateTime) -> Self {
        let Some(state) = &self.state else {
            return self.clone();
        };
        let mut state = state.clone();
        state.entries.retain(|e| e.executed_at() <= at);
        let kept: std::collections::BTreeSet<Uuid> = state.entries.iter().map(Entry::id).collect();
        state.disposals.retain(|id, _| kept.contains(id));
        Self { state: Some(state) }
    }

    pub fn decide(&self, command: PortfolioCommand) -> Result<Vec<PortfolioEvent>, PortfolioError> {
        let Some(state) = &self.state else {
            return match command {
                PortfolioCommand::Create {
                    portfolio_id,
                    owner_id,
                    name,
                    description,
                    method,
                    currency,
                    now,
                } => Ok(vec![PortfolioEvent::Created {
                    portfolio_id,
                    owner_id,
                    name,
                    description,
                    method,
                    currency,
                    created_at: utc(now),
                }]),
                _ => Err(PortfolioError::NotFound),
            };
        };
        if matches!(command, PortfolioCommand::Create { .. }) {
            return Err(PortfolioError::AlreadyCreated);
        }
        if state.archived {
            return Err(PortfolioError::Archived);
        }
        match command {
            PortfolioCommand::Create { .. } => Err(PortfolioError::AlreadyCreated),
            PortfolioCommand::Rename { name } => Ok(if name == state.name {
                vec![]
            } else {
                vec![PortfolioEvent::Renamed { name }]
            }),
            PortfolioCommand::ChangeDescription { description } => {
                Ok(if description == state.description {
                    vec![]
                } else {
                    vec![PortfolioEvent::DescriptionChanged { description }]
                })
            }
            PortfolioCommand::ChangeCostBasisMethod { method } => Ok(if method == state.method {
                vec![]
            } else {
                vec![PortfolioEvent::CostBasisMethodChanged { method }]
            }),
            PortfolioCommand::RecordTrade { trade } => {
                let trade = state.check_trade(trade)?;
                state.check_new_entry(trade.trade_id)?;
                if let Some(external) = &trade.external_id {
                    let repeated = state.entries.iter().any(|e| {
                        !e.voided
                            && matches!(&e.record, Record::Trade(t) if t.external_id.as_ref() == Some(external))
                    });
                    if repeated {
                        return Err(PortfolioError::DuplicateExternalId(
                            external.as_str().to_owned(),
                        ));
                    }
                }
                let entry = state.next_entry(Record::Trade(trade.clone()));
                let (disposal, rederived) = state.rederive_with(Some(entry), None)?;
                Ok(vec![PortfolioEvent::TradeRecorded {
                    trade,
                    method: state.method,
                    disposal,
                    rederived,
                }])
            }
            PortfolioCommand::CorrectTrade { trade } => {
                let trade = state.check_trade(trade)?;
                let index = state.live_trade(trade.trade_id)?;
                if matches!(&state.entries[index].record, Record::Trade(t) if *t == trade) {
                    return Ok(vec![]);
                }
                let mut entry = state.entries[index].clone();
                entry.record = Record::Trade(trade.clone());
                let (disposal, rederived) = state.rederive_with(Some(entry), None)?;
                Ok(vec![PortfolioEvent::TradeCorrected {
                    trade,
                    disposal,
                    rederived,
                }])
            }
            PortfolioCommand::VoidTrade { trade_id, reason } => {
                state.live_trade(trade_id)?;
                let (_, rederived) = state.rederive_with(None, Some(trade_id))?;
                Ok(vec![PortfolioEvent::TradeVoided {
                    trade_id,
                    reason,
                    rederived,
                }])
            }
            PortfolioCommand::TransferIn { transfer } => {
                let transfer = TransferIn {
                    executed_at: utc(transfer.executed_at),
                    ..transfer
                };
                if transfer.quantity.is_zero() {
                    return Err(PortfolioError::ZeroQuantity);
                }
                state.check_new_entry(transfer.transfer_id)?;
                let entry = state.next_entry(Record::TransferIn(transfer.clone()));
                let (_, rederived) = state.rederive_with(Some(entry), None)?;
                Ok(vec![PortfolioEvent::TransferredIn {
                    transfer,
                    rederived,
                }])
            }
            PortfolioCommand::TransferOut { transfer } => {
                let transfer = TransferOut {
                    executed_at: utc(transfer.executed_at),
                    ..transfer
                };
                if transfer.quantity.is_zero() {
                    return Err(PortfolioError::ZeroQuantity);
                }
                state.check_new_entry(transfer.transfer_id)?;
                let entry = state.next_entry(Record::TransferOut(transfer.clone()));
                let (disposal, rederived) = state.rederive_with(Some(entry), None)?;
                let disposal = disposal.ok_or(AccountingError::Overflow)?;
                Ok(vec![PortfolioEvent::TransferredOut {
                    transfer,
                    method: state.method,
                    disposal,
                    rederived,
                }])
            }
            PortfolioCommand::Archive { now } => Ok(vec![PortfolioEvent::Archived {
                archived_at: utc(now),
            }]),
            PortfolioCommand::ImportTrades { trades } => self.import(trades),
        }
    }

    /// Decides each trade on a working copy that has applied the ones before it.
    fn import(&self, trades: Vec<Trade>) -> Result<Vec<PortfolioEvent>, PortfolioError> {
        if trades.is_empty() || trades.len() > MAX_IMPORT {
            return Err(PortfolioError::ImportSize);
        }
        let mut working = self.clone();
        // Every external id held, voided trades' too: a trade voided after an import
        // stays voided when the file is imported again.
        let mut held: std::collections::HashSet<ExternalId> = self
            .state
            .iter()
            .flat_map(|state| &state.entries)
            .filter_map(|entry| match &entry.record {
                Record::Trade(trade) => trade.external_id.clone(),
                _ => None,
            })
            .collect();
        let mut entry_ids: std::collections::HashSet<Uuid> = self
            .state
            .iter()
            .flat_map(|state| &state.entries)
            .map(Entry::id)
            .collect();
        let mut ledger = InOrder::of(&working);
        let mut events = Vec::with_capacity(trades.len());
        for (index, trade) in trades.into_iter().enumerate() {
            if let Some(external) = &trade.external_id
                && !held.insert(external.clone())
            {
                continue;
            }
            let trade_id = trade.trade_id;
            let in_order =
                ledger.as_ref().is_some_and(|l| l.takes(&trade)) && !entry_ids.contains(&trade_id);
            let decided = match (&mut ledger, in_order) {
                // `decide` has found the portfolio open before it called `import`.
                (Some(ledger), true) => match &working.state {
                    Some(state) => state.record_in_order(trade, ledger).map(|e| vec![e]),
                    None => Err(PortfolioError::NotFound),
                },
                _ => working.decide(PortfolioCommand::RecordTrade { trade }),
            };
            match decided {
                Ok(decided) => {
                    for event in decided {
                        working.evolve(&event);
                        events.push(event);
                    }
                }
                Err(error) => {
                    return Err(PortfolioError::Import {
                        index,
                        error: Box::new(error),
                    });
                }
            }
            entry_ids.insert(trade_id);
            if !in_order {
                ledger = InOrder::of(&working);
            }
        }
        Ok(events)
    }

    pub fn evolve(&mut self, event: &PortfolioEvent) {
        if let PortfolioEvent::Created {
            portfolio_id,
            owner_id,
            name,
            description,
            method,
            currency,
            created_at,
        } = event
        {
            self.state = Some(PortfolioState {
                portfolio_id: *portfolio_id,
                owner_id: *owner_id,
                name: name.clone(),
                description: description.clone(),
                method: *method,
                currency: currency.clone(),
                created_at: *created_at,
                archived: false,
                entries: Vec::new(),
                disposals: BTreeMap::new(),
            });
            return;
        }
        // Every other event follows Created (decide refuses anything else first).
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match event {
            PortfolioEvent::Created { .. } => {}
            PortfolioEvent::Renamed { name } => state.name = name.clone(),
            PortfolioEvent::DescriptionChanged { description } => {
                state.description = description.clone();
            }
            PortfolioEvent::CostBasisMethodChanged { method } => state.method = *method,
            PortfolioEvent::TradeRecorded {
                trade,
                method,
                disposal,
                rederived,
            } => {
                state.push_entry(*method, Record::Trade(trade.clone()));
                state.store_disposals(disposal.iter().chain(rederived));
            }
            PortfolioEvent::TradeCorrected {
                trade,
                disposal,
                rederived,
            } => {
                if let Some(entry) = state
                    .entries
                    .iter_mut()
                    .find(|e| matches!(&e.record, Record::Trade(t) if t.trade_id == trade.trade_id))
                {
                    entry.record = Record::Trade(trade.clone());
                }
                // A sell corrected into a buy no longer disposes.
                state.disposals.remove(&trade.trade_id);
                state.store_disposals(disposal.iter().chain(rederived));
            }
            PortfolioEvent::TradeVoided {
                trade_id,
                rederived,
                ..
            } => {
                if let Some(entry) = state.entries.iter_mut().find(|e| e.id() == *trade_id) {
                    entry.voided = true;
                }
                state.disposals.remove(trade_id);
                state.store_disposals(rederived);
            }
            PortfolioEvent::TransferredIn {
                transfer,
                rederived,
            } => {
                state.push_entry(state.method, Record::TransferIn(transfer.clone()));
                state.store_disposals(rederived);
            }
            PortfolioEvent::TransferredOut {
                transfer,
                method,
                disposal,
                rederived,
            } => {
                state.push_entry(*method, Record::TransferOut(transfer.clone()));
                state.store_disposals(std::iter::once(disposal).chain(rederived));
            }
            PortfolioEvent::Archived { .. } => state.archived = true,
        }
    }
}

impl PortfolioState {
    fn check_trade(&self, trade: Trade) -> Result<Trade, PortfolioError> {
        if trade.quantity.is_zero() {
            return Err(PortfolioError::ZeroQuantity);
        }
        if trade.quote != self.currency {
            return Err(PortfolioError::QuoteCurrencyMismatch {
                given: trade.quote,
                expected: self.currency.clone(),
            });
        }
        Ok(Trade {
            executed_at: utc(trade.executed_at),
            ..trade
        })
    }

    /// `RecordTrade` for a trade that `ledger` takes (executed no earlier than any live
    /// entry): its disposal comes from applying it to `ledger` alone, and no earlier
    /// disposal changes, so there is nothing to re-derive. The same event as `decide`
    /// would give, in O(1) instead of O(entries). The caller has checked that the
    /// portfolio is open and the trade id is new.
    fn record_in_order(
        &self,
        trade: Trade,
        ledger: &mut InOrder,
    ) -> Result<PortfolioEvent, PortfolioError> {
        let trade = self.check_trade(trade)?;
        let entry = self.next_entry(Record::Trade(trade.clone()));
        ledger.derived.apply(&entry.movement()?)?;
        ledger.last = Some(
            ledger
                .last
                .map_or(trade.executed_at, |l| l.max(trade.executed_at)),
        );
        Ok(PortfolioEvent::TradeRecorded {
            disposal: ledger.derived.disposals.get(&entry.id()).cloned(),
            method: self.method,
            trade,
            rederived: vec![],
        })
    }

    fn check_new_entry(&self, id: Uuid) -> Result<(), PortfolioError> {
        if self.entries.iter().any(|e| e.id() == id) {
            Err(PortfolioError::DuplicateEntry(id))
        } else {
            Ok(())
        }
    }

    /// The index of a recorded, not voided trade.
    fn live_trade(&self, trade_id: Uuid) -> Result<usize, PortfolioError> {
        let index = self
            .entries
            .iter()
            .position(|e| matches!(&e.record, Record::Trade(t) if t.trade_id == trade_id))
            .ok_or(PortfolioError::TradeNotFound(trade_id))?;
        if self.entries[index].voided {
            return Err(PortfolioError::TradeVoided(trade_id));
        }
        Ok(index)
    }

    fn next_entry(&self, record: Record) -> Entry {
        Entry {
            seq: self.entries.len() as u64,
            voided: false,
            method: self.method,
            record,
        }
    }

    fn push_entry(&mut self, method: CostBasisMethod, record: Record) {
        let entry = Entry {
            seq: self.entries.len() as u64,
            voided: false,
            method,
            record,
        };
        self.entries.push(entry);
    }

    fn store_disposals<'a>(&mut self, disposals: impl IntoIterator<Item = &'a Disposal>) {
        for disposal in disposals {
            self.disposals.insert(disposal.entry_id, disposal.clone());
        }
    }

    /// Derives the ledger with `changed` added or replaced (same id) and `voided`
    /// removed. Returns the changed entry's disposal, and every other disposal whose
    /// numbers differ from the ones stored.
    fn rederive_with(
        &self,
        changed: Option<Entry>,
        voided: Option<Uuid>,
    ) -> Result<(Option<Disposal>, Vec<Disposal>), PortfolioError> {
        let changed_id = changed.as_ref().map(Entry::id);
        let mut entries: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| Some(e.id()) != changed_id && Some(e.id()) != voided)
            .cloned()
            .collect();
        entries.extend(changed);
        let Derived { mut disposals, .. } = derive_ledger(&entries)?;
        let own = changed_id.and_then(|id| disposals.remove(&id));
        let rederived = disposals
            .into_values()
            .filter(|d| self.disposals.get(&d.entry_id) != Some(d))
            .collect();
        Ok((own, rederived))
    }
}

/// An import's running ledger: the derivation of a portfolio's entries and the latest
/// time among the live ones. A trade executed at or after that time sorts last, so it
/// is applied to the ledger alone (`PortfolioState::record_in_order`).
struct InOrder {
    derived: Derived,
    last: Option<OffsetDateTime>,
}

impl InOrder {
    /// None where the fast path does not apply: no portfolio, or one whose stored
    /// disposals differ from a fresh derivation (then `decide` re-derives them).
    fn of(portfolio: &Portfolio) -> Option<Self> {
        let state = portfolio.state.as_ref()?;
        let derived = derive_ledger(&state.entries).ok()?;
        if derived.disposals != state.disposals {
            return None;
        }
        let last = state
            .entries
            .iter()
            .filter(|e| !e.voided)
            .map(Entry::executed_at)
            .max();
        Some(Self { derived, last })
    }

    fn takes(&self, trade: &Trade) -> bool {
        self.last.is_none_or(|last| trade.executed_at >= last)
    }
}

fn derive_ledger(entries: &[Entry]) -> Result<Derived, AccountingError> {
    let movements = entries
        .iter()
        .filter(|e| !e.voided)
        .map(Entry::movement)
        .collect::<Result<Vec<_>, _>>()?;
    accounting::derive(&movements)
}

fn utc(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(UtcOffset::UTC)
}

cqrs_aggregate!(
    Portfolio,
    "Portfolio",
    PortfolioCommand,
    PortfolioEvent,
    PortfolioError
);

#[cfg(test)]
mod tests;
