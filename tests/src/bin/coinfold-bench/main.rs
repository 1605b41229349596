//! `coinfold-bench`: each scenario of BENCHMARKS.md against the real local services,
//! coinfold beside a raw ceiling measured in the same run, one line per figure (or, with
//! `--json`, the same as JSON).
//!
//! It makes its own database (`coinfold_bench`, dropped and made again), its own topic
//! names (`bench-<uuid>.…`) and consumer groups, and runs the API in this process on a
//! free port (the fan-out scenario runs `coinfold serve` as a separate process, to read
//! its memory). Scenarios run in this order, each using what the ones before left:
//!
//! | scenario | coinfold | ceiling |
//! |---|---|---|
//! | commands | concurrent `recordTrade` over HTTP | single-row INSERTs, same concurrency |
//! | import | `importTrades` of one CSV | COPY of the same rows |
//! | rebuild | the portfolios projection rebuilt from the log | COPY TO of the log |
//! | ticks | the market projection folding a topic | a bare rdkafka consumer |
//! | queries | `price` and a portfolio summary under wrk | a bare axum handler, same JSON |
//! | latency | commit → `events` subscriber | (none: a fixed event rate) |
//! | fanout | N `prices` subscribers at 1 Hz, server RSS | (none) |
//! | timetravel | `portfolio(id, asOf)` | SELECT of the same events |
//!
//! `--quick` shrinks every size so the whole run takes a few minutes (CI's smoke run).
//! `scripts/bench.sh` builds it in release and raises the file limit.

mod live;
mod load;
mod report;
#[allow(dead_code)] // the bench uses seed_events and tick_series
#[path = "../../../../api/tests/common/seed.rs"]
mod seed;
mod stream;
mod write;

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use coinfold_api::settings::url_with_database;
use coinfold_tests::{Session, TestApp, spawn_app_with};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use report::Figure;

#[derive(Parser, Debug)]
#[command(about = "coinfold's benchmarks, each beside a raw ceiling measured in the same run")]
struct Args {
    /// Small sizes: the whole run in a few minutes (a smoke run, not figures).
    #[arg(long)]
    quick: bool,
    /// Print the figures as one JSON document on stdout (the lines go to stderr).
    #[arg(long)]
    json: bool,
    /// Run only these scenarios (comma-separated): commands, import, rebuild, ticks,
    /// queries, latency, fanout, timetravel. Later ones may need what earlier ones leave
    /// (queries and timetravel need the ticks' prices); each makes what it lacks.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Subscribers in the fan-out scenario (default 50,000; --quick 200).
    #[arg(long)]
    subscribers: Option<usize>,
    /// Internal: run as a fan-out client process against this server address.
    #[arg(long, hide = true)]
    fanout_worker: Option<std::net::SocketAddr>,
    #[arg(long, hide = true, default_value_t = 0)]
    worker_count: usize,
    #[arg(long, hide = true, default_value = "127.0.0.2")]
    worker_source: std::net::Ipv4Addr,
}

/// How big each scenario is.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub command_seconds: u64,
    pub command_concurrency: usize,
    pub import_trades: usize,
    pub rebuild_events: usize,
    pub ticks: usize,
    pub query_seconds: u64,
    pub latency_events: usize,
    pub latency_rate: u32,
    pub subscribers: usize,
    pub fanout_seconds: u64,
    pub timetravel_trades: usize,
    pub timetravel_requests: usize,
}

impl Sizes {
    fn full() -> Self {
        Self {
            command_seconds: 20,
            command_concurrency: 8,
            import_trades: 100_000,
            rebuild_events: 1_000_000,
            ticks: 200_000,
            query_seconds: 15,
            latency_events: 600,
            latency_rate: 20,
            subscribers: 50_000,
            fanout_seconds: 30,
            timetravel_trades: 10_000,
            timetravel_requests: 200,
        }
    }

    fn quick() -> Self {
        Self {
            command_seconds: 3,
            command_concurrency: 8,
            import_trades: 2_000,
            rebuild_events: 20_000,
            ticks: 5_000,
            query_seconds: 3,
            latency_events: 40,
            latency_rate: 20,
            subscribers: 200,
            fanout_seconds: 4,
            timetravel_trades: 1_000,
            timetravel_requests: 30,
        }
    }
}

pub const SCENARIOS: [&str; 8] = [
    "commands",
    "import",
    "rebuild",
    "ticks",
    "queries",
    "latency",
    "fanout",
    "timetravel",
];

/// What every scenario works with: the app, its database, and a signed-in user.
pub struct Bench {
    pub sizes: Sizes,
    pub app: TestApp,
    pub pool: PgPool,
    pub session: Session,
    pub database_url: String,
}

impl Bench {
    /// Sends a GraphQL request as the bench's user; its `data`, or an error naming the
    /// GraphQL errors.
    pub async fn graphql(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let response = self
            .app
            .graphql(query, variables, Some(&self.session.token))
            .await;
        if let Some(errors) = response.get("errors") {
            anyhow::bail!("GraphQL errors: {errors}");
        }
        Ok(response["data"].clone())
    }

    /// A new portfolio of the bench user's; its id.
    pub async fn create_portfolio(&self, name: &str) -> String {
        self.app.create_portfolio(&self.session.token, name).await
    }
}

const RECORD_TRADE: &str =
    "mutation($p: ID!, $t: TradeInput!) { recordTrade(portfolioId: $p, trade: $t) { version } }";

/// Records `trade` in `portfolio` over HTTP as the holder of `token` (for tasks that
/// cannot borrow the bench); the mutation's round trip.
pub async fn record_trade(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    portfolio: &str,
    trade: serde_json::Value,
) -> anyhow::Result<Duration> {
    let sent = std::time::Instant::now();
    let response: serde_json::Value = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": RECORD_TRADE, "variables": { "p": portfolio, "t": trade } }))
        .send()
        .await?
        .json()
        .await?;
    let round_trip = sent.elapsed();
    anyhow::ensure!(response.get("errors").is_none(), "recordTrade: {response}");
    Ok(round_trip)
}

const DATABASE: &str = "coinfold_bench";

async fn fresh_database(url: &str) -> anyhow::Result<String> {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .context("cannot connect to PostgreSQL at DATABASE_URL (run deploy/local/up.sh)")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(url_with_database(url, DATABASE))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(server) = args.fanout_worker {
        return live::worker(server, args.worker_count, args.worker_source).await;
    }
    for name in &args.only {
        anyhow::ensure!(
            SCENARIOS.contains(&name.as_str()),
            "{name:?} is not a scenario: {}",
            SCENARIOS.join(", ")
        );
    }
    let mut sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    if let Some(n) = args.subscribers {
        sizes.subscribers = n;
    }
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);

    let url =
        std::env::var("DATABASE_URL").context("DATABASE_URL is not set (source .local/env)")?;
    let database_url = fresh_database(&url).await?;
    let pool = PgPoolOptions::new()
        .max_connections(24)
        .connect(&database_url)
        .await?;
    coinfold_commands::store::MIGRATOR.run(&pool).await?;
    let app = spawn_app_with(&pool, |settings| {
        settings.graphql.user_requests_per_minute = 0;
        settings.graphql.ip_requests_per_minute = 0;
        // A 100,000-row CSV is about 8 MB.
        settings.graphql.max_body_bytes = 64 << 20;
        settings.projections.alerts = false;
        // Consumer groups of this run alone: tansu 0.6 holds a group whose member left
        // without leaving (an earlier run's) for minutes before it assigns again.
        settings.projections.group_prefix = format!("{}projections", settings.kafka.topic_prefix);
        settings.database.max_connections = 16;
    })
    .await;
    let session = app.sign_up("bench").await;
    let bench = Bench {
        sizes,
        app,
        pool,
        session,
        database_url,
    };
    stream::price_coins(&bench)
        .await
        .context("pricing the coins")?;

    let emit = |figure: &Figure| {
        if args.json {
            eprintln!("{}", figure.line());
        } else {
            println!("{}", figure.line());
        }
    };
    let machine = report::machine(&bench.pool).await;
    for (key, value) in &machine {
        let line = format!("# {key}: {value}");
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    let mode = if args.quick { "--quick" } else { "full sizes" };
    eprintln!("# {mode}: {:?}", bench.sizes);

    let mut figures: Vec<Figure> = Vec::new();
    let mut projections = None;
    for scenario in SCENARIOS {
        if !wanted(scenario) {
            continue;
        }
        eprintln!("## {scenario}");
        let started = std::time::Instant::now();
        let result = match scenario {
            "commands" => write::commands(&bench).await,
            "import" => write::import(&bench).await,
            "rebuild" => write::rebuild(&bench).await,
            "ticks" => stream::ticks(&bench, &mut projections).await,
            "queries" => {
                stream::ensure_projections(&bench, &mut projections).await?;
                load::queries(&bench).await
            }
            "latency" => live::latency(&bench).await,
            "fanout" => {
                stream::ensure_projections(&bench, &mut projections).await?;
                live::fanout(&bench).await
            }
            "timetravel" => write::time_travel(&bench).await,
            _ => unreachable!("every scenario is matched"),
        };
        let scenario_figures = result.with_context(|| format!("scenario {scenario}"))?;
        for figure in &scenario_figures {
            emit(figure);
        }
        eprintln!("## {scenario}: {:.1} s", started.elapsed().as_secs_f64());
        figures.extend(scenario_figures);
    }
    drop(projections);
    if args.json {
        let document = json!({
            "machine": machine.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
            "quick": args.quick,
            "figures": figures.iter().map(Figure::json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
    }
    Ok(())
}
