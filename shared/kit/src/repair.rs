//! Operator repairs (`jetsaga reconcile --repair`): a service changes its state through its own
//! rules, and the root event that announces the change is written to its outbox in the same
//! transaction. (A replay applies such an event from the stream as a fact: see [`crate::facts`].)

use crate::envelope::Envelope;
use crate::outbox;
use jetsaga_contracts::{EventId, EventSet};
use sqlx::PgConnection;

/// What a repair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repaired {
    /// The state changed; this event, written to the outbox, announces it.
    Emitted(Box<Envelope>),
    /// Nothing needed changing any more (the compensation or another repair got there first); the
    /// text says what was found.
    AlreadyConsistent(String),
}

/// Announces a repair's change: `event` under `id`, written to the outbox in the caller's
/// transaction.
pub async fn emit<E: EventSet>(
    conn: &mut PgConnection,
    id: EventId,
    event: &E,
) -> Result<Repaired, sqlx::Error> {
    Ok(Repaired::Emitted(Box::new(
        outbox::emit_root(conn, id, event).await?,
    )))
}
