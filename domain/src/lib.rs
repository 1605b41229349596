//! # coinfold-domain
//!
//! The pure core of coinfold: aggregates as
//! `decide(&self, Command) -> Result<Vec<Event>, Error>` and `evolve(&mut self, &Event)`,
//! their value types, and the accounting maths. Nothing here performs I/O: time, prices
//! and hashed secrets arrive inside the commands, so every rule is tested as
//! given/when/then without a database. Each aggregate also implements
//! `cqrs_es::Aggregate`, whose `handle` and `apply` only forward to `decide` and
//! `evolve`.
//!
//! A tour:
//!
//! - [`values`]: types that validate on construction (coin symbol and id, quantity,
//!   price and amount as `Decimal`, quote currency, e-mail, username, names, notes).
//! - [`portfolio`]: the Portfolio aggregate; [`portfolio::accounting`] holds lots and
//!   the FIFO, LIFO, HIFO and average cost-basis methods, and derives every sell's and
//!   transfer's disposal from the ledger (corrections, voids and backdated entries
//!   re-derive what follows them).
//!
//! - [`user`]: the User aggregate: identity, credentials as hashes only, profile,
//!   preferences, API keys and watchlist.
//!
//! The Alert aggregate and the indicator maths are still to come (issues 3 and 5). This crate may depend only on serde, thiserror, uuid, time, rust_decimal and
//! cqrs-es.

pub mod portfolio;
pub mod user;
pub mod values;
