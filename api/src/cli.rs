//! The `coinfold` command line: the roles (`serve`, `project`, `ingest`, `relay`, and
//! `all` of them in one process), `demo`, and the tools (`migrate`, `history`,
//! `import`, `projections`, `replay`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};

use coinfold_commands::history::AsOf;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::history_view;
use crate::settings::Settings;
use crate::startup::{App, shutdown_signal};
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "coinfold",
    version,
    about = "Crypto portfolio tracking and market analytics, event-sourced"
)]
pub struct Cli {
    /// Directory holding base.toml.
    #[arg(
        long,
        env = "COINFOLD_CONFIG_DIR",
        default_value = "deploy/config",
        global = true
    )]
    pub config_dir: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database if it is missing and apply every pending migration.
    /// Running it again changes nothing.
    Migrate,
    /// Serve the HTTP API (/health, /ready).
    Serve,
    /// Print a portfolio's events with their metadata; with --as-of, --effective-at or
    /// --version, also its state at that point.
    History {
        /// The portfolio's id.
        portfolio: Uuid,
        /// The state as recorded by this time (RFC 3339, e.g. 2026-01-31T00:00:00Z).
        #[arg(long, value_parser = parse_time, conflicts_with_all = ["effective_at", "version"])]
        as_of: Option<OffsetDateTime>,
        /// The state at this effective time, as known now (RFC 3339).
        #[arg(long, value_parser = parse_time, conflicts_with = "version")]
        effective_at: Option<OffsetDateTime>,
        /// The state after this event.
        #[arg(long)]
        version: Option<usize>,
        /// Print the events after this one.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Print at most this many events (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Run the market and news connectors, the producer and the sentiment worker.
    /// With --replay, the connectors read recordings played by local servers instead
    /// of the live endpoints.
    Ingest {
        /// A replay file, or a folder of them (*.jsonl); may be given several times.
        #[arg(long)]
        replay: Vec<PathBuf>,
        /// Playback speed of the recordings: 10 plays ten times faster.
        #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
        speed: f64,
        /// Play the recordings once, their times moved to now, and stop sending
        /// (by default they loop, each pass going on from the one before).
        #[arg(long, requires = "replay")]
        once: bool,
        /// Stop after this many seconds (default: run until interrupted).
        #[arg(long)]
        for_seconds: Option<u64>,
    },
    /// Publish the outbox to `coinfold.domain-events` (one relay publishes at a time;
    /// start more for availability).
    Relay,
    /// Every role in one process: the API, the projection workers, ingest and the
    /// relay. The single-machine default.
    All {
        /// Replay these recordings (files or folders of *.jsonl) instead of the live
        /// endpoints; may be given several times.
        #[arg(long)]
        replay: Vec<PathBuf>,
        /// Playback speed of the recordings.
        #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
        speed: f64,
        /// Play the recordings once, their times moved to now, and stop sending
        /// (by default they loop, each pass going on from the one before).
        #[arg(long, requires = "replay")]
        once: bool,
    },
    /// The whole system on this machine: brings the local services up
    /// (deploy/local/up.sh), migrates, runs every role with the recorded feeds, seeds
    /// two users with portfolios, trades and alerts, and prints what moves.
    Demo {
        /// The recordings to play.
        #[arg(long, default_value = "recordings")]
        recordings: PathBuf,
        /// Playback speed (the shipped recordings hold 12 minutes of market).
        #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
        speed: f64,
        /// Do not run deploy/local/up.sh (the services are already up and the
        /// environment names them).
        #[arg(long)]
        no_up: bool,
        /// Seconds between status lines.
        #[arg(long, default_value_t = 10)]
        every: u64,
        /// Stop after this many seconds (default: run until interrupted).
        #[arg(long)]
        for_seconds: Option<u64>,
        /// The demo's database, dropped and made again (the browser tests give
        /// theirs another name, so they never touch a running demo's).
        #[arg(long, default_value = crate::demo::DEMO_DATABASE)]
        database: String,
    },
    /// Import a CSV export of trades into a portfolio, all or none (as the operator).
    Import {
        file: PathBuf,
        #[arg(long, value_parser = parse_format)]
        format: coinfold_commands::import::ImportFormat,
        /// The portfolio's id.
        #[arg(long)]
        portfolio: Uuid,
    },
    /// Run the projection workers (each read model's fold) and the alert evaluator.
    Project {
        /// Run only these (a projection's name or `alert-evaluator`); may be repeated.
        #[arg(long)]
        only: Vec<String>,
    },
    /// Inspect or rebuild projections.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Make or play recorded feeds.
    Replay {
        #[command(subcommand)]
        command: ReplayCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Each projection's checkpoint, lag and state.
    Status {
        /// Also each partition of the Kafka-fed projections: its next offset, its lag and
        /// the process that applied it last (two `coinfold project` split them).
        #[arg(long)]
        partitions: bool,
    },
    /// Fold a projection from the beginning into new tables and swap them in while the
    /// old ones keep serving.
    Rebuild {
        /// portfolios, users, alerts, market, coins or sentiment.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// Write the model-made recordings (binance, coinbase, coingecko, news) into a folder.
    Generate {
        /// The folder to write into.
        #[arg(long, default_value = "recordings")]
        out: PathBuf,
        /// Minutes of market time (the shipped files: 12).
        #[arg(long, default_value_t = 12)]
        minutes: u32,
        /// The model's seed (the shipped files: 7).
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Play one recording on 127.0.0.1 until interrupted.
    Serve {
        file: PathBuf,
        #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
        speed: f64,
        /// 0 picks a free port.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Play the recording once, its times moved to now, and stop sending (by
        /// default it loops, each pass going on from the one before).
        #[arg(long)]
        once: bool,
    },
}

fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(speed) if speed.is_finite() && speed > 0.0 && speed <= 10_000.0 => Ok(speed),
        _ => Err(format!("{text:?} is not a speed between 0 and 10000")),
    }
}

fn parse_format(text: &str) -> Result<coinfold_commands::import::ImportFormat, String> {
    text.parse()
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .map_err(|e| format!("{e} (expected RFC 3339, e.g. 2026-01-31T00:00:00Z)"))
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Replay tools need no configuration.
    if let Command::Replay { command } = cli.command {
        telemetry::init("info", std::io::stderr);
        return replay(command).await;
    }
    // The demo brings the services up before it reads the settings they complete.
    if let Command::Demo {
        recordings,
        speed,
        no_up,
        every,
        for_seconds,
        database,
    } = cli.command
    {
        return crate::demo::run(crate::demo::DemoOptions {
            config_dir: cli.config_dir,
            recordings,
            speed,
            up: !no_up,
            every: std::time::Duration::from_secs(every.max(1)),
            for_seconds,
            database,
        })
        .await;
    }
    let settings = Settings::load(&cli.config_dir)
        .with_context(|| format!("loading settings from {}", cli.config_dir.display()))?;
    match cli.command {
        Command::Migrate => {
            telemetry::init("warn", std::io::stderr);
            migrate(&settings).await
        }
        Command::History {
            portfolio,
            as_of,
            effective_at,
            version,
            after,
            limit,
        } => {
            telemetry::init("warn", std::io::stderr);
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .connect_with(settings.database.connect_options())
                .await
                .context("cannot connect to PostgreSQL at DATABASE_URL")?;
            let as_of = match (as_of, effective_at, version) {
                (Some(t), _, _) => Some(AsOf::RecordedAt(t)),
                (_, Some(t), _) => Some(AsOf::EffectiveAt(t)),
                (_, _, Some(v)) => Some(AsOf::Version(v)),
                _ => None,
            };
            print!(
                "{}",
                history_view::render(&pool, portfolio, as_of, after, limit).await?
            );
            Ok(())
        }
        Command::Replay { .. } | Command::Demo { .. } => Ok(()),
        Command::Relay => {
            as_role("relay", async {
                let cancel = stop_on_signal();
                crate::startup::spawn_ops(&settings, cancel.clone()).await?;
                crate::roles::relay(&settings, cancel).await
            })
            .await
        }
        Command::All {
            replay,
            speed,
            once,
        } => {
            as_role("all", async move {
                crate::roles::all(
                    settings,
                    crate::roles::Feeds {
                        replay,
                        speed,
                        once,
                    },
                    stop_on_signal(),
                    None,
                )
                .await
            })
            .await
        }
        Command::Import {
            file,
            format,
            portfolio,
        } => {
            telemetry::init("warn", std::io::stderr);
            import(&settings, &file, format, portfolio).await
        }
        Command::Ingest {
            replay,
            speed,
            once,
            for_seconds,
        } => {
            as_role(
                "ingest",
                ingest(&settings, &replay, speed, once, for_seconds),
            )
            .await
        }
        Command::Project { only } => {
            as_role("project", async {
                let cancel = stop_on_signal();
                crate::startup::spawn_ops(&settings, cancel.clone()).await?;
                crate::project::run(&settings, &only, cancel).await
            })
            .await
        }
        Command::Projections { command } => {
            telemetry::init("warn", std::io::stderr);
            match command {
                ProjectionsCommand::Status { partitions } => {
                    crate::project::print_status(&settings, partitions).await
                }
                ProjectionsCommand::Rebuild { name } => {
                    crate::project::rebuild(&settings, &name).await
                }
            }
        }
        Command::Serve => {
            as_role("serve", async {
                let app = App::build(&settings).await?;
                app.run_until_stopped(shutdown_signal())
                    .await
                    .context("the HTTP server failed")
            })
            .await
        }
    }
}

/// Runs a long-running role with its logs on stdout and, when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, its spans exported (the last ones sent
/// before it returns).
async fn as_role(role: &str, run: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let tracing = telemetry::init_role(role, "info,coinfold=info", std::io::stdout)?;
    let result = run.await;
    tracing.shutdown().await;
    result
}

pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    let url = settings.database.url.expose_secret();
    let database = settings
        .database
        .connect_options()
        .get_database()
        .unwrap_or("(default)")
        .to_owned();
    if !Postgres::database_exists(url)
        .await
        .context("cannot reach PostgreSQL at DATABASE_URL")?
    {
        Postgres::create_database(url)
            .await
            .with_context(|| format!("cannot create database {database}"))?;
        println!("created database {database}");
    }
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(settings.database.connect_options())
        .await
        .context("cannot connect to PostgreSQL at DATABASE_URL")?;
    let before = applied_migrations(&pool).await?;
    coinfold_commands::store::migrate(&pool)
        .await
        .context("applying migrations")?;
    let after = applied_migrations(&pool).await?;
    println!(
        "database {database}: {} migration(s) applied now, {after} in all, at version {}",
        after - before,
        coinfold_commands::store::latest_version().unwrap_or(0),
    );
    Ok(())
}

async fn applied_migrations(pool: &PgPool) -> anyhow::Result<i64> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(0);
    }
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?,
    )
}

async fn ingest(
    settings: &Settings,
    replay: &[PathBuf],
    speed: f64,
    once: bool,
    for_seconds: Option<u64>,
) -> anyhow::Result<()> {
    let cancel = stop_on_signal();
    cancel_after(&cancel, for_seconds);
    crate::startup::spawn_ops(settings, cancel.clone()).await?;
    let report = crate::roles::ingest(settings, replay, speed, once, cancel).await?;
    let produced = report.produced;
    println!(
        "ingest: produced {} ticks, {} coins, {} articles, {} dead letters; scored {} articles",
        produced.ticks,
        produced.coins,
        produced.articles,
        produced.dead_letters,
        report.articles_scored
    );
    for (source, s) in report.connectors {
        println!(
            "  {source}: {} messages, {} ticks, {} dead letters, {} connections, {} reconnects, {} sequence gaps, {} rate limited",
            s.messages,
            s.ticks,
            s.dead_letters,
            s.connections,
            s.reconnects,
            s.sequence_gaps,
            s.rate_limited
        );
    }
    Ok(())
}

/// A token cancelled on Ctrl-C or SIGTERM.
pub fn stop_on_signal() -> tokio_util::sync::CancellationToken {
    let cancel = tokio_util::sync::CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.cancel();
    });
    cancel
}

/// Cancels `cancel` after `seconds`, when given.
pub fn cancel_after(cancel: &tokio_util::sync::CancellationToken, seconds: Option<u64>) {
    if let Some(seconds) = seconds {
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
            stop.cancel();
        });
    }
}

/// `coinfold import`: the file's trades into the portfolio as one command.
async fn import(
    settings: &Settings,
    file: &std::path::Path,
    format: coinfold_commands::import::ImportFormat,
    portfolio: Uuid,
) -> anyhow::Result<()> {
    use coinfold_commands::event_store::PgEventRepository;
    use coinfold_commands::service::{Actor, CommandContext, CommandOptions, CommandService};
    use coinfold_domain::portfolio::Portfolio;

    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let pool = crate::project::connect(settings, 2).await?;
    let service: CommandService<Portfolio> = CommandService::new(
        PgEventRepository::new(pool, &settings.kafka.topic_prefix),
        (),
        CommandOptions::default(),
    );
    let id = portfolio.to_string();
    let loaded = service.load(&id).await.context("loading the portfolio")?;
    let state = loaded
        .state()
        .with_context(|| format!("no portfolio {portfolio}"))?;
    let parsed = coinfold_commands::import::parse(format, &text, portfolio, &state.currency)
        .with_context(|| format!("{} was not imported", file.display()))?;
    let (command, lines) = coinfold_commands::import::command(parsed.trades);
    let context = CommandContext::new(Actor::System("cli:import".to_owned()));
    let outcome = service
        .execute(&id, command, &context)
        .await
        .map_err(|error| match error {
            coinfold_commands::service::CommandError::Rejected(refused) => {
                match lines.refusal(refused) {
                    (Some(line), why) => {
                        anyhow::anyhow!("{} was not imported: line {line}: {why}", file.display())
                    }
                    (None, why) => anyhow::anyhow!("{} was not imported: {why}", file.display()),
                }
            }
            other => anyhow::Error::new(other).context("the import failed"),
        })?;
    println!(
        "imported {} trade(s) into {portfolio}; {} already recorded; {} line(s) skipped",
        outcome.events,
        lines.count().saturating_sub(outcome.events),
        parsed.skipped.len()
    );
    for skipped in parsed.skipped {
        println!("  line {}: {}", skipped.line, skipped.reason);
    }
    Ok(())
}

async fn replay(command: ReplayCommand) -> anyhow::Result<()> {
    use coinfold_projections::ingest::replay::ReplayFile;
    use coinfold_projections::ingest::replay_server::{Passes, PingPolicy, Playback, ReplayServer};
    use coinfold_projections::ingest::synth::{self, SynthConfig};

    match command {
        ReplayCommand::Generate { out, minutes, seed } => {
            let config = SynthConfig {
                minutes,
                seed,
                ..SynthConfig::shipped()
            };
            let recordings = synth::generate(&config).context("generating the recordings")?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for (name, bytes) in [
                ("binance.jsonl", &recordings.binance),
                ("coinbase.jsonl", &recordings.coinbase),
                ("coingecko.jsonl", &recordings.coingecko),
                ("news.jsonl", &recordings.news),
            ] {
                let path = out.join(name);
                std::fs::write(&path, bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {} ({} bytes)", path.display(), bytes.len());
            }
            Ok(())
        }
        ReplayCommand::Serve {
            file,
            speed,
            port,
            once,
        } => {
            let recording = ReplayFile::open(&file).context("reading the replay file")?;
            let passes = if once { Passes::Once } else { Passes::Forever };
            let playback = Playback::new(recording, speed, PingPolicy::default(), passes);
            let server = ReplayServer::start(([127, 0, 0, 1], port).into(), playback)
                .await
                .context("starting the replay server")?;
            println!("playing {} at {}", file.display(), server.url());
            shutdown_signal().await;
            server.stop().await;
            Ok(())
        }
    }
}
