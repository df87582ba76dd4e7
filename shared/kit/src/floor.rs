//! Each consumer's ack floor, kept in the service's database: the safe start of a replay.
//!
//! Every message of a durable's input stream up to its ack floor was settled, and a message is
//! acked (or termed) only after the transaction holding its effect (or its dead letter) committed.
//! So the floor the runner writes is a promise about the database it writes it to: everything up to
//! it is in there. A database restored from a backup keeps the floor of the moment of the backup,
//! and a replay that starts each consumer just after it misses nothing, whatever the operator
//! guesses about the time of the backup.

use sqlx::{PgConnection, PgPool};

/// How often the runner writes its floor.
pub const RECORD_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Records `consumer`'s ack floor; a floor never moves back (a recreated durable starts from the
/// beginning of its stream, and what it acks again was in the database already).
pub async fn record(
    pool: &PgPool,
    consumer: &str,
    stream: &str,
    ack_floor: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO kit_consumer_floor (consumer, stream, ack_floor) VALUES ($1, $2, $3)
         ON CONFLICT (consumer) DO UPDATE
             SET ack_floor = GREATEST(kit_consumer_floor.ack_floor, EXCLUDED.ack_floor),
                 stream = EXCLUDED.stream,
                 recorded_at = now()",
    )
    .bind(consumer)
    .bind(stream)
    .bind(i64::try_from(ack_floor).unwrap_or(i64::MAX))
    .execute(pool)
    .await?;
    Ok(())
}

/// The floor this database holds for `consumer`, if the runner ever wrote one.
pub async fn saved(conn: &mut PgConnection, consumer: &str) -> Result<Option<u64>, sqlx::Error> {
    let floor: Option<i64> =
        sqlx::query_scalar("SELECT ack_floor FROM kit_consumer_floor WHERE consumer = $1")
            .bind(consumer)
            .fetch_optional(conn)
            .await?;
    Ok(floor.map(|f| u64::try_from(f).unwrap_or(0)))
}
