//! The runner's own count of a message's failed deliveries, kept in the service's database.
//!
//! The server is told never to give up on a message (`max_deliver` -1): a message whose
//! last delivery the server gave up on while the database was down was neither applied nor
//! dead-lettered. The runner decides instead, from this count:
//! - a failure of the message itself (a handler's transient error, a panic, a database error that is
//!   not an outage) counts once per delivery;
//! - a redelivery counts before it is handled, so a message whose every delivery dies or hangs
//!   reaches the budget too; if that delivery then meets an unavailable database, the count is given
//!   back;
//! - an unavailable database never counts: nothing can be written then, and nothing needs to be.
//!
//! A row exists only while a message is failing. The transaction that applies, dedupes or
//! dead-letters the message removes it.

use sqlx::{PgConnection, PgPool};

/// Which message of which consumer.
#[derive(Debug, Clone, Copy)]
pub struct MessageKey<'a> {
    pub consumer: &'a str,
    pub stream: &'a str,
    pub stream_seq: u64,
}

impl MessageKey<'_> {
    fn seq(&self) -> i64 {
        i64::try_from(self.stream_seq).unwrap_or(i64::MAX)
    }
}

/// The count so far and the last error recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Count {
    pub failures: i32,
    pub last_error: Option<String>,
}

/// Counts a redelivery before it is handled, and returns the count with it.
pub async fn count_redelivery(pool: &PgPool, key: MessageKey<'_>) -> Result<Count, sqlx::Error> {
    sqlx::query_as::<_, Count>(
        "INSERT INTO kit_delivery_failures (consumer, stream, stream_seq, failures)
         VALUES ($1, $2, $3, 1)
         ON CONFLICT (consumer, stream, stream_seq)
         DO UPDATE SET failures = kit_delivery_failures.failures + 1, updated_at = now()
         RETURNING failures, last_error",
    )
    .bind(key.consumer)
    .bind(key.stream)
    .bind(key.seq())
    .fetch_one(pool)
    .await
}

/// Records a failure of the message itself. `counted` says whether this delivery was already
/// counted by [`count_redelivery`]; the error is kept either way. Returns the count.
pub async fn record_failure(
    pool: &PgPool,
    key: MessageKey<'_>,
    error: &str,
    counted: bool,
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO kit_delivery_failures (consumer, stream, stream_seq, failures, last_error)
         VALUES ($1, $2, $3, 1, $4)
         ON CONFLICT (consumer, stream, stream_seq)
         DO UPDATE SET failures = kit_delivery_failures.failures + CASE WHEN $5 THEN 0 ELSE 1 END,
                       last_error = $4, updated_at = now()
         RETURNING failures",
    )
    .bind(key.consumer)
    .bind(key.stream)
    .bind(key.seq())
    .bind(crate::dead_letter::storable(error))
    .bind(counted)
    .fetch_one(pool)
    .await
}

/// Gives back the count of a redelivery that met an unavailable database.
pub async fn forgive(pool: &PgPool, key: MessageKey<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE kit_delivery_failures SET failures = greatest(failures - 1, 0)
         WHERE consumer = $1 AND stream = $2 AND stream_seq = $3",
    )
    .bind(key.consumer)
    .bind(key.stream)
    .bind(key.seq())
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the message's failures, in the transaction that settles it.
pub async fn clear(conn: &mut PgConnection, key: MessageKey<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM kit_delivery_failures
         WHERE consumer = $1 AND stream = $2 AND stream_seq = $3",
    )
    .bind(key.consumer)
    .bind(key.stream)
    .bind(key.seq())
    .execute(conn)
    .await?;
    Ok(())
}
