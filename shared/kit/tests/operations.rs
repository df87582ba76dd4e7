//! Ordinary operations must not lose, dead-letter or stall messages: a database outage across every
//! delivery, junk of any size or bytes, an event too big to publish, a missing DLQ stream, a
//! graceful shutdown, a deleted durable, a held row lock.

mod common;

use common::{order_created, spawn_consumer, Harness, Participant, CONSUMER};
use jetsaga_contracts::{EventId, OrderEvent};
use jetsaga_testkit::wait_until;
use saga_kit::health::ConsumerState;
use saga_kit::provision::{self, StreamSettings, DLQ_STREAM};
use saga_kit::{Consumer, Envelope};
use std::str::FromStr as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

async fn effect_count(h: &Harness, event: &OrderEvent) -> anyhow::Result<i32> {
    let OrderEvent::OrderCreated(c) = event else {
        anyhow::bail!("not an OrderCreated")
    };
    Ok(h.effects().await?.get(&c.order_id).copied().unwrap_or(0))
}

/// Whether each of `events` has had its effect exactly once.
async fn each_applied_once(h: &Harness, events: &[OrderEvent]) -> bool {
    for e in events {
        if effect_count(h, e).await.unwrap_or(0) != 1 {
            return false;
        }
    }
    true
}

async fn count(h: &Harness, sql: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(h.db.pool()).await?)
}

/// Bytes no decoder accepts, NULs included.
fn junk(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

async fn publish_junk(
    h: &Harness,
    subject: &str,
    headers: Option<async_nats::HeaderMap>,
    payload: Vec<u8>,
) -> anyhow::Result<()> {
    let mut publish = async_nats::jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .message_id(uuid::Uuid::new_v4().to_string());
    if let Some(headers) = headers {
        publish = publish.headers(headers);
    }
    h.js.send_publish(subject.to_owned(), publish)
        .await?
        .await?;
    Ok(())
}

#[tokio::test]
async fn database_outage_across_every_delivery_dead_letters_nothing_and_applies_each_event_once(
) -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let events: Vec<OrderEvent> = (0..5).map(|i| order_created(&format!("SKU-{i}"))).collect();
    h.db.refuse_connections().await?;
    // Published while the consumer's database refuses every connection, for longer than the
    // three deliveries of its budget (ack wait 2 s) take.
    for event in &events {
        let env = Envelope::root(EventId::new_random(), event);
        h.inject(&env, &env.id.to_string()).await?;
    }
    let (shutdown, task) = spawn_consumer(&h, Arc::new(Participant::default()));
    tokio::time::sleep(Duration::from_secs(9)).await;
    h.db.allow_connections().await?;
    wait_until("every event applied after the outage", WAIT, || async {
        each_applied_once(&h, &events).await
    })
    .await?;
    shutdown.cancel();
    task.await?;
    assert!(
        h.dead_letters().await?.is_empty(),
        "an outage was dead-lettered"
    );
    assert_eq!(
        count(&h, "SELECT count(*) FROM kit_delivery_failures").await?,
        0
    );
    assert!(
        h.metrics.counter(
            "jetsaga_handler_unavailable_total",
            &[("consumer", CONSUMER)]
        ) > 0,
        "the outage was never met"
    );
    Ok(())
}

#[tokio::test]
async fn a_dead_letter_is_stored_whatever_bytes_the_message_holds() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("ce-type", "jetsaga.orders.created.v1\0junk");
    headers.insert("ce-id", "\0\0\0");
    let subject = format!("orders.created.{}", uuid::Uuid::new_v4());
    publish_junk(&h, &subject, Some(headers), b"\0{\0".to_vec()).await?;
    let good = order_created("SKU-1");
    h.commit_event(&good).await?;
    h.relay_until_empty(&h.relay()).await?;
    let (shutdown, task) = spawn_consumer(&h, Arc::new(Participant::default()));
    wait_until(
        "the junk dead-lettered and the good order applied",
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
    let (headers, payload): (serde_json::Value, Vec<u8>) =
        sqlx::query_as("SELECT headers, payload FROM kit_dead_letters")
            .fetch_one(h.db.pool())
            .await?;
    assert_eq!(payload, b"\0{\0", "the raw payload is kept byte for byte");
    assert_eq!(headers["ce-id"], "\\0\\0\\0");
    Ok(())
}

#[tokio::test]
async fn big_binary_poison_holds_back_neither_the_consumer_nor_the_outbox() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    for _ in 0..3 {
        let subject = format!("orders.created.{}", uuid::Uuid::new_v4());
        publish_junk(&h, &subject, None, junk(400 * 1024)).await?;
    }
    let good: Vec<OrderEvent> = (0..10)
        .map(|i| order_created(&format!("SKU-{i}")))
        .collect();
    for event in &good {
        h.commit_event(event).await?;
    }
    let relay = h.relay();
    h.relay_until_empty(&relay).await?;
    let (shutdown, task) = spawn_consumer(&h, Arc::new(Participant::default()));
    wait_until(
        "three dead letters and ten orders applied",
        WAIT,
        || async {
            h.dead_letters()
                .await
                .map(|d| d.len() == 3)
                .unwrap_or(false)
                && each_applied_once(&h, &good).await
        },
    )
    .await?;
    shutdown.cancel();
    task.await?;
    // Every copy for the DLQ stream and every event the orders caused is published: none of the
    // poison's rows can sit at the head of the outbox.
    h.relay_until_empty(&relay).await?;
    assert_eq!(h.stream_messages(DLQ_STREAM).await?.len(), 3);
    assert_eq!(h.stream_messages("STOCK").await?.len(), 10);
    assert_eq!(
        count(
            &h,
            "SELECT count(*) FROM kit_outbox WHERE published_at IS NULL"
        )
        .await?,
        0
    );
    Ok(())
}

#[tokio::test]
async fn an_event_larger_than_the_server_accepts_is_parked_and_the_others_are_published(
) -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let huge = Envelope {
        payload: bytes::Bytes::from(vec![b'x'; 2 * 1024 * 1024]),
        ..Envelope::root(EventId::new_random(), &order_created("SKU-1"))
    };
    let mut tx = h.db.pool().begin().await?;
    saga_kit::outbox::enqueue(&mut tx, &huge).await?;
    tx.commit().await?;
    for i in 0..3 {
        h.commit_event(&order_created(&format!("SKU-{i}"))).await?;
    }
    let relay = h.relay();
    // A step with a row it cannot publish still succeeds for the others.
    let published = h.relay_until_empty(&relay).await?;
    assert_eq!(published, 3);
    assert_eq!(h.stream_messages("ORDERS").await?.len(), 3);
    let (reason,): (String,) = sqlx::query_as(
        "SELECT park_reason FROM kit_outbox WHERE parked_at IS NOT NULL AND published_at IS NULL",
    )
    .fetch_one(h.db.pool())
    .await?;
    assert!(reason.contains("max payload"), "{reason}");
    // And it is not claimed again.
    assert_eq!(
        relay.relay_batch().await?,
        saga_kit::RelayOutcome::Empty,
        "a parked row was claimed again"
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_dlq_stream_holds_back_only_its_own_rows() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    h.js.delete_stream(DLQ_STREAM).await?;
    h.commit_event(&order_created("POISON")).await?;
    let relay = h.relay();
    h.relay_until_empty(&relay).await?;
    let (shutdown, task) = spawn_consumer(&h, Arc::new(Participant::default()));
    wait_until("the poison dead-lettered", WAIT, || async {
        h.dead_letters()
            .await
            .map(|d| d.len() == 1)
            .unwrap_or(false)
    })
    .await?;
    let good: Vec<OrderEvent> = (0..5).map(|i| order_created(&format!("SKU-{i}"))).collect();
    for event in &good {
        h.commit_event(event).await?;
    }
    // The DLQ copy is refused; the orders behind it are published and handled.
    h.relay_until_empty(&relay).await?;
    wait_until(
        "the orders behind the refused copy applied",
        WAIT,
        || async { each_applied_once(&h, &good).await },
    )
    .await?;
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM kit_outbox WHERE subject LIKE 'dlq.%'")
            .fetch_one(h.db.pool())
            .await?;
    assert!(attempts >= 1 && error.is_some(), "{attempts} {error:?}");
    // Once the stream is back, the copy follows after its back-off.
    provision::ensure_streams(
        &h.js,
        &jetsaga_contracts::Producer::ALL,
        &StreamSettings::default(),
    )
    .await?;
    wait_until("the DLQ copy published", WAIT, || async {
        let _ = h.relay_until_empty(&relay).await;
        h.stream_messages(DLQ_STREAM)
            .await
            .map(|m| m.len() == 1)
            .unwrap_or(false)
    })
    .await?;
    shutdown.cancel();
    task.await?;
    Ok(())
}

#[tokio::test]
async fn graceful_shutdown_hands_back_what_it_will_not_finish() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let slow: Vec<OrderEvent> = (0..6).map(|_| order_created("SLOW")).collect();
    for event in &slow {
        h.commit_event(event).await?;
    }
    h.relay_until_empty(&h.relay()).await?;
    let participant = Arc::new(Participant::default());
    let runner = |participant: Arc<Participant>| {
        let mut config = h.consumer(participant.clone()).config().clone();
        // Long enough that a message left to the ack wait would not come back during the test.
        config.ack_wait = Duration::from_secs(60);
        config.concurrency = 1;
        Consumer::new(
            h.db.pool().clone(),
            h.js.clone(),
            config,
            participant,
            h.metrics.clone(),
        )
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(runner(participant.clone()).run(shutdown.clone()));
    wait_until("the first slow message in the handler", WAIT, || async {
        participant.calls.load(Ordering::SeqCst) == 1
    })
    .await?;
    shutdown.cancel();
    task.await?;
    // Another instance takes them at once: within the test's wait, half the ack wait a message left
    // to it would need.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(runner(participant.clone()).run(shutdown.clone()));
    wait_until("every slow order applied", WAIT, || async {
        each_applied_once(&h, &slow).await
    })
    .await?;
    shutdown.cancel();
    task.await?;
    assert!(
        h.metrics.counter_total("jetsaga_handed_back_total") > 0,
        "nothing was handed back"
    );
    Ok(())
}

#[tokio::test]
async fn a_deleted_durable_is_recreated_and_reported_while_it_cannot_pull() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let participant = Arc::new(Participant::default());
    let (shutdown, task) = spawn_consumer(&h, participant.clone());
    let pulling = || h.metrics.health().consumers().get(CONSUMER).cloned();
    wait_until("the consumer pulling", WAIT, || async {
        pulling() == Some(ConsumerState::Pulling)
    })
    .await?;
    h.js.get_stream("ORDERS")
        .await?
        .delete_consumer(CONSUMER)
        .await?;
    wait_until("the failed pull noticed", WAIT, || async {
        h.metrics.counter(
            "jetsaga_consumer_pull_failures_total",
            &[("consumer", CONSUMER)],
        ) > 0
    })
    .await?;
    let event = order_created("SKU-1");
    h.commit_event(&event).await?;
    h.relay_until_empty(&h.relay()).await?;
    wait_until(
        "the event applied by the recreated durable",
        WAIT,
        || async { effect_count(&h, &event).await.unwrap_or(0) == 1 },
    )
    .await?;
    assert_eq!(pulling(), Some(ConsumerState::Pulling));
    shutdown.cancel();
    task.await?;
    Ok(())
}

#[tokio::test]
async fn an_existing_durable_keeps_its_ack_wait_and_gets_the_kits_delivery_rules(
) -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let participant = Arc::new(Participant::default());
    // As an earlier version, or an operator, left it: a server-side limit and a tuned ack wait.
    h.js.get_stream("ORDERS")
        .await?
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(CONSUMER.to_owned()),
            filter_subjects: vec!["orders.created.*".to_owned()],
            ack_wait: Duration::from_secs(45),
            max_deliver: 5,
            ..Default::default()
        })
        .await?;
    let mut pull = h.consumer(participant).ensure().await?;
    let config = pull.info().await?.config.clone();
    assert_eq!(config.max_deliver, -1, "the server may still give up");
    assert_eq!(
        config.ack_wait,
        Duration::from_secs(45),
        "the tuned ack wait was reset"
    );
    Ok(())
}

#[tokio::test]
async fn a_held_row_lock_makes_only_its_own_messages_wait() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let locked: Vec<OrderEvent> = (0..2).map(|_| order_created("HOT")).collect();
    let others: Vec<OrderEvent> = (0..10)
        .map(|i| order_created(&format!("SKU-{i}")))
        .collect();
    let order_id = |e: &OrderEvent| match e {
        OrderEvent::OrderCreated(c) => *c.order_id.as_uuid(),
        _ => unreachable!(),
    };
    for e in &locked {
        sqlx::query("INSERT INTO test_effects (order_id, sku, n) VALUES ($1, 'HOT', 0)")
            .bind(order_id(e))
            .execute(h.db.pool())
            .await?;
    }
    // Someone holds both rows, as a long psql session or a paused instance would.
    let mut holder = h.db.pool().begin().await?;
    sqlx::query("SELECT 1 FROM test_effects WHERE sku = 'HOT' FOR UPDATE")
        .execute(&mut *holder)
        .await?;
    for e in locked.iter().chain(&others) {
        h.commit_event(e).await?;
    }
    h.relay_until_empty(&h.relay()).await?;
    // The service's connections, as the runtime opens them: lock waits are bounded.
    let options = sqlx::postgres::PgConnectOptions::from_str(&h.db.url())?
        .options([("lock_timeout", "300ms")]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    let participant = Arc::new(Participant::default());
    let mut config = h.consumer(participant.clone()).config().clone();
    config.concurrency = 2;
    let runner = Consumer::new(pool, h.js.clone(), config, participant, h.metrics.clone());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(runner.run(shutdown.clone()));
    wait_until(
        "the other orders applied while the lock is held",
        WAIT,
        || async { each_applied_once(&h, &others).await },
    )
    .await?;
    holder.rollback().await?;
    wait_until(
        "the held orders applied once the lock is gone",
        WAIT,
        || async { each_applied_once(&h, &locked).await },
    )
    .await?;
    shutdown.cancel();
    task.await?;
    assert!(
        h.dead_letters().await?.is_empty(),
        "a lock wait was dead-lettered"
    );
    Ok(())
}

#[tokio::test]
async fn a_service_starting_keeps_an_operators_stream_settings() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let tuned = StreamSettings {
        max_age: Duration::from_secs(7 * 24 * 3600),
        duplicate_window: Duration::from_secs(300),
        ..StreamSettings::default()
    };
    provision::ensure_streams_as(
        &h.js,
        &jetsaga_contracts::Producer::ALL,
        &tuned,
        provision::Provisioner::Operator,
    )
    .await?;
    // An instance started with the defaults, as one without the operator's settings would be.
    provision::ensure_streams(
        &h.js,
        &jetsaga_contracts::Producer::ALL,
        &StreamSettings::default(),
    )
    .await?;
    let mut stream = h.js.get_stream("PAYMENTS").await?;
    let config = stream.info().await?.config.clone();
    assert_eq!(
        config.max_age, tuned.max_age,
        "a service reset the retention"
    );
    assert_eq!(config.duplicate_window, tuned.duplicate_window);
    Ok(())
}
