//! Replay: a service re-consumes its input streams through its inbox, and re-applies the root
//! events of its own stream that its database lost.
//!
//! What it is for: a database restored from a backup has lost what happened after the backup, but
//! the streams have not. A replay from a sequence or a time before the backup brings it back:
//! - **inputs** go through the same handlers and the same inbox as in the service (what the inbox
//!   already knows is a duplicate, no second effect); the events a handler emits again have the
//!   same deterministic ids as the first time, so downstream inboxes dedupe them;
//! - **root events of its own stream** (API calls, admin changes, timers, repairs: events that no
//!   input caused) are applied by the service's [`Restore`] when its outbox does not know them —
//!   the outbox is the record of everything this database said;
//! - every source is read in stream time order, merged across streams, so a credit is applied
//!   before the charge that needed it, as it was the first time;
//! - at the end, outbox rows of events that are already in the stream are marked published, so the
//!   relay does not publish them a second time.
//!
//! The same run from the beginning of every stream rebuilds an empty database (`--from-scratch`).

use crate::consumer::{Consumer, ConsumerConfig, Disposition, RawMessage};
use crate::envelope::Envelope;
use crate::handler::{EventContext, Handler, HandlerError};
use crate::metrics::Metrics;
use crate::outbox;
use async_nats::jetstream::{self, consumer::pull, consumer::DeliverPolicy};
use futures::future::BoxFuture;
use futures::StreamExt;
use jetsaga_contracts::{EventSet, Producer};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// Where a service declares its consumers once, for whoever runs them: the service process
/// (durable consumers) or a replay (ephemeral consumers over the same subjects, same handlers).
pub trait Wiring {
    /// `handler` consumes `filter_subjects` of its input stream as durable consumer `durable`.
    fn consumer<H: Handler>(&mut self, durable: &'static str, filter_subjects: &[&str], handler: H);
}

/// Applies a root event of the service's own stream to its tables again: the state change the API
/// call, admin change or timer made when it emitted the event. Must be idempotent by business key
/// (a second application changes nothing), as the handlers are.
pub trait Restore: Send + Sync + 'static {
    /// The service's own events.
    type Event: EventSet;

    fn restore<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: Self::Event,
        ctx: &'a EventContext,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;
}

/// Where a replay starts reading each stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayFrom {
    /// The first message still in the stream.
    Beginning,
    /// This stream sequence (of every stream, unless a stream has its own in [`ReplayStart`]).
    Sequence(u64),
    /// Messages stored at or after this time.
    Time(OffsetDateTime),
}

/// The start of a replay: one rule for every stream, and per-stream sequences that override it.
#[derive(Debug, Clone)]
pub struct ReplayStart {
    pub default: ReplayFrom,
    /// Stream name → first sequence, e.g. `VOUCHERS` → 1200.
    pub streams: BTreeMap<String, u64>,
}

impl ReplayStart {
    pub fn from(default: ReplayFrom) -> Self {
        ReplayStart {
            default,
            streams: BTreeMap::new(),
        }
    }

    fn for_stream(&self, stream: &str) -> ReplayFrom {
        match self.streams.get(stream) {
            Some(seq) => ReplayFrom::Sequence(*seq),
            None => self.default.clone(),
        }
    }
}

/// What became of one message in a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An input applied now: the database had lost it.
    Applied,
    /// An input the inbox knew: no effect.
    AlreadyApplied,
    /// An input that failed for good, now in the dead letters (as it would be in the service).
    DeadLettered,
    /// A root event of the own stream applied again.
    Restored,
    /// A root event of the own stream the database still knows.
    AlreadyKnown,
    /// An event of the own stream that an input caused: handling that input emits it again.
    Derived,
    /// Could not be handled (transient failures until the end); the replay can be run again.
    Failed(String),
}

/// Counts of one source (one consumer, or the own-stream restorer).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceSummary {
    pub source: String,
    pub stream: String,
    pub seen: u64,
    pub applied: u64,
    pub already_applied: u64,
    pub dead_lettered: u64,
    pub restored: u64,
    pub already_known: u64,
    pub derived: u64,
    pub failed: u64,
}

impl SourceSummary {
    fn count(&mut self, step: &Step) {
        self.seen += 1;
        match step {
            Step::Applied => self.applied += 1,
            Step::AlreadyApplied => self.already_applied += 1,
            Step::DeadLettered => self.dead_lettered += 1,
            Step::Restored => self.restored += 1,
            Step::AlreadyKnown => self.already_known += 1,
            Step::Derived => self.derived += 1,
            Step::Failed(_) => self.failed += 1,
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    pub service: &'static str,
    pub sources: Vec<SourceSummary>,
    /// Outbox rows that were waiting to be published although their event is already in the
    /// stream (emitted again by the replay, or left unpublished in a restored backup).
    pub outbox_marked_published: u64,
    /// The first failures, for the report.
    pub failures: Vec<String>,
}

impl ReplaySummary {
    pub fn total(&self) -> SourceSummary {
        let mut t = SourceSummary {
            source: "total".into(),
            ..SourceSummary::default()
        };
        for s in &self.sources {
            t.seen += s.seen;
            t.applied += s.applied;
            t.already_applied += s.already_applied;
            t.dead_lettered += s.dead_lettered;
            t.restored += s.restored;
            t.already_known += s.already_known;
            t.derived += s.derived;
            t.failed += s.failed;
        }
        t
    }
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("replay of {service}: stream {stream}: {message}")]
    Stream {
        service: &'static str,
        stream: &'static str,
        message: String,
    },
    #[error("replay of {service}: database: {source}")]
    Database {
        service: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

/// Told about a replay's progress (a progress bar).
pub trait Progress: Send + Sync {
    /// How many messages the replay will read, once known.
    fn total(&self, messages: u64);
    /// One message done.
    fn step(&self, source: &str, step: &Step);
}

/// No progress reporting.
#[derive(Debug, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn total(&self, _: u64) {}
    fn step(&self, _: &str, _: &Step) {}
}

/// One source of messages in a replay: a consumer's handler or the own-stream restorer.
trait Source: Send + Sync {
    fn name(&self) -> &str;
    fn stream(&self) -> &'static str;
    fn filter_subjects(&self) -> Vec<String>;
    fn handle<'a>(&'a self, raw: &'a RawMessage) -> BoxFuture<'a, Step>;
}

impl<H: Handler> Source for Consumer<H> {
    fn name(&self) -> &str {
        self.config().durable
    }

    fn stream(&self) -> &'static str {
        <H::Input as EventSet>::PRODUCER.stream()
    }

    fn filter_subjects(&self) -> Vec<String> {
        self.config().filter_subjects.clone()
    }

    /// As the service would: transient failures are tried again with the consumer's backoff, and
    /// the last attempt dead-letters.
    fn handle<'a>(&'a self, raw: &'a RawMessage) -> BoxFuture<'a, Step> {
        Box::pin(async move {
            let mut raw = raw.clone();
            let mut attempt = 1;
            let mut waits = 0u32;
            while attempt <= self.config().max_failures.max(1) {
                raw.delivered = attempt;
                match self.process_raw(&raw).await {
                    Disposition::Applied => return Step::Applied,
                    Disposition::Duplicate => return Step::AlreadyApplied,
                    Disposition::DeadLettered(_) => return Step::DeadLettered,
                    Disposition::Retry(delay) => {
                        attempt += 1;
                        tokio::time::sleep(delay.min(Duration::from_secs(2))).await
                    }
                    Disposition::Contended(delay) if waits < 120 => {
                        waits += 1;
                        tokio::time::sleep(delay.min(Duration::from_secs(2))).await
                    }
                    // The database is unavailable: wait for it, as the service would; a replay
                    // that waits ten minutes gives up and says so.
                    Disposition::Unavailable if waits < 120 => {
                        waits += 1;
                        tokio::time::sleep(self.config().unavailable_backoff.delay(waits)).await
                    }
                    Disposition::Unavailable | Disposition::Contended(_) => {
                        return Step::Failed(format!(
                            "{} seq {} ({}): the database stayed unavailable or its rows held",
                            raw.stream, raw.stream_seq, raw.subject
                        ))
                    }
                }
            }
            Step::Failed(format!(
                "{} seq {} ({}): still failing after {} attempts",
                raw.stream,
                raw.stream_seq,
                raw.subject,
                self.config().max_failures
            ))
        })
    }
}

/// Re-applies the root events of the service's own stream that its outbox does not know, and
/// remembers the id of every own event read, for the outbox marking at the end.
struct OwnStream<R: Restore> {
    name: String,
    pool: PgPool,
    restore: R,
    seen_ids: Arc<Mutex<Vec<uuid::Uuid>>>,
}

impl<R: Restore> OwnStream<R> {
    async fn apply(&self, envelope: &Envelope, event: R::Event, seq: u64) -> Result<Step, String> {
        let mut tx = self.pool.begin().await.map_err(|e| e.to_string())?;
        if outbox::contains(&mut tx, envelope.id)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(Step::AlreadyKnown);
        }
        let ctx = EventContext {
            event_id: envelope.id,
            event_time: envelope.time,
            consumer: "replay",
            stream_seq: Some(seq),
            delivered: 1,
        };
        self.restore
            .restore(&mut tx, event, &ctx)
            .await
            .map_err(|e| format!("event {}: {e}", envelope.id))?;
        outbox::record_published(&mut tx, envelope, seq)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(Step::Restored)
    }
}

impl<R: Restore> Source for OwnStream<R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn stream(&self) -> &'static str {
        <R::Event as EventSet>::PRODUCER.stream()
    }

    fn filter_subjects(&self) -> Vec<String> {
        vec![format!("{}.>", <R::Event as EventSet>::PRODUCER.domain())]
    }

    fn handle<'a>(&'a self, raw: &'a RawMessage) -> BoxFuture<'a, Step> {
        Box::pin(async move {
            let fail = |why: String| {
                Step::Failed(format!(
                    "{} seq {} ({}): {why}",
                    raw.stream, raw.stream_seq, raw.subject
                ))
            };
            let envelope = match Envelope::from_message(
                &raw.subject,
                raw.headers.as_ref(),
                raw.payload.clone(),
            ) {
                Ok(e) => e,
                Err(e) => return fail(e.to_string()),
            };
            if let Ok(mut ids) = self.seen_ids.lock() {
                ids.push(*envelope.id.as_uuid());
            }
            if envelope.causation_id != envelope.id {
                return Step::Derived;
            }
            let event = match R::Event::from_payload(&envelope.ce_type, &envelope.payload) {
                Ok(e) => e,
                Err(e) => return fail(format!("event {}: {e}", envelope.id)),
            };
            // A transient failure (a lock, a dropped connection) is tried again a few times.
            let mut last = String::new();
            for attempt in 0..5u32 {
                match self.apply(&envelope, event.clone(), raw.stream_seq).await {
                    Ok(step) => return step,
                    Err(e) => last = e,
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
            }
            fail(last)
        })
    }
}

/// A replay of one service, built by its [`Wiring`] and its [`Restore`].
pub struct Replay {
    producer: Producer,
    pool: PgPool,
    js: jetstream::Context,
    metrics: Arc<Metrics>,
    max_failures: i64,
    sources: Vec<Box<dyn Source>>,
    seen_ids: Arc<Mutex<Vec<uuid::Uuid>>>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("service", &self.producer.service())
            .field(
                "sources",
                &self.sources.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Wiring for Replay {
    fn consumer<H: Handler>(
        &mut self,
        durable: &'static str,
        filter_subjects: &[&str],
        handler: H,
    ) {
        let mut config = ConsumerConfig::new(
            self.producer.service(),
            durable,
            filter_subjects.iter().map(|s| (*s).to_owned()).collect(),
        );
        config.max_failures = self.max_failures;
        self.sources.push(Box::new(Consumer::new(
            self.pool.clone(),
            self.js.clone(),
            config,
            Arc::new(handler),
            self.metrics.clone(),
        )));
    }
}

/// A source being read: its ephemeral consumer and what has been fetched but not handled.
struct Reader {
    consumer: jetstream::consumer::Consumer<pull::Config>,
    buffer: VecDeque<(OffsetDateTime, RawMessage)>,
    done: bool,
}

impl Reader {
    /// The stored time of the next message, fetching a batch when the buffer is empty.
    async fn peek(&mut self) -> Result<Option<OffsetDateTime>, String> {
        if self.buffer.is_empty() && !self.done {
            let mut batch = self
                .consumer
                .fetch()
                .max_messages(256)
                .expires(Duration::from_secs(2))
                .messages()
                .await
                .map_err(|e| e.to_string())?;
            while let Some(msg) = batch.next().await {
                let msg = msg.map_err(|e| e.to_string())?;
                let info = msg.info().map_err(|e| e.to_string())?;
                let published = info.published;
                let pending = info.pending;
                self.buffer
                    .push_back((published, RawMessage::from_jetstream(&msg)));
                if pending == 0 {
                    self.done = true;
                }
            }
            if self.buffer.is_empty() {
                self.done = true;
            }
        }
        Ok(self.buffer.front().map(|(t, _)| *t))
    }
}

impl Replay {
    /// A replay of `producer`'s service on its database `pool`; add its consumers with
    /// [`Wiring`] and its restorer with [`Replay::restore_with`]. `max_failures` bounds the
    /// attempts per message, as in the service.
    pub fn new(
        producer: Producer,
        pool: PgPool,
        js: jetstream::Context,
        max_failures: i64,
    ) -> Self {
        Replay {
            producer,
            pool,
            js,
            metrics: Arc::new(Metrics::new()),
            max_failures,
            sources: Vec::new(),
            seen_ids: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Also re-applies the root events of the service's own stream that its database lost.
    pub fn restore_with<R: Restore>(&mut self, restore: R) {
        self.sources.push(Box::new(OwnStream {
            name: format!("{}-own-stream", self.producer.service()),
            pool: self.pool.clone(),
            restore,
            seen_ids: self.seen_ids.clone(),
        }));
    }

    /// Reads every source from `start` up to what its stream holds now, merged in stored-time
    /// order, and handles each message. Messages that arrive meanwhile are left to the service.
    pub async fn run(
        &self,
        start: &ReplayStart,
        progress: &dyn Progress,
    ) -> Result<ReplaySummary, ReplayError> {
        let service = self.producer.service();
        let mut readers = Vec::new();
        let mut total = 0u64;
        for source in &self.sources {
            let stream_name = source.stream();
            let fail = |message: String| ReplayError::Stream {
                service,
                stream: stream_name,
                message,
            };
            let stream = self
                .js
                .get_stream(stream_name)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let deliver_policy = match start.for_stream(stream_name) {
                ReplayFrom::Beginning => DeliverPolicy::All,
                ReplayFrom::Sequence(start_sequence) => DeliverPolicy::ByStartSequence {
                    start_sequence: start_sequence.max(1),
                },
                ReplayFrom::Time(start_time) => DeliverPolicy::ByStartTime { start_time },
            };
            let mut consumer = stream
                .create_consumer(pull::Config {
                    name: Some(format!(
                        "replay-{}-{}",
                        source.name(),
                        uuid::Uuid::new_v4().simple()
                    )),
                    description: Some(format!("jetsaga replay of {}", source.name())),
                    filter_subjects: source.filter_subjects(),
                    deliver_policy,
                    ack_policy: jetstream::consumer::AckPolicy::None,
                    inactive_threshold: Duration::from_secs(60),
                    memory_storage: true,
                    ..Default::default()
                })
                .await
                .map_err(|e| fail(e.to_string()))?;
            let pending = consumer
                .info()
                .await
                .map_err(|e| fail(e.to_string()))?
                .num_pending;
            total += pending;
            readers.push(Reader {
                consumer,
                buffer: VecDeque::new(),
                done: pending == 0,
            });
        }
        progress.total(total);

        let mut summary = ReplaySummary {
            service,
            sources: self
                .sources
                .iter()
                .map(|s| SourceSummary {
                    source: s.name().to_owned(),
                    stream: s.stream().to_owned(),
                    ..SourceSummary::default()
                })
                .collect(),
            ..ReplaySummary::default()
        };
        loop {
            // The source whose next message was stored first.
            let mut next: Option<(usize, OffsetDateTime)> = None;
            for (i, reader) in readers.iter_mut().enumerate() {
                let peeked = reader.peek().await.map_err(|message| ReplayError::Stream {
                    service,
                    stream: self.sources[i].stream(),
                    message,
                })?;
                if let Some(t) = peeked {
                    if next.is_none_or(|(_, best)| t < best) {
                        next = Some((i, t));
                    }
                }
            }
            let Some((i, _)) = next else { break };
            let Some((_, raw)) = readers[i].buffer.pop_front() else {
                continue;
            };
            let step = self.sources[i].handle(&raw).await;
            if let Step::Failed(why) = &step {
                if summary.failures.len() < 20 {
                    summary.failures.push(why.clone());
                }
            }
            progress.step(self.sources[i].name(), &step);
            summary.sources[i].count(&step);
        }
        // The ephemeral consumers would go after a minute of inactivity anyway.
        for reader in &readers {
            let info = reader.consumer.cached_info();
            if let Ok(stream) = self.js.get_stream(&info.stream_name).await {
                let _ = stream.delete_consumer(&info.name).await;
            }
        }
        let ids = self
            .seen_ids
            .lock()
            .map(|ids| ids.clone())
            .unwrap_or_default();
        if !ids.is_empty() {
            let db = |source| ReplayError::Database { service, source };
            let mut conn = self.pool.acquire().await.map_err(db)?;
            summary.outbox_marked_published = outbox::mark_already_published(&mut conn, &ids)
                .await
                .map_err(db)?;
        }
        Ok(summary)
    }
}
