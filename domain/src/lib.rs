//! # coinfold-domain
//!
//! The pure core of coinfold: the User, Portfolio and Alert aggregates as
//! `decide(&self, Command) -> Result<Vec<Event>, DomainError>` and
//! `evolve(&mut self, &Event)`, their value types (coins, quantities, prices,
//! e-mail addresses, alert conditions) and the analytics maths (cost basis,
//! indicators).
//!
//! Nothing here performs I/O: time, prices and hashed secrets arrive inside the
//! commands, so every rule can be tested as given/when/then without a database.
//! This crate may depend only on serde, thiserror, uuid, time, rust_decimal and
//! cqrs-es (see `docs/ARCHITECTURE.md`).
//!
//! Status: the crate is in place so the workspace has its final shape; the
//! aggregates arrive with the write-side work (issue 3). It holds no code yet.
