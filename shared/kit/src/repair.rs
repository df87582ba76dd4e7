//! Operator repairs (`jetsaga reconcile --repair`): a service changes its state through its own
//! rules, and the root event that announces the change is written to its outbox in the same
//! transaction. (A replay applies such an event from the stream as a fact: see [`crate::facts`].)

use crate::envelope::{keyed_event_id, Envelope, TraceParent};
use crate::handler::HandlerError;
use crate::outbox;
use bytes::Bytes;
use jetsaga_contracts::{EventId, EventSet};
use sqlx::PgConnection;
use std::fmt;
use time::OffsetDateTime;

/// A repair that could not run: which (`payment-repair-refund`), of which saga, and why (the
/// database failed, or a stored row the service's rules refuse).
#[derive(Debug, thiserror::Error)]
#[error("{repair} of order {saga_id}: {source}")]
pub struct RepairError {
    pub repair: &'static str,
    pub saga_id: String,
    #[source]
    pub source: HandlerError,
}

impl RepairError {
    /// `repair` of saga `saga_id` failed with `source`.
    pub fn new(
        repair: &'static str,
        saga_id: impl fmt::Display,
        source: impl Into<HandlerError>,
    ) -> Self {
        RepairError {
            repair,
            saga_id: saga_id.to_string(),
            source: source.into(),
        }
    }
}

/// What a repair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repaired {
    /// The state changed; this event, written to the outbox, announces it.
    Emitted(Box<Envelope>),
    /// Nothing needed changing any more (the compensation or another repair got there first); the
    /// text says what was found.
    AlreadyConsistent(String),
}

/// Announces a repair's change: `event` under `id`, written to the outbox in the caller's
/// transaction.
pub async fn emit<E: EventSet>(
    conn: &mut PgConnection,
    id: EventId,
    event: &E,
) -> Result<Repaired, sqlx::Error> {
    Ok(Repaired::Emitted(Box::new(
        outbox::emit_root(conn, id, event).await?,
    )))
}

/// Announces what a repair found: a change (`Ok`) is emitted as an `E` under `id`; nothing to
/// change (`Err`, what was found instead) is reported as already consistent.
pub async fn announce<T, E>(
    conn: &mut PgConnection,
    id: EventId,
    found: Result<T, impl fmt::Display>,
) -> Result<Repaired, sqlx::Error>
where
    T: Into<E>,
    E: EventSet,
{
    match found {
        Ok(change) => {
            let event: E = change.into();
            let repaired = emit(conn, id, &event).await?;
            tracing::info!(ce_type = event.ce_type(), event_id = %id, "repaired");
            Ok(repaired)
        }
        Err(found) => Ok(Repaired::AlreadyConsistent(found.to_string())),
    }
}

/// The id of the event the repair `repair` (e.g. `payment-repair-refund`) emits for saga `saga_id`
/// over the row it found, last changed at `version` (none when it found none): the same repair over
/// the same state names the same event, and a later repair of the same saga (the row went wrong
/// again) a new one.
pub fn event_id(
    repair: &str,
    saga_id: impl fmt::Display,
    version: Option<OffsetDateTime>,
) -> EventId {
    let version = version.map_or(0, OffsetDateTime::unix_timestamp_nanos);
    keyed_event_id(repair, &format!("{saga_id}@{version}"))
}

/// The `ce-type` of an operator's signature on a repair, on the DLQ stream beside their decisions
/// on dead letters.
pub const REPAIRED_TYPE: &str = "jetsaga.dlq.repaired.v1";

/// Signs the repair `repair` of `service` that emitted `change`: an event naming the operator
/// `actor`, the saga and the change, written to the same outbox in the same transaction as the
/// change (so there is no unsigned repair), and published on `dlq.<service>.repairs`, where the
/// operators' actions are kept. The change itself stays the domain event its consumers know.
pub async fn sign(
    conn: &mut PgConnection,
    service: &str,
    repair: &str,
    change: &Envelope,
    actor: &str,
) -> Result<(), sqlx::Error> {
    let id = keyed_event_id("repair-signature", &change.id.to_string());
    let body = serde_json::json!({
        "repair": repair,
        "saga_id": change.correlation_id,
        "actor": actor,
        "event_id": change.id,
        "event_type": change.ce_type,
    });
    let signature = Envelope {
        id,
        ce_type: REPAIRED_TYPE.to_owned(),
        source: format!("jetsaga/{service}"),
        time: crate::envelope::now(),
        key: format!("repair/{}", change.id),
        subject: format!("dlq.{service}.repairs"),
        traceparent: TraceParent::root(id),
        correlation_id: change.correlation_id.clone(),
        causation_id: change.id,
        payload: Bytes::from(body.to_string()),
    };
    outbox::enqueue(conn, &signature).await
}
