//! The stream audit against a real nats-server and PostgreSQL: events the stream acknowledged and
//! then lost are found from the outbox and published again under their own ids, and nothing else.
//!
//! A loss is made the way it happens: the relay publishes and NATS acknowledges, then messages are
//! deleted from the stream and the server restarts (so its dedupe memory no longer holds them
//! either, as after a node lost its last writes).

mod common;

use common::{order_created, spawn_consumer, Harness, Participant};
use jetsaga_testkit::wait_until;
use saga_kit::provision::StreamSettings;
use saga_kit::stream_audit::{self, AuditConfig, StreamReport, StreamScope};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The harness's outbox: the stand-in's own ORDERS events, what its handler emits on STOCK, and
/// its dead-letter copies on DLQ.
fn scopes() -> Vec<StreamScope> {
    vec![
        StreamScope::new("ORDERS", "orders"),
        StreamScope::new("STOCK", "stock"),
        StreamScope::dead_letters("kit-test"),
    ]
}

/// The default audit, reading 4 messages per fetch, so that a stream takes several fetches.
fn config(republish: bool) -> AuditConfig {
    AuditConfig {
        republish,
        batch: 4,
        ..AuditConfig::default()
    }
}

async fn run(h: &Harness, config: &AuditConfig) -> anyhow::Result<Vec<StreamReport>> {
    Ok(stream_audit::audit(h.db.pool(), &h.js, &scopes(), config).await?)
}

fn report<'a>(reports: &'a [StreamReport], stream: &str) -> &'a StreamReport {
    reports
        .iter()
        .find(|r| r.stream == stream)
        .expect("a report per scope")
}

/// The published rows of the outbox in outbox order: (event id, stream sequence).
async fn published(h: &Harness, prefix: &str) -> anyhow::Result<Vec<(Uuid, i64)>> {
    Ok(sqlx::query_as(
        "SELECT event_id, stream_seq FROM kit_outbox
         WHERE published_at IS NOT NULL AND starts_with(subject, $1) ORDER BY id",
    )
    .bind(prefix)
    .fetch_all(h.db.pool())
    .await?)
}

/// Deletes messages the stream acknowledged, then restarts the server.
async fn lose(h: &mut Harness, stream: &str, seqs: &[i64]) -> anyhow::Result<()> {
    let s = h.js.get_stream(stream).await?;
    for seq in seqs {
        anyhow::ensure!(
            s.delete_message(u64::try_from(*seq)?).await?,
            "seq {seq} not deleted"
        );
    }
    h.nats.restart().await?;
    Ok(())
}

/// Every message of a stream: (seq, subject, Nats-Msg-Id, ce-id, payload).
async fn messages(
    h: &Harness,
    stream: &str,
) -> anyhow::Result<Vec<(u64, String, String, String, Vec<u8>)>> {
    let mut s = h.js.get_stream(stream).await?;
    let state = s.info().await?.state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return Ok(out);
    }
    for seq in state.first_sequence..=state.last_sequence {
        let Ok(m) = s.get_raw_message(seq).await else {
            continue;
        };
        let header = |name: &str| {
            m.headers
                .get(name)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        out.push((
            seq,
            m.subject.to_string(),
            header("Nats-Msg-Id"),
            header("ce-id"),
            m.payload.to_vec(),
        ));
    }
    Ok(out)
}

#[tokio::test]
async fn stream_audit_republishes_exactly_the_events_the_stream_lost() -> anyhow::Result<()> {
    // Given 30 events the stream acknowledged, of which it then lost the first, one in the
    // middle and the last
    let mut h = Harness::start().await?;
    for _ in 0..30 {
        h.commit_event(&order_created("SKU-1")).await?;
    }
    assert_eq!(h.relay_until_empty(&h.relay()).await?, 30);
    let rows = published(&h, "orders.").await?;
    let lost: Vec<(Uuid, i64)> = [0, 13, 29].iter().map(|&i| rows[i]).collect();
    let lost_seqs: Vec<i64> = lost.iter().map(|(_, seq)| *seq).collect();
    lose(&mut h, "ORDERS", &lost_seqs).await?;
    let lost_ids: Vec<Uuid> = lost.iter().map(|(id, _)| *id).collect();

    // When the audit runs dry, it finds them and publishes nothing
    let dry = run(&h, &config(false)).await?;
    let orders = report(&dry, "ORDERS");
    assert_eq!(
        (
            orders.checked,
            orders.found,
            orders.missing,
            orders.republished
        ),
        (30, 27, 3, 0)
    );
    assert_eq!(orders.missing_ids, lost_ids);
    assert_eq!(messages(&h, "ORDERS").await?.len(), 27);

    // When it runs for real, exactly those three are published again, in outbox order
    let fixed = run(&h, &config(true)).await?;
    let orders = report(&fixed, "ORDERS");
    assert_eq!(
        (orders.missing, orders.republished, orders.deduped),
        (3, 3, 0)
    );
    assert_eq!(orders.republished_ids, lost_ids);
    for other in ["STOCK", "DLQ"] {
        assert_eq!(report(&fixed, other).missing, 0, "{other}");
    }

    // Then the stream holds them again under their own Msg-Id and ce-id, byte for byte
    let after = messages(&h, "ORDERS").await?;
    assert_eq!(after.len(), 30);
    let again: Vec<_> = after.iter().filter(|m| m.0 > 30).collect();
    assert_eq!(again.len(), 3);
    for ((_, subject, msg_id, ce_id, payload), id) in again.iter().zip(&lost_ids) {
        let (stored_subject, stored_payload): (String, Vec<u8>) =
            sqlx::query_as("SELECT subject, payload FROM kit_outbox WHERE event_id = $1")
                .bind(id)
                .fetch_one(h.db.pool())
                .await?;
        assert_eq!(msg_id, &id.to_string());
        assert_eq!(ce_id, &id.to_string());
        assert_eq!(subject, &stored_subject);
        assert_eq!(payload, &stored_payload);
    }

    // And a second run finds nothing missing
    let second = run(&h, &config(true)).await?;
    for r in &second {
        assert_eq!((r.missing, r.republished), (0, 0), "{}", r.stream);
    }
    assert_eq!(report(&second, "ORDERS").found, 30);
    Ok(())
}

#[tokio::test]
async fn stream_audit_republishes_a_lost_dead_letter_copy_to_the_dlq_stream() -> anyhow::Result<()>
{
    // Given a poison message whose dead-letter copy the DLQ stream acknowledged and then lost
    let mut h = Harness::start().await?;
    h.commit_event(&order_created("POISON")).await?;
    h.commit_event(&order_created("SKU-1")).await?;
    h.relay_until_empty(&h.relay()).await?;
    let (shutdown, task) = spawn_consumer(&h, Arc::new(Participant::default()));
    wait_until(
        "the dead letter and the effect",
        Duration::from_secs(20),
        || async {
            let dead = h.dead_letters().await.map(|d| d.len()).unwrap_or(0);
            let effects = h.effects().await.map(|e| e.len()).unwrap_or(0);
            dead == 1 && effects == 1
        },
    )
    .await?;
    shutdown.cancel();
    task.await?;
    h.relay_until_empty(&h.relay()).await?;
    let copies = published(&h, "dlq.").await?;
    assert_eq!(copies.len(), 1);
    lose(&mut h, "DLQ", &[copies[0].1]).await?;

    // When the audit runs
    let reports = run(&h, &config(true)).await?;

    // Then the copy is published again to DLQ, and the other streams were whole
    let dlq = report(&reports, "DLQ");
    assert_eq!(dlq.subjects, "dlq.kit-test.>");
    assert_eq!((dlq.checked, dlq.missing, dlq.republished), (1, 1, 1));
    assert_eq!(dlq.republished_ids, [copies[0].0]);
    assert_eq!(
        (
            report(&reports, "ORDERS").checked,
            report(&reports, "ORDERS").missing
        ),
        (2, 0)
    );
    assert_eq!(
        (
            report(&reports, "STOCK").checked,
            report(&reports, "STOCK").missing
        ),
        (1, 0)
    );
    let dlq_messages = messages(&h, "DLQ").await?;
    assert_eq!(dlq_messages.len(), 1);
    assert_eq!(dlq_messages[0].2, copies[0].0.to_string());
    Ok(())
}

#[tokio::test]
async fn stream_audit_reports_a_republish_the_stream_dedupes_as_still_missing() -> anyhow::Result<()>
{
    // Given an event deleted from the stream while the stream still remembers its Msg-Id (its
    // dedupe window has not passed and the server did not restart)
    let mut h = Harness::start().await?;
    h.commit_event(&order_created("SKU-1")).await?;
    h.relay_until_empty(&h.relay()).await?;
    let rows = published(&h, "orders.").await?;
    h.js.get_stream("ORDERS")
        .await?
        .delete_message(u64::try_from(rows[0].1)?)
        .await?;

    // When the audit runs, the stream drops the republish as a duplicate: it is still missing
    let reports = run(&h, &config(true)).await?;
    let orders = report(&reports, "ORDERS");
    assert_eq!(
        (orders.missing, orders.republished, orders.deduped),
        (1, 0, 1)
    );
    assert_eq!(orders.deduped_ids, [rows[0].0]);
    assert_eq!(orders.unresolved(), 1);
    assert!(messages(&h, "ORDERS").await?.is_empty());

    // Then, once the stream has forgotten the Msg-Id, a run republishes it
    h.nats.restart().await?;
    let reports = run(&h, &config(true)).await?;
    let orders = report(&reports, "ORDERS");
    assert_eq!(
        (orders.missing, orders.republished, orders.unresolved()),
        (1, 1, 0)
    );
    assert_eq!(messages(&h, "ORDERS").await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn stream_audit_checks_only_rows_published_within_its_window() -> anyhow::Result<()> {
    // Given two lost events, one published two days ago by the outbox's clock
    let mut h = Harness::start().await?;
    for _ in 0..2 {
        h.commit_event(&order_created("SKU-1")).await?;
    }
    h.relay_until_empty(&h.relay()).await?;
    let rows = published(&h, "orders.").await?;
    sqlx::query(
        "UPDATE kit_outbox SET published_at = now() - interval '2 days' WHERE event_id = $1",
    )
    .bind(rows[0].0)
    .execute(h.db.pool())
    .await?;
    lose(&mut h, "ORDERS", &[rows[0].1, rows[1].1]).await?;

    // When a one-day audit runs
    let reports = run(&h, &config(false)).await?;

    // Then only the recent one is checked, and found missing
    let orders = report(&reports, "ORDERS");
    assert_eq!((orders.checked, orders.missing), (1, 1));
    assert_eq!(orders.missing_ids, [rows[1].0]);
    Ok(())
}

#[tokio::test]
async fn stream_audit_finds_events_stored_before_the_window_that_rows_call_recent(
) -> anyhow::Result<()> {
    // Given events the stream stored before the window, whose rows say they were published
    // just now (as a replay records events it read back from a stream), one of them with no
    // stream sequence known (as when a replay marks rows already in the stream)
    let h = Harness::start().await?;
    for _ in 0..3 {
        h.commit_event(&order_created("SKU-1")).await?;
    }
    h.relay_until_empty(&h.relay()).await?;
    let config = AuditConfig {
        window: Duration::from_millis(300),
        margin: Duration::ZERO,
        ..config(true)
    };
    wait_until(
        "the events to be older than the window",
        Duration::from_secs(10),
        || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT max(published_at) < now() - interval '600 milliseconds' FROM kit_outbox",
            )
            .fetch_one(h.db.pool())
            .await
            .unwrap_or(false)
        },
    )
    .await?;
    let rows = published(&h, "orders.").await?;
    sqlx::query("UPDATE kit_outbox SET published_at = now()")
        .execute(h.db.pool())
        .await?;
    sqlx::query("UPDATE kit_outbox SET stream_seq = NULL WHERE event_id = $1")
        .bind(rows[1].0)
        .execute(h.db.pool())
        .await?;

    // When the audit runs
    let reports = stream_audit::audit(h.db.pool(), &h.js, &scopes(), &config).await?;

    // Then it reads nothing in the window, looks them up, and finds every one
    let orders = report(&reports, "ORDERS");
    assert_eq!(orders.read, 0);
    assert_eq!((orders.checked, orders.found, orders.missing), (3, 3, 0));
    let ids: HashSet<String> = messages(&h, "ORDERS")
        .await?
        .into_iter()
        .map(|m| m.2)
        .collect();
    assert_eq!(ids.len(), 3);
    Ok(())
}

#[tokio::test]
async fn stream_audit_does_not_republish_events_the_stream_expired_by_its_retention(
) -> anyhow::Result<()> {
    // Given streams that keep events for one second, and an event they have since expired
    let h = Harness::start_with(StreamSettings {
        max_age: Duration::from_secs(1),
        duplicate_window: Duration::from_secs(1),
        ..StreamSettings::default()
    })
    .await?;
    h.commit_event(&order_created("SKU-1")).await?;
    h.relay_until_empty(&h.relay()).await?;
    wait_until("the event to expire", Duration::from_secs(30), || async {
        messages(&h, "ORDERS")
            .await
            .map(|m| m.is_empty())
            .unwrap_or(false)
    })
    .await?;

    // When a one-day audit runs
    let reports = stream_audit::audit(
        h.db.pool(),
        &h.js,
        &scopes(),
        &AuditConfig {
            margin: Duration::ZERO,
            ..config(true)
        },
    )
    .await?;

    // Then its window is cut to what the stream keeps, and the expired event is not judged
    let orders = report(&reports, "ORDERS");
    assert!(orders.retention_capped);
    assert_eq!(
        (orders.checked, orders.missing, orders.republished),
        (0, 0, 0)
    );
    assert!(messages(&h, "ORDERS").await?.is_empty());
    Ok(())
}
