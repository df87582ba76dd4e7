//! Conformance: every event has its effect exactly once, poison never stops a consumer, and
//! shutdown finishes what is in flight.

mod common;

use async_nats::jetstream::AckKind;
use common::{next_message, order_created, spawn_consumer, Harness, Participant, CONSUMER};
use jetsaga_contracts::{EventId, OrderEvent};
use jetsaga_testkit::wait_until;
use saga_kit::envelope::derived_event_id;
use saga_kit::{Disposition, Envelope};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn effect_count(h: &Harness, event: &OrderEvent) -> anyhow::Result<i32> {
    let OrderEvent::OrderCreated(c) = event else {
        anyhow::bail!("not an OrderCreated")
    };
    Ok(h.effects().await?.get(&c.order_id).copied().unwrap_or(0))
}

#[tokio::test]
async fn duplicate_delivery_has_no_second_effect() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let event = order_created("SKU-1");
    let env = h.commit_event(&event).await?;
    h.relay_until_empty(&h.relay()).await?;
    let participant = Arc::new(Participant::default());
    let runner = h.consumer(participant.clone());
    let pull = runner.ensure().await?;

    let first = next_message(&pull).await?;
    assert_eq!(runner.process(&first).await, Disposition::Applied);
    // The broker delivers it again (as after a lost ack).
    first
        .ack_with(AckKind::Nak(None))
        .await
        .map_err(anyhow::Error::msg)?;
    let again = next_message(&pull).await?;
    assert_eq!(again.info().map_err(anyhow::Error::msg)?.delivered, 2);
    assert_eq!(runner.process(&again).await, Disposition::Duplicate);
    runner.settle(&again, &Disposition::Duplicate).await;

    assert_eq!(effect_count(&h, &event).await?, 1);
    assert_eq!(
        participant.committed.load(Ordering::SeqCst),
        1,
        "after-commit hook ran twice"
    );
    // The effect's event was written once, with the id derived from the cause and the handler.
    let emitted: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT event_id FROM kit_outbox WHERE ce_type = 'jetsaga.stock.reserved.v1'",
    )
    .fetch_all(h.db.pool())
    .await?;
    assert_eq!(
        emitted,
        vec![*derived_event_id(env.id, CONSUMER, 0).as_uuid()]
    );
    Ok(())
}

#[tokio::test]
async fn redelivery_after_crash_between_commit_and_ack_has_no_second_effect() -> anyhow::Result<()>
{
    let h = Harness::start().await?;
    let event = order_created("SKU-1");
    h.commit_event(&event).await?;
    h.relay_until_empty(&h.relay()).await?;
    let participant = Arc::new(Participant::default());
    let runner = h.consumer(participant.clone());
    let pull = runner.ensure().await?;
    let first = next_message(&pull).await?;
    // Committed, then the process dies before the ack.
    assert_eq!(runner.process(&first).await, Disposition::Applied);
    drop(first);
    // After ack_wait the server redelivers to the restarted consumer.
    let (shutdown, task) = spawn_consumer(&h, participant.clone());
    wait_until("the redelivery to be seen as a duplicate", WAIT, || async {
        h.metrics
            .counter("jetsaga_events_duplicate_total", &[("consumer", CONSUMER)])
            == 1
    })
    .await?;
    shutdown.cancel();
    task.await?;
    assert_eq!(effect_count(&h, &event).await?, 1);
    assert_eq!(participant.calls.load(Ordering::SeqCst), 1);
    Ok(())
}

/// Publishes two copies of `event` under two Msg-Ids, as the same event long after the stream's
/// dedupe window, and runs the stand-in until one copy is applied and the other is a duplicate.
async fn consume_two_copies(h: &Harness, event: &OrderEvent) -> anyhow::Result<()> {
    let env = Envelope::root(EventId::new_random(), event);
    h.inject(&env, "first-msg-id").await?;
    h.inject(&env, "another-msg-id-days-later").await?;
    assert_eq!(h.stream_messages("ORDERS").await?.len(), 2);
    let (shutdown, task) = spawn_consumer(h, Arc::new(Participant::default()));
    wait_until("both copies to be consumed", WAIT, || async {
        h.metrics
            .counter("jetsaga_events_handled_total", &[("consumer", CONSUMER)])
            == 1
            && h.metrics
                .counter("jetsaga_events_duplicate_total", &[("consumer", CONSUMER)])
                == 1
    })
    .await?;
    shutdown.cancel();
    task.await?;
    Ok(())
}

#[tokio::test]
async fn same_event_under_a_new_msg_id_has_no_second_effect() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let event = order_created("SKU-1");
    // The stream dedupes only within its window and by Msg-Id; a new Msg-Id passes it, as the
    // same event would long after the window. Only the inbox stands in the way.
    consume_two_copies(&h, &event).await?;
    assert_eq!(effect_count(&h, &event).await?, 1);
    Ok(())
}

#[tokio::test]
async fn a_copy_of_an_event_whose_handler_refuses_what_it_applied_is_a_duplicate_not_a_dead_letter(
) -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let event = order_created("ONCE");
    // Both copies are first deliveries: the second runs its handler, which refuses the order it
    // already reserved, before the inbox is asked.
    consume_two_copies(&h, &event).await?;
    assert_eq!(effect_count(&h, &event).await?, 1);
    assert_eq!(h.dead_letters().await?, vec![]);
    let failures: i64 = sqlx::query_scalar("SELECT count(*) FROM kit_delivery_failures")
        .fetch_one(h.db.pool())
        .await?;
    assert_eq!(failures, 0, "the duplicate was counted as a failure");
    Ok(())
}

/// Publishes raw bytes and headers on a subject, as a broken or hostile producer could.
async fn inject_raw(
    h: &Harness,
    subject: &str,
    headers: Option<async_nats::HeaderMap>,
    payload: &'static [u8],
) -> anyhow::Result<()> {
    let mut publish = async_nats::jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .message_id(uuid::Uuid::new_v4().to_string());
    if let Some(h) = headers {
        publish = publish.headers(h);
    }
    h.js.send_publish(subject.to_owned(), publish)
        .await?
        .await?;
    Ok(())
}

fn headers_of(env: &Envelope, ce_type: &str) -> async_nats::HeaderMap {
    let mut h = saga_kit::envelope::header_map(&env.headers_json());
    h.insert("ce-type", ce_type);
    h
}

#[tokio::test]
async fn poison_messages_are_dead_lettered_with_their_reason_and_the_consumer_carries_on(
) -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let template = Envelope::root(EventId::new_random(), &order_created("SKU-1"));
    let subject = template.subject.clone();
    // Undecodable payload, under a known type.
    inject_raw(
        &h,
        &subject,
        Some(headers_of(&template, "jetsaga.orders.created.v1")),
        b"{not json",
    )
    .await?;
    // No envelope at all.
    inject_raw(&h, &subject, None, b"hello").await?;
    // A type nobody knows.
    let fresh = Envelope::root(EventId::new_random(), &order_created("SKU-1"));
    inject_raw(
        &h,
        &subject,
        Some(headers_of(&fresh, "jetsaga.orders.exploded.v1")),
        b"{}",
    )
    .await?;
    // A payment event forged on an order subject.
    let forged = Envelope::root(EventId::new_random(), &order_created("SKU-1"));
    inject_raw(
        &h,
        &subject,
        Some(headers_of(&forged, "jetsaga.payments.succeeded.v1")),
        b"{}",
    )
    .await?;
    // Refused by the handler, and failing on every delivery.
    h.commit_event(&order_created("POISON")).await?;
    h.commit_event(&order_created("FLAKY")).await?;
    // And then an ordinary order, which must still be served.
    let good = order_created("SKU-2");
    h.commit_event(&good).await?;
    h.relay_until_empty(&h.relay()).await?;

    let (shutdown, task) = spawn_consumer(&h, Arc::new(Participant::default()));
    wait_until(
        "six dead letters and the good order applied",
        WAIT,
        || async {
            h.dead_letters()
                .await
                .map(|d| d.len() == 6)
                .unwrap_or(false)
                && effect_count(&h, &good).await.unwrap_or(0) == 1
        },
    )
    .await?;
    shutdown.cancel();
    task.await?;

    let mut kinds: Vec<String> = h
        .dead_letters()
        .await?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "max_deliveries",
            "rejected",
            "undecodable",
            "undecodable",
            "unknown_type",
            "wrong_producer"
        ]
    );
    for (kind, reason) in h.dead_letters().await? {
        assert!(!reason.is_empty(), "{kind} has no reason");
    }
    let (payload, seq): (Vec<u8>, i64) = sqlx::query_as(
        "SELECT payload, stream_seq FROM kit_dead_letters WHERE kind = 'undecodable' ORDER BY stream_seq LIMIT 1",
    )
    .fetch_one(h.db.pool())
    .await?;
    assert_eq!(payload, b"{not json");
    assert_eq!(seq, 1, "the raw message keeps its stream sequence");
    // Each dead letter is copied to the DLQ stream by the relay.
    h.relay_until_empty(&h.relay()).await?;
    assert_eq!(h.stream_messages("DLQ").await?.len(), 6);
    Ok(())
}

#[tokio::test]
async fn message_whose_every_delivery_dies_is_dead_lettered_by_the_runners_own_count(
) -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let slow = order_created("SLOW");
    h.commit_event(&slow).await?;
    h.relay_until_empty(&h.relay()).await?;
    let runner = h.consumer(Arc::new(Participant::default()));
    let pull = runner.ensure().await?;
    // The server never gives up on a message: the runner decides.
    let mut pull_info = pull.clone();
    assert_eq!(pull_info.info().await?.config.max_deliver, -1);
    // Deliveries 1 to 4 each die in the middle of the handler (the process is killed).
    for attempt in 1..=4 {
        let msg = next_message(&pull).await?;
        assert_eq!(msg.info().map_err(anyhow::Error::msg)?.delivered, attempt);
        let r = runner.clone();
        let dying = tokio::spawn(async move { r.process(&msg).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        dying.abort();
        let _ = dying.await;
    }
    // The fifth is over the budget of 3 counted deliveries: dead-lettered without the handler.
    let fifth = next_message(&pull).await?;
    assert_eq!(
        runner.process(&fifth).await,
        Disposition::DeadLettered(saga_kit::dead_letter::DeadLetterKind::MaxDeliveries)
    );
    let letters = h.dead_letters().await?;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0].1.contains("no delivery finished"), "{letters:?}");
    assert_eq!(effect_count(&h, &slow).await?, 0);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM kit_delivery_failures")
        .fetch_one(h.db.pool())
        .await?;
    assert_eq!(left, 0, "the failure count outlived its dead letter");
    Ok(())
}

#[tokio::test]
async fn a_panicking_handler_is_dead_lettered_after_its_budget_and_the_consumer_carries_on(
) -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.commit_event(&order_created("PANIC")).await?;
    let good = order_created("SKU-1");
    h.commit_event(&good).await?;
    h.relay_until_empty(&h.relay()).await?;
    let (shutdown, task) = spawn_consumer(&h, Arc::new(Participant::default()));
    wait_until(
        "the panic dead-lettered and the good order applied",
        WAIT,
        || async {
            h.dead_letters()
                .await
                .map(|d| d.len() == 1)
                .unwrap_or(false)
                && effect_count(&h, &good).await.unwrap_or(0) == 1
        },
    )
    .await?;
    shutdown.cancel();
    task.await?;
    let letters = h.dead_letters().await?;
    assert_eq!(letters[0].0, "max_deliveries");
    assert!(letters[0].1.contains("panicked"), "{letters:?}");
    Ok(())
}

#[tokio::test]
async fn shutdown_finishes_the_message_in_flight() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let slow = order_created("SLOW");
    h.commit_event(&slow).await?;
    h.relay_until_empty(&h.relay()).await?;
    let participant = Arc::new(Participant::default());
    let (shutdown, task) = spawn_consumer(&h, participant.clone());
    wait_until("the slow message to be in the handler", WAIT, || async {
        participant.calls.load(Ordering::SeqCst) == 1
    })
    .await?;
    shutdown.cancel();
    task.await?;
    assert_eq!(
        effect_count(&h, &slow).await?,
        1,
        "in-flight work was abandoned"
    );
    let mut pull = h.consumer(participant).ensure().await?;
    let info = pull.info().await?;
    assert_eq!(info.num_ack_pending, 0, "in-flight message was not acked");
    assert_eq!(info.num_pending, 0);
    Ok(())
}

#[tokio::test]
async fn events_of_a_transaction_that_fails_to_commit_are_never_published() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.commit_event(&order_created("FAIL_AT_COMMIT")).await?;
    h.relay_until_empty(&h.relay()).await?;
    let participant = Arc::new(Participant::default());
    let runner = h.consumer(participant.clone());
    let pull = runner.ensure().await?;
    let msg = next_message(&pull).await?;
    // The handler returned its StockReserved; the commit then failed.
    assert!(matches!(runner.process(&msg).await, Disposition::Retry(_)));
    runner
        .settle(&msg, &Disposition::Retry(Duration::from_secs(60)))
        .await;
    h.relay_until_empty(&h.relay()).await?;
    assert!(
        h.stream_messages("STOCK").await?.is_empty(),
        "an uncommitted effect was announced"
    );
    assert!(h.effects().await?.is_empty());
    assert_eq!(
        participant.committed.load(Ordering::SeqCst),
        0,
        "after-commit hook ran without a commit"
    );
    Ok(())
}
