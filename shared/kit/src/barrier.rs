//! The saga barrier: the one mechanism every participant uses for the races between a forward step
//! and its compensation.
//!
//! Each participant records, per saga and branch, that it ran the forward step and that it ran the
//! compensation, in the same transaction as the effect. The primary key does the rest:
//! - a compensation that finds no forward record is a **null compensation**: it leaves a forward
//!   record behind as a tombstone and does nothing else;
//! - a forward step that finds that tombstone is a **hanging step**: it does nothing;
//! - a second forward step or compensation for the same branch is a **duplicate** effect, even when
//!   it arrives in an event with another id.
//!
//! Two racing transactions serialize on the primary key, so exactly one of them wins.

use jetsaga_contracts::EventId;
use sqlx::PgConnection;

/// What the barrier decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Apply the effect.
    Proceed,
    /// This effect was already applied for the branch.
    Duplicate,
    /// A compensation with nothing to compensate: recorded, nothing to undo.
    NullCompensation,
    /// A forward step after its compensation: recorded, must not take effect.
    Hanging,
}

impl Gate {
    pub fn proceeds(self) -> bool {
        self == Gate::Proceed
    }
}

async fn record(
    conn: &mut PgConnection,
    saga_id: &str,
    branch: &str,
    op: &str,
    event_id: EventId,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "INSERT INTO kit_barrier (saga_id, branch, op, event_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(saga_id)
    .bind(branch)
    .bind(op)
    .bind(event_id.as_uuid())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Passes the forward step of `branch` of saga `saga_id` through the barrier.
pub async fn forward(
    conn: &mut PgConnection,
    saga_id: &str,
    branch: &str,
    event_id: EventId,
) -> Result<Gate, sqlx::Error> {
    if record(conn, saga_id, branch, "forward", event_id).await? {
        return Ok(Gate::Proceed);
    }
    let compensated: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM kit_barrier WHERE saga_id = $1 AND branch = $2 AND op = 'compensate')",
    )
    .bind(saga_id)
    .bind(branch)
    .fetch_one(conn)
    .await?;
    Ok(if compensated {
        Gate::Hanging
    } else {
        Gate::Duplicate
    })
}

/// Passes the compensation of `branch` of saga `saga_id` through the barrier.
pub async fn compensate(
    conn: &mut PgConnection,
    saga_id: &str,
    branch: &str,
    event_id: EventId,
) -> Result<Gate, sqlx::Error> {
    if !record(conn, saga_id, branch, "compensate", event_id).await? {
        return Ok(Gate::Duplicate);
    }
    if record(conn, saga_id, branch, "forward", event_id).await? {
        return Ok(Gate::NullCompensation);
    }
    Ok(Gate::Proceed)
}

/// What a step that took effect left in the barrier, for a replay that restores the step's
/// recorded fact instead of running it again (see [`crate::facts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// A forward step that proceeded: its `forward` record.
    Forward,
    /// A compensation that proceeded: its `compensate` record, and the `forward` record it found
    /// (written here too, should the forward fact be missing, so a late forward step still hangs).
    Compensation,
}

/// Writes the records `restored` says a step of `branch` of saga `saga_id` left, under
/// `event_id` (the input the step answered), without deciding anything: a record that is there
/// already stays as it is.
pub async fn restore(
    conn: &mut PgConnection,
    saga_id: &str,
    branch: &str,
    restored: Restored,
    event_id: EventId,
) -> Result<(), sqlx::Error> {
    if restored == Restored::Compensation {
        record(conn, saga_id, branch, "compensate", event_id).await?;
    }
    record(conn, saga_id, branch, "forward", event_id).await?;
    Ok(())
}
