//! # stock-service
//!
//! The stock participant of the jetsaga saga. It owns the units of every SKU: an operator adds
//! them over HTTP (StockAdjusted), a paid order holds them (PaymentSucceeded → StockReserved, or
//! StockFailed when any line is short, holding nothing), and a cancelled order gives them back
//! (OrderCancelled → StockReleased).
//!
//! Conservation, per SKU: the units added by adjustments equal `available` plus the units held
//! by reservations. A confirmed order keeps its units in `reserved`.
//!
//! ## Layout
//! - `main.rs`: the binary; reads settings and calls [`run`].
//! - [`consumers`]: the durable consumer names and the [`saga_kit::Handler`] per input stream,
//!   which only dispatch to the handlers.
//! - [`metrics`]: the business counter `jetsaga_stock_total{outcome}`.
//! - [`handlers`]: one file per event reacted to: `payment_succeeded.rs`, `order_cancelled.rs`.
//! - [`domain`]: the pure rules (all lines or none, adjustments, the reservation status).
//! - [`store`]: the SQL.
//! - [`repair`]: what `jetsaga reconcile --repair` may fix here: release a cancelled order's stock.
//! - [`restore`]: every event of its own stream applied again as a recorded fact, for
//!   `jetsaga replay`: one function per event, no decision taken again.
//! - [`state`]: the business state `jetsaga replay --verify` compares (stock, adjustments,
//!   reservations).
//! - [`api`]: the HTTP routes, one file each.
//! - `migrations/stock/` (at the repository root): the tables `stock`, `adjustments`,
//!   `reservations`.
//!
//! Architecture Invariant: stock rows are locked in SKU order by every writer, so concurrent
//! reservations, releases and adjustments never deadlock; the last unit goes to exactly one order.

pub mod api;
pub mod consumers;
pub mod domain;
pub mod handlers;
pub mod metrics;
pub mod repair;
pub mod restore;
pub mod state;
pub mod store;

use jetsaga_contracts::Producer;
use jetsaga_runtime::{Defaults, Service, ServiceError, Settings};
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The stock service's defaults from the design's contract table.
pub const DEFAULTS: Defaults = Defaults {
    http_addr: "127.0.0.1:8082",
    database: "jetsaga_stock",
};

/// The stock database's migrations (the kit's tables are migrated with them).
pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/stock");

/// Runs the stock service on `listener` until `shutdown` is cancelled, then stops in order.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let mut service = Service::start(settings, Producer::STOCK, &MIGRATIONS, shutdown).await?;
    consumers::wire(&mut service);
    let rt = service.runtime().clone();
    service.serve(listener, api::router(rt)).await
}
