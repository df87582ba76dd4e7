//! The service's own stream as recorded facts: applied in the order the service committed them,
//! never decided again; and what the replay knows of it, to guard the handlers it runs.

use super::Step;
use crate::consumer::{Divergence, EmitGuard};
use crate::envelope::{derived_event_id, Envelope};
use crate::facts::{FactContext, Restore};
use crate::handler::HandlerError;
use crate::{inbox, outbox};
use futures::future::BoxFuture;
use jetsaga_contracts::{EventId, EventSet};
use sqlx::PgPool;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use time::OffsetDateTime;

/// How far the stream's order may stray from the commit order: an event published this much
/// later than another created after it (a relay that was down) may be applied out of order.
pub const REORDER_WINDOW: time::Duration = time::Duration::minutes(5);

/// Applies the service's own events (see [`crate::facts`]).
pub trait OwnFacts: Send + Sync {
    fn stream(&self) -> &'static str;
    fn filter_subjects(&self) -> Vec<String>;
    /// Applies one fact; `consumer` is the durable whose handler decided it, for a derived event.
    fn apply<'a>(
        &'a self,
        envelope: &'a Envelope,
        seq: u64,
        consumer: Option<&'static str>,
    ) -> BoxFuture<'a, Step>;
}

/// [`OwnFacts`] of a service's [`Restore`].
pub struct OwnStream<R: Restore> {
    pub pool: PgPool,
    pub restore: R,
}

impl<R: Restore> OwnStream<R> {
    async fn apply_once(
        &self,
        envelope: &Envelope,
        event: R::Event,
        ctx: &FactContext,
    ) -> Result<Step, HandlerError> {
        let mut tx = self.pool.begin().await?;
        if outbox::contains(&mut tx, envelope.id).await? {
            return Ok(Step::AlreadyKnown);
        }
        self.restore.restore(&mut tx, event, ctx).await?;
        if let Some(consumer) = ctx.consumer {
            // The input this fact answers was decided: the handler does not run for it again.
            inbox::claim(&mut tx, consumer, ctx.causation_id, None).await?;
        }
        outbox::record_published(&mut tx, envelope, ctx.stream_seq).await?;
        tx.commit().await?;
        Ok(if ctx.is_root() {
            Step::Restored
        } else {
            Step::Recorded
        })
    }
}

impl<R: Restore> OwnFacts for OwnStream<R> {
    fn stream(&self) -> &'static str {
        <R::Event as EventSet>::PRODUCER.stream()
    }

    fn filter_subjects(&self) -> Vec<String> {
        vec![format!("{}.>", <R::Event as EventSet>::PRODUCER.domain())]
    }

    fn apply<'a>(
        &'a self,
        envelope: &'a Envelope,
        seq: u64,
        consumer: Option<&'static str>,
    ) -> BoxFuture<'a, Step> {
        Box::pin(async move {
            let fail = |why: String| {
                Step::Failed(format!(
                    "{} seq {seq} ({}, event {}): {why}",
                    self.stream(),
                    envelope.subject,
                    envelope.id
                ))
            };
            if !R::Event::ce_types().contains(&envelope.ce_type.as_str()) {
                return Step::Foreign;
            }
            let event = match R::Event::from_payload(&envelope.ce_type, &envelope.payload) {
                Ok(e) => e,
                Err(e) => return fail(e.to_string()),
            };
            let ctx = FactContext {
                event_id: envelope.id,
                causation_id: envelope.causation_id,
                consumer,
                event_time: envelope.time,
                stream_seq: seq,
            };
            let mut waits = 0u32;
            loop {
                match self.apply_once(envelope, event.clone(), &ctx).await {
                    Ok(step) => return step,
                    Err(HandlerError::Permanent(p)) => return fail(p.to_string()),
                    Err(e) if waits < 120 => {
                        waits += 1;
                        tracing::debug!(event_id = %envelope.id, error = %e, "fact not applied yet; trying again");
                        let delay = Duration::from_millis(200 * u64::from(waits.min(25)));
                        tokio::time::sleep(delay).await;
                    }
                    Err(e) => return fail(format!("still failing after {waits} tries: {e}")),
                }
            }
        })
    }
}

/// The durable among `consumers` whose handler derived `id` from `cause`, if any.
pub fn deciding_consumer(
    consumers: &[&'static str],
    cause: EventId,
    id: EventId,
) -> Option<&'static str> {
    consumers
        .iter()
        .copied()
        .find(|c| (0..16).any(|index| derived_event_id(cause, c, index) == id))
}

/// One fact waiting for its turn.
#[derive(Debug)]
pub struct Pending {
    pub envelope: Envelope,
    pub seq: u64,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order().cmp(&other.order())
    }
}
impl Pending {
    fn order(&self) -> (OffsetDateTime, u64) {
        (self.envelope.time, self.seq)
    }
}

/// Puts facts read in stream order back into commit order (`ce-time`), within
/// [`REORDER_WINDOW`] of the stream's stored times.
#[derive(Debug, Default)]
pub struct Reorder {
    heap: BinaryHeap<Reverse<Pending>>,
}

impl Reorder {
    pub fn push(&mut self, pending: Pending) {
        self.heap.push(Reverse(pending));
    }

    /// The next fact in commit order, once nothing read after `stored` can come before it;
    /// everything when `stored` is `None` (the end of the stream).
    pub fn pop(&mut self, stored: Option<OffsetDateTime>) -> Option<Pending> {
        let ready = match (self.heap.peek(), stored) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(Reverse(p)), Some(stored)) => p.envelope.time < stored - REORDER_WINDOW,
        };
        if ready {
            self.heap.pop().map(|Reverse(p)| p)
        } else {
            None
        }
    }
}

/// What a replay read from the own stream: each event's sequence and content. It guards the
/// handlers the replay runs, and tells which outbox rows are already in the stream.
#[derive(Debug, Default)]
pub struct Known {
    events: Mutex<HashMap<uuid::Uuid, KnownEvent>>,
}

#[derive(Debug)]
struct KnownEvent {
    seq: u64,
    ce_type: String,
    payload: serde_json::Value,
}

impl Known {
    pub fn insert(&self, envelope: &Envelope, seq: u64) {
        let payload = serde_json::from_slice(&envelope.payload).unwrap_or(serde_json::Value::Null);
        if let Ok(mut events) = self.events.lock() {
            events.insert(
                *envelope.id.as_uuid(),
                KnownEvent {
                    seq,
                    ce_type: envelope.ce_type.clone(),
                    payload,
                },
            );
        }
    }

    pub fn ids(&self) -> Vec<uuid::Uuid> {
        self.events
            .lock()
            .map(|e| e.keys().copied().collect())
            .unwrap_or_default()
    }
}

impl EmitGuard for Known {
    /// A handler run again may emit an id the stream holds only with the same type and content.
    fn check(&self, emitted: &Envelope) -> Result<(), Box<Divergence>> {
        let Ok(events) = self.events.lock() else {
            return Ok(());
        };
        let Some(known) = events.get(emitted.id.as_uuid()) else {
            return Ok(());
        };
        let payload: serde_json::Value =
            serde_json::from_slice(&emitted.payload).unwrap_or(serde_json::Value::Null);
        if known.ce_type == emitted.ce_type && known.payload == payload {
            return Ok(());
        }
        Err(Box::new(Divergence {
            event_id: *emitted.id.as_uuid(),
            subject: emitted.subject.clone(),
            seq: known.seq,
            recorded_type: known.ce_type.clone(),
            recorded: known.payload.clone(),
            emitted_type: emitted.ce_type.clone(),
            emitted: payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetsaga_contracts::events::stock::StockAdjusted;
    use jetsaga_contracts::{Sku, StockEvent};

    fn fact(seconds: i64, seq: u64) -> Pending {
        let event = StockEvent::StockAdjusted(StockAdjusted {
            adjustment_id: uuid::Uuid::new_v4(),
            sku: Sku::parse("SKU-1").unwrap(),
            delta: 1,
            actor: jetsaga_contracts::Actor::anonymous(),
        });
        let mut envelope = Envelope::root(EventId::new_random(), &event);
        envelope.time = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seconds);
        Pending { envelope, seq }
    }

    #[test]
    fn facts_come_out_in_commit_order_once_the_window_has_passed() {
        let mut r = Reorder::default();
        r.push(fact(100, 1));
        r.push(fact(90, 2));
        let stored = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(101);
        assert!(r.pop(Some(stored)).is_none(), "within the window: wait");
        let later = stored + REORDER_WINDOW;
        assert_eq!(r.pop(Some(later)).map(|p| p.seq), Some(2));
        assert_eq!(r.pop(None).map(|p| p.seq), Some(1));
        assert!(r.pop(None).is_none());
    }

    #[test]
    fn a_derived_id_names_the_consumer_that_decided_it() {
        let cause = EventId::new_random();
        let id = derived_event_id(cause, "stock-on-payments", 0);
        let consumers = ["stock-on-orders", "stock-on-payments"];
        assert_eq!(
            deciding_consumer(&consumers, cause, id),
            Some("stock-on-payments")
        );
        assert_eq!(
            deciding_consumer(&consumers, EventId::new_random(), id),
            None
        );
    }

    #[test]
    fn the_guard_lets_the_same_content_through_and_stops_other_content() {
        let known = Known::default();
        let original = fact(1, 7).envelope;
        known.insert(&original, 7);
        assert!(known.check(&original).is_ok());
        let mut other = fact(1, 8).envelope;
        other.id = original.id;
        assert_eq!(known.check(&other).unwrap_err().seq, 7);
        assert!(known.check(&fact(2, 9).envelope).is_ok());
    }
}
