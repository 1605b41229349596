//! The `project` role and the `projections` commands: every projection as its own task,
//! the alert evaluator beside them, `status`, and `rebuild NAME` with a progress bar.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use coinfold_commands::event_store::PgEventRepository;
use coinfold_commands::service::{
    Actor, CommandContext, CommandError, CommandOptions, CommandService,
};
use coinfold_domain::alert::{Alert, AlertCommand, AlertError, Observation};
use coinfold_projections::alerting::{AlertTrigger, Evaluator};
use coinfold_projections::ingest::producer::producer_config;
use coinfold_projections::models::{
    alerts::Alerts, coins::Coins, market::Market, portfolios::Portfolios, sentiment::Sentiment,
    users::Users,
};
use coinfold_projections::projection::notify::{self, Notifier};
use coinfold_projections::projection::rebuild::{self, Progress};
use coinfold_projections::projection::registry::{self, ALL};
use coinfold_projections::projection::stream_runner::StreamSource;
use coinfold_projections::projection::{
    LogProjection, ProjectionError, RunSettings, StreamProjection, log_runner, status,
    stream_runner,
};
use rdkafka::producer::FutureProducer;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::settings::Settings;

/// Sends `TriggerAlert` through the command service, as the system role
/// `alert-evaluator`.
pub struct CommandTrigger {
    alerts: CommandService<Alert>,
}

impl CommandTrigger {
    pub fn new(pool: PgPool, topic_prefix: &str) -> Self {
        Self::over(PgEventRepository::new(pool, topic_prefix))
    }

    /// Over a repository of the caller's, e.g. one that rings the log's doorbell
    /// (`notify::ring_log`), so the owner's `events` subscription sees a trigger at once.
    pub fn over(repo: PgEventRepository) -> Self {
        Self {
            alerts: CommandService::new(repo, (), CommandOptions::default()),
        }
    }
}

impl AlertTrigger for CommandTrigger {
    async fn trigger(
        &self,
        alert_id: Uuid,
        observation: Observation,
        idempotency_key: String,
    ) -> Result<bool, String> {
        trigger_alert(&self.alerts, alert_id, observation, idempotency_key).await
    }
}

/// Sends `TriggerAlert` as the system role `alert-evaluator` (the evaluator's ticks and
/// `createAlert`'s check at creation): true when the alert fired.
pub async fn trigger_alert(
    alerts: &CommandService<Alert>,
    alert_id: Uuid,
    observation: Observation,
    idempotency_key: String,
) -> Result<bool, String> {
    let context = CommandContext::new(Actor::System("alert-evaluator".to_owned()))
        .with_idempotency_key(idempotency_key);
    match alerts
        .execute(
            &alert_id.to_string(),
            AlertCommand::Trigger { observation },
            &context,
        )
        .await
    {
        Ok(outcome) => Ok(outcome.events > 0 && !outcome.replayed),
        // Deleted meanwhile, or the read model was behind: nothing to fire.
        Err(CommandError::Rejected(AlertError::NotFound | AlertError::ConditionNotMet)) => {
            Ok(false)
        }
        Err(error) => Err(error.to_string()),
    }
}

pub fn run_settings(settings: &Settings) -> RunSettings {
    RunSettings {
        batch_size: settings.projections.batch_size,
        linger: Duration::from_millis(settings.projections.linger_ms),
        ..RunSettings::default()
    }
}

fn stream_source(settings: &Settings, name: &str) -> StreamSource {
    StreamSource {
        brokers: settings.kafka.brokers.clone(),
        topic_prefix: settings.kafka.topic_prefix.clone(),
        group_id: format!("{}.{name}", settings.projections.group_prefix),
        instance_id: settings.projections.instance_id.clone(),
    }
}

pub async fn connect(settings: &Settings, connections: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(settings.database.acquire_timeout)
        .connect_with(settings.database.connect_options())
        .await
        .context("cannot connect to PostgreSQL at DATABASE_URL")
}

/// A task failed: it starts again after a pause, from its checkpoint.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// Runs `attempt` again after a pause each time it fails, until it finishes or
/// `cancel` fires; what it finished with.
async fn keep<T, Fut>(
    name: &str,
    cancel: &CancellationToken,
    mut attempt: impl FnMut() -> Fut,
) -> Option<T>
where
    Fut: Future<Output = Result<T, ProjectionError>>,
{
    while !cancel.is_cancelled() {
        match attempt().await {
            Ok(done) => return Some(done),
            Err(error) => {
                tracing::error!(task = name, %error, "failed; restarting from its checkpoint");
                tokio::time::sleep(RESTART_AFTER).await;
            }
        }
    }
    None
}

async fn keep_log<P: LogProjection + 'static>(
    pool: PgPool,
    projection: P,
    settings: RunSettings,
    notifier: Notifier,
    cancel: CancellationToken,
) {
    keep(projection.name(), &cancel, || {
        log_runner::run(
            pool.clone(),
            &projection,
            &settings,
            Some(&notifier),
            cancel.clone(),
        )
    })
    .await;
}

async fn keep_stream<P: StreamProjection + 'static>(
    pool: PgPool,
    projection: P,
    source: StreamSource,
    settings: RunSettings,
    notifier: Notifier,
    producer: FutureProducer,
    cancel: CancellationToken,
) {
    keep(projection.name(), &cancel, || {
        stream_runner::run(
            pool.clone(),
            &projection,
            &source,
            &settings,
            Some(&notifier),
            Some(&producer),
            cancel.clone(),
        )
    })
    .await;
}

/// Runs the projections named in `only` (all when empty) and, unless disabled or left
/// out of `only`, the alert evaluator (`alert-evaluator`), until `cancel` fires.
pub async fn run(
    settings: &Settings,
    only: &[String],
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    for name in only {
        if name != "alert-evaluator" {
            registry::find(name)?;
        }
    }
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let pool = connect(settings, settings.database.max_connections.max(8)).await?;
    let prefix = &settings.kafka.topic_prefix;
    let notifier = Notifier::connect(settings.redis.url.expose_secret(), prefix)
        .await
        .context("cannot connect to Redis at REDIS_URL")?;
    let producer: FutureProducer =
        producer_config(&settings.kafka.brokers, &settings.kafka.client_id)
            .create()
            .context("creating the dead-letter producer")?;
    let run = run_settings(settings);
    let mut tasks = JoinSet::new();
    macro_rules! log_task {
        ($projection:expr) => {
            if wanted($projection.name()) {
                tasks.spawn(keep_log(
                    pool.clone(),
                    $projection,
                    run.clone(),
                    notifier.clone(),
                    cancel.clone(),
                ));
            }
        };
    }
    macro_rules! stream_task {
        ($projection:expr) => {
            if wanted($projection.name()) {
                let source = stream_source(settings, $projection.name());
                tasks.spawn(keep_stream(
                    pool.clone(),
                    $projection,
                    source,
                    run.clone(),
                    notifier.clone(),
                    producer.clone(),
                    cancel.clone(),
                ));
            }
        };
    }
    log_task!(Portfolios);
    log_task!(Users);
    log_task!(Alerts);
    stream_task!(Market);
    stream_task!(Coins);
    stream_task!(Sentiment);
    if settings.projections.alerts && wanted("alert-evaluator") {
        let source = stream_source(settings, "alert-evaluator");
        let redis = redis::Client::open(settings.redis.url.expose_secret())
            .context("REDIS_URL is not a Redis URL")?;
        let trigger = CommandTrigger::over(
            PgEventRepository::new(pool.clone(), prefix).ringing(notify::ring_log(redis, prefix)),
        );
        let (pool, run, cancel) = (pool.clone(), run.clone(), cancel.clone());
        tasks.spawn(async move {
            let stats = keep("alert-evaluator", &cancel, || {
                Evaluator::new(pool.clone(), &trigger).run(&source, &run, cancel.clone())
            })
            .await;
            if let Some(stats) = stats {
                tracing::info!(
                    ticks = stats.ticks,
                    triggered = stats.triggered,
                    "alert evaluator stopped"
                );
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a projection task panicked")?;
    }
    Ok(())
}

/// `coinfold projections status`.
pub async fn print_status(settings: &Settings, partitions: bool) -> anyhow::Result<()> {
    let pool = connect(settings, 2).await?;
    let lines = status::all(&pool, &settings.kafka.brokers, &settings.kafka.topic_prefix).await?;
    let table = status::Table {
        lines: &lines,
        partitions,
    };
    print!("{table}");
    Ok(())
}

/// `n` with its thousands separated by commas: `1,000,014`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One line of the progress bar.
pub fn progress_line(name: &str, p: &Progress) -> String {
    const WIDTH: usize = 30;
    let fraction = if p.total == 0 {
        1.0
    } else {
        (p.applied as f64 / p.total as f64).min(1.0)
    };
    let filled = (fraction * WIDTH as f64).round() as usize;
    let eta = p.eta().map_or_else(
        || "-".to_owned(),
        |eta| format!("{:.0}s", eta.as_secs_f64()),
    );
    format!(
        "rebuild {name} [{}{}] {:>5.1}% {}/{} events {} events/s ETA {eta}",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        fraction * 100.0,
        thousands(p.applied),
        thousands(p.total),
        thousands(p.rate().round() as u64),
    )
}

/// `coinfold projections rebuild NAME`.
pub async fn rebuild(settings: &Settings, name: &str) -> anyhow::Result<()> {
    let entry = registry::find(name)?;
    let pool = connect(settings, 4).await?;
    let run = run_settings(settings);
    let mut last_print = std::time::Instant::now() - Duration::from_secs(1);
    let mut stderr = std::io::stderr();
    let mut show = |p: &Progress| {
        if last_print.elapsed() >= Duration::from_millis(200) || p.applied >= p.total {
            last_print = std::time::Instant::now();
            let _ = write!(stderr, "\r{}", progress_line(entry.name, p));
            let _ = stderr.flush();
        }
    };
    let batch = run.batch_size;
    let report = match entry.name {
        "portfolios" => rebuild::rebuild_log(&pool, &Portfolios, batch, &mut show).await,
        "users" => rebuild::rebuild_log(&pool, &Users, batch, &mut show).await,
        "alerts" => rebuild::rebuild_log(&pool, &Alerts, batch, &mut show).await,
        "market" => {
            let source = stream_source(settings, "market");
            rebuild::rebuild_stream(&pool, &Market, &source, &run, &mut show).await
        }
        "coins" => {
            let source = stream_source(settings, "coins");
            rebuild::rebuild_stream(&pool, &Coins, &source, &run, &mut show).await
        }
        "sentiment" => {
            let source = stream_source(settings, "sentiment");
            rebuild::rebuild_stream(&pool, &Sentiment, &source, &run, &mut show).await
        }
        other => Err(ProjectionError::Unknown(
            other.to_owned(),
            ALL.iter().map(|e| e.name).collect::<Vec<_>>().join(", "),
        )),
    };
    eprintln!();
    let report = report.with_context(|| format!("rebuilding {name}"))?;
    let seconds = report.elapsed.as_secs_f64();
    println!(
        "rebuilt {}: {} events in {:.1} s ({} events/s); the new tables are live",
        report.projection,
        thousands(report.applied),
        seconds,
        thousands(if seconds > 0.0 {
            (report.applied as f64 / seconds).round() as u64
        } else {
            report.applied
        }),
    );
    Ok(())
}
