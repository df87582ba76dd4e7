//! The null saga: the ceiling of this machine, measured in the same run.
//!
//! It does the infrastructure work of the real sagas with no service logic: the same local
//! transactions, each with its inbox row, one business row and its outbox rows, and the same
//! JetStream publishes, consumes and acks, through the same saga kit (relay, consumer runner), on
//! its own nats-server and five fresh databases. Each null saga takes the path of the outcome the
//! load's mix drew for it (the SKU says which), as the real one would:
//!
//! | outcome | transactions | publishes |
//! |---|---|---|
//! | confirmed | POST, voucher, points, payment, order ×2, stock, voucher, points | 7 |
//! | voucher_rejected | POST, voucher, order, then voucher, points, payment, stock on the cancellation | 3 |
//! | points_rejected | POST, voucher, points, order, then voucher, points, payment, stock | 4 |
//! | payment_failed | POST, voucher, points, payment, order ×2, then voucher, points, payment, stock | 5 |
//! | stock_failed | POST, voucher, points, payment, order ×2, stock, then voucher, points, payment (refund), stock | 7 |
//!
//! The real services also answer HTTP, check rules and read and write their tables; what they
//! reach of this ceiling is the ratio. (Not mirrored: the redemption of the one in ten confirmed
//! orders that use a voucher.)

use super::drive::Placer;
use super::mix::Outcome;
use anyhow::Context as _;
use jetsaga_contracts::events::{order, payment, points, stock, voucher};
use jetsaga_contracts::{
    CancelReason, CustomerId, EventId, Money, OrderEvent, OrderId, OrderLine, PaymentEvent, Points,
    PointsEvent, Producer, RejectReason, Sku, StockEvent, StockLine, VoucherCode, VoucherEvent,
};
use jetsaga_testkit::{NatsServer, TestDb};
use rand::rngs::StdRng;
use rand::Rng;
use saga_kit::consumer::ConsumerConfig;
use saga_kit::provision::{self, StreamSettings};
use saga_kit::{Consumer, EventContext, Handler, HandlerError, Metrics, Relay, RelayConfig, Route};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The null saga's own server, databases and tasks. Dropping it stops them.
pub struct NullSystem {
    pub nats: NatsServer,
    pub js: async_nats::jetstream::Context,
    /// order, voucher, payment, stock, points.
    pub pools: Vec<PgPool>,
    _dbs: Vec<TestDb>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for NullSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NullSystem")
            .field("nats", &self.nats.url())
            .finish()
    }
}

const BUSINESS_TABLE: &str = "CREATE TABLE IF NOT EXISTS null_business (
    order_id UUID NOT NULL, step TEXT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now())";

async fn business_row(
    tx: &mut PgConnection,
    order_id: OrderId,
    step: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO null_business (order_id, step) VALUES ($1, $2)")
        .bind(order_id.as_uuid())
        .bind(step)
        .execute(tx)
        .await?;
    Ok(())
}

impl NullSystem {
    /// Starts its nats-server (durable: `sync_interval: always`), five databases with `pool_size`
    /// connections each, a relay per database and the consumers, with `concurrency` each.
    pub async fn start(
        durable: bool,
        concurrency: usize,
        pool_size: u32,
    ) -> anyhow::Result<NullSystem> {
        let nats = if durable {
            NatsServer::start_with_config("jetstream { sync_interval: always }").await?
        } else {
            NatsServer::start().await?
        };
        let client = provision::connect(&nats.url(), "jetsaga-bench-null").await?;
        let js = async_nats::jetstream::new(client);
        provision::ensure_streams(&js, &Producer::ALL, &StreamSettings::default()).await?;
        let mut dbs = Vec::new();
        let mut pools = Vec::new();
        for name in [
            "null_order",
            "null_voucher",
            "null_payment",
            "null_stock",
            "null_points",
        ] {
            let db = TestDb::create(name).await?;
            let pool = PgPoolOptions::new()
                .max_connections(pool_size)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        // As the services in the same mode.
                        let commit = if durable { "on" } else { "off" };
                        sqlx::query(&format!("SET synchronous_commit = {commit}"))
                            .execute(conn)
                            .await
                            .map(|_| ())
                    })
                })
                .connect(&db.url())
                .await
                .with_context(|| format!("connecting to the {name} database"))?;
            saga_kit::migrate::migrate(&pool, None).await?;
            sqlx::query(BUSINESS_TABLE).execute(&pool).await?;
            dbs.push(db);
            pools.push(pool);
        }
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let metrics = Arc::new(Metrics::new());
        for pool in &pools {
            let relay = Relay::new(
                pool.clone(),
                js.clone(),
                RelayConfig::default(),
                metrics.clone(),
            );
            tasks.spawn(relay.run(stop.clone()));
        }
        let (order, voucher, payment, stock, points) =
            (&pools[0], &pools[1], &pools[2], &pools[3], &pools[4]);
        let mut spawn = |pool: &PgPool,
                         service,
                         (durable, filters): (&'static str, Vec<&'static str>),
                         run: Box<dyn FnOnce(Consumers) -> ConsumerTask>| {
            let mut config = ConsumerConfig::new(
                service,
                durable,
                filters.iter().map(|s| (*s).to_owned()).collect(),
            );
            config.concurrency = concurrency;
            let parts = Consumers {
                pool: pool.clone(),
                js: js.clone(),
                config,
                metrics: metrics.clone(),
                stop: stop.clone(),
            };
            tasks.spawn(run(parts));
        };
        // The real services' consumers and filters, as the services declare them.
        spawn(
            voucher,
            "voucher",
            declared::<voucher_service::consumers::OnOrders>(),
            Box::new(|c| c.run(VoucherOnOrders)),
        );
        spawn(
            points,
            "points",
            declared::<points_service::consumers::OnVouchers>(),
            Box::new(|c| c.run(PointsOnVouchers)),
        );
        spawn(
            points,
            "points",
            declared::<points_service::consumers::OnOrders>(),
            Box::new(|c| c.run(PointsOnOrders)),
        );
        spawn(
            payment,
            "payment",
            declared::<payment_service::consumers::OnPoints>(),
            Box::new(|c| c.run(PaymentOnPoints)),
        );
        spawn(
            payment,
            "payment",
            declared::<payment_service::consumers::OnOrders>(),
            Box::new(|c| c.run(PaymentOnOrders)),
        );
        spawn(
            order,
            "order",
            declared::<order_service::consumers::OnVouchers>(),
            Box::new(|c| c.run(OrderOnVouchers)),
        );
        spawn(
            order,
            "order",
            declared::<order_service::consumers::OnPoints>(),
            Box::new(|c| c.run(OrderOnPoints)),
        );
        spawn(
            order,
            "order",
            declared::<order_service::consumers::OnPayments>(),
            Box::new(|c| c.run(OrderOnPayments)),
        );
        spawn(
            stock,
            "stock",
            declared::<stock_service::consumers::OnPayments>(),
            Box::new(|c| c.run(StockOnPayments)),
        );
        spawn(
            stock,
            "stock",
            declared::<stock_service::consumers::OnOrders>(),
            Box::new(|c| c.run(StockOnOrders)),
        );
        spawn(
            order,
            "order",
            declared::<order_service::consumers::OnStock>(),
            Box::new(|c| c.run(OrderOnStock)),
        );
        Ok(NullSystem {
            nats,
            js,
            pools,
            _dbs: dbs,
            stop,
            tasks,
        })
    }

    /// The placer that starts a null saga: the order's transaction, straight into its database.
    pub fn placer(&self) -> NullPlacer {
        NullPlacer {
            pool: self.pools[0].clone(),
        }
    }

    /// Stops the relays and consumers.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The durable name and filters a real service declares for this consumer.
fn declared<R: Route>() -> (&'static str, Vec<&'static str>) {
    (R::DURABLE, R::filter_subjects())
}

type ConsumerTask = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a consumer of the null saga is made of.
struct Consumers {
    pool: PgPool,
    js: async_nats::jetstream::Context,
    config: ConsumerConfig,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
}

impl Consumers {
    fn run<H: Handler>(self, handler: H) -> ConsumerTask {
        let consumer = Consumer::new(
            self.pool,
            self.js,
            self.config,
            Arc::new(handler),
            self.metrics,
        );
        Box::pin(consumer.run(self.stop))
    }
}

/// Starts a null saga: one transaction with a business row and OrderCreated in the outbox.
#[derive(Debug, Clone)]
pub struct NullPlacer {
    pool: PgPool,
}

impl Placer for NullPlacer {
    fn place(
        &self,
        outcome: Outcome,
        rng: &mut StdRng,
    ) -> impl Future<Output = anyhow::Result<Uuid>> + Send {
        let order_id = OrderId::new_random();
        let quantity = rng.random_range(1..=3);
        let pool = self.pool.clone();
        async move {
            let event = OrderEvent::OrderCreated(order::OrderCreated {
                order_id,
                customer_id: CustomerId::new_random(),
                lines: vec![OrderLine {
                    sku: Sku::parse(path_sku(outcome))?,
                    quantity,
                    unit_price: Money::from_cents(100)?,
                }],
                total: Money::from_cents(100 * i64::from(quantity))?,
                voucher_code: None,
                points: None,
                deadline: time::OffsetDateTime::now_utc() + time::Duration::seconds(30),
                idempotency_key: None,
            });
            let mut tx = pool.begin().await?;
            business_row(&mut tx, order_id, "created").await?;
            saga_kit::outbox::emit_root(&mut tx, EventId::new_random(), &event).await?;
            tx.commit().await?;
            Ok(*order_id.as_uuid())
        }
    }
}

macro_rules! null_handler {
    ($name:ident, $input:ty, $output:ty, |$tx:ident, $event:ident| $body:expr) => {
        /// A null step: a business row and the next event, nothing else.
        #[derive(Debug, Clone, Copy)]
        struct $name;

        impl Handler for $name {
            type Input = $input;
            type Output = $output;

            async fn handle(
                &self,
                $tx: &mut PgConnection,
                $event: $input,
                _ctx: &EventContext,
            ) -> Result<Vec<$output>, HandlerError> {
                Ok($body)
            }
        }
    };
}

/// The SKU that tells the null handlers which path a saga takes.
fn path_sku(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Confirmed => "NULL-CONFIRMED",
        Outcome::VoucherRejected => "NULL-VOUCHER-REJECTED",
        Outcome::PointsRejected => "NULL-POINTS-REJECTED",
        Outcome::PaymentFailed => "NULL-PAYMENT-FAILED",
        Outcome::StockFailed => "NULL-STOCK-FAILED",
    }
}

fn takes(lines: &[OrderLine], outcome: Outcome) -> bool {
    lines
        .first()
        .is_some_and(|l| l.sku.as_str() == path_sku(outcome))
}

fn cancelled(order_id: OrderId, reason: CancelReason) -> OrderEvent {
    OrderEvent::OrderCancelled(order::OrderCancelled { order_id, reason })
}

null_handler!(
    VoucherOnOrders,
    OrderEvent,
    VoucherEvent,
    |tx, event| match event {
        OrderEvent::OrderCreated(e) => {
            business_row(tx, e.order_id, "voucher").await?;
            if takes(&e.lines, Outcome::VoucherRejected) {
                vec![VoucherEvent::VoucherRejected(voucher::VoucherRejected {
                    order_id: e.order_id,
                    voucher_code: VoucherCode::parse("NULL")
                        .map_err(|e| HandlerError::permanent(e.to_string()))?,
                    reason: RejectReason::Unknown,
                })]
            } else {
                vec![VoucherEvent::VoucherReserved(voucher::VoucherReserved {
                    order_id: e.order_id,
                    customer_id: e.customer_id,
                    voucher_code: None,
                    lines: e.lines,
                    total: e.total,
                    discount: Money::ZERO,
                    points: None,
                })]
            }
        }
        OrderEvent::OrderConfirmed(e) => {
            business_row(tx, e.order_id, "voucher-confirmed").await?;
            vec![]
        }
        OrderEvent::OrderCancelled(e) => {
            business_row(tx, e.order_id, "voucher-cancelled").await?;
            vec![]
        }
        _ => vec![],
    }
);

null_handler!(
    PointsOnVouchers,
    VoucherEvent,
    PointsEvent,
    |tx, event| match event {
        VoucherEvent::VoucherReserved(e) if takes(&e.lines, Outcome::PointsRejected) => {
            business_row(tx, e.order_id, "points").await?;
            vec![PointsEvent::PointsRejected(points::PointsRejected {
                order_id: e.order_id,
                customer_id: e.customer_id,
                requested: Points::ZERO,
                reason: jetsaga_contracts::PointsRejectReason::InsufficientPoints,
            })]
        }
        VoucherEvent::VoucherReserved(e) => {
            business_row(tx, e.order_id, "points").await?;
            vec![PointsEvent::PointsReserved(points::PointsReserved {
                order_id: e.order_id,
                customer_id: e.customer_id,
                voucher_code: None,
                lines: e.lines,
                total: e.total,
                discount: Money::ZERO,
                points: Points::ZERO,
            })]
        }
        _ => vec![],
    }
);

null_handler!(
    PointsOnOrders,
    OrderEvent,
    PointsEvent,
    |tx, event| match event {
        OrderEvent::OrderConfirmed(e) => {
            business_row(tx, e.order_id, "points-confirmed").await?;
            vec![PointsEvent::PointsEarned(points::PointsEarned {
                order_id: e.order_id,
                customer_id: e.customer_id,
                spent: Points::ZERO,
                earned: Points::ZERO,
            })]
        }
        OrderEvent::OrderCancelled(e) => {
            business_row(tx, e.order_id, "points-cancelled").await?;
            vec![]
        }
        _ => vec![],
    }
);

null_handler!(
    PaymentOnPoints,
    PointsEvent,
    PaymentEvent,
    |tx, event| match event {
        PointsEvent::PointsReserved(e) => {
            business_row(tx, e.order_id, "payment").await?;
            if takes(&e.lines, Outcome::PaymentFailed) {
                vec![PaymentEvent::PaymentFailed(payment::PaymentFailed {
                    order_id: e.order_id,
                    customer_id: e.customer_id,
                    amount: e.total,
                })]
            } else {
                vec![PaymentEvent::PaymentSucceeded(payment::PaymentSucceeded {
                    order_id: e.order_id,
                    payment_id: *e.order_id.as_uuid(),
                    customer_id: e.customer_id,
                    amount: e.total,
                    lines: e.lines,
                })]
            }
        }
        _ => vec![],
    }
);

null_handler!(
    PaymentOnOrders,
    OrderEvent,
    PaymentEvent,
    |tx, event| match event {
        OrderEvent::OrderCancelled(e) => {
            business_row(tx, e.order_id, "payment-cancelled").await?;
            // Only a stock failure comes after a charge, which is refunded.
            if e.reason == CancelReason::StockFailed {
                vec![PaymentEvent::PaymentRefunded(payment::PaymentRefunded {
                    order_id: e.order_id,
                    payment_id: *e.order_id.as_uuid(),
                    customer_id: CustomerId::from_uuid(*e.order_id.as_uuid()),
                    amount: Money::ZERO,
                })]
            } else {
                vec![]
            }
        }
        _ => vec![],
    }
);

null_handler!(
    OrderOnVouchers,
    VoucherEvent,
    OrderEvent,
    |tx, event| match event {
        VoucherEvent::VoucherRejected(e) => {
            business_row(tx, e.order_id, "order-cancel").await?;
            vec![cancelled(e.order_id, CancelReason::VoucherRejected)]
        }
        _ => vec![],
    }
);

null_handler!(
    OrderOnPoints,
    PointsEvent,
    OrderEvent,
    |tx, event| match event {
        PointsEvent::PointsReserved(e) => {
            business_row(tx, e.order_id, "order-discount").await?;
            vec![]
        }
        PointsEvent::PointsRejected(e) => {
            business_row(tx, e.order_id, "order-cancel").await?;
            vec![cancelled(e.order_id, CancelReason::PointsRejected)]
        }
        _ => vec![],
    }
);

null_handler!(
    OrderOnPayments,
    PaymentEvent,
    OrderEvent,
    |tx, event| match event {
        PaymentEvent::PaymentFailed(e) => {
            business_row(tx, e.order_id, "order-cancel").await?;
            vec![cancelled(e.order_id, CancelReason::PaymentFailed)]
        }
        _ => vec![],
    }
);

null_handler!(
    StockOnPayments,
    PaymentEvent,
    StockEvent,
    |tx, event| match event {
        PaymentEvent::PaymentSucceeded(e) => {
            business_row(tx, e.order_id, "stock").await?;
            if takes(&e.lines, Outcome::StockFailed) {
                let line = &e.lines[0];
                vec![StockEvent::StockFailed(stock::StockFailed {
                    order_id: e.order_id,
                    sku: line.sku.clone(),
                    requested: line.quantity,
                    available: 0,
                })]
            } else {
                vec![StockEvent::StockReserved(stock::StockReserved {
                    order_id: e.order_id,
                    lines: e
                        .lines
                        .into_iter()
                        .map(|l| StockLine {
                            sku: l.sku,
                            quantity: l.quantity,
                        })
                        .collect(),
                })]
            }
        }
        _ => vec![],
    }
);

null_handler!(
    StockOnOrders,
    OrderEvent,
    StockEvent,
    |tx, event| match event {
        OrderEvent::OrderCancelled(e) => {
            business_row(tx, e.order_id, "stock-cancelled").await?;
            vec![]
        }
        _ => vec![],
    }
);

null_handler!(
    OrderOnStock,
    StockEvent,
    OrderEvent,
    |tx, event| match event {
        StockEvent::StockReserved(e) => {
            business_row(tx, e.order_id, "order-confirm").await?;
            vec![OrderEvent::OrderConfirmed(order::OrderConfirmed {
                order_id: e.order_id,
                customer_id: CustomerId::from_uuid(*e.order_id.as_uuid()),
                total: Money::ZERO,
                discount: Money::ZERO,
                voucher_code: None,
                points_spent: Points::ZERO,
            })]
        }
        StockEvent::StockFailed(e) => {
            business_row(tx, e.order_id, "order-cancel").await?;
            vec![cancelled(e.order_id, CancelReason::StockFailed)]
        }
        _ => vec![],
    }
);
