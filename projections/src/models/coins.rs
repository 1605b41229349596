//! Coin metadata from `coinfold.market.coins` (CoinGecko's `/coins/markets`): names,
//! ranks, market caps and volumes, for the market overview and coin search.

use serde::Deserialize;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::ingest::COINS_TOPIC;
use crate::ingest::coingecko::CoinMarket;
use crate::projection::{Output, ProjectionError, Rejected, StreamMessage, StreamProjection};

pub const NAME: &str = "coins";
pub const TABLES: &[&str] = &["coins"];

#[derive(Debug, Default, Clone, Copy)]
pub struct Coins;

/// The message as ingest writes it: the CoinGecko entry with a schema version.
#[derive(Deserialize)]
struct CoinMessage {
    #[serde(flatten)]
    coin: CoinMarket,
}

impl StreamProjection for Coins {
    fn name(&self) -> &'static str {
        NAME
    }

    fn topic(&self) -> &'static str {
        COINS_TOPIC
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[StreamMessage],
        out: &mut Output,
    ) -> Result<(), ProjectionError> {
        for message in messages {
            let coin = match serde_json::from_slice::<CoinMessage>(&message.payload) {
                Ok(message) => message.coin,
                Err(error) => {
                    out.rejected
                        .push(Rejected::of(message, format!("not a coin: {error}")));
                    continue;
                }
            };
            // An entry without its update time is dated at the epoch: older than any
            // real one, so it never replaces a dated entry.
            let updated_at = coin.last_updated.unwrap_or(OffsetDateTime::UNIX_EPOCH);
            sqlx::query(
                "INSERT INTO coins (coin, coingecko_id, name, market_cap_rank, market_cap, \
                 total_volume, circulating, price_usd, change_24h_pct, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (coin) DO UPDATE SET coingecko_id = excluded.coingecko_id, \
                 name = excluded.name, market_cap_rank = excluded.market_cap_rank, \
                 market_cap = excluded.market_cap, total_volume = excluded.total_volume, \
                 circulating = excluded.circulating, price_usd = excluded.price_usd, \
                 change_24h_pct = excluded.change_24h_pct, updated_at = excluded.updated_at \
                 WHERE coins.updated_at <= excluded.updated_at",
            )
            .bind(coin.symbol.as_str())
            .bind(coin.id.as_str())
            .bind(&coin.name)
            .bind(coin.rank.and_then(|r| i32::try_from(r).ok()))
            .bind(coin.market_cap)
            .bind(coin.total_volume)
            .bind(coin.circulating_supply)
            .bind(coin.current_price)
            .bind(coin.price_change_percentage_24h.map(|p| p.round_dp(8)))
            .bind(updated_at)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}
