//! The inbox: `(consumer, event_id)` inserted in the handler's own transaction. The primary key is
//! the dedupe, so a second delivery of the same event id, however it arrives, has no effect.

use jetsaga_contracts::EventId;
use sqlx::PgConnection;

/// Whether this consumer has seen the event before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First time: apply the effect in this transaction.
    Fresh,
    /// Already applied (or being applied by a transaction that will commit first).
    Duplicate,
}

/// Records the event for the consumer in the caller's transaction.
pub async fn claim(
    conn: &mut PgConnection,
    consumer: &str,
    event_id: EventId,
    stream_seq: Option<u64>,
) -> Result<Claim, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO kit_inbox (consumer, event_id, stream_seq) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(event_id.as_uuid())
    .bind(stream_seq.map(|s| i64::try_from(s).unwrap_or(i64::MAX)))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(if inserted == 1 {
        Claim::Fresh
    } else {
        Claim::Duplicate
    })
}

/// Whether the consumer has recorded the event.
pub async fn contains(
    conn: &mut PgConnection,
    consumer: &str,
    event_id: EventId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM kit_inbox WHERE consumer = $1 AND event_id = $2)",
    )
    .bind(consumer)
    .bind(event_id.as_uuid())
    .fetch_one(conn)
    .await
}
