//! Logging and tracing: `tracing` events as JSON lines, filtered by `RUST_LOG`; and,
//! for the long-running roles, spans exported over OTLP/HTTP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! Log a failure once, where it is handled. Never put a token, password, secret URL or
//! e-mail address in a field: settings hold secrets as `SecretString`, whose `Debug`
//! is redacted, so `?settings` is safe to log.
//!
//! **Tracing.** [`init_role`] adds an OpenTelemetry layer when the endpoint is set
//! (and `OTEL_SDK_DISABLED` is not `true`). Spans go to
//! `$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces` as protobuf, in batches (the SDK's
//! `OTEL_BSP_*` variables tune them), with `service.name` from `OTEL_SERVICE_NAME` or
//! else `coinfold-<role>`. Only coinfold's own spans are exported (their targets are
//! `coinfold_*`), never the HTTP client's that sends them. One trace runs:
//! - `http.request` (continuing an incoming W3C `traceparent` header) and `graphql`
//!   (its `graphql.operation`, e.g. `mutation createPortfolio`), in `serve`;
//! - `command` and `event_store.append` (`coinfold-commands`), which store the
//!   command's `traceparent` in each event's metadata and outbox headers;
//! - `relay.publish` in `relay`, whose `traceparent` travels on in the Kafka headers;
//! - `projection.apply` in `project`, for each log projection that applies the event.

use anyhow::Context as _;
use axum::http::{HeaderMap, HeaderName};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Installs the global subscriber: JSON lines on `writer`, the level from `RUST_LOG`
/// or else `default_filter`. `log` records (librdkafka, sqlx) are forwarded too.
/// Returns false when a subscriber was already installed (tests call it repeatedly).
pub fn init<W>(default_filter: &str, writer: W) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    install(default_filter, writer, None)
}

/// What [`init_role`] set up; [`Tracing::shutdown`] sends the spans still held.
#[must_use = "shut it down when the role ends, or the last spans are lost"]
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Tracing {
    /// True when spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is still batched and stops the exporter.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The SDK waits for its batch task, which runs on this runtime: wait elsewhere.
        let stopped = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = stopped {
            tracing::warn!(%error, "tracing: exporting the last spans failed");
        }
    }
}

/// [`init`], plus span export over OTLP/HTTP for a long-running `role` (serve,
/// project, ingest, relay, all, demo) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
/// Must be called inside the tokio runtime (the exporter's batches run on it).
pub fn init_role<W>(role: &str, default_filter: &str, writer: W) -> anyhow::Result<Tracing>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let provider = export_requested().then(|| provider(role)).transpose()?;
    install(default_filter, writer, provider.as_ref());
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing::info!(role, "tracing: exporting spans over OTLP/HTTP");
    }
    Ok(Tracing { provider })
}

/// Makes `span` a child of the W3C trace context in `headers` (a client's
/// `traceparent`); nothing when there is none or nothing is exported.
pub fn continue_from_headers(span: &tracing::Span, headers: &HeaderMap) {
    if headers.contains_key("traceparent") {
        coinfold_projections::trace::continue_with(span, &HeaderCarrier(headers));
    }
}

struct HeaderCarrier<'a>(&'a HeaderMap);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

fn export_requested() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) && !disabled
}

fn provider(role: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .context("the OTLP exporter cannot be made from OTEL_EXPORTER_OTLP_*")?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(format!("coinfold-{role}"));
    }
    Ok(SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build(),
        )
        .with_resource(resource.build())
        .build())
}

fn install<W>(default_filter: &str, writer: W, provider: Option<&SdkTracerProvider>) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(writer)
        .with_filter(filter);
    let spans = provider.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("coinfold"))
            .with_filter(own_spans())
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .is_ok()
}

/// coinfold's own spans and events at info and above.
fn own_spans() -> Targets {
    ["coinfold_api", "coinfold_commands", "coinfold_projections"]
        .into_iter()
        .fold(Targets::new(), |targets, crate_name| {
            targets.with_target(crate_name, LevelFilter::INFO)
        })
}
