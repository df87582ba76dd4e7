//! # order-service
//!
//! The order service of jetsaga: it accepts orders, starts each order's saga with OrderCreated,
//! and ends it: CONFIRMED once stock is reserved (with the voucher's discount known), CANCELLED
//! when a step fails or the order's deadline passes. It also owns the product catalogue and its
//! prices.
//!
//! ## Layout
//! - `main.rs`: the thin binary: settings from flags and environment, signals, [`run`].
//! - [`domain`]: the pure rules: the status machine ([`domain::transition`]), line checks,
//!   totals, the deadline. Unit-tested beside the code.
//! - [`store`]: the SQL for products, orders and order lines.
//! - [`api`]: the HTTP routes, one file each.
//! - [`consumers`]: the durable consumer names and the handlers that dispatch each input event.
//! - [`handlers`]: one file per event reacted to (`points_reserved.rs`, `stock_reserved.rs`, ...).
//! - [`metrics`]: its own metrics: orders accepted, sagas ended and their durations, orders past
//!   their deadline (read at scrape time).
//! - [`deadline`]: the sweep that cancels overdue orders with reason `timeout`.
//! - [`repair`]: what `jetsaga reconcile --repair` may fix here: an overdue order is cancelled.
//! - [`restore`]: every event of its own stream applied again as a recorded fact, for
//!   `jetsaga replay`: one function per event, no decision taken again.
//! - [`state`]: the business state `jetsaga replay --verify` compares (products, orders with
//!   their lines).
//!
//! Architecture Invariants:
//! - an order's status only moves PENDING → CONFIRMED or PENDING → CANCELLED, decided by
//!   [`domain::transition`] under a row lock; a terminal order never changes again;
//! - every change and the events it causes commit in one transaction (the kit's outbox); nothing
//!   here publishes to NATS.

pub mod api;
pub mod consumers;
pub mod deadline;
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
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The order service's defaults from the design's contract table.
pub const DEFAULTS: Defaults = Defaults {
    http_addr: "127.0.0.1:8080",
    database: "jetsaga_order",
};

/// The order database's migrations (the kit's own run first).
pub static MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/order");

/// Everything [`run`] needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The settings every service shares.
    pub settings: Settings,
    /// How long an order's saga may take; after that it is cancelled with reason `timeout`.
    pub order_deadline: Duration,
    /// How often overdue orders are looked for.
    pub deadline_sweep: Duration,
}

impl Config {
    /// The defaults: a 30 s deadline, swept every 500 ms.
    pub fn new(settings: Settings) -> Self {
        Config {
            settings,
            order_deadline: Duration::from_secs(30),
            deadline_sweep: Duration::from_millis(500),
        }
    }
}

/// Runs the service on `listener` until `shutdown` is cancelled, then stops in order.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let mut service =
        Service::start(config.settings, Producer::ORDER, &MIGRATIONS, shutdown).await?;
    consumers::wire(&mut service);
    let rt = service.runtime();
    rt.metrics
        .extension::<metrics::OrderMetrics>()
        .attach(rt.pool.clone());
    service.on_scrape(|rt| async move {
        if let Err(e) = metrics::count_past_deadline(&rt.metrics, &rt.pool).await {
            tracing::debug!(error = %e, "cannot count the orders past their deadline");
        }
    });
    let sweep = config.deadline_sweep;
    service.spawn_task(move |rt, shutdown| {
        deadline::run(rt.pool.clone(), rt.metrics.clone(), sweep, shutdown)
    });
    let state = api::AppState {
        rt: service.runtime().clone(),
        order_deadline: config.order_deadline,
    };
    service.serve(listener, api::router(state)).await
}
