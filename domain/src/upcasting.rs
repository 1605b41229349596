//! Upcasters: stored events of an older shape, brought to the current one on load.
//!
//! Events are never rewritten in the store (it is append-only); every read path —
//! loading an aggregate, `load_as_of` — passes stored events through these first.
//!
//! - `TradeRecorded` version 1 was written before fees were recorded: its trade, its
//!   disposal and the disposals it re-derived have no `fee`. A missing fee was a zero
//!   fee, so version 2 is version 1 with `"fee": "0"` added in those three places.

use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde_json::{Value, json};

/// Every upcaster, by aggregate type, in the order they apply.
fn registered(aggregate_type: &str) -> &'static [&'static dyn EventUpcaster] {
    match aggregate_type {
        "Portfolio" => &[&TradeRecordedWithoutFee],
        _ => &[],
    }
}

/// A registered upcaster, boxed as cqrs-es's event store takes them.
struct Registered(&'static dyn EventUpcaster);

impl EventUpcaster for Registered {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        self.0.can_upcast(event_type, event_version)
    }

    fn upcast(&self, event: SerializedEvent) -> SerializedEvent {
        self.0.upcast(event)
    }
}

/// The upcasters for one aggregate type.
pub fn upcasters_for(aggregate_type: &str) -> Vec<Box<dyn EventUpcaster>> {
    registered(aggregate_type)
        .iter()
        .map(|upcaster| Box::new(Registered(*upcaster)) as Box<dyn EventUpcaster>)
        .collect()
}

/// A stored event's payload in the current shape, for readers that need only the
/// payload (projections, audit views). An event already current costs no allocation.
pub fn upcast_payload(
    aggregate_type: &str,
    event_type: &str,
    event_version: &str,
    payload: Value,
) -> Value {
    let upcasters = registered(aggregate_type);
    if !upcasters
        .iter()
        .any(|u| u.can_upcast(event_type, event_version))
    {
        return payload;
    }
    let mut event = SerializedEvent {
        aggregate_id: String::new(),
        sequence: 0,
        aggregate_type: aggregate_type.to_owned(),
        event_type: event_type.to_owned(),
        event_version: event_version.to_owned(),
        payload,
        metadata: Value::Null,
    };
    for upcaster in upcasters {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            event = upcaster.upcast(event);
        }
    }
    event.payload
}

/// Applies every upcaster that accepts the event, in order.
pub fn upcast(mut event: SerializedEvent, upcasters: &[Box<dyn EventUpcaster>]) -> SerializedEvent {
    for upcaster in upcasters {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            event = upcaster.upcast(event);
        }
    }
    event
}

/// `TradeRecorded` v1 → v2: adds the zero fee the old shape implied.
pub struct TradeRecordedWithoutFee;

impl EventUpcaster for TradeRecordedWithoutFee {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_type == "TradeRecorded" && event_version == "1"
    }

    fn upcast(&self, mut event: SerializedEvent) -> SerializedEvent {
        if let Some(body) = event.payload.get_mut("TradeRecorded") {
            add_zero_fee(body.get_mut("trade"));
            add_zero_fee(body.get_mut("disposal"));
            if let Some(Value::Array(rederived)) = body.get_mut("rederived") {
                for disposal in rederived {
                    add_zero_fee(Some(disposal));
                }
            }
        }
        event.event_version = "2".to_owned();
        event
    }
}

fn add_zero_fee(object: Option<&mut Value>) {
    if let Some(Value::Object(map)) = object {
        map.entry("fee").or_insert_with(|| json!("0"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(version: &str, payload: Value) -> SerializedEvent {
        SerializedEvent {
            aggregate_id: "p".to_owned(),
            sequence: 2,
            aggregate_type: "Portfolio".to_owned(),
            event_type: "TradeRecorded".to_owned(),
            event_version: version.to_owned(),
            payload,
            metadata: Value::Null,
        }
    }

    #[test]
    fn the_payload_alone_is_upcast_as_the_whole_event_is() {
        let v1 = json!({ "TradeRecorded": {
            "trade": { "quantity": "1" }, "disposal": null,
            "rederived": [{ "entry_id": "x" }] } });
        let whole = upcast(stored("1", v1.clone()), &upcasters_for("Portfolio"));
        assert_eq!(whole.event_version, "2");
        let payload = upcast_payload("Portfolio", "TradeRecorded", "1", v1);
        assert_eq!(payload, whole.payload);
        assert_eq!(payload["TradeRecorded"]["trade"]["fee"], "0");
        assert_eq!(payload["TradeRecorded"]["rederived"][0]["fee"], "0");
        // A current event, or another aggregate's, comes back as it was.
        let v2 = json!({ "TradeRecorded": { "trade": { "fee": "1.5" } } });
        assert_eq!(
            upcast_payload("Portfolio", "TradeRecorded", "2", v2.clone()),
            v2
        );
        assert_eq!(upcast_payload("User", "TradeRecorded", "1", v2.clone()), v2);
    }
}
