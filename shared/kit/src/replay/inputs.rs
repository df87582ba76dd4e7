//! A service's inputs in a replay: the same consumers, handlers and inbox as in the service,
//! guarded so that a handler run again never says something else under an id the stream holds.

use super::Step;
use crate::consumer::{Consumer, Disposition, RawMessage};
use crate::envelope::Envelope;
use crate::handler::Handler;
use crate::inbox;
use futures::future::BoxFuture;
use jetsaga_contracts::{EventId, EventSet};
use sqlx::PgPool;
use std::time::Duration;

/// One consumer of the service, as a replay drives it.
pub trait Input: Send + Sync {
    /// The durable consumer's name (also the inbox key and the handler name in derived ids).
    fn name(&self) -> &'static str;
    fn stream(&self) -> &'static str;
    fn filter_subjects(&self) -> Vec<String>;
    /// The event's id, when the message has one.
    fn event_id(&self, raw: &RawMessage) -> Option<EventId>;
    /// Whether the handler would take the message as a compensation ([`Handler::compensates`]).
    fn compensates(&self, raw: &RawMessage) -> bool;
    /// Handles the message as the service would, until it is applied, a duplicate, dead-lettered,
    /// or fails for good.
    fn handle<'a>(&'a self, raw: &'a RawMessage) -> BoxFuture<'a, Step>;
}

impl<H: Handler> Input for Consumer<H> {
    fn name(&self) -> &'static str {
        self.config().durable
    }

    fn stream(&self) -> &'static str {
        <H::Input as EventSet>::PRODUCER.stream()
    }

    fn filter_subjects(&self) -> Vec<String> {
        self.config().filter_subjects.clone()
    }

    fn event_id(&self, raw: &RawMessage) -> Option<EventId> {
        Envelope::from_message(&raw.subject, raw.headers.as_ref(), raw.payload.clone())
            .ok()
            .map(|e| e.id)
    }

    fn compensates(&self, raw: &RawMessage) -> bool {
        Envelope::from_message(&raw.subject, raw.headers.as_ref(), raw.payload.clone())
            .ok()
            .and_then(|e| H::Input::from_payload(&e.ce_type, &e.payload).ok())
            .is_some_and(|event| self.handler().compensates(&event))
    }

    /// Transient failures are tried again with the consumer's back-off and the last attempt
    /// dead-letters, as in the service; an unavailable database is waited for (ten minutes at
    /// most).
    fn handle<'a>(&'a self, raw: &'a RawMessage) -> BoxFuture<'a, Step> {
        Box::pin(async move {
            let mut raw = raw.clone();
            let mut attempt = 1;
            let mut waits = 0u32;
            let place = format!("{} seq {} ({})", raw.stream, raw.stream_seq, raw.subject);
            while attempt <= self.config().max_failures.max(1) {
                raw.delivered = attempt;
                match self.process_raw(&raw).await {
                    Disposition::Applied => return Step::Applied,
                    Disposition::Duplicate => return Step::AlreadyApplied,
                    Disposition::DeadLettered(_) => return Step::DeadLettered,
                    Disposition::Diverged(why) => return Step::Diverged(format!("{place}: {why}")),
                    Disposition::Retry(delay) => {
                        attempt += 1;
                        tokio::time::sleep(delay.min(Duration::from_secs(2))).await
                    }
                    Disposition::Contended(delay) if waits < 120 => {
                        waits += 1;
                        tokio::time::sleep(delay.min(Duration::from_secs(2))).await
                    }
                    Disposition::Unavailable if waits < 120 => {
                        waits += 1;
                        tokio::time::sleep(self.config().unavailable_backoff.delay(waits)).await
                    }
                    Disposition::Unavailable | Disposition::Contended(_) => {
                        return Step::Failed(format!(
                            "{place}: the database stayed unavailable or its rows held"
                        ))
                    }
                }
            }
            Step::Failed(format!(
                "{place}: still failing after {} attempts",
                self.config().max_failures
            ))
        })
    }
}

/// Whether `consumer` has already decided event `id` in this database.
pub async fn decided(pool: &PgPool, consumer: &str, id: EventId) -> Result<bool, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    inbox::contains(&mut conn, consumer, id).await
}
