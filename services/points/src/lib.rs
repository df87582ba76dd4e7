//! # points-service
//!
//! The points participant of the jetsaga order saga: loyalty points, one point worth one cent.
//! Operators award points over HTTP; when the voucher step has passed the service holds the points
//! an order spends (never more than is left to pay after the voucher), or rejects the order when the
//! customer has too few. It releases them when the order is cancelled, and spends them when the
//! order is confirmed, awarding one point per full 1.00 charged. Every change is announced on the
//! POINTS stream through the outbox.
//!
//! ## Layout
//! - [`run`]: start-up: the runtime, the consumers, the HTTP routes.
//! - `main.rs`: the thin binary.
//! - [`consumers`]: the durable consumers `points-on-vouchers` and `points-on-orders`.
//! - [`metrics`]: the business counter `jetsaga_points_total{outcome}`.
//! - [`handlers`]: one file per event: `voucher_reserved.rs`, `order_cancelled.rs`,
//!   `order_confirmed.rs`.
//! - [`domain`]: the pure rules: hold statuses and their transitions, accounts, what an order holds
//!   and earns.
//! - [`store`]: the SQL of `accounts`, `awards` and `holds`.
//! - [`repair`]: what `jetsaga reconcile --repair` may fix here: release or spend a hold.
//! - [`restore`]: every event of its own stream applied again as a recorded fact.
//! - [`state`]: the business state `jetsaga replay --verify` compares.
//! - `api/`: `POST /points/{customer_id}/award` (`award.rs`), `GET /points/{customer_id}`
//!   (`balance.rs`).
//! - `migrations/points/` (at the workspace root): the tables.
//!
//! Architecture Invariants:
//! - a hold only moves through [`domain::HoldStatus::apply`], so points are spent or released once;
//! - the hold and the release go through the kit's barrier (branch `points`), so a cancellation
//!   that overtakes its VoucherReserved holds nothing.

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

/// The points service's defaults from the design's contract table.
pub const DEFAULTS: Defaults = Defaults {
    http_addr: "127.0.0.1:8084",
    database: "jetsaga_points",
};

/// The points tables; the kit's tables are migrated with them.
pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/points");

/// Runs the points service on `listener` until `shutdown` is cancelled.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let mut service = Service::start(settings, Producer::POINTS, &MIGRATIONS, shutdown).await?;
    consumers::wire(&mut service);
    let rt = service.runtime().clone();
    service.serve(listener, api::router(rt)).await
}
