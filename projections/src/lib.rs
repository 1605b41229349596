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
//! Kafka consumer groups, checkpointed projection runners, the read models, rebuilds and
//! the market and news connectors arrive with the streams and read-side work
//! (issues 4 and 5).

pub mod global_log;
