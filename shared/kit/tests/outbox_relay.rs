//! Conformance: the outbox and its relay lose nothing, publish nothing twice and keep per-order order.

mod common;

use common::{order_created, Harness};
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::{CancelReason, EventId, EventSet, OrderEvent, OrderId};
use jetsaga_testkit::wait_until;
use saga_kit::RelayOutcome;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn crash_after_commit_publishes_the_event_once_after_restart() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let env = h.commit_event(&order_created("SKU-1")).await?;
    // The process "dies" here: committed, never relayed. A new relay after the restart finds it.
    let relay = h.relay();
    assert_eq!(h.relay_until_empty(&relay).await?, 1);
    assert_eq!(relay.relay_batch().await?, RelayOutcome::Empty);
    let msgs = h.stream_messages("ORDERS").await?;
    assert_eq!(msgs, vec![(env.subject.clone(), env.id.to_string())]);
    Ok(())
}

#[tokio::test]
async fn crash_after_publish_before_mark_stores_no_duplicate() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let env = h.commit_event(&order_created("SKU-1")).await?;
    let relay = h.relay();
    // Claim and publish, then "crash" before marking: the claim's transaction rolls back.
    let claim = relay.claim().await?;
    assert_eq!(claim.len(), 1);
    let published = claim.publish(&h.js).await;
    assert_eq!(published.acked(), 1);
    drop(published);
    // After the restart the row is still unpublished and is sent again under the same Msg-Id.
    // (A dropped transaction rolls back in the background; until then its lock makes the row
    // skipped, as a dead process's lock is until PostgreSQL notices the broken connection.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut republished = 0;
    while republished == 0 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the row never came back"
        );
        republished += h.relay_until_empty(&relay).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(republished, 1);
    let msgs = h.stream_messages("ORDERS").await?;
    assert_eq!(msgs, vec![(env.subject.clone(), env.id.to_string())]);
    Ok(())
}

#[tokio::test]
async fn rolled_back_transaction_publishes_nothing() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut tx = h.db.pool().begin().await?;
    saga_kit::outbox::emit_root(&mut tx, EventId::new_random(), &order_created("SKU-1")).await?;
    tx.rollback().await?;
    let relay = h.relay();
    assert_eq!(relay.relay_batch().await?, RelayOutcome::Empty);
    assert!(h.stream_messages("ORDERS").await?.is_empty());
    Ok(())
}

/// A relay that polls once an hour: only a notification or a wake makes it publish in time.
fn relay_polling_hourly(h: &Harness) -> saga_kit::Relay {
    h.relay_with(saga_kit::RelayConfig {
        poll_interval: Duration::from_secs(3600),
        ..Default::default()
    })
}

#[tokio::test]
async fn relay_wakes_on_notify_without_waiting_for_the_poll() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let relay = relay_polling_hourly(&h);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay.run(shutdown.clone()));
    // Let the relay reach its idle wait, then commit: only the notification can wake it in time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let env = h.commit_event(&order_created("SKU-1")).await?;
    wait_until(
        "the event to be in the stream",
        Duration::from_secs(10),
        || async {
            h.stream_messages("ORDERS")
                .await
                .map(|m| m.iter().any(|(_, id)| *id == env.id.to_string()))
                .unwrap_or(false)
        },
    )
    .await?;
    shutdown.cancel();
    task.await?;
    Ok(())
}

/// `orders` orders with `per_order` events each, each event committed in its own transaction.
async fn commit_orders(
    pool: &sqlx::PgPool,
    orders: usize,
    per_order: usize,
) -> anyhow::Result<HashMap<String, Vec<String>>> {
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for _ in 0..orders {
        let order_id = OrderId::new_random();
        for _ in 0..per_order {
            let event = OrderEvent::OrderCancelled(OrderCancelled {
                order_id,
                reason: CancelReason::Timeout,
            });
            let mut tx = pool.begin().await?;
            let env = saga_kit::outbox::emit_root(&mut tx, EventId::new_random(), &event).await?;
            tx.commit().await?;
            expected
                .entry(event.key())
                .or_default()
                .push(env.id.to_string());
        }
    }
    Ok(expected)
}

/// Asserts every expected event is in ORDERS exactly once, and each order's in commit order.
async fn assert_exactly_once_in_order(
    h: &Harness,
    expected: &HashMap<String, Vec<String>>,
) -> anyhow::Result<()> {
    let msgs = h.stream_messages("ORDERS").await?;
    let total: usize = expected.values().map(Vec::len).sum();
    let ids: HashSet<&String> = msgs.iter().map(|(_, id)| id).collect();
    assert_eq!(
        msgs.len(),
        total,
        "a duplicate or a lost event in the stream"
    );
    assert_eq!(ids.len(), total, "a duplicate event id in the stream");
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for (subject, id) in msgs {
        let key = subject.rsplit('.').next().unwrap_or_default().to_owned();
        seen.entry(key).or_default().push(id);
    }
    for (key, ids) in expected {
        assert_eq!(
            seen.get(key),
            Some(ids),
            "order {key} out of order or incomplete"
        );
    }
    Ok(())
}

#[tokio::test]
async fn two_relays_publish_each_event_once_in_per_order_order() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let expected = commit_orders(h.db.pool(), 40, 5).await?;
    let (a, b) = (h.relay(), h.relay());
    let (ra, rb) = tokio::join!(h.relay_until_empty(&a), h.relay_until_empty(&b));
    // Each relay saw the other's rows as locked or already published; together they sent all.
    let (ra, rb) = (ra?, rb?);
    let left = h.relay_until_empty(&a).await?;
    assert_eq!(ra + rb + left, 200);
    assert_exactly_once_in_order(&h, &expected).await
}

#[tokio::test]
async fn broker_outage_during_a_burst_loses_and_doubles_nothing() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let relay = h.relay();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay.clone().run(shutdown.clone()));
    // A burst of commits runs while the relay publishes...
    let pool = h.db.pool().clone();
    let burst = tokio::spawn(async move { commit_orders(&pool, 100, 3).await });
    wait_until(
        "the burst to be half published",
        Duration::from_secs(30),
        || async {
            h.stream_messages("ORDERS")
                .await
                .map(|m| m.len() >= 100)
                .unwrap_or(false)
        },
    )
    .await?;
    // ...and NATS dies in the middle of it, while commits go on.
    h.nats.kill()?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    h.nats.restart().await?;
    let expected = burst.await??;
    drained(
        &h,
        "the outbox to drain after the restart",
        Duration::from_secs(60),
    )
    .await?;
    shutdown.cancel();
    task.await?;
    assert_exactly_once_in_order(&h, &expected).await
}

#[tokio::test]
async fn a_relay_with_three_workers_publishes_a_burst_each_event_once_in_per_order_order(
) -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let relay = h.relay_with(saga_kit::RelayConfig {
        workers: 3,
        batch_size: 8,
        ..saga_kit::RelayConfig::default()
    });
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay.run(shutdown.clone()));
    // Commits go on while the workers publish, several events per order.
    let expected = commit_orders(h.db.pool(), 60, 3).await?;
    drained(&h, "the outbox to drain", Duration::from_secs(30)).await?;
    shutdown.cancel();
    task.await?;
    assert_exactly_once_in_order(&h, &expected).await
}

/// A relay keeps its connection between steps. When the database cuts it (a failover, a restart, an
/// operator's `pg_terminate_backend`), one step fails and the next publishes on a new one.
#[tokio::test]
async fn a_relay_whose_connection_the_database_cut_publishes_at_its_next_step() -> anyhow::Result<()>
{
    let h = Harness::start().await?;
    let relay = h.relay();
    let first = h.commit_event(&order_created("SKU-1")).await?;
    assert_eq!(h.relay_until_empty(&relay).await?, 1);
    // Every connection to the database but this one is cut, the relay's among them.
    assert!(
        h.cut_connections().await? >= 1,
        "the relay's connection was cut"
    );
    let second = h.commit_event(&order_created("SKU-2")).await?;
    let mut published = 0;
    let mut failed = 0;
    for _ in 0..3 {
        match relay.relay_batch().await {
            Ok(RelayOutcome::Published(n)) => published += n,
            Ok(RelayOutcome::Empty) => {}
            Err(e) => {
                failed += 1;
                tracing::info!(error = %e, "relay step failed on its cut connection");
            }
        }
    }
    assert_eq!(published, 1, "the second event is published once");
    assert!(failed <= 1, "only the step on the cut connection fails");
    let msgs = h.stream_messages("ORDERS").await?;
    assert_eq!(
        msgs,
        vec![
            (first.subject.clone(), first.id.to_string()),
            (second.subject.clone(), second.id.to_string()),
        ]
    );
    Ok(())
}

/// Waits until nothing in the outbox waits to be published.
async fn drained(h: &Harness, what: &str, within: Duration) -> anyhow::Result<()> {
    wait_until(what, within, || async {
        let Ok(mut conn) = h.db.pool().acquire().await else {
            return false;
        };
        saga_kit::outbox::backlog(&mut conn)
            .await
            .map(|n| n == 0)
            .unwrap_or(false)
    })
    .await
}

/// A prepared statement's plan can be made once, while the outbox is empty, and kept: a seq scan
/// of the whole outbox for every mark, growing with every event ever published.
#[tokio::test]
async fn marking_rows_published_reads_no_more_of_the_outbox_as_it_grows() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    // One connection, so every step plans (and caches) on the same one.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&h.db.url())
        .await?;
    let relay = saga_kit::Relay::new(
        pool.clone(),
        h.js.clone(),
        saga_kit::RelayConfig::default(),
        h.metrics.clone(),
    );
    // Steps on an almost empty outbox: enough for a generic plan to be chosen and kept.
    for _ in 0..8 {
        h.commit_event(&order_created("SKU-1")).await?;
        assert_eq!(relay.relay_batch().await?, RelayOutcome::Published(1));
    }
    // The outbox grows to what a day of orders leaves behind.
    const GROWN: i64 = 50_000;
    sqlx::query(
        "INSERT INTO kit_outbox (event_id, subject, order_key, ce_type, headers, payload,
                                 published_at, stream_seq)
         SELECT gen_random_uuid(), 'orders.created.' || i, i::text, 'jetsaga.order.created.v1',
                '{}'::jsonb, '\\x00'::bytea, now(), i
         FROM generate_series(1, $1) AS i",
    )
    .bind(GROWN)
    .execute(h.db.pool())
    .await?;
    let read_before = seq_rows_read(&h).await?;
    for _ in 0..8 {
        h.commit_event(&order_created("SKU-1")).await?;
        assert_eq!(relay.relay_batch().await?, RelayOutcome::Published(1));
    }
    // The relay keeps its connection between steps; dropped, it gives it back.
    drop(relay);
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    let read = flushed_reads_since(&h, pid, read_before).await?;
    assert!(
        read < GROWN,
        "8 relay steps read {read} outbox rows by seq scan; the outbox has {GROWN}"
    );
    Ok(())
}

/// Rows read from `kit_outbox` by sequential scans, as the statistics say now.
async fn seq_rows_read(h: &Harness) -> anyhow::Result<i64> {
    let mut conn = h.db.pool().acquire().await?;
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query_scalar(
        "SELECT coalesce(seq_tup_read, 0) FROM pg_stat_user_tables WHERE relname = 'kit_outbox'",
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// The seq-scan reads since `before`, once the closed connection `pid` has written its
/// statistics (a backend writes them as it exits).
async fn flushed_reads_since(h: &Harness, pid: i32, before: i64) -> anyhow::Result<i64> {
    wait_until(
        "the relay's connection gone",
        Duration::from_secs(10),
        || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
            )
            .bind(pid)
            .fetch_one(h.db.pool())
            .await
            .unwrap_or(false)
        },
    )
    .await?;
    Ok(seq_rows_read(h).await? - before)
}

#[tokio::test]
async fn a_consumer_wakes_its_own_relay_and_its_commits_make_no_notify() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let relay = relay_polling_hourly(&h);
    let consumer = h
        .consumer(std::sync::Arc::new(common::Participant::default()))
        .with_relay(relay.wake_handle());
    let mut listener = sqlx::postgres::PgListener::connect_with(h.db.pool()).await?;
    listener.listen("kit_outbox").await?;
    let shutdown = CancellationToken::new();
    let relaying = tokio::spawn(relay.run(shutdown.clone()));
    let consuming = tokio::spawn(consumer.run(shutdown.clone()));

    let created = saga_kit::Envelope::root(EventId::new_random(), &order_created("SKU-1"));
    h.inject(&created, &created.id.to_string()).await?;
    wait_until(
        "the consumer's StockReserved to be in the stream",
        Duration::from_secs(10),
        || async {
            h.stream_messages("STOCK")
                .await
                .map(|m| m.len() == 1)
                .unwrap_or(false)
        },
    )
    .await?;
    // Its commit made no notification: it woke the relay in the process. Had it notified, the
    // notification would be here already (it comes before the publish it causes).
    let notified = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
    assert!(
        notified.is_err(),
        "the consumer's commit notified: {notified:?}"
    );
    // A writer without a relay to wake (an HTTP request, the CLI) still notifies.
    h.commit_event(&order_created("SKU-2")).await?;
    let notified = tokio::time::timeout(Duration::from_secs(10), listener.recv()).await;
    assert!(
        matches!(notified, Ok(Ok(_))),
        "a root event made no notification: {notified:?}"
    );

    shutdown.cancel();
    relaying.await?;
    consuming.await?;
    Ok(())
}

/// Commits go on from several writers while the relay publishes in small steps: nothing may be
/// lost, doubled, reordered or marked with another event's stream sequence.
#[tokio::test]
async fn a_relay_publishing_while_commits_go_on_marks_each_event_with_its_own_stream_sequence(
) -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let relay = h.relay_with(saga_kit::RelayConfig {
        batch_size: 4,
        ..saga_kit::RelayConfig::default()
    });
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay.run(shutdown.clone()));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let pool = h.db.pool().clone();
            tokio::spawn(async move { commit_orders(&pool, 20, 3).await })
        })
        .collect();
    let mut expected = HashMap::new();
    for writer in writers {
        expected.extend(writer.await??);
    }
    drained(&h, "the outbox to drain", Duration::from_secs(30)).await?;
    shutdown.cancel();
    task.await?;
    assert_exactly_once_in_order(&h, &expected).await?;
    let in_stream: HashMap<String, i64> = h
        .stream_messages_with_seq("ORDERS")
        .await?
        .into_iter()
        .map(|(seq, _, id)| Ok((id, i64::try_from(seq)?)))
        .collect::<anyhow::Result<_>>()?;
    let marked: Vec<(uuid::Uuid, Option<i64>)> =
        sqlx::query_as("SELECT event_id, stream_seq FROM kit_outbox ORDER BY id")
            .fetch_all(h.db.pool())
            .await?;
    assert_eq!(marked.len(), 240);
    for (event_id, seq) in marked {
        assert_eq!(
            seq,
            in_stream.get(&event_id.to_string()).copied(),
            "event {event_id} marked with another sequence than the stream gave it"
        );
    }
    Ok(())
}
