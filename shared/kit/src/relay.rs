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
//!   So the mark's commit does not wait for the WAL flush: a mark lost in a crash costs a republish.
//! - A step is two round trips to PostgreSQL: the claim travels with its `BEGIN`, the mark with its
//!   `COMMIT`, and the relay keeps its connection between steps (sqlx pings a connection each time
//!   it leaves or re-enters the pool, a round trip each).
//! - A LISTEN/NOTIFY listener wakes the relay when a row is committed, and a poll covers a lost
//!   notification. A consumer runner of the same process wakes it directly ([`RelayWake`]), and
//!   its transactions make no NOTIFY.
//! - A row the stream refuses (its stream missing or full, a permission) is tried again after a
//!   back-off of its own, and only its key waits meanwhile. A row that can never be published (larger
//!   than the server's `max_payload`) is parked with its reason, for `jetsaga dlq` and `jetsaga stats`
//!   to show; it holds back nothing. So no row at the head of the outbox stops the others.
//! - A step that published some rows and not others succeeded: it reports what it published. It is
//!   an error only when it could not reach the database, or reached nothing at all.

use crate::backoff::Backoff;
use crate::envelope::{header_map, TraceParent, TRACEPARENT};
use crate::kept::Kept;
use crate::metrics::Metrics;
use async_nats::jetstream::{self, message::PublishMessage};
use futures::future::join_all;
use sqlx::pool::PoolConnection;
use sqlx::{Executor as _, FromRow as _, PgConnection, PgPool, Postgres};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
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
    /// Back-off of a row the stream refused, by its attempts. Default 1 s doubling to 60 s.
    pub row_backoff: Backoff,
    /// Steps at once. While one waits for its PubAcks, another claims what was committed
    /// meanwhile (the rows the first holds are skipped, and so are the later rows of their keys),
    /// so an event does not wait for a whole step to end before it is published. Default 1: on 2
    /// cores a second step published no more (`docs/bench-notes.md`) and claimed empty more often.
    pub workers: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            batch_size: 256,
            poll_interval: Duration::from_millis(500),
            backoff: Backoff::default(),
            recheck: Duration::from_millis(50),
            flush_timeout: Duration::from_secs(10),
            row_backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            workers: 1,
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
    #[error("relay could not reach NATS: none of {claimed} events was published; event {event_id} on {subject}: {source}")]
    Unreachable {
        claimed: usize,
        event_id: Uuid,
        subject: String,
        #[source]
        source: async_nats::jetstream::context::PublishError,
    },
}

/// What became of one row's publish.
#[derive(Debug)]
enum RowOutcome {
    /// The stream stored it at this sequence.
    Acked(u64),
    /// The stream refused it (missing, full, not allowed): try this row again later.
    Refused(String),
    /// It can never be published as it is.
    Unpublishable(String),
    /// NATS could not be reached: nothing is known of this row.
    Unreachable(async_nats::jetstream::context::PublishError),
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
    wake: RelayWake,
    /// Connections kept between steps, one per worker.
    held: Kept,
    /// The claim, its transaction's `BEGIN` in front: one round trip.
    claim_sql: Arc<str>,
}

/// Wakes a relay from inside its own process. A consumer runner that committed events hands the
/// news to its service's relay directly ([`crate::Consumer::with_relay`]), and its transactions
/// then make no NOTIFY: no trigger, no notification queue, no listener to wake on the way.
/// Every other writer (an HTTP request, the CLI, another process) still notifies.
#[derive(Debug, Clone, Default)]
pub struct RelayWake(Arc<tokio::sync::Notify>);

impl RelayWake {
    /// Wakes one idle step of the relay, or the next one to go idle.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// A step's connection inside its transaction, from the claim to the mark's `COMMIT`. Ended, the
/// connection is kept for the next step; dropped before (a crash of the step, a test that stops
/// between stages), it is closed, and PostgreSQL rolls the transaction back and releases its rows.
#[derive(Debug)]
struct Open {
    conn: Option<PoolConnection<Postgres>>,
    held: Kept,
}

impl Open {
    fn conn(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        self.conn
            .as_deref_mut()
            .ok_or_else(|| sqlx::Error::Protocol("the relay step's transaction has ended".into()))
    }

    /// Runs `sql`, which ends the transaction, and keeps the connection. Nothing to do when the
    /// transaction ended already (an empty claim ends at once).
    async fn end(mut self, sql: &str) -> Result<(), sqlx::Error> {
        if let Some(conn) = self.conn.as_deref_mut() {
            conn.execute(sql).await?;
        }
        if let Some(conn) = self.conn.take() {
            self.held.keep(conn);
        }
        Ok(())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }
}

/// Rows claimed by one step: their locks are held until [`Published::mark`] commits. Dropping it
/// (or crashing) releases them unpublished.
#[derive(Debug)]
pub struct Claim {
    tx: Open,
    rows: Vec<OutboxRow>,
    row_backoff: Backoff,
}

/// Rows that were sent, waiting to be marked.
#[derive(Debug)]
pub struct Published {
    tx: Open,
    claimed: usize,
    acked: Vec<(i64, u64)>,
    refused: Vec<(i64, String)>,
    parked: Vec<(i64, String)>,
    unreachable: Option<(Uuid, String, async_nats::jetstream::context::PublishError)>,
    row_backoff: Backoff,
}

impl Relay {
    pub fn new(
        pool: PgPool,
        js: jetstream::Context,
        config: RelayConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let claim_sql = format!(
            "{CLAIM_BEGIN}; EXECUTE {CLAIM_NAME}({})",
            config.batch_size.max(1)
        );
        let held = Kept::new(config.workers.max(1));
        Relay {
            pool,
            js,
            config,
            metrics,
            wake: RelayWake::default(),
            held,
            claim_sql: claim_sql.into(),
        }
    }

    /// The handle that wakes this relay from inside the process.
    pub fn wake_handle(&self) -> RelayWake {
        self.wake.clone()
    }

    /// One step: claim, publish, mark.
    pub async fn relay_batch(&self) -> Result<RelayOutcome, RelayError> {
        let claim = self.claim().await?;
        if claim.is_empty() {
            return Ok(RelayOutcome::Empty);
        }
        let started = std::time::Instant::now();
        let published = claim.publish(&self.js).await;
        self.metrics
            .kit()
            .relay_publish_duration
            .observe(started.elapsed().as_secs_f64());
        let (refused, parked) = (published.refused.len(), published.parked.len());
        let result = published.mark().await;
        let kit = self.metrics.kit();
        if let Ok(RelayOutcome::Published(n)) = &result {
            kit.relay_published.inc_by(*n as u64);
            kit.relay_refused.inc_by(refused as u64);
            kit.relay_parked.inc_by(parked as u64);
        }
        if result.is_err() {
            kit.relay_errors.inc();
        }
        result
    }

    /// Claims up to `batch_size` unpublished rows that this relay may publish now. Its transaction
    /// begins in the same round trip; a claim that found nothing ends it at once.
    pub async fn claim(&self) -> Result<Claim, RelayError> {
        let mut tx = Open {
            conn: Some(self.held.take(&self.pool).await?),
            held: self.held.clone(),
        };
        let rows = match claim_rows(tx.conn()?, &self.claim_sql).await {
            // A connection new to the relay: prepare the claim on it, once.
            Err(e) if is_unprepared(&e) => {
                let prepare = format!("ROLLBACK; PREPARE {CLAIM_NAME}(bigint) AS {CLAIM}");
                tx.conn()?.execute(prepare.as_str()).await?;
                claim_rows(tx.conn()?, &self.claim_sql).await?
            }
            rows => rows?,
        };
        if rows.is_empty() {
            tx.end("ROLLBACK").await?;
            tx = Open {
                conn: None,
                held: self.held.clone(),
            };
        }
        Ok(Claim {
            tx,
            rows,
            row_backoff: self.config.row_backoff,
        })
    }

    /// Publishes until `shutdown`, woken by LISTEN/NOTIFY, by its [`RelayWake`] and by a poll; on
    /// shutdown, publishes what is left for up to `flush_timeout`. `workers` steps run at once;
    /// each notification or wake wakes one idle step.
    pub async fn run(self, shutdown: CancellationToken) {
        let wake = self.wake.0.clone();
        let listening = self.listen_until(&shutdown, &wake);
        let steps =
            join_all((0..self.config.workers.max(1)).map(|_| self.step_until(&shutdown, &wake)));
        tokio::join!(listening, steps);
        self.flush().await;
    }

    /// Hands each notification to one idle step, until `shutdown`. A LISTEN that failed (the
    /// database was down at start) is tried again, not given up for a poll that would then be all
    /// there is.
    async fn listen_until(&self, shutdown: &CancellationToken, wake: &tokio::sync::Notify) {
        let mut listener = listen(&self.pool).await;
        loop {
            if listener.is_none() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(LISTEN_RETRY) => {}
                }
                listener = listen(&self.pool).await;
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wait_notification(&mut listener) => {}
            }
            // Notifications already received are for rows the next claim sees: one claim for all,
            // instead of one (mostly empty) claim each.
            if let Some(l) = listener.as_mut() {
                while l.next_buffered().is_some() {}
            }
            wake.notify_one();
        }
    }

    /// One step after another until `shutdown`, each followed by the wait its outcome calls for.
    async fn step_until(&self, shutdown: &CancellationToken, wake: &tokio::sync::Notify) {
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
                _ = wake.notified(), if failures == 0 => {}
            }
        }
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

/// The claim's transaction, which the mark commits. Its commit does not wait for the WAL flush: a
/// mark lost with the last moments of a crashed database only publishes its rows again, and the
/// stream dedupes them by event id (consumers' inboxes dedupe past the stream's window). So in
/// durable mode an event waits for one flush where it is emitted, not a second where it is marked,
/// and the relay's next step does not wait for it either.
const CLAIM_BEGIN: &str = "BEGIN; SET LOCAL synchronous_commit = off";

/// The claim, `$1` its batch size. A row is held back behind an earlier unpublished row of its key
/// that waits for its back-off, or that another relay holds.
const CLAIM: &str = "WITH claimed AS (
    SELECT id, order_key FROM kit_outbox o
    WHERE published_at IS NULL AND parked_at IS NULL
      AND (next_attempt_at IS NULL OR next_attempt_at <= now())
      -- behind an earlier row of its key that waits for its back-off: not yet
      AND NOT EXISTS (
          SELECT 1 FROM kit_outbox b
          WHERE b.order_key = o.order_key AND b.published_at IS NULL
            AND b.parked_at IS NULL AND b.id < o.id AND b.next_attempt_at > now()
      )
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
      AND e.parked_at IS NULL
      AND e.id < c.id
      AND e.id NOT IN (SELECT id FROM claimed)
)
ORDER BY o.id";

/// The claim's name as a prepared statement of the relay's connections: a simple query (the only
/// kind that carries a `BEGIN` with it) runs it prepared, planned as the extended protocol's
/// cached statement was.
const CLAIM_NAME: &str = "kit_relay_claim";

/// Runs the claim in one round trip with its `BEGIN`. Its rows come back as text, which every
/// column's type decodes.
async fn claim_rows(conn: &mut PgConnection, sql: &str) -> Result<Vec<OutboxRow>, sqlx::Error> {
    conn.fetch_all(sql)
        .await?
        .iter()
        .map(OutboxRow::from_row)
        .collect()
}

/// Whether the claim failed because this connection has not prepared it (its transaction is then
/// aborted).
fn is_unprepared(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "26000")
}

/// How often a relay without LISTEN tries to LISTEN again.
const LISTEN_RETRY: Duration = Duration::from_secs(10);

async fn listen(pool: &PgPool) -> Option<sqlx::postgres::PgListener> {
    let listened = async {
        let mut l = sqlx::postgres::PgListener::connect_with(pool).await?;
        l.listen("kit_outbox").await?;
        Ok::<_, sqlx::Error>(l)
    }
    .await;
    match listened {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "relay cannot LISTEN; polling until it can");
            None
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
    /// one after another and stop at its first row that is not acked.
    pub async fn publish(self, js: &jetstream::Context) -> Published {
        let mut by_key: BTreeMap<&str, Vec<&OutboxRow>> = BTreeMap::new();
        for row in &self.rows {
            by_key.entry(row.order_key.as_str()).or_default().push(row);
        }
        let results = join_all(by_key.into_values().map(|rows| publish_in_order(js, rows))).await;
        let mut published = Published {
            claimed: self.rows.len(),
            tx: self.tx,
            acked: Vec::with_capacity(self.rows.len()),
            refused: Vec::new(),
            parked: Vec::new(),
            unreachable: None,
            row_backoff: self.row_backoff,
        };
        for outcomes in results {
            for (row, outcome) in outcomes {
                match outcome {
                    RowOutcome::Acked(seq) => published.acked.push((row.id, seq)),
                    RowOutcome::Refused(e) => {
                        tracing::warn!(event_id = %row.event_id, subject = %row.subject, error = %e, "stream refused an event; retrying it later");
                        published.refused.push((row.id, e));
                    }
                    RowOutcome::Unpublishable(e) => {
                        tracing::error!(event_id = %row.event_id, subject = %row.subject, error = %e, "event can never be published; parked");
                        published.parked.push((row.id, e));
                    }
                    RowOutcome::Unreachable(e) => {
                        if published.unreachable.is_none() {
                            published.unreachable = Some((row.event_id, row.subject.clone(), e));
                        }
                    }
                }
            }
        }
        published
    }
}

async fn publish_in_order<'a>(
    js: &jetstream::Context,
    rows: Vec<&'a OutboxRow>,
) -> Vec<(&'a OutboxRow, RowOutcome)> {
    use async_nats::jetstream::context::PublishErrorKind;
    let mut outcomes = Vec::with_capacity(rows.len());
    for row in rows {
        let span = publish_span(row);
        let publish = PublishMessage::build()
            .payload(row.payload.clone().into())
            .headers(header_map(&row.headers))
            .message_id(row.event_id.to_string());
        let ack = async {
            match js.send_publish(row.subject.clone(), publish).await {
                Ok(pending) => pending.await,
                Err(e) => Err(e),
            }
        }
        .instrument(span.clone())
        .await;
        let outcome = match ack {
            Ok(ack) => RowOutcome::Acked(ack.sequence),
            Err(e) => match e.kind() {
                PublishErrorKind::MaxPayloadExceeded => RowOutcome::Unpublishable(format!(
                    "{e}: {} bytes of payload; the server accepts {}",
                    row.payload.len(),
                    js.client().server_info().max_payload
                )),
                PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => {
                    RowOutcome::Unreachable(e)
                }
                _ => RowOutcome::Refused(format!("{e}: {}", error_chain(&e))),
            },
        };
        span.record("outcome", outcome.name());
        let stop = !matches!(outcome, RowOutcome::Acked(_));
        outcomes.push((row, outcome));
        // The next row of this key waits: publishing it now would reorder the key.
        if stop {
            break;
        }
    }
    outcomes
}

/// The span of one publish: a child of the span that emitted the event (its stored
/// `traceparent`), beside the handlers that will receive it. Only made when traces are exported:
/// without an exporter the relay's hot path stays as it was.
fn publish_span(row: &OutboxRow) -> tracing::Span {
    if !crate::otel::enabled() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "publish",
        event_id = %row.event_id,
        subject = %row.subject,
        order_id = %row.order_key,
        outcome = tracing::field::Empty,
    );
    if let Some(parent) = row
        .headers
        .get(TRACEPARENT)
        .and_then(|t| t.as_str())
        .and_then(TraceParent::parse)
    {
        crate::otel::continue_trace(&span, &parent);
    }
    span
}

impl RowOutcome {
    fn name(&self) -> &'static str {
        match self {
            RowOutcome::Acked(_) => "published",
            RowOutcome::Refused(_) => "refused",
            RowOutcome::Unpublishable(_) => "unpublishable",
            RowOutcome::Unreachable(_) => "unreachable",
        }
    }
}

/// The sources of an error, for a row's `last_error`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        out.push(s.to_string());
        source = s.source();
    }
    out.join(": ")
}

impl Published {
    /// How many events the stream acknowledged.
    pub fn acked(&self) -> usize {
        self.acked.len()
    }

    /// Marks the acknowledged rows published, the refused ones for a later try, the unpublishable
    /// ones parked, and commits. Only a step that reached nothing is an error.
    pub async fn mark(mut self) -> Result<RelayOutcome, RelayError> {
        for (id, error) in &self.refused {
            sqlx::query(
                "UPDATE kit_outbox SET attempts = attempts + 1, last_error = $2,
                        next_attempt_at = now()
                            + make_interval(secs => least($3 * power(2, least(attempts, 30)), $4))
                 WHERE id = $1",
            )
            .bind(id)
            .bind(crate::dead_letter::storable(error))
            .bind(self.row_backoff.initial.as_secs_f64())
            .bind(self.row_backoff.max.as_secs_f64())
            .execute(self.tx.conn()?)
            .await?;
        }
        for (id, reason) in &self.parked {
            sqlx::query(
                "UPDATE kit_outbox SET attempts = attempts + 1, parked_at = now(),
                        park_reason = $2, last_error = $2
                 WHERE id = $1",
            )
            .bind(id)
            .bind(crate::dead_letter::storable(reason))
            .execute(self.tx.conn()?)
            .await?;
        }
        // The acked rows' mark travels with the COMMIT, as one simple query. It holds only
        // integers the relay formats itself. A simple query is planned at every step, never
        // prepared: a plan cached while the outbox was still empty is a seq scan, and it would be
        // kept, reading the whole outbox at every mark as it grows.
        let published = self.acked.len();
        let end = mark_and_commit(&self.acked);
        self.tx.end(&end).await?;
        match self.unreachable {
            Some((event_id, subject, source))
                if published == 0 && self.refused.is_empty() && self.parked.is_empty() =>
            {
                Err(RelayError::Unreachable {
                    claimed: self.claimed,
                    event_id,
                    subject,
                    source,
                })
            }
            _ => Ok(RelayOutcome::Published(published)),
        }
    }
}

/// The mark of the acked rows (their ids and stream sequences), then `COMMIT`.
fn mark_and_commit(acked: &[(i64, u64)]) -> String {
    use std::fmt::Write as _;
    if acked.is_empty() {
        return "COMMIT".to_owned();
    }
    let mut ids = String::new();
    let mut seqs = String::new();
    for (i, (id, seq)) in acked.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(ids, "{sep}{id}");
        let _ = write!(seqs, "{sep}{}", (*seq).min(i64::MAX as u64));
    }
    format!(
        "UPDATE kit_outbox SET published_at = now(), stream_seq = u.seq
         FROM unnest(ARRAY[{ids}]::bigint[], ARRAY[{seqs}]::bigint[]) AS u(id, seq)
         WHERE kit_outbox.id = u.id;
         COMMIT"
    )
}
