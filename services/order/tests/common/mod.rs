//! The order service under test: a real nats-server, a fresh PostgreSQL database, the service's
//! `run` on a free port, an HTTP client, and a way to inject the other services' events as their
//! relays would publish them.

#![allow(dead_code)]

use anyhow::Context as _;
use async_nats::jetstream;
use jetsaga_contracts::events::order::OrderCreated;
use jetsaga_contracts::events::payment::PaymentFailed;
use jetsaga_contracts::events::stock::StockReserved;
use jetsaga_contracts::events::voucher::VoucherReserved;
use jetsaga_contracts::{
    EventId, EventSet, Money, OrderId, PaymentEvent, StockEvent, StockLine, VoucherEvent,
};
use jetsaga_testkit::{wait_for, wait_until, NatsServer, TestDb};
use order_service::Config;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a test waits for anything asynchronous.
pub const WAIT: Duration = Duration::from_secs(15);

pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    pub js: jetstream::Context,
    pub db: TestDb,
    pub nats: NatsServer,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl App {
    pub async fn start() -> anyhow::Result<App> {
        Self::start_with(|_| {}).await
    }

    /// Starts the service with `tweak` applied to its default configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> anyhow::Result<App> {
        jetsaga_testkit::init_tracing();
        let nats = NatsServer::start().await?;
        let db = TestDb::create("order").await?;
        let mut settings = jetsaga_runtime::Settings::with_defaults(order_service::DEFAULTS);
        settings.database_url = db.url();
        settings.nats_url = nats.url();
        settings.db_max_connections = 8;
        let mut config = Config::new(settings);
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                if let Err(e) = order_service::run(config, listener, shutdown).await {
                    panic!("the order service failed: {e}");
                }
            }
        });
        let client = async_nats::connect(nats.url()).await?;
        let app = App {
            base,
            http: reqwest::Client::new(),
            js: jetstream::new(client),
            db,
            nats,
            shutdown,
            task: Some(task),
        };
        wait_until("the order service to be ready", WAIT, || async {
            matches!(app.http.get(app.url("/health")).send().await, Ok(r) if r.status() == StatusCode::OK)
        })
        .await?;
        Ok(app)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the service and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await?;
        }
        Ok(())
    }

    async fn answer(response: reqwest::Response) -> anyhow::Result<(StatusCode, Value)> {
        let status = response.status();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        Self::answer(self.http.get(self.url(path)).send().await?).await
    }

    pub async fn put_product(&self, sku: &str, price_cents: i64) -> anyhow::Result<()> {
        let (status, body) = Self::answer(
            self.http
                .put(self.url(&format!("/products/{sku}")))
                .json(&json!({ "name": format!("product {sku}"), "price_cents": price_cents }))
                .send()
                .await?,
        )
        .await?;
        anyhow::ensure!(
            status == StatusCode::OK,
            "PUT product {sku}: {status} {body}"
        );
        Ok(())
    }

    pub async fn post_order(
        &self,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self.http.post(self.url("/orders")).json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        Self::answer(request.send().await?).await
    }

    /// Places an order that must be accepted and returns its id.
    pub async fn place_order(&self, body: &Value) -> anyhow::Result<OrderId> {
        let (status, answer) = self.post_order(body, None).await?;
        anyhow::ensure!(
            status == StatusCode::ACCEPTED,
            "POST /orders: {status} {answer}"
        );
        answer["order_id"]
            .as_str()
            .context("order_id in the answer")?
            .parse()
            .context("order_id is a UUID")
    }

    pub async fn order(&self, id: OrderId) -> anyhow::Result<Value> {
        let (status, body) = self.get(&format!("/orders/{id}")).await?;
        anyhow::ensure!(status == StatusCode::OK, "GET order {id}: {status} {body}");
        Ok(body)
    }

    /// Waits until the order has `status` and returns it.
    pub async fn wait_status(&self, id: OrderId, status: &str) -> anyhow::Result<Value> {
        wait_for(&format!("order {id} to be {status}"), WAIT, || async {
            self.order(id).await.ok().filter(|o| o["status"] == status)
        })
        .await
    }

    /// Publishes `event` to its producer's stream as that producer's relay would, and returns its id.
    pub async fn inject<E: EventSet>(&self, event: &E) -> anyhow::Result<EventId> {
        let env = saga_kit::Envelope::root(EventId::new_random(), event);
        let publish = jetstream::message::PublishMessage::build()
            .payload(env.payload.clone())
            .headers(saga_kit::envelope::header_map(&env.headers_json()))
            .message_id(env.id.to_string());
        self.js
            .send_publish(env.subject.clone(), publish)
            .await?
            .await?;
        Ok(env.id)
    }

    /// The events in the outbox, oldest first: (ce-type, event id, payload).
    pub async fn outbox(&self) -> anyhow::Result<Vec<(String, uuid::Uuid, Value)>> {
        let rows: Vec<(String, uuid::Uuid, Vec<u8>)> =
            sqlx::query_as("SELECT ce_type, event_id, payload FROM kit_outbox ORDER BY id")
                .fetch_all(self.db.pool())
                .await?;
        rows.into_iter()
            .map(|(t, id, p)| Ok((t, id, serde_json::from_slice(&p)?)))
            .collect()
    }

    /// The outbox events of one type about one order.
    pub async fn emitted(
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

    pub async fn count(&self, table: &str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(self.db.pool())
            .await?)
    }

    /// `/metrics` as text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(self.url("/metrics"))
            .send()
            .await?
            .text()
            .await?)
    }

    /// The value of one metric line (`name{labels}`), 0 when absent.
    pub async fn metric(&self, series: &str) -> anyhow::Result<u64> {
        let text = self.metrics().await?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0))
    }

    /// Waits until the consumer has handled (applied) `n` events.
    pub async fn wait_handled(&self, consumer: &str, n: u64) -> anyhow::Result<()> {
        let series = format!("jetsaga_events_handled_total{{consumer=\"{consumer}\"}}");
        wait_until(
            &format!("{consumer} to handle {n} events"),
            WAIT,
            || async { self.metric(&series).await.unwrap_or(0) >= n },
        )
        .await
    }

    /// The order as its OrderCreated says it, from the outbox.
    pub async fn created(&self, id: OrderId) -> anyhow::Result<OrderCreated> {
        let (_, payload) = self
            .emitted("jetsaga.orders.created.v1", id)
            .await?
            .into_iter()
            .next()
            .context("OrderCreated in the outbox")?;
        Ok(serde_json::from_value(payload)?)
    }

    /// What the voucher service says when the voucher step passes with `discount`.
    pub async fn voucher_reserved(&self, id: OrderId, discount: i64) -> anyhow::Result<EventId> {
        let c = self.created(id).await?;
        self.inject(&VoucherEvent::VoucherReserved(VoucherReserved {
            order_id: id,
            customer_id: c.customer_id,
            voucher_code: c.voucher_code,
            lines: c.lines,
            total: c.total,
            discount: Money::from_cents(discount)?,
        }))
        .await
    }

    /// What the stock service says when every line is held.
    pub async fn stock_reserved(&self, id: OrderId) -> anyhow::Result<EventId> {
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
    pub async fn payment_failed(&self, id: OrderId) -> anyhow::Result<EventId> {
        let c = self.created(id).await?;
        self.inject(&PaymentEvent::PaymentFailed(PaymentFailed {
            order_id: id,
            customer_id: c.customer_id,
            amount: c.total,
        }))
        .await
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An order body for a random customer.
pub fn order_body(items: &[(&str, i64)]) -> Value {
    json!({
        "customer_id": uuid::Uuid::new_v4(),
        "items": items.iter().map(|(sku, q)| json!({"sku": sku, "quantity": q})).collect::<Vec<_>>(),
    })
}
