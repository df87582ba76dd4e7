//! # jetsaga-contracts
//!
//! The business contract between the five services: what each one says on the wire. Nothing here knows
//! about NATS, PostgreSQL or retries; that technique lives in `saga-kit`.
//!
//! ## Layout
//! - [`money`]: [`Money`], an amount in integer cents that can never be negative.
//! - [`ids`]: id newtypes ([`OrderId`], [`CustomerId`], [`EventId`], ...) and validated keys ([`Sku`],
//!   [`VoucherCode`], the operator's [`Actor`]) that are safe to use as a subject token.
//! - [`producer`]: the five producing services, their streams and subject prefixes.
//! - [`event_set`]: the [`EventSet`] trait every service's event enum implements, and its decode errors.
//! - [`events`]: one module per producing service with its past-tense event enum and payloads.
//!
//! Architecture Invariant: an event is only ever named by its typed variant. The `ce-type` string and
//! the subject are derived from the variant here, in one place, and parsed back here, in one place.

pub mod asyncapi;
pub mod event_set;
pub mod events;
pub mod ids;
pub mod money;
pub mod points;
pub mod producer;

pub use event_set::{DecodeError, EventSet};
pub use events::order::{CancelReason, OrderEvent};
pub use events::payment::PaymentEvent;
pub use events::points::{PointsEvent, PointsRejectReason};
pub use events::stock::StockEvent;
pub use events::voucher::{RejectReason, VoucherEvent};
pub use events::{OrderLine, StockLine};
pub use ids::{Actor, CustomerId, EventId, InvalidKey, OrderId, Sku, VoucherCode};
pub use money::{Money, MoneyError};
pub use points::{Points, PointsError};
pub use producer::Producer;

#[doc(hidden)]
pub use schemars as __schemars;
