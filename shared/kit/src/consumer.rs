//! The inbox consumer runner, written once: decode → inbox → handler → outbox → commit → ack.
//!
//! One durable pull consumer per service and input stream. Each message is handled in one
//! transaction: the inbox row, the handler's effect and the events it emits commit together, and
//! only then is the message acked. So a crash anywhere before the commit leaves nothing behind, and a
//! crash after it leads to a redelivery that the inbox recognises.
//!
//! Every outcome of a message is one of [`Disposition`]:
//! - applied or duplicate: ack;
//! - transient failure: nak with a delay from the backoff, until the last delivery;
//! - permanent failure (undecodable, unknown type, wrong producer, refused by the handler, or the last
//!   delivery failed): a dead letter with the raw message and the reason, then term.
//!
//! A message whose last delivery was never answered at all (the process hung or died each time) is
//! caught by the server's max-deliveries advisory, which this runner also listens to.

use crate::backoff::Backoff;
use crate::dead_letter::{self, DeadLetterKind, NewDeadLetter};
use crate::envelope::Envelope;
use crate::handler::{EventContext, Handler, HandlerError};
use crate::inbox;
use crate::metrics::Metrics;
use crate::outbox;
use async_nats::jetstream::{self, consumer::pull, AckKind};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use jetsaga_contracts::{DecodeError, EventSet, Producer};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

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
    /// Deliveries before a message is dead-lettered. Default 5.
    pub max_deliver: i64,
    /// How long the server waits for an ack before redelivering. Default 30 s.
    pub ack_wait: Duration,
    /// Messages handled at once. Default 16.
    pub concurrency: usize,
    /// Delay of a nak after a transient failure, by delivery count. Default 200 ms doubling to 10 s.
    pub nak_backoff: Backoff,
}

impl ConsumerConfig {
    pub fn new(service: &'static str, durable: &'static str, filter_subjects: Vec<String>) -> Self {
        ConsumerConfig {
            durable,
            service,
            filter_subjects,
            max_deliver: 5,
            ack_wait: Duration::from_secs(30),
            concurrency: 16,
            nak_backoff: Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(10),
            },
        }
    }
}

/// Why the consumer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("consumer {durable}: stream {stream} is not available: {message}")]
    Stream {
        durable: &'static str,
        stream: &'static str,
        message: String,
    },
    #[error("consumer {durable}: cannot create or update it: {message}")]
    Create {
        durable: &'static str,
        message: String,
    },
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
    /// A transient failure: nak, to come back after this delay.
    Retry(Duration),
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

    fn headers_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        if let Some(h) = &self.headers {
            for (name, values) in h.iter() {
                let v: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
                map.insert(name.to_string(), serde_json::Value::String(v.join(",")));
            }
        }
        serde_json::Value::Object(map)
    }
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
}

impl<H> Clone for Consumer<H> {
    fn clone(&self) -> Self {
        Consumer {
            pool: self.pool.clone(),
            js: self.js.clone(),
            config: self.config.clone(),
            handler: self.handler.clone(),
            metrics: self.metrics.clone(),
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
        }
    }

    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    fn input() -> Producer {
        <H::Input as EventSet>::PRODUCER
    }

    /// Creates the durable consumer, or updates it to this configuration.
    pub async fn ensure(
        &self,
    ) -> Result<jetstream::consumer::Consumer<pull::Config>, ConsumerError> {
        let stream_name = Self::input().stream();
        let stream = self
            .js
            .get_stream(stream_name)
            .await
            .map_err(|e| ConsumerError::Stream {
                durable: self.config.durable,
                stream: stream_name,
                message: e.to_string(),
            })?;
        stream
            .create_consumer(pull::Config {
                durable_name: Some(self.config.durable.to_owned()),
                description: Some(format!(
                    "{} service input from {}",
                    self.config.service, stream_name
                )),
                filter_subjects: self.config.filter_subjects.clone(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: self.config.ack_wait,
                max_deliver: self.config.max_deliver,
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| ConsumerError::Create {
                durable: self.config.durable,
                message: e.to_string(),
            })
    }

    /// Pulls and handles messages until `shutdown`; then stops pulling, finishes what is in flight
    /// and returns. Setting the consumer up is retried while NATS is unavailable.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut attempt = 0u32;
        let consumer = loop {
            match self.ensure().await {
                Ok(c) => break c,
                Err(e) => {
                    let delay = self.config.nak_backoff.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(error = %e, retry_in = ?delay, "consumer not ready");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };
        let advisories = tokio::spawn(self.clone().watch_max_deliveries(shutdown.clone()));
        let batch = self.config.concurrency.max(1) * 2;
        while !shutdown.is_cancelled() {
            let messages = match consumer
                .stream()
                .max_messages_per_batch(batch)
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await
            {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(consumer = self.config.durable, error = %e, "cannot pull; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(self.config.nak_backoff.max) => continue,
                    }
                }
            };
            messages
                .take_until(shutdown.cancelled())
                .for_each_concurrent(self.config.concurrency, |item| async {
                    match item {
                        Ok(msg) => {
                            let disposition = self.process(&msg).await;
                            self.settle(&msg, &disposition).await;
                        }
                        Err(e) => {
                            tracing::debug!(consumer = self.config.durable, error = %e, "pull error");
                        }
                    }
                })
                .await;
        }
        let _ = advisories.await;
    }

    /// Handles one message without acking it. A test that stops here has crashed between the
    /// commit and the ack.
    pub async fn process(&self, msg: &jetstream::Message) -> Disposition {
        self.process_raw(&RawMessage::from_jetstream(msg)).await
    }

    /// Acks, naks or terms the message as its disposition says.
    pub async fn settle(&self, msg: &jetstream::Message, disposition: &Disposition) {
        let kind = match disposition {
            Disposition::Applied | Disposition::Duplicate => AckKind::Ack,
            Disposition::DeadLettered(_) => AckKind::Term,
            Disposition::Retry(delay) => AckKind::Nak(Some(*delay)),
        };
        if let Err(e) = msg.ack_with(kind).await {
            // Not fatal: the message is redelivered after ack_wait and the inbox dedupes it.
            tracing::warn!(consumer = self.config.durable, error = %e, "ack failed");
        }
    }

    /// Handles one message, whichever way it arrived.
    pub async fn process_raw(&self, raw: &RawMessage) -> Disposition {
        let consumer = self.config.durable;
        let (envelope, event) = match self.decode(raw) {
            Ok(decoded) => decoded,
            Err(r) => return self.dead_letter(raw, r).await,
        };
        let span = tracing::info_span!(
            "handle",
            consumer,
            event_id = %envelope.id,
            ce_type = %envelope.ce_type,
            trace_id = %envelope.traceparent.trace_id_hex(),
            delivered = raw.delivered,
        );
        match self.apply(&envelope, event, raw).instrument(span).await {
            Ok(disposition) => {
                let metric = if disposition == Disposition::Applied {
                    "jetsaga_events_handled_total"
                } else {
                    "jetsaga_events_duplicate_total"
                };
                self.metrics.inc(metric, &[("consumer", consumer)]);
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
            Err(HandlerError::Transient(t)) => {
                self.metrics
                    .inc("jetsaga_handler_retries_total", &[("consumer", consumer)]);
                if raw.delivered >= self.config.max_deliver {
                    let rejection = Rejection {
                        kind: DeadLetterKind::MaxDeliveries,
                        reason: format!(
                            "event {} failed all {} deliveries; last error: {t}",
                            envelope.id, raw.delivered
                        ),
                        event_id: Some(*envelope.id.as_uuid()),
                    };
                    return self.dead_letter(raw, rejection).await;
                }
                let attempt = u32::try_from(raw.delivered.max(1) - 1).unwrap_or(u32::MAX);
                let delay = self.config.nak_backoff.delay(attempt);
                tracing::warn!(consumer, event_id = %envelope.id, error = %t, retry_in = ?delay, "transient failure");
                Disposition::Retry(delay)
            }
        }
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
        let subject_owner = Producer::from_subject(&raw.subject);
        if raw.stream != input.stream() || subject_owner != Some(input) {
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
        let type_owner = envelope
            .ce_type
            .strip_prefix("jetsaga.")
            .and_then(Producer::from_subject);
        if type_owner.is_some() && type_owner != Some(input) {
            return Err(reject(
                DeadLetterKind::WrongProducer,
                format!(
                    "event {} of type {} arrived on {}, a subject of {input}; only {} may emit it",
                    envelope.id,
                    envelope.ce_type,
                    raw.subject,
                    type_owner.map(|p| p.to_string()).unwrap_or_default()
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
        let consumer = self.config.durable;
        let mut tx = self.pool.begin().await?;
        if inbox::claim(&mut tx, consumer, envelope.id, Some(raw.stream_seq)).await?
            == inbox::Claim::Duplicate
        {
            tx.rollback().await?;
            return Ok(Disposition::Duplicate);
        }
        let ctx = EventContext {
            event_id: envelope.id,
            event_time: envelope.time,
            consumer,
            stream_seq: Some(raw.stream_seq),
            delivered: raw.delivered,
        };
        let emitted = self.handler.handle(&mut tx, event, &ctx).await?;
        for (index, out) in emitted.iter().enumerate() {
            outbox::enqueue(
                &mut tx,
                &Envelope::caused_by(envelope, consumer, index, out),
            )
            .await?;
        }
        tx.commit().await?;
        self.handler.committed(&emitted, &self.metrics);
        Ok(Disposition::Applied)
    }

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
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(new)
        }
        .await;
        match stored {
            Ok(new) => {
                if new {
                    self.metrics.inc(
                        "jetsaga_dead_letters_total",
                        &[("consumer", consumer), ("kind", r.kind.as_str())],
                    );
                }
                tracing::warn!(consumer, kind = %r.kind, reason = %dl.reason, subject = %dl.subject, "dead-lettered");
                Disposition::DeadLettered(r.kind)
            }
            Err(e) => {
                // The dead letter could not be stored: keep the message and try again later.
                let delay = self.config.nak_backoff.max;
                tracing::warn!(consumer, error = %e, "cannot store dead letter; will retry");
                Disposition::Retry(delay)
            }
        }
    }

    /// Dead-letters messages the server gave up on without any answer from us (every delivery hung
    /// or its process died), from the max-deliveries advisory. Instances share a queue group.
    pub async fn watch_max_deliveries(self, shutdown: CancellationToken) {
        let stream_name = Self::input().stream();
        let subject = format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream_name}.{}",
            self.config.durable
        );
        let client = self.js.client();
        let mut sub = match client
            .queue_subscribe(subject, format!("{}-advisories", self.config.durable))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(consumer = self.config.durable, error = %e, "cannot watch max-deliveries advisories");
                return;
            }
        };
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => return,
                m = sub.next() => match m { Some(m) => m, None => return },
            };
            #[derive(serde::Deserialize)]
            struct Advisory {
                stream_seq: u64,
                deliveries: i64,
            }
            let Ok(adv) = serde_json::from_slice::<Advisory>(&msg.payload) else {
                continue;
            };
            let original = match self.js.get_stream(stream_name).await {
                Ok(s) => s
                    .get_raw_message(adv.stream_seq)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let original = match original {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(consumer = self.config.durable, seq = adv.stream_seq, error = %e, "max deliveries reached but the message cannot be read");
                    continue;
                }
            };
            let raw = RawMessage {
                subject: original.subject.to_string(),
                headers: Some(original.headers.clone()),
                payload: original.payload.clone(),
                stream: stream_name.to_owned(),
                stream_seq: adv.stream_seq,
                delivered: adv.deliveries,
            };
            let event_id =
                Envelope::from_message(&raw.subject, raw.headers.as_ref(), raw.payload.clone())
                    .ok()
                    .map(|e| *e.id.as_uuid());
            let rejection = Rejection {
                kind: DeadLetterKind::MaxDeliveries,
                reason: format!(
                    "no delivery of {} seq {} was acked within {:?} ({} deliveries)",
                    stream_name, adv.stream_seq, self.config.ack_wait, adv.deliveries
                ),
                event_id,
            };
            self.dead_letter(&raw, rejection).await;
        }
    }
}
