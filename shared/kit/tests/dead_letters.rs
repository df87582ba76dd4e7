//! Dead letters can be requeued (under a new Msg-Id, with an audit row) and discarded; a requeued
//! message that fails again comes back as a new dead letter instead of looping.

mod common;

use common::{order_created, spawn_consumer, Harness, Participant};
use jetsaga_testkit::wait_until;
use saga_kit::dead_letter::{self, DeadLetterError, Filter};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A poison order published and dead-lettered by the stand-in consumer, which keeps running.
async fn poison_dead_lettered(h: &Harness) -> anyhow::Result<(CancellationToken, JoinHandle<()>)> {
    h.commit_event(&order_created("POISON")).await?;
    h.relay_until_empty(&h.relay()).await?;
    let running = spawn_consumer(h, Arc::new(Participant::default()));
    wait_until("the first dead letter", Duration::from_secs(20), || async {
        h.dead_letters()
            .await
            .map(|d| d.len() == 1)
            .unwrap_or(false)
    })
    .await?;
    Ok(running)
}

#[tokio::test]
async fn requeued_dead_letter_that_fails_again_comes_back_once() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (shutdown, task) = poison_dead_lettered(&h).await?;
    let first = dead_letter::list(h.db.pool(), &Filter::default()).await?;
    let id = first[0].id;
    let msg_id = dead_letter::requeue(
        h.db.pool(),
        &h.js,
        "voucher",
        id,
        dead_letter::Decided::by("alice"),
    )
    .await?;
    assert!(msg_id.starts_with(&format!("requeue-{id}-")));
    wait_until(
        "the requeued copy to fail again",
        Duration::from_secs(20),
        || async {
            h.dead_letters()
                .await
                .map(|d| d.len() == 2)
                .unwrap_or(false)
        },
    )
    .await?;
    // It does not loop: after a while there are still exactly two.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.dead_letters().await?.len(), 2);
    shutdown.cancel();
    task.await?;

    let requeued = dead_letter::get(h.db.pool(), id).await?.expect("exists");
    assert_eq!(requeued.status, "requeued");
    let audit: (String, String, Option<String>) = sqlx::query_as(
        "SELECT action, actor, new_msg_id FROM kit_dead_letter_audit WHERE dead_letter_id = $1",
    )
    .bind(id)
    .fetch_one(h.db.pool())
    .await?;
    assert_eq!(audit, ("requeued".into(), "alice".into(), Some(msg_id)));
    // A requeued letter cannot be requeued twice.
    assert!(matches!(
        dead_letter::requeue(
            h.db.pool(),
            &h.js,
            "voucher",
            id,
            dead_letter::Decided::by("bob")
        )
        .await,
        Err(DeadLetterError::NotOpen { .. })
    ));
    let open = dead_letter::list(
        h.db.pool(),
        &Filter {
            status: Some("open".into()),
            limit: 10,
        },
    )
    .await?;
    assert_eq!(open.len(), 1);
    dead_letter::discard(
        h.db.pool(),
        "voucher",
        open[0].id,
        dead_letter::Decided::by("bob"),
    )
    .await?;
    assert!(matches!(
        dead_letter::discard(
            h.db.pool(),
            "voucher",
            999_999,
            dead_letter::Decided::by("bob")
        )
        .await,
        Err(DeadLetterError::NotFound(999_999))
    ));
    Ok(())
}

#[tokio::test]
async fn a_dead_letter_older_than_its_stream_keeps_events_is_not_requeued() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (shutdown, task) = poison_dead_lettered(&h).await?;
    shutdown.cancel();
    task.await?;
    let id = dead_letter::list(h.db.pool(), &Filter::default()).await?[0].id;
    // Its message was written 40 days ago; it failed (again, after a requeue) only yesterday. The
    // consumers that applied it may have trimmed their inbox rows of it after 31 days.
    sqlx::query(
        "UPDATE kit_dead_letters SET failed_at = now() - interval '1 day',
             headers = jsonb_set(headers, '{ce-time}',
                 to_jsonb(to_char((now() - interval '40 days') AT TIME ZONE 'UTC',
                                  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')))
         WHERE id = $1",
    )
    .bind(id)
    .execute(h.db.pool())
    .await?;
    let before = h.stream_messages("ORDERS").await?.len();

    let refused = dead_letter::requeue(
        h.db.pool(),
        &h.js,
        "voucher",
        id,
        dead_letter::Decided::by("alice"),
    )
    .await;
    let Err(e @ DeadLetterError::TooOld { .. }) = refused else {
        panic!("an old dead letter was requeued: {refused:?}");
    };
    let said = e.to_string();
    assert!(
        said.contains(&format!("dead letter {id}"))
            && said.contains("40 days ago")
            && said.contains("ORDERS keeps events for 30 days"),
        "{said}"
    );
    assert_eq!(
        h.stream_messages("ORDERS").await?.len(),
        before,
        "nothing published"
    );
    let kept = dead_letter::get(h.db.pool(), id).await?.expect("exists");
    assert_eq!(kept.status, "open", "it stays for the operator to discard");
    Ok(())
}
