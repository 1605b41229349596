//! The trace a command runs in, written into its events' metadata.
//!
//! With tracing export on (`OTEL_EXPORTER_OTLP_ENDPOINT`, see the api's telemetry),
//! the W3C `traceparent` (and `tracestate`, if any) of the command's span is stored in
//! each event's metadata and in its outbox row's headers. The relay and the
//! projections continue that trace when they handle the event, and outside consumers
//! find it in the Kafka headers. With export off, the global propagator is a no-op and
//! nothing is stored.

use std::collections::HashMap;

use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The metadata keys (the W3C header names).
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// The current span's context as `traceparent` and `tracestate` entries; empty when
/// nothing is traced.
pub fn current() -> HashMap<String, String> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut carrier);
    });
    carrier
}
