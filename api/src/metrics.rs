//! Prometheus metrics at `/metrics`.
//!
//! Every crate records through the `metrics` facade; this process renders them in the
//! Prometheus text format. What is exposed (and what `deploy/monitoring/` may use):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `coinfold_graphql_requests_total` | counter | `operation` (`query portfolio`, `mutation recordTrade`, … or `invalid`), `outcome` (`ok`, `error`) |
//! | `coinfold_graphql_request_duration_seconds` | histogram | `operation` |
//! | `coinfold_graphql_rate_limited_total` | counter (HTTP and new websockets refused with 429) | — |
//! | `coinfold_graphql_subscriptions_open` | gauge | — |
//! | `coinfold_projection_lag` | gauge, read at scrape time | `projection`, `source` (`log`, `kafka`) |
//! | `coinfold_projection_checkpoint` | gauge, read at scrape time | `projection`, `source` |
//! | `coinfold_projection_applied_total` | counter (events or messages a live runner committed) | `projection` |
//! | `coinfold_ingest_ticks_total` | counter (ticks handed to the producer) | `source` (`binance`, `coinbase`, `coingecko`) |
//! | `coinfold_dead_letters_total` | counter (messages sent to the dead-letter topic) | `source` (a connector: `binance`, `coinbase`, `coingecko`, `news`; the `sentiment` worker; or a projection: `market`, `coins`) |
//! | `coinfold_command_conflicts_total` | counter (version conflicts met) | `aggregate` |
//! | `coinfold_command_retries_total` | counter (commands decided again after a conflict) | `aggregate` |
//! | `coinfold_outbox_backlog` | gauge, read at scrape time | — |
//! | `coinfold_relay_published_total` | counter (relay role) | — |
//! | `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_threads`, `process_open_fds`, … | read at scrape time (`metrics-process`) | — |
//!
//! The scrape-time gauges are the same in every process that serves `/metrics`:
//! aggregate them with `max by (projection)`. Counters are per process.
//!
//! The operation label is the operation type and its first root field, and only a
//! field the schema has: a client cannot grow the label set with names of its own.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextSubscribe,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use async_graphql::{Response, ServerResult, Variables};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use tracing::Instrument as _;

use coinfold_projections::projection::checkpoint::EVENT_STORE;
use coinfold_projections::projection::status;
use coinfold_projections::relay;

/// Latency buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How long a scrape waits for the projections' status before leaving the lag out.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// The process's recorder, installed on first use (one per process: the app and the
/// workers of `coinfold all` share it, as do the apps of one test binary).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
            .expect("the buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was already installed; /metrics shows only this one's"
            );
        }
        register_known();
        handle
    })
}

/// The process's CPU, memory, threads and file descriptors, read at each scrape.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let collector = metrics_process::Collector::default();
        collector.describe();
        collector
    })
}

/// Every series whose labels are known in advance, at zero: `rate()` and the alert rules
/// see a counter from the first scrape, not from its first event.
fn register_known() {
    use coinfold_projections::ingest::Source;
    use coinfold_projections::projection::registry::{self, ALL};

    for aggregate in ["User", "Portfolio", "Alert"] {
        metrics::counter!("coinfold_command_conflicts_total", "aggregate" => aggregate)
            .increment(0);
        metrics::counter!("coinfold_command_retries_total", "aggregate" => aggregate).increment(0);
    }
    for source in [Source::Binance, Source::Coinbase, Source::Coingecko] {
        metrics::counter!("coinfold_ingest_ticks_total", "source" => source.as_str()).increment(0);
    }
    // The connectors and the sentiment worker, then the Kafka-fed projections.
    let mut dead_letter_sources = coinfold_projections::ingest::run::SOURCES.to_vec();
    dead_letter_sources.push("sentiment");
    for entry in ALL {
        metrics::counter!("coinfold_projection_applied_total", "projection" => entry.name)
            .increment(0);
        if matches!(entry.source, registry::Source::Kafka(_))
            && !dead_letter_sources.contains(&entry.name)
        {
            dead_letter_sources.push(entry.name);
        }
    }
    for source in dead_letter_sources {
        metrics::counter!("coinfold_dead_letters_total", "source" => source).increment(0);
    }
    metrics::counter!("coinfold_graphql_rate_limited_total").increment(0);
    metrics::counter!("coinfold_relay_published_total").increment(0);
    metrics::gauge!("coinfold_graphql_subscriptions_open").increment(0.0);
}

/// What `/metrics` reads at scrape time.
#[derive(Clone)]
pub struct MetricsState {
    pub db: PgPool,
    pub brokers: String,
    pub topic_prefix: String,
}

/// `/metrics`: the recorded metrics, with the projections' lag and the outbox backlog
/// read now.
pub async fn render(State(state): State<MetricsState>) -> impl IntoResponse {
    // The recorder is the process's: two apps in one process (the tests run several)
    // would otherwise set the gauges from their own databases between another's
    // reading and rendering them. One scrape at a time reads and renders its own.
    static SCRAPE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = SCRAPE.lock().await;
    let handle = handle();
    match tokio::time::timeout(
        STATUS_TIMEOUT,
        status::all(&state.db, &state.brokers, &state.topic_prefix),
    )
    .await
    {
        Ok(Ok(lines)) => {
            for line in lines {
                let name = line.name;
                let source = if line.source == EVENT_STORE {
                    "log"
                } else {
                    "kafka"
                };
                metrics::gauge!("coinfold_projection_checkpoint", "projection" => name, "source" => source)
                    .set(line.checkpoint as f64);
                if let Some(lag) = line.lag {
                    metrics::gauge!("coinfold_projection_lag", "projection" => name, "source" => source)
                        .set(lag as f64);
                }
            }
        }
        Ok(Err(error)) => tracing::warn!(%error, "metrics: reading the projections' status failed"),
        Err(_) => tracing::warn!("metrics: the projections' status took too long"),
    }
    process_collector().collect();
    match relay::backlog(&state.db).await {
        Ok(rows) => metrics::gauge!("coinfold_outbox_backlog").set(rows as f64),
        Err(error) => tracing::warn!(%error, "metrics: reading the outbox backlog failed"),
    }
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
}

/// The GraphQL extension that counts and times each request by operation, runs it in
/// a `graphql` span that names the operation, and counts open subscriptions.
pub struct Observe;

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObserveRequest::default())
    }
}

#[derive(Default)]
struct ObserveRequest {
    /// Set when the query parses and names a field of the schema.
    operation: Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl Extension for ObserveRequest {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        // `graphql.operation` (`mutation recordTrade`) is recorded once it is parsed.
        let span = tracing::info_span!("graphql", graphql.operation = tracing::field::Empty);
        let response = next.run(ctx).instrument(span).await;
        let operation = self
            .operation
            .lock()
            .ok()
            .and_then(|mut o| o.take())
            .unwrap_or_else(|| "invalid".to_owned());
        let outcome = if response.errors.is_empty() {
            "ok"
        } else {
            "error"
        };
        metrics::histogram!("coinfold_graphql_request_duration_seconds", "operation" => operation.clone())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("coinfold_graphql_requests_total", "operation" => operation, "outcome" => outcome)
            .increment(1);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let open = OpenSubscription::new();
        next.run(ctx, stream)
            .map(move |response| {
                let _held = &open;
                response
            })
            .boxed()
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if let Some(name) = operation_label(ctx, &document) {
            tracing::Span::current().record("graphql.operation", name.as_str());
            if let Ok(mut slot) = self.operation.lock() {
                *slot = Some(name);
            }
        }
        Ok(document)
    }
}

/// `query portfolio`: the operation's type and first root field, if the schema has it.
/// A document with several operations is labelled by its first.
fn operation_label(ctx: &ExtensionContext<'_>, document: &ExecutableDocument) -> Option<String> {
    let (_, operation) = document.operations.iter().next()?;
    let registry = &ctx.schema_env.registry;
    let (kind, root) = match operation.node.ty {
        OperationType::Query => ("query", Some(registry.query_type.as_str())),
        OperationType::Mutation => ("mutation", registry.mutation_type.as_deref()),
        OperationType::Subscription => ("subscription", registry.subscription_type.as_deref()),
    };
    let field = operation
        .node
        .selection_set
        .node
        .items
        .iter()
        .find_map(|item| match &item.node {
            Selection::Field(field) => Some(field.node.name.node.as_str()),
            _ => None,
        })?;
    let known = field.starts_with("__")
        || registry
            .types
            .get(root?)
            .and_then(|t| t.field_by_name(field))
            .is_some();
    known.then(|| format!("{kind} {field}"))
}

/// Counts one open subscription for as long as it lives.
struct OpenSubscription;

impl OpenSubscription {
    fn new() -> Self {
        metrics::gauge!("coinfold_graphql_subscriptions_open").increment(1.0);
        Self
    }
}

impl Drop for OpenSubscription {
    fn drop(&mut self) {
        metrics::gauge!("coinfold_graphql_subscriptions_open").decrement(1.0);
    }
}
