//! Market data, open to every caller (anonymous ones too, within the per-IP rate
//! limit): `coins`, `coin`, `price`, `prices`, `candles`, `indicators`, `correlation`,
//! `marketOverview`, `sentiment`, `sentimentTrend`, `news`. All of it comes from the
//! market, coins and sentiment read models.
//!
//! Prices are in USD unless a `quote` is named: the first of USD, USDT and USDC that
//! the coin has (see `coinfold_projections::queries`).

use async_graphql::connection::{Connection, OpaqueCursor};
use async_graphql::{Context, Object, SimpleObject};
use coinfold_domain::values::{CoinSymbol, QuoteCurrency};
use coinfold_projections::models::market::INTERVALS;
use coinfold_projections::queries::{self, CoinRow, QueryError, USD_QUOTES};
use rust_decimal::Decimal;
use sqlx::FromRow;
use time::OffsetDateTime;

use super::api;
use super::error::ApiError;
use super::page::Page;
use super::portfolio::field;

/// A coin CoinGecko lists.
#[derive(SimpleObject)]
pub struct Coin {
    pub symbol: String,
    pub name: String,
    pub market_cap_rank: Option<i32>,
    pub market_cap: Option<Decimal>,
    pub total_volume: Option<Decimal>,
    pub price_usd: Option<Decimal>,
    pub change_24h_pct: Option<Decimal>,
    /// Its place in the list it was read from (the cursor).
    #[graphql(skip)]
    offset: i64,
}

impl From<CoinRow> for Coin {
    fn from(row: CoinRow) -> Self {
        Self {
            symbol: row.coin,
            name: row.name,
            market_cap_rank: row.market_cap_rank,
            market_cap: row.market_cap,
            total_volume: row.total_volume,
            price_usd: row.price_usd,
            change_24h_pct: row.change_24h_pct,
            offset: 0,
        }
    }
}

/// A coin's latest price in one quote currency.
#[derive(SimpleObject, FromRow)]
pub struct Price {
    pub coin: String,
    pub quote: String,
    pub price: Decimal,
    /// Which exchange or feed said so.
    pub source: String,
    pub exchange_time: OffsetDateTime,
    pub volume_24h: Option<Decimal>,
}

#[derive(SimpleObject, FromRow)]
pub struct Candle {
    pub open_time: OffsetDateTime,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    pub trades: i64,
}

/// Indicator values at a closed candle (null until their window has filled).
#[derive(SimpleObject, FromRow)]
pub struct IndicatorPoint {
    pub open_time: OffsetDateTime,
    pub close: f64,
    pub sma_20: Option<f64>,
    pub ema_20: Option<f64>,
    pub rsi_14: Option<f64>,
    pub macd: Option<f64>,
    pub macd_signal: Option<f64>,
    pub macd_histogram: Option<f64>,
    pub bollinger_mid: Option<f64>,
    pub bollinger_upper: Option<f64>,
    pub bollinger_lower: Option<f64>,
    /// Standard deviation of the last 30 log returns.
    pub volatility_30: Option<f64>,
}

#[derive(SimpleObject)]
pub struct MarketOverview {
    pub total_market_cap: Decimal,
    pub total_volume: Decimal,
    pub coins: i64,
    pub gainers: Vec<Coin>,
    pub losers: Vec<Coin>,
}

/// News sentiment about a coin over recent hours.
#[derive(SimpleObject)]
pub struct Sentiment {
    pub coin: String,
    /// The mean compound score (−1 to 1); null without articles.
    pub score: Option<f64>,
    pub articles: i64,
    pub positive: i64,
    pub negative: i64,
    pub neutral: i64,
}

#[derive(SimpleObject)]
pub struct SentimentPoint {
    pub hour: OffsetDateTime,
    pub score: f64,
    pub articles: i64,
}

/// A scored article.
#[derive(SimpleObject, FromRow)]
pub struct Article {
    pub id: String,
    pub coin: String,
    pub title: String,
    pub url: String,
    pub source: String,
    pub published_at: Option<OffsetDateTime>,
    pub scored_at: OffsetDateTime,
    pub score: f64,
    /// POSITIVE, NEGATIVE or NEUTRAL.
    pub label: String,
}

fn query_error(field: &str, error: QueryError) -> ApiError {
    match error {
        QueryError::Invalid(message) => ApiError::validation(field, message),
        QueryError::NotFound => ApiError::NotFound("coin"),
        QueryError::Database(e) => ApiError::internal(e),
    }
}

fn symbol(raw: &str) -> Result<String, ApiError> {
    Ok(field("coin", CoinSymbol::parse(raw))?.as_str().to_owned())
}

fn interval(raw: &str) -> Result<String, ApiError> {
    INTERVALS
        .iter()
        .any(|(name, _)| *name == raw)
        .then(|| raw.to_owned())
        .ok_or_else(|| ApiError::validation("interval", "one of 1m, 5m, 1h, 1d"))
}

/// The quote a coin's series is read in: the one named, else the first dollar quote
/// the series has.
async fn series_quote(
    ctx: &Context<'_>,
    coin: &str,
    interval: &str,
    quote: Option<String>,
) -> Result<String, ApiError> {
    if let Some(quote) = quote {
        return Ok(field("quote", QuoteCurrency::parse(&quote))?
            .as_str()
            .to_owned());
    }
    let found: Option<String> = sqlx::query_scalar(
        "SELECT quote FROM unnest($3::text[]) WITH ORDINALITY AS q(quote, n) \
         WHERE EXISTS (SELECT 1 FROM read.candles c \
                       WHERE c.coin = $1 AND c.interval = $2 AND c.quote = q.quote) \
         ORDER BY n LIMIT 1",
    )
    .bind(coin)
    .bind(interval)
    .bind(USD_QUOTES)
    .fetch_optional(&api(ctx).pool)
    .await
    .map_err(ApiError::internal)?;
    Ok(found.unwrap_or_else(|| "USD".to_owned()))
}

/// The cursor of a list read newest first, before its first page.
const NEWEST: i64 = i64::MAX;

fn before_time(page_after: Option<i64>) -> OffsetDateTime {
    page_after
        .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH + time::Duration::days(365 * 1000))
}

fn nanos(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(NEWEST)
}

/// A page of one coin's series (candles or indicators) of one interval and quote,
/// newest first; the cursor is the open time.
struct Series {
    coin: String,
    interval: String,
    quote: String,
    page: Page<i64>,
}

impl Series {
    async fn new(
        ctx: &Context<'_>,
        coin: &str,
        interval: &str,
        quote: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Self, ApiError> {
        let (coin, interval) = (symbol(coin)?, self::interval(interval)?);
        let page = Page::new(first, after)?;
        let quote = series_quote(ctx, &coin, &interval, quote).await?;
        Ok(Self {
            coin,
            interval,
            quote,
            page,
        })
    }

    async fn read<T>(
        &self,
        ctx: &Context<'_>,
        columns: &str,
        table: &str,
        open_time: impl Fn(&T) -> OffsetDateTime,
    ) -> Result<Connection<OpaqueCursor<i64>, T>, ApiError>
    where
        T: async_graphql::OutputType + for<'r> FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let rows: Vec<T> = sqlx::query_as(&format!(
            "SELECT {columns} FROM {table} \
             WHERE coin = $1 AND quote = $2 AND interval = $3 AND open_time < $4 \
             ORDER BY open_time DESC LIMIT $5"
        ))
        .bind(&self.coin)
        .bind(&self.quote)
        .bind(&self.interval)
        .bind(before_time(self.page.after))
        .bind(self.page.fetch())
        .fetch_all(&api(ctx).pool)
        .await
        .map_err(ApiError::internal)?;
        Ok(self.page.connection(rows, |row| nanos(open_time(row))))
    }
}

#[derive(Default)]
pub struct MarketQuery;

#[Object]
impl MarketQuery {
    /// Coins by market-cap rank, or ranked for `search` (symbol, then name matches).
    async fn coins(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<OpaqueCursor<i64>, Coin>, ApiError> {
        let page: Page<i64> = Page::new(first, after)?;
        // A cursor is the offset of the last coin seen: one from this list is never
        // negative nor the largest i64 (its successor would overflow).
        let offset = match page.after {
            None => 0,
            Some(seen) => seen
                .checked_add(1)
                .filter(|next| *next > 0)
                .ok_or_else(|| ApiError::validation("after", "not a cursor of this list"))?,
        };
        let pool = &api(ctx).pool;
        let rows: Vec<CoinRow> = match search {
            Some(text) => queries::search_coins(pool, &text, page.fetch(), offset)
                .await
                .map_err(|e| query_error("search", e))?,
            None => queries::list_coins(pool, page.fetch(), offset)
                .await
                .map_err(|e| query_error("first", e))?,
        };
        let rows: Vec<Coin> = rows
            .into_iter()
            .zip(offset..)
            .map(|(row, n)| Coin {
                offset: n,
                ..row.into()
            })
            .collect();
        Ok(page.connection(rows, |c| c.offset))
    }

    /// One coin, or null when CoinGecko does not list it.
    async fn coin(&self, ctx: &Context<'_>, symbol: String) -> Result<Option<Coin>, ApiError> {
        let symbol = self::symbol(&symbol)?;
        let row = queries::coin(&api(ctx).pool, &symbol)
            .await
            .map_err(|e| query_error("symbol", e))?;
        Ok(row.map(Into::into))
    }

    /// A coin's latest price in `quote` (by default its dollar price); null when none.
    async fn price(
        &self,
        ctx: &Context<'_>,
        coin: String,
        quote: Option<String>,
    ) -> Result<Option<Price>, ApiError> {
        let coin = symbol(&coin)?;
        let quotes: Vec<String> = match quote {
            Some(q) => vec![
                field("quote", QuoteCurrency::parse(&q))?
                    .as_str()
                    .to_owned(),
            ],
            None => USD_QUOTES.iter().map(|q| (*q).to_owned()).collect(),
        };
        sqlx::query_as(
            "SELECT coin, quote, price, source, exchange_time, volume_24h FROM read.latest_prices \
             WHERE coin = $1 AND quote = ANY($2) ORDER BY array_position($2, quote) LIMIT 1",
        )
        .bind(coin)
        .bind(quotes)
        .fetch_optional(&api(ctx).pool)
        .await
        .map_err(ApiError::internal)
    }

    /// The dollar prices of up to 50 coins (coins without one are left out).
    async fn prices(&self, ctx: &Context<'_>, coins: Vec<String>) -> Result<Vec<Price>, ApiError> {
        if coins.is_empty() || coins.len() > 50 {
            return Err(ApiError::validation("coins", "name 1 to 50 coins"));
        }
        let coins = coins
            .iter()
            .map(|c| symbol(c))
            .collect::<Result<Vec<_>, _>>()?;
        sqlx::query_as(
            "SELECT DISTINCT ON (coin) coin, quote, price, source, exchange_time, volume_24h \
             FROM read.latest_prices WHERE coin = ANY($1) AND quote = ANY($2) \
             ORDER BY coin, array_position($2, quote)",
        )
        .bind(coins)
        .bind(USD_QUOTES)
        .fetch_all(&api(ctx).pool)
        .await
        .map_err(ApiError::internal)
    }

    /// A coin's candles of `interval` (1m, 5m, 1h, 1d), newest first.
    async fn candles(
        &self,
        ctx: &Context<'_>,
        coin: String,
        interval: String,
        quote: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<OpaqueCursor<i64>, Candle>, ApiError> {
        let series = Series::new(ctx, &coin, &interval, quote, first, after).await?;
        series
            .read(
                ctx,
                "open_time, open, high, low, close, volume, trades",
                "read.candles",
                |c: &Candle| c.open_time,
            )
            .await
    }

    /// Indicators at each closed candle of `interval`, newest first: SMA(20), EMA(20),
    /// RSI(14), MACD(12, 26, 9), Bollinger(20, 2), volatility(30).
    async fn indicators(
        &self,
        ctx: &Context<'_>,
        coin: String,
        interval: String,
        quote: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<OpaqueCursor<i64>, IndicatorPoint>, ApiError> {
        let series = Series::new(ctx, &coin, &interval, quote, first, after).await?;
        series
            .read(
                ctx,
                "open_time, close, sma_20, ema_20, rsi_14, macd, macd_signal, macd_histogram, \
                 bollinger_mid, bollinger_upper, bollinger_lower, volatility_30",
                "read.indicators",
                |p: &IndicatorPoint| p.open_time,
            )
            .await
    }

    /// The correlation matrix of the coins' log returns over the last `window` candles
    /// they share (2 to 20 coins, rows and columns in the order given; null where a
    /// series does not vary).
    async fn correlation(
        &self,
        ctx: &Context<'_>,
        coins: Vec<String>,
        #[graphql(default_with = "\"1h\".to_owned()")] interval: String,
        #[graphql(default = 30)] window: u32,
    ) -> Result<Vec<Vec<Option<f64>>>, ApiError> {
        let coins = coins
            .iter()
            .map(|c| symbol(c))
            .collect::<Result<Vec<_>, _>>()?;
        let interval = self::interval(&interval)?;
        queries::correlation(
            &api(ctx).pool,
            &coins,
            &interval,
            usize::try_from(window).unwrap_or(usize::MAX),
        )
        .await
        .map_err(|e| query_error("coins", e))
    }

    /// Market totals and the `top` gainers and losers over 24 hours.
    async fn market_overview(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 5)] top: i32,
    ) -> Result<MarketOverview, ApiError> {
        if !(1..=100).contains(&top) {
            return Err(ApiError::validation("top", "must be between 1 and 100"));
        }
        let overview = queries::market_overview(&api(ctx).pool, i64::from(top))
            .await
            .map_err(|e| query_error("top", e))?;
        Ok(MarketOverview {
            total_market_cap: overview.total_market_cap,
            total_volume: overview.total_volume,
            coins: overview.coins,
            gainers: overview.gainers.into_iter().map(Into::into).collect(),
            losers: overview.losers.into_iter().map(Into::into).collect(),
        })
    }

    /// A coin's news sentiment over the last `hours` (1 to 720).
    async fn sentiment(
        &self,
        ctx: &Context<'_>,
        coin: String,
        #[graphql(default = 24)] hours: i32,
    ) -> Result<Sentiment, ApiError> {
        let summary = sentiment_of(ctx, &coin, hours).await?;
        Ok(Sentiment {
            coin: summary.coin,
            score: summary.score,
            articles: summary.articles,
            positive: summary.positive,
            negative: summary.negative,
            neutral: summary.neutral,
        })
    }

    /// A coin's mean sentiment per hour over the last `hours` (hours without articles
    /// left out), oldest first.
    async fn sentiment_trend(
        &self,
        ctx: &Context<'_>,
        coin: String,
        #[graphql(default = 24)] hours: i32,
    ) -> Result<Vec<SentimentPoint>, ApiError> {
        let summary = sentiment_of(ctx, &coin, hours).await?;
        Ok(summary
            .hourly
            .into_iter()
            .map(|(hour, score, articles)| SentimentPoint {
                hour,
                score,
                articles,
            })
            .collect())
    }

    /// Scored articles, newest first; about `coin` when one is named.
    async fn news(
        &self,
        ctx: &Context<'_>,
        coin: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<OpaqueCursor<(i64, String, String)>, Article>, ApiError> {
        let coin = coin.as_deref().map(symbol).transpose()?;
        let page: Page<(i64, String, String)> = Page::new(first, after)?;
        let (before, after_id, after_coin) =
            page.after
                .clone()
                .unwrap_or((NEWEST, String::new(), String::new()));
        let rows: Vec<Article> = sqlx::query_as(
            "SELECT article_id AS id, coin, title, url, source, published_at, scored_at, score, label \
             FROM read.scored_articles \
             WHERE ($1::text IS NULL OR coin = $1) \
               AND (scored_at < $2 OR (scored_at = $2 AND (article_id, coin) > ($3, $4))) \
             ORDER BY scored_at DESC, article_id, coin LIMIT $5",
        )
        .bind(coin)
        .bind(before_time(Some(before)))
        .bind(after_id)
        .bind(after_coin)
        .bind(page.fetch())
        .fetch_all(&api(ctx).pool)
        .await
        .map_err(ApiError::internal)?;
        Ok(page.connection(rows, |a| (nanos(a.scored_at), a.id.clone(), a.coin.clone())))
    }
}

async fn sentiment_of(
    ctx: &Context<'_>,
    coin: &str,
    hours: i32,
) -> Result<queries::SentimentSummary, ApiError> {
    let coin = symbol(coin)?;
    if !(1..=720).contains(&hours) {
        return Err(ApiError::validation("hours", "must be between 1 and 720"));
    }
    queries::sentiment(
        &api(ctx).pool,
        &coin,
        OffsetDateTime::now_utc(),
        i64::from(hours),
    )
    .await
    .map_err(|e| query_error("coin", e))
}
