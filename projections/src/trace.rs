//! Continuing a command's trace on the read side.
//!
//! A command stores the W3C `traceparent` of its span in each event's metadata and
//! outbox headers (`coinfold-commands`' `trace_context`). The relay publishes each
//! traced row in a `relay.publish` span, a child of the command's, and sends that
//! span's own `traceparent` in the Kafka headers; each log projection applies a traced
//! event in a `projection.apply` span, also a child of the command's. With tracing
//! export off, the global propagator is a no-op and these spans join no trace.

use std::collections::HashMap;

use opentelemetry::propagation::Extractor;
use serde_json::{Map, Value};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const TRACEPARENT: &str = "traceparent";

/// A JSON object (event metadata, outbox headers) read as W3C trace headers.
struct JsonCarrier<'a>(&'a Map<String, Value>);

impl Extractor for JsonCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.as_str()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// True when `object` (event metadata or outbox headers) carries a trace context.
pub fn is_traced(object: &Value) -> bool {
    object.get(TRACEPARENT).is_some_and(Value::is_string)
}

/// Makes `span` a child of the trace context in `object`; call it before the span
/// is entered. Nothing happens when `object` carries none.
pub fn continue_from(span: &tracing::Span, object: &Value) {
    if let Value::Object(map) = object {
        continue_with(span, &JsonCarrier(map));
    }
}

/// Makes `span` a child of the trace context `carrier` holds (W3C headers of any
/// kind: the API passes HTTP headers); call it before the span is entered.
pub fn continue_with(span: &tracing::Span, carrier: &dyn Extractor) {
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(carrier));
    // Fails only without the OpenTelemetry layer, when there is nothing to join.
    let _ = span.set_parent(parent);
}

/// `span`'s context as W3C header entries, to send on.
pub fn context_of(span: &tracing::Span) -> HashMap<String, String> {
    let context = span.context();
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    carrier
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_a_string_traceparent_counts_as_traced() {
        assert!(is_traced(&json!({
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        })));
        assert!(!is_traced(&json!({ "event_id": "e-1" })));
        assert!(!is_traced(&json!({ "traceparent": 7 })));
        assert!(!is_traced(&json!([1, 2])));
    }
}
