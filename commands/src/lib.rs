//! # coinfold-commands
//!
//! The write side. Commands arrive from the API, are decided by the aggregates of
//! `coinfold-domain`, and their events are appended to the PostgreSQL event store
//! together with their outbox rows and idempotency key, in one transaction.
//!
//! A tour of what is here today:
//!
//! - [`store`]: the database schema every other part relies on. [`store::MIGRATOR`]
//!   embeds `migrations/` (event store with its global position, outbox, idempotency
//!   keys, projection checkpoints, the `read` schema); `coinfold migrate` and the tests
//!   run it.
//!
//! The cqrs-es framework over postgres-es, event metadata, the outbox writer, command
//! services and time travel arrive with the write-side work (issue 3).

pub mod store;
