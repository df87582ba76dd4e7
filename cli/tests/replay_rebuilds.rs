//! A replay rebuilds what happened, not what a second run of the handlers would decide.
//!
//! Each test drives one service's real handlers (`Consumer::process_raw`) in a chosen order
//! against a real database and a real nats-server, relays what the service said to its stream,
//! rebuilds an empty database from the streams alone with `saga_kit::replay`, and compares every
//! business row of the two. Each interleaving is one the service meets in production (a nak, a
//! deadline sweep, a top-up, an issue-then-use voucher, an operator's discard) and that a replay of
//! the inputs in stream order decides differently.

use async_nats::jetstream;
use futures::future::BoxFuture;
use jetsaga_contracts::events::order::{OrderCancelled, OrderCreated};
use jetsaga_contracts::events::payment::{AccountCredited, PaymentSucceeded};
use jetsaga_contracts::events::points::PointsReserved;
use jetsaga_contracts::events::stock::{StockAdjusted, StockReserved};
use jetsaga_contracts::events::voucher::VoucherIssued;
use jetsaga_contracts::events::{OrderLine, StockLine};
use jetsaga_contracts::{
    Actor, CancelReason, CustomerId, EventId, EventSet, Money, OrderEvent, OrderId, PaymentEvent,
    Points, PointsEvent, Producer, Sku, StockEvent, VoucherCode, VoucherEvent,
};
use jetsaga_testkit::{NatsServer, TestDb};
use saga_kit::consumer::RawMessage;
use saga_kit::facts::{FactContext, Restore, StateTable};
use saga_kit::replay::{
    Replay, ReplayError, ReplayFrom, ReplayStart, ReplaySummary, Silent, Wiring,
};
use saga_kit::{Consumer, ConsumerConfig, Disposition, Envelope, Handler, Metrics, Relay};
use sqlx::migrate::Migrator;
use std::collections::HashMap;
use std::sync::Arc;

type Process = Box<dyn Fn(RawMessage) -> BoxFuture<'static, Disposition> + Send + Sync>;

/// The service's consumers on the live database, run by hand.
struct LiveWiring {
    pool: sqlx::PgPool,
    js: jetstream::Context,
    service: &'static str,
    consumers: HashMap<&'static str, Process>,
}

impl Wiring for LiveWiring {
    fn consumer<H: Handler>(&mut self, durable: &'static str, filters: &[&str], handler: H) {
        let config = ConsumerConfig::new(
            self.service,
            durable,
            filters.iter().map(|s| (*s).to_owned()).collect(),
        );
        let consumer = Arc::new(Consumer::new(
            self.pool.clone(),
            self.js.clone(),
            config,
            Arc::new(handler),
            Arc::new(Metrics::new()),
        ));
        self.consumers.insert(
            durable,
            Box::new(move |raw| {
                let c = consumer.clone();
                Box::pin(async move { c.process_raw(&raw).await })
            }),
        );
    }
}

/// One service on a live database, its streams on a real nats-server.
struct Bench {
    _nats: NatsServer,
    js: jetstream::Context,
    live: TestDb,
    producer: Producer,
    migrations: &'static Migrator,
    wiring: LiveWiring,
}

impl Bench {
    async fn start(
        producer: Producer,
        migrations: &'static Migrator,
        wire: fn(&mut LiveWiring),
    ) -> anyhow::Result<Self> {
        let nats = NatsServer::start().await?;
        let client = saga_kit::provision::connect(&nats.url(), "replay-test").await?;
        let js = jetstream::new(client);
        saga_kit::provision::ensure_streams(
            &js,
            &jetsaga_contracts::Producer::ALL,
            &saga_kit::provision::StreamSettings::default(),
        )
        .await?;
        let live = TestDb::create(&format!("live_{}", producer.service())).await?;
        saga_kit::migrate::migrate(live.pool(), Some(migrations)).await?;
        let mut wiring = LiveWiring {
            pool: live.pool().clone(),
            js: js.clone(),
            service: producer.service(),
            consumers: HashMap::new(),
        };
        wire(&mut wiring);
        Ok(Bench {
            _nats: nats,
            js,
            live,
            producer,
            migrations,
            wiring,
        })
    }

    /// Publishes `event` of another service onto its stream, as that service's relay would.
    async fn publish<E: EventSet>(&self, event: &E) -> anyhow::Result<u64> {
        let env = Envelope::root(EventId::new_random(), event);
        let ack = self
            .js
            .send_publish(
                env.subject.clone(),
                env.publish_message().message_id(env.id.to_string()),
            )
            .await?
            .await?;
        Ok(ack.sequence)
    }

    /// The live service's consumer `durable` handles the message at `seq` of `stream`.
    async fn handle(
        &self,
        durable: &str,
        stream: &str,
        seq: u64,
        delivered: i64,
    ) -> anyhow::Result<Disposition> {
        let msg = self
            .js
            .get_stream(stream)
            .await?
            .get_raw_message(seq)
            .await?;
        let raw = RawMessage {
            subject: msg.subject.to_string(),
            headers: Some(msg.headers),
            payload: msg.payload,
            stream: stream.to_owned(),
            stream_seq: seq,
            delivered,
        };
        Ok((self.wiring.consumers[durable])(raw).await)
    }

    /// An API call or admin change of the service: its effect and its root event, in one
    /// transaction.
    async fn say<R: Restore>(&self, restorer: &R, event: R::Event) -> anyhow::Result<()> {
        let id = EventId::new_random();
        let env = Envelope::root(id, &event);
        let ctx = FactContext {
            event_id: id,
            causation_id: id,
            consumer: None,
            event_time: env.time,
            stream_seq: 0,
        };
        let mut tx = self.live.pool().begin().await?;
        restorer.restore(&mut tx, event, &ctx).await?;
        saga_kit::outbox::enqueue(&mut tx, &env).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Publishes everything the live service said.
    async fn relay(&self) -> anyhow::Result<()> {
        let relay = Relay::new(
            self.live.pool().clone(),
            self.js.clone(),
            saga_kit::RelayConfig::default(),
            Arc::new(Metrics::new()),
        );
        while relay.relay_batch().await? != saga_kit::RelayOutcome::Empty {}
        Ok(())
    }

    /// A replay of the service into a fresh database, from the streams alone.
    async fn rebuild(
        &self,
        wire: impl FnOnce(&mut Replay),
    ) -> anyhow::Result<(TestDb, Result<ReplaySummary, ReplayError>)> {
        let db = TestDb::create(&format!("rebuilt_{}", self.producer.service())).await?;
        saga_kit::migrate::migrate(db.pool(), Some(self.migrations)).await?;
        let mut replay = Replay::new(self.producer, db.pool().clone(), self.js.clone(), 5);
        wire(&mut replay);
        let summary = replay
            .run(&ReplayStart::from(ReplayFrom::Beginning), &Silent)
            .await;
        Ok((db, summary))
    }

    /// The rebuilt database holds the same business rows as the live one.
    async fn assert_same(&self, rebuilt: &TestDb, tables: &[StateTable]) -> anyhow::Result<()> {
        let compared = saga_kit::verify::compare(self.live.pool(), rebuilt.pool(), tables).await?;
        assert!(
            compared.differences.is_empty(),
            "the rebuild differs from what happened: {:#?}",
            compared.differences
        );
        Ok(())
    }
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).expect("a valid sku")
}

fn money(cents: i64) -> Money {
    Money::from_cents(cents).expect("valid money")
}

fn paid(order_id: OrderId, customer: CustomerId, sku_: &Sku) -> PaymentEvent {
    PaymentEvent::PaymentSucceeded(PaymentSucceeded {
        order_id,
        payment_id: uuid::Uuid::new_v4(),
        customer_id: customer,
        amount: money(500),
        lines: vec![OrderLine {
            sku: sku_.clone(),
            quantity: 1,
            unit_price: money(500),
        }],
    })
}

fn stock_bench_wire(w: &mut LiveWiring) {
    stock_service::consumers::wire(w);
}

fn stock_replay(r: &mut Replay) {
    stock_service::consumers::wire(r);
    r.restore_with(stock_service::restore::Restorer);
}

async fn adjust(bench: &Bench, sku_: &Sku, delta: i64) -> anyhow::Result<()> {
    bench
        .say(
            &stock_service::restore::Restorer,
            StockEvent::StockAdjusted(StockAdjusted {
                adjustment_id: uuid::Uuid::new_v4(),
                sku: sku_.clone(),
                delta,
                actor: Actor::anonymous(),
            }),
        )
        .await
}

#[tokio::test]
async fn last_unit_goes_to_the_order_the_service_served_first_in_the_rebuild_too(
) -> anyhow::Result<()> {
    let bench = Bench::start(
        Producer::STOCK,
        &stock_service::MIGRATIONS,
        stock_bench_wire,
    )
    .await?;
    let last = sku("LAST-1");
    adjust(&bench, &last, 1).await?;
    bench.relay().await?;
    let customer = CustomerId::new_random();
    let a = bench
        .publish(&paid(OrderId::new_random(), customer, &last))
        .await?;
    let b = bench
        .publish(&paid(OrderId::new_random(), customer, &last))
        .await?;
    // A was nak'ed once (a lock timeout), so B, stored after it, took the last unit.
    let on_payments = stock_service::consumers::OnPayments::DURABLE;
    assert_eq!(
        bench.handle(on_payments, "PAYMENTS", b, 1).await?,
        Disposition::Applied
    );
    assert_eq!(
        bench.handle(on_payments, "PAYMENTS", a, 2).await?,
        Disposition::Applied
    );
    bench.relay().await?;

    let (rebuilt, summary) = bench.rebuild(stock_replay).await?;
    let summary = summary?;
    assert!(summary.is_clean(), "{summary:#?}");
    assert_eq!(
        summary.total().recorded,
        2,
        "both decisions applied as recorded"
    );
    assert_eq!(summary.total().applied, 0, "no handler decided again");
    bench
        .assert_same(&rebuilt, stock_service::state::TABLES)
        .await
}

#[tokio::test]
async fn an_input_dead_lettered_and_discarded_by_an_operator_stays_unapplied() -> anyhow::Result<()>
{
    let bench = Bench::start(
        Producer::STOCK,
        &stock_service::MIGRATIONS,
        stock_bench_wire,
    )
    .await?;
    let s = sku("DISCARD-1");
    adjust(&bench, &s, 3).await?;
    let seq = bench
        .publish(&paid(OrderId::new_random(), CustomerId::new_random(), &s))
        .await?;
    // It failed five times while the database was fine; its sixth delivery dead-letters it.
    let on_payments = stock_service::consumers::OnPayments::DURABLE;
    sqlx::query(
        "INSERT INTO kit_delivery_failures (consumer, stream, stream_seq, failures, last_error)
         VALUES ($1, 'PAYMENTS', $2, 5, 'the card network said no')",
    )
    .bind(on_payments)
    .bind(i64::try_from(seq)?)
    .execute(bench.live.pool())
    .await?;
    assert!(matches!(
        bench.handle(on_payments, "PAYMENTS", seq, 6).await?,
        Disposition::DeadLettered(_)
    ));
    let id: i64 = sqlx::query_scalar("SELECT id FROM kit_dead_letters")
        .fetch_one(bench.live.pool())
        .await?;
    saga_kit::dead_letter::discard(
        bench.live.pool(),
        "stock",
        id,
        saga_kit::dead_letter::Decided::by("alice"),
    )
    .await?;
    bench.relay().await?;

    let (rebuilt, summary) = bench.rebuild(stock_replay).await?;
    let summary = summary?;
    assert!(summary.is_clean(), "{summary:#?}");
    assert_eq!(summary.total().dead_lettered, 1);
    assert_eq!(
        summary.total().applied,
        0,
        "the discarded input was not applied"
    );
    bench
        .assert_same(&rebuilt, stock_service::state::TABLES)
        .await?;
    let status: (String, String) = sqlx::query_as(
        "SELECT d.status, a.actor FROM kit_dead_letters d
         JOIN kit_dead_letter_audit a ON a.dead_letter_id = d.id",
    )
    .fetch_one(rebuilt.pool())
    .await?;
    assert_eq!(status, ("discarded".to_owned(), "alice".to_owned()));
    Ok(())
}

#[tokio::test]
async fn a_stream_that_lost_its_first_events_refuses_a_rebuild_and_says_what_is_missing(
) -> anyhow::Result<()> {
    let bench = Bench::start(
        Producer::STOCK,
        &stock_service::MIGRATIONS,
        stock_bench_wire,
    )
    .await?;
    let s = sku("GAP-1");
    adjust(&bench, &s, 1).await?;
    adjust(&bench, &s, 1).await?;
    bench.relay().await?;
    bench
        .js
        .get_stream("STOCK")
        .await?
        .delete_message(1)
        .await?;

    let (rebuilt, summary) = bench.rebuild(stock_replay).await?;
    let error = summary.expect_err("a rebuild without seq 1 must not run");
    let text = error.to_string();
    assert!(text.contains("STOCK from seq 1"), "{text}");
    assert!(text.contains("holds only seq 2..2"), "{text}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM stock")
        .fetch_one(rebuilt.pool())
        .await?;
    assert_eq!(rows, 0, "nothing was replayed");
    Ok(())
}

#[tokio::test]
async fn a_decision_the_database_cannot_hold_any_more_is_a_divergence_and_fails_the_replay(
) -> anyhow::Result<()> {
    let bench = Bench::start(
        Producer::STOCK,
        &stock_service::MIGRATIONS,
        stock_bench_wire,
    )
    .await?;
    let other = sku("OTHER-1");
    let s = sku("DIVERGE-1");
    adjust(&bench, &other, 5).await?;
    bench.relay().await?;
    adjust(&bench, &s, 1).await?;
    bench.relay().await?;
    let seq = bench
        .publish(&paid(OrderId::new_random(), CustomerId::new_random(), &s))
        .await?;
    let on_payments = stock_service::consumers::OnPayments::DURABLE;
    assert_eq!(
        bench.handle(on_payments, "PAYMENTS", seq, 1).await?,
        Disposition::Applied
    );
    bench.relay().await?;
    // The adjustment that made the reservation possible is lost from the stream (seq 2 of 3).
    bench
        .js
        .get_stream("STOCK")
        .await?
        .delete_message(2)
        .await?;

    let (rebuilt, summary) = bench.rebuild(stock_replay).await?;
    let summary = summary?;
    assert!(!summary.is_clean(), "{summary:#?}");
    assert_eq!(summary.divergences.len(), 1, "{summary:#?}");
    assert!(
        summary.divergences[0].contains("jetsaga.stock.reserved"),
        "{:?}",
        summary.divergences
    );
    assert_eq!(summary.outbox_marked_published, 0);
    let emitted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM kit_outbox WHERE ce_type LIKE 'jetsaga.stock.failed%'",
    )
    .fetch_one(rebuilt.pool())
    .await?;
    assert_eq!(emitted, 0, "the diverging decision was not committed");
    Ok(())
}

#[tokio::test]
async fn an_order_cancelled_by_its_deadline_before_its_stock_came_stays_cancelled(
) -> anyhow::Result<()> {
    fn wire(w: &mut LiveWiring) {
        order_service::consumers::wire(w);
    }
    let bench = Bench::start(Producer::ORDER, &order_service::MIGRATIONS, wire).await?;
    let restorer = order_service::restore::Restorer;
    let order_id = OrderId::new_random();
    let s = sku("RACE-1");
    bench
        .say(
            &restorer,
            OrderEvent::OrderCreated(OrderCreated {
                order_id,
                customer_id: CustomerId::new_random(),
                lines: vec![OrderLine {
                    sku: s.clone(),
                    quantity: 1,
                    unit_price: money(500),
                }],
                total: money(500),
                voucher_code: None,
                points: None,
                deadline: time::OffsetDateTime::now_utc(),
                idempotency_key: None,
            }),
        )
        .await?;
    bench.relay().await?;
    // StockReserved is stored, then the sweep cancels the order before it is handled.
    let reserved = bench
        .publish(&StockEvent::StockReserved(StockReserved {
            order_id,
            lines: vec![StockLine {
                sku: s,
                quantity: 1,
            }],
        }))
        .await?;
    bench
        .say(
            &restorer,
            OrderEvent::OrderCancelled(OrderCancelled {
                order_id,
                reason: CancelReason::Timeout,
            }),
        )
        .await?;
    bench.relay().await?;
    let on_stock = order_service::consumers::OnStock::DURABLE;
    assert_eq!(
        bench.handle(on_stock, "STOCK", reserved, 1).await?,
        Disposition::Applied
    );
    bench.relay().await?;

    let (rebuilt, summary) = bench
        .rebuild(|r| {
            order_service::consumers::wire(r);
            r.restore_with(order_service::restore::Restorer);
        })
        .await?;
    let summary = summary?;
    assert!(summary.is_clean(), "{summary:#?}");
    bench
        .assert_same(&rebuilt, order_service::state::TABLES)
        .await?;
    let confirmed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM kit_outbox WHERE ce_type LIKE '%confirmed%'")
            .fetch_one(rebuilt.pool())
            .await?;
    assert_eq!(
        confirmed, 0,
        "no OrderConfirmed after the refund and releases"
    );
    Ok(())
}

#[tokio::test]
async fn a_charge_that_a_top_up_made_possible_stays_charged() -> anyhow::Result<()> {
    fn wire(w: &mut LiveWiring) {
        payment_service::consumers::wire(w);
    }
    let bench = Bench::start(Producer::PAYMENT, &payment_service::MIGRATIONS, wire).await?;
    let customer = CustomerId::new_random();
    let order_id = OrderId::new_random();
    // PointsReserved is stored; a credit commits before the charge is handled.
    let reserved = bench
        .publish(&PointsEvent::PointsReserved(PointsReserved {
            order_id,
            customer_id: customer,
            voucher_code: None,
            lines: vec![OrderLine {
                sku: sku("TOPUP-1"),
                quantity: 1,
                unit_price: money(700),
            }],
            total: money(700),
            discount: money(0),
            points: Points::ZERO,
        }))
        .await?;
    bench
        .say(
            &payment_service::restore::Restorer,
            PaymentEvent::AccountCredited(AccountCredited {
                credit_id: uuid::Uuid::new_v4(),
                customer_id: customer,
                amount: money(1000),
                actor: Actor::anonymous(),
            }),
        )
        .await?;
    let on_points = payment_service::consumers::OnPoints::DURABLE;
    assert_eq!(
        bench.handle(on_points, "POINTS", reserved, 1).await?,
        Disposition::Applied
    );
    bench.relay().await?;

    let (rebuilt, summary) = bench
        .rebuild(|r| {
            payment_service::consumers::wire(r);
            r.restore_with(payment_service::restore::Restorer);
        })
        .await?;
    let summary = summary?;
    assert!(summary.is_clean(), "{summary:#?}");
    bench
        .assert_same(&rebuilt, payment_service::state::TABLES)
        .await
}

#[tokio::test]
async fn a_voucher_issued_after_its_order_was_stored_stays_reserved_and_redeemable_once(
) -> anyhow::Result<()> {
    fn wire(w: &mut LiveWiring) {
        voucher_service::consumers::wire(w);
    }
    let bench = Bench::start(Producer::VOUCHER, &voucher_service::MIGRATIONS, wire).await?;
    let customer = CustomerId::new_random();
    let code = VoucherCode::parse("LATE5").expect("a valid code");
    let created = bench
        .publish(&OrderEvent::OrderCreated(OrderCreated {
            order_id: OrderId::new_random(),
            customer_id: customer,
            lines: vec![OrderLine {
                sku: sku("LATE-1"),
                quantity: 1,
                unit_price: money(900),
            }],
            total: money(900),
            voucher_code: Some(code.clone()),
            points: None,
            deadline: time::OffsetDateTime::now_utc() + time::Duration::minutes(1),
            idempotency_key: None,
        }))
        .await?;
    bench
        .say(
            &voucher_service::restore::Restorer,
            VoucherEvent::VoucherIssued(VoucherIssued {
                code,
                customer_id: customer,
                discount: money(500),
                expires_at: None,
                actor: Actor::anonymous(),
            }),
        )
        .await?;
    let on_orders = voucher_service::consumers::OnOrders::DURABLE;
    assert_eq!(
        bench.handle(on_orders, "ORDERS", created, 1).await?,
        Disposition::Applied
    );
    bench.relay().await?;

    let (rebuilt, summary) = bench
        .rebuild(|r| {
            voucher_service::consumers::wire(r);
            r.restore_with(voucher_service::restore::Restorer);
        })
        .await?;
    let summary = summary?;
    assert!(summary.is_clean(), "{summary:#?}");
    bench
        .assert_same(&rebuilt, voucher_service::state::TABLES)
        .await
}
