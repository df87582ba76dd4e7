//! The payment service under test, started for real: its own nats-server, its own PostgreSQL
//! database, `payment_service::run` on a free port. Input events are published to JetStream as the
//! voucher and order services' relays would; what the service says is read from its outbox.

#![allow(dead_code)]

use anyhow::Context as _;
use async_nats::jetstream;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::voucher::VoucherReserved;
use jetsaga_contracts::{
    CancelReason, CustomerId, EventId, EventSet, Money, OrderEvent, OrderId, OrderLine, Sku,
    VoucherEvent,
};
use jetsaga_runtime::{ServiceError, Settings};
use jetsaga_testkit::{wait_until, NatsServer, TestDb};
use saga_kit::Envelope;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const TIMEOUT: Duration = Duration::from_secs(20);

pub struct PaymentService {
    pub addr: SocketAddr,
    pub js: jetstream::Context,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), ServiceError>>>,
    // Dropped last: the service must stop before its database and server go away.
    pub db: TestDb,
    pub nats: NatsServer,
}

/// An HTTP answer: status and JSON body (`Null` when the body is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

impl PaymentService {
    pub async fn start() -> anyhow::Result<Self> {
        jetsaga_testkit::init_tracing();
        let nats = NatsServer::start().await?;
        let db = TestDb::create("payment").await?;
        let mut settings = Settings::with_defaults(payment_service::DEFAULTS);
        settings.database_url = db.url();
        settings.nats_url = nats.url();
        settings.db_max_connections = 5;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(payment_service::run(settings, listener, shutdown.clone()));
        let client = nats.connect().await?;
        let js = jetstream::new(client);
        let service = PaymentService {
            addr,
            js,
            shutdown,
            task: Some(task),
            db,
            nats,
        };
        wait_until("the payment service to be ready", TIMEOUT, || async {
            matches!(service.get("/health").await, Ok(a) if a.status == 200)
        })
        .await?;
        Ok(service)
    }

    /// Stops the service and waits until it has shut down in order.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await?
                .context("the payment service ended with an error")?;
        }
        Ok(())
    }

    /// One HTTP/1.1 request with `Connection: close`; the answer is read to the end.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        stream.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let text = String::from_utf8(raw)?;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .with_context(|| format!("no header end in {text:?}"))?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .with_context(|| format!("no status in {head:?}"))?
            .parse()?;
        Ok(Answer {
            status,
            body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.request("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &str) -> anyhow::Result<Answer> {
        self.request("POST", path, Some(body)).await
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

    /// Publishes `event` as a root event with a fresh id, and returns its envelope.
    pub async fn inject<E: EventSet>(&self, event: &E) -> anyhow::Result<Envelope> {
        let env = Envelope::root(EventId::new_random(), event);
        self.publish(&env, &env.id.to_string()).await?;
        Ok(env)
    }

    /// Publishes `env` under the JetStream message id `msg_id` (so the same event can be sent again
    /// past the stream's dedupe, to reach the inbox).
    pub async fn publish(&self, env: &Envelope, msg_id: &str) -> anyhow::Result<()> {
        let publish = jetstream::message::PublishMessage::build()
            .payload(env.payload.clone())
            .headers(saga_kit::envelope::header_map(&env.headers_json()))
            .message_id(msg_id);
        self.js
            .send_publish(env.subject.clone(), publish)
            .await?
            .await?;
        Ok(())
    }

    /// The events the service emitted, in outbox order: (ce-type, payload).
    pub async fn emitted(&self) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT ce_type, payload FROM kit_outbox ORDER BY id")
                .fetch_all(self.db.pool())
                .await?;
        rows.into_iter()
            .map(|(t, p)| Ok((t, serde_json::from_slice(&p)?)))
            .collect()
    }

    /// The payloads of the emitted events of one `ce-type`.
    pub async fn emitted_of(&self, ce_type: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        Ok(self
            .emitted()
            .await?
            .into_iter()
            .filter(|(t, _)| t == ce_type)
            .map(|(_, p)| p)
            .collect())
    }

    /// The value of one series of `/metrics`, 0 when absent.
    pub async fn metric(&self, series: &str) -> anyhow::Result<u64> {
        let text = self.metrics_text().await?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0))
    }

    /// The body of `/metrics` (text, not JSON).
    async fn metrics_text(&self) -> anyhow::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await?;
        Ok(raw
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default())
    }

    /// Waits until `consumer` has finished `n` messages (applied or recognised as duplicates).
    pub async fn wait_handled(&self, consumer: &str, n: u64) -> anyhow::Result<()> {
        let handled = format!("jetsaga_events_handled_total{{consumer=\"{consumer}\"}}");
        let duplicate = format!("jetsaga_events_duplicate_total{{consumer=\"{consumer}\"}}");
        wait_until(
            &format!("{consumer} to finish {n} messages"),
            TIMEOUT,
            || async {
                let done = self.metric(&handled).await.unwrap_or(0)
                    + self.metric(&duplicate).await.unwrap_or(0);
                done >= n
            },
        )
        .await
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

impl Drop for PaymentService {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn cents(c: i64) -> Money {
    Money::from_cents(c).expect("valid money")
}

/// VoucherReserved of one line (2 × `total / 2`) for `order` of `customer`.
pub fn voucher_reserved(
    order: OrderId,
    customer: CustomerId,
    total: i64,
    discount: i64,
) -> VoucherEvent {
    VoucherEvent::VoucherReserved(VoucherReserved {
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
