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
//! - [`ingest`]: the normalized [`ingest::Tick`] and total parsers of the real Binance,
//!   Coinbase and CoinGecko messages: every input gives ticks or a reason for the
//!   dead-letter topic, never a panic.
//!
//! The connectors' sockets, the producer, news and sentiment, Kafka consumer groups,
//! checkpointed projection runners, the read models and rebuilds arrive with the rest
//! of issues 4 and 5.

pub mod global_log;
pub mod ingest;
pub mod sentiment;
