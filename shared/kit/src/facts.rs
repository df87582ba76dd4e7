//! Facts: what a service recorded in its own stream, applied again without deciding anything.
//!
//! Every state change of a service is an event of its own stream: an API call or an admin change
//! (a root event), or a handler's decision about an input (a derived event, whose `causation-id`
//! is the input). A replay rebuilds the state by applying those events as recorded facts, in the
//! order the service committed them ([`FactContext::event_time`] order), never by running the
//! handler again: the handler may decide differently on a second run (another interleaving, a
//! balance seen at another moment), a fact cannot.
//!
//! A service implements [`Restore`] once, for every event of its own stream, and declares the
//! business state `jetsaga replay --verify` compares as [`StateTable`]s.

use crate::barrier::{self, Restored};
use crate::handler::HandlerError;
use jetsaga_contracts::{EventId, EventSet};
use sqlx::PgConnection;
use std::future::Future;
use time::OffsetDateTime;

/// Where a fact came from, for the state change that restores it.
#[derive(Debug, Clone)]
pub struct FactContext {
    /// The fact's own id (`ce-id`).
    pub event_id: EventId,
    /// The event it answers (`causation-id`); equal to `event_id` for a root event.
    pub causation_id: EventId,
    /// The durable consumer whose handler decided it, for a derived event; `None` for a root
    /// event. Restoring a derived fact writes the barrier records with `causation_id`, as the
    /// handler did.
    pub consumer: Option<&'static str>,
    /// When the service created it (`ce-time`), in the transaction that committed it.
    pub event_time: OffsetDateTime,
    /// Its sequence in the service's own stream.
    pub stream_seq: u64,
}

impl FactContext {
    /// True for an event no input caused (an API call, an admin change, a timer, a repair).
    pub fn is_root(&self) -> bool {
        self.causation_id == self.event_id
    }

    /// Writes the barrier record a forward step of `branch` left for saga `saga_id` (it passed the
    /// barrier, whatever it decided), under the input it answered. `what` names the restore in an
    /// error.
    pub async fn restore_forward(
        &self,
        conn: &mut PgConnection,
        saga_id: &str,
        branch: &str,
        what: &str,
    ) -> Result<(), HandlerError> {
        barrier::restore(conn, saga_id, branch, Restored::Forward, self.causation_id)
            .await
            .map_err(|e| HandlerError::database(what, e))
    }

    /// Writes the barrier record a compensation of `branch` left for saga `saga_id`: the
    /// handler's, under the cancellation it answered, or a repair's (a root event, under its own
    /// id).
    pub async fn restore_compensation(
        &self,
        conn: &mut PgConnection,
        saga_id: &str,
        branch: &str,
        what: &str,
    ) -> Result<(), HandlerError> {
        barrier::restore(
            conn,
            saga_id,
            branch,
            Restored::Compensation,
            self.causation_id,
        )
        .await
        .map_err(|e| HandlerError::database(what, e))
    }
}

/// Applies one of the service's own events to its tables again, root or derived: the state change
/// the service made when it committed the event.
///
/// Rules for an implementation:
/// - **No decision.** The fact happened: never refuse it for lack of balance, stock or a voucher's
///   state, and never choose another outcome. Fail only when the fact cannot be applied at all
///   (a row it needs is missing because an earlier fact is missing), with an error that names the
///   event's business id.
/// - **Idempotent by business key**: a second application changes nothing (the replay also skips
///   facts the outbox already holds).
/// - **The barrier too**: a derived fact writes the `kit_barrier` records its handler wrote (saga,
///   branch, op, with [`FactContext::causation_id`]), so an input that comes later meets the same
///   barrier as in the service.
pub trait Restore: Send + Sync + 'static {
    /// The service's own events.
    type Event: EventSet;

    fn restore<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: Self::Event,
        ctx: &'a FactContext,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;
}

/// One table of business state `jetsaga replay --verify` compares between the live database and
/// the one rebuilt from the streams.
#[derive(Debug, Clone, Copy)]
pub struct StateTable {
    /// What the rows are, for the report: `accounts`, `stock`, `orders`.
    pub name: &'static str,
    /// A query returning `(key TEXT, state JSONB)`: one row per business key, with every column
    /// that is business state (balances, statuses, amounts, lines) and none that only records
    /// when the row was written (`created_at`, `updated_at`).
    pub query: &'static str,
}
