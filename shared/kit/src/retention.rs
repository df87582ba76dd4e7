//! Trimming the kit's tables of rows no message can need any more.
//!
//! The outbox keeps every event a service said and the inbox every event id a consumer applied, so
//! both grow with every saga. A row may go once no copy of its message can be delivered again:
//! - a **published outbox row** is what the stream audit looks for in the stream and what a replay
//!   of the service's own facts dedupes against; both only read events the stream still holds;
//! - an **inbox row** dedupes a redelivery, a second durable or a replay of its message; all of them
//!   read the stream, which holds nothing older than its `max_age`;
//! - a **requeued dead letter** publishes its message again, and the consumers that applied it
//!   dedupe it by their inbox rows: [`requeue_refused`] refuses a message older than its stream keeps
//!   events, and rows are trimmed a [`MARGIN`] later than that.
//!
//! So rows are kept for the longest `max_age` of the streams a service reads and writes, plus a day
//! ([`keep_for`]); a stream that keeps events for ever keeps the rows for ever. Unpublished and
//! parked outbox rows are never trimmed, nor are dead letters (an operator's record), nor the
//! barrier: a step of an old saga can be issued again under a new event id (an operator's repair),
//! and the barrier is what makes it a no-op, whatever its age.
//!
//! A trim walks each table once, a slice of pages at a time (a TID range scan, no index needed),
//! each slice its own short statement followed by a pause as long, so the saga's transactions never
//! wait behind it and keep at least half of the database's time. One instance of a service trims at
//! a time (an advisory lock); another finds it taken and skips.

use async_nats::jetstream;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use std::time::Duration;
use time::OffsetDateTime;

/// How much longer than its streams the kit keeps a row: clocks differ between hosts, and a message
/// is received a little after it was written.
pub const MARGIN: Duration = Duration::from_secs(24 * 3600);

/// Pages each statement of a trim covers: 8 MB of table.
const PAGES_PER_STEP: i64 = 1024;

/// The advisory lock the instance trimming a database holds (`pg_locks`, `objid` 1 of this key).
pub const TRIM_LOCK: i64 = 0x6a65_7473_6167_6101;

/// How long rows are kept, given the `max_age` of each stream they relate to: a [`MARGIN`] longer
/// than the longest; `None` (for ever) when a stream keeps its events for ever (`max_age` zero) or
/// no stream is known.
pub fn keep_for(max_ages: impl IntoIterator<Item = Duration>) -> Option<Duration> {
    let mut longest: Option<Duration> = None;
    for age in max_ages {
        if age.is_zero() {
            return None;
        }
        longest = Some(longest.map_or(age, |l| l.max(age)));
    }
    longest.map(|l| l.saturating_add(MARGIN))
}

/// Whether a dead letter whose message was written at `written` may not be requeued now, from a
/// stream that keeps events for `max_age`: a message older than that may be forgotten by the
/// consumers that applied it, and would act twice.
pub fn requeue_refused(written: OffsetDateTime, now: OffsetDateTime, max_age: Duration) -> bool {
    !max_age.is_zero() && now - written > max_age
}

/// Why the streams' retention could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading how long stream {stream} keeps events: {source}")]
pub struct RetentionError {
    pub stream: String,
    #[source]
    pub source: async_nats::Error,
}

/// The `max_age` of each of `streams` that exists (a stream not created yet holds nothing).
pub async fn stream_max_ages(
    js: &jetstream::Context,
    streams: &[&str],
) -> Result<Vec<Duration>, RetentionError> {
    let mut ages = Vec::with_capacity(streams.len());
    for &stream in streams {
        match js.get_stream(stream).await {
            Ok(s) => ages.push(s.cached_info().config.max_age),
            Err(e) if crate::provision::is_stream_not_found(&e) => continue,
            Err(e) => {
                return Err(RetentionError {
                    stream: stream.to_owned(),
                    source: e.into(),
                })
            }
        }
    }
    Ok(ages)
}

/// What one trim removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Published outbox rows.
    pub outbox: u64,
    /// Inbox rows.
    pub inbox: u64,
    /// Another instance was trimming this database; this one did nothing.
    pub skipped: bool,
}

/// One table a trim walks, and which of its rows may go.
struct Table {
    name: &'static str,
    /// The rows older than `$3` seconds that may go.
    old: &'static str,
}

const OUTBOX: Table = Table {
    name: "kit_outbox",
    old: "published_at IS NOT NULL AND parked_at IS NULL
          AND published_at < now() - make_interval(secs => $3)
          AND created_at < now() - make_interval(secs => $3)",
};

const INBOX: Table = Table {
    name: "kit_inbox",
    old: "received_at < now() - make_interval(secs => $3)",
};

/// Deletes the published outbox rows and the inbox rows older than `keep`, unless another instance
/// is trimming this database now.
pub async fn trim(pool: &PgPool, keep: Duration) -> Result<Trimmed, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    // The lock lives as long as the session, and a trim can fail or be dropped half-way (a
    // shutdown): the connection is closed after it, never handed back to the pool still holding
    // the lock. One connection a day is cheap.
    conn.close_on_drop();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(TRIM_LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(Trimmed {
            skipped: true,
            ..Trimmed::default()
        });
    }
    let trimmed = trim_locked(&mut conn, keep).await?;
    // Released now, not when the connection is closed, so the next trim anywhere finds it free.
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(TRIM_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(trimmed)
}

async fn trim_locked(
    conn: &mut PoolConnection<Postgres>,
    keep: Duration,
) -> Result<Trimmed, sqlx::Error> {
    Ok(Trimmed {
        outbox: trim_table(conn, &OUTBOX, keep).await?,
        inbox: trim_table(conn, &INBOX, keep).await?,
        skipped: false,
    })
}

/// Walks `table` a slice of pages at a time, deleting its old rows; rows added meanwhile land
/// beyond the pages counted at the start, and are young.
async fn trim_table(
    conn: &mut PoolConnection<Postgres>,
    table: &Table,
    keep: Duration,
) -> Result<u64, sqlx::Error> {
    let pages: i64 = sqlx::query_scalar(&format!(
        "SELECT pg_relation_size('{}') / current_setting('block_size')::bigint",
        table.name
    ))
    .fetch_one(&mut **conn)
    .await?;
    let delete = format!(
        "DELETE FROM {} WHERE ctid >= format('(%s,0)', $1::bigint)::tid
             AND ctid < format('(%s,0)', $2::bigint)::tid AND {}",
        table.name, table.old
    );
    let mut deleted = 0;
    let mut from = 0;
    while from < pages {
        let to = from + PAGES_PER_STEP;
        let started = std::time::Instant::now();
        deleted += sqlx::query(&delete)
            .bind(from)
            .bind(to)
            .bind(keep.as_secs_f64())
            .execute(&mut **conn)
            .await?
            .rows_affected();
        // As long again before the next slice: a first trim of a year of rows writes its WAL at
        // half the pace the database could, and the saga's transactions keep the rest.
        tokio::time::sleep(started.elapsed()).await;
        from = to;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn rows_are_kept_a_day_longer_than_the_longest_keeping_stream() {
        assert_eq!(keep_for([7 * DAY, 30 * DAY, DAY]), Some(31 * DAY));
        assert_eq!(keep_for([DAY]), Some(2 * DAY));
    }

    #[test]
    fn a_stream_that_keeps_events_for_ever_keeps_the_rows_for_ever() {
        assert_eq!(keep_for([30 * DAY, Duration::ZERO]), None);
    }

    #[test]
    fn with_no_stream_known_nothing_is_trimmed() {
        assert_eq!(keep_for([]), None);
    }

    #[test]
    fn a_dead_letter_older_than_its_stream_keeps_events_cannot_be_requeued() {
        let now = datetime!(2026-12-07 12:00 UTC);
        let thirty = 30 * DAY;
        assert!(!requeue_refused(
            datetime!(2026-11-08 12:01 UTC),
            now,
            thirty
        ));
        assert!(requeue_refused(
            datetime!(2026-11-07 11:59 UTC),
            now,
            thirty
        ));
        assert!(!requeue_refused(
            datetime!(2020-01-01 00:00 UTC),
            now,
            Duration::ZERO
        ));
    }
}
