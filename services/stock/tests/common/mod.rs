//! The stock service under test: a real nats-server, a fresh PostgreSQL database, the service
//! started with [`stock_service::run`] on a free port, a tiny HTTP client, and helpers that inject
//! input events into their streams and read the service's events back from its outbox.

#![allow(dead_code)]

use anyhow::{bail, Context as _};
use async_nats::jetstream;
use jetsaga_contracts::events::order::OrderCancelled;
use jetsaga_contracts::events::payment::PaymentSucceeded;
use jetsaga_contracts::{
    CancelReason, CustomerId, EventId, EventSet, Money, OrderEvent, OrderId, OrderLine,
    PaymentEvent, Sku, StockEvent,
};
use jetsaga_testkit::{wait_until, NatsServer, TestDb};
use saga_kit::Envelope;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long any condition may take to come true.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct StockService {
    pub nats: NatsServer,
    pub db: TestDb,
    pub addr: SocketAddr,
    pub js: jetstream::Context,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), jetsaga_runtime::ServiceError>>,
}

impl StockService {
    /// Starts the service and waits until `/health` says it is ready.
    pub async fn start() -> anyhow::Result<Self> {
        jetsaga_testkit::init_tracing();
        let nats = NatsServer::start().await?;
        let db = TestDb::create("stock").await?;
        let mut settings = jetsaga_runtime::Settings::with_defaults(stock_service::DEFAULTS);
        settings.database_url = db.url();
        settings.nats_url = nats.url();
        settings.db_max_connections = 8;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(stock_service::run(settings, listener, shutdown.clone()));
        let js = jetstream::new(nats.connect().await?);
        let service = StockService {
            nats,
            db,
            addr,
            js,
            shutdown,
            task,
        };
        wait_until("the stock service to be ready", WAIT, || async {
            matches!(service.get("/health").await, Ok((200, _)))
        })
        .await?;
        Ok(service)
    }

    /// Stops the service and waits for it to finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .context("the stock service did not stop")???;
        Ok(())
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        http(self.addr, "GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &str) -> anyhow::Result<(u16, Value)> {
        http(self.addr, "POST", path, Some(body)).await
    }

    /// `POST /stock/{sku}/adjust` `{"delta": delta}`.
    pub async fn adjust(&self, sku: &str, delta: i64) -> anyhow::Result<(u16, Value)> {
        self.post(
            &format!("/stock/{sku}/adjust"),
            &serde_json::json!({ "delta": delta }).to_string(),
        )
        .await
    }

    /// Adjusts and insists on success.
    pub async fn add_stock(&self, sku: &str, delta: i64) -> anyhow::Result<()> {
        let (status, body) = self.adjust(sku, delta).await?;
        if status != 200 {
            bail!("adjusting {sku} by {delta} answered {status} {body}");
        }
        Ok(())
    }

    /// `(available, reserved)` of a SKU, read through the API.
    pub async fn stock(&self, sku: &str) -> anyhow::Result<(i64, i64)> {
        let (status, body) = self.get(&format!("/stock/{sku}")).await?;
        if status != 200 {
            bail!("GET /stock/{sku} answered {status} {body}");
        }
        Ok((
            body["available"].as_i64().context("available")?,
            body["reserved"].as_i64().context("reserved")?,
        ))
    }

    /// Publishes `event` into its producer's stream as that producer's relay would, with a
    /// fresh event id, and returns the id.
    pub async fn inject<E: EventSet>(&self, event: &E) -> anyhow::Result<EventId> {
        let env = Envelope::root(EventId::new_random(), event);
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

    /// How many events `consumer` has taken in (handled or found to be duplicates).
    pub async fn handled(&self, consumer: &str) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM kit_inbox WHERE consumer = $1")
                .bind(consumer)
                .fetch_one(self.db.pool())
                .await?,
        )
    }

    /// Waits until `consumer` has taken in `n` events.
    pub async fn wait_handled(&self, consumer: &str, n: i64) -> anyhow::Result<()> {
        wait_until(
            &format!("{consumer} to take in {n} events"),
            WAIT,
            || async { matches!(self.handled(consumer).await, Ok(k) if k >= n) },
        )
        .await
    }

    /// Every event the service emitted, in outbox order.
    pub async fn emitted(&self) -> anyhow::Result<Vec<StockEvent>> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT ce_type, payload FROM kit_outbox ORDER BY id")
                .fetch_all(self.db.pool())
                .await?;
        rows.into_iter()
            .map(|(ce_type, payload)| {
                StockEvent::from_payload(&ce_type, &payload).context("decoding an outbox event")
            })
            .collect()
    }

    /// The events about the order `order_id`.
    pub async fn emitted_for(&self, order_id: OrderId) -> anyhow::Result<Vec<StockEvent>> {
        Ok(self
            .emitted()
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

    /// One row count of the service's own tables.
    pub async fn count(&self, table: &str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(self.db.pool())
            .await?)
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

/// A minimal HTTP/1.1 client: one request per connection, JSON in, `(status, JSON)` out.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(addr).await?;
    let body = body.unwrap_or("");
    let content_type = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/json\r\n".to_owned()
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw).context("the response is not UTF-8")?;
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no end of headers in {text:?}"))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_owned()
    };
    let json = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or(Value::String(body))
    };
    Ok((status, json))
}

fn dechunk(mut rest: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    loop {
        let (size, tail) = rest.split_once("\r\n").context("a chunk without a size")?;
        let size = usize::from_str_radix(size.trim(), 16).context("a bad chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(tail.get(..size).context("a short chunk")?);
        rest = tail.get(size + 2..).context("a chunk without its end")?;
    }
}
