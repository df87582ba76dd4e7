//! # voucher-service
//!
//! The voucher participant of the jetsaga order saga. Operators issue vouchers over HTTP; when an
//! order is created the service reserves the order's voucher (or passes an order without one with a
//! zero discount), releases it when the order is cancelled and redeems it when the order is
//! confirmed. Every change is announced on the VOUCHERS stream through the outbox.
//!
//! ## Layout
//! - [`run`]: start-up: the runtime, the consumer, the HTTP routes.
//! - `main.rs`: the thin binary: settings from flags and environment, signals, [`run`].
//! - [`consumers`]: the durable consumer `voucher-on-orders` and its dispatching [`consumers::OnOrders`].
//! - [`metrics`]: the business counter `jetsaga_vouchers_total{outcome}`.
//! - [`handlers`]: one file per order event: `order_created.rs`, `order_cancelled.rs`,
//!   `order_confirmed.rs`.
//! - [`domain`]: the pure rules: statuses and their transitions, the derived EXPIRED status, which
//!   voucher an order may use and the discount it gives.
//! - [`store`]: the SQL of the `vouchers` table.
//! - [`repair`]: what `jetsaga reconcile --repair` may fix here: release or redeem a held voucher.
//! - [`restore`]: every event of its own stream applied again as a recorded fact, for
//!   `jetsaga replay`: one function per event, no decision taken again.
//! - [`state`]: the business state `jetsaga replay --verify` compares (vouchers).
//! - `api/`: `POST /vouchers` (`issue_voucher.rs`) and `GET /vouchers/{code}` (`get_voucher.rs`).
//! - `migrations/voucher/` (at the workspace root): the `vouchers` table.
//!
//! Architecture Invariants:
//! - a voucher's status only moves through [`domain::VoucherStatus::apply`];
//! - EXPIRED is never stored, so no timer touches vouchers;
//! - the forward step and the release go through the kit's barrier (branch `voucher`), so a
//!   cancellation that overtakes its OrderCreated reserves nothing.

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

/// The voucher service's defaults from the design's contract table.
pub const DEFAULTS: Defaults = Defaults {
    http_addr: "127.0.0.1:8083",
    database: "jetsaga_voucher",
};

/// The `vouchers` table; the kit's tables are migrated with it.
pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/voucher");

/// Runs the voucher service on `listener` until `shutdown` is cancelled.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let mut service = Service::start(settings, Producer::VOUCHER, &MIGRATIONS, shutdown).await?;
    consumers::wire(&mut service);
    let rt = service.runtime().clone();
    service.serve(listener, api::router(rt)).await
}
