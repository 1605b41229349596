//! The `coinfold` command line. Each subcommand is here only once it works; see
//! `docs/ARCHITECTURE.md` for the ones still planned (project, ingest, relay, all,
//! projections, import, demo).

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
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .map_err(|e| format!("{e} (expected RFC 3339, e.g. 2026-01-31T00:00:00Z)"))
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
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
        Command::Serve => {
            telemetry::init("info,coinfold=info", std::io::stdout);
            let app = App::build(&settings).await?;
            app.run_until_stopped(shutdown_signal())
                .await
                .context("the HTTP server failed")
        }
    }
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
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
