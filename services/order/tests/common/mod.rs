//! The order service under test, on the shared harness ([`ServiceUnderTest`]): its configuration,
//! its products and orders, and the other services' answers about an order. Two things here are
//! the order service's because the shared harness lacks them: requests with headers of their own
//! (`Idempotency-Key`) and the outbox's event ids.

#![allow(dead_code)]

use anyhow::Context as _;
use jetsaga_contracts::events::order::OrderCreated;
use jetsaga_contracts::events::payment::PaymentFailed;
use jetsaga_contracts::events::points::PointsReserved;
use jetsaga_contracts::events::stock::StockReserved;
use jetsaga_contracts::{Money, OrderId, PaymentEvent, PointsEvent, StockEvent, StockLine};
use jetsaga_testkit::wait_for;
use order_service::Config;
use saga_kit::Envelope;
use serde_json::{json, Value};
use std::ops::Deref;

pub use jetsaga_servicetest::{Answer, ServiceUnderTest, WAIT};

/// The order service under test; everything the shared harness offers is reached through it.
#[derive(Debug)]
pub struct App {
    service: ServiceUnderTest,
}

impl Deref for App {
    type Target = ServiceUnderTest;

    fn deref(&self) -> &ServiceUnderTest {
        &self.service
    }
}

impl App {
    pub async fn start() -> anyhow::Result<App> {
        Self::start_with(|_| {}).await
    }

    /// Starts the service with `tweak` applied to its default configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> anyhow::Result<App> {
        let service = ServiceUnderTest::start(
            "order",
            order_service::DEFAULTS,
            |settings, listener, shutdown| {
                let mut config = Config::new(settings);
                tweak(&mut config);
                order_service::run(config, listener, shutdown)
            },
        )
        .await?;
        Ok(App { service })
    }

    /// Stops the service and waits until it has shut down in order.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.service.stop().await
    }

    pub async fn put_product(&self, sku: &str, price_cents: i64) -> anyhow::Result<()> {
        let body = json!({ "name": format!("product {sku}"), "price_cents": price_cents });
        let a = self
            .put(&format!("/products/{sku}"), &body.to_string())
            .await?;
        anyhow::ensure!(
            a.status == 200,
            "PUT product {sku}: {} {}",
            a.status,
            a.body
        );
        Ok(())
    }

    pub async fn post_order(
        &self,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let headers: Vec<(&str, &str)> = idempotency_key
            .map(|key| ("Idempotency-Key", key))
            .into_iter()
            .collect();
        self.request_with_headers(
            reqwest::Method::POST,
            "/orders",
            &headers,
            Some("application/json"),
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// Places an order that must be accepted and returns its id.
    pub async fn place_order(&self, body: &Value) -> anyhow::Result<OrderId> {
        let a = self.post_order(body, None).await?;
        anyhow::ensure!(a.status == 202, "POST /orders: {} {}", a.status, a.body);
        a.body["order_id"]
            .as_str()
            .context("order_id in the answer")?
            .parse()
            .context("order_id is a UUID")
    }

    pub async fn order(&self, id: OrderId) -> anyhow::Result<Value> {
        let a = self.get(&format!("/orders/{id}")).await?;
        anyhow::ensure!(a.status == 200, "GET order {id}: {} {}", a.status, a.body);
        Ok(a.body)
    }

    /// Waits until the order has `status` and returns it.
    pub async fn wait_status(&self, id: OrderId, status: &str) -> anyhow::Result<Value> {
        wait_for(&format!("order {id} to be {status}"), WAIT, || async {
            self.order(id).await.ok().filter(|o| o["status"] == status)
        })
        .await
    }

    /// The outbox events of one type about one order: (event id, payload).
    pub async fn emitted_for(
        &self,
        ce_type: &str,
        order_id: OrderId,
    ) -> anyhow::Result<Vec<(uuid::Uuid, Value)>> {
        Ok(self
            .outbox()
            .await?
            .into_iter()
            .filter(|(t, _, p)| t == ce_type && p["order_id"] == order_id.to_string())
            .map(|(_, id, p)| (id, p))
            .collect())
    }

    /// The order as its OrderCreated says it, from the outbox.
    pub async fn created(&self, id: OrderId) -> anyhow::Result<OrderCreated> {
        let (_, payload) = self
            .emitted_for("jetsaga.orders.created.v1", id)
            .await?
            .into_iter()
            .next()
            .context("OrderCreated in the outbox")?;
        Ok(serde_json::from_value(payload)?)
    }

    /// What the points service says when the voucher step passed with `discount` and the points
    /// step with the points the order asked (none in these tests).
    pub async fn points_reserved(&self, id: OrderId, discount: i64) -> anyhow::Result<Envelope> {
        let c = self.created(id).await?;
        self.inject(&PointsEvent::PointsReserved(PointsReserved {
            order_id: id,
            customer_id: c.customer_id,
            voucher_code: c.voucher_code,
            lines: c.lines,
            total: c.total,
            discount: Money::from_cents(discount)?,
            points: c.points.unwrap_or_default(),
        }))
        .await
    }

    /// What the stock service says when every line is held.
    pub async fn stock_reserved(&self, id: OrderId) -> anyhow::Result<Envelope> {
        let c = self.created(id).await?;
        self.inject(&StockEvent::StockReserved(StockReserved {
            order_id: id,
            lines: c
                .lines
                .into_iter()
                .map(|l| StockLine {
                    sku: l.sku,
                    quantity: l.quantity,
                })
                .collect(),
        }))
        .await
    }

    /// What the payment service says when the balance is too low.
    pub async fn payment_failed(&self, id: OrderId) -> anyhow::Result<Envelope> {
        let c = self.created(id).await?;
        self.inject(&PaymentEvent::PaymentFailed(PaymentFailed {
            order_id: id,
            customer_id: c.customer_id,
            amount: c.total,
        }))
        .await
    }
}

/// An order body for a random customer.
pub fn order_body(items: &[(&str, i64)]) -> Value {
    json!({
        "customer_id": uuid::Uuid::new_v4(),
        "items": items.iter().map(|(sku, q)| json!({"sku": sku, "quantity": q})).collect::<Vec<_>>(),
    })
}
