//! # payment-service
//!
//! The payment participant of the jetsaga saga. It holds each customer's balance, charges an order
//! its total minus its discount minus the points it spends when the points step has passed
//! (PointsReserved → PaymentSucceeded | PaymentFailed), and gives the money back when the order is cancelled
//! (OrderCancelled → PaymentRefunded). Operators credit accounts over HTTP (AccountCredited).
//!
//! ## Layout
//! - `main.rs`: the thin binary: settings from flags and environment, signals, [`run`].
//! - [`consumers`]: the durable consumer names and the handlers that dispatch each input variant.
//! - [`metrics`]: the business counter `jetsaga_payments_total{outcome}`.
//! - [`handlers`]: one file per event reacted to (`points_reserved.rs`, `order_cancelled.rs`).
//! - [`domain`]: the pure rules: charge, credit, payment status transitions, payment ids.
//! - [`store`]: the SQL on accounts, credits and payments.
//! - [`repair`]: what `jetsaga reconcile --repair` may fix here: refund a cancelled order.
//! - [`restore`]: every event of its own stream applied again as a recorded fact, for
//!   `jetsaga replay`: one function per event, no decision taken again.
//! - [`state`]: the business state `jetsaga replay --verify` compares (accounts, credits,
//!   payments).
//! - [`api`]: `POST /accounts/{customer_id}/credit` and `GET /accounts/{customer_id}`.
//! - `migrations/payment/` (at the repository root): the tables, embedded as [`MIGRATIONS`].
//!
//! Architecture Invariants:
//! - a balance never goes below zero (a CHECK in SQL, [`domain::charge`] in code);
//! - an order is charged at most once and refunded at most once, and never charged after its
//!   cancellation was seen: the saga barrier (branch `payment`) decides, not ad-hoc checks;
//! - money credited = balances + sum of CHARGED payments.

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

/// The payment service's place in the external contract: HTTP on 8081, database `jetsaga_payment`.
pub const DEFAULTS: Defaults = Defaults {
    http_addr: "127.0.0.1:8081",
    database: "jetsaga_payment",
};

/// The payment service's tables (the kit's own tables are migrated with them).
pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/payment");

/// Runs the service on `listener` until `shutdown` is cancelled, then stops in order.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let mut service = Service::start(settings, Producer::PAYMENT, &MIGRATIONS, shutdown).await?;
    consumers::wire(&mut service);
    let api = api::router(service.runtime().clone());
    service.serve(listener, api).await
}
