//! # coinfold-projections
//!
//! The read side: everything that folds a log into a read model.
//!
//! A tour of what is here today:
//!
//! - [`global_log`]: the reader of the event store's global log. Every projection over
//!   domain events reads through [`global_log::GlobalLog::read_after`], which returns
//!   events in global-position order and never runs ahead of a transaction still in
//!   flight, so a projection's checkpoint (one number) never skips an event that
//!   commits late with a smaller position.
//!
//! - [`ingest`]: streams in. Total parsers of the real Binance, Coinbase and CoinGecko
//!   messages into one [`ingest::Tick`]; the connectors that own the sockets and poll
//!   loops (reconnect with backoff and jitter, pings, `serverShutdown`, heartbeats,
//!   sequence gaps, 429s); news from RSS/Atom and NewsAPI with coin tagging; the
//!   idempotent producer and the dead-letter topic; the replay file format, a local
//!   replay server that loops a recording with its times moved to now, the model
//!   that made the shipped recordings and the demo's history backfill; and
//!   [`ingest::run`], the `coinfold ingest` role that wires them together.
//!
//! - [`sentiment`]: VADER with a documented crypto overlay, its evaluation, and the
//!   worker that scores `coinfold.news.articles` into `coinfold.news.sentiment`.
//!
//! - [`projection`]: the runners. A projection is a named fold over the global log or
//!   one Kafka topic that writes its rows and its checkpoint in one transaction per
//!   batch; [`projection::rebuild`] folds into shadow tables and swaps them in;
//!   [`projection::status`] reports checkpoints and lag; [`projection::notify`]
//!   publishes what changed on Redis after each commit.
//!
//! - [`models`]: the read models (portfolios, users, alerts, market, coins, sentiment),
//!   each a fold writing its own tables in schema `read`.
//!
//! - [`queries`]: reads that combine read models at query time: a portfolio's summary
//!   in USD and its owner's base currency, its value over time, the market overview,
//!   coin search and a coin's sentiment.
//!
//! - [`relay`]: the `relay` role, which publishes the event store's outbox to
//!   `coinfold.domain-events` (at least once, in order per aggregate, one relay at a
//!   time by an advisory lock).
//!
//! - [`trace`]: the relay and the log projections continue the trace a command
//!   stored in its events' metadata (`relay.publish` and `projection.apply` spans).
//!
//! - [`alerting`]: the alert evaluator, a worker on the tick stream that sends
//!   `TriggerAlert` through an injected [`alerting::AlertTrigger`].

pub mod alerting;
pub mod global_log;
pub mod ingest;
pub mod models;
pub mod projection;
pub mod queries;
pub mod relay;
pub mod sentiment;
pub mod trace;
