//! The null saga: the ceiling of this machine, measured in the same run.
//!
//! It does the infrastructure work of a confirmed saga with no service logic: the same local
//! transactions, each with its inbox row, one business row and its outbox rows, and the same
//! JetStream publishes, consumes and acks, through the same saga kit (relay, consumer runner), on
//! its own nats-server and four fresh databases. Per saga, as the real happy path without a
//! voucher:
//!
//! | transaction | consumes | emits |
//! |---|---|---|
//! | order (the POST) | | OrderCreated |
//! | voucher | OrderCreated | VoucherReserved |
//! | payment | VoucherReserved | PaymentSucceeded |
//! | order | VoucherReserved | |
//! | stock | PaymentSucceeded | StockReserved |
//! | order | StockReserved | OrderConfirmed |
//! | voucher | OrderConfirmed | |
//!
//! Seven transactions, five publishes, six consumes and acks. The real services also answer HTTP,
//! check rules and read and write their tables; what they reach of this ceiling is the ratio.

use super::drive::Placer;
use super::mix::Outcome;
use anyhow::Context as _;
use jetsaga_contracts::events::{order, payment, stock, voucher};
use jetsaga_contracts::{
    CustomerId, EventId, Money, OrderEvent, OrderId, OrderLine, PaymentEvent, Sku, StockEvent,
    StockLine, VoucherEvent,
};
use jetsaga_testkit::{NatsServer, TestDb};
use rand::rngs::StdRng;
use rand::Rng;
use saga_kit::consumer::ConsumerConfig;
use saga_kit::provision::{self, StreamSettings};
use saga_kit::{Consumer, EventContext, Handler, HandlerError, Metrics, Relay, RelayConfig};
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
    /// order, voucher, payment, stock.
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
    /// Starts its nats-server (durable: `sync_interval: always`), four databases, a relay per
    /// database and the six consumers, with the services' default pool size and concurrency.
    pub async fn start(durable: bool, concurrency: usize) -> anyhow::Result<NullSystem> {
        let nats = if durable {
            NatsServer::start_with_config("jetstream { sync_interval: always }").await?
        } else {
            NatsServer::start().await?
        };
        let client = provision::connect(&nats.url(), "jetsaga-bench-null").await?;
        let js = async_nats::jetstream::new(client);
        provision::ensure_streams(&js, &StreamSettings::default()).await?;
        let mut dbs = Vec::new();
        let mut pools = Vec::new();
        for name in ["null_order", "null_voucher", "null_payment", "null_stock"] {
            let db = TestDb::create(name).await?;
            let pool = PgPoolOptions::new()
                .max_connections(20)
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
        let (order, voucher, payment, stock) = (&pools[0], &pools[1], &pools[2], &pools[3]);
        let mut spawn = |pool: &PgPool,
                         service,
                         durable,
                         filters: &[&str],
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
        spawn(
            voucher,
            "voucher",
            "voucher-on-orders",
            &["orders.created.*", "orders.confirmed.*"],
            Box::new(|c| c.run(VoucherOnOrders)),
        );
        spawn(
            payment,
            "payment",
            "payment-on-vouchers",
            &["vouchers.reserved.*"],
            Box::new(|c| c.run(PaymentOnVouchers)),
        );
        spawn(
            order,
            "order",
            "order-on-vouchers",
            &["vouchers.reserved.*"],
            Box::new(|c| c.run(OrderOnVouchers)),
        );
        spawn(
            stock,
            "stock",
            "stock-on-payments",
            &["payments.succeeded.*"],
            Box::new(|c| c.run(StockOnPayments)),
        );
        spawn(
            order,
            "order",
            "order-on-stock",
            &["stock.reserved.*"],
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
        _outcome: Outcome,
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
                    sku: Sku::parse("NULL-1")?,
                    quantity,
                    unit_price: Money::from_cents(100)?,
                }],
                total: Money::from_cents(100 * i64::from(quantity))?,
                voucher_code: None,
                deadline: time::OffsetDateTime::now_utc() + time::Duration::seconds(30),
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

null_handler!(
    VoucherOnOrders,
    OrderEvent,
    VoucherEvent,
    |tx, event| match event {
        OrderEvent::OrderCreated(e) => {
            business_row(tx, e.order_id, "voucher").await?;
            vec![VoucherEvent::VoucherReserved(voucher::VoucherReserved {
                order_id: e.order_id,
                customer_id: e.customer_id,
                voucher_code: None,
                lines: e.lines,
                total: e.total,
                discount: Money::ZERO,
            })]
        }
        OrderEvent::OrderConfirmed(e) => {
            business_row(tx, e.order_id, "voucher-confirmed").await?;
            vec![]
        }
        _ => vec![],
    }
);

null_handler!(
    PaymentOnVouchers,
    VoucherEvent,
    PaymentEvent,
    |tx, event| match event {
        VoucherEvent::VoucherReserved(e) => {
            business_row(tx, e.order_id, "payment").await?;
            vec![PaymentEvent::PaymentSucceeded(payment::PaymentSucceeded {
                order_id: e.order_id,
                payment_id: *e.order_id.as_uuid(),
                customer_id: e.customer_id,
                amount: e.total,
                lines: e.lines,
            })]
        }
        _ => vec![],
    }
);

null_handler!(
    OrderOnVouchers,
    VoucherEvent,
    OrderEvent,
    |tx, event| match event {
        VoucherEvent::VoucherReserved(e) => {
            business_row(tx, e.order_id, "order-discount").await?;
            vec![]
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
            })]
        }
        _ => vec![],
    }
);
