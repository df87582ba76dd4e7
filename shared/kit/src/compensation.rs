//! Undoing a saga step, written once for the two callers every participant has: the compensation
//! its OrderCancelled handler runs, and the repair an operator runs through the reconciler.
//!
//! Both pass the barrier first (the lock order every undo takes, so a repair racing the handler
//! waits instead of deadlocking), then call the service's one undo function, where its rules for
//! giving something back live. They differ in what the barrier's answer means: the handler does
//! nothing after a null compensation or a duplicate, while a repair undoes whatever it finds (the
//! handler may have run and the row been changed by hand since) and announces the change itself.

use crate::barrier::{self, Gate};
use crate::handler::HandlerError;
use crate::repair::{self, RepairError, Repaired};
use jetsaga_contracts::{EventId, EventSet};
use sqlx::PgConnection;
use std::fmt;
use time::OffsetDateTime;

/// What a service's undo function found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo<T> {
    /// The step was undone; `T` is the event that says so.
    Done(T),
    /// The saga holds nothing here (no hold, no voucher, a payment that took no money): what was
    /// found instead.
    Nothing(String),
    /// What the saga holds here may not be undone (spent points stay spent, a redeemed voucher
    /// stays redeemed: a cancellation never undoes a confirmation): what was found. A person may
    /// want to look, so the handler warns.
    Kept(String),
}

impl<T> Undo<T> {
    /// Nothing held: `found` says what was there instead.
    pub fn nothing(found: impl fmt::Display) -> Self {
        Undo::Nothing(found.to_string())
    }

    /// Held, but not to be undone: `found` says in which state.
    pub fn kept(found: impl fmt::Display) -> Self {
        Undo::Kept(found.to_string())
    }

    /// The change, or what was found instead of something to undo.
    pub fn into_change(self) -> Result<T, String> {
        match self {
            Undo::Done(done) => Ok(done),
            Undo::Nothing(found) | Undo::Kept(found) => Err(found),
        }
    }
}

/// The compensation of `branch` of saga `saga` (the order, in the order saga), answering the event
/// `event_id`: through the barrier, then the service's `undo` of that saga unless the barrier found
/// a null compensation (it now blocks a late forward step) or a duplicate. Returns the event to
/// emit, if any.
pub async fn compensate<S, T, E, Er>(
    conn: &mut PgConnection,
    saga: S,
    branch: &str,
    event_id: EventId,
    undo: impl AsyncFnOnce(&mut PgConnection, S) -> Result<Undo<T>, Er>,
) -> Result<Vec<E>, HandlerError>
where
    S: fmt::Display + Copy,
    T: Into<E>,
    Er: Into<HandlerError>,
{
    let saga_id = saga.to_string();
    let gate = barrier::compensate(conn, &saga_id, branch, event_id).await?;
    if gate != Gate::Proceed {
        tracing::info!(saga_id, branch, ?gate, "compensation: nothing to undo");
        return Ok(vec![]);
    }
    Ok(match undo(conn, saga).await.map_err(Into::into)? {
        Undo::Done(done) => vec![done.into()],
        Undo::Nothing(found) => {
            tracing::info!(saga_id, branch, %found, "compensation: nothing held");
            vec![]
        }
        Undo::Kept(found) => {
            tracing::warn!(saga_id, branch, %found,
                "compensation: what the saga holds here may not be undone");
            vec![]
        }
    })
}

/// The same undo as the repair `repair` (e.g. `voucher-repair-release`), in the caller's
/// transaction. `version` reads when the row the saga holds here was last changed; with no such
/// row there is nothing to repair. Otherwise the barrier records the compensation (so a
/// compensation still on its way finds the work done), then `undo` runs whatever the barrier says,
/// and its change is announced as an `E` under the repair's [event id](repair::event_id), which
/// the version keeps the same for the same row.
pub async fn repair<E, S, T, Er>(
    conn: &mut PgConnection,
    repair: &'static str,
    saga: S,
    branch: &str,
    version: impl AsyncFnOnce(&mut PgConnection, S) -> Result<Option<OffsetDateTime>, sqlx::Error>,
    undo: impl AsyncFnOnce(&mut PgConnection, S) -> Result<Undo<T>, Er>,
) -> Result<Repaired, RepairError>
where
    E: EventSet,
    S: fmt::Display + Copy,
    T: Into<E>,
    Er: Into<HandlerError>,
{
    let failed = |e: HandlerError| RepairError::new(repair, saga, e);
    let Some(version) = version(conn, saga).await.map_err(|e| failed(e.into()))? else {
        return Ok(Repaired::AlreadyConsistent(format!(
            "{branch} holds nothing of saga {saga}"
        )));
    };
    let saga_id = saga.to_string();
    let event_id = repair::event_id(repair, &saga_id, Some(version));
    barrier::compensate(conn, &saga_id, branch, event_id)
        .await
        .map_err(|e| failed(e.into()))?;
    let found = undo(conn, saga).await.map_err(|e| failed(e.into()))?;
    repair::announce::<T, E>(conn, event_id, found.into_change())
        .await
        .map_err(|e| failed(e.into()))
}
