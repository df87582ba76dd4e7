//! The outbox: events are written in the caller's transaction, beside the business change.
//!
//! Architecture Invariant: nothing but the relay publishes to NATS. A service that wants to say
//! something calls [`enqueue`] inside the transaction that makes the change; if that transaction
//! rolls back, nothing was said.

use crate::envelope::Envelope;
use crate::inbox;
use jetsaga_contracts::{EventId, EventSet};
use sqlx::PgConnection;

/// Adds an event to the outbox inside the caller's transaction.
///
/// It first takes a transaction-scoped advisory lock on the event's key, so two transactions that
/// emit for the same order serialize here: the one that inserts first also commits first, and the
/// outbox id order of one key is its commit order. The relay depends on that to keep per-order order.
/// An event id that is already in the outbox is the same event again and is skipped.
pub async fn enqueue(conn: &mut PgConnection, envelope: &Envelope) -> Result<(), sqlx::Error> {
    enqueue_step(conn, None, std::slice::from_ref(envelope)).await?;
    Ok(())
}

/// The input a step claims in the inbox together with the events it emits.
#[derive(Debug, Clone, Copy)]
pub struct InboxEntry<'a> {
    pub consumer: &'a str,
    pub event_id: EventId,
    pub stream_seq: Option<u64>,
}

/// Adds a step's events to the outbox, in their order, as [`enqueue`] does each; with `inbox`, it
/// claims the step's input in the inbox in the same statement, and writes the events only when the
/// claim is new. One round trip for what would be one per row.
///
/// [`inbox::Claim::Duplicate`] when the inbox knew the input: nothing was written, and whatever the
/// caller's transaction did before for that input must be rolled back.
pub async fn enqueue_step(
    conn: &mut PgConnection,
    inbox: Option<InboxEntry<'_>>,
    envelopes: &[Envelope],
) -> Result<inbox::Claim, sqlx::Error> {
    if envelopes.is_empty() {
        return match inbox {
            Some(i) => inbox::claim(conn, i.consumer, i.event_id, i.stream_seq).await,
            None => Ok(inbox::Claim::Fresh),
        };
    }
    let mut ids = Vec::with_capacity(envelopes.len());
    let mut subjects = Vec::with_capacity(envelopes.len());
    let mut keys = Vec::with_capacity(envelopes.len());
    let mut types = Vec::with_capacity(envelopes.len());
    let mut headers = Vec::with_capacity(envelopes.len());
    let mut payloads = Vec::with_capacity(envelopes.len());
    for e in envelopes {
        ids.push(*e.id.as_uuid());
        subjects.push(e.subject.as_str());
        keys.push(e.key.as_str());
        types.push(e.ce_type.as_str());
        headers.push(e.headers_json());
        payloads.push(e.payload.as_ref());
    }
    // Every data-modifying part runs once, whether or not the query reads it. The rows are made
    // in event order, each after the lock of its key, so each gets its id once its key is held.
    let fresh: bool = sqlx::query_scalar(
        "WITH claimed AS (
             INSERT INTO kit_inbox (consumer, event_id, stream_seq)
             SELECT $7::text, $8::uuid, $9::bigint WHERE $7::text IS NOT NULL
             ON CONFLICT DO NOTHING
             RETURNING 1
         ), emitted AS (
             INSERT INTO kit_outbox (event_id, subject, order_key, ce_type, headers, payload)
             SELECT e.event_id, e.subject, e.order_key, e.ce_type, e.headers, e.payload
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::bytea[])
                      WITH ORDINALITY AS e(event_id, subject, order_key, ce_type, headers, payload, n)
             CROSS JOIN LATERAL (SELECT pg_advisory_xact_lock(hashtextextended(e.order_key, 7001)))
                 AS key_lock
             WHERE $7::text IS NULL OR EXISTS (SELECT 1 FROM claimed)
             ORDER BY e.n
             ON CONFLICT (event_id) DO NOTHING
         )
         SELECT $7::text IS NULL OR EXISTS (SELECT 1 FROM claimed)",
    )
    .bind(ids)
    .bind(subjects)
    .bind(keys)
    .bind(types)
    .bind(headers)
    .bind(payloads)
    .bind(inbox.map(|i| i.consumer))
    .bind(inbox.map(|i| *i.event_id.as_uuid()))
    .bind(inbox.and_then(|i| i.stream_seq).map(|s| i64::try_from(s).unwrap_or(i64::MAX)))
    .fetch_one(conn)
    .await?;
    Ok(if fresh {
        inbox::Claim::Fresh
    } else {
        inbox::Claim::Duplicate
    })
}

/// Emits an event that starts a chain (an HTTP request, an admin change, a timer) with the given
/// id, and returns its envelope. When traces are exported and a span is current (the HTTP
/// request's), the event continues that span's trace instead of starting its own.
pub async fn emit_root<E: EventSet>(
    conn: &mut PgConnection,
    id: EventId,
    event: &E,
) -> Result<Envelope, sqlx::Error> {
    let mut envelope = Envelope::root(id, event);
    envelope.traceparent = crate::otel::traceparent_in(envelope.traceparent);
    enqueue(conn, &envelope).await?;
    Ok(envelope)
}

/// How many events wait to be published.
pub async fn backlog(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM kit_outbox WHERE published_at IS NULL")
        .fetch_one(conn)
        .await
}

/// Whether this database emitted the event: its outbox holds every event it ever said.
pub async fn contains(conn: &mut PgConnection, event_id: EventId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM kit_outbox WHERE event_id = $1)")
        .bind(event_id.as_uuid())
        .fetch_one(conn)
        .await
}

/// Writes an event that is already in its stream (read back by a replay) into the outbox as
/// published, so the database knows it said it and the relay does not say it again.
pub async fn record_published(
    conn: &mut PgConnection,
    envelope: &Envelope,
    stream_seq: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO kit_outbox
             (event_id, subject, order_key, ce_type, headers, payload, published_at, stream_seq)
         VALUES ($1, $2, $3, $4, $5, $6, now(), $7)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(envelope.id.as_uuid())
    .bind(&envelope.subject)
    .bind(&envelope.key)
    .bind(&envelope.ce_type)
    .bind(envelope.headers_json())
    .bind(envelope.payload.as_ref())
    .bind(i64::try_from(stream_seq).unwrap_or(i64::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

/// The highest stream sequence of the service's own events the outbox knows as published
/// (dead-letter copies live in another stream and are left out): a replay of a restored backup
/// applies the own stream's facts from just after it.
pub async fn last_published_seq(conn: &mut PgConnection) -> Result<Option<u64>, sqlx::Error> {
    let seq: Option<i64> = sqlx::query_scalar(
        "SELECT max(stream_seq) FROM kit_outbox
         WHERE published_at IS NOT NULL AND subject NOT LIKE 'dlq.%'",
    )
    .fetch_one(conn)
    .await?;
    Ok(seq.map(|s| u64::try_from(s).unwrap_or(0)))
}

/// Marks unpublished outbox rows whose events are already in the stream as published. Returns how
/// many it marked.
pub async fn mark_already_published(
    conn: &mut PgConnection,
    event_ids: &[uuid::Uuid],
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE kit_outbox SET published_at = now()
         WHERE published_at IS NULL AND event_id = ANY($1)",
    )
    .bind(event_ids)
    .execute(conn)
    .await?
    .rows_affected())
}

/// An outbox row that can never be published as it is, set aside by the relay.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct ParkedRow {
    pub id: i64,
    pub event_id: uuid::Uuid,
    pub subject: String,
    pub ce_type: String,
    pub payload_bytes: i32,
    pub park_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub parked_at: time::OffsetDateTime,
}

/// The parked rows, oldest first, at most `limit`.
pub async fn parked(pool: &sqlx::PgPool, limit: i64) -> Result<Vec<ParkedRow>, sqlx::Error> {
    sqlx::query_as::<_, ParkedRow>(
        "SELECT id, event_id, subject, ce_type, length(payload) AS payload_bytes, park_reason,
                parked_at
         FROM kit_outbox WHERE parked_at IS NOT NULL AND published_at IS NULL
         ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// How the outbox stands: rows waiting, rows the stream refused that wait for their back-off, and
/// rows parked.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, sqlx::FromRow)]
pub struct Standing {
    pub backlog: i64,
    pub retrying: i64,
    pub parked: i64,
    /// Age of the oldest unpublished row that is not parked; 0 when there is none.
    pub oldest_age_seconds: f64,
}

pub async fn standing(pool: &sqlx::PgPool) -> Result<Standing, sqlx::Error> {
    sqlx::query_as::<_, Standing>(
        "SELECT count(*) FILTER (WHERE parked_at IS NULL) AS backlog,
                count(*) FILTER (WHERE parked_at IS NULL AND attempts > 0) AS retrying,
                count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked,
                COALESCE(EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE parked_at IS NULL)),
                         0)::float8 AS oldest_age_seconds
         FROM kit_outbox WHERE published_at IS NULL",
    )
    .fetch_one(pool)
    .await
}
