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

/// The database or the broker is unavailable: the connection was refused, lost or reset, the pool
/// timed out, the server is shutting down or starting, a lock wait timed out, a serialization
/// failure or a deadlock chose this transaction. It is not the message's fault: the runner keeps the
/// message and tries again with capped back-off for as long as it lasts, and it never spends the
/// message's dead-letter budget.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct UnavailableError {
    pub what: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A failure that may pass but is this message's own (a dependency refused this request, a
/// constraint the data broke while the database answers). The message is nak'ed with a delay and
/// tried again; after the consumer's `max_failures` such failures it is dead-lettered.
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
    #[error("unavailable: {0}")]
    Unavailable(#[from] UnavailableError),
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

    pub fn unavailable(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        HandlerError::Unavailable(UnavailableError {
            what: what.into(),
            source: Box::new(source),
        })
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        HandlerError::Permanent(PermanentError {
            reason: reason.into(),
        })
    }

    /// A database error while doing `what` (which names the business id): unavailable when the
    /// database is ([`is_unavailable`]), transient otherwise, as `From<sqlx::Error>` decides, but
    /// saying what failed.
    pub fn database(what: impl Into<String>, source: sqlx::Error) -> Self {
        if is_unavailable(&source) {
            HandlerError::unavailable(what, source)
        } else {
            HandlerError::transient(what, source)
        }
    }
}

/// A database error inside a handler rolls the transaction back. When the database is unavailable
/// ([`is_unavailable`]) the message waits for it; any other database error (a constraint the event
/// breaks, a bug) counts against the message's budget.
impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            HandlerError::unavailable("database unavailable", e)
        } else {
            HandlerError::transient("database", e)
        }
    }
}

/// Whether a PostgreSQL error means "the infrastructure is unavailable" rather than "this message
/// fails": connection refused, reset or lost, a pool timeout, the server shutting down, starting up
/// or refusing connections, out of resources, a lock wait that timed out, a serialization failure or
/// a deadlock.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| is_unavailable_code(&c)),
        _ => false,
    }
}

/// Whether an unavailable-database error is contention for rows (a lock wait that timed out, a
/// deadlock, a serialization failure, a cancelled statement) rather than the database being gone:
/// the database answers, others are busy with the same rows.
pub fn is_contention(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| matches!(c.as_ref(), "55P03" | "40001" | "40P01" | "57014"))
}

impl UnavailableError {
    /// Whether this is contention for rows ([`is_contention`]) rather than an outage.
    pub fn is_contention(&self) -> bool {
        self.source
            .downcast_ref::<sqlx::Error>()
            .is_some_and(is_contention)
    }
}

/// The SQLSTATE codes of [`is_unavailable`].
pub fn is_unavailable_code(code: &str) -> bool {
    // Class 08: connection exception. Class 53: insufficient resources (too many connections, disk
    // full, out of memory). Class 57P: the server is shutting down, crashed or starting.
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(
            code,
            // serialization_failure, deadlock_detected
            "40001" | "40P01"
            // lock_not_available (lock_timeout), query_canceled (statement_timeout)
            | "55P03" | "57014"
            // idle_in_transaction_session_timeout, idle_session_timeout
            | "25P03" | "57P05"
            // "database is not currently accepting connections" (ALLOW_CONNECTIONS false)
            | "55000"
            // the database is being dropped or recreated under us: an operator is at work
            | "3D000"
        )
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

    /// True when `event` is a compensation here: it undoes this service's forward step through the
    /// barrier. A replay handles the inputs that have no recorded decision compensations first,
    /// because that is the only order that leaves none: a compensation that found nothing to undo
    /// said nothing, and the forward step that came after it was a hanging step. False by default.
    fn compensates(&self, event: &Self::Input) -> bool {
        let _ = event;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_database_is_told_apart_from_a_failing_message() {
        for code in [
            "08006", "08001", "57P01", "57P03", "53300", "53100", "40001", "40P01", "55P03",
            "57014", "25P03", "55000", "3D000",
        ] {
            assert!(is_unavailable_code(code), "{code} is the infrastructure");
        }
        // unique_violation, check_violation, not_null_violation, undefined_table, syntax error,
        // invalid text representation: the message or the code is at fault, not the database.
        for code in ["23505", "23514", "23502", "42P01", "42601", "22P02"] {
            assert!(
                !is_unavailable_code(code),
                "{code} is the message's own failure"
            );
        }
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        assert!(matches!(
            HandlerError::from(sqlx::Error::PoolTimedOut),
            HandlerError::Unavailable(_)
        ));
        assert!(matches!(
            HandlerError::from(sqlx::Error::RowNotFound),
            HandlerError::Transient(_)
        ));
    }
}
