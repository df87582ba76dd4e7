//! Reading one saga back from every stream: `<domain>.*.<order_id>` on each producer's stream,
//! merged in time order. Used by the order service's timeline and by `jetsaga trace`.

use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use jetsaga_contracts::Producer;
use serde::Serialize;
use time::OffsetDateTime;

/// One event of a saga as it stands in its stream.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TraceEvent {
    pub service: &'static str,
    pub stream: &'static str,
    pub stream_seq: u64,
    pub subject: String,
    pub event_id: String,
    pub ce_type: String,
    /// The event's name, e.g. `payments.succeeded`.
    pub event: String,
    pub causation_id: Option<String>,
    /// When the producer committed it (`ce-time`).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// When the stream stored it.
    #[serde(with = "time::serde::rfc3339")]
    pub stored: OffsetDateTime,
    /// The JSON payload.
    pub payload: serde_json::Value,
    /// Every header as stored (`ce-*`, `traceparent`, `correlation-id`, ...), names in lowercase;
    /// a header given twice keeps its last value.
    pub headers: std::collections::BTreeMap<String, String>,
}

/// Why a saga could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading saga {order_id} from stream {stream}: {source}")]
pub struct TraceError {
    pub order_id: String,
    pub stream: &'static str,
    #[source]
    pub source: async_nats::Error,
}

/// An event's name from its subject: `payments.succeeded.<key>` → `payments.succeeded`.
pub fn event_name(subject: &str) -> String {
    let mut parts = subject.split('.');
    match (parts.next(), parts.next()) {
        (Some(d), Some(e)) => format!("{d}.{e}"),
        _ => subject.to_owned(),
    }
}

/// When the producer committed an event (its `ce-time`), else when the stream stored it.
pub fn committed_at(ce_time: Option<&str>, stored: OffsetDateTime) -> OffsetDateTime {
    ce_time
        .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
        .unwrap_or(stored)
}

/// Every event of saga `order_id` across the streams of `producers`, oldest first.
pub async fn read_saga(
    js: &jetstream::Context,
    producers: &[Producer],
    order_id: &str,
) -> Result<Vec<TraceEvent>, TraceError> {
    let mut events = Vec::new();
    for &producer in producers {
        let fail = |source: async_nats::Error| TraceError {
            order_id: order_id.to_owned(),
            stream: producer.stream(),
            source,
        };
        let stream = js
            .get_stream_no_info(producer.stream())
            .await
            .map_err(|e| fail(e.into()))?;
        let filter = format!("{}.*.{order_id}", producer.domain());
        let mut next = 1u64;
        loop {
            let msg = match stream
                .direct_get_next_for_subject(filter.clone(), Some(next))
                .await
            {
                Ok(m) => m,
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => break,
                Err(e) => return Err(fail(e.into())),
            };
            next = msg.sequence + 1;
            let header = |name: &str| msg.headers.get(name).map(|v| v.as_str().to_owned());
            let ce_type = header("ce-type").unwrap_or_default();
            let time = committed_at(header("ce-time").as_deref(), msg.time);
            let event = event_name(&msg.subject);
            events.push(TraceEvent {
                service: producer.service(),
                stream: producer.stream(),
                stream_seq: msg.sequence,
                subject: msg.subject.to_string(),
                event_id: header("ce-id").unwrap_or_default(),
                ce_type,
                event,
                causation_id: header("causation-id"),
                time,
                stored: msg.time,
                payload: serde_json::from_slice(&msg.payload).unwrap_or(serde_json::Value::Null),
                headers: msg
                    .headers
                    .iter()
                    .filter_map(|(name, values)| {
                        let value = values.last()?;
                        Some((
                            name.to_string().to_ascii_lowercase(),
                            value.as_str().to_owned(),
                        ))
                    })
                    .collect(),
            });
        }
    }
    events.sort_by_key(|e| (e.time, e.stored));
    Ok(events)
}
