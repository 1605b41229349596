//! `coinfold demo`: the whole system on one machine, with something to look at.
//!
//! 1. `deploy/local/up.sh` brings PostgreSQL, Redis and the broker up (idempotent), and
//!    its `.local/env` completes the environment;
//! 2. a world of its own: the database `coinfold_demo`, dropped and made again (the
//!    recordings replay the same ticks each run, and a tick is applied once, so the
//!    state of an earlier run would hold the market still), and topics and consumer
//!    groups named `demo-<unix time>.…`; the migrations are applied;
//! 3. 90 days of market history are backfilled ([`coinfold_projections::ingest::history`]:
//!    the recordings' price model run backwards from their first prices), produced to
//!    the tick topic through ingest's producer before any live tick;
//! 4. `all` runs every role in this process, ingest playing the recordings in a loop;
//!    the demo waits until the history is folded (every coin's 1-hour and 1-day
//!    indicators complete);
//! 5. once the market has prices, two users are seeded **through the GraphQL API**, as
//!    a client would: alice and bob, each with a portfolio, trades (alice's partly by
//!    `importTrades`), a watchlist and alerts set near the recorded prices so they fire
//!    while the feed plays;
//! 6. every few seconds a line shows prices, BTC's newest candle of each interval and
//!    its 1h and 1d indicators, the BTC/ETH correlation, BTC's sentiment, alerts fired
//!    and alice's portfolio, read back through the API.
//!
//! The process's JSON logs go to `.local/log/coinfold-demo.log`; stdout is for people.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use coinfold_projections::ingest::history::{HistoryConfig, backfill, history_ticks};

use crate::roles::{self, Feeds};
use crate::settings::Settings;
use crate::telemetry;

/// What `coinfold demo` was asked for.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub config_dir: PathBuf,
    pub recordings: PathBuf,
    pub speed: f64,
    /// Run deploy/local/up.sh first.
    pub up: bool,
    pub every: Duration,
    pub for_seconds: Option<u64>,
    /// The database of this run, dropped and made again ([`DEMO_DATABASE`] unless told).
    pub database: String,
}

/// The demo users' password (they are demo accounts on a loopback-only server).
pub const DEMO_PASSWORD: &str = "demo-password-2026";

/// The demo's own database, dropped and made again at each run.
pub const DEMO_DATABASE: &str = "coinfold_demo";

/// The coins of the shipped recordings.
const COINS: [&str; 5] = ["BTC", "ETH", "SOL", "ADA", "DOGE"];

pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    say("coinfold demo: every role in one process, on the recorded market feed");
    if options.up {
        say("bringing the local services up (deploy/local/up.sh)");
        let status = std::process::Command::new("bash")
            .arg("deploy/local/up.sh")
            .status()
            .context("running deploy/local/up.sh (run the demo from the repository root)")?;
        if !status.success() {
            bail!("deploy/local/up.sh failed ({status})");
        }
    }
    let env = environment(Path::new(".local/env"))?;
    let mut settings = Settings::load_with_env(&options.config_dir, env)
        .with_context(|| format!("loading settings from {}", options.config_dir.display()))?;
    let log = log_file()?;
    telemetry::init("info,coinfold=info", std::sync::Mutex::new(log.1));
    say(&format!("logs (JSON lines): {}", log.0.display()));
    // The recordings hold the same ticks each time they play, and a tick is applied once:
    // on the state of an earlier run, the market would stand still until the feed passed
    // where that run stopped. So each run is a world of its own: its own database,
    // recreated, and its own topics.
    let database = options.database.as_str();
    if database.is_empty()
        || !database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        bail!("--database {database:?}: letters, digits and _ only");
    }
    settings.database = settings.database.with_database(database);
    settings.kafka.topic_prefix =
        format!("demo-{}.", time::OffsetDateTime::now_utc().unix_timestamp());
    // Consumer groups of its own too: a group named as an earlier run's still lists that
    // run's consumers when it was stopped without leaving, and the broker can hold a
    // rejoin until they are given up (the alert evaluator sat minutes without a
    // partition after a restart of the demo).
    settings.projections.group_prefix = format!("{}projections", settings.kafka.topic_prefix);
    settings.ingest.sentiment_group = format!("{}sentiment", settings.kafka.topic_prefix);
    {
        use secrecy::ExposeSecret;
        use sqlx::migrate::MigrateDatabase;
        sqlx::Postgres::force_drop_database(settings.database.url.expose_secret())
            .await
            .with_context(|| format!("dropping the previous demo database {database}"))?;
    }
    say(&format!(
        "a fresh demo world: database {database} (made again each run; your own database is not touched), topics {}*",
        settings.kafka.topic_prefix
    ));
    crate::cli::migrate(&settings).await?;

    let history = HistoryConfig::demo(time::OffsetDateTime::now_utc());
    let history_end = history.end;
    say(&format!(
        "backfilling {} days of market history (the recordings' model run backwards; the last {} days with a trade every 15 s)",
        history.days, history.minute_days
    ));
    let backfill_started = Instant::now();
    let produced = backfill(
        &settings.kafka.brokers,
        &settings.kafka.client_id,
        &settings.kafka.topic_prefix,
        history_ticks(&history),
    )
    .await
    .context("producing the market history")?;
    say(&format!(
        "{} history ticks produced in {:.1} s; the projections fold them before the live feed",
        produced.ticks,
        backfill_started.elapsed().as_secs_f64()
    ));

    let cancel = crate::cli::stop_on_signal();
    crate::cli::cancel_after(&cancel, options.for_seconds);
    let (address_tx, address_rx) = tokio::sync::oneshot::channel();
    let feeds = Feeds {
        replay: vec![options.recordings.clone()],
        speed: options.speed,
        once: false,
    };
    say(&format!(
        "playing {} at {}x speed; starting the API, projections, ingest and relay",
        options.recordings.display(),
        options.speed
    ));
    let all = tokio::spawn(roles::all(
        settings,
        feeds,
        cancel.clone(),
        Some(address_tx),
    ));
    let address = match address_rx.await {
        Ok(address) => address,
        Err(_) => {
            return all
                .await
                .context("the roles panicked")?
                .and(Err(anyhow::anyhow!("the API did not start")));
        }
    };
    let show = async {
        let client = Client::new(address);
        say(&format!(
            "dashboard: http://{address}/ (the web app, built from web/); API: http://{address}/graphql (GraphiQL at http://{address}/graphiql), subscriptions: ws://{address}/graphql/ws"
        ));
        say(&format!(
            "metrics: http://{address}/metrics, health: http://{address}/ready"
        ));
        if !client.wait_for_prices(&cancel).await? {
            return Ok(());
        }
        if !client.wait_for_history(&cancel, history_end).await? {
            return Ok(());
        }
        let mut seeded = seed(&client).await?;
        say(&format!(
            "sign in as alice or bob, password {DEMO_PASSWORD:?} (demo accounts; the server listens on 127.0.0.1 only)"
        ));
        say("try: query { prices(coins: [\"BTC\", \"ETH\"]) { coin price source exchangeTime } }");
        say(&format!(
            "ready after {:.1} s; a status line every {} s; Ctrl-C stops",
            started.elapsed().as_secs_f64(),
            options.every.as_secs()
        ));
        let mut tick = tokio::time::interval(options.every);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Ok::<(), anyhow::Error>(()),
                _ = tick.tick() => {}
            }
            // Access tokens last 15 minutes: sign in again well before.
            if seeded.signed_in.elapsed() > Duration::from_secs(600) {
                seeded.alice = sign_in(&client, "alice").await?;
                seeded.bob = sign_in(&client, "bob").await?;
                seeded.signed_in = Instant::now();
            }
            match status_line(&client, &seeded).await {
                Ok(line) => say(&line),
                Err(error) => say(&format!("status: {error:#}")),
            }
        }
    };
    let shown = tokio::select! {
        shown = show => shown,
        () = cancel.cancelled() => Ok(()),
    };
    if let Err(error) = &shown {
        say(&format!("the demo stops: {error:#}"));
    }
    cancel.cancel();
    let stopped = all.await.context("the roles panicked")?;
    say("stopped");
    shown.and(stopped)
}

fn say(line: &str) {
    println!("[demo] {line}");
}

/// The process's variables, completed by `.local/env` (`export NAME='value'` lines)
/// where they do not already say.
fn environment(file: &Path) -> anyhow::Result<HashMap<String, String>> {
    let mut env: HashMap<String, String> = std::env::vars().collect();
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(env);
    };
    for line in text.lines() {
        let Some((name, value)) = line
            .trim()
            .strip_prefix("export ")
            .and_then(|rest| rest.split_once('='))
        else {
            continue;
        };
        let value = value.trim().trim_matches('\'').to_owned();
        env.entry(name.trim().to_owned()).or_insert(value);
    }
    Ok(env)
}

fn log_file() -> anyhow::Result<(PathBuf, std::fs::File)> {
    let dir = PathBuf::from(".local/log");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("coinfold-demo.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    Ok((path, file))
}

/// A GraphQL client of the demo's own API.
struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    fn new(address: SocketAddr) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: format!("http://{address}/graphql"),
        }
    }

    /// The `data` of a request, or an error with the first GraphQL error's message.
    async fn call(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let body: Value = request
            .send()
            .await
            .context("calling the API")?
            .json()
            .await
            .context("reading the API's answer")?;
        if let Some(error) = body.pointer("/errors/0") {
            bail!(
                "{} ({})",
                error["message"].as_str().unwrap_or("error"),
                error
                    .pointer("/extensions/code")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            );
        }
        Ok(body["data"].clone())
    }

    /// Waits until every recorded coin has a price; false when stopped first.
    async fn wait_for_prices(&self, cancel: &CancellationToken) -> anyhow::Result<bool> {
        say("waiting for the first prices of BTC, ETH, SOL, ADA and DOGE");
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let priced = self
                .call(
                    None,
                    "query($c: [String!]!) { prices(coins: $c) { coin } }",
                    json!({ "c": COINS }),
                )
                .await
                .map(|data| data["prices"].as_array().map_or(0, Vec::len))
                .unwrap_or(0);
            if priced == COINS.len() {
                return Ok(true);
            }
            if Instant::now() > deadline {
                bail!("no prices after 180 s: is the broker up? see .local/log/coinfold-demo.log");
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(false),
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Waits until every coin's latest closed 1-hour and 1-day candles have every
    /// indicator (the backfilled history is folded); false when stopped first.
    /// Waits until every coin's history is folded to its end (its price is from the last
    /// minute of the history or later) and its newest 1-hour and 1-day indicator points
    /// are complete; false when stopped first.
    async fn wait_for_history(
        &self,
        cancel: &CancellationToken,
        end: time::OffsetDateTime,
    ) -> anyhow::Result<bool> {
        say("waiting for the history to be folded (every indicator on 1h and 1d)");
        let started = Instant::now();
        let deadline = started + Duration::from_secs(600);
        loop {
            let mut missing = Vec::new();
            let behind = self.priced_before(end - time::Duration::minutes(1)).await?;
            missing.extend(behind.into_iter().map(|coin| format!("{coin} price")));
            for coin in COINS {
                for interval in ["1h", "1d"] {
                    let complete = self.indicators(coin, interval).await.is_ok_and(|point| {
                        point
                            .as_object()
                            .is_some_and(|o| o.values().all(|v| !v.is_null()))
                    });
                    if !complete {
                        missing.push(format!("{coin} {interval}"));
                    }
                }
            }
            if missing.is_empty() {
                say(&format!(
                    "history folded in {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
                return Ok(true);
            }
            if Instant::now() > deadline {
                bail!(
                    "indicators still missing after 600 s ({}): see .local/log/coinfold-demo.log",
                    missing.join(", ")
                );
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(false),
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// The coins whose latest price is older than `at` (or missing).
    async fn priced_before(&self, at: time::OffsetDateTime) -> anyhow::Result<Vec<&'static str>> {
        let data = self
            .call(
                None,
                "query($c: [String!]!) { prices(coins: $c) { coin exchangeTime } }",
                json!({ "c": COINS }),
            )
            .await?;
        let fresh: Vec<&str> = data["prices"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                p["exchangeTime"]
                    .as_str()
                    .and_then(|t| {
                        time::OffsetDateTime::parse(
                            t,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .is_some_and(|t| t >= at)
            })
            .filter_map(|p| p["coin"].as_str())
            .collect();
        Ok(COINS.into_iter().filter(|c| !fresh.contains(c)).collect())
    }

    /// The newest indicator point of a coin's series.
    async fn indicators(&self, coin: &str, interval: &str) -> anyhow::Result<Value> {
        let data = self
            .call(
                None,
                "query($c: String!, $i: String!) { indicators(coin: $c, interval: $i, first: 1) { nodes { \
                 sma20 ema20 rsi14 macd macdSignal macdHistogram bollingerMid bollingerUpper bollingerLower volatility30 } } }",
                json!({ "c": coin, "i": interval }),
            )
            .await?;
        Ok(data
            .pointer("/indicators/nodes/0")
            .cloned()
            .unwrap_or(Value::Null))
    }

    async fn prices(&self) -> anyhow::Result<HashMap<String, Decimal>> {
        let data = self
            .call(
                None,
                "query($c: [String!]!) { prices(coins: $c) { coin price } }",
                json!({ "c": COINS }),
            )
            .await?;
        Ok(data["prices"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["coin"].as_str()?.to_owned(),
                    p["price"].as_str()?.parse().ok()?,
                ))
            })
            .collect())
    }
}

/// What the status lines read.
struct Seeded {
    alice: String,
    bob: String,
    alice_portfolio: String,
    signed_in: Instant,
}

/// Registers a demo user (the demo's database is new each run); their access token.
async fn register(client: &Client, name: &str) -> anyhow::Result<String> {
    let data = client
        .call(
            None,
            "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
            json!({ "i": { "username": name, "email": format!("{name}@demo.coinfold.invalid"), "password": DEMO_PASSWORD } }),
        )
        .await
        .with_context(|| format!("registering {name}"))?;
    token(&data, "register")
}

/// Signs a demo user in again (access tokens last 15 minutes); their access token.
async fn sign_in(client: &Client, name: &str) -> anyhow::Result<String> {
    let data = client
        .call(
            None,
            "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
            json!({ "i": { "login": name, "password": DEMO_PASSWORD } }),
        )
        .await
        .with_context(|| format!("signing {name} in"))?;
    token(&data, "login")
}

fn token(data: &Value, field: &str) -> anyhow::Result<String> {
    data[field]["accessToken"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{field} answered without an access token"))
}

/// What one demo user starts with.
struct Seed {
    name: &'static str,
    portfolio: &'static str,
    /// Side, coin, quantity, price, day.
    trades: &'static [(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    )],
    /// A generic-format CSV imported after the trades.
    import: Option<&'static str>,
    watch: &'static [&'static str],
    /// Coin, condition (`priceAbove` or `priceBelow`), and its distance from the first
    /// price in thousandths: they fire as the recording moves (BTC falls about 1 %, ETH
    /// and SOL rise about 1.5 %, DOGE falls about 2 %).
    alerts: &'static [(&'static str, &'static str, i64)],
}

const SEEDS: [Seed; 2] = [
    Seed {
        name: "alice",
        portfolio: "Long term",
        trades: &[
            ("BUY", "BTC", "0.5", "61000", "2026-01-10"),
            ("BUY", "ETH", "4", "3100", "2026-02-01"),
            ("SELL", "BTC", "0.1", "66500", "2026-03-15"),
        ],
        import: Some(
            "executed_at,side,coin,quantity,price,fee,external_id,note\n\
             2026-02-03T09:30:00Z,buy,SOL,30,120.50,1.20,demo-sol-1,first SOL\n\
             2026-02-20T16:05:00Z,buy,SOL,10,131.00,0.50,demo-sol-2,\n\
             2026-03-02T11:45:00Z,sell,SOL,15,144.25,0.75,demo-sol-3,took some profit\n",
        ),
        watch: &["BTC", "ETH", "SOL"],
        alerts: &[("BTC", "priceBelow", -6), ("ETH", "priceAbove", 6)],
    },
    Seed {
        name: "bob",
        portfolio: "Alt coins",
        trades: &[
            ("BUY", "DOGE", "5000", "0.14", "2026-01-20"),
            ("BUY", "ADA", "3000", "0.41", "2026-02-11"),
            ("BUY", "SOL", "20", "135", "2026-03-01"),
        ],
        import: None,
        watch: &["DOGE", "ADA"],
        alerts: &[("SOL", "priceAbove", 8), ("DOGE", "priceBelow", -10)],
    },
];

async fn seed(client: &Client) -> anyhow::Result<Seeded> {
    let prices = client.prices().await?;
    let (alice, alice_portfolio) = seed_user(client, &SEEDS[0], &prices).await?;
    let (bob, _) = seed_user(client, &SEEDS[1], &prices).await?;
    // The read models follow the commands within moments: wait for alice's portfolio,
    // so that the first status line has it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let query = "query($p: ID!) { portfolio(id: $p) { summary { usd { value } } } }";
    while let Err(error) = client
        .call(Some(&alice), query, json!({ "p": alice_portfolio }))
        .await
    {
        if Instant::now() > deadline {
            bail!("alice's portfolio is not readable after 30 s: {error:#}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(Seeded {
        alice,
        bob,
        alice_portfolio,
        signed_in: Instant::now(),
    })
}

/// Registers the user and gives them their portfolio, trades, watchlist and alerts;
/// their token and portfolio.
async fn seed_user(
    client: &Client,
    seed: &Seed,
    prices: &HashMap<String, Decimal>,
) -> anyhow::Result<(String, String)> {
    let token = register(client, seed.name).await?;
    let created = client
        .call(
            Some(&token),
            "mutation($i: CreatePortfolioInput!) { createPortfolio(input: $i) { id } }",
            json!({ "i": { "name": seed.portfolio } }),
        )
        .await?;
    let portfolio = created["createPortfolio"]["id"]
        .as_str()
        .context("createPortfolio answered without an id")?
        .to_owned();
    for (side, coin, quantity, price, day) in seed.trades {
        client
            .call(
                Some(&token),
                "mutation($p: ID!, $t: TradeInput!) { recordTrade(portfolioId: $p, trade: $t) { version } }",
                json!({ "p": portfolio, "t": {
                    "side": side, "coin": coin, "quantity": quantity, "price": price,
                    "fee": "0", "executedAt": format!("{day}T12:00:00Z"),
                }}),
            )
            .await
            .with_context(|| format!("recording {side} {quantity} {coin}"))?;
    }
    let mut imported = 0;
    if let Some(csv) = seed.import {
        let data = client
            .call(
                Some(&token),
                "mutation($p: ID!, $csv: String!) { importTrades(portfolioId: $p, format: GENERIC, csv: $csv) { imported } }",
                json!({ "p": portfolio, "csv": csv }),
            )
            .await
            .context("importing the CSV")?;
        imported = data["importTrades"]["imported"].as_i64().unwrap_or(0);
    }
    for coin in seed.watch {
        client
            .call(
                Some(&token),
                "mutation($c: String!) { addToWatchlist(coin: $c) { version } }",
                json!({ "c": coin }),
            )
            .await?;
    }
    for (coin, condition, permille) in seed.alerts {
        let first = prices.get(*coin).copied().unwrap_or(Decimal::ONE);
        let threshold = (first * Decimal::new(1000 + permille, 3)).round_dp(6);
        client
            .call(
                Some(&token),
                "mutation($i: CreateAlertInput!) { createAlert(input: $i) { id } }",
                json!({ "i": { "coin": coin, "condition": { *condition: threshold },
                               "repeat": "RECURRING", "cooldownSeconds": 120 } }),
            )
            .await
            .with_context(|| format!("creating an alert on {coin}"))?;
    }
    say(&format!(
        "{}: {} trades recorded, {imported} imported from CSV, {} alerts set",
        seed.name,
        seed.trades.len(),
        seed.alerts.len()
    ));
    Ok((token, portfolio))
}

/// `BTC 68,421.13 ETH 3,512.40 … | candles 1m: 9 | alerts fired: 2 | alice: value …`
async fn status_line(client: &Client, seeded: &Seeded) -> anyhow::Result<String> {
    let prices = client.prices().await?;
    let mut line = String::new();
    for coin in COINS {
        if let Some(price) = prices.get(coin) {
            line.push_str(&format!("{coin} {} ", price.round_dp(4).normalize()));
        }
    }
    // The newest candle of each interval (the open one moves), BTC's indicators on 1h
    // and 1d, the BTC/ETH correlation over 1h and BTC's sentiment over 24 h.
    let market = client
        .call(
            None,
            "{ m1: candles(coin: \"BTC\", interval: \"1m\", first: 1) { nodes { openTime close } } \
               m5: candles(coin: \"BTC\", interval: \"5m\", first: 1) { nodes { openTime close } } \
               h1: candles(coin: \"BTC\", interval: \"1h\", first: 1) { nodes { openTime close } } \
               d1: candles(coin: \"BTC\", interval: \"1d\", first: 1) { nodes { openTime close } } \
               i1h: indicators(coin: \"BTC\", interval: \"1h\", first: 1) { nodes { rsi14 sma20 macd volatility30 } } \
               i1d: indicators(coin: \"BTC\", interval: \"1d\", first: 1) { nodes { rsi14 sma20 macd volatility30 } } \
               correlation(coins: [\"BTC\", \"ETH\"]) \
               sentiment(coin: \"BTC\") { score articles } }",
            json!({}),
        )
        .await?;
    let candle = |alias: &str| {
        let node = market.pointer(&format!("/{alias}/nodes/0"));
        let at = node
            .and_then(|n| n["openTime"].as_str())
            .and_then(|t| t.get(11..16))
            .unwrap_or("-");
        let close = node
            .and_then(|n| n["close"].as_str())
            .and_then(|c| c.parse::<Decimal>().ok())
            .map_or_else(|| "-".to_owned(), |c| c.round_dp(2).to_string());
        format!("{alias} {at} {close}")
    };
    let float = |v: Option<&Value>, places: usize| {
        v.and_then(Value::as_f64)
            .map_or_else(|| "null".to_owned(), |f| format!("{f:.places$}"))
    };
    let indicators = |alias: &str| {
        let node = market.pointer(&format!("/{alias}/nodes/0"));
        format!(
            "rsi {} sma20 {} macd {} vol {}",
            float(node.map(|n| &n["rsi14"]), 1),
            float(node.map(|n| &n["sma20"]), 2),
            float(node.map(|n| &n["macd"]), 2),
            float(node.map(|n| &n["volatility30"]), 4),
        )
    };
    let mut fired = 0;
    for token in [&seeded.alice, &seeded.bob] {
        let alerts = client
            .call(
                Some(token),
                "{ alerts(first: 100) { nodes { timesTriggered } } }",
                json!({}),
            )
            .await?;
        fired += alerts
            .pointer("/alerts/nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a["timesTriggered"].as_i64())
            .sum::<i64>();
    }
    let summary = client
        .call(
            Some(&seeded.alice),
            "query($p: ID!) { portfolio(id: $p) { summary { usd { value unrealizedGain realizedGain } } } }",
            json!({ "p": seeded.alice_portfolio }),
        )
        .await?;
    let usd = summary
        .pointer("/portfolio/summary/usd")
        .cloned()
        .unwrap_or(Value::Null);
    let money = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<Decimal>().ok())
            .map_or_else(|| "?".to_owned(), |d| d.round_dp(2).to_string())
    };
    line.push_str(&format!(
        "| BTC candles {}, {}, {}, {} | 1h {} | 1d {} | corr BTC/ETH 1h {} | BTC sentiment {} ({} articles) | alerts fired {fired} | alice: value ${} unrealized ${} realized ${}",
        candle("m1"),
        candle("m5"),
        candle("h1"),
        candle("d1"),
        indicators("i1h"),
        indicators("i1d"),
        float(market.pointer("/correlation/0/1"), 3),
        float(market.pointer("/sentiment/score"), 3),
        market.pointer("/sentiment/articles").and_then(Value::as_i64).unwrap_or(0),
        money(&usd["value"]),
        money(&usd["unrealizedGain"]),
        money(&usd["realizedGain"]),
    ));
    Ok(line)
}
