//! The voucher service started for real per test through [`ServiceUnderTest`], and what is
//! specific to it: issuing vouchers, reading their status, delivering order events to its
//! consumer, and the order events and voucher event types the tests use.

#![allow(dead_code)]

use jetsaga_contracts::events::order::{OrderCancelled, OrderConfirmed, OrderCreated};
use jetsaga_contracts::{
    CancelReason, CustomerId, Money, OrderEvent, OrderId, OrderLine, Sku, VoucherCode,
};
use jetsaga_servicetest::ServiceUnderTest;
use serde_json::Value;
use std::ops::Deref;
use voucher_service::consumers::OnOrders;

/// The voucher service under test; everything generic comes from [`ServiceUnderTest`].
#[derive(Debug)]
pub struct TestService(ServiceUnderTest);

impl Deref for TestService {
    type Target = ServiceUnderTest;

    fn deref(&self) -> &ServiceUnderTest {
        &self.0
    }
}

impl TestService {
    /// Ready means migrated, streams provisioned and the consumer started.
    pub async fn start() -> anyhow::Result<Self> {
        ServiceUnderTest::start("voucher", voucher_service::DEFAULTS, voucher_service::run)
            .await
            .map(Self)
    }

    /// [`TestService::start`] with the kit's tables trimmed every `every`.
    pub async fn start_trimming_every(every: std::time::Duration) -> anyhow::Result<Self> {
        ServiceUnderTest::start(
            "voucher",
            voucher_service::DEFAULTS,
            move |mut settings, listener, shutdown| {
                settings.trim_every = Some(every);
                voucher_service::run(settings, listener, shutdown)
            },
        )
        .await
        .map(Self)
    }

    /// Stops the service and waits until it has shut down cleanly.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.0.stop().await
    }

    /// Issues a voucher that must be accepted.
    pub async fn issue_ok(
        &self,
        code: &str,
        customer: CustomerId,
        discount_cents: i64,
        expires_at: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut body = serde_json::json!({
            "code": code, "customer_id": customer, "discount_cents": discount_cents,
        });
        if let Some(at) = expires_at {
            body["expires_at"] = Value::from(at);
        }
        let a = self.post("/vouchers", &body.to_string()).await?;
        anyhow::ensure!(a.status == 201, "issuing {code}: {} {}", a.status, a.body);
        Ok(())
    }

    /// The status `GET /vouchers/{code}` shows.
    pub async fn status(&self, code: &str) -> anyhow::Result<String> {
        let a = self.get(&format!("/vouchers/{code}")).await?;
        anyhow::ensure!(a.status == 200, "GET {code}: {} {}", a.status, a.body);
        Ok(a.body["status"].as_str().unwrap_or_default().to_owned())
    }

    /// Injects an order event and waits until the consumer has applied it. Every delivery has a
    /// fresh event id and waits for the one before, so applying it is one more applied message.
    pub async fn deliver(&self, event: impl Into<OrderEvent>) -> anyhow::Result<()> {
        let before = self.applied(OnOrders::DURABLE).await?;
        self.inject(&event.into()).await?;
        self.wait_applied(OnOrders::DURABLE, before + 1).await
    }
}

pub const ISSUED: &str = "jetsaga.vouchers.issued.v1";
pub const RESERVED: &str = "jetsaga.vouchers.reserved.v1";
pub const REJECTED: &str = "jetsaga.vouchers.rejected.v1";
pub const RELEASED: &str = "jetsaga.vouchers.released.v1";
pub const REDEEMED: &str = "jetsaga.vouchers.redeemed.v1";

/// An order of one line worth `total_cents`, with an optional voucher.
pub fn order_created(
    customer: CustomerId,
    voucher: Option<&str>,
    total_cents: i64,
) -> OrderCreated {
    let total = Money::from_cents(total_cents).expect("valid money");
    OrderCreated {
        order_id: OrderId::new_random(),
        customer_id: customer,
        lines: vec![OrderLine {
            sku: Sku::parse("SKU-1").expect("valid sku"),
            quantity: 1,
            unit_price: total,
        }],
        total,
        voucher_code: voucher.map(|c| VoucherCode::parse(c).expect("valid code")),
        points: None,
        deadline: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
        idempotency_key: None,
    }
}

pub fn order_cancelled(order_id: OrderId) -> OrderCancelled {
    OrderCancelled {
        order_id,
        reason: CancelReason::PaymentFailed,
    }
}

pub fn order_confirmed(created: &OrderCreated, discount_cents: i64) -> OrderConfirmed {
    OrderConfirmed {
        order_id: created.order_id,
        customer_id: created.customer_id,
        total: created.total,
        discount: Money::from_cents(discount_cents).expect("valid money"),
        voucher_code: created.voucher_code.clone(),
        points_spent: jetsaga_contracts::Points::ZERO,
    }
}
