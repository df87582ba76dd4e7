//! The payment service under test, started for real by `jetsaga-servicetest`: its own nats-server,
//! its own PostgreSQL database, `payment_service::run` on a free port. Input events are published
//! to JetStream as the points and order services' relays would; what the service says is read
//! from its outbox. Here only what is the payment service's own: its accounts, its payments and the
//! events it consumes.

#![allow(dead_code)]

use anyhow::Context as _;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::points::PointsReserved;
use jetsaga_contracts::{
    CancelReason, CustomerId, Money, OrderEvent, OrderId, OrderLine, Points, PointsEvent, Sku,
};
use jetsaga_servicetest::ServiceUnderTest;
use std::ops::Deref;

/// The running payment service; everything generic comes from [`ServiceUnderTest`].
pub struct PaymentService(ServiceUnderTest);

impl Deref for PaymentService {
    type Target = ServiceUnderTest;

    fn deref(&self) -> &ServiceUnderTest {
        &self.0
    }
}

impl PaymentService {
    pub async fn start() -> anyhow::Result<Self> {
        ServiceUnderTest::start("payment", payment_service::DEFAULTS, payment_service::run)
            .await
            .map(PaymentService)
    }

    /// Stops the service and waits until it has shut down in order.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.0.stop().await
    }

    /// Credits `cents` and insists it was accepted.
    pub async fn credit(&self, customer: CustomerId, cents: i64) -> anyhow::Result<i64> {
        let a = self
            .post(
                &format!("/accounts/{customer}/credit"),
                &format!(r#"{{"amount_cents":{cents}}}"#),
            )
            .await?;
        anyhow::ensure!(a.status == 200, "credit refused: {a:?}");
        a.body["balance_cents"]
            .as_i64()
            .with_context(|| format!("no balance in {a:?}"))
    }

    pub async fn balance(&self, customer: CustomerId) -> anyhow::Result<i64> {
        let a = self.get(&format!("/accounts/{customer}")).await?;
        anyhow::ensure!(a.status == 200, "balance refused: {a:?}");
        a.body["balance_cents"]
            .as_i64()
            .with_context(|| format!("no balance in {a:?}"))
    }

    /// The payment row of an order: (payment_id, amount_cents, status, updated_at >= created_at).
    pub async fn payment(
        &self,
        order: OrderId,
    ) -> anyhow::Result<Option<(uuid::Uuid, i64, String, bool)>> {
        Ok(sqlx::query_as(
            "SELECT payment_id, amount_cents, status, updated_at >= created_at
             FROM payments WHERE order_id = $1",
        )
        .bind(order.as_uuid())
        .fetch_optional(self.db.pool())
        .await?)
    }
}

pub fn cents(c: i64) -> Money {
    Money::from_cents(c).expect("valid money")
}

/// PointsReserved of one line (2 × `total / 2`) for `order` of `customer`, spending no points.
pub fn points_reserved(
    order: OrderId,
    customer: CustomerId,
    total: i64,
    discount: i64,
) -> PointsEvent {
    points_reserved_spending(order, customer, total, discount, 0)
}

/// PointsReserved of one line (2 × `total / 2`) for `order` of `customer`, spending `points`.
pub fn points_reserved_spending(
    order: OrderId,
    customer: CustomerId,
    total: i64,
    discount: i64,
    points: i64,
) -> PointsEvent {
    PointsEvent::PointsReserved(PointsReserved {
        order_id: order,
        customer_id: customer,
        voucher_code: None,
        lines: vec![OrderLine {
            sku: Sku::parse("SKU-1").expect("valid sku"),
            quantity: 2,
            unit_price: cents(total / 2),
        }],
        total: cents(total),
        discount: cents(discount),
        points: Points::new(points).expect("valid points"),
    })
}

pub fn order_cancelled(order: OrderId) -> OrderEvent {
    OrderEvent::OrderCancelled(OrderCancelled {
        order_id: order,
        reason: CancelReason::Timeout,
    })
}

pub const SUCCEEDED: &str = "jetsaga.payments.succeeded.v1";
pub const FAILED: &str = "jetsaga.payments.failed.v1";
pub const REFUNDED: &str = "jetsaga.payments.refunded.v1";
pub const CREDITED: &str = "jetsaga.payments.credited.v1";
