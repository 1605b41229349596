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

/// The upcasters for one aggregate type.
pub fn upcasters_for(aggregate_type: &str) -> Vec<Box<dyn EventUpcaster>> {
    match aggregate_type {
        "Portfolio" => vec![Box::new(TradeRecordedWithoutFee)],
        _ => Vec::new(),
    }
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
