//! # saga-kit
//!
//! The technique every jetsaga service stands on: "write to my database and tell the other services"
//! becomes one local transaction, and "react to an event" becomes an effect that happens exactly
//! once, however often JetStream redelivers, whenever a process dies, and whatever garbage arrives.
//!
//! ## Layout
//! - [`envelope`]: CloudEvents headers, W3C `traceparent`, deterministic event ids.
//! - [`outbox`]: [`outbox::enqueue`] adds events inside the caller's transaction.
//! - [`relay`]: publishes the outbox to JetStream (`relay_batch` step + a thin loop).
//! - [`inbox`]: the `(consumer, event_id)` dedupe.
//! - [`handler`]: the [`Handler`] trait services implement, and its transient/permanent errors.
//! - [`consumer`]: the runner: decode → inbox → handler → outbox → commit → ack, dead letters, naks.
//! - [`failures`]: the runner's own count of a message's failed deliveries.
//! - [`floor`]: each consumer's ack floor in its database, where a replay may safely start.
//! - [`health`]: whether each consumer can pull, for `/health`.
//! - [`barrier`]: null compensation, hanging steps and duplicate effects, for every participant.
//! - [`compensation`]: undoing a step, the same for the compensating handler and the repair.
//! - [`dead_letter`]: storing, listing, requeueing and discarding dead letters.
//! - [`provision`]: connecting (2.10+ only), streams and their settings.
//! - [`backoff`]: the one retry policy.
//! - [`repair`]: the outcome of an operator repair, its event id, and its announcing event.
//! - [`facts`]: a service's own events applied again as recorded facts, and the state `--verify`
//!   compares.
//! - [`routes`]: a service's consumers declared once (input events to handler functions); the
//!   filters, the dispatch and the ignored events follow.
//! - [`replay`]: a service's state rebuilt from the streams: dead letters, its own facts, then the
//!   inputs it never decided.
//! - [`verify`]: the rebuilt state compared with the live one, row by row.
//! - [`retention`]: published outbox rows and inbox rows trimmed once their streams no longer
//!   hold their messages.
//! - [`stream_audit`]: published outbox rows looked for in their streams; what a stream lost is
//!   published again under the same ids.
//! - [`trace`]: one saga read back from every stream, in time order.
//! - [`otel`]: OpenTelemetry glue, the `traceparent` to and from a span's context.
//! - [`metrics`]: per-instance Prometheus metrics (`prometheus-client`), one registry each.
//! - [`migrate`]: the kit's tables, migrated with the service's own.
//!
//! Architecture Invariants:
//! - only the relay publishes events to NATS (dead-letter requeue, an operator action, is the
//!   exception);
//! - a message is acked only after the transaction holding its inbox row has committed;
//! - a consumer takes a producer's identity from the stream and subject, never from the payload.

pub mod backoff;
pub mod barrier;
pub mod compensation;
pub mod consumer;
pub mod dead_letter;
pub mod envelope;
pub mod facts;
pub mod failures;
pub mod floor;
pub mod handler;
pub mod health;
pub mod inbox;
pub mod kept;
pub mod metrics;
pub mod migrate;
pub mod otel;
pub mod outbox;
pub mod provision;
pub mod relay;
pub mod repair;
pub mod replay;
pub mod retention;
pub mod routes;
pub mod stream_audit;
pub mod trace;
pub mod verify;

pub use backoff::Backoff;
pub use consumer::{Consumer, ConsumerConfig, Disposition};
pub use envelope::Envelope;
pub use handler::{
    EventContext, Handler, HandlerError, PermanentError, TransientError, UnavailableError,
};
pub use metrics::Metrics;
pub use relay::{Relay, RelayConfig, RelayOutcome, RelayWake};
pub use routes::{Route, Wiring};

#[doc(hidden)]
pub use sqlx as __sqlx;
