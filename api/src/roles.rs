//! The roles that run until stopped, alone (`relay`, `ingest`) or together (`all`).
//!
//! `all` is the single-machine default: the API, the projection workers with the alert
//! evaluator, ingest and the outbox relay in one process, sharing one cancellation:
//! Ctrl-C (or a role that fails for good) stops every role, each finishing its work in
//! flight. In a cluster each role runs as its own `coinfold` process instead.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use coinfold_commands::event_store::DOMAIN_EVENTS_TOPIC;
use coinfold_projections::ingest::producer::{ensure_topics, producer_config};
use coinfold_projections::ingest::replay_server::Passes;
use coinfold_projections::ingest::run::{self as ingest_run, KafkaTarget, Plan, Report};
use coinfold_projections::relay::{self, RelaySettings};
use rdkafka::producer::FutureProducer;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::project;
use crate::settings::Settings;
use crate::startup::App;

/// Partitions of `coinfold.domain-events` (keyed by aggregate id).
const DOMAIN_EVENTS_PARTITIONS: i32 = 6;

/// A relay that fails (database or broker away) starts again after this pause.
const RELAY_RESTART_AFTER: Duration = Duration::from_secs(1);

/// The `relay` role: publishes the outbox until `cancel` fires, restarting after a
/// failure (nothing is lost: unpublished rows stay in the outbox).
pub async fn relay(settings: &Settings, cancel: CancellationToken) -> anyhow::Result<()> {
    let pool = project::connect(settings, 3).await?;
    let topic = format!("{}{DOMAIN_EVENTS_TOPIC}", settings.kafka.topic_prefix);
    ensure_topics(
        &settings.kafka.brokers,
        &[(topic, DOMAIN_EVENTS_PARTITIONS)],
    )
    .await
    .context("creating the domain-events topic")?;
    let producer: FutureProducer =
        producer_config(&settings.kafka.brokers, &settings.kafka.client_id)
            .create()
            .context("creating the relay's producer")?;
    let mut total = 0;
    while !cancel.is_cancelled() {
        match relay::run(&pool, &producer, RelaySettings::default(), cancel.clone()).await {
            Ok(done) => {
                total += done.messages;
                break;
            }
            Err(error) => {
                tracing::error!(%error, "relay failed; starting again");
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = tokio::time::sleep(RELAY_RESTART_AFTER) => {}
                }
            }
        }
    }
    tracing::info!(relay.published = total, "relay stopped");
    Ok(())
}

/// The `ingest` role: the live connectors, or with `replay` the recordings played by
/// local servers (looping, or with `once` a single pass), until `cancel` fires.
pub async fn ingest(
    settings: &Settings,
    replay: &[PathBuf],
    speed: f64,
    once: bool,
    cancel: CancellationToken,
) -> anyhow::Result<Report> {
    let (plan, servers) = if replay.is_empty() {
        (
            Plan::live(&settings.ingest).map_err(anyhow::Error::msg)?,
            Vec::new(),
        )
    } else {
        let passes = if once { Passes::Once } else { Passes::Forever };
        Plan::replay(replay, speed, passes, &settings.ingest)
            .await
            .map_err(anyhow::Error::msg)?
    };
    for server in &servers {
        tracing::info!(url = %server.url(), feed = ?server.playback().file().header.feed, "replaying");
    }
    let kafka = KafkaTarget {
        brokers: settings.kafka.brokers.clone(),
        client_id: settings.kafka.client_id.clone(),
        topic_prefix: settings.kafka.topic_prefix.clone(),
    };
    let report = ingest_run::run(plan, &kafka, cancel, Duration::from_secs(10))
        .await
        .context("ingest failed")?;
    for server in servers {
        server.stop().await;
    }
    Ok(report)
}

/// Where `all` takes its market data from.
#[derive(Debug, Clone, Default)]
pub struct Feeds {
    /// Recordings to replay; the live endpoints when empty.
    pub replay: Vec<PathBuf>,
    pub speed: f64,
    /// Play the recordings once instead of looping them.
    pub once: bool,
}

/// The `all` role: API, projections, ingest and relay in this process until `cancel`
/// fires or one of them fails. `started` hears the API's address once it listens.
pub async fn all(
    settings: Settings,
    feeds: Feeds,
    cancel: CancellationToken,
    started: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> anyhow::Result<()> {
    let app = App::build(&settings).await?;
    let address = app.local_addr()?;
    if let Some(started) = started {
        let _ = started.send(address);
    }
    let mut roles: JoinSet<(&'static str, anyhow::Result<()>)> = JoinSet::new();
    {
        let cancel = cancel.clone();
        roles.spawn(async move {
            let served = app
                .run_until_stopped(async move { cancel.cancelled().await })
                .await
                .context("the HTTP server failed");
            ("serve", served)
        });
    }
    {
        let (settings, cancel) = (settings.clone(), cancel.clone());
        roles.spawn(async move { ("project", project::run(&settings, &[], cancel).await) });
    }
    {
        let (settings, cancel) = (settings.clone(), cancel.clone());
        roles.spawn(async move { ("relay", relay(&settings, cancel).await) });
    }
    {
        let (settings, cancel) = (settings.clone(), cancel.clone());
        roles.spawn(async move {
            let report = ingest(&settings, &feeds.replay, feeds.speed, feeds.once, cancel).await;
            let outcome = report.map(|report| {
                tracing::info!(
                    ingest.ticks = report.produced.ticks,
                    ingest.articles = report.produced.articles,
                    ingest.dead_letters = report.produced.dead_letters,
                    "ingest stopped"
                );
            });
            ("ingest", outcome)
        });
    }
    let mut failed = None;
    while let Some(joined) = roles.join_next().await {
        let (role, outcome) = joined.context("a role panicked")?;
        if let Err(error) = outcome {
            tracing::error!(role, error = %format!("{error:#}"), "role failed; stopping the others");
            failed.get_or_insert(error.context(format!("the {role} role failed")));
        } else if !cancel.is_cancelled() {
            tracing::warn!(role, "role finished before being stopped");
            continue;
        }
        cancel.cancel();
    }
    failed.map_or(Ok(()), Err)
}
