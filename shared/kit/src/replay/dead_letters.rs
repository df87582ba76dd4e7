//! Dead letters as recorded decisions: the DLQ stream holds each dead letter's copy and every
//! operator's requeue or discard. An input that was dead-lettered is not handled again by a
//! replay; its dead letter comes back with the status the operators left it in.

use super::Step;
use crate::consumer::RawMessage;
use crate::dead_letter::{
    self, Decision, RecordedDeadLetter, DEAD_LETTERED_TYPE, DISCARDED_TYPE, REQUEUED_TYPE,
};
use crate::envelope::CE_TYPE;
use sqlx::PgPool;
use std::collections::HashMap;

/// Where a message was: consumer, stream, sequence.
type Place = (String, String, u64);

/// What the DLQ stream says about one dead letter.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// `None` while only a decision was read (the copy is older than the DLQ stream's retention).
    pub kind: Option<String>,
    pub reason: String,
    pub deliveries: i64,
    pub decisions: Vec<Decision>,
}

/// The dead letters one service's consumers recorded, by where their message was.
#[derive(Debug, Default)]
pub struct DeadLetterFacts {
    by_place: HashMap<Place, Recorded>,
    /// DLQ messages that are not the kit's (a probe, junk): skipped.
    pub foreign: u64,
}

impl DeadLetterFacts {
    /// Takes in one message of `dlq.<service>.>`.
    pub fn add(&mut self, raw: &RawMessage) {
        let ce_type = raw
            .headers
            .as_ref()
            .and_then(|h| h.get(CE_TYPE))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&raw.payload) else {
            self.foreign += 1;
            return;
        };
        let text = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
        let Some(seq) = body["stream_seq"].as_u64() else {
            self.foreign += 1;
            return;
        };
        let place = (text("consumer"), text("stream"), seq);
        match ce_type.as_str() {
            DEAD_LETTERED_TYPE => {
                let entry = self.by_place.entry(place).or_default();
                entry.kind = Some(text("kind"));
                entry.reason = text("reason");
                entry.deliveries = body["deliveries"].as_i64().unwrap_or(1);
            }
            DISCARDED_TYPE | REQUEUED_TYPE => {
                self.by_place
                    .entry(place)
                    .or_default()
                    .decisions
                    .push(Decision {
                        action: text("action"),
                        actor: text("actor"),
                        new_msg_id: body["new_msg_id"].as_str().map(str::to_owned),
                        reason: body["reason"].as_str().map(str::to_owned),
                    });
            }
            _ => self.foreign += 1,
        }
    }

    /// What was recorded about the message at `seq` of `stream` for `consumer`.
    pub fn get(&self, consumer: &str, stream: &str, seq: u64) -> Option<&Recorded> {
        self.by_place
            .get(&(consumer.to_owned(), stream.to_owned(), seq))
            .filter(|r| r.kind.is_some())
    }

    pub fn len(&self) -> usize {
        self.by_place.len()
    }
}

/// Writes the dead letter of `raw` back, as recorded.
pub async fn restore(pool: &PgPool, consumer: &str, raw: &RawMessage, recorded: &Recorded) -> Step {
    let headers = raw.headers_json();
    let event_id = raw
        .headers
        .as_ref()
        .and_then(|h| h.get(crate::envelope::CE_ID))
        .and_then(|v| uuid::Uuid::parse_str(v.as_str()).ok());
    let dl = RecordedDeadLetter {
        consumer,
        stream: &raw.stream,
        stream_seq: raw.stream_seq,
        subject: &raw.subject,
        headers: &headers,
        payload: &raw.payload,
        event_id,
        kind: recorded.kind.as_deref().unwrap_or("rejected"),
        reason: &recorded.reason,
        deliveries: recorded.deliveries,
        decisions: &recorded.decisions,
    };
    let mut waits = 0u32;
    loop {
        let result = async {
            let mut conn = pool.acquire().await?;
            dead_letter::restore(&mut conn, &dl).await
        }
        .await;
        match result {
            Ok(_) => return Step::DeadLettered,
            Err(e) if waits < 60 => {
                waits += 1;
                tracing::debug!(consumer, seq = raw.stream_seq, error = %e, "dead letter not restored yet");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Step::Failed(format!(
                    "{} seq {} ({}): restoring its dead letter for {consumer}: {e}",
                    raw.stream, raw.stream_seq, raw.subject
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::HeaderMap;

    fn dlq_message(ce_type: &str, body: serde_json::Value) -> RawMessage {
        let mut headers = HeaderMap::new();
        headers.insert(CE_TYPE, ce_type);
        RawMessage {
            subject: "dlq.stock.stock-on-payments".to_owned(),
            headers: Some(headers),
            payload: body.to_string().into(),
            stream: "DLQ".to_owned(),
            stream_seq: 1,
            delivered: 1,
        }
    }

    #[test]
    fn a_dead_letter_and_its_discard_are_recorded_together() {
        let mut facts = DeadLetterFacts::default();
        facts.add(&dlq_message(
            DEAD_LETTERED_TYPE,
            serde_json::json!({"consumer": "stock-on-payments", "stream": "PAYMENTS",
                "stream_seq": 42, "kind": "rejected", "reason": "no", "deliveries": 1}),
        ));
        facts.add(&dlq_message(
            DISCARDED_TYPE,
            serde_json::json!({"consumer": "stock-on-payments", "stream": "PAYMENTS",
                "stream_seq": 42, "action": "discarded", "actor": "alice"}),
        ));
        facts.add(&dlq_message("junk", serde_json::json!({"x": 1})));
        let recorded = facts.get("stock-on-payments", "PAYMENTS", 42).unwrap();
        assert_eq!(recorded.kind.as_deref(), Some("rejected"));
        assert_eq!(recorded.decisions[0].action, "discarded");
        assert!(facts.get("stock-on-payments", "PAYMENTS", 43).is_none());
        assert_eq!(facts.foreign, 1);
    }
}
