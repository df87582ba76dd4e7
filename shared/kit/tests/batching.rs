//! Messages that wait while a consumer's transactions are busy are handled together, in one
//! transaction, and a message that fails in such a batch costs the others nothing.

mod common;

use common::{order_created, Harness, Participant, CONSUMER};
use jetsaga_contracts::{EventId, OrderEvent};
use jetsaga_testkit::wait_until;
use saga_kit::metrics::labels::ConsumerLabel;
use saga_kit::{Consumer, Envelope};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A runner with one transaction at a time, so that what arrives while it is busy piles up.
fn one_slot(h: &Harness, participant: Arc<Participant>, batch: usize) -> Consumer<Participant> {
    h.consumer_with(participant, |config| {
        config.concurrency = 1;
        config.batch = batch;
    })
}

/// A runner whose only slot is kept busy by the first of `events` until the others have all
/// reached it, so that they wait together however slowly they arrive on a busy machine. The first
/// order waits for its row, which the test holds (the gate) until then.
async fn behind_a_gate(
    h: &Harness,
    runner: Consumer<Participant>,
    events: &[OrderEvent],
) -> anyhow::Result<Running> {
    let gate = hold_row(h, order_of(&events[0])).await?;
    runner.ensure().await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(runner.run(shutdown.clone()));
    published(h, &events[..1]).await?;
    delivered(h, 1, "the first order taken").await?;
    published(h, &events[1..]).await?;
    delivered(h, events.len(), "every order delivered to the runner").await?;
    gate.rollback().await?;
    Ok(Running { task, shutdown })
}

/// A runner started by [`behind_a_gate`].
struct Running {
    task: tokio::task::JoinHandle<()>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Running {
    /// Waits until `what` holds, then shuts the runner down.
    async fn until<F, Fut>(self, what: &str, done: F) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let waited = wait_until(what, WAIT, done).await;
        self.stop().await?;
        waited
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?;
        Ok(())
    }
}

/// The order an `OrderCreated` is about.
fn order_of(event: &OrderEvent) -> uuid::Uuid {
    match event {
        OrderEvent::OrderCreated(c) => *c.order_id.as_uuid(),
        _ => unreachable!("order_created makes an OrderCreated"),
    }
}

/// Commits `events` to the outbox and relays them into the stream.
async fn published(h: &Harness, events: &[OrderEvent]) -> anyhow::Result<()> {
    for event in events {
        h.commit_event(event).await?;
    }
    h.relay_until_empty(&h.relay()).await?;
    Ok(())
}

/// Runs `runner` until `what` holds, then shuts it down.
async fn run_until<F, Fut>(runner: Consumer<Participant>, what: &str, done: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(runner.run(shutdown.clone()));
    let waited = wait_until(what, WAIT, done).await;
    shutdown.cancel();
    task.await?;
    waited
}

/// Whether exactly `want` orders had their effect, each once.
async fn applied(h: &Harness, want: usize) -> bool {
    h.effects()
        .await
        .map(|e| e.values().filter(|n| **n == 1).count() == want && e.values().all(|n| *n <= 1))
        .unwrap_or(false)
}

fn counted(h: &Harness, family: &str) -> u64 {
    let kit = h.metrics.kit();
    let family = match family {
        "batches" => &kit.batches,
        _ => &kit.batches_abandoned,
    };
    family
        .get_or_create(&ConsumerLabel { consumer: CONSUMER })
        .get()
}

/// The transactions that wrote the inbox rows: rows written by one transaction share its xmin.
async fn inbox_transactions(h: &Harness) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM kit_inbox")
            .fetch_one(h.db.pool())
            .await?,
    )
}

#[tokio::test]
async fn messages_that_wait_for_a_busy_consumer_commit_together_each_once() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let events: Vec<OrderEvent> = (0..12).map(|_| order_created("SKU-1")).collect();
    let participant = Arc::new(Participant::default());
    let running = behind_a_gate(&h, one_slot(&h, participant.clone(), 16), &events).await?;
    running
        .until("every order applied once", || applied(&h, 12))
        .await?;

    assert_eq!(participant.committed.load(Ordering::SeqCst), 12);
    let transactions = inbox_transactions(&h).await?;
    assert!(
        transactions < 12,
        "12 messages that waited together took {transactions} transactions"
    );
    assert!(counted(&h, "batches") >= 1);
    // Every event each applied message emitted is in the outbox, and nothing else.
    let emitted = stock_events_in_the_outbox(&h).await?;
    assert_eq!(emitted, 12);
    Ok(())
}

#[tokio::test]
async fn a_message_that_fails_in_a_batch_costs_the_others_nothing() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let events: Vec<OrderEvent> = (0..5)
        .map(|_| order_created("SKU-1"))
        .chain([order_created("POISON")])
        .chain((0..4).map(|_| order_created("SKU-2")))
        .collect();
    let participant = Arc::new(Participant::default());
    let running = behind_a_gate(&h, one_slot(&h, participant.clone(), 16), &events).await?;
    running
        .until(
            "the good orders applied and the poison dead-lettered",
            || async {
                applied(&h, 9).await && h.dead_letters().await.map(|d| d.len()).unwrap_or(0) == 1
            },
        )
        .await?;

    let dead = h.dead_letters().await?;
    assert_eq!(dead[0].0, "rejected", "{dead:?}");
    assert!(dead[0].1.contains("POISON"), "{dead:?}");
    // The batch that held the poison was rolled back and its messages went one at a time.
    assert!(counted(&h, "batches_abandoned") >= 1);
    assert_eq!(participant.committed.load(Ordering::SeqCst), 9);
    Ok(())
}

#[tokio::test]
async fn with_a_batch_of_one_every_message_has_its_own_transaction() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    // With a batch of 1 the runner pulls two messages at a time, so they cannot all wait at a
    // gate; a slow first order keeps its slot busy while the others arrive.
    let events: Vec<OrderEvent> = std::iter::once(order_created("SLOW"))
        .chain((0..5).map(|_| order_created("SKU-1")))
        .collect();
    published(&h, &events).await?;
    let runner = one_slot(&h, Arc::new(Participant::default()), 1);
    run_until(runner, "every order applied once", || applied(&h, 6)).await?;
    assert_eq!(inbox_transactions(&h).await?, 6);
    assert_eq!(counted(&h, "batches"), 0);
    Ok(())
}

#[tokio::test]
async fn a_batch_that_waits_for_a_held_row_gives_up_and_the_others_are_applied_meanwhile(
) -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let events: Vec<OrderEvent> = (0..6).map(|_| order_created("SKU-1")).collect();
    // Someone else holds the row the third of the waiting orders will update.
    let holder = hold_row(&h, order_of(&events[3])).await?;
    let runner = one_slot(&h, Arc::new(Participant::default()), 16);
    let running = behind_a_gate(&h, runner, &events).await?;
    // The harness's connections have no lock timeout: only the batch's own short wait lets the
    // others through while the row is held.
    let others = wait_until("the five orders that are not held applied", WAIT, || {
        applied(&h, 5)
    })
    .await;
    let abandoned = counted(&h, "batches_abandoned");
    holder.rollback().await?;
    let held_too = wait_until("the held order applied once the row is free", WAIT, || {
        applied(&h, 6)
    })
    .await;
    running.stop().await?;
    others?;
    held_too?;
    assert!(abandoned >= 1);
    Ok(())
}

/// How many events the stand-in emitted are in the outbox.
async fn stock_events_in_the_outbox(h: &Harness) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM kit_outbox WHERE subject LIKE 'stock.%'")
            .fetch_one(h.db.pool())
            .await?,
    )
}

/// Waits until the runner holds `unacked` messages and none waits on the server.
async fn delivered(h: &Harness, unacked: usize, what: &str) -> anyhow::Result<()> {
    wait_until(what, WAIT, || async {
        let Ok(stream) = h.js.get_stream("ORDERS").await else {
            return false;
        };
        stream
            .consumer_info(CONSUMER)
            .await
            .map(|i| i.num_pending == 0 && i.num_ack_pending == unacked)
            .unwrap_or(false)
    })
    .await
}

/// Writes the stand-in's row of an order (not yet applied) and holds it in a transaction of the
/// test's, until that is rolled back.
async fn hold_row(
    h: &Harness,
    order_id: uuid::Uuid,
) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    sqlx::query("INSERT INTO test_effects (order_id, sku, n) VALUES ($1, 'SKU-1', 0)")
        .bind(order_id)
        .execute(h.db.pool())
        .await?;
    let mut holder = h.db.pool().begin().await?;
    sqlx::query("SELECT n FROM test_effects WHERE order_id = $1 FOR UPDATE")
        .bind(order_id)
        .execute(&mut *holder)
        .await?;
    Ok(holder)
}

#[tokio::test]
async fn a_copy_of_an_event_in_the_same_batch_has_no_second_effect() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.commit_event(&order_created("SLOW")).await?;
    let copied = order_created("SKU-1");
    let env = Envelope::root(EventId::new_random(), &copied);
    h.relay_until_empty(&h.relay()).await?;
    // Two copies of one event under two msg ids, and another order, wait behind the slow one.
    h.inject(&env, "first-msg-id").await?;
    h.inject(&env, "second-msg-id").await?;
    published(&h, &[order_created("SKU-2")]).await?;
    let participant = Arc::new(Participant::default());
    let runner = one_slot(&h, participant.clone(), 16);
    run_until(runner, "the three orders applied once each", || async {
        applied(&h, 3).await
            && h.metrics
                .counter("jetsaga_events_duplicate_total", &[("consumer", CONSUMER)])
                == 1
    })
    .await?;

    assert_eq!(h.effects().await?.len(), 3);
    assert_eq!(participant.committed.load(Ordering::SeqCst), 3);
    let emitted = stock_events_in_the_outbox(&h).await?;
    assert_eq!(emitted, 3);
    Ok(())
}
