//! The inbox consumer runner, written once: decode → handler → inbox and outbox → commit → ack.
//!
//! One durable pull consumer per service and input stream. Each message is handled in one
//! transaction: the inbox row, the handler's effect and the events it emits commit together, and
//! only then is the message acked. So a crash anywhere before the commit leaves nothing behind, and a
//! crash after it leads to a redelivery that the inbox recognises.
//!
//! A first delivery claims its inbox row in one statement with the events it emits, after its
//! handler; a duplicate found then rolls its handler's effect back, and a handler's error on an
//! event the inbox knows makes it a duplicate, not a failure. A redelivery, and every message of a
//! replay, claims its inbox row before its handler runs.
//!
//! Every outcome of a message is one of [`Disposition`]:
//! - applied or duplicate: ack;
//! - the database (or NATS) unavailable: the message is kept and tried again in place, with capped
//!   back-off and in-progress acks so the server does not redeliver it, for as long as it lasts; it
//!   never spends the message's budget;
//! - rows held by others (a lock wait timed out, a deadlock): nak with a delay, not counted, so the
//!   handler slot serves other messages meanwhile;
//! - a failure of the message itself: nak with a delay, counted by the runner ([`crate::failures`]);
//!   at `max_failures` it is dead-lettered;
//! - permanent failure (undecodable, unknown type, wrong producer, refused by the handler): a dead
//!   letter with the raw message and the reason, then term.
//!
//! The runner, not the server, decides that a message is dead: the durable has no `max_deliver`,
//! and a message is termed only once its dead letter is stored. A dead letter that cannot be stored
//! keeps the message.
//!
//! Shutdown stops pulling, finishes the messages in flight and hands back (nak, no delay) every
//! message delivered to it that it will not finish, so another instance takes them at once. A
//! consumer that cannot pull (its durable deleted, its stream gone) is recreated, and reported by
//! [`crate::health`] meanwhile. Every few seconds the runner writes its durable's ack floor into the
//! database ([`crate::floor`]), where a replay of a restored backup finds its safe start.

use crate::backoff::Backoff;
use crate::dead_letter::{self, DeadLetterKind, NewDeadLetter};
use crate::envelope::Envelope;
use crate::failures::{self, MessageKey};
use crate::handler::{is_unavailable, EventContext, Handler, HandlerError};
use crate::health::ConsumerState;
use crate::inbox;
use crate::kept::Kept;
use crate::metrics::labels::DeadLetterLabels;
use crate::metrics::{KitMetrics, Metrics};
use crate::outbox;
use crate::relay::RelayWake;
use async_nats::jetstream::{self, consumer::pull, AckKind};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use jetsaga_contracts::{DecodeError, EventSet, Producer};
use sqlx::PgPool;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

mod batch;

/// One consumer's settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// The durable consumer name, also the handler name in derived event ids and the inbox key.
    /// Renaming it re-delivers the whole stream to the new name and changes every id it derives.
    pub durable: &'static str,
    /// The service that owns this consumer (for dead letters and metrics).
    pub service: &'static str,
    /// Subjects of the input stream to receive, e.g. `payments.succeeded.*`.
    pub filter_subjects: Vec<String>,
    /// Deliveries of a message that may fail while the database answers (or die, or hang) before it
    /// is dead-lettered. An unavailable database never counts. Default 5.
    pub max_failures: i64,
    /// How long the server waits for an ack (or an in-progress ack) before redelivering, when the
    /// durable is created. An existing durable keeps the ack wait it has. Default 30 s.
    pub ack_wait: Duration,
    /// Transactions at once, each handling one message or a batch of them. Default 16.
    pub concurrency: usize,
    /// Most first deliveries handled in one transaction, when that many are waiting. Messages
    /// that arrive while every slot is busy are handled together, so they share one commit (and
    /// in durable mode one WAL flush); a lone message still has its own. 1 handles every message
    /// in a transaction of its own. Default 16.
    pub batch: usize,
    /// Longest wait for a row lock inside a batch. A batch holds its rows until it commits, so two
    /// batches can each wait for a row the other holds; past this wait the batch gives up and its
    /// messages go one at a time, each with the connection's own lock timeout. Default 50 ms.
    pub batch_lock_wait: Duration,
    /// Delay of a nak after a failure of the message, by failure. Default 200 ms doubling to 10 s.
    pub nak_backoff: Backoff,
    /// Delay between tries while the database is unavailable. Default 200 ms doubling to 5 s.
    pub unavailable_backoff: Backoff,
    /// Delay of a nak when others hold the rows a message needs, by delivery. Default 500 ms
    /// doubling to 15 s: long enough that the messages waiting for one held row leave most handler
    /// slots to the others.
    pub contention_backoff: Backoff,
    /// How long one pull request waits for messages. A graceful shutdown waits at most this long for
    /// the last request to end, handing back what it delivers. Default 2 s.
    pub pull_expires: Duration,
}

impl ConsumerConfig {
    pub fn new(service: &'static str, durable: &'static str, filter_subjects: Vec<String>) -> Self {
        ConsumerConfig {
            durable,
            service,
            filter_subjects,
            max_failures: 5,
            ack_wait: Duration::from_secs(30),
            concurrency: 16,
            batch: 16,
            batch_lock_wait: Duration::from_millis(50),
            nak_backoff: Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(10),
            },
            unavailable_backoff: Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(5),
            },
            contention_backoff: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(15),
            },
            pull_expires: Duration::from_secs(2),
        }
    }

    /// The durable as the kit creates it. The server never gives up on a message (`max_deliver`
    /// -1): the runner decides when a message is dead.
    fn durable_config(&self, stream: &str) -> pull::Config {
        pull::Config {
            durable_name: Some(self.durable.to_owned()),
            description: Some(format!("{} service input from {stream}", self.service)),
            filter_subjects: self.filter_subjects.clone(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: -1,
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        }
    }
}

/// Why the consumer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("consumer {durable}: stream {stream} is not available: {source}")]
    Stream {
        durable: &'static str,
        stream: &'static str,
        #[source]
        source: jetstream::context::GetStreamError,
    },
    #[error("consumer {durable}: cannot create it: {source}")]
    Create {
        durable: &'static str,
        #[source]
        source: jetstream::stream::ConsumerError,
    },
    #[error("consumer {durable}: cannot update it: {source}")]
    Update {
        durable: &'static str,
        #[source]
        source: jetstream::stream::ConsumerUpdateError,
    },
}

/// What [`Consumer::ensure`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// The durable was there as the kit needs it, and was left alone.
    Found,
    /// It was there with other subjects or a server-side delivery limit, and was updated; its ack
    /// wait and every other setting an operator may tune were kept.
    Updated,
    /// It was not there and was created.
    Created,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The effect committed.
    Applied,
    /// The inbox knew the event: no effect.
    Duplicate,
    /// Stored in the dead letters.
    DeadLettered(DeadLetterKind),
    /// A failure of the message, counted: nak, to come back after this delay.
    Retry(Duration),
    /// The database is unavailable: keep the message and try again; nothing was counted.
    Unavailable,
    /// Others hold the rows this message needs (a lock wait timed out, a deadlock): nak, to come
    /// back after this delay, so its handler slot serves other messages meanwhile; nothing was
    /// counted.
    Contended(Duration),
    /// Only in a replay: the handler emitted, under an id its stream already holds, other content
    /// than the stream holds. Nothing was committed.
    Diverged(Box<Divergence>),
}

impl Disposition {
    /// One word for what became of the message: the `outcome` label of
    /// `jetsaga_handler_duration_seconds`, and a field of its span.
    pub fn outcome(&self) -> &'static str {
        match self {
            Disposition::Applied => "applied",
            Disposition::Duplicate => "duplicate",
            Disposition::DeadLettered(_) => "dead_lettered",
            Disposition::Retry(_) => "retry",
            Disposition::Unavailable => "unavailable",
            Disposition::Contended(_) => "contended",
            Disposition::Diverged(_) => "diverged",
        }
    }
}

/// A handler emitted, under an id its stream already holds, other content than the stream holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "event {event_id} ({subject}) is in the stream at seq {seq} as {recorded_type} {recorded}, \
     but the handler now emits {emitted_type} {emitted}"
)]
pub struct Divergence {
    pub event_id: uuid::Uuid,
    pub subject: String,
    pub seq: u64,
    pub recorded_type: String,
    pub recorded: serde_json::Value,
    pub emitted_type: String,
    pub emitted: serde_json::Value,
}

/// Checks each event a handler emits before it is committed (a replay's guard against saying
/// something else under an id the stream already holds).
pub trait EmitGuard: Send + Sync + std::fmt::Debug {
    /// `Err` with what differs when `emitted` must not be committed.
    fn check(&self, emitted: &Envelope) -> Result<(), Box<Divergence>>;
}

/// A message as the runner sees it, whichever way it arrived.
#[derive(Debug, Clone)]
pub struct RawMessage {
    pub subject: String,
    pub headers: Option<HeaderMap>,
    pub payload: Bytes,
    pub stream: String,
    pub stream_seq: u64,
    pub delivered: i64,
}

impl RawMessage {
    pub fn from_jetstream(msg: &jetstream::Message) -> Self {
        let (stream, stream_seq, delivered) = match msg.info() {
            Ok(i) => (i.stream.to_owned(), i.stream_sequence, i.delivered),
            Err(_) => (String::new(), 0, 1),
        };
        RawMessage {
            subject: msg.subject.to_string(),
            headers: msg.headers.clone(),
            payload: msg.payload.clone(),
            stream,
            stream_seq,
            delivered,
        }
    }

    /// The headers as a JSON object of storable texts (several values joined by commas).
    pub fn headers_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        if let Some(h) = &self.headers {
            for (name, values) in h.iter() {
                let v: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
                map.insert(
                    dead_letter::storable(name.as_ref()),
                    serde_json::Value::String(dead_letter::storable(&v.join(","))),
                );
            }
        }
        serde_json::Value::Object(map)
    }
}

/// Ends `tx`, abandoned after `error` (`None`: abandoned by the runner's own rule), and says
/// whether its connection may be kept. A connection the database may have lost is not rolled back
/// here: dropped, it goes back to the pool, which rolls back without holding the slot.
async fn rolled_back(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    error: Option<&HandlerError>,
) -> bool {
    if matches!(error, Some(HandlerError::Unavailable(_))) {
        return false;
    }
    tx.rollback().await.is_ok()
}

/// What one message did inside a transaction that is not yet committed.
enum Step<O> {
    /// Its effect and these events are written.
    Applied(Vec<O>),
    /// The inbox knew it: nothing was written.
    Duplicate,
    /// The inbox knew it, found out only after the handler wrote its effect (a first delivery is
    /// claimed with its events, [`Consumer::claims_late`]): the transaction must roll back.
    Repeated,
    /// Only in a replay: the handler emitted other content under a recorded id. The transaction
    /// must roll back.
    Diverged(Box<Divergence>),
}

struct Rejection {
    kind: DeadLetterKind,
    reason: String,
    event_id: Option<uuid::Uuid>,
}

/// The runner of one handler on one durable consumer.
#[derive(Debug)]
pub struct Consumer<H> {
    pool: PgPool,
    js: jetstream::Context,
    config: ConsumerConfig,
    handler: Arc<H>,
    metrics: Arc<Metrics>,
    guard: Option<Arc<dyn EmitGuard>>,
    relay: Option<RelayWake>,
    kept: Kept,
}

impl<H> Clone for Consumer<H> {
    fn clone(&self) -> Self {
        Consumer {
            pool: self.pool.clone(),
            js: self.js.clone(),
            config: self.config.clone(),
            handler: self.handler.clone(),
            metrics: self.metrics.clone(),
            guard: self.guard.clone(),
            relay: self.relay.clone(),
            kept: self.kept.clone(),
        }
    }
}

impl<H: Handler> Consumer<H> {
    pub fn new(
        pool: PgPool,
        js: jetstream::Context,
        config: ConsumerConfig,
        handler: Arc<H>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Consumer {
            pool,
            js,
            config,
            handler,
            metrics,
            guard: None,
            relay: None,
            kept: Kept::new(0),
        }
    }

    /// Keeps connections between this runner's transactions in `kept` (shared, as a rule, by every
    /// runner of the process and database): a transaction that ended cleanly leaves its connection
    /// there, and the next one starts on it without the pool's release ping.
    pub fn with_kept(mut self, kept: Kept) -> Self {
        self.kept = kept;
        self
    }

    /// Wakes `relay`, the relay of this process and database, when a transaction of this runner
    /// committed events, instead of a NOTIFY through the database.
    pub fn with_relay(mut self, relay: RelayWake) -> Self {
        self.relay = Some(relay);
        self
    }

    /// Checks every event the handler emits with `guard` before committing it.
    pub fn with_guard(mut self, guard: Arc<dyn EmitGuard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    fn input() -> Producer {
        <H::Input as EventSet>::PRODUCER
    }

    /// Creates the durable consumer, or brings an existing one to what the kit needs.
    pub async fn ensure(
        &self,
    ) -> Result<jetstream::consumer::Consumer<pull::Config>, ConsumerError> {
        self.ensure_reporting().await.map(|(c, _)| c)
    }

    /// [`Consumer::ensure`], saying whether the durable was found, updated or created.
    ///
    /// The kit owns the subjects a durable reads, its explicit acks and that the server never gives
    /// up on a message; those are set. The ack wait and everything else an operator may tune are
    /// kept as found, so that instances started with other settings do not fight over them.
    pub async fn ensure_reporting(
        &self,
    ) -> Result<(jetstream::consumer::Consumer<pull::Config>, Ensured), ConsumerError> {
        let durable = self.config.durable;
        let stream_name = Self::input().stream();
        let stream =
            self.js
                .get_stream(stream_name)
                .await
                .map_err(|source| ConsumerError::Stream {
                    durable,
                    stream: stream_name,
                    source,
                })?;
        let wanted = self.config.durable_config(stream_name);
        let Ok(existing) = stream.get_consumer::<pull::Config>(durable).await else {
            let created = stream
                .create_consumer(wanted)
                .await
                .map_err(|source| ConsumerError::Create { durable, source })?;
            return Ok((created, Ensured::Created));
        };
        let found = &existing.cached_info().config;
        let mut subjects_found = found.filter_subjects.clone();
        if !found.filter_subject.is_empty() {
            subjects_found.push(found.filter_subject.clone());
        }
        subjects_found.sort();
        let mut subjects_wanted = wanted.filter_subjects.clone();
        subjects_wanted.sort();
        if subjects_found == subjects_wanted
            && found.max_deliver == -1
            && found.ack_policy == jetstream::consumer::AckPolicy::Explicit
        {
            return Ok((existing, Ensured::Found));
        }
        let updated = pull::Config {
            ack_wait: found.ack_wait,
            max_ack_pending: found.max_ack_pending,
            max_waiting: found.max_waiting,
            description: found.description.clone().or(wanted.description.clone()),
            ..wanted
        };
        let updated = stream
            .update_consumer(updated)
            .await
            .map_err(|source| ConsumerError::Update { durable, source })?;
        tracing::info!(
            consumer = durable,
            "durable consumer updated to the kit's subjects and delivery rules"
        );
        Ok((updated, Ensured::Updated))
    }

    /// Sets the durable up, retrying while NATS or the stream is unavailable. `None` on shutdown.
    async fn ensure_until_ready(
        &self,
        shutdown: &CancellationToken,
    ) -> Option<jetstream::consumer::Consumer<pull::Config>> {
        let durable = self.config.durable;
        let mut attempt = 0u32;
        loop {
            match self.ensure_reporting().await {
                Ok((c, how)) => {
                    if how == Ensured::Created && attempt > 0 {
                        tracing::warn!(
                            consumer = durable,
                            "durable consumer was missing; recreated it"
                        );
                    }
                    self.metrics.health().set(durable, ConsumerState::Pulling);
                    return Some(c);
                }
                Err(e) => {
                    let delay = self.config.unavailable_backoff.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(consumer = durable, error = %e, retry_in = ?delay, "consumer not ready");
                    self.metrics.health().set(
                        durable,
                        ConsumerState::CannotPull {
                            error: e.to_string(),
                        },
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Pulls and handles messages until `shutdown`; then stops pulling, finishes what is in flight,
    /// hands back what was delivered and not started, and returns. Setting the consumer up is
    /// retried while NATS is unavailable; a consumer that cannot pull is recreated.
    pub async fn run(self, shutdown: CancellationToken) {
        let Some(mut consumer) = self.ensure_until_ready(&shutdown).await else {
            return;
        };
        let batch = (self.config.concurrency.max(1) * 2).max(self.config.batch.max(1));
        let keeper = self.keep_floor(shutdown.clone());
        let pulling = self.pull_until_shutdown(&mut consumer, batch, &shutdown);
        tokio::join!(keeper, pulling);
    }

    /// Writes the durable's ack floor into the database every few seconds, until `shutdown`.
    async fn keep_floor(&self, shutdown: CancellationToken) {
        let durable = self.config.durable;
        let stream = Self::input().stream();
        let mut tick = tokio::time::interval(crate::floor::RECORD_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let floor = async {
                let info = self
                    .js
                    .get_stream(stream)
                    .await
                    .map_err(async_nats::Error::from)?
                    .consumer_info(durable)
                    .await
                    .map_err(async_nats::Error::from)?;
                crate::floor::record(&self.pool, durable, stream, info.ack_floor.stream_sequence)
                    .await
                    .map_err(async_nats::Error::from)
            };
            if let Err(e) = floor.await {
                tracing::debug!(consumer = durable, error = %e, "cannot record the ack floor");
            }
        }
    }

    async fn pull_until_shutdown(
        &self,
        consumer: &mut jetstream::consumer::Consumer<pull::Config>,
        batch: usize,
        shutdown: &CancellationToken,
    ) {
        let durable = self.config.durable;
        loop {
            let failure = std::sync::Mutex::new(None::<async_nats::Error>);
            // What arrived while every slot was busy is taken as one batch when a slot frees.
            pulls(consumer, batch, self.config.pull_expires, shutdown)
                .ready_chunks(self.config.batch.max(1))
                .for_each_concurrent(self.config.concurrency.max(1), |items| async {
                    let mut delivered = Vec::with_capacity(items.len());
                    for item in items {
                        match item {
                            Ok(msg) => delivered.push(msg),
                            Err(e) => {
                                *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            }
                        }
                    }
                    self.deliver_all(delivered, shutdown).await;
                })
                .await;
            if shutdown.is_cancelled() {
                break;
            }
            let error = failure
                .into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .map_or_else(|| "the pull ended".to_owned(), |e| e.to_string());
            // The durable may have been deleted (by an operator, a re-provisioned stream, a lost
            // consumer on a cluster node): say so, and set it up again.
            tracing::warn!(consumer = durable, error = %error, "cannot pull; setting the consumer up again");
            self.metrics
                .health()
                .set(durable, ConsumerState::CannotPull { error });
            KitMetrics::inc(&self.metrics.kit().consumer_pull_failures, durable);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.config.unavailable_backoff.initial) => {}
            }
            match self.ensure_until_ready(shutdown).await {
                Some(c) => *consumer = c,
                None => break,
            }
        }
    }

    /// Handles one delivered message and settles it. A message delivered after shutdown began is
    /// handed back at once; while the database is unavailable the message is kept, with in-progress
    /// acks, and tried again, until it is or shutdown hands it back.
    async fn deliver(&self, msg: jetstream::Message, shutdown: &CancellationToken) {
        if shutdown.is_cancelled() {
            KitMetrics::inc(&self.metrics.kit().handed_back, self.config.durable);
            self.settle(&msg, &Disposition::Unavailable).await;
            return;
        }
        let raw = RawMessage::from_jetstream(&msg);
        let started = std::time::Instant::now();
        let mut waits = 0u32;
        let disposition = loop {
            match self.with_progress(&msg, self.process_raw(&raw)).await {
                Disposition::Unavailable if !shutdown.is_cancelled() => {
                    let delay = self.config.unavailable_backoff.delay(waits);
                    waits = waits.saturating_add(1);
                    let wait = async {
                        tokio::select! {
                            _ = shutdown.cancelled() => {}
                            _ = tokio::time::sleep(delay) => {}
                        }
                    };
                    self.with_progress(&msg, wait).await;
                }
                other => break other,
            }
        };
        self.settle(&msg, &disposition).await;
        self.metrics.kit().observe_handler(
            self.config.durable,
            disposition.outcome(),
            started.elapsed().as_secs_f64(),
        );
    }

    /// Runs `work` while telling the server, every third of the ack wait, that the message is still
    /// being worked on, so that a slow handler or a wait for the database is not redelivered.
    async fn with_progress<F: Future>(&self, msg: &jetstream::Message, work: F) -> F::Output {
        self.with_progress_all(std::slice::from_ref(&msg), work)
            .await
    }

    /// [`Consumer::with_progress`] for every message of a batch.
    async fn with_progress_all<F: Future>(
        &self,
        msgs: &[&jetstream::Message],
        work: F,
    ) -> F::Output {
        let every = (self.config.ack_wait / 3).max(Duration::from_millis(300));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tick.tick() => {
                    for msg in msgs {
                        if let Err(e) = msg.ack_with(AckKind::Progress).await {
                            tracing::debug!(consumer = self.config.durable, error = %e, "in-progress ack failed");
                        }
                    }
                }
            }
        }
    }

    /// Handles one message without acking it. A test that stops here has crashed between the
    /// commit and the ack.
    pub async fn process(&self, msg: &jetstream::Message) -> Disposition {
        self.process_raw(&RawMessage::from_jetstream(msg)).await
    }

    /// Acks, naks or terms the message as its disposition says. A message the database was
    /// unavailable for is handed back without delay.
    pub async fn settle(&self, msg: &jetstream::Message, disposition: &Disposition) {
        let kind = match disposition {
            Disposition::Applied | Disposition::Duplicate => AckKind::Ack,
            Disposition::DeadLettered(_) => AckKind::Term,
            Disposition::Retry(delay) | Disposition::Contended(delay) => AckKind::Nak(Some(*delay)),
            Disposition::Unavailable | Disposition::Diverged(_) => AckKind::Nak(None),
        };
        if let Err(e) = msg.ack_with(kind).await {
            // Not fatal: the message is redelivered after ack_wait and the inbox dedupes it.
            tracing::warn!(consumer = self.config.durable, error = %e, "ack failed");
        }
    }

    fn key<'a>(&'a self, raw: &'a RawMessage) -> MessageKey<'a> {
        MessageKey {
            consumer: self.config.durable,
            stream: &raw.stream,
            stream_seq: raw.stream_seq,
        }
    }

    /// Handles one message, whichever way it arrived: one attempt.
    pub async fn process_raw(&self, raw: &RawMessage) -> Disposition {
        let consumer = self.config.durable;
        let (envelope, event) = match self.decode(raw) {
            Ok(decoded) => decoded,
            Err(r) => return self.dead_letter(raw, r).await,
        };
        // A redelivery is counted before it is handled: a message whose every delivery dies or
        // hangs reaches the budget too.
        let redelivery = raw.delivered > 1;
        if redelivery {
            match failures::count_redelivery(&self.pool, self.key(raw)).await {
                Ok(count) if i64::from(count.failures) > self.config.max_failures => {
                    let last = count.last_error.unwrap_or_else(|| {
                        "no delivery finished (the handler hung or its process died)".to_owned()
                    });
                    let rejection = Rejection {
                        kind: DeadLetterKind::MaxDeliveries,
                        reason: format!(
                            "event {} failed {} deliveries; last error: {last}",
                            envelope.id,
                            count.failures - 1
                        ),
                        event_id: Some(*envelope.id.as_uuid()),
                    };
                    return self.dead_letter(raw, rejection).await;
                }
                Ok(_) => {}
                Err(e) if is_unavailable(&e) => return self.unavailable(&envelope, &e),
                Err(e) => {
                    tracing::warn!(consumer, event_id = %envelope.id, error = %e, "cannot count the redelivery");
                }
            }
        }
        let span = self.handle_span(&envelope, raw);
        let applied = AssertUnwindSafe(self.apply(&envelope, event, raw).instrument(span.clone()))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                Err(HandlerError::transient(
                    "the handler panicked",
                    std::io::Error::other(what),
                ))
            });
        let disposition = self
            .conclude(applied, &envelope, raw, redelivery)
            .instrument(span.clone())
            .await;
        span.record("outcome", disposition.outcome());
        disposition
    }

    /// The span of one message's handling. It is the child of the span that emitted the message,
    /// in another service: one order is one trace across the NATS hops.
    fn handle_span(&self, envelope: &Envelope, raw: &RawMessage) -> tracing::Span {
        let span = tracing::info_span!(
            "handle",
            consumer = self.config.durable,
            event_id = %envelope.id,
            ce_type = %envelope.ce_type,
            order_id = %envelope.correlation_id,
            trace_id = %envelope.traceparent.trace_id_hex(),
            delivered = raw.delivered,
            outcome = tracing::field::Empty,
        );
        crate::otel::continue_trace(&span, &envelope.traceparent);
        span
    }

    /// What a handler's result means for its message: counted, dead-lettered, retried or kept.
    async fn conclude(
        &self,
        applied: Result<Disposition, HandlerError>,
        envelope: &Envelope,
        raw: &RawMessage,
        redelivery: bool,
    ) -> Disposition {
        let consumer = self.config.durable;
        match applied {
            Ok(disposition) => {
                let kit = self.metrics.kit();
                let family = if disposition == Disposition::Applied {
                    &kit.events_handled
                } else {
                    &kit.events_duplicate
                };
                KitMetrics::inc(family, consumer);
                disposition
            }
            Err(HandlerError::Permanent(p)) => {
                let rejection = Rejection {
                    kind: DeadLetterKind::Rejected,
                    reason: format!("event {} refused by {consumer}: {p}", envelope.id),
                    event_id: Some(*envelope.id.as_uuid()),
                };
                self.dead_letter(raw, rejection).await
            }
            Err(HandlerError::Unavailable(u)) => {
                if redelivery {
                    // Best effort: if the database is down, the count stays one too high.
                    let _ = failures::forgive(&self.pool, self.key(raw)).await;
                }
                if u.is_contention() {
                    KitMetrics::inc(&self.metrics.kit().handler_contended, consumer);
                    let attempt = u32::try_from(raw.delivered.max(1) - 1).unwrap_or(u32::MAX);
                    let delay = self.config.contention_backoff.delay(attempt);
                    tracing::info!(consumer, event_id = %envelope.id, error = %u, retry_in = ?delay, "rows held by others; will retry");
                    return Disposition::Contended(delay);
                }
                self.unavailable(envelope, &u)
            }
            Err(HandlerError::Transient(t)) => {
                KitMetrics::inc(&self.metrics.kit().handler_retries, consumer);
                let error = t.to_string();
                let failures =
                    match failures::record_failure(&self.pool, self.key(raw), &error, redelivery)
                        .await
                    {
                        Ok(n) => i64::from(n),
                        Err(e) if is_unavailable(&e) => return self.unavailable(envelope, &e),
                        // Cannot be counted: count it as the delivery number says.
                        Err(_) => raw.delivered,
                    };
                if failures >= self.config.max_failures {
                    let rejection = Rejection {
                        kind: DeadLetterKind::MaxDeliveries,
                        reason: format!(
                            "event {} failed {failures} deliveries; last error: {error}",
                            envelope.id
                        ),
                        event_id: Some(*envelope.id.as_uuid()),
                    };
                    return self.dead_letter(raw, rejection).await;
                }
                let attempt = u32::try_from(failures.max(1) - 1).unwrap_or(u32::MAX);
                let delay = self.config.nak_backoff.delay(attempt);
                tracing::warn!(consumer, event_id = %envelope.id, error = %error, failures, retry_in = ?delay, "handler failed; will retry");
                Disposition::Retry(delay)
            }
        }
    }

    fn unavailable(&self, envelope: &Envelope, error: &dyn std::fmt::Display) -> Disposition {
        KitMetrics::inc(&self.metrics.kit().handler_unavailable, self.config.durable);
        tracing::warn!(consumer = self.config.durable, event_id = %envelope.id, error = %error, "database unavailable; keeping the message");
        Disposition::Unavailable
    }

    /// Checks where the message came from and decodes it into the input type.
    fn decode(&self, raw: &RawMessage) -> Result<(Envelope, H::Input), Rejection> {
        let input = Self::input();
        let reject = |kind, reason: String, event_id| Rejection {
            kind,
            reason,
            event_id,
        };
        // Trust the stream and subject, never the payload: the producer is who may publish there.
        if raw.stream != input.stream() || !input.owns_subject(&raw.subject) {
            return Err(reject(
                DeadLetterKind::WrongProducer,
                format!(
                    "message on {} in stream {} is not from {input}, the only producer {} reads",
                    raw.subject, raw.stream, self.config.durable
                ),
                None,
            ));
        }
        let envelope =
            Envelope::from_message(&raw.subject, raw.headers.as_ref(), raw.payload.clone())
                .map_err(|e| reject(DeadLetterKind::Undecodable, e.to_string(), None))?;
        let event_id = Some(*envelope.id.as_uuid());
        // A `ce-type` names its producer's domain (`jetsaga.<domain>.<event>.vN`): another domain
        // on this producer's subject is a forgery, whoever that domain belongs to.
        let type_domain = envelope
            .ce_type
            .strip_prefix("jetsaga.")
            .and_then(|rest| rest.split('.').next());
        if let Some(domain) = type_domain.filter(|d| *d != input.domain()) {
            return Err(reject(
                DeadLetterKind::WrongProducer,
                format!(
                    "event {} of type {} arrived on {}, a subject of {input}; only the producer of {domain}.> may emit it",
                    envelope.id,
                    envelope.ce_type,
                    raw.subject,
                ),
                event_id,
            ));
        }
        let event = H::Input::from_payload(&envelope.ce_type, &envelope.payload).map_err(|e| {
            let kind = match e {
                DecodeError::UnknownType { .. } => DeadLetterKind::UnknownType,
                DecodeError::Malformed { .. } => DeadLetterKind::Undecodable,
            };
            reject(kind, format!("event {}: {e}", envelope.id), event_id)
        })?;
        if event.subject() != raw.subject {
            return Err(reject(
                DeadLetterKind::WrongProducer,
                format!(
                    "event {} of type {} belongs on {}, but arrived on {}",
                    envelope.id,
                    envelope.ce_type,
                    event.subject(),
                    raw.subject
                ),
                event_id,
            ));
        }
        Ok((envelope, event))
    }

    /// The one transaction: inbox, handler, outbox, commit.
    async fn apply(
        &self,
        envelope: &Envelope,
        event: H::Input,
        raw: &RawMessage,
    ) -> Result<Disposition, HandlerError> {
        let mut conn = self.kept.take(&self.pool).await?;
        let mut tx = self.begin(&mut conn, None).await?;
        // A redelivery was counted; settling it forgets its failures, in the same transaction.
        if raw.delivered > 1 {
            failures::clear(&mut tx, self.key(raw)).await?;
        }
        let step = match self.apply_in(&mut tx, envelope, event, raw).await {
            Ok(step) => step,
            Err(e) => {
                if rolled_back(tx, Some(&e)).await {
                    self.kept.keep(conn);
                }
                if self.handled_before(envelope, raw, &e).await {
                    return Ok(Disposition::Duplicate);
                }
                return Err(e);
            }
        };
        let disposition = match step {
            Step::Repeated => {
                tx.rollback().await?;
                Disposition::Duplicate
            }
            Step::Duplicate => {
                if raw.delivered > 1 {
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
                Disposition::Duplicate
            }
            Step::Diverged(why) => {
                tx.rollback().await?;
                Disposition::Diverged(why)
            }
            Step::Applied(emitted) => {
                tx.commit().await?;
                if !emitted.is_empty() {
                    self.wake_relay();
                }
                self.handler.committed(&emitted, &self.metrics);
                Disposition::Applied
            }
        };
        // The transaction ended cleanly: the next one starts on this connection.
        self.kept.keep(conn);
        Ok(disposition)
    }

    /// Begins a transaction of this runner on `conn`, its settings in the same round trip: with a
    /// relay to wake, its outbox inserts make no NOTIFY; `lock_wait` caps each wait for a row lock.
    async fn begin<'c>(
        &self,
        conn: &'c mut sqlx::PgConnection,
        lock_wait: Option<Duration>,
    ) -> Result<sqlx::Transaction<'c, sqlx::Postgres>, sqlx::Error> {
        let mut begin = String::from("BEGIN");
        if self.relay.is_some() {
            begin.push_str("; SET LOCAL kit.outbox_notify = 'off'");
        }
        if let Some(wait) = lock_wait {
            begin.push_str(&format!(
                "; SET LOCAL lock_timeout = '{}ms'",
                wait.as_millis().max(1)
            ));
        }
        sqlx::Connection::begin_with(conn, begin).await
    }

    /// Tells this process's relay that events were committed.
    fn wake_relay(&self) {
        if let Some(relay) = &self.relay {
            relay.wake();
        }
    }

    /// Whether the inbox claim of this message waits for its events, in one statement with them
    /// ([`outbox::enqueue_step`]), instead of coming first in its own round trip. So it does for a
    /// first delivery, which is almost never a duplicate; a duplicate found that late rolls back
    /// what its handler wrote. A redelivery, more often a duplicate, is claimed first, and so is
    /// every message of a replay, whose guard must not see a duplicate's events.
    fn claims_late(&self, raw: &RawMessage) -> bool {
        raw.delivered <= 1 && self.guard.is_none()
    }

    /// After a handler's error, whether the message is a duplicate whose claim came late: a handler
    /// may refuse, or fail on, an event it already applied, and that must not count against the
    /// event. The transaction has rolled back; the inbox is read outside it.
    async fn handled_before(
        &self,
        envelope: &Envelope,
        raw: &RawMessage,
        e: &HandlerError,
    ) -> bool {
        if !self.claims_late(raw) || matches!(e, HandlerError::Unavailable(_)) {
            return false;
        }
        let Ok(mut conn) = self.pool.acquire().await else {
            return false;
        };
        inbox::contains(&mut conn, self.config.durable, envelope.id)
            .await
            .unwrap_or(false)
    }

    /// Inbox, handler and outbox of one message inside `tx`, which the caller commits or rolls
    /// back.
    async fn apply_in(
        &self,
        tx: &mut sqlx::PgConnection,
        envelope: &Envelope,
        event: H::Input,
        raw: &RawMessage,
    ) -> Result<Step<H::Output>, HandlerError> {
        let consumer = self.config.durable;
        let late = self.claims_late(raw);
        if !late
            && inbox::claim(&mut *tx, consumer, envelope.id, Some(raw.stream_seq)).await?
                == inbox::Claim::Duplicate
        {
            return Ok(Step::Duplicate);
        }
        let ctx = EventContext {
            event_id: envelope.id,
            event_time: envelope.time,
            consumer,
            stream_seq: Some(raw.stream_seq),
            delivered: raw.delivered,
        };
        let emitted = self.handler.handle(&mut *tx, event, &ctx).await?;
        let mut outs = Vec::with_capacity(emitted.len());
        for (index, out) in emitted.iter().enumerate() {
            let mut out = Envelope::caused_by(envelope, consumer, index, out);
            // With traces exported, what this handler emits is the child of its span.
            out.traceparent = crate::otel::traceparent_in(out.traceparent);
            if let Some(Err(why)) = self.guard.as_ref().map(|g| g.check(&out)) {
                return Ok(Step::Diverged(why));
            }
            outs.push(out);
        }
        let claim = late.then_some(outbox::InboxEntry {
            consumer,
            event_id: envelope.id,
            stream_seq: Some(raw.stream_seq),
        });
        match outbox::enqueue_step(&mut *tx, claim, &outs).await? {
            inbox::Claim::Fresh => Ok(Step::Applied(emitted)),
            inbox::Claim::Duplicate => Ok(Step::Repeated),
        }
    }

    /// Stores the dead letter; only then is the message termed. A dead letter that cannot be
    /// stored keeps the message: it is tried again like an unavailable database.
    async fn dead_letter(&self, raw: &RawMessage, r: Rejection) -> Disposition {
        let consumer = self.config.durable;
        let dl = NewDeadLetter {
            service: self.config.service,
            consumer,
            stream: raw.stream.clone(),
            stream_seq: raw.stream_seq,
            subject: raw.subject.clone(),
            headers: raw.headers_json(),
            payload: raw.payload.clone(),
            event_id: r.event_id,
            kind: r.kind,
            reason: r.reason,
            deliveries: raw.delivered,
        };
        let stored = async {
            let mut tx = self.pool.begin().await?;
            let new = dead_letter::record(&mut tx, &dl).await?;
            failures::clear(&mut tx, self.key(raw)).await?;
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(new)
        }
        .await;
        match stored {
            Ok(new) => {
                if new {
                    self.metrics
                        .kit()
                        .dead_letters
                        .get_or_create(&DeadLetterLabels {
                            consumer,
                            kind: r.kind.as_str(),
                        })
                        .inc();
                }
                tracing::warn!(consumer, kind = %r.kind, reason = %dl.reason, subject = %dl.subject, "dead-lettered");
                Disposition::DeadLettered(r.kind)
            }
            Err(e) => {
                KitMetrics::inc(&self.metrics.kit().dead_letter_store_failures, consumer);
                tracing::warn!(consumer, subject = %dl.subject, seq = raw.stream_seq, error = %e, "cannot store the dead letter; keeping the message");
                Disposition::Unavailable
            }
        }
    }
}

/// The messages of successive pull requests, one request at a time, each waiting up to `expires`.
/// After `shutdown` no new request is made, and the rest of the last one is still yielded, so that
/// the runner can hand each back instead of leaving it to the ack wait. A failed request or pull
/// yields its error and ends the stream.
fn pulls<'a>(
    consumer: &'a jetstream::consumer::Consumer<pull::Config>,
    batch: usize,
    expires: Duration,
    shutdown: &'a CancellationToken,
) -> impl Stream<Item = Result<jetstream::Message, async_nats::Error>> + 'a {
    struct State {
        current: Option<pull::Batch>,
        failed: bool,
    }
    let start = State {
        current: None,
        failed: false,
    };
    futures::stream::unfold(start, move |mut state| async move {
        if state.failed {
            return None;
        }
        loop {
            if let Some(current) = state.current.as_mut() {
                match current.next().await {
                    Some(Ok(msg)) => return Some((Ok(msg), state)),
                    Some(Err(e)) => {
                        state.failed = true;
                        return Some((Err(e), state));
                    }
                    None => state.current = None,
                }
            }
            if shutdown.is_cancelled() {
                return None;
            }
            match consumer
                .batch()
                .max_messages(batch)
                .expires(expires)
                .messages()
                .await
            {
                Ok(next) => state.current = Some(next),
                Err(e) => {
                    state.failed = true;
                    return Some((Err(e.into()), state));
                }
            }
        }
    })
}
