//! Every projection by name: what `coinfold project` runs and what
//! `coinfold projections status|rebuild NAME` knows.

use crate::ingest::{COINS_TOPIC, SENTIMENT_TOPIC, TICKS_TOPIC};
use crate::models::{alerts, coins, market, portfolios, sentiment, users};

/// Where a projection reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    EventStore,
    /// A topic, without the deployment's prefix.
    Kafka(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub name: &'static str,
    pub source: Source,
    pub tables: &'static [&'static str],
}

pub const ALL: &[Entry] = &[
    Entry {
        name: portfolios::NAME,
        source: Source::EventStore,
        tables: portfolios::TABLES,
    },
    Entry {
        name: users::NAME,
        source: Source::EventStore,
        tables: users::TABLES,
    },
    Entry {
        name: alerts::NAME,
        source: Source::EventStore,
        tables: alerts::TABLES,
    },
    Entry {
        name: market::NAME,
        source: Source::Kafka(TICKS_TOPIC),
        tables: market::TABLES,
    },
    Entry {
        name: coins::NAME,
        source: Source::Kafka(COINS_TOPIC),
        tables: coins::TABLES,
    },
    Entry {
        name: sentiment::NAME,
        source: Source::Kafka(SENTIMENT_TOPIC),
        tables: sentiment::TABLES,
    },
];

pub fn find(name: &str) -> Result<&'static Entry, super::ProjectionError> {
    ALL.iter().find(|e| e.name == name).ok_or_else(|| {
        super::ProjectionError::Unknown(
            name.to_owned(),
            ALL.iter().map(|e| e.name).collect::<Vec<_>>().join(", "),
        )
    })
}

/// Tables that are a fold's working memory rather than something a reader sees; a
/// comparison of read models leaves them out (see `tick_seen` in the migration).
pub const CACHE_TABLES: &[&str] = &["tick_seen"];
