//! Operator repairs (`jetsaga reconcile --repair`) and their replays share one shape: a service
//! changes its state through its own rules, and the root event that announces the change is either
//! written to its outbox now (a repair) or is already in its stream (a replay restoring it).

use crate::envelope::Envelope;
use crate::outbox;
use jetsaga_contracts::{EventId, EventSet};
use sqlx::PgConnection;

/// What a repair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repaired {
    /// The state changed; this event, written to the outbox, announces it.
    Emitted(Box<Envelope>),
    /// The state changed as the event already in the stream says (a replay).
    Restored,
    /// Nothing needed changing any more (the compensation or another repair got there first); the
    /// text says what was found.
    AlreadyConsistent(String),
}

/// How a repair's change is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// Write the event to the outbox in the caller's transaction (a repair).
    Emit,
    /// The event is already in the stream; change the state only (a replay restoring it).
    AlreadyInStream,
}

impl Announce {
    /// Announces `event` under `id` as this mode says.
    pub async fn announce<E: EventSet>(
        self,
        conn: &mut PgConnection,
        id: EventId,
        event: &E,
    ) -> Result<Repaired, sqlx::Error> {
        match self {
            Announce::Emit => Ok(Repaired::Emitted(Box::new(
                outbox::emit_root(conn, id, event).await?,
            ))),
            Announce::AlreadyInStream => Ok(Repaired::Restored),
        }
    }
}
