//! The event contract as an AsyncAPI 3.0 document, generated from the event sets: every stream,
//! subject, `ce-type` with its version, the CloudEvents headers and the JSON Schema of every
//! payload. `jetsaga-lab docs` writes it to `docs/events/asyncapi.json`; a test fails when the
//! committed file is not what the code generates.
//!
//! Evolving an event: a new field is optional (`#[serde(default)]`), so events already in the
//! streams still decode and old consumers ignore nothing they need. A breaking change is a new
//! type, `jetsaga.<domain>.<event>.v2`, that consumers accept beside `.v1` for at least the
//! streams' retention (30 days) after the last `.v1` was published; only then is `.v1` dropped.

use crate::event_set::MessageDoc;
use crate::{EventSet, OrderEvent, PaymentEvent, PointsEvent, Producer, StockEvent, VoucherEvent};
use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

/// An event set's documentation, by its producer.
type Documented = fn(&mut SchemaGenerator) -> Vec<MessageDoc>;

/// jetsaga's event sets, in [`Producer::ALL`] order.
const SETS: [(Producer, Documented); 5] = [
    (Producer::ORDER, OrderEvent::documented),
    (Producer::VOUCHER, VoucherEvent::documented),
    (Producer::POINTS, PointsEvent::documented),
    (Producer::PAYMENT, PaymentEvent::documented),
    (Producer::STOCK, StockEvent::documented),
];

/// The AsyncAPI document of every jetsaga event.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft07()
        .with(|s| s.definitions_path = "#/components/schemas/".into())
        .into_generator();
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for (producer, documented) in SETS {
        for doc in documented(&mut generator) {
            let channel = doc.address.trim_end_matches(".{key}").to_owned();
            // Versions of one event share its subjects: one channel, a message per version.
            let entry = channels.entry(channel.clone()).or_insert_with(|| {
                json!({
                    "address": doc.address,
                    "description": format!(
                        "On stream {} (the {} service's own stream, subjects {}).",
                        producer.stream(), producer.service(), producer.subjects()
                    ),
                    "parameters": {
                        "key": {
                            "description": "What the event is about: the order id for saga events; the SKU, customer id or voucher code for admin events."
                        }
                    },
                    "messages": {}
                })
            });
            entry["messages"][doc.name] =
                json!({ "$ref": format!("#/components/messages/{}", doc.name) });
            operations.insert(
                format!("{}.publish{}", producer.service(), doc.name),
                json!({
                    "action": "send",
                    "channel": { "$ref": format!("#/channels/{channel}") },
                    "messages": [{ "$ref": format!("#/channels/{channel}/messages/{}", doc.name) }],
                    "summary": format!("The {} service publishes {}, through its outbox.", producer.service(), doc.name),
                }),
            );
            messages.insert(
                doc.name.to_owned(),
                json!({
                    "name": doc.name,
                    "title": doc.ce_type,
                    "contentType": "application/json",
                    "headers": {
                        "allOf": [
                            { "$ref": "#/components/schemas/CloudEventsHeaders" },
                            {
                                "type": "object",
                                "properties": {
                                    "ce-type": { "const": doc.ce_type },
                                    "ce-source": { "const": producer.source() }
                                }
                            }
                        ]
                    },
                    "payload": doc.payload.to_value(),
                }),
            );
        }
    }
    let mut schemas: Map<String, Value> = generator.take_definitions(true);
    schemas.insert("CloudEventsHeaders".to_owned(), headers());
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "jetsaga events",
            "version": "1.0.0",
            "description": "The domain events of the jetsaga order saga on NATS JetStream. One stream per producing service; subjects are <domain>.<event>.<key>; every event carries CloudEvents headers, and its ce-id is also its Nats-Msg-Id. Generated from the contracts crate: do not edit."
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "NATS 2.10 or newer with JetStream."
            }
        },
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages, "schemas": schemas }
    })
}

/// The headers every event carries (lowercase, as written by the kit's envelope).
fn headers() -> Value {
    let uuid = json!({ "type": "string", "format": "uuid" });
    json!({
        "type": "object",
        "required": [
            "ce-specversion", "ce-id", "ce-type", "ce-source", "ce-time", "ce-subject",
            "traceparent", "correlation-id", "causation-id", "Nats-Msg-Id"
        ],
        "properties": {
            "ce-specversion": { "const": "1.0" },
            "ce-id": uuid,
            "ce-type": {
                "type": "string",
                "pattern": "^jetsaga\\.[a-z_]+\\.[a-z_]+\\.v[0-9]+$",
                "description": "jetsaga.<domain>.<event>.v<N>: the schema version is part of the type."
            },
            "ce-source": { "type": "string", "description": "jetsaga/<service>" },
            "ce-time": { "type": "string", "format": "date-time" },
            "ce-subject": { "type": "string", "description": "The key: the order id for saga events." },
            "traceparent": {
                "type": "string",
                "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "W3C Trace Context."
            },
            "correlation-id": { "type": "string", "description": "The saga: its order id." },
            "causation-id": { "type": "string", "format": "uuid", "description": "The ce-id of the event that caused this one (its own for a root event)." },
            "Nats-Msg-Id": { "type": "string", "format": "uuid", "description": "Equal to ce-id: the stream dedupes on it." }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_producer_and_every_event_type_is_documented() {
        let producers: Vec<Producer> = SETS.iter().map(|(p, _)| *p).collect();
        assert_eq!(producers, Producer::ALL.to_vec());
        let doc = document();
        let titles: Vec<&str> = doc["components"]["messages"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|m| m["title"].as_str())
            .collect();
        let all = [
            OrderEvent::ce_types(),
            VoucherEvent::ce_types(),
            PointsEvent::ce_types(),
            PaymentEvent::ce_types(),
            StockEvent::ce_types(),
        ]
        .concat();
        assert_eq!(titles.len(), all.len());
        for ce_type in all {
            assert!(titles.contains(&ce_type), "{ce_type} is not documented");
        }
    }
}
