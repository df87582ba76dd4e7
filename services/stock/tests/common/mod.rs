//! The stock service under test, on [`jetsaga_servicetest::ServiceUnderTest`], with what only the
//! stock service has: its adjust and stock endpoints, its events decoded as [`StockEvent`], its
//! reservations table, and builders of the events it takes in.

#![allow(dead_code)]

use anyhow::{bail, Context as _};
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::payment::PaymentSucceeded;
use jetsaga_contracts::{
    CancelReason, CustomerId, EventSet, Money, OrderEvent, OrderId, OrderLine, PaymentEvent, Sku,
    StockEvent,
};
use jetsaga_servicetest::{Answer, ServiceUnderTest, WAIT};
use std::ops::Deref;

/// The running stock service; everything generic comes from [`ServiceUnderTest`] through `Deref`.
#[derive(Debug)]
pub struct StockService(ServiceUnderTest);

impl Deref for StockService {
    type Target = ServiceUnderTest;

    fn deref(&self) -> &ServiceUnderTest {
        &self.0
    }
}

impl StockService {
    /// Starts the service and waits until `/health` says it is ready.
    pub async fn start() -> anyhow::Result<Self> {
        let service =
            ServiceUnderTest::start("stock", stock_service::DEFAULTS, stock_service::run).await?;
        Ok(Self(service))
    }

    /// Stops the service and waits, at most [`WAIT`], for it to finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.0.stop().await
    }

    /// `POST /stock/{sku}/adjust` `{"delta": delta}`.
    pub async fn adjust(&self, sku: &str, delta: i64) -> anyhow::Result<Answer> {
        self.post(
            &format!("/stock/{sku}/adjust"),
            &serde_json::json!({ "delta": delta }).to_string(),
        )
        .await
    }

    /// Adjusts and insists on success.
    pub async fn add_stock(&self, sku: &str, delta: i64) -> anyhow::Result<()> {
        let Answer { status, body } = self.adjust(sku, delta).await?;
        if status != 200 {
            bail!("adjusting {sku} by {delta} answered {status} {body}");
        }
        Ok(())
    }

    /// `(available, reserved)` of a SKU, read through the API.
    pub async fn stock(&self, sku: &str) -> anyhow::Result<(i64, i64)> {
        let Answer { status, body } = self.get(&format!("/stock/{sku}")).await?;
        if status != 200 {
            bail!("GET /stock/{sku} answered {status} {body}");
        }
        Ok((
            body["available"].as_i64().context("available")?,
            body["reserved"].as_i64().context("reserved")?,
        ))
    }

    /// Every event the service emitted, in outbox order, decoded.
    pub async fn emitted_events(&self) -> anyhow::Result<Vec<StockEvent>> {
        self.emitted()
            .await?
            .into_iter()
            .map(|(ce_type, payload)| {
                StockEvent::from_payload(&ce_type, &serde_json::to_vec(&payload)?)
                    .context("decoding an outbox event")
            })
            .collect()
    }

    /// The events about the order `order_id`.
    pub async fn emitted_for(&self, order_id: OrderId) -> anyhow::Result<Vec<StockEvent>> {
        Ok(self
            .emitted_events()
            .await?
            .into_iter()
            .filter(|e| e.key() == order_id.to_string())
            .collect())
    }

    /// Waits until the service has emitted `n` events about `order_id`, and returns them.
    pub async fn wait_emitted_for(
        &self,
        order_id: OrderId,
        n: usize,
    ) -> anyhow::Result<Vec<StockEvent>> {
        jetsaga_testkit::wait_for(
            &format!("{n} stock events of order {order_id}"),
            WAIT,
            || async {
                let events = self.emitted_for(order_id).await.ok()?;
                (events.len() >= n).then_some(events)
            },
        )
        .await
    }

    /// `(sku, quantity, status)` of every reservation of `order_id`.
    pub async fn reservations(
        &self,
        order_id: OrderId,
    ) -> anyhow::Result<Vec<(String, i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT sku, quantity, status FROM reservations WHERE order_id = $1 ORDER BY sku",
        )
        .bind(order_id.as_uuid())
        .fetch_all(self.db.pool())
        .await?)
    }
}

/// A PaymentSucceeded for `order_id` with these `(sku, quantity)` lines.
pub fn paid(order_id: OrderId, lines: &[(&str, u32)]) -> PaymentEvent {
    let lines: Vec<OrderLine> = lines
        .iter()
        .map(|(sku, quantity)| OrderLine {
            sku: Sku::parse(*sku).expect("test skus are valid"),
            quantity: *quantity,
            unit_price: Money::from_cents(100).expect("valid money"),
        })
        .collect();
    let total: i64 = lines.iter().map(|l| 100 * i64::from(l.quantity)).sum();
    PaymentEvent::PaymentSucceeded(PaymentSucceeded {
        order_id,
        payment_id: uuid::Uuid::new_v4(),
        customer_id: CustomerId::new_random(),
        amount: Money::from_cents(total).expect("valid money"),
        lines,
    })
}

/// An OrderCancelled for `order_id`.
pub fn cancelled(order_id: OrderId, reason: CancelReason) -> OrderEvent {
    OrderEvent::OrderCancelled(OrderCancelled { order_id, reason })
}
