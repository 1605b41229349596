//! The CoinGecko connector: polls `/simple/price` for ticks and `/coins/markets` for
//! coin metadata (name, symbol, rank, market cap, supply).
//!
//! CoinGecko caches answers for about 45 s, so a price is passed on only when its
//! `last_updated_at` is newer than the last one sent for that coin and currency. A 429
//! pauses both polls for the `Retry-After` the server asks (or the next backoff
//! delay), counted in `rate_limited`; any other failure backs off the same way.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use coinfold_domain::values::{CoinId, CoinSymbol, QuoteCurrency};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connector::{Backoff, BackoffSettings, Closed, ConnectorStats, Emitter, Ingested};
use super::http::{self, Fetched};
use super::synth::{markets_query, simple_price_query};
use super::{COINS_TOPIC, ParseError, TICKS_TOPIC, coingecko};

/// `[ingest.coingecko]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct CoinGeckoSettings {
    /// `https://api.coingecko.com`, or a replay server.
    pub endpoint: String,
    /// CoinGecko id → symbol: `bitcoin = "BTC"`.
    pub coins: BTreeMap<String, String>,
    /// `usd`, `eur`, …
    pub currencies: Vec<String>,
    pub price_every_ms: u64,
    pub markets_every_ms: u64,
    /// Pages of `/coins/markets` (up to 250 coins each) to keep metadata for.
    #[serde(default = "one")]
    pub market_pages: u32,
    pub request_timeout_ms: u64,
    #[serde(default)]
    pub backoff: BackoffSettings,
    /// The demo plan's key, sent as `x-cg-demo-api-key` (from the environment only).
    #[serde(default)]
    pub api_key: Option<SecretString>,
}

fn one() -> u32 {
    1
}

/// A configured poller.
pub struct CoinGecko {
    settings: CoinGeckoSettings,
    ids: BTreeMap<CoinId, CoinSymbol>,
    currencies: Vec<QuoteCurrency>,
    client: reqwest::Client,
    /// Newest `last_updated_at` sent per coin and currency.
    sent: HashMap<(CoinSymbol, QuoteCurrency), OffsetDateTime>,
}

impl CoinGecko {
    pub fn new(settings: CoinGeckoSettings) -> Result<Self, String> {
        let mut ids = BTreeMap::new();
        for (id, symbol) in &settings.coins {
            ids.insert(
                CoinId::parse(id).map_err(|e| format!("ingest.coingecko coin id {id:?}: {e}"))?,
                CoinSymbol::parse(symbol)
                    .map_err(|e| format!("ingest.coingecko symbol {symbol:?}: {e}"))?,
            );
        }
        if ids.is_empty() {
            return Err("ingest.coingecko needs at least one coin".to_owned());
        }
        let currencies = settings
            .currencies
            .iter()
            .map(|c| {
                QuoteCurrency::parse(c.to_ascii_uppercase())
                    .map_err(|e| format!("ingest.coingecko currency {c:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if currencies.is_empty() {
            return Err("ingest.coingecko needs at least one currency".to_owned());
        }
        let client = http::client(settings.request_timeout_ms)?;
        Ok(Self {
            settings,
            ids,
            currencies,
            client,
            sent: HashMap::new(),
        })
    }

    fn price_path(&self) -> String {
        let ids: Vec<&str> = self.ids.keys().map(CoinId::as_str).collect();
        let currencies: Vec<String> = self
            .currencies
            .iter()
            .map(|c| c.to_string().to_ascii_lowercase())
            .collect();
        let currencies: Vec<&str> = currencies.iter().map(String::as_str).collect();
        simple_price_query(&ids, &currencies)
    }

    async fn fetch(&self, path: &str, stats: &ConnectorStats, backoff: &mut Backoff) -> Fetched {
        let url = format!("{}{path}", self.settings.endpoint.trim_end_matches('/'));
        let mut request = self.client.get(&url);
        if let Some(key) = &self.settings.api_key {
            request = request.header("x-cg-demo-api-key", key.expose_secret());
        }
        let max = Duration::from_millis(self.settings.backoff.max_ms);
        http::fetch("coingecko", request, stats, backoff, max).await
    }

    /// The ticks of one `/simple/price` answer that are newer than what was sent.
    fn fresh(
        &mut self,
        body: &[u8],
        received: OffsetDateTime,
    ) -> Result<Vec<Ingested>, ParseError> {
        let ticks = coingecko::parse_simple_price(body, received, &self.ids, &self.currencies)?;
        Ok(ticks
            .into_iter()
            .filter(|tick| {
                let key = (tick.coin.clone(), tick.quote.clone());
                let newer = self
                    .sent
                    .get(&key)
                    .is_none_or(|last| tick.exchange_time > *last);
                if newer {
                    self.sent.insert(key, tick.exchange_time);
                }
                newer
            })
            .map(Ingested::Tick)
            .collect())
    }

    /// Runs until `cancel` fires or the producer goes away.
    pub async fn run(mut self, emit: Emitter, cancel: CancellationToken) {
        if let Err(Closed) = self.poll(&emit, &cancel).await {
            tracing::info!(source = emit.source, "producer gone; connector stops");
        }
    }

    async fn poll(&mut self, emit: &Emitter, cancel: &CancellationToken) -> Result<(), Closed> {
        let mut backoff = self.settings.backoff.backoff();
        let price_every = Duration::from_millis(self.settings.price_every_ms.max(1));
        let markets_every = Duration::from_millis(self.settings.markets_every_ms.max(1));
        let price_path = self.price_path();
        let mut next_markets = Instant::now();
        let mut next_price = Instant::now();
        loop {
            let due = next_markets.min(next_price);
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                () = tokio::time::sleep_until(due) => {}
            }
            let markets_due = next_markets <= Instant::now();
            if markets_due {
                match self.markets(emit, &mut backoff).await? {
                    None => next_markets = Instant::now() + markets_every,
                    Some(delay) => {
                        next_markets = Instant::now() + delay;
                        next_price = next_price.max(next_markets);
                        continue;
                    }
                }
            }
            if next_price <= Instant::now() {
                match self.fetch(&price_path, &emit.stats, &mut backoff).await {
                    Fetched::Body(body) => {
                        let received = OffsetDateTime::now_utc();
                        match self.fresh(&body, received) {
                            Ok(ticks) => {
                                for tick in ticks {
                                    emit.send(tick).await?;
                                }
                            }
                            Err(reason) => {
                                emit.dead_letter(TICKS_TOPIC, &body, &reason, received)
                                    .await?;
                            }
                        }
                        next_price = Instant::now() + price_every;
                    }
                    Fetched::Later(delay) => {
                        next_price = Instant::now() + delay;
                        next_markets = next_markets.max(next_price);
                    }
                }
            }
        }
    }

    /// One round of `/coins/markets` pages; `Some(delay)` when it must wait.
    async fn markets(
        &self,
        emit: &Emitter,
        backoff: &mut Backoff,
    ) -> Result<Option<Duration>, Closed> {
        let currency = self
            .currencies
            .first()
            .map(|c| c.to_string().to_ascii_lowercase())
            .unwrap_or_else(|| "usd".to_owned());
        for page in 1..=self.settings.market_pages.max(1) {
            let path = markets_query(&currency, 250, page);
            let body = match self.fetch(&path, &emit.stats, backoff).await {
                Fetched::Body(body) => body,
                Fetched::Later(delay) => return Ok(Some(delay)),
            };
            let received = OffsetDateTime::now_utc();
            match coingecko::parse_markets(&body) {
                Ok((coins, problems)) => {
                    let empty = coins.is_empty();
                    for coin in coins {
                        emit.send(Ingested::Coin(coin)).await?;
                    }
                    emit.partly_read(COINS_TOPIC, &body, &problems, received)
                        .await?;
                    if empty {
                        break;
                    }
                }
                Err(reason) => {
                    emit.dead_letter(COINS_TOPIC, &body, &reason, received)
                        .await?;
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CoinGeckoSettings {
        CoinGeckoSettings {
            endpoint: "https://api.coingecko.com".into(),
            coins: [("bitcoin".to_owned(), "BTC".to_owned())].into(),
            currencies: vec!["usd".into()],
            price_every_ms: 30_000,
            markets_every_ms: 300_000,
            market_pages: 1,
            request_timeout_ms: 10_000,
            backoff: BackoffSettings::default(),
            api_key: None,
        }
    }

    #[test]
    fn only_newer_prices_pass_and_bad_settings_are_named() {
        let mut poller = CoinGecko::new(settings()).unwrap();
        assert!(
            poller
                .price_path()
                .starts_with("/api/v3/simple/price?ids=bitcoin&vs_currencies=usd&")
        );
        let now = OffsetDateTime::now_utc();
        let at = |t: u64| format!(r#"{{"bitcoin":{{"usd":68900.5,"last_updated_at":{t}}}}}"#);
        assert_eq!(
            poller
                .fresh(at(1_711_356_300).as_bytes(), now)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            poller
                .fresh(at(1_711_356_300).as_bytes(), now)
                .unwrap()
                .len(),
            0
        );
        assert_eq!(
            poller
                .fresh(at(1_711_356_330).as_bytes(), now)
                .unwrap()
                .len(),
            1
        );
        assert!(poller.fresh(b"{\"bitcoin\":", now).is_err());
        let bad = CoinGeckoSettings {
            currencies: vec![],
            ..settings()
        };
        assert!(CoinGecko::new(bad).err().unwrap().contains("currency"));
    }
}
