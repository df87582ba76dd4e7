//! What a service writes: a handler per input, which takes the transaction and the typed event and
//! returns the events to emit, or a typed error.

use crate::metrics::Metrics;
use jetsaga_contracts::{EventId, EventSet};
use sqlx::PgConnection;
use std::future::Future;
use time::OffsetDateTime;

/// The cause of the handler's call, for deterministic decisions and for logs.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// The `ce-id` of the event being handled.
    pub event_id: EventId,
    /// When the event happened (its `ce-time`).
    pub event_time: OffsetDateTime,
    /// The durable consumer handling it.
    pub consumer: &'static str,
    /// Its stream sequence, when it came from a stream.
    pub stream_seq: Option<u64>,
    /// How many times it was delivered, counting this one.
    pub delivered: i64,
}

/// A failure that may pass: the database or a dependency is unavailable, a lock timed out. The
/// message is nak'ed with a delay and tried again, and dead-lettered after the last delivery.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct TransientError {
    pub what: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A failure that will never pass for this message, however often it is retried: it goes straight
/// to the dead letters with this reason, and the consumer carries on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct PermanentError {
    pub reason: String,
}

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("transient: {0}")]
    Transient(#[from] TransientError),
    #[error("permanent: {0}")]
    Permanent(#[from] PermanentError),
}

impl HandlerError {
    pub fn transient(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        HandlerError::Transient(TransientError {
            what: what.into(),
            source: Box::new(source),
        })
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        HandlerError::Permanent(PermanentError {
            reason: reason.into(),
        })
    }
}

/// A database error inside a handler is transient: the transaction rolls back and the message is
/// tried again.
impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::transient("database", e)
    }
}

/// Reacts to the events of one producer. Implemented once per service and input stream; the
/// implementation dispatches each variant to a function in its own file.
pub trait Handler: Send + Sync + 'static {
    /// The producer's events this handler consumes.
    type Input: EventSet;
    /// The events this service emits.
    type Output: EventSet;

    /// Applies `event` inside `tx` and returns the events to emit. The runner has already recorded
    /// the event in the inbox in this transaction, and writes the returned events to the outbox in
    /// it before it commits.
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: Self::Input,
        ctx: &'a EventContext,
    ) -> impl Future<Output = Result<Vec<Self::Output>, HandlerError>> + Send + 'a;

    /// Called once the transaction that applied an event has committed, with the events it
    /// emitted and the service's metrics. For business counters and other after-effects that must
    /// not run for a transaction that rolls back and is retried. Does nothing by default.
    fn committed(&self, emitted: &[Self::Output], metrics: &Metrics) {
        let _ = (emitted, metrics);
    }
}
