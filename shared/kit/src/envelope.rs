//! The envelope: CloudEvents headers, W3C trace context and deterministic ids.
//!
//! Every event travels as its JSON payload plus these lowercase headers: `ce-specversion`, `ce-id`,
//! `ce-type`, `ce-source`, `ce-time`, `ce-subject`, `traceparent`, `correlation-id`, `causation-id`
//! and `content-type`. The one header that is not ours, `Nats-Msg-Id`, keeps the spelling the server
//! looks for; the relay sets it to the `ce-id`.

use async_nats::HeaderMap;
use bytes::Bytes;
use jetsaga_contracts::{EventId, EventSet};
use std::collections::BTreeMap;
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

pub const CE_SPECVERSION: &str = "ce-specversion";
pub const CE_ID: &str = "ce-id";
pub const CE_TYPE: &str = "ce-type";
pub const CE_SOURCE: &str = "ce-source";
pub const CE_TIME: &str = "ce-time";
pub const CE_SUBJECT: &str = "ce-subject";
pub const TRACEPARENT: &str = "traceparent";
pub const CORRELATION_ID: &str = "correlation-id";
pub const CAUSATION_ID: &str = "causation-id";
pub const CONTENT_TYPE: &str = "content-type";

/// The namespace of every derived event id. Changing it changes every derived id, so replays would
/// no longer dedupe against history: never change it.
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a65_7473_6167_6100_8000_0000_0000_0001);

/// The id of an event emitted in response to `cause` by `handler`: a UUIDv5 of the two, so that a
/// replay which runs the handler again emits the same id and every consumer dedupes it. `index`
/// tells apart several events one handler emits for one cause; the first keeps the plain form.
pub fn derived_event_id(cause: EventId, handler: &str, index: usize) -> EventId {
    let mut name = Vec::with_capacity(16 + handler.len() + 4);
    name.extend_from_slice(cause.as_uuid().as_bytes());
    name.extend_from_slice(handler.as_bytes());
    if index > 0 {
        name.extend_from_slice(format!("#{index}").as_bytes());
    }
    EventId::from_uuid(Uuid::new_v5(&ID_NAMESPACE, &name))
}

/// An id derived from a stable business key (an idempotency key, an order's deadline): the same
/// key always names the same event.
pub fn keyed_event_id(kind: &str, key: &str) -> EventId {
    EventId::from_uuid(Uuid::new_v5(
        &ID_NAMESPACE,
        format!("{kind}\u{0}{key}").as_bytes(),
    ))
}

/// W3C trace context (`traceparent`, version 00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl TraceParent {
    /// A trace that starts at this event. Derived from the event id, so a replay keeps it.
    pub fn root(event: EventId) -> Self {
        let bytes = event.as_uuid().as_bytes();
        let mut span_id = [0u8; 8];
        span_id.copy_from_slice(&bytes[8..]);
        TraceParent {
            trace_id: *bytes,
            span_id,
            sampled: true,
        }
    }

    /// The span of `event` within this trace.
    pub fn child(&self, event: EventId) -> Self {
        let mut span_id = [0u8; 8];
        span_id.copy_from_slice(&event.as_uuid().as_bytes()[8..]);
        TraceParent {
            trace_id: self.trace_id,
            span_id,
            sampled: self.sampled,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.trim().split('-').collect();
        let [version, trace, span, flags] = parts.as_slice() else {
            return None;
        };
        if *version != "00" || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return None;
        }
        let trace_id: [u8; 16] = hex_decode(trace)?.try_into().ok()?;
        let span_id: [u8; 8] = hex_decode(span)?.try_into().ok()?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(TraceParent {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    pub fn trace_id_hex(&self) -> String {
        hex_encode(&self.trace_id)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex_encode(&self.trace_id),
            hex_encode(&self.span_id),
            u8::from(self.sampled)
        )
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A message whose headers do not make a valid envelope. Permanent: it goes to the dead letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("message on {subject} has no {header} header")]
    MissingHeader {
        subject: String,
        header: &'static str,
    },
    #[error("message on {subject} has an invalid {header} header {value:?}")]
    InvalidHeader {
        subject: String,
        header: &'static str,
        value: String,
    },
}

/// One event with its metadata, as it is stored in the outbox and sent on NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub id: EventId,
    pub ce_type: String,
    pub source: String,
    pub time: OffsetDateTime,
    /// `ce-subject`: the order id for saga events, or the admin event's key. Also the ordering key.
    pub key: String,
    /// The NATS subject.
    pub subject: String,
    pub traceparent: TraceParent,
    /// The order id the whole saga shares.
    pub correlation_id: String,
    /// The id of the event that caused this one; a root event names itself.
    pub causation_id: EventId,
    pub payload: Bytes,
}

impl Envelope {
    /// An event that starts a chain: an HTTP request, an admin change, a timer.
    pub fn root<E: EventSet>(id: EventId, event: &E) -> Self {
        let key = event.key();
        Envelope {
            id,
            ce_type: event.ce_type().to_owned(),
            source: E::PRODUCER.source().to_owned(),
            time: now(),
            subject: event.subject(),
            traceparent: TraceParent::root(id),
            correlation_id: key.clone(),
            causation_id: id,
            key,
            payload: Bytes::from(event.to_payload()),
        }
    }

    /// An event emitted by `handler` in response to `cause`, with a deterministic id.
    pub fn caused_by<E: EventSet>(
        cause: &Envelope,
        handler: &str,
        index: usize,
        event: &E,
    ) -> Self {
        let id = derived_event_id(cause.id, handler, index);
        Envelope {
            id,
            ce_type: event.ce_type().to_owned(),
            source: E::PRODUCER.source().to_owned(),
            time: now(),
            subject: event.subject(),
            traceparent: cause.traceparent.child(id),
            correlation_id: cause.correlation_id.clone(),
            causation_id: cause.id,
            key: event.key(),
            payload: Bytes::from(event.to_payload()),
        }
    }

    /// The headers, lowercase names, as name → value. This form is stored in the outbox.
    pub fn header_pairs(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            (CE_SPECVERSION, "1.0".to_owned()),
            (CE_ID, self.id.to_string()),
            (CE_TYPE, self.ce_type.clone()),
            (CE_SOURCE, self.source.clone()),
            (CE_TIME, format_time(self.time)),
            (CE_SUBJECT, self.key.clone()),
            (TRACEPARENT, self.traceparent.to_string()),
            (CORRELATION_ID, self.correlation_id.clone()),
            (CAUSATION_ID, self.causation_id.to_string()),
            (CONTENT_TYPE, "application/json".to_owned()),
        ])
    }

    pub fn headers_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.header_pairs()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
                .collect(),
        )
    }

    /// The message that publishes this envelope: its headers, its payload, and its id as the
    /// `Nats-Msg-Id` (chain `.message_id(..)` to publish the same event under another one).
    pub fn publish_message(&self) -> async_nats::jetstream::message::PublishMessage {
        async_nats::jetstream::message::PublishMessage::build()
            .payload(self.payload.clone())
            .headers(header_map(&self.headers_json()))
            .message_id(self.id.to_string())
    }

    /// Reads an envelope back from a received message.
    pub fn from_message(
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: Bytes,
    ) -> Result<Self, EnvelopeError> {
        let get = |name: &'static str| -> Result<String, EnvelopeError> {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
                .ok_or(EnvelopeError::MissingHeader {
                    subject: subject.to_owned(),
                    header: name,
                })
        };
        let invalid = |header: &'static str, value: &str| EnvelopeError::InvalidHeader {
            subject: subject.to_owned(),
            header,
            value: value.to_owned(),
        };
        let id_text = get(CE_ID)?;
        let id: EventId = id_text.parse().map_err(|_| invalid(CE_ID, &id_text))?;
        let time_text = get(CE_TIME)?;
        let time = OffsetDateTime::parse(&time_text, &Rfc3339)
            .map_err(|_| invalid(CE_TIME, &time_text))?;
        // Trace context is best effort: a missing or broken traceparent starts a new trace rather
        // than losing the event.
        let traceparent = get(TRACEPARENT)
            .ok()
            .and_then(|t| TraceParent::parse(&t))
            .unwrap_or_else(|| TraceParent::root(id));
        let causation_id = match get(CAUSATION_ID) {
            Ok(c) => c.parse().map_err(|_| invalid(CAUSATION_ID, &c))?,
            Err(_) => id,
        };
        let key = get(CE_SUBJECT)?;
        Ok(Envelope {
            id,
            ce_type: get(CE_TYPE)?,
            source: get(CE_SOURCE)?,
            time,
            correlation_id: get(CORRELATION_ID).unwrap_or_else(|_| key.clone()),
            key,
            subject: subject.to_owned(),
            traceparent,
            causation_id,
            payload,
        })
    }
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub fn format_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Turns stored header pairs back into a NATS header map.
pub fn header_map(pairs: &serde_json::Value) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(obj) = pairs.as_object() {
        for (k, v) in obj {
            if let Some(v) = v.as_str() {
                headers.insert(k.as_str(), v);
            }
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetsaga_contracts::events::order::OrderCancelled;
    use jetsaga_contracts::{CancelReason, OrderEvent, OrderId};

    fn cancelled() -> OrderEvent {
        OrderEvent::OrderCancelled(OrderCancelled {
            order_id: OrderId::new_random(),
            reason: CancelReason::Timeout,
        })
    }

    #[test]
    fn derived_ids_are_deterministic_and_distinct_per_handler() {
        let cause = EventId::new_random();
        assert_eq!(
            derived_event_id(cause, "payment", 0),
            derived_event_id(cause, "payment", 0)
        );
        assert_ne!(
            derived_event_id(cause, "payment", 0),
            derived_event_id(cause, "stock", 0)
        );
        assert_ne!(
            derived_event_id(cause, "payment", 0),
            derived_event_id(cause, "payment", 1)
        );
        assert_ne!(
            derived_event_id(cause, "payment", 0),
            derived_event_id(EventId::new_random(), "payment", 0)
        );
    }

    #[test]
    fn envelope_round_trips_through_headers() {
        let root = Envelope::root(EventId::new_random(), &cancelled());
        let headers = header_map(&root.headers_json());
        let back = Envelope::from_message(&root.subject, Some(&headers), root.payload.clone())
            .expect("decodes");
        assert_eq!(back.id, root.id);
        assert_eq!(back.traceparent, root.traceparent);
        assert_eq!(back.ce_type, "jetsaga.orders.cancelled.v1");
        assert_eq!(back.time.unix_timestamp(), root.time.unix_timestamp());
    }

    #[test]
    fn caused_event_continues_the_trace_and_names_its_cause() {
        let root = Envelope::root(EventId::new_random(), &cancelled());
        let child = Envelope::caused_by(&root, "voucher", 0, &cancelled());
        assert_eq!(child.causation_id, root.id);
        assert_eq!(child.correlation_id, root.correlation_id);
        assert_eq!(child.traceparent.trace_id, root.traceparent.trace_id);
        assert_ne!(child.traceparent.span_id, root.traceparent.span_id);
        assert_eq!(child.id, derived_event_id(root.id, "voucher", 0));
    }

    #[test]
    fn all_header_names_are_lowercase() {
        let root = Envelope::root(EventId::new_random(), &cancelled());
        for name in root.header_pairs().keys() {
            assert_eq!(*name, name.to_lowercase());
        }
    }

    #[test]
    fn traceparent_parses_w3c_and_refuses_junk() {
        let t = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(
            t.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        for junk in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-zz-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(junk).is_none(), "{junk}");
        }
    }

    #[test]
    fn missing_ce_id_is_an_envelope_error() {
        let err = Envelope::from_message("orders.created.x", None, Bytes::new()).unwrap_err();
        assert!(err.to_string().contains("ce-id"), "{err}");
    }
}
