//! The stream audit: the events a service's outbox knows as published over a time window are
//! looked for in their streams, and what a stream no longer holds is published again from the
//! outbox, under the same `Nats-Msg-Id` and `ce-id`.
//!
//! NATS JetStream can lose writes it has acknowledged (Jepsen, NATS 2.12.1: on power loss with the
//! default fsync, and in some cluster faults even with `sync_interval: always`). The relay marks an
//! outbox row published once its PubAck arrives, so without this check such an event would be gone
//! for good. The outbox is the source of truth for what a service said, and consumers dedupe
//! through their inbox, so publishing again an event they already applied changes nothing.
//!
//! How [`audit`] checks one service:
//! 1. It takes a REPEATABLE READ snapshot of the service's database, and only then reads each
//!    stream's last sequence. A row visible in the snapshot was acknowledged by its stream before
//!    its transaction committed, so before the snapshot, so at a sequence no later than that last
//!    one. A row published while the audit runs is not in the snapshot and cannot look missing.
//! 2. In that snapshot it selects the rows published within the window (`published_at >= now() -
//!    window`, not parked) whose subject belongs to the [`StreamScope`]. Unpublished rows are the
//!    relay's business.
//! 3. It reads the stream from the window's start minus [`AuditConfig::margin`] (the database's
//!    and NATS's clocks differ) up to that last sequence, with an ephemeral pull consumer that
//!    delivers headers only and expects no acks, and crosses off every `Nats-Msg-Id` and `ce-id`
//!    it reads. A short or empty fetch is not the end: the read ends at the last sequence, when
//!    the server has nothing more pending, or once every row is crossed off.
//! 4. A row not crossed off whose stream sequence lies before where the read began (a replay
//!    records rows as published long after their stream stored them) is looked up at that
//!    sequence, or among the messages of its subject when no sequence is known, before it is
//!    called missing.
//! 5. With [`AuditConfig::republish`], what is missing is published again from its row (subject,
//!    headers and payload as stored), in outbox order, with the event id as `Nats-Msg-Id`. A
//!    PubAck that says "duplicate" means the stream still remembers the Msg-Id within its dedupe
//!    window (the event vanished less than that window after it was published): it is reported as
//!    deduped, not republished, and a run after the window republishes it.
//!
//! Architecture Invariant: the audit only reads the database. It writes only to NATS, and only
//! events the outbox already holds, byte for byte.

use crate::envelope::header_map;
use crate::provision::DLQ_STREAM;
use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use futures::StreamExt;
use jetsaga_contracts::Producer;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

/// The part of one stream that one service's outbox publishes to: the subjects on `stream` that
/// start with a prefix, e.g. `payments.` on PAYMENTS or `dlq.payment.` on DLQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamScope {
    stream: String,
    /// Ends with a `.`.
    prefix: String,
}

impl StreamScope {
    /// The subjects of `stream` that start with `prefix` (a trailing `.` is added when missing).
    pub fn new(stream: impl Into<String>, prefix: &str) -> Self {
        let prefix = format!("{}.", prefix.trim_end_matches('.'));
        StreamScope {
            stream: stream.into(),
            prefix,
        }
    }

    /// A producer's own stream: `PAYMENTS`, `payments.>`.
    pub fn own(producer: Producer) -> Self {
        Self::new(producer.stream(), producer.domain())
    }

    /// The copies of a service's dead letters and its operators' decisions on them:
    /// `DLQ`, `dlq.<service>.>`.
    pub fn dead_letters(service: &str) -> Self {
        Self::new(DLQ_STREAM, &format!("dlq.{service}"))
    }

    /// Every stream a service's outbox publishes to: its own and the DLQ.
    pub fn of_service(producer: Producer) -> Vec<Self> {
        vec![Self::own(producer), Self::dead_letters(producer.service())]
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The subject filter, e.g. `payments.>`.
    pub fn filter(&self) -> String {
        format!("{}>", self.prefix)
    }
}

/// The audit's settings.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Rows published at most this long before the audit are checked. Default 24 hours. Published
    /// rows must be kept at least this long (jetsaga never deletes them).
    pub window: Duration,
    /// The stream is read from this long before the window starts, because the clocks of
    /// PostgreSQL and NATS differ. Default 10 minutes.
    pub margin: Duration,
    /// Publish what is missing again; `false` only reports it. Default `true`.
    pub republish: bool,
    /// Messages asked for per fetch (headers only, so a fetch is small). Default 1024.
    pub batch: usize,
    /// Empty fetches in a row, while the server says more is pending, before the read gives up.
    /// Default 20 (about a minute of waiting).
    pub max_empty_fetches: u32,
    /// How long the audit's consumer may sit idle before the server deletes it: generous, so a slow
    /// database or a pause in the read does not lose it. Default 1 hour.
    pub inactive_threshold: Duration,
    /// Event ids listed per kind in a report (the counts are always complete). Default 20.
    pub listed: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            window: Duration::from_secs(24 * 3600),
            margin: Duration::from_secs(600),
            republish: true,
            batch: 1024,
            max_empty_fetches: 20,
            inactive_threshold: Duration::from_secs(3600),
            listed: 20,
        }
    }
}

/// What the audit found in one stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamReport {
    pub stream: String,
    /// The subjects audited, e.g. `payments.>`.
    pub subjects: String,
    /// Rows published at or after this time (the database's clock) were checked.
    #[serde(with = "time::serde::rfc3339")]
    pub window_start: OffsetDateTime,
    /// The window asked for reaches further back than the stream keeps events (its `max_age`),
    /// so it was cut to that retention less the margin: older events expired by design.
    pub retention_capped: bool,
    /// The stream's last sequence when the audit began; the read stopped there.
    pub last_seq: u64,
    /// Messages read from the stream (headers only).
    pub read: u64,
    /// Outbox rows checked.
    pub checked: u64,
    /// Rows whose event the stream holds.
    pub found: u64,
    /// Rows whose event the stream no longer holds.
    pub missing: u64,
    /// Missing events published again, and stored by the stream.
    pub republished: u64,
    /// Missing events published again that the stream dropped as duplicates of their Msg-Id:
    /// still missing until a run after the stream's dedupe window.
    pub deduped: u64,
    /// The first missing event ids, in outbox order.
    pub missing_ids: Vec<Uuid>,
    /// The first republished event ids, in outbox order.
    pub republished_ids: Vec<Uuid>,
    /// The first deduped event ids, in outbox order.
    pub deduped_ids: Vec<Uuid>,
    /// The stream's dedupe window, for the advice on deduped events.
    #[serde(rename = "duplicate_window_secs", serialize_with = "secs")]
    pub duplicate_window: Duration,
    /// How long reading, looking up and republishing took for this stream (the snapshot the
    /// streams of one audit share is not counted).
    #[serde(rename = "elapsed_secs", serialize_with = "secs")]
    pub elapsed: Duration,
}

impl StreamReport {
    /// Missing events that are still missing: not republished (a dry run, or deduped).
    pub fn unresolved(&self) -> u64 {
        self.missing.saturating_sub(self.republished)
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Why an audit could not finish. Nothing it republished before the failure is undone; a new run
/// finds those events in the stream.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("stream audit: cannot read the outbox")]
    Outbox(#[source] sqlx::Error),
    #[error("stream audit: cannot read the state of stream {stream}")]
    StreamState {
        stream: String,
        #[source]
        source: async_nats::Error,
    },
    #[error("stream audit: cannot read stream {stream} ({subjects}) from sequence {from_seq}")]
    Read {
        stream: String,
        subjects: String,
        from_seq: u64,
        #[source]
        source: async_nats::Error,
    },
    #[error(
        "stream audit: stream {stream} holds {pending} more message(s) of {subjects} after \
         sequence {after_seq} but delivered none in {fetches} fetches"
    )]
    Stalled {
        stream: String,
        subjects: String,
        after_seq: u64,
        pending: u64,
        fetches: u32,
    },
    #[error("stream audit: cannot look up event {event_id} in stream {stream} (sequence {seq:?})")]
    Lookup {
        stream: String,
        event_id: Uuid,
        seq: Option<u64>,
        #[source]
        source: async_nats::Error,
    },
    #[error("stream audit: the outbox row of event {event_id} vanished during the audit")]
    RowVanished { event_id: Uuid },
    #[error(
        "stream audit: republishing event {event_id} on {subject} to stream {stream} failed \
         ({republished} republished before it)"
    )]
    Republish {
        stream: String,
        event_id: Uuid,
        subject: String,
        republished: u64,
        #[source]
        source: async_nats::jetstream::context::PublishError,
    },
}

/// An outbox row in the window: only what the audit needs to find it.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct Row {
    id: i64,
    event_id: Uuid,
    stream_seq: Option<i64>,
}

/// One scope with what the snapshot said.
#[derive(Debug)]
struct Snapshot {
    last_seq: u64,
    duplicate_window: Duration,
    /// The rows published at or after this time are checked.
    window_start: OffsetDateTime,
    /// The window was cut to the stream's retention.
    retention_capped: bool,
    rows: Vec<Row>,
}

/// The window of a stream that keeps events for `max_age` (zero: for ever): at most the age less
/// the margin, because an event older than the stream's retention has expired by design, not
/// been lost, and one that is about to expire may do so while the audit reads. Returns the
/// window and whether it was cut.
fn window_within_retention(
    window: Duration,
    margin: Duration,
    max_age: Duration,
) -> (Duration, bool) {
    if max_age.is_zero() {
        return (window, false);
    }
    let kept = max_age.saturating_sub(margin);
    if window > kept {
        (kept, true)
    } else {
        (window, false)
    }
}

/// Audits the streams of `scopes` against the outbox in `pool`: see the module documentation.
/// Returns one report per scope, in the same order.
pub async fn audit(
    pool: &PgPool,
    js: &jetstream::Context,
    scopes: &[StreamScope],
    config: &AuditConfig,
) -> Result<Vec<StreamReport>, AuditError> {
    let snapshots = snapshot(pool, js, scopes, config).await?;
    let mut reports = Vec::with_capacity(scopes.len());
    for (scope, snap) in scopes.iter().zip(snapshots) {
        let started = Instant::now();
        let read_from = snap.window_start - config.margin;
        let mut report = StreamReport {
            stream: scope.stream.clone(),
            subjects: scope.filter(),
            window_start: snap.window_start,
            retention_capped: snap.retention_capped,
            last_seq: snap.last_seq,
            read: 0,
            checked: snap.rows.len() as u64,
            found: 0,
            missing: 0,
            republished: 0,
            deduped: 0,
            missing_ids: Vec::new(),
            republished_ids: Vec::new(),
            deduped_ids: Vec::new(),
            duplicate_window: snap.duplicate_window,
            elapsed: Duration::ZERO,
        };
        let mut unseen: HashMap<Uuid, Row> = snap.rows.iter().map(|r| (r.event_id, *r)).collect();
        let read_start = if unseen.is_empty() {
            snap.last_seq + 1
        } else {
            let read =
                read_stream(js, scope, read_from, snap.last_seq, config, &mut unseen).await?;
            report.read = read.messages;
            read.first_seq.unwrap_or(snap.last_seq + 1)
        };
        let mut missing: Vec<Row> = unseen.into_values().collect();
        missing.sort_by_key(|r| r.id);
        let missing = look_up(pool, js, scope, missing, read_start).await?;
        report.missing = missing.len() as u64;
        report.found = report.checked - report.missing;
        report.missing_ids = missing
            .iter()
            .take(config.listed)
            .map(|r| r.event_id)
            .collect();
        if config.republish && !missing.is_empty() {
            republish(pool, js, scope, &missing, config.listed, &mut report).await?;
        }
        report.elapsed = started.elapsed();
        tracing::info!(
            stream = %report.stream,
            subjects = %report.subjects,
            checked = report.checked,
            missing = report.missing,
            republished = report.republished,
            deduped = report.deduped,
            "stream audited"
        );
        reports.push(report);
    }
    Ok(reports)
}

/// The snapshot (steps 1 and 2): per scope the stream's last sequence, read after the snapshot
/// was taken, and the rows the snapshot shows in the window.
async fn snapshot(
    pool: &PgPool,
    js: &jetstream::Context,
    scopes: &[StreamScope],
    config: &AuditConfig,
) -> Result<Vec<Snapshot>, AuditError> {
    let mut tx = pool.begin().await.map_err(AuditError::Outbox)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(AuditError::Outbox)?;
    // The first query of the transaction takes its snapshot: from here on, no row committed
    // later is visible.
    let now: OffsetDateTime = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *tx)
        .await
        .map_err(AuditError::Outbox)?;
    let mut states = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let state_error = |source: async_nats::Error| AuditError::StreamState {
            stream: scope.stream.clone(),
            source,
        };
        let stream = js
            .get_stream(&scope.stream)
            .await
            .map_err(|e| state_error(e.into()))?;
        let info = stream.cached_info();
        states.push((
            info.state.last_sequence,
            info.config.duplicate_window,
            info.config.max_age,
        ));
    }
    let mut snapshots = Vec::with_capacity(scopes.len());
    for (scope, (last_seq, duplicate_window, max_age)) in scopes.iter().zip(states) {
        let (window, retention_capped) =
            window_within_retention(config.window, config.margin, max_age);
        let window_start = now - window;
        let rows = sqlx::query_as::<_, Row>(
            "SELECT id, event_id, stream_seq FROM kit_outbox
             WHERE published_at >= $1 AND parked_at IS NULL AND starts_with(subject, $2)
             ORDER BY id",
        )
        .bind(window_start)
        .bind(&scope.prefix)
        .fetch_all(&mut *tx)
        .await
        .map_err(AuditError::Outbox)?;
        snapshots.push(Snapshot {
            last_seq,
            duplicate_window,
            window_start,
            retention_capped,
            rows,
        });
    }
    tx.rollback().await.map_err(AuditError::Outbox)?;
    Ok(snapshots)
}

/// What one read of a stream saw.
#[derive(Debug, Default)]
struct ReadOutcome {
    messages: u64,
    /// The first sequence delivered: the read covered everything from here to the last sequence.
    first_seq: Option<u64>,
}

/// Step 3: reads the scope's subjects from `from` up to `last_seq` and removes every event it
/// reads from `unseen`.
async fn read_stream(
    js: &jetstream::Context,
    scope: &StreamScope,
    from: OffsetDateTime,
    last_seq: u64,
    config: &AuditConfig,
    unseen: &mut HashMap<Uuid, Row>,
) -> Result<ReadOutcome, AuditError> {
    let mut outcome = ReadOutcome::default();
    if last_seq == 0 {
        return Ok(outcome);
    }
    let mut reader = Reader::open(js, scope, from, config).await?;
    if reader.consumer.cached_info().num_pending == 0 {
        reader.close().await;
        return Ok(outcome);
    }
    let mut empty = 0u32;
    let mut lost = 0u32;
    let mut next = 0u64;
    'read: while !unseen.is_empty() {
        let batch = match reader.fetch(config.batch).await {
            Ok(batch) => batch,
            Err(source) => {
                reader.reopen_after(source, &mut lost, next, config).await?;
                continue;
            }
        };
        let delivered = batch.len();
        for read in batch {
            if read.seq > last_seq {
                break 'read;
            }
            outcome.messages += 1;
            outcome.first_seq.get_or_insert(read.seq);
            next = read.seq + 1;
            for id in read.ids {
                unseen.remove(&id);
            }
            // The server says nothing more matches: the read is complete without another fetch.
            if read.seq == last_seq || read.pending == 0 {
                break 'read;
            }
        }
        if delivered > 0 {
            empty = 0;
            continue;
        }
        // An empty fetch is not the end: only the server's count of what is left is.
        match reader.pending().await {
            Ok(0) => break,
            Ok(pending) => {
                empty += 1;
                if empty >= config.max_empty_fetches {
                    reader.close().await;
                    return Err(AuditError::Stalled {
                        stream: scope.stream.clone(),
                        subjects: scope.filter(),
                        after_seq: next.saturating_sub(1),
                        pending,
                        fetches: empty,
                    });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(source) => reader.reopen_after(source, &mut lost, next, config).await?,
        }
    }
    reader.close().await;
    Ok(outcome)
}

/// How long a fetch waits when the server has nothing to deliver yet.
const FETCH_WAIT: Duration = Duration::from_secs(2);

/// One message as the audit reads it.
#[derive(Debug)]
struct Delivered {
    seq: u64,
    /// What the server still had for the consumer after this message.
    pending: u64,
    ids: Vec<Uuid>,
}

/// The audit's ephemeral consumer on one stream.
struct Reader {
    stream: jetstream::stream::Stream,
    scope: StreamScope,
    from: OffsetDateTime,
    consumer: jetstream::consumer::Consumer<pull::Config>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("scope", &self.scope)
            .field("consumer", &self.consumer.cached_info().name)
            .finish()
    }
}

impl Reader {
    async fn open(
        js: &jetstream::Context,
        scope: &StreamScope,
        from: OffsetDateTime,
        config: &AuditConfig,
    ) -> Result<Self, AuditError> {
        let read_error = |source: async_nats::Error| AuditError::Read {
            stream: scope.stream.clone(),
            subjects: scope.filter(),
            from_seq: 0,
            source,
        };
        let stream = js
            .get_stream(&scope.stream)
            .await
            .map_err(|e| read_error(e.into()))?;
        let consumer = create_consumer(
            &stream,
            scope,
            DeliverPolicy::ByStartTime { start_time: from },
            config,
        )
        .await
        .map_err(read_error)?;
        Ok(Reader {
            stream,
            scope: scope.clone(),
            from,
            consumer,
        })
    }

    /// One fetch: what the server has now, up to `max` messages.
    async fn fetch(&self, max: usize) -> Result<Vec<Delivered>, async_nats::Error> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max)
            // Only an empty fetch waits this long; one with messages ends when they are sent.
            .expires(FETCH_WAIT)
            .messages()
            .await?;
        let mut out = Vec::with_capacity(max);
        while let Some(msg) = batch.next().await {
            let msg = msg?;
            let info = msg.info()?;
            out.push(Delivered {
                seq: info.stream_sequence,
                pending: info.pending,
                ids: message_ids(msg.headers.as_ref()),
            });
        }
        Ok(out)
    }

    /// What the server still has for the consumer.
    async fn pending(&mut self) -> Result<u64, async_nats::Error> {
        Ok(self.consumer.info().await?.num_pending)
    }

    /// A consumer that failed (deleted by the server, a leader change) is made again from `next`,
    /// a few times.
    async fn reopen_after(
        &mut self,
        source: async_nats::Error,
        times: &mut u32,
        next: u64,
        config: &AuditConfig,
    ) -> Result<(), AuditError> {
        *times += 1;
        let read_error = |source: async_nats::Error| AuditError::Read {
            stream: self.scope.stream.clone(),
            subjects: self.scope.filter(),
            from_seq: next,
            source,
        };
        if *times > 3 {
            return Err(read_error(source));
        }
        tracing::warn!(stream = %self.scope.stream, next, error = %source, "stream audit consumer failed; creating it again");
        tokio::time::sleep(Duration::from_millis(500 * u64::from(*times))).await;
        let old = self.consumer.cached_info().name.clone();
        let _ = self.stream.delete_consumer(&old).await;
        // Nothing read yet: from the start time again; else just after the last message read.
        let deliver_policy = if next == 0 {
            DeliverPolicy::ByStartTime {
                start_time: self.from,
            }
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: next,
            }
        };
        self.consumer = create_consumer(&self.stream, &self.scope, deliver_policy, config)
            .await
            .map_err(read_error)?;
        Ok(())
    }

    /// Deletes the consumer (it would go after its inactive threshold anyway).
    async fn close(self) {
        let name = self.consumer.cached_info().name.clone();
        if let Err(e) = self.stream.delete_consumer(&name).await {
            tracing::debug!(consumer = %name, error = %e, "stream audit consumer not deleted; it expires on its own");
        }
    }
}

async fn create_consumer(
    stream: &jetstream::stream::Stream,
    scope: &StreamScope,
    deliver_policy: DeliverPolicy,
    config: &AuditConfig,
) -> Result<jetstream::consumer::Consumer<pull::Config>, async_nats::Error> {
    Ok(stream
        .create_consumer(pull::Config {
            name: Some(format!("stream-audit-{}", Uuid::new_v4().simple())),
            description: Some(format!("jetsaga stream audit of {}", scope.filter())),
            filter_subject: scope.filter(),
            deliver_policy,
            ack_policy: AckPolicy::None,
            headers_only: true,
            inactive_threshold: config.inactive_threshold,
            memory_storage: true,
            ..Default::default()
        })
        .await?)
}

/// The event ids a message carries: its `Nats-Msg-Id` and its `ce-id` (the same, for every event
/// jetsaga publishes).
fn message_ids(headers: Option<&async_nats::HeaderMap>) -> Vec<Uuid> {
    let Some(headers) = headers else {
        return Vec::new();
    };
    let mut ids = Vec::with_capacity(2);
    for name in ["Nats-Msg-Id", "ce-id"] {
        if let Some(id) = headers
            .get(name)
            .and_then(|v| Uuid::parse_str(v.as_str()).ok())
        {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

/// How many messages of one subject a lookup reads before it calls a row missing.
const SUBJECT_SCAN: usize = 100;

/// Step 4: the rows not seen, less those the stream holds before where the read began.
async fn look_up(
    pool: &PgPool,
    js: &jetstream::Context,
    scope: &StreamScope,
    unseen: Vec<Row>,
    read_start: u64,
) -> Result<Vec<Row>, AuditError> {
    let earlier = |r: &Row| r.stream_seq.is_none_or(|s| (s as u64) < read_start);
    if !unseen.iter().any(earlier) {
        return Ok(unseen);
    }
    let lookup_error = |row: &Row, source: async_nats::Error| AuditError::Lookup {
        stream: scope.stream.clone(),
        event_id: row.event_id,
        seq: row.stream_seq.map(|s| s as u64),
        source,
    };
    let stream =
        js.get_stream_no_info(&scope.stream)
            .await
            .map_err(|e| AuditError::StreamState {
                stream: scope.stream.clone(),
                source: e.into(),
            })?;
    let mut missing = Vec::with_capacity(unseen.len());
    for row in unseen {
        let held = match row.stream_seq {
            _ if !earlier(&row) => false,
            Some(seq) => match stream.get_raw_message(seq as u64).await {
                Ok(msg) => message_ids(Some(&msg.headers)).contains(&row.event_id),
                Err(e) if is_not_found(&e) => false,
                Err(e) => return Err(lookup_error(&row, e.into())),
            },
            None => {
                let subject: String =
                    sqlx::query_scalar("SELECT subject FROM kit_outbox WHERE event_id = $1")
                        .bind(row.event_id)
                        .fetch_one(pool)
                        .await
                        .map_err(AuditError::Outbox)?;
                held_on_subject(&stream, &subject, row.event_id, read_start)
                    .await
                    .map_err(|e| lookup_error(&row, e))?
            }
        };
        if !held {
            missing.push(row);
        }
    }
    Ok(missing)
}

fn is_not_found(e: &async_nats::jetstream::stream::RawMessageError) -> bool {
    matches!(
        e.kind(),
        async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound
    )
}

/// Whether one of the first [`SUBJECT_SCAN`] messages of `subject` before `before` is `event_id`.
async fn held_on_subject<I>(
    stream: &jetstream::stream::Stream<I>,
    subject: &str,
    event_id: Uuid,
    before: u64,
) -> Result<bool, async_nats::Error> {
    let mut seq = 1;
    for _ in 0..SUBJECT_SCAN {
        let msg = match stream.get_first_raw_message_by_subject(subject, seq).await {
            Ok(msg) => msg,
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if msg.sequence >= before {
            return Ok(false);
        }
        if message_ids(Some(&msg.headers)).contains(&event_id) {
            return Ok(true);
        }
        seq = msg.sequence + 1;
    }
    Ok(false)
}

/// The stored event of a missing row.
#[derive(Debug, sqlx::FromRow)]
struct Stored {
    event_id: Uuid,
    subject: String,
    headers: serde_json::Value,
    payload: Vec<u8>,
}

/// Events published again per round trip: sent one after another, then their acks awaited.
const REPUBLISH_CHUNK: usize = 256;

/// Step 5: publishes the missing rows again, in outbox order.
async fn republish(
    pool: &PgPool,
    js: &jetstream::Context,
    scope: &StreamScope,
    missing: &[Row],
    listed: usize,
    report: &mut StreamReport,
) -> Result<(), AuditError> {
    for chunk in missing.chunks(REPUBLISH_CHUNK) {
        let ids: Vec<Uuid> = chunk.iter().map(|r| r.event_id).collect();
        let stored = sqlx::query_as::<_, Stored>(
            "SELECT event_id, subject, headers, payload FROM kit_outbox
             WHERE event_id = ANY($1) ORDER BY id",
        )
        .bind(&ids)
        .fetch_all(pool)
        .await
        .map_err(AuditError::Outbox)?;
        if let Some(gone) = ids
            .iter()
            .find(|id| !stored.iter().any(|s| s.event_id == **id))
        {
            return Err(AuditError::RowVanished { event_id: *gone });
        }
        // Sent in order on one connection, so the stream stores them in outbox order; the acks
        // are awaited afterwards, as the relay does.
        let mut acks = Vec::with_capacity(stored.len());
        for row in &stored {
            let publish = jetstream::message::PublishMessage::build()
                .payload(row.payload.clone().into())
                .headers(header_map(&row.headers))
                .message_id(row.event_id.to_string());
            acks.push((row, js.send_publish(row.subject.clone(), publish).await));
        }
        for (row, sent) in acks {
            let ack = match sent {
                Ok(pending) => pending.await,
                Err(e) => Err(e),
            };
            let ack = ack.map_err(|source| AuditError::Republish {
                stream: scope.stream.clone(),
                event_id: row.event_id,
                subject: row.subject.clone(),
                republished: report.republished,
                source,
            })?;
            if ack.duplicate {
                report.deduped += 1;
                if report.deduped_ids.len() < listed {
                    report.deduped_ids.push(row.event_id);
                }
            } else {
                report.republished += 1;
                if report.republished_ids.len() < listed {
                    report.republished_ids.push(row.event_id);
                }
                tracing::info!(event_id = %row.event_id, subject = %row.subject, seq = ack.sequence, "missing event republished");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_is_audited_on_its_own_stream_and_its_dead_letter_copies() {
        let scopes = StreamScope::of_service(Producer::PAYMENT);
        let named: Vec<(&str, String)> = scopes.iter().map(|s| (s.stream(), s.filter())).collect();
        assert_eq!(
            named,
            [
                ("PAYMENTS", "payments.>".to_owned()),
                ("DLQ", "dlq.payment.>".to_owned())
            ]
        );
        assert_eq!(StreamScope::new("X", "x.y.").filter(), "x.y.>");
    }

    #[test]
    fn the_window_never_reaches_beyond_what_the_stream_keeps() {
        let (day, margin) = (Duration::from_secs(86_400), Duration::from_secs(600));
        assert_eq!(window_within_retention(day, margin, 30 * day), (day, false));
        assert_eq!(
            window_within_retention(60 * day, margin, 30 * day),
            (30 * day - margin, true)
        );
        assert_eq!(
            window_within_retention(60 * day, margin, Duration::ZERO),
            (60 * day, false)
        );
    }

    #[test]
    fn an_event_is_recognised_by_its_msg_id_or_its_ce_id() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", a.to_string().as_str());
        headers.insert("ce-id", a.to_string().as_str());
        assert_eq!(message_ids(Some(&headers)), [a]);
        headers.insert("ce-id", b.to_string().as_str());
        assert_eq!(message_ids(Some(&headers)), [a, b]);
        let mut junk = async_nats::HeaderMap::new();
        junk.insert("ce-id", "not-a-uuid");
        assert!(message_ids(Some(&junk)).is_empty());
        assert!(message_ids(None).is_empty());
    }
}
