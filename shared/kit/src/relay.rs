//! The relay: publishes committed outbox rows to JetStream, then marks them published.
//!
//! One step, [`Relay::relay_batch`], does the work and says how it went; [`Relay::run`] is a thin
//! loop around it that only decides how long to wait. The step is split in three typed stages
//! (claim → publish → mark) so tests can stop between them, as a crash would.
//!
//! - Rows are claimed with `FOR UPDATE SKIP LOCKED`, never an id watermark: a watermark skips rows
//!   whose transactions commit late. Several relays on one database skip each other's rows.
//! - A row is held back while an earlier unpublished row of the same key is held by another relay,
//!   so one order's events reach the stream in the order they were committed.
//! - Within a batch, events of different keys are published concurrently (pipelined); events of one
//!   key are published one after another, and a failure stops that key, so a retry never reorders it.
//! - The event id is the `Nats-Msg-Id`: a row published again after a crash is deduped by the stream.

use crate::backoff::Backoff;
use crate::envelope::header_map;
use crate::metrics::Metrics;
use async_nats::jetstream::{self, message::PublishMessage};
use futures::future::join_all;
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The relay's settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows claimed per step. Default 256.
    pub batch_size: i64,
    /// How often to look for rows when no notification arrives. Default 500 ms.
    pub poll_interval: Duration,
    /// Delay between failed steps (NATS or PostgreSQL unreachable). Default 100 ms doubling to 5 s.
    pub backoff: Backoff,
    /// After a batch that was not full, claim again this soon even without a notification: rows
    /// held back behind an earlier row of their key that another relay held are not announced
    /// again. Default 50 ms.
    pub recheck: Duration,
    /// How long a graceful shutdown keeps publishing what is left. Default 10 s.
    pub flush_timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            batch_size: 256,
            poll_interval: Duration::from_millis(500),
            backoff: Backoff::default(),
            recheck: Duration::from_millis(50),
            flush_timeout: Duration::from_secs(10),
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOutcome {
    /// This many events were published and marked.
    Published(usize),
    /// Nothing was waiting.
    Empty,
}

/// A failed step. Always transient: the rows stay unpublished and the next step tries again.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("relay could not read or mark the outbox: {0}")]
    Database(#[from] sqlx::Error),
    #[error("relay published {published} of {claimed} events; event {event_id} on {subject} failed: {message}")]
    Publish {
        claimed: usize,
        published: usize,
        event_id: Uuid,
        subject: String,
        message: String,
    },
}

#[derive(Debug, sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    event_id: Uuid,
    subject: String,
    order_key: String,
    headers: serde_json::Value,
    payload: Vec<u8>,
}

/// The outbox relay of one service database.
#[derive(Debug, Clone)]
pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    config: RelayConfig,
    metrics: Arc<Metrics>,
}

/// Rows claimed by one step: their locks are held until [`Published::mark`] commits. Dropping it
/// (or crashing) releases them unpublished.
#[derive(Debug)]
pub struct Claim {
    tx: Transaction<'static, Postgres>,
    rows: Vec<OutboxRow>,
}

/// Rows that were sent, waiting to be marked.
#[derive(Debug)]
pub struct Published {
    tx: Transaction<'static, Postgres>,
    claimed: usize,
    acked: Vec<(i64, u64)>,
    failure: Option<(Uuid, String, String)>,
}

impl Relay {
    pub fn new(
        pool: PgPool,
        js: jetstream::Context,
        config: RelayConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Relay {
            pool,
            js,
            config,
            metrics,
        }
    }

    /// One step: claim, publish, mark.
    pub async fn relay_batch(&self) -> Result<RelayOutcome, RelayError> {
        let claim = self.claim().await?;
        if claim.is_empty() {
            return Ok(RelayOutcome::Empty);
        }
        let published = claim.publish(&self.js).await;
        let result = published.mark().await;
        match &result {
            Ok(RelayOutcome::Published(n)) | Err(RelayError::Publish { published: n, .. }) => self
                .metrics
                .add("jetsaga_relay_published_total", &[], *n as u64),
            _ => {}
        }
        if result.is_err() {
            self.metrics.inc("jetsaga_relay_errors_total", &[]);
        }
        result
    }

    /// Claims up to `batch_size` unpublished rows that this relay may publish now.
    pub async fn claim(&self) -> Result<Claim, RelayError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query_as::<_, OutboxRow>(
            "WITH claimed AS (
                 SELECT id, order_key FROM kit_outbox
                 WHERE published_at IS NULL
                 ORDER BY id
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED
             )
             SELECT o.id, o.event_id, o.subject, o.order_key, o.headers, o.payload
             FROM kit_outbox o JOIN claimed c ON c.id = o.id
             WHERE NOT EXISTS (
                 SELECT 1 FROM kit_outbox e
                 WHERE e.order_key = c.order_key
                   AND e.published_at IS NULL
                   AND e.id < c.id
                   AND e.id NOT IN (SELECT id FROM claimed)
             )
             ORDER BY o.id",
        )
        .bind(self.config.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        Ok(Claim { tx, rows })
    }

    /// Publishes until `shutdown`, woken by LISTEN/NOTIFY and by a poll; on shutdown, publishes
    /// what is left for up to `flush_timeout`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&self.pool).await {
            Ok(mut l) => match l.listen("kit_outbox").await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "relay cannot LISTEN; polling only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "relay cannot LISTEN; polling only");
                None
            }
        };
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            let wait = match self.relay_batch().await {
                // A full batch: there is probably more.
                Ok(RelayOutcome::Published(n))
                    if i64::try_from(n).unwrap_or(i64::MAX) >= self.config.batch_size =>
                {
                    failures = 0;
                    continue;
                }
                // What was announced is published; more comes with its own notification.
                Ok(RelayOutcome::Published(_)) => {
                    failures = 0;
                    self.config.recheck
                }
                Ok(RelayOutcome::Empty) => {
                    failures = 0;
                    self.config.poll_interval
                }
                Err(e) => {
                    let delay = self.config.backoff.delay(failures);
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, retry_in = ?delay, "relay step failed");
                    delay
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                _ = wait_notification(&mut listener), if failures == 0 => {}
            }
            // Notifications already received are for rows the next claim sees: one claim for all,
            // instead of one (mostly empty) claim each.
            if let Some(l) = listener.as_mut() {
                while l.next_buffered().is_some() {}
            }
        }
        self.flush().await;
    }

    /// Publishes what is left, for up to `flush_timeout`.
    pub async fn flush(&self) {
        let deadline = tokio::time::Instant::now() + self.config.flush_timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.relay_batch()).await {
                Ok(Ok(RelayOutcome::Published(_))) => continue,
                Ok(Ok(RelayOutcome::Empty)) => return,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "relay flush stopped; the rest is published at the next start");
                    return;
                }
                Err(_) => {
                    tracing::warn!(
                        "relay flush timed out; the rest is published at the next start"
                    );
                    return;
                }
            }
        }
    }
}

async fn wait_notification(listener: &mut Option<sqlx::postgres::PgListener>) {
    match listener {
        Some(l) => {
            if let Err(e) = l.recv().await {
                // recv reconnects on the next call; wait a little so a dead database is not spun on.
                tracing::debug!(error = %e, "outbox listener lost its connection");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        None => futures::future::pending::<()>().await,
    }
}

impl Claim {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Publishes the claimed rows and awaits every PubAck. Keys are pipelined; one key's events go
    /// one after another and stop at its first failure.
    pub async fn publish(self, js: &jetstream::Context) -> Published {
        let mut by_key: BTreeMap<&str, Vec<&OutboxRow>> = BTreeMap::new();
        for row in &self.rows {
            by_key.entry(row.order_key.as_str()).or_default().push(row);
        }
        let results = join_all(by_key.into_values().map(|rows| publish_in_order(js, rows))).await;
        let mut acked = Vec::with_capacity(self.rows.len());
        let mut failure = None;
        for (ok, failed) in results {
            acked.extend(ok);
            if failure.is_none() {
                failure = failed;
            }
        }
        Published {
            claimed: self.rows.len(),
            tx: self.tx,
            acked,
            failure,
        }
    }
}

async fn publish_in_order(
    js: &jetstream::Context,
    rows: Vec<&OutboxRow>,
) -> (Vec<(i64, u64)>, Option<(Uuid, String, String)>) {
    let mut acked = Vec::with_capacity(rows.len());
    for row in rows {
        let publish = PublishMessage::build()
            .payload(row.payload.clone().into())
            .headers(header_map(&row.headers))
            .message_id(row.event_id.to_string());
        let ack = match js.send_publish(row.subject.clone(), publish).await {
            Ok(pending) => pending.await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match ack {
            Ok(ack) => acked.push((row.id, ack.sequence)),
            Err(message) => return (acked, Some((row.event_id, row.subject.clone(), message))),
        }
    }
    (acked, None)
}

impl Published {
    /// How many events the stream acknowledged.
    pub fn acked(&self) -> usize {
        self.acked.len()
    }

    /// Marks the acknowledged rows published and commits. If some publishes failed, the others are
    /// still marked and the error says which event failed first.
    pub async fn mark(mut self) -> Result<RelayOutcome, RelayError> {
        let (ids, seqs): (Vec<i64>, Vec<i64>) = self
            .acked
            .iter()
            .map(|(id, seq)| (*id, i64::try_from(*seq).unwrap_or(i64::MAX)))
            .unzip();
        sqlx::query(
            "UPDATE kit_outbox SET published_at = now(), stream_seq = u.seq
             FROM unnest($1::bigint[], $2::bigint[]) AS u(id, seq)
             WHERE kit_outbox.id = u.id",
        )
        .bind(&ids)
        .bind(&seqs)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        match self.failure {
            None => Ok(RelayOutcome::Published(ids.len())),
            Some((event_id, subject, message)) => Err(RelayError::Publish {
                claimed: self.claimed,
                published: ids.len(),
                event_id,
                subject,
                message,
            }),
        }
    }
}
