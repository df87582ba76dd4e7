//! The conformance harness: a real nats-server and a fresh PostgreSQL database per test, the kit's
//! tables migrated, the streams provisioned, and a stand-in participant that counts its effects.

#![allow(dead_code)]

use async_nats::jetstream;
use jetsaga_contracts::events::order::OrderCreated;
use jetsaga_contracts::events::stock::StockReserved;
use jetsaga_contracts::{
    CustomerId, EventId, EventSet, Money, OrderEvent, OrderId, OrderLine, Sku, StockEvent,
    StockLine,
};
use jetsaga_testkit::{NatsServer, TestDb};
use saga_kit::consumer::ConsumerConfig;
use saga_kit::handler::{EventContext, Handler, HandlerError};
use saga_kit::provision::{self, StreamSettings};
use saga_kit::{Consumer, Envelope, Metrics, Relay, RelayConfig, RelayOutcome};
use sqlx::PgConnection;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub static TEST_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("tests/migrations");

/// The durable name of the stand-in consumer.
pub const CONSUMER: &str = "kit-test-on-orders";

pub struct Harness {
    pub nats: NatsServer,
    pub db: TestDb,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub metrics: Arc<Metrics>,
}

impl Harness {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(StreamSettings::default()).await
    }

    pub async fn start_with(settings: StreamSettings) -> anyhow::Result<Self> {
        jetsaga_testkit::init_tracing();
        let nats = NatsServer::start().await?;
        let db = TestDb::create("kit").await?;
        saga_kit::migrate::migrate(db.pool(), Some(&TEST_MIGRATIONS)).await?;
        let client = provision::connect(&nats.url(), "kit-test").await?;
        let js = jetstream::new(client.clone());
        provision::ensure_streams(&js, &jetsaga_contracts::Producer::ALL, &settings).await?;
        Ok(Harness {
            nats,
            db,
            client,
            js,
            metrics: Arc::new(Metrics::new()),
        })
    }

    pub fn relay(&self) -> Relay {
        self.relay_with(RelayConfig {
            batch_size: 64,
            ..RelayConfig::default()
        })
    }

    /// A relay of the harness's database and NATS with these settings.
    pub fn relay_with(&self, config: RelayConfig) -> Relay {
        Relay::new(
            self.db.pool().clone(),
            self.js.clone(),
            config,
            self.metrics.clone(),
        )
    }

    pub fn consumer(&self, handler: Arc<Participant>) -> Consumer<Participant> {
        self.consumer_with(handler, |_| {})
    }

    /// [`Harness::consumer`] with its settings changed by `tune`.
    pub fn consumer_with(
        &self,
        handler: Arc<Participant>,
        tune: impl FnOnce(&mut ConsumerConfig),
    ) -> Consumer<Participant> {
        let mut config = ConsumerConfig::new("kit-test", CONSUMER, vec!["orders.created.*".into()]);
        config.ack_wait = Duration::from_secs(2);
        config.max_failures = 3;
        config.nak_backoff.initial = Duration::from_millis(50);
        config.nak_backoff.max = Duration::from_millis(200);
        tune(&mut config);
        Consumer::new(
            self.db.pool().clone(),
            self.js.clone(),
            config,
            handler,
            self.metrics.clone(),
        )
    }

    /// Commits `event` to the outbox as a root event, in its own transaction.
    pub async fn commit_event<E: EventSet>(&self, event: &E) -> anyhow::Result<Envelope> {
        let mut tx = self.db.pool().begin().await?;
        let env = saga_kit::outbox::emit_root(&mut tx, EventId::new_random(), event).await?;
        tx.commit().await?;
        Ok(env)
    }

    /// Drives the relay step until it reports the outbox empty.
    pub async fn relay_until_empty(&self, relay: &Relay) -> anyhow::Result<usize> {
        let mut total = 0;
        loop {
            match relay.relay_batch().await? {
                RelayOutcome::Published(n) => total += n,
                RelayOutcome::Empty => return Ok(total),
            }
        }
    }

    /// Publishes an envelope straight to the stream, as a producer's relay would, under `msg_id`.
    pub async fn inject(&self, env: &Envelope, msg_id: &str) -> anyhow::Result<u64> {
        let publish = env.publish_message().message_id(msg_id);
        Ok(self
            .js
            .send_publish(env.subject.clone(), publish)
            .await?
            .await?
            .sequence)
    }

    /// Every message of a stream, in stream order: (subject, ce-id).
    pub async fn stream_messages(&self, stream: &str) -> anyhow::Result<Vec<(String, String)>> {
        Ok(self
            .stream_messages_with_seq(stream)
            .await?
            .into_iter()
            .map(|(_, subject, id)| (subject, id))
            .collect())
    }

    /// Every message of a stream, in stream order: (stream sequence, subject, ce-id).
    pub async fn stream_messages_with_seq(
        &self,
        stream: &str,
    ) -> anyhow::Result<Vec<(u64, String, String)>> {
        let mut s = self.js.get_stream(stream).await?;
        let info = s.info().await?.clone();
        let mut out = Vec::new();
        for seq in info.state.first_sequence..=info.state.last_sequence {
            if info.state.messages == 0 {
                break;
            }
            let m = s.get_raw_message(seq).await?;
            let id = m
                .headers
                .get("ce-id")
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            out.push((seq, m.subject.to_string(), id));
        }
        Ok(out)
    }

    /// Cuts every connection to the test database but the one asking, as a failover, a restart or
    /// an operator's `pg_terminate_backend` does; how many were cut.
    pub async fn cut_connections(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM (
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
             ) AS t",
        )
        .fetch_one(&mut *self.db.pool().acquire().await?)
        .await?)
    }

    /// How many times the stand-in applied its effect for each order.
    pub async fn effects(&self) -> anyhow::Result<HashMap<OrderId, i32>> {
        let rows: Vec<(uuid::Uuid, i32)> = sqlx::query_as("SELECT order_id, n FROM test_effects")
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, n)| (OrderId::from_uuid(id), n))
            .collect())
    }

    pub async fn dead_letters(&self) -> anyhow::Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT kind, reason FROM kit_dead_letters ORDER BY id")
                .fetch_all(self.db.pool())
                .await?,
        )
    }
}

/// An order of one line; a SKU of `POISON` makes the stand-in refuse it permanently, `FLAKY`
/// makes it fail transiently every time, `ONCE` makes it refuse an order it has applied.
pub fn order_created(sku: &str) -> OrderEvent {
    OrderEvent::OrderCreated(OrderCreated {
        order_id: OrderId::new_random(),
        customer_id: CustomerId::new_random(),
        lines: vec![OrderLine {
            sku: Sku::parse(sku).expect("valid sku"),
            quantity: 1,
            unit_price: Money::from_cents(100).expect("valid money"),
        }],
        total: Money::from_cents(100).expect("valid money"),
        voucher_code: None,
        points: None,
        deadline: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
        idempotency_key: None,
    })
}

/// A stand-in participant: for each OrderCreated it counts one effect and emits StockReserved.
#[derive(Debug, Default)]
pub struct Participant {
    pub calls: AtomicU32,
    /// Events seen by the after-commit hook.
    pub committed: AtomicU32,
}

impl Handler for Participant {
    type Input = OrderEvent;
    type Output = StockEvent;

    fn committed(&self, emitted: &[StockEvent], _metrics: &Metrics) {
        self.committed
            .fetch_add(emitted.len() as u32, Ordering::SeqCst);
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: OrderEvent,
        _ctx: &EventContext,
    ) -> Result<Vec<StockEvent>, HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let OrderEvent::OrderCreated(created) = event else {
            return Ok(vec![]);
        };
        match created.lines[0].sku.as_str() {
            "POISON" => return Err(HandlerError::permanent("sku POISON is refused")),
            "SLOW" => tokio::time::sleep(Duration::from_millis(800)).await,
            "PANIC" => panic!("the handler cannot cope with sku PANIC"),
            // Refuses an order it has already applied, as a domain rule refuses a second
            // reservation: only the inbox tells such a refusal from a poison message.
            "ONCE" => {
                let seen: Option<i32> =
                    sqlx::query_scalar("SELECT n FROM test_effects WHERE order_id = $1")
                        .bind(created.order_id.as_uuid())
                        .fetch_optional(&mut *tx)
                        .await?;
                if seen.is_some() {
                    return Err(HandlerError::permanent(format!(
                        "order {} is already reserved",
                        created.order_id
                    )));
                }
            }
            "FLAKY" => {
                return Err(HandlerError::transient(
                    "flaky dependency",
                    std::io::Error::other("still down"),
                ))
            }
            _ => {}
        }
        sqlx::query(
            "INSERT INTO test_effects (order_id, sku, n) VALUES ($1, $2, 1)
             ON CONFLICT (order_id) DO UPDATE SET n = test_effects.n + 1",
        )
        .bind(created.order_id.as_uuid())
        .bind(created.lines[0].sku.as_str())
        .execute(&mut *tx)
        .await?;
        Ok(vec![StockEvent::StockReserved(StockReserved {
            order_id: created.order_id,
            lines: created
                .lines
                .iter()
                .map(|l| StockLine {
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                })
                .collect(),
        })])
    }
}

/// Runs the stand-in consumer in the background until the token is cancelled.
pub fn spawn_consumer(
    h: &Harness,
    participant: Arc<Participant>,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(h.consumer(participant).run(shutdown.clone()));
    (shutdown, task)
}

/// The next message `pull` delivers, within 10 s.
pub async fn next_message(
    pull: &jetstream::consumer::Consumer<jetstream::consumer::pull::Config>,
) -> anyhow::Result<jetstream::Message> {
    use futures::StreamExt;
    let mut batch = pull
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(10))
        .messages()
        .await?;
    match batch.next().await {
        Some(m) => m.map_err(|e| anyhow::anyhow!("fetch failed: {e}")),
        None => anyhow::bail!("no message arrived"),
    }
}
