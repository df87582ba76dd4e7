//! # jetsaga-servicetest
//!
//! One service started for real inside a test, written once for the five services' test suites:
//! its own nats-server and PostgreSQL database, its `run` on a free port, then its HTTP API, its
//! inputs (events published onto the streams as the other services' relays would) and its outputs
//! (the events in its outbox, its `/metrics`).
//!
//! ## Layout
//! - [`ServiceUnderTest`]: start, stop, HTTP, inject, outbox, metrics and waits, all in this file.
//! - [`facts`]: a service's own events applied again as recorded facts to a fresh database, and
//!   the business state of two databases to compare.
//!
//! Architecture Invariant: nothing here is mocked; a test that passes here has talked to a real
//! nats-server and a real PostgreSQL.

pub mod facts;

use anyhow::Context as _;
use async_nats::jetstream;
use jetsaga_contracts::{EventId, EventSet};
use jetsaga_runtime::{Defaults, ServiceError, Settings};
use jetsaga_testkit::{wait_until, NatsServer, TestDb};
use saga_kit::Envelope;
use serde_json::Value;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a test waits for anything asynchronous.
pub const WAIT: Duration = Duration::from_secs(20);

/// An HTTP answer: status and JSON body (the text as a JSON string when it is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// The operator a service under test admits (its `ADMIN_TOKENS`), named in its admin events.
pub const OPERATOR: &str = "servicetest";

/// A running service with its own nats-server and database. Dropping it cancels the service; the
/// database and the server go after it.
#[derive(Debug)]
pub struct ServiceUnderTest {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub js: jetstream::Context,
    http: reqwest::Client,
    /// The token of [`OPERATOR`], the one operator the service admits; requests carry it.
    pub operator_token: String,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), ServiceError>>>,
    // Dropped last: the service must stop before its database and server go away.
    pub db: TestDb,
    pub nats: NatsServer,
}

impl ServiceUnderTest {
    /// Starts `run` with the service's default settings pointed at a fresh database and server,
    /// and waits until its `/health` answers 200.
    pub async fn start<F, Fut>(name: &str, defaults: Defaults, run: F) -> anyhow::Result<Self>
    where
        F: FnOnce(Settings, TcpListener, CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), ServiceError>> + Send + 'static,
    {
        jetsaga_testkit::init_tracing();
        let nats = NatsServer::start().await?;
        let db = TestDb::create(name).await?;
        let mut settings = Settings::with_defaults(defaults);
        settings.database_url = db.url();
        settings.nats_url = nats.url();
        settings.db_max_connections = 8;
        let operator_token = format!("op-{}", uuid::Uuid::new_v4().simple());
        let settings = settings.with_operator(
            jetsaga_contracts::Actor::parse(OPERATOR).expect("a valid operator name"),
            &operator_token,
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(settings, listener, shutdown.clone()));
        let service = ServiceUnderTest {
            base,
            js: jetstream::new(nats.connect().await?),
            http: reqwest::Client::new(),
            operator_token,
            shutdown,
            task: Some(task),
            db,
            nats,
        };
        wait_until(&format!("the {name} service to be ready"), WAIT, || async {
            matches!(service.get("/health").await, Ok(a) if a.status == 200)
        })
        .await?;
        Ok(service)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the service and waits, at most [`WAIT`], until it has shut down in order.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .context("the service did not stop in time")??
                .context("the service ended with an error")?;
        }
        Ok(())
    }

    /// One request; `body` is sent as is, with `content_type` when given.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Answer> {
        self.request_with_headers(method, path, &[], content_type, body)
            .await
    }

    /// One request with extra headers (e.g. `Idempotency-Key`). It carries the operator's token
    /// unless `headers` has an `Authorization` of its own.
    pub async fn request_with_headers(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Answer> {
        let mut req = self.http.request(method, self.url(path));
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        {
            req = req.bearer_auth(&self.operator_token);
        }
        self.send(req, headers, content_type, body).await
    }

    async fn send(
        &self,
        mut req: reqwest::RequestBuilder,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Answer> {
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let response = req.send().await.context("HTTP request failed")?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer { status, body })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.request(reqwest::Method::GET, path, None, None).await
    }

    /// POST of a raw body as `application/json` (which may be malformed on purpose).
    pub async fn post(&self, path: &str, body: &str) -> anyhow::Result<Answer> {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    /// PUT of a raw body as `application/json`.
    pub async fn put(&self, path: &str, body: &str) -> anyhow::Result<Answer> {
        self.send_json(reqwest::Method::PUT, path, body).await
    }

    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &str,
    ) -> anyhow::Result<Answer> {
        self.request(
            method,
            path,
            Some("application/json"),
            Some(body.as_bytes().to_vec()),
        )
        .await
    }

    /// Publishes `event` as a root event with a fresh id, as its producer's relay would.
    pub async fn inject<E: EventSet>(&self, event: &E) -> anyhow::Result<Envelope> {
        let env = Envelope::root(EventId::new_random(), event);
        self.publish(&env, &env.id.to_string()).await?;
        Ok(env)
    }

    /// Publishes `env` under the `Nats-Msg-Id` `msg_id`, so the same event can be sent again past
    /// the stream's dedupe and reach the inbox.
    pub async fn publish(&self, env: &Envelope, msg_id: &str) -> anyhow::Result<u64> {
        let ack = self
            .js
            .send_publish(
                env.subject.clone(),
                env.publish_message().message_id(msg_id),
            )
            .await?
            .await?;
        Ok(ack.sequence)
    }

    /// The service's outbox, in order: (ce-type, event id, payload).
    pub async fn outbox(&self) -> anyhow::Result<Vec<(String, uuid::Uuid, Value)>> {
        let rows: Vec<(String, uuid::Uuid, Vec<u8>)> =
            sqlx::query_as("SELECT ce_type, event_id, payload FROM kit_outbox ORDER BY id")
                .fetch_all(self.db.pool())
                .await?;
        rows.into_iter()
            .map(|(t, id, p)| Ok((t, id, serde_json::from_slice(&p)?)))
            .collect()
    }

    /// The events the service emitted, in outbox order: (ce-type, payload).
    pub async fn emitted(&self) -> anyhow::Result<Vec<(String, Value)>> {
        Ok(self
            .outbox()
            .await?
            .into_iter()
            .map(|(t, _, p)| (t, p))
            .collect())
    }

    /// The payloads of the emitted events of one `ce-type`, in outbox order.
    pub async fn emitted_of(&self, ce_type: &str) -> anyhow::Result<Vec<Value>> {
        Ok(self
            .emitted()
            .await?
            .into_iter()
            .filter(|(t, _)| t == ce_type)
            .map(|(_, p)| p)
            .collect())
    }

    /// Rows in a table of the service's database.
    pub async fn count(&self, table: &str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(self.db.pool())
            .await?)
    }

    /// The service's dead letters, oldest first: (kind, reason).
    pub async fn dead_letters(&self) -> anyhow::Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT kind, reason FROM kit_dead_letters ORDER BY id")
                .fetch_all(self.db.pool())
                .await?,
        )
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

    /// The value of one series (`name{labels}`) of `/metrics`, 0 when absent.
    pub async fn metric(&self, series: &str) -> anyhow::Result<u64> {
        Ok(self
            .metrics()
            .await?
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0))
    }

    /// How many messages `consumer` applied.
    pub async fn applied(&self, consumer: &str) -> anyhow::Result<u64> {
        self.metric(&format!(
            "jetsaga_events_handled_total{{consumer=\"{consumer}\"}}"
        ))
        .await
    }

    /// How many messages `consumer` finished: applied, or recognised as duplicates.
    pub async fn finished(&self, consumer: &str) -> anyhow::Result<u64> {
        let duplicates = self
            .metric(&format!(
                "jetsaga_events_duplicate_total{{consumer=\"{consumer}\"}}"
            ))
            .await?;
        Ok(self.applied(consumer).await? + duplicates)
    }

    /// Waits until `consumer` has applied `n` messages.
    pub async fn wait_applied(&self, consumer: &str, n: u64) -> anyhow::Result<()> {
        wait_until(&format!("{consumer} to apply {n} events"), WAIT, || async {
            self.applied(consumer).await.unwrap_or(0) >= n
        })
        .await
    }

    /// Waits until the relay has published `n` of the service's outbox rows.
    pub async fn wait_published(&self, n: i64) -> anyhow::Result<()> {
        wait_until(&format!("{n} outbox rows published"), WAIT, || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM kit_outbox WHERE published_at IS NOT NULL",
            )
            .fetch_one(self.db.pool())
            .await
            .is_ok_and(|published| published >= n)
        })
        .await
    }

    /// Waits until `consumer` has finished `n` messages (applied or duplicates).
    pub async fn wait_finished(&self, consumer: &str, n: u64) -> anyhow::Result<()> {
        wait_until(
            &format!("{consumer} to finish {n} messages"),
            WAIT,
            || async { self.finished(consumer).await.unwrap_or(0) >= n },
        )
        .await
    }
}

impl Drop for ServiceUnderTest {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
