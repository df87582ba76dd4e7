//! The points service started for real per test through [`ServiceUnderTest`], and what is specific
//! to it: awarding points, reading a customer's points, delivering voucher and order events to its
//! consumers.

#![allow(dead_code)]

use jetsaga_contracts::events::order::{OrderCancelled, OrderConfirmed};
use jetsaga_contracts::events::voucher::VoucherReserved;
use jetsaga_contracts::{
    CancelReason, CustomerId, Money, OrderEvent, OrderId, OrderLine, Points, Sku, VoucherEvent,
};
use jetsaga_servicetest::ServiceUnderTest;
use points_service::consumers::{OnOrders, OnVouchers};
use std::ops::Deref;

/// The points service under test; everything generic comes from [`ServiceUnderTest`].
#[derive(Debug)]
pub struct TestService(ServiceUnderTest);

impl Deref for TestService {
    type Target = ServiceUnderTest;

    fn deref(&self) -> &ServiceUnderTest {
        &self.0
    }
}

impl TestService {
    pub async fn start() -> anyhow::Result<Self> {
        ServiceUnderTest::start("points", points_service::DEFAULTS, points_service::run)
            .await
            .map(Self)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.0.stop().await
    }

    /// Awards points that must be accepted.
    pub async fn award_ok(&self, customer: CustomerId, points: i64) -> anyhow::Result<()> {
        let body = serde_json::json!({ "points": points }).to_string();
        let a = self
            .post(&format!("/points/{customer}/award"), &body)
            .await?;
        anyhow::ensure!(
            a.status == 200,
            "awarding {points}: {} {}",
            a.status,
            a.body
        );
        Ok(())
    }

    /// `(available, held)` as `GET /points/{customer}` shows them.
    pub async fn points(&self, customer: CustomerId) -> anyhow::Result<(i64, i64)> {
        let a = self.get(&format!("/points/{customer}")).await?;
        anyhow::ensure!(a.status == 200, "GET points: {} {}", a.status, a.body);
        Ok((
            a.body["available"].as_i64().unwrap_or(-1),
            a.body["held"].as_i64().unwrap_or(-1),
        ))
    }

    /// Injects a voucher event and waits until its consumer has finished it.
    pub async fn deliver_voucher(&self, event: VoucherEvent) -> anyhow::Result<()> {
        let before = self.finished(OnVouchers::DURABLE).await?;
        self.inject(&event).await?;
        self.wait_finished(OnVouchers::DURABLE, before + 1).await
    }

    /// Injects an order event and waits until its consumer has finished it.
    pub async fn deliver_order(&self, event: OrderEvent) -> anyhow::Result<()> {
        let before = self.finished(OnOrders::DURABLE).await?;
        self.inject(&event).await?;
        self.wait_finished(OnOrders::DURABLE, before + 1).await
    }
}

pub fn cents(c: i64) -> Money {
    Money::from_cents(c).expect("valid money")
}

/// The voucher step passed for an order of `total` with `discount`, asking `points`.
pub fn voucher_reserved(
    order_id: OrderId,
    customer_id: CustomerId,
    total: i64,
    discount: i64,
    points: Option<i64>,
) -> VoucherEvent {
    VoucherEvent::VoucherReserved(VoucherReserved {
        order_id,
        customer_id,
        voucher_code: None,
        lines: vec![OrderLine {
            sku: Sku::parse("SKU-1").expect("valid sku"),
            quantity: 1,
            unit_price: cents(total),
        }],
        total: cents(total),
        discount: cents(discount),
        points: points.map(|p| Points::new(p).expect("valid points")),
    })
}

pub fn order_cancelled(order_id: OrderId) -> OrderEvent {
    OrderEvent::OrderCancelled(OrderCancelled {
        order_id,
        reason: CancelReason::PaymentFailed,
    })
}

pub fn order_confirmed(
    order_id: OrderId,
    customer_id: CustomerId,
    total: i64,
    discount: i64,
    points_spent: i64,
) -> OrderEvent {
    OrderEvent::OrderConfirmed(OrderConfirmed {
        order_id,
        customer_id,
        total: cents(total),
        discount: cents(discount),
        voucher_code: None,
        points_spent: Points::new(points_spent).expect("valid points"),
    })
}

pub const AWARDED: &str = "jetsaga.points.awarded.v1";
pub const RESERVED: &str = "jetsaga.points.reserved.v1";
pub const REJECTED: &str = "jetsaga.points.rejected.v1";
pub const RELEASED: &str = "jetsaga.points.released.v1";
pub const EARNED: &str = "jetsaga.points.earned.v1";
