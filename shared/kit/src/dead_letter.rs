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
///
/// Every text is made storable first ([`storable`]): whatever bytes the message held, its dead letter
/// can be written.
pub async fn record(conn: &mut PgConnection, dl: &NewDeadLetter) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO kit_dead_letters
             (consumer, stream, stream_seq, subject, headers, payload, event_id, kind, reason, deliveries)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (consumer, stream, stream_seq) DO NOTHING",
    )
    .bind(dl.consumer)
    .bind(storable(&dl.stream))
    .bind(i64::try_from(dl.stream_seq).unwrap_or(i64::MAX))
    .bind(storable(&dl.subject))
    .bind(storable_json(&dl.headers))
    .bind(dl.payload.as_ref())
    .bind(dl.event_id)
    .bind(dl.kind.as_str())
    .bind(storable(&dl.reason))
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

/// An operator's decision on a dead letter, as the DLQ stream recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `requeued` or `discarded`.
    pub action: String,
    pub actor: String,
    pub new_msg_id: Option<String>,
    /// Why, in the operator's words, when they gave one.
    pub reason: Option<String>,
}

/// A dead letter as a replay rebuilds it: the original message (read from its stream again), the
/// kind, reason and deliveries its DLQ copy recorded, and the operators' decisions in order. No DLQ
/// copy is written: the stream holds it already. Returns false when the database had it.
pub async fn restore(
    conn: &mut PgConnection,
    dl: &RecordedDeadLetter<'_>,
) -> Result<bool, sqlx::Error> {
    let status = dl.decisions.last().map_or("open", |d| d.action.as_str());
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO kit_dead_letters
             (consumer, stream, stream_seq, subject, headers, payload, event_id, kind, reason,
              deliveries, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (consumer, stream, stream_seq) DO NOTHING
         RETURNING id",
    )
    .bind(dl.consumer)
    .bind(storable(dl.stream))
    .bind(i64::try_from(dl.stream_seq).unwrap_or(i64::MAX))
    .bind(storable(dl.subject))
    .bind(storable_json(dl.headers))
    .bind(dl.payload)
    .bind(dl.event_id)
    .bind(dl.kind)
    .bind(storable(dl.reason))
    .bind(dl.deliveries)
    .bind(status)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = id else { return Ok(false) };
    for d in dl.decisions {
        sqlx::query(
            "INSERT INTO kit_dead_letter_audit (dead_letter_id, action, actor, new_msg_id, reason)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(&d.action)
        .bind(&d.actor)
        .bind(&d.new_msg_id)
        .bind(d.reason.as_deref().map(storable))
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// What [`restore`] writes.
#[derive(Debug)]
pub struct RecordedDeadLetter<'a> {
    pub consumer: &'a str,
    pub stream: &'a str,
    pub stream_seq: u64,
    pub subject: &'a str,
    pub headers: &'a serde_json::Value,
    pub payload: &'a [u8],
    pub event_id: Option<Uuid>,
    pub kind: &'a str,
    pub reason: &'a str,
    pub deliveries: i64,
    pub decisions: &'a [Decision],
}

/// Text PostgreSQL can store: `TEXT` and `JSONB` refuse the NUL character, which a header value or
/// a reason quoting a payload may hold. It is written as the two characters `\0`.
pub fn storable(text: &str) -> String {
    text.replace('\0', "\\0")
}

/// [`storable`] for every string of a JSON value, keys included.
pub fn storable_json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(storable(s)),
        Value::Array(items) => Value::Array(items.iter().map(storable_json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (storable(k), storable_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The most of the original payload a DLQ copy carries. The copy must stay well under the server's
/// `max_payload` (1 MiB by default) whatever the message held: a copy that cannot be published
/// would sit in the outbox for ever.
pub const DLQ_PAYLOAD_LIMIT: usize = 16 * 1024;

/// The most of a reason or a header value a DLQ copy carries.
const DLQ_TEXT_LIMIT: usize = 2 * 1024;

/// The DLQ stream's copy: `dlq.<service>.<consumer>`, with the reason and the original message,
/// bounded: a payload over [`DLQ_PAYLOAD_LIMIT`] is cut with a note, binary data is base64, long
/// texts are cut. The whole message stays in the dead-letter table.
fn dlq_copy(dl: &NewDeadLetter) -> Envelope {
    use base64::Engine as _;
    let id = keyed_event_id(
        "dead-letter",
        &format!("{}/{}/{}", dl.consumer, dl.stream, dl.stream_seq),
    );
    let kept = &dl.payload[..dl.payload.len().min(DLQ_PAYLOAD_LIMIT)];
    let truncated = kept.len() < dl.payload.len();
    let (payload, encoding) = match std::str::from_utf8(kept) {
        Ok(text) if !text.contains('\0') => (text.to_owned(), "utf-8"),
        _ => (
            base64::engine::general_purpose::STANDARD.encode(kept),
            "base64",
        ),
    };
    let headers = match storable_json(&dl.headers) {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, serde_json::Value::String(cut(&s))),
                    other => (k, other),
                })
                .collect(),
        ),
        other => other,
    };
    let body = serde_json::json!({
        "consumer": dl.consumer,
        "stream": dl.stream,
        "stream_seq": dl.stream_seq,
        "subject": dl.subject,
        "kind": dl.kind,
        "reason": cut(&storable(&dl.reason)),
        "deliveries": dl.deliveries,
        "headers": headers,
        "payload": payload,
        "payload_encoding": encoding,
        "payload_bytes": dl.payload.len(),
        "payload_truncated": truncated,
        "note": if truncated {
            Some(format!(
                "the first {} of {} bytes; the whole message is in {}'s dead-letter table",
                kept.len(),
                dl.payload.len(),
                dl.service
            ))
        } else {
            None
        },
    });
    Envelope {
        id,
        ce_type: DEAD_LETTERED_TYPE.to_owned(),
        source: format!("jetsaga/{}", dl.service),
        time: crate::envelope::now(),
        // One key per dead letter: a copy that cannot be published holds back no other.
        key: format!("dlq/{}/{}/{}", dl.consumer, dl.stream, dl.stream_seq),
        subject: format!("dlq.{}.{}", dl.service, dl.consumer),
        traceparent: TraceParent::root(id),
        correlation_id: dl.consumer.to_owned(),
        causation_id: id,
        payload: Bytes::from(body.to_string()),
    }
}

/// The `ce-type` of a dead letter's copy on the DLQ stream.
pub const DEAD_LETTERED_TYPE: &str = "jetsaga.dlq.dead_lettered.v1";
/// The `ce-type` of an operator's discard of a dead letter.
pub const DISCARDED_TYPE: &str = "jetsaga.dlq.discarded.v1";
/// The `ce-type` of an operator's requeue of a dead letter.
pub const REQUEUED_TYPE: &str = "jetsaga.dlq.requeued.v1";

/// An operator's decision on a dead letter, for the DLQ stream.
fn decision_event(
    dl: &DeadLetter,
    service: &str,
    action: &str,
    decided: &Decided<'_>,
    new_msg_id: Option<&str>,
) -> Envelope {
    let actor = decided.actor;
    let place = format!("{}/{}/{}", dl.consumer, dl.stream, dl.stream_seq);
    let id = keyed_event_id(
        "dead-letter-decision",
        &format!("{place}/{action}/{}", new_msg_id.unwrap_or("")),
    );
    let body = serde_json::json!({
        "consumer": dl.consumer,
        "stream": dl.stream,
        "stream_seq": dl.stream_seq,
        "action": action,
        "actor": actor,
        "new_msg_id": new_msg_id,
        "reason": decided.reason.map(cut),
    });
    Envelope {
        id,
        ce_type: format!("jetsaga.dlq.{action}.v1"),
        source: format!("jetsaga/{service}"),
        time: crate::envelope::now(),
        key: format!("dlq/{place}"),
        subject: format!("dlq.{service}.{}", dl.consumer),
        traceparent: TraceParent::root(id),
        correlation_id: dl.consumer.clone(),
        causation_id: id,
        payload: Bytes::from(body.to_string()),
    }
}

/// At most [`DLQ_TEXT_LIMIT`] bytes of `text`, cut on a character boundary, with a note.
fn cut(text: &str) -> String {
    if text.len() <= DLQ_TEXT_LIMIT {
        return text.to_owned();
    }
    let mut end = DLQ_TEXT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
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
    #[error(
        "dead letter {id}: its message was written {age_days} days ago and {stream} keeps events \
         for {kept_days} days; the consumers that applied it may have trimmed their record of it, so a \
         requeue could apply it twice: discard it and correct what it missed by hand"
    )]
    TooOld {
        id: i64,
        stream: String,
        age_days: i64,
        kept_days: u64,
    },
    #[error("dead letter {id}: {source}")]
    Retention {
        id: i64,
        #[source]
        source: crate::retention::RetentionError,
    },
    #[error("dead letter {id}: publishing to {subject} failed: {source}")]
    Publish {
        id: i64,
        subject: String,
        #[source]
        source: async_nats::Error,
    },
}

/// Who decides on a dead letter, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided<'a> {
    /// The operator, recorded in the audit row and the DLQ event.
    pub actor: &'a str,
    /// Why, in the operator's words (recorded too, when given).
    pub reason: Option<&'a str>,
}

impl<'a> Decided<'a> {
    /// A decision by `actor` with no reason given.
    pub const fn by(actor: &'a str) -> Self {
        Decided {
            actor,
            reason: None,
        }
    }
}

/// Publishes a dead letter's original message again, under a new `Nats-Msg-Id` (its `ce-id` stays,
/// so consumers that already applied it dedupe it), marks it requeued and records who did it.
/// Returns the new `Nats-Msg-Id`. If it fails again, it comes back as a new dead letter.
///
/// A message older than its stream keeps events is refused ([`DeadLetterError::TooOld`]): the
/// consumers that applied it may have trimmed their inbox rows of it ([`crate::retention`]).
pub async fn requeue(
    pool: &PgPool,
    js: &jetstream::Context,
    service: &str,
    id: i64,
    decided: Decided<'_>,
) -> Result<String, DeadLetterError> {
    let db = |source| DeadLetterError::Database { id, source };
    let mut tx = pool.begin().await.map_err(db)?;
    let dl = lock_open(&mut tx, id).await?;
    refuse_if_forgotten(js, &dl).await?;
    let msg_id = format!("requeue-{id}-{}", Uuid::new_v4());
    let publish = jetstream::message::PublishMessage::build()
        .payload(Bytes::from(dl.payload.clone()))
        .headers(crate::envelope::header_map(&dl.headers))
        .message_id(&msg_id);
    let publish_err = |source: async_nats::Error| DeadLetterError::Publish {
        id,
        subject: dl.subject.clone(),
        source,
    };
    js.send_publish(dl.subject.clone(), publish)
        .await
        .map_err(|e| publish_err(e.into()))?
        .await
        .map_err(|e| publish_err(e.into()))?;
    audit(&mut tx, &dl, service, "requeued", &decided, Some(&msg_id))
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(msg_id)
}

/// When the dead letter's message was written: its `ce-time`, or, for a message without one, when
/// it failed (a message is written before it fails).
fn written_at(dl: &DeadLetter) -> OffsetDateTime {
    dl.headers
        .get(crate::envelope::CE_TIME)
        .and_then(|t| t.as_str())
        .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
        .map_or(dl.failed_at, |t| t.min(dl.failed_at))
}

async fn refuse_if_forgotten(
    js: &jetstream::Context,
    dl: &DeadLetter,
) -> Result<(), DeadLetterError> {
    let id = dl.id;
    let ages = crate::retention::stream_max_ages(js, &[dl.stream.as_str()])
        .await
        .map_err(|source| DeadLetterError::Retention { id, source })?;
    let Some(&max_age) = ages.first() else {
        return Ok(());
    };
    let written = written_at(dl);
    let now = OffsetDateTime::now_utc();
    if crate::retention::requeue_refused(written, now, max_age) {
        return Err(DeadLetterError::TooOld {
            id,
            stream: dl.stream.clone(),
            age_days: (now - written).whole_days(),
            kept_days: max_age.as_secs() / 86_400,
        });
    }
    Ok(())
}

/// Marks a dead letter discarded and records who did it.
pub async fn discard(
    pool: &PgPool,
    service: &str,
    id: i64,
    decided: Decided<'_>,
) -> Result<(), DeadLetterError> {
    let db = |source| DeadLetterError::Database { id, source };
    let mut tx = pool.begin().await.map_err(db)?;
    let dl = lock_open(&mut tx, id).await?;
    audit(&mut tx, &dl, service, "discarded", &decided, None)
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

/// Records an operator's decision on a dead letter: its status, an audit row, and an event on the
/// DLQ stream (`jetsaga.dlq.<action>.v1` on `dlq.<service>.<consumer>`), so that a replay that
/// rebuilds the database from the streams knows what the operator decided.
async fn audit(
    conn: &mut PgConnection,
    dl: &DeadLetter,
    service: &str,
    action: &str,
    decided: &Decided<'_>,
    new_msg_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    let id = dl.id;
    outbox::enqueue(
        &mut *conn,
        &decision_event(dl, service, action, decided, new_msg_id),
    )
    .await?;
    sqlx::query("UPDATE kit_dead_letters SET status = $2 WHERE id = $1")
        .bind(id)
        .bind(action)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO kit_dead_letter_audit (dead_letter_id, action, actor, new_msg_id, reason)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(action)
    .bind(decided.actor)
    .bind(new_msg_id)
    .bind(decided.reason.map(storable))
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
    /// Why, in the operator's words, when they gave one.
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The actions taken on a dead letter, oldest first.
pub async fn audit_trail(pool: &PgPool, id: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as::<_, AuditEntry>(
        "SELECT action, actor, new_msg_id, reason, at FROM kit_dead_letter_audit
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_letter(payload: Vec<u8>, header: &str) -> NewDeadLetter {
        NewDeadLetter {
            service: "voucher",
            consumer: "voucher-on-orders",
            stream: "ORDERS".to_owned(),
            stream_seq: 7,
            subject: "orders.created.x".to_owned(),
            headers: serde_json::json!({ "ce-id": header }),
            payload: Bytes::from(payload),
            event_id: None,
            kind: DeadLetterKind::Undecodable,
            reason: "x".repeat(10_000),
            deliveries: 1,
        }
    }

    #[test]
    fn a_dlq_copy_of_big_binary_junk_stays_small_and_says_it_was_cut() {
        let junk: Vec<u8> = (0..900_000u32).map(|i| (i % 251) as u8).collect();
        let copy = dlq_copy(&dead_letter(junk, "a\0b"));
        assert!(
            copy.payload.len() < 64 * 1024,
            "{} bytes",
            copy.payload.len()
        );
        let body: serde_json::Value = serde_json::from_slice(&copy.payload).unwrap();
        assert_eq!(body["payload_encoding"], "base64");
        assert_eq!(body["payload_bytes"], 900_000);
        assert_eq!(body["payload_truncated"], true);
        assert!(body["note"].as_str().unwrap().contains("dead-letter table"));
        assert_eq!(body["headers"]["ce-id"], "a\\0b");
        assert!(body["reason"].as_str().unwrap().len() < 3 * 1024);
    }

    #[test]
    fn a_dlq_copy_of_small_text_is_kept_whole_and_readable() {
        let copy = dlq_copy(&dead_letter(b"{not json".to_vec(), "id"));
        let body: serde_json::Value = serde_json::from_slice(&copy.payload).unwrap();
        assert_eq!(body["payload"], "{not json");
        assert_eq!(body["payload_encoding"], "utf-8");
        assert_eq!(body["payload_truncated"], false);
        assert!(body["note"].is_null());
    }

    #[test]
    fn nul_characters_become_storable_text_everywhere_in_a_json_value() {
        let v = serde_json::json!({ "a\0": ["x\0y", 1, { "k": "\0" }] });
        let s = storable_json(&v);
        assert!(!s.to_string().contains("\\u0000"), "{s}");
        assert_eq!(s["a\\0"][0], "x\\0y");
        assert_eq!(storable("plain"), "plain");
    }
}
