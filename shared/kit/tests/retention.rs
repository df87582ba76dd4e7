//! The kit's tables are trimmed of rows no message can need any more, and of nothing else: a
//! published outbox row and an inbox row go a day after their streams stop holding their messages;
//! unpublished and parked rows, the barrier and anything young stay.

mod common;

use common::{order_created, spawn_consumer, Harness, Participant};
use jetsaga_testkit::wait_until;
use saga_kit::provision::StreamSettings;
use saga_kit::retention::{self, Trimmed};
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Runs an update that moves rows back `$1` days, as if written then; how many it moved.
async fn age(h: &Harness, sql: &str, days: i32) -> anyhow::Result<u64> {
    Ok(sqlx::query(sql)
        .bind(days)
        .execute(h.db.pool())
        .await?
        .rows_affected())
}

async fn count(h: &Harness, sql: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(h.db.pool()).await?)
}

#[tokio::test]
async fn a_trim_deletes_rows_older_than_the_streams_keep_and_nothing_else() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    for _ in 0..4 {
        h.commit_event(&order_created("A")).await?;
    }
    h.relay_until_empty(&h.relay()).await?;
    let participant = Arc::new(Participant::default());
    let (shutdown, task) = spawn_consumer(&h, participant.clone());
    wait_until(
        "the four orders applied",
        Duration::from_secs(20),
        || async { h.effects().await.map(|e| e.len() == 4).unwrap_or(false) },
    )
    .await?;
    shutdown.cancel();
    task.await?;
    // The stand-in's own events (a StockReserved for each order) go out too: 8 published rows.
    h.relay_until_empty(&h.relay()).await?;
    // Two more that wait for the relay, one of them parked.
    h.commit_event(&order_created("A")).await?;
    let parked = h.commit_event(&order_created("A")).await?;
    sqlx::query(
        "UPDATE kit_outbox SET parked_at = now(), park_reason = 'too big' WHERE event_id = $1",
    )
    .bind(parked.id.as_uuid())
    .execute(h.db.pool())
    .await?;
    sqlx::query(
        "INSERT INTO kit_barrier (saga_id, branch, op, event_id, at)
         VALUES ('old-saga', 'stock', 'forward', gen_random_uuid(), now() - interval '400 days')",
    )
    .execute(h.db.pool())
    .await?;

    let ages = retention::stream_max_ages(&h.js, &["ORDERS", "STOCK"]).await?;
    let keep = retention::keep_for(ages).expect("the streams keep events 30 days");
    assert_eq!(keep, 31 * DAY);
    // Right after the sagas, nothing is old enough: every message is still in its stream.
    assert_eq!(
        retention::trim(h.db.pool(), keep).await?,
        Trimmed::default()
    );

    // Two published rows and two inbox rows from 40 days ago, one of each from 20 days ago; the
    // unpublished and the parked row from 40 days ago too.
    let published = "UPDATE kit_outbox SET created_at = now() - make_interval(days => $1),
                         published_at = now() - make_interval(days => $1)
                     WHERE id IN (SELECT id FROM kit_outbox WHERE published_at IS NOT NULL
                                  AND created_at > now() - interval '1 day' ORDER BY id LIMIT 2)";
    assert_eq!(age(&h, published, 40).await?, 2);
    assert_eq!(
        age(&h, &published.replace("LIMIT 2", "LIMIT 1"), 20).await?,
        1
    );
    let unpublished = "UPDATE kit_outbox SET created_at = now() - make_interval(days => $1)
                       WHERE published_at IS NULL";
    assert_eq!(age(&h, unpublished, 40).await?, 2);
    let inbox = "UPDATE kit_inbox SET received_at = now() - make_interval(days => $1)
                 WHERE event_id IN (SELECT event_id FROM kit_inbox
                                    WHERE received_at > now() - interval '1 day'
                                    ORDER BY event_id LIMIT 2)";
    assert_eq!(age(&h, inbox, 40).await?, 2);
    assert_eq!(age(&h, &inbox.replace("LIMIT 2", "LIMIT 1"), 20).await?, 1);

    let trimmed = retention::trim(h.db.pool(), keep).await?;
    assert_eq!(
        trimmed,
        Trimmed {
            outbox: 2,
            inbox: 2,
            skipped: false
        }
    );
    assert_eq!(
        count(
            &h,
            "SELECT count(*) FROM kit_outbox WHERE published_at IS NOT NULL"
        )
        .await?,
        6,
        "the young published rows stay"
    );
    assert_eq!(
        count(
            &h,
            "SELECT count(*) FROM kit_outbox WHERE published_at IS NULL"
        )
        .await?,
        2,
        "an unpublished row and a parked row stay, however old"
    );
    assert_eq!(count(&h, "SELECT count(*) FROM kit_inbox").await?, 2);
    assert_eq!(
        count(&h, "SELECT count(*) FROM kit_barrier").await?,
        1,
        "the barrier stays"
    );
    // A second trim finds nothing more.
    assert_eq!(
        retention::trim(h.db.pool(), keep).await?,
        Trimmed::default()
    );
    Ok(())
}

#[tokio::test]
async fn a_second_instance_skips_the_trim_another_is_running() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut other = h.db.pool().acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(retention::TRIM_LOCK)
        .execute(&mut *other)
        .await?;
    let trimmed = retention::trim(h.db.pool(), 31 * DAY).await?;
    assert!(trimmed.skipped, "{trimmed:?}");
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(retention::TRIM_LOCK)
        .execute(&mut *other)
        .await?;
    // The trim left no lock behind: the next one runs.
    drop(other);
    assert!(!retention::trim(h.db.pool(), 31 * DAY).await?.skipped);
    assert!(!retention::trim(h.db.pool(), 31 * DAY).await?.skipped);
    Ok(())
}

#[tokio::test]
async fn rows_are_kept_as_long_as_the_streams_keep_events_as_configured() -> anyhow::Result<()> {
    let h = Harness::start_with(StreamSettings {
        max_age: 7 * DAY,
        ..StreamSettings::default()
    })
    .await?;
    // A stream that does not exist yet holds nothing, and says nothing about how long to keep.
    let ages = retention::stream_max_ages(&h.js, &["ORDERS", "NOT_THERE_YET"]).await?;
    assert_eq!(ages, vec![7 * DAY]);
    assert_eq!(retention::keep_for(ages), Some(8 * DAY));
    Ok(())
}

#[tokio::test]
async fn a_trim_stopped_half_way_leaves_no_lock_behind() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    // An inbox of some 60 MB, a walk of several slices.
    sqlx::query(
        "INSERT INTO kit_inbox (consumer, event_id, stream_seq, received_at)
         SELECT 'c', gen_random_uuid(), g, now() - interval '40 days'
         FROM generate_series(1, 600000) g",
    )
    .execute(h.db.pool())
    .await?;
    let held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted";
    let pool = h.db.pool().clone();
    let trim = tokio::spawn(async move { retention::trim(&pool, 31 * DAY).await });
    wait_until(
        "the trim to hold its lock",
        Duration::from_secs(20),
        || async { count(&h, held).await.is_ok_and(|n| n == 1) },
    )
    .await?;
    // Stopped half-way, as a shutdown stops it.
    trim.abort();
    assert!(
        trim.await.is_err_and(|e| e.is_cancelled()),
        "the trim ended first"
    );
    wait_until("the lock released", Duration::from_secs(20), || async {
        count(&h, held).await.is_ok_and(|n| n == 0)
    })
    .await?;
    assert!(!retention::trim(h.db.pool(), 31 * DAY).await?.skipped);
    Ok(())
}
