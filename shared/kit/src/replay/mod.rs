//! Replay: a service's state rebuilt from the streams, applying what it recorded and deciding only
//! what it never decided.
//!
//! What it is for: a database restored from a backup has lost what happened after the backup, a
//! lost database has lost everything, but the streams have not. A replay brings it back in three
//! passes:
//! 1. **dead letters**: the DLQ stream's copies and operators' decisions for this service tell
//!    which inputs were dead-lettered, and whether someone requeued or discarded them;
//! 2. **facts**: the service's own stream holds every state change it committed (an API call, an
//!    admin change, a timer, and each handler's decision). They are applied as recorded
//!    ([`crate::facts::Restore`]), in the order the service committed them, never decided again;
//!    a derived fact also records its input in the inbox, as decided;
//! 3. **inputs**: each input stream is read again. An input the inbox knows, or that was
//!    dead-lettered, is not handled again. The rest (inputs whose handler decided to say nothing,
//!    and inputs the service never handled) go through the same handler and inbox as in the
//!    service, compensations first: the barrier then gives the answer it gave the first time.
//!
//! A handler run again may emit an id the own stream already holds only with the same content:
//! anything else is a **divergence**. It is not committed, it is reported, and the replay fails.
//!
//! **No silent gaps.** Each source starts at a safe point: the consumer's ack floor saved in the
//! database ([`crate::floor`]), or just after the last own event the outbox knows as published; an
//! operator's `--since` can only move that earlier. A replay that needs messages a stream no longer
//! holds refuses to start and says which. A stream is read up to the last sequence it had when the
//! replay began; a short fetch is not its end.
//!
//! At the end, outbox rows of events that are already in the stream are marked published, so the
//! relay does not publish them a second time.

mod dead_letters;
mod inputs;
mod own;
pub mod read;

pub use read::{Bounds, ReadError};

use crate::consumer::{Consumer, ConsumerConfig, RawMessage};
use crate::envelope::Envelope;
use crate::handler::Handler;
use crate::metrics::Metrics;
use crate::{floor, outbox};
use async_nats::jetstream;
use dead_letters::DeadLetterFacts;
use inputs::Input;
use jetsaga_contracts::Producer;
use own::{Known, OwnFacts, OwnStream, Pending, Reorder};
use read::Reader;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

pub use crate::facts::{FactContext, Restore, StateTable};

pub use crate::routes::Wiring;

/// Where a replay starts reading each stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayFrom {
    /// Just after what the database says it holds: each consumer's saved ack floor, and the last
    /// own event its outbox knows as published.
    Saved,
    /// The first message of every stream (rebuilding an empty database).
    Beginning,
    /// This stream sequence, or the saved start if that is earlier.
    Sequence(u64),
    /// Messages stored at or after this time, or the saved start if that is earlier.
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
    /// An input handled now: the service had not decided it (or decided to say nothing).
    Applied,
    /// An input the inbox knew: decided already, no effect.
    AlreadyApplied,
    /// An input that was dead-lettered: its dead letter is back (or it failed for good now).
    DeadLettered,
    /// A root event of the own stream applied again.
    Restored,
    /// A handler's decision from the own stream applied again, without running the handler.
    Recorded,
    /// An own event the database still knows.
    AlreadyKnown,
    /// A message on the own stream that is no event of the service (junk, a forgery): the
    /// service never said it, so it is no fact.
    Foreign,
    /// The handler, run again, emitted other content under an id the stream holds. Not committed.
    Diverged(String),
    /// Could not be handled (transient failures until the end); the replay can be run again.
    Failed(String),
}

/// Counts of one source (one consumer, or the own stream).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceSummary {
    pub source: String,
    pub stream: String,
    /// The first and last sequence read for this source.
    pub from_seq: u64,
    pub to_seq: u64,
    pub seen: u64,
    pub applied: u64,
    pub already_applied: u64,
    pub dead_lettered: u64,
    pub restored: u64,
    pub recorded: u64,
    pub already_known: u64,
    pub foreign: u64,
    pub diverged: u64,
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
            Step::Recorded => self.recorded += 1,
            Step::AlreadyKnown => self.already_known += 1,
            Step::Foreign => self.foreign += 1,
            Step::Diverged(_) => self.diverged += 1,
            Step::Failed(_) => self.failed += 1,
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    pub service: &'static str,
    pub sources: Vec<SourceSummary>,
    /// Dead letters and operators' decisions read from the DLQ stream.
    pub dead_letter_records: u64,
    /// Outbox rows that were waiting to be published although their event is already in the
    /// stream (emitted again by the replay, or left unpublished in a restored backup). None are
    /// marked when anything diverged.
    pub outbox_marked_published: u64,
    /// What the replay chose and why (a start moved earlier than asked, deleted messages).
    pub notes: Vec<String>,
    /// Every divergence: an id the stream holds that a handler now fills with other content.
    pub divergences: Vec<String>,
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
            t.recorded += s.recorded;
            t.already_known += s.already_known;
            t.foreign += s.foreign;
            t.diverged += s.diverged;
            t.failed += s.failed;
        }
        t
    }

    /// True when the rebuilt state can be trusted: nothing failed and nothing diverged.
    pub fn is_clean(&self) -> bool {
        let t = self.total();
        t.failed == 0 && t.diverged == 0
    }
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("replay of {service}: stream {stream}: {source}")]
    Stream {
        service: &'static str,
        stream: &'static str,
        #[source]
        source: read::ReadError,
    },
    #[error("replay of {service}: database: {source}")]
    Database {
        service: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The stream no longer holds what the replay needs.
    #[error(
        "replay of {service}: {source_name} needs {stream} from seq {needed}, but the stream holds only seq {first}..{last} \
         (seq {needed}..{missing_to} are gone: retention, a purge or a lost store); nothing was replayed. \
         A rebuild cannot be complete without them: restore the stream from a backup, or start later \
         with --from-seq if the database holds everything before it"
    )]
    Gap {
        service: &'static str,
        source_name: String,
        stream: &'static str,
        needed: u64,
        first: u64,
        last: u64,
        missing_to: u64,
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

/// Where one source is read from and to.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u64,
    end: u64,
}

/// A replay of one service, built by its [`Wiring`] and its [`Restore`].
pub struct Replay {
    producer: Producer,
    pool: PgPool,
    js: jetstream::Context,
    metrics: Arc<Metrics>,
    max_failures: i64,
    inputs: Vec<Box<dyn Input>>,
    own: Option<Box<dyn OwnFacts>>,
    known: Arc<Known>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("service", &self.producer.service())
            .field(
                "inputs",
                &self.inputs.iter().map(|s| s.name()).collect::<Vec<_>>(),
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
        let consumer = Consumer::new(
            self.pool.clone(),
            self.js.clone(),
            config,
            Arc::new(handler),
            self.metrics.clone(),
        )
        .with_guard(self.known.clone());
        self.inputs.push(Box::new(consumer));
    }
}

impl Replay {
    /// A replay of `producer`'s service on its database `pool`; add its consumers with
    /// [`Wiring`] and its facts with [`Replay::restore_with`]. `max_failures` bounds the
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
            inputs: Vec::new(),
            own: None,
            known: Arc::new(Known::default()),
        }
    }

    /// Applies the service's own stream as facts with `restore`.
    pub fn restore_with<R: Restore>(&mut self, restore: R) {
        self.own = Some(Box::new(OwnStream {
            pool: self.pool.clone(),
            restore,
        }));
    }

    fn stream_error(&self, stream: &'static str) -> impl Fn(read::ReadError) -> ReplayError {
        let service = self.producer.service();
        move |source| ReplayError::Stream {
            service,
            stream,
            source,
        }
    }

    fn db_error(&self) -> impl Fn(sqlx::Error) -> ReplayError {
        let service = self.producer.service();
        move |source| ReplayError::Database { service, source }
    }

    /// Where `source` reading `filters` of `stream` starts, given the start asked for and the
    /// safe start the database gives; refuses a start the stream no longer holds.
    async fn span(
        &self,
        source: &str,
        stream: &'static str,
        filters: &[String],
        asked: ReplayFrom,
        saved: u64,
        notes: &mut Vec<String>,
    ) -> Result<Span, ReplayError> {
        let bounds = read::bounds(&self.js, stream)
            .await
            .map_err(self.stream_error(stream))?;
        let wanted = match asked {
            ReplayFrom::Beginning => 1,
            ReplayFrom::Saved => saved,
            ReplayFrom::Sequence(n) => n,
            ReplayFrom::Time(t) => read::first_at(&self.js, stream, filters, t)
                .await
                .map_err(self.stream_error(stream))?
                .unwrap_or(bounds.last + 1),
        };
        let start = if asked == ReplayFrom::Beginning {
            1
        } else {
            wanted.min(saved)
        };
        if start < wanted {
            notes.push(format!(
                "{source}: starts at {stream} seq {start}, not {wanted}: the database holds \
                 everything before {start} and nothing sure after it"
            ));
        }
        if start < bounds.first && start <= bounds.last {
            return Err(ReplayError::Gap {
                service: self.producer.service(),
                source_name: source.to_owned(),
                stream,
                needed: start,
                first: bounds.first,
                last: bounds.last,
                missing_to: bounds.first - 1,
            });
        }
        Ok(Span {
            start,
            end: bounds.last,
        })
    }

    /// Reads the DLQ stream's records of this service.
    async fn dead_letters(
        &self,
        progress: &dyn Progress,
        notes: &mut Vec<String>,
        from_scratch: bool,
    ) -> Result<DeadLetterFacts, ReplayError> {
        let stream = crate::provision::DLQ_STREAM;
        let fail = self.stream_error(stream);
        let bounds = read::bounds(&self.js, stream).await.map_err(&fail)?;
        if bounds.first > 1 {
            let message = format!(
                "the DLQ stream holds only seq {}..{}: dead letters before seq {} are gone, so \
                 inputs they refused would be handled again",
                bounds.first, bounds.last, bounds.first
            );
            if from_scratch {
                return Err(ReplayError::Gap {
                    service: self.producer.service(),
                    source_name: "its dead letters".to_owned(),
                    stream,
                    needed: 1,
                    first: bounds.first,
                    last: bounds.last,
                    missing_to: bounds.first - 1,
                });
            }
            notes.push(message);
        }
        let filter = format!("dlq.{}.>", self.producer.service());
        let mut reader = Reader::open(
            &self.js,
            stream,
            vec![filter],
            &format!("{}-dlq", self.producer.service()),
            bounds.first,
            bounds.last,
        )
        .await
        .map_err(&fail)?;
        let mut facts = DeadLetterFacts::default();
        while let Some(read) = reader.next().await.map_err(&fail)? {
            facts.add(&read.raw);
            progress.step("dlq", &Step::AlreadyKnown);
        }
        reader.close().await;
        Ok(facts)
    }

    /// Reads every source from its start up to what its stream held when the replay began, and
    /// rebuilds: dead letters, then facts, then inputs (see the module doc).
    pub async fn run(
        &self,
        start: &ReplayStart,
        progress: &dyn Progress,
    ) -> Result<ReplaySummary, ReplayError> {
        let service = self.producer.service();
        let db = self.db_error();
        let mut summary = ReplaySummary {
            service,
            ..ReplaySummary::default()
        };
        let from_scratch = start.default == ReplayFrom::Beginning;

        // Plan every source first: a gap anywhere refuses the whole replay before it writes.
        let mut conn = self.pool.acquire().await.map_err(&db)?;
        let mut own_plan = None;
        if let Some(own) = &self.own {
            let saved = outbox::last_published_seq(&mut conn)
                .await
                .map_err(&db)?
                .map_or(1, |s| s + 1);
            let span = self
                .span(
                    &format!("{service}'s own stream"),
                    own.stream(),
                    &own.filter_subjects(),
                    start.for_stream(own.stream()),
                    saved,
                    &mut summary.notes,
                )
                .await?;
            own_plan = Some(span);
        }
        let mut input_plans = Vec::new();
        for input in &self.inputs {
            let saved = floor::saved(&mut conn, input.name())
                .await
                .map_err(&db)?
                .map_or(1, |f| f + 1);
            input_plans.push(
                self.span(
                    input.name(),
                    input.stream(),
                    &input.filter_subjects(),
                    start.for_stream(input.stream()),
                    saved,
                    &mut summary.notes,
                )
                .await?,
            );
        }
        drop(conn);

        // 1. Dead letters and operators' decisions.
        let dead = self
            .dead_letters(progress, &mut summary.notes, from_scratch)
            .await?;
        summary.dead_letter_records = dead.len() as u64;

        // 2. Facts of the own stream, in commit order.
        if let (Some(own), Some(span)) = (&self.own, own_plan) {
            let mut s = SourceSummary {
                source: format!("{service}-own-stream"),
                stream: own.stream().to_owned(),
                from_seq: span.start,
                to_seq: span.end,
                ..SourceSummary::default()
            };
            self.facts(own.as_ref(), span, progress, &mut s, &mut summary)
                .await?;
            summary.sources.push(s);
        }

        // 3. Inputs, merged in stored-time order.
        let mut readers = Vec::new();
        let mut total = summary.sources.first().map_or(0, |s| s.seen);
        for (input, span) in self.inputs.iter().zip(&input_plans) {
            let reader = Reader::open(
                &self.js,
                input.stream(),
                input.filter_subjects(),
                input.name(),
                span.start,
                span.end,
            )
            .await
            .map_err(self.stream_error(input.stream()))?;
            total += reader.pending_at_start;
            readers.push(reader);
            summary.sources.push(SourceSummary {
                source: input.name().to_owned(),
                stream: input.stream().to_owned(),
                from_seq: span.start,
                to_seq: span.end,
                ..SourceSummary::default()
            });
        }
        progress.total(total);
        let first_input = summary.sources.len() - self.inputs.len();
        let mut deferred: Vec<(usize, RawMessage)> = Vec::new();
        loop {
            let mut next: Option<(usize, OffsetDateTime)> = None;
            for (i, reader) in readers.iter_mut().enumerate() {
                let peeked = reader
                    .peek()
                    .await
                    .map_err(self.stream_error(self.inputs[i].stream()))?;
                if let Some(read) = peeked {
                    if next.is_none_or(|(_, best)| read.stored < best) {
                        next = Some((i, read.stored));
                    }
                }
            }
            let Some((i, _)) = next else { break };
            let Some(read) = readers[i]
                .next()
                .await
                .map_err(self.stream_error(self.inputs[i].stream()))?
            else {
                continue;
            };
            let input = &self.inputs[i];
            let raw = read.raw;
            let step = if let Some(recorded) = dead.get(input.name(), &raw.stream, raw.stream_seq) {
                dead_letters::restore(&self.pool, input.name(), &raw, recorded).await
            } else {
                let decided = match input.event_id(&raw) {
                    Some(id) => inputs::decided(&self.pool, input.name(), id)
                        .await
                        .map_err(&db)?,
                    None => false,
                };
                if decided {
                    Step::AlreadyApplied
                } else if input.compensates(&raw) {
                    input.handle(&raw).await
                } else {
                    deferred.push((i, raw));
                    continue;
                }
            };
            self.count(&mut summary, first_input + i, input.name(), &step, progress);
        }
        for reader in readers {
            reader.close().await;
        }
        // Forward steps with no recorded decision, after every compensation.
        for (i, raw) in deferred {
            let step = self.inputs[i].handle(&raw).await;
            self.count(
                &mut summary,
                first_input + i,
                self.inputs[i].name(),
                &step,
                progress,
            );
        }

        if summary.divergences.is_empty() {
            let ids = self.known.ids();
            if !ids.is_empty() {
                let mut conn = self.pool.acquire().await.map_err(&db)?;
                summary.outbox_marked_published = outbox::mark_already_published(&mut conn, &ids)
                    .await
                    .map_err(&db)?;
            }
        }
        Ok(summary)
    }

    fn count(
        &self,
        summary: &mut ReplaySummary,
        index: usize,
        source: &str,
        step: &Step,
        progress: &dyn Progress,
    ) {
        remember(summary, step);
        progress.step(source, step);
        summary.sources[index].count(step);
    }

    /// Applies the own stream's events from `span` as facts, in commit order.
    async fn facts(
        &self,
        own: &dyn OwnFacts,
        span: Span,
        progress: &dyn Progress,
        s: &mut SourceSummary,
        summary: &mut ReplaySummary,
    ) -> Result<(), ReplayError> {
        let fail = self.stream_error(own.stream());
        let consumers: Vec<&'static str> = self.inputs.iter().map(|i| i.name()).collect();
        let mut reader = Reader::open(
            &self.js,
            own.stream(),
            own.filter_subjects(),
            &format!("{}-facts", self.producer.service()),
            span.start,
            span.end,
        )
        .await
        .map_err(&fail)?;
        progress.total(reader.pending_at_start);
        let mut reorder = Reorder::default();
        loop {
            let next = reader.next().await.map_err(&fail)?;
            let stored = next.as_ref().map(|r| r.stored);
            if let Some(read) = next {
                let raw = read.raw;
                match Envelope::from_message(
                    &raw.subject,
                    raw.headers.as_ref(),
                    raw.payload.clone(),
                ) {
                    Ok(envelope) => {
                        self.known.insert(&envelope, raw.stream_seq);
                        reorder.push(Pending {
                            envelope,
                            seq: raw.stream_seq,
                        });
                    }
                    Err(e) => {
                        tracing::info!(seq = raw.stream_seq, subject = %raw.subject, error = %e, "not an event of the service; no fact");
                        record(summary, s, &Step::Foreign, progress);
                    }
                }
            }
            while let Some(p) = reorder.pop(stored) {
                let consumer =
                    own::deciding_consumer(&consumers, p.envelope.causation_id, p.envelope.id);
                let step = if p.envelope.causation_id != p.envelope.id && consumer.is_none() {
                    Step::Failed(format!(
                        "{} seq {} (event {}): caused by {}, but no consumer of {} derives its id",
                        own.stream(),
                        p.seq,
                        p.envelope.id,
                        p.envelope.causation_id,
                        self.producer.service()
                    ))
                } else {
                    own.apply(&p.envelope, p.seq, consumer).await
                };
                record(summary, s, &step, progress);
            }
            if stored.is_none() {
                break;
            }
        }
        reader.close().await;
        Ok(())
    }

    /// Reads every source as [`Replay::run`] would, applying nothing: the baseline a replay's
    /// speed is measured against. Returns how many messages it read.
    pub async fn read_through(&self, start: &ReplayStart) -> Result<u64, ReplayError> {
        let mut notes = Vec::new();
        let mut sources: Vec<(String, &'static str, Vec<String>, ReplayFrom, u64)> = Vec::new();
        if let Some(own) = &self.own {
            sources.push((
                format!("{}-facts", self.producer.service()),
                own.stream(),
                own.filter_subjects(),
                start.for_stream(own.stream()),
                1,
            ));
        }
        for input in &self.inputs {
            sources.push((
                input.name().to_owned(),
                input.stream(),
                input.filter_subjects(),
                start.for_stream(input.stream()),
                1,
            ));
        }
        let mut read = 0;
        for (name, stream, filters, asked, saved) in sources {
            let span = self
                .span(&name, stream, &filters, asked, saved, &mut notes)
                .await?;
            let mut reader = Reader::open(&self.js, stream, filters, &name, span.start, span.end)
                .await
                .map_err(self.stream_error(stream))?;
            while reader
                .next()
                .await
                .map_err(self.stream_error(stream))?
                .is_some()
            {}
            read += reader.read;
            reader.close().await;
        }
        Ok(read)
    }
}

/// Keeps a failure (the first ones) or a divergence (every one) for the report.
fn remember(summary: &mut ReplaySummary, step: &Step) {
    match step {
        Step::Failed(why) if summary.failures.len() < 20 => summary.failures.push(why.clone()),
        Step::Diverged(why) => summary.divergences.push(why.clone()),
        _ => {}
    }
}

fn record(
    summary: &mut ReplaySummary,
    s: &mut SourceSummary,
    step: &Step,
    progress: &dyn Progress,
) {
    remember(summary, step);
    progress.step(&s.source, step);
    s.count(step);
}
