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
//! - [`alert`]: the Alert aggregate: a validated condition on a coin; triggering is
//!   idempotent (one-shot until re-armed, recurring after a cooldown).
//! - [`indicators`]: SMA, EMA, RSI, MACD, Bollinger bands, volatility and correlation
//!   over candle closes, updated one candle at a time with work independent of the
//!   window (compensated rolling sums), and state a projection can persist and resume.
//!
//! - [`upcasting`]: stored events of older shapes brought to the current one, for the
//!   write side and the projections alike.
//!
//! This crate may depend only on serde, thiserror, uuid, time, rust_decimal and
//! cqrs-es (and serde_json, which cqrs-es brings, for [`upcasting`]).

/// Implements `cqrs_es::Aggregate` for an aggregate with `decide` and `evolve`: `handle`
/// writes what `decide` returns (cqrs-es applies each event as it is written) and
/// `apply` calls `evolve`. It adds no logic, so there is one place to see that.
macro_rules! cqrs_aggregate {
    ($aggregate:ty, $name:literal, $command:ty, $event:ty, $error:ty) => {
        impl cqrs_es::Aggregate for $aggregate {
            const TYPE: &'static str = $name;
            type Command = $command;
            type Event = $event;
            type Error = $error;
            type Services = ();

            async fn handle(
                &mut self,
                command: Self::Command,
                _services: &Self::Services,
                sink: &cqrs_es::event_sink::EventSink<Self>,
            ) -> Result<(), Self::Error> {
                for event in self.decide(command)? {
                    sink.write(event, self).await;
                }
                Ok(())
            }

            fn apply(&mut self, event: Self::Event) {
                self.evolve(&event);
            }
        }
    };
}

pub mod alert;
pub mod indicators;
pub mod portfolio;
pub mod upcasting;
pub mod user;
pub mod values;
