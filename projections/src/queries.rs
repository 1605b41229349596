//! Reads that combine read models at query time: a portfolio's summary (valued in USD
//! and in the owner's base currency at the latest prices or, for a past moment, at the
//! candles of then), its value over time, and the market overview and coin search. The API (issue 6) serves these; they live here so the
//! SQL sits beside the tables it reads.
//!
//! Prices: an alert or a holding has no quote currency of its own beyond USD, so a coin's
//! USD price is its latest price quoted in the first of [`USD_QUOTES`] that has one
//! (USD, then the dollar stablecoins USDT and USDC). A stablecoin is not a dollar (the
//! domain refuses a USDT trade in a USD portfolio, issue 18), so a price in one is
//! converted at that stablecoin's market rate ([`stablecoin_rates`]): its own USD price
//! if it has one, else the cross rate through BTC (`BTC-USD / BTC-USDT`). Without a
//! rate the price is not used and the coin counts as unpriced; never at par.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use coinfold_domain::portfolio::Position;
use coinfold_domain::values::CoinSymbol;

use crate::models::market::INTERVALS;

pub use crate::alerting::USD_QUOTES;

/// One coin of a portfolio, valued.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldingValue {
    pub coin: String,
    pub quantity: Decimal,
    pub cost_basis: Decimal,
    pub realized_gain: Decimal,
    /// None while the coin has no USD price.
    pub price: Option<Decimal>,
    pub value: Option<Decimal>,
    pub unrealized_gain: Option<Decimal>,
    /// Unrealized gain over cost basis, in %.
    pub unrealized_pct: Option<Decimal>,
}

/// Totals in one currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    pub currency: String,
    pub value: Decimal,
    pub cost_basis: Decimal,
    pub realized_gain: Decimal,
    pub unrealized_gain: Decimal,
    /// (realized + unrealized) over everything ever invested (the cost of every
    /// acquisition not voided), in %; None when nothing was invested.
    pub roi_pct: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub portfolio_id: Uuid,
    pub holdings: Vec<HoldingValue>,
    pub usd: Totals,
    /// The same totals in the owner's base currency; None when no rate is known.
    pub base: Option<Totals>,
    /// The held coins with the highest and the lowest unrealized %.
    pub best: Option<String>,
    pub worst: Option<String>,
    /// Coins held that have no price yet (valued at nothing, so the totals say so).
    pub unpriced: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
}

/// USD per unit of each dollar stablecoin in [`USD_QUOTES`] that has a known rate (now,
/// or at `at` from the newest 1-minute candles opened by then, as [`usd_prices`]): the
/// stablecoin's own USD price when there is one, else `BTC-USD / BTC-<stablecoin>`.
pub async fn stablecoin_rates(
    pool: &PgPool,
    at: Option<OffsetDateTime>,
) -> Result<BTreeMap<String, Decimal>, sqlx::Error> {
    let stables: Vec<&str> = USD_QUOTES.iter().copied().filter(|q| *q != "USD").collect();
    // (stablecoin, its own USD price, BTC in USD, BTC in the stablecoin)
    type Row = (String, Option<Decimal>, Option<Decimal>, Option<Decimal>);
    let rows: Vec<Row> = match at {
        None => {
            sqlx::query_as(
                "SELECT q.quote, \
                     (SELECT price FROM read.latest_prices WHERE coin = q.quote AND quote = 'USD'), \
                     (SELECT price FROM read.latest_prices WHERE coin = 'BTC' AND quote = 'USD'), \
                     (SELECT price FROM read.latest_prices WHERE coin = 'BTC' AND quote = q.quote) \
                 FROM unnest($1::text[]) AS q(quote)",
            )
            .bind(&stables)
            .fetch_all(pool)
            .await?
        }
        Some(at) => {
            let close = |coin: &str, quote: &str| {
                format!(
                    "(SELECT close FROM read.candles WHERE coin = {coin} AND quote = {quote} \
                      AND interval = '1m' AND open_time <= $2 ORDER BY open_time DESC LIMIT 1)"
                )
            };
            sqlx::query_as(&format!(
                "SELECT q.quote, {}, {}, {} FROM unnest($1::text[]) AS q(quote)",
                close("q.quote", "'USD'"),
                close("'BTC'", "'USD'"),
                close("'BTC'", "q.quote"),
            ))
            .bind(&stables)
            .bind(at)
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows
        .into_iter()
        .filter_map(|(quote, own, btc_usd, btc_in)| {
            let rate = match (own, btc_usd, btc_in) {
                (Some(own), _, _) => own,
                (None, Some(usd), Some(other)) if !other.is_zero() => usd / other,
                _ => return None,
            };
            Some((quote, rate))
        })
        .collect())
}

/// A price quoted in `quote` (one of [`USD_QUOTES`]) in USD at `rates` (from
/// [`stablecoin_rates`]); None when the stablecoin has no rate.
pub fn to_usd(price: Decimal, quote: &str, rates: &BTreeMap<String, Decimal>) -> Option<Decimal> {
    if quote == "USD" {
        return Some(price);
    }
    rates.get(quote).map(|rate| price * rate)
}

/// The USD prices of `coins` (see the module's note on quotes): the latest, or with
/// `at`, the close of the newest 1-minute candle opened by then. A price in a
/// stablecoin is converted at its rate; coins without a USD price are left out (a
/// stablecoin itself is priced at its rate when it has no price of its own).
pub async fn usd_prices(
    pool: &PgPool,
    coins: &[String],
    at: Option<OffsetDateTime>,
) -> Result<BTreeMap<String, Decimal>, QueryError> {
    let rows: Vec<(String, String, Decimal)> = match at {
        None => {
            sqlx::query_as(
                "SELECT DISTINCT ON (coin) coin, quote, price FROM read.latest_prices \
                 WHERE coin = ANY($1) AND quote = ANY($2) \
                 ORDER BY coin, array_position($2, quote)",
            )
            .bind(coins)
            .bind(USD_QUOTES)
            .fetch_all(pool)
            .await?
        }
        Some(at) => {
            sqlx::query_as(
                "SELECT c.coin, p.quote, p.close FROM unnest($1::text[]) AS c(coin) \
                 JOIN LATERAL ( \
                     SELECT quote, close FROM read.candles \
                     WHERE coin = c.coin AND quote = ANY($2) AND interval = '1m' AND open_time <= $3 \
                     ORDER BY open_time DESC, array_position($2, quote) LIMIT 1) p ON true",
            )
            .bind(coins)
            .bind(USD_QUOTES)
            .bind(at)
            .fetch_all(pool)
            .await?
        }
    };
    let rates = stablecoin_rates(pool, at).await?;
    let mut prices: BTreeMap<String, Decimal> = rows
        .into_iter()
        .filter_map(|(coin, quote, price)| Some((coin, to_usd(price, &quote, &rates)?)))
        .collect();
    for coin in coins {
        if let Some(rate) = rates.get(coin) {
            prices.entry(coin.clone()).or_insert(*rate);
        }
    }
    Ok(prices)
}

/// How many USD one unit of `currency` is worth (now, or at `at` as [`usd_prices`]):
/// 1 for USD; a coin's USD price (a stablecoin's is its market rate, not 1); a fiat
/// currency through BTC's price in it (`BTC-USD / BTC-EUR`; always the latest).
pub async fn usd_per_unit(
    pool: &PgPool,
    currency: &str,
    at: Option<OffsetDateTime>,
) -> Result<Option<Decimal>, QueryError> {
    if currency == "USD" {
        return Ok(Some(Decimal::ONE));
    }
    let prices = usd_prices(pool, &[currency.to_owned(), "BTC".to_owned()], at).await?;
    if let Some(price) = prices.get(currency) {
        return Ok(Some(*price));
    }
    let btc_in: Option<Decimal> = sqlx::query_scalar(
        "SELECT price FROM read.latest_prices WHERE coin = 'BTC' AND quote = $1",
    )
    .bind(currency)
    .fetch_optional(pool)
    .await?;
    Ok(match (prices.get("BTC"), btc_in) {
        (Some(usd), Some(other)) if !other.is_zero() => Some(*usd / other),
        _ => None,
    })
}

/// `part` as a percentage of `whole`; None when `whole` is zero or the percentage is
/// more than a decimal holds (a gain over a cost of 1e-18).
fn pct(part: Decimal, whole: Decimal) -> Option<Decimal> {
    if whole.is_zero() {
        return None;
    }
    part.checked_div(whole)?
        .checked_mul(Decimal::ONE_HUNDRED)
        .map(|p| p.round_dp(4))
}

/// A sum or product of a portfolio's figures that no decimal holds: an answer in words
/// rather than a panic.
fn too_large(what: &str) -> QueryError {
    QueryError::Invalid(format!(
        "{what} is larger than a decimal holds (about 7.9e28)"
    ))
}

/// The portfolio valued now, from the read model.
pub async fn portfolio_summary(pool: &PgPool, portfolio_id: Uuid) -> Result<Summary, QueryError> {
    let owner: Option<(String,)> = sqlx::query_as(
        "SELECT coalesce(u.base_currency, 'USD') FROM read.portfolios p \
         LEFT JOIN read.users u ON u.user_id = p.owner_id WHERE p.portfolio_id = $1",
    )
    .bind(portfolio_id)
    .fetch_optional(pool)
    .await?;
    let Some((base_currency,)) = owner else {
        return Err(QueryError::NotFound);
    };
    let rows: Vec<(String, Decimal, Decimal, Decimal)> = sqlx::query_as(
        "SELECT coin, quantity, cost_basis, realized_gain FROM read.portfolio_holdings \
         WHERE portfolio_id = $1 ORDER BY coin",
    )
    .bind(portfolio_id)
    .fetch_all(pool)
    .await?;
    let invested: Decimal = sqlx::query_scalar(
        "SELECT coalesce(sum(cost), 0) FROM read.portfolio_transactions \
         WHERE portfolio_id = $1 AND NOT voided AND kind IN ('BUY', 'TRANSFER_IN')",
    )
    .bind(portfolio_id)
    .fetch_one(pool)
    .await?;
    let positions = rows
        .into_iter()
        .map(|(coin, quantity, cost_basis, realized_gain)| {
            Ok(Position {
                coin: CoinSymbol::parse(&coin).map_err(|e| QueryError::Invalid(e.to_string()))?,
                quantity,
                cost_basis,
                realized_gain,
            })
        })
        .collect::<Result<_, QueryError>>()?;
    value_holdings(
        pool,
        portfolio_id,
        &base_currency,
        positions,
        invested,
        None,
    )
    .await
}

/// Values a portfolio's holdings in USD and in `base_currency`: at the latest prices,
/// or with `at`, at the prices of then (an auditor's view of a past moment). Money stays
/// `Decimal` throughout; only the base-currency conversion divides by a rate (rounded
/// to 8 places). `invested` is what ROI is measured against.
pub async fn value_holdings(
    pool: &PgPool,
    portfolio_id: Uuid,
    base_currency: &str,
    positions: Vec<Position>,
    invested: Decimal,
    at: Option<OffsetDateTime>,
) -> Result<Summary, QueryError> {
    let coins: Vec<String> = positions
        .iter()
        .map(|p| p.coin.as_str().to_owned())
        .collect();
    let prices = usd_prices(pool, &coins, at).await?;
    let mut holdings = Vec::with_capacity(positions.len());
    let mut unpriced = Vec::new();
    let mut usd = Totals {
        currency: "USD".to_owned(),
        value: Decimal::ZERO,
        cost_basis: Decimal::ZERO,
        realized_gain: Decimal::ZERO,
        unrealized_gain: Decimal::ZERO,
        roi_pct: None,
    };
    for Position {
        coin,
        quantity,
        cost_basis,
        realized_gain,
    } in positions
    {
        let coin = coin.as_str().to_owned();
        let price = prices.get(&coin).copied();
        let held = !quantity.is_zero();
        let value = match price {
            Some(p) => Some(
                p.checked_mul(quantity)
                    .ok_or_else(|| too_large(&format!("the value of the {coin} held")))?
                    .round_dp(8),
            ),
            None => None,
        };
        let unrealized = match value {
            Some(v) => Some(
                v.checked_sub(cost_basis)
                    .ok_or_else(|| too_large(&format!("the unrealized gain on {coin}")))?,
            ),
            None => None,
        };
        if held && price.is_none() {
            unpriced.push(coin.clone());
        }
        let add = |total: Decimal, more: Decimal, what: &str| {
            total.checked_add(more).ok_or_else(|| too_large(what))
        };
        usd.value = add(
            usd.value,
            value.unwrap_or_default(),
            "the portfolio's value",
        )?;
        usd.cost_basis = add(usd.cost_basis, cost_basis, "the portfolio's cost basis")?;
        usd.realized_gain = add(usd.realized_gain, realized_gain, "the realized gain")?;
        usd.unrealized_gain = add(
            usd.unrealized_gain,
            unrealized.unwrap_or_default(),
            "the unrealized gain",
        )?;
        holdings.push(HoldingValue {
            unrealized_pct: unrealized.and_then(|u| pct(u, cost_basis)),
            coin,
            quantity,
            cost_basis,
            realized_gain,
            price,
            value,
            unrealized_gain: unrealized,
        });
    }
    usd.roi_pct = usd
        .realized_gain
        .checked_add(usd.unrealized_gain)
        .and_then(|gain| pct(gain, invested));
    let ranked: Vec<&HoldingValue> = holdings
        .iter()
        .filter(|h| !h.quantity.is_zero() && h.unrealized_pct.is_some())
        .collect();
    let best = ranked
        .iter()
        .max_by_key(|h| h.unrealized_pct)
        .map(|h| h.coin.clone());
    let worst = ranked
        .iter()
        .min_by_key(|h| h.unrealized_pct)
        .map(|h| h.coin.clone());
    let base = match usd_per_unit(pool, base_currency, at).await? {
        Some(rate) if !rate.is_zero() => {
            let convert = |usd: Decimal| (usd / rate).round_dp(8);
            Some(Totals {
                currency: base_currency.to_owned(),
                value: convert(usd.value),
                cost_basis: convert(usd.cost_basis),
                realized_gain: convert(usd.realized_gain),
                unrealized_gain: convert(usd.unrealized_gain),
                roi_pct: usd.roi_pct,
            })
        }
        _ => None,
    };
    Ok(Summary {
        portfolio_id,
        holdings,
        usd,
        base,
        best,
        worst,
        unpriced,
    })
}

/// The portfolio's USD value at each step from `from` to `to` (at most 1,000 points):
/// what it held then (transactions executed by then, voided ones left out) at the close
/// of the latest candle of `interval` that had opened by then. A close in a stablecoin
/// is converted at that step's rate from the same interval's candles opened by then
/// (the stablecoin's own USD close, else BTC's USD close over its close in the
/// stablecoin); a coin without a rate then adds nothing, as one without a candle.
pub async fn portfolio_value_history(
    pool: &PgPool,
    portfolio_id: Uuid,
    interval: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<(OffsetDateTime, Decimal)>, QueryError> {
    let Some(&(_, seconds)) = INTERVALS.iter().find(|(name, _)| *name == interval) else {
        // Not echoed: the value may be anything, of any size.
        let known: Vec<&str> = INTERVALS.iter().map(|(name, _)| *name).collect();
        return Err(QueryError::Invalid(format!(
            "unknown interval: use one of {}",
            known.join(", ")
        )));
    };
    if to < from || (to - from).whole_seconds() / seconds > 1000 {
        return Err(QueryError::Invalid(
            "the range must run forward and hold at most 1000 steps".to_owned(),
        ));
    }
    let rows: Vec<(OffsetDateTime, Option<Decimal>)> = sqlx::query_as(
        "WITH steps AS (SELECT generate_series($2::timestamptz, $3::timestamptz, make_interval(secs => $4)) AS at), \
         held AS ( \
             SELECT s.at, t.coin, \
                    sum(CASE WHEN t.kind IN ('BUY', 'TRANSFER_IN') THEN t.quantity ELSE -t.quantity END) AS quantity \
             FROM steps s JOIN read.portfolio_transactions t \
               ON t.portfolio_id = $1 AND NOT t.voided AND t.executed_at <= s.at \
             GROUP BY s.at, t.coin) \
         SELECT s.at, sum(h.quantity * u.close) \
         FROM steps s LEFT JOIN held h ON h.at = s.at \
         LEFT JOIN LATERAL ( \
             SELECT quote, close FROM read.candles \
             WHERE coin = h.coin AND quote = ANY($5) AND interval = $6 AND open_time <= s.at \
             ORDER BY open_time DESC, array_position($5, quote) LIMIT 1) c ON true \
         LEFT JOIN LATERAL ( \
             SELECT CASE WHEN c.quote = 'USD' THEN c.close ELSE coalesce( \
                 c.close * (SELECT close FROM read.candles WHERE coin = c.quote AND quote = 'USD' \
                            AND interval = $6 AND open_time <= s.at ORDER BY open_time DESC LIMIT 1), \
                 c.close * (SELECT close FROM read.candles WHERE coin = 'BTC' AND quote = 'USD' \
                            AND interval = $6 AND open_time <= s.at ORDER BY open_time DESC LIMIT 1) \
                   / nullif((SELECT close FROM read.candles WHERE coin = 'BTC' AND quote = c.quote \
                            AND interval = $6 AND open_time <= s.at ORDER BY open_time DESC LIMIT 1), 0)) \
             END AS close) u ON true \
         GROUP BY s.at ORDER BY s.at",
    )
    .bind(portfolio_id)
    .bind(from)
    .bind(to)
    .bind(seconds as f64)
    .bind(USD_QUOTES)
    .bind(interval)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(at, value)| (at, value.unwrap_or_default().round_dp(8)))
        .collect())
}

/// A coin in the overview or a search.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CoinRow {
    pub coin: String,
    pub name: String,
    pub market_cap_rank: Option<i32>,
    pub market_cap: Option<Decimal>,
    pub total_volume: Option<Decimal>,
    pub price_usd: Option<Decimal>,
    pub change_24h_pct: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    pub total_market_cap: Decimal,
    pub total_volume: Decimal,
    pub coins: i64,
    pub gainers: Vec<CoinRow>,
    pub losers: Vec<CoinRow>,
}

const COIN_COLUMNS: &str =
    "coin, name, market_cap_rank, market_cap, total_volume, price_usd, change_24h_pct";

/// Totals over the known coins and the `top` biggest 24 h gainers (a positive change)
/// and losers (a negative one).
pub async fn market_overview(pool: &PgPool, top: i64) -> Result<Overview, QueryError> {
    let top = top.clamp(1, 100);
    let (total_market_cap, total_volume, coins): (Decimal, Decimal, i64) = sqlx::query_as(
        "SELECT coalesce(sum(market_cap), 0), coalesce(sum(total_volume), 0), count(*) FROM read.coins",
    )
    .fetch_one(pool)
    .await?;
    // A gainer went up and a loser down: with few coins moving one way, a list is
    // shorter than `top` rather than padded with coins that moved the other way.
    let ranked = |sign: &str, order: &str| {
        format!(
            "SELECT {COIN_COLUMNS} FROM read.coins WHERE change_24h_pct {sign} 0 \
             ORDER BY change_24h_pct {order}, coin LIMIT $1"
        )
    };
    let gainers = sqlx::query_as(&ranked(">", "DESC"))
        .bind(top)
        .fetch_all(pool)
        .await?;
    let losers = sqlx::query_as(&ranked("<", "ASC"))
        .bind(top)
        .fetch_all(pool)
        .await?;
    Ok(Overview {
        total_market_cap,
        total_volume,
        coins,
        gainers,
        losers,
    })
}

/// Coins matching `text`, best first: the exact symbol, then symbols starting with it,
/// then names starting with it, then names with a word starting with it; within each,
/// by market-cap rank. `after` is the number of results already seen (the cursor).
pub async fn search_coins(
    pool: &PgPool,
    text: &str,
    first: i64,
    after: i64,
) -> Result<Vec<CoinRow>, QueryError> {
    let text = text.trim().to_lowercase();
    if text.is_empty() || text.chars().count() > 50 {
        return Err(QueryError::Invalid(
            "a search needs 1 to 50 characters".to_owned(),
        ));
    }
    // LIKE's own characters in the input match themselves.
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let rows = sqlx::query_as(&format!(
        "SELECT {COIN_COLUMNS} FROM ( \
             SELECT *, CASE \
                 WHEN lower(coin) = $1 THEN 0 \
                 WHEN lower(coin) LIKE $2 || '%' THEN 1 \
                 WHEN lower(name) LIKE $2 || '%' THEN 2 \
                 ELSE 3 END AS class \
             FROM read.coins \
             WHERE lower(coin) LIKE $2 || '%' OR lower(name) LIKE $2 || '%' \
                OR lower(name) LIKE '% ' || $2 || '%') ranked \
         ORDER BY class, market_cap_rank NULLS LAST, coin LIMIT $3 OFFSET $4"
    ))
    .bind(&text)
    .bind(&escaped)
    .bind(first.clamp(1, 101))
    .bind(after.max(0))
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// A coin's sentiment: the mean score and article counts over the last `hours` before
/// `now`, and the hourly trend (mean score per hour, oldest first).
/// Coins by market-cap rank (unranked last), `first` of them from offset `after`.
pub async fn list_coins(pool: &PgPool, first: i64, after: i64) -> Result<Vec<CoinRow>, QueryError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COIN_COLUMNS} FROM read.coins \
         ORDER BY market_cap_rank NULLS LAST, coin LIMIT $1 OFFSET $2"
    ))
    .bind(first.clamp(1, 101))
    .bind(after.max(0))
    .fetch_all(pool)
    .await?)
}

/// One coin, if CoinGecko lists it.
pub async fn coin(pool: &PgPool, symbol: &str) -> Result<Option<CoinRow>, QueryError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COIN_COLUMNS} FROM read.coins WHERE coin = $1"
    ))
    .bind(symbol)
    .fetch_optional(pool)
    .await?)
}

#[derive(Debug, Clone, PartialEq)]
pub struct SentimentSummary {
    pub coin: String,
    pub score: Option<f64>,
    pub articles: i64,
    pub positive: i64,
    pub negative: i64,
    pub neutral: i64,
    pub hourly: Vec<(OffsetDateTime, f64, i64)>,
}

pub async fn sentiment(
    pool: &PgPool,
    coin: &str,
    now: OffsetDateTime,
    hours: i64,
) -> Result<SentimentSummary, QueryError> {
    let hours = hours.clamp(1, 24 * 30);
    let rows: Vec<(OffsetDateTime, i64, i64, i64, i64, f64)> = sqlx::query_as(
        "SELECT hour, articles, positive, negative, neutral, score_sum FROM read.sentiment_hourly \
         WHERE coin = $1 AND hour > $2 AND hour <= $3 ORDER BY hour",
    )
    .bind(coin)
    .bind(now - time::Duration::hours(hours))
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    let mut sum = 0.0;
    let mut hourly = Vec::with_capacity(rows.len());
    for (hour, articles, positive, negative, neutral, score_sum) in &rows {
        *totals.entry("articles").or_default() += articles;
        *totals.entry("positive").or_default() += positive;
        *totals.entry("negative").or_default() += negative;
        *totals.entry("neutral").or_default() += neutral;
        sum += score_sum;
        if *articles > 0 {
            hourly.push((*hour, score_sum / *articles as f64, *articles));
        }
    }
    let articles = totals.get("articles").copied().unwrap_or(0);
    Ok(SentimentSummary {
        coin: coin.to_owned(),
        score: (articles > 0).then(|| sum / articles as f64),
        articles,
        positive: totals.get("positive").copied().unwrap_or(0),
        negative: totals.get("negative").copied().unwrap_or(0),
        neutral: totals.get("neutral").copied().unwrap_or(0),
        hourly,
    })
}

/// The correlation matrix of the coins' log returns over the last `window` candles of
/// `interval` that all of them have (USD quotes), in the order given; 1 on the
/// diagonal, None where a coin was flat over the window. Folded by the domain's
/// incremental [`CorrelationMatrix`](coinfold_domain::indicators::CorrelationMatrix).
pub async fn correlation(
    pool: &PgPool,
    coins: &[String],
    interval: &str,
    window: usize,
) -> Result<Vec<Vec<Option<f64>>>, QueryError> {
    use coinfold_domain::indicators::CorrelationMatrix;
    use rust_decimal::prelude::ToPrimitive;

    if !(2..=20).contains(&coins.len()) || !(2..=1000).contains(&window) {
        return Err(QueryError::Invalid(
            "a correlation needs 2 to 20 coins and a window of 2 to 1000 candles".to_owned(),
        ));
    }
    // The newest `window + 1` times at which every coin has a candle, oldest first.
    let rows: Vec<(OffsetDateTime, String, Decimal)> = sqlx::query_as(
        "WITH closes AS ( \
             SELECT DISTINCT ON (coin, open_time) open_time, coin, close FROM read.candles \
             WHERE coin = ANY($1) AND quote = ANY($2) AND interval = $3 \
             ORDER BY coin, open_time, array_position($2, quote)), \
         shared AS ( \
             SELECT open_time FROM closes GROUP BY open_time \
             HAVING count(*) = cardinality($1) ORDER BY open_time DESC LIMIT $4) \
         SELECT c.open_time, c.coin, c.close FROM closes c JOIN shared USING (open_time) \
         ORDER BY c.open_time",
    )
    .bind(coins)
    .bind(USD_QUOTES)
    .bind(interval)
    .bind(i64::try_from(window + 1).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    let mut matrix = CorrelationMatrix::of_log_returns(coins.to_vec(), window)
        .map_err(|e| QueryError::Invalid(e.to_string()))?;
    let mut by_time: BTreeMap<OffsetDateTime, Vec<f64>> = BTreeMap::new();
    for (at, coin, close) in rows {
        let row = by_time
            .entry(at)
            .or_insert_with(|| vec![f64::NAN; coins.len()]);
        if let Some(i) = coins.iter().position(|c| *c == coin) {
            row[i] = close.to_f64().unwrap_or(f64::NAN);
        }
    }
    for row in by_time.values() {
        matrix
            .update(row)
            .map_err(|e| QueryError::Invalid(e.to_string()))?;
    }
    Ok(matrix.matrix())
}
