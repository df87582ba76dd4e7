//! Dead letters: messages that will never succeed as they are, kept whole with their reason.
//!
//! A dead letter is written in its own transaction, together with a copy on the DLQ stream (through
//! the outbox), and the message is then acked so the consumer carries on. It can be listed, shown,
//! requeued (published again under a new `Nats-Msg-Id`, keeping its `ce-id`) or discarded, and each
//! of those actions leaves an audit row.

use crate::envelope::{keyed_event_id, Envelope, TraceParent};
use crate::outbox;
use async_nats::jetstream;
use bytes::Bytes;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

/// Why a message was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    /// Headers or payload could not be decoded.
    Undecodable,
    /// A `ce-type` the consumer does not know.
    UnknownType,
    /// An event type on a subject or stream its producer does not own (a forgery or a bug).
    WrongProducer,
    /// The handler refused it with a permanent error.
    Rejected,
    /// Every delivery failed.
    MaxDeliveries,
}

impl DeadLetterKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeadLetterKind::Undecodable => "undecodable",
            DeadLetterKind::UnknownType => "unknown_type",
            DeadLetterKind::WrongProducer => "wrong_producer",
            DeadLetterKind::Rejected => "rejected",
            DeadLetterKind::MaxDeliveries => "max_deliveries",
        }
    }
}

impl fmt::Display for DeadLetterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The raw message and why it failed, as the runner hands it over.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    pub service: &'static str,
    pub consumer: &'static str,
    pub stream: String,
    pub stream_seq: u64,
    pub subject: String,
    pub headers: serde_json::Value,
    pub payload: Bytes,
    pub event_id: Option<Uuid>,
    pub kind: DeadLetterKind,
    pub reason: String,
    pub deliveries: i64,
}

/// A stored dead letter.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub consumer: String,
    pub stream: String,
    pub stream_seq: i64,
    pub subject: String,
    pub headers: serde_json::Value,
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub event_id: Option<Uuid>,
    pub kind: String,
    pub reason: String,
    pub deliveries: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: OffsetDateTime,
    pub status: String,
}

impl DeadLetter {
    /// The payload as text, lossily, for display.
    pub fn payload_text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// Stores a dead letter and its copy for the DLQ stream. Returns false when this message was
/// already dead-lettered by this consumer (a redelivery or the max-deliveries advisory racing the
/// runner).
pub async fn record(conn: &mut PgConnection, dl: &NewDeadLetter) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO kit_dead_letters
             (consumer, stream, stream_seq, subject, headers, payload, event_id, kind, reason, deliveries)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (consumer, stream, stream_seq) DO NOTHING",
    )
    .bind(dl.consumer)
    .bind(&dl.stream)
    .bind(i64::try_from(dl.stream_seq).unwrap_or(i64::MAX))
    .bind(&dl.subject)
    .bind(&dl.headers)
    .bind(dl.payload.as_ref())
    .bind(dl.event_id)
    .bind(dl.kind.as_str())
    .bind(&dl.reason)
    .bind(dl.deliveries)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        outbox::enqueue(conn, &dlq_copy(dl)).await?;
    }
    Ok(inserted)
}

/// The DLQ stream's copy: `dlq.<service>.<consumer>`, with the reason and the original message.
fn dlq_copy(dl: &NewDeadLetter) -> Envelope {
    let id = keyed_event_id(
        "dead-letter",
        &format!("{}/{}/{}", dl.consumer, dl.stream, dl.stream_seq),
    );
    let body = serde_json::json!({
        "consumer": dl.consumer,
        "stream": dl.stream,
        "stream_seq": dl.stream_seq,
        "subject": dl.subject,
        "kind": dl.kind,
        "reason": dl.reason,
        "deliveries": dl.deliveries,
        "headers": dl.headers,
        "payload": String::from_utf8_lossy(&dl.payload),
    });
    Envelope {
        id,
        ce_type: "jetsaga.dlq.dead_lettered.v1".to_owned(),
        source: format!("jetsaga/{}", dl.service),
        time: crate::envelope::now(),
        key: dl.consumer.to_owned(),
        subject: format!("dlq.{}.{}", dl.service, dl.consumer),
        traceparent: TraceParent::root(id),
        correlation_id: dl.consumer.to_owned(),
        causation_id: id,
        payload: Bytes::from(body.to_string()),
    }
}

/// Which dead letters to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this status (`open`, `requeued`, `discarded`); all when `None`.
    pub status: Option<String>,
    pub limit: i64,
}

pub async fn list(pool: &PgPool, filter: &Filter) -> Result<Vec<DeadLetter>, sqlx::Error> {
    sqlx::query_as::<_, DeadLetter>(
        "SELECT id, consumer, stream, stream_seq, subject, headers, payload, event_id, kind, reason,
                deliveries, failed_at, status
         FROM kit_dead_letters
         WHERE ($1::text IS NULL OR status = $1)
         ORDER BY id
         LIMIT $2",
    )
    .bind(&filter.status)
    .bind(if filter.limit > 0 { filter.limit } else { 1000 })
    .fetch_all(pool)
    .await
}

pub async fn get(pool: &PgPool, id: i64) -> Result<Option<DeadLetter>, sqlx::Error> {
    sqlx::query_as::<_, DeadLetter>(
        "SELECT id, consumer, stream, stream_seq, subject, headers, payload, event_id, kind, reason,
                deliveries, failed_at, status
         FROM kit_dead_letters WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Why a requeue or discard did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("dead letter {0} does not exist")]
    NotFound(i64),
    #[error("dead letter {id} is {status}, not open")]
    NotOpen { id: i64, status: String },
    #[error("dead letter {id}: database: {source}")]
    Database {
        id: i64,
        #[source]
        source: sqlx::Error,
    },
    #[error("dead letter {id}: publishing to {subject} failed: {message}")]
    Publish {
        id: i64,
        subject: String,
        message: String,
    },
}

/// Publishes a dead letter's original message again, under a new `Nats-Msg-Id` (its `ce-id` stays,
/// so consumers that already applied it dedupe it), marks it requeued and records who did it.
/// Returns the new `Nats-Msg-Id`. If it fails again, it comes back as a new dead letter.
pub async fn requeue(
    pool: &PgPool,
    js: &jetstream::Context,
    id: i64,
    actor: &str,
) -> Result<String, DeadLetterError> {
    let db = |source| DeadLetterError::Database { id, source };
    let mut tx = pool.begin().await.map_err(db)?;
    let dl = lock_open(&mut tx, id).await?;
    let msg_id = format!("requeue-{id}-{}", Uuid::new_v4());
    let publish = jetstream::message::PublishMessage::build()
        .payload(Bytes::from(dl.payload.clone()))
        .headers(crate::envelope::header_map(&dl.headers))
        .message_id(&msg_id);
    let publish_err = |message: String| DeadLetterError::Publish {
        id,
        subject: dl.subject.clone(),
        message,
    };
    js.send_publish(dl.subject.clone(), publish)
        .await
        .map_err(|e| publish_err(e.to_string()))?
        .await
        .map_err(|e| publish_err(e.to_string()))?;
    audit(&mut tx, id, "requeued", actor, Some(&msg_id))
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(msg_id)
}

/// Marks a dead letter discarded and records who did it.
pub async fn discard(pool: &PgPool, id: i64, actor: &str) -> Result<(), DeadLetterError> {
    let db = |source| DeadLetterError::Database { id, source };
    let mut tx = pool.begin().await.map_err(db)?;
    lock_open(&mut tx, id).await?;
    audit(&mut tx, id, "discarded", actor, None)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)
}

async fn lock_open(conn: &mut PgConnection, id: i64) -> Result<DeadLetter, DeadLetterError> {
    let dl = sqlx::query_as::<_, DeadLetter>(
        "SELECT id, consumer, stream, stream_seq, subject, headers, payload, event_id, kind, reason,
                deliveries, failed_at, status
         FROM kit_dead_letters WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(|source| DeadLetterError::Database { id, source })?
    .ok_or(DeadLetterError::NotFound(id))?;
    if dl.status != "open" {
        return Err(DeadLetterError::NotOpen {
            id,
            status: dl.status,
        });
    }
    Ok(dl)
}

async fn audit(
    conn: &mut PgConnection,
    id: i64,
    action: &str,
    actor: &str,
    new_msg_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE kit_dead_letters SET status = $2 WHERE id = $1")
        .bind(id)
        .bind(action)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO kit_dead_letter_audit (dead_letter_id, action, actor, new_msg_id)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(action)
    .bind(actor)
    .bind(new_msg_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// One requeue or discard of a dead letter: who, when, what.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub action: String,
    pub actor: String,
    pub new_msg_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The actions taken on a dead letter, oldest first.
pub async fn audit_trail(pool: &PgPool, id: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as::<_, AuditEntry>(
        "SELECT action, actor, new_msg_id, at FROM kit_dead_letter_audit
         WHERE dead_letter_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

/// Open dead letters, for gauges and `jetsaga stats`.
pub async fn open_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM kit_dead_letters WHERE status = 'open'")
        .fetch_one(pool)
        .await
}
