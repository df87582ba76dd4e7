//! A voucher service started for real per test: its own nats-server and PostgreSQL database, HTTP
//! on a free port, and helpers to call the API, inject order events and read what it emitted.

#![allow(dead_code)]

use anyhow::Context as _;
use async_nats::jetstream;
use jetsaga_contracts::events::order::{OrderCancelled, OrderConfirmed, OrderCreated};
use jetsaga_contracts::{
    CancelReason, CustomerId, EventId, Money, OrderEvent, OrderId, OrderLine, Sku, VoucherCode,
};
use jetsaga_testkit::{wait_until, NatsServer, TestDb};
use saga_kit::Envelope;
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use voucher_service::consumers::ON_ORDERS;

/// How long a test waits for the service to react.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct TestService {
    pub base: String,
    pub http: reqwest::Client,
    pub js: jetstream::Context,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), jetsaga_runtime::ServiceError>>>,
    // Dropped last: the service above still uses them.
    pub db: TestDb,
    pub nats: NatsServer,
}

impl TestService {
    pub async fn start() -> anyhow::Result<Self> {
        jetsaga_testkit::init_tracing();
        let nats = NatsServer::start().await?;
        let db = TestDb::create("voucher").await?;
        let mut settings = jetsaga_runtime::Settings::with_defaults(voucher_service::DEFAULTS);
        settings.database_url = db.url();
        settings.nats_url = nats.url();
        settings.db_max_connections = 5;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(voucher_service::run(settings, listener, shutdown.clone()));
        let http = reqwest::Client::new();
        let client = nats.connect().await?;
        let js = jetstream::new(client);
        let svc = TestService {
            base,
            http,
            js,
            shutdown,
            task: Some(task),
            db,
            nats,
        };
        // Ready means migrated, streams provisioned and the consumer started.
        wait_until("the voucher service to be healthy", PATIENCE, || async {
            matches!(svc.http.get(format!("{}/health", svc.base)).send().await,
                Ok(r) if r.status() == 200)
        })
        .await?;
        Ok(svc)
    }

    /// Stops the service and waits until it has shut down cleanly.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await?.context("the voucher service failed")?;
        }
        Ok(())
    }

    /// POSTs a JSON body to `/vouchers`: (status, body).
    pub async fn issue(&self, body: Value) -> anyhow::Result<(u16, Value)> {
        self.issue_raw(body.to_string()).await
    }

    /// POSTs raw bytes as JSON to `/vouchers`.
    pub async fn issue_raw(&self, body: String) -> anyhow::Result<(u16, Value)> {
        let r = self
            .http
            .post(format!("{}/vouchers", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        Ok((r.status().as_u16(), r.json().await?))
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
        let (status, answer) = self.issue(body).await?;
        anyhow::ensure!(status == 201, "issuing {code}: {status} {answer}");
        Ok(())
    }

    /// `GET /vouchers/{code}`: (status, body).
    pub async fn get(&self, code: &str) -> anyhow::Result<(u16, Value)> {
        let r = self
            .http
            .get(format!("{}/vouchers/{code}", self.base))
            .send()
            .await?;
        Ok((r.status().as_u16(), r.json().await?))
    }

    /// The status `GET /vouchers/{code}` shows.
    pub async fn status(&self, code: &str) -> anyhow::Result<String> {
        let (status, body) = self.get(code).await?;
        anyhow::ensure!(status == 200, "GET {code}: {status} {body}");
        Ok(body["status"].as_str().unwrap_or_default().to_owned())
    }

    /// Waits until `GET /vouchers/{code}` shows `expected`.
    pub async fn wait_status(&self, code: &str, expected: &str) -> anyhow::Result<()> {
        wait_until(
            &format!("voucher {code} to be {expected}"),
            PATIENCE,
            || async { self.status(code).await.is_ok_and(|s| s == expected) },
        )
        .await
    }

    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?)
    }

    /// Publishes an order event to the ORDERS stream, as the order service's relay would.
    pub async fn inject(&self, event: impl Into<OrderEvent>) -> anyhow::Result<EventId> {
        let env = Envelope::root(EventId::new_random(), &event.into());
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

    /// Injects an event and waits until the consumer has committed its handling.
    pub async fn deliver(&self, event: impl Into<OrderEvent>) -> anyhow::Result<()> {
        let id = self.inject(event).await?;
        wait_until(&format!("event {id} to be handled"), PATIENCE, || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM kit_inbox WHERE consumer = $1 AND event_id = $2)",
            )
            .bind(ON_ORDERS)
            .bind(id.as_uuid())
            .fetch_one(self.db.pool())
            .await
            .unwrap_or(false)
        })
        .await
    }

    /// Every event the service wrote to its outbox, in order: (ce-type, payload).
    pub async fn emitted(&self) -> anyhow::Result<Vec<(String, Value)>> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT ce_type, payload FROM kit_outbox ORDER BY id")
                .fetch_all(self.db.pool())
                .await?;
        rows.into_iter()
            .map(|(t, p)| Ok((t, serde_json::from_slice(&p)?)))
            .collect()
    }

    /// The payloads of the emitted events of one type.
    pub async fn emitted_of(&self, ce_type: &str) -> anyhow::Result<Vec<Value>> {
        Ok(self
            .emitted()
            .await?
            .into_iter()
            .filter(|(t, _)| t == ce_type)
            .map(|(_, p)| p)
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

impl Drop for TestService {
    fn drop(&mut self) {
        self.shutdown.cancel();
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
        deadline: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
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
    }
}
