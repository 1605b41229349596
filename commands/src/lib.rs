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
//! - [`event_store`]: cqrs-es's repository over those tables. One transaction stores
//!   a command's events (each with a UUIDv7 id, actor, correlation and causation ids,
//!   `recorded_at`, and `effective_at` for trades), their outbox rows, the idempotency
//!   key and any snapshot.
//! - [`service`]: [`service::CommandService::execute`] runs a command with its
//!   idempotency key and bounded retries on optimistic-concurrency conflicts, in a
//!   `command` span; the append is an `event_store.append` span inside it.
//! - [`trace_context`]: the command span's W3C `traceparent`, stored in each event's
//!   metadata and outbox headers, so the relay and the projections continue its trace.
//!
//! - [`history`]: an aggregate's events with their metadata, and `load_as_of` a
//!   version, a recorded time or an effective time, from the nearest snapshot.
//! - [`upcasting`]: stored events of older shapes brought to the current one on load.
//!
//! - [`credentials`]: argon2id password hashes and API keys (shown once, stored as
//!   SHA-256), made before a command reaches the User aggregate.
//! - [`reservations`]: usernames and e-mail addresses claimed in the transaction of
//!   the event that claims them, so two users can never hold one.
//! - [`users`]: the user commands that need a secret or a check across users.
//!
//! - [`import`]: Binance and Coinbase CSV exports and the generic format read into
//!   the trades of one `ImportTrades` command; a bad row is named by line and column.

pub mod credentials;
pub mod event_store;
pub mod history;
pub mod import;
pub mod reservations;
pub mod service;
pub mod store;
pub mod trace_context;
pub mod upcasting;
pub mod users;
