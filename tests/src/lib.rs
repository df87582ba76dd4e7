//! # jetsaga-scenarios
//!
//! The whole system under test: five service processes started from the built binaries, a real
//! nats-server and five fresh PostgreSQL databases per scenario, driven through the public HTTP API.
//! Every scenario ends with [`checker::assert_invariants`], which checks the five invariants of the
//! design through the services' public APIs only.
//!
//! ## Layout
//! - [`system`]: starting, killing, pausing and restarting the service processes.
//! - [`listening`]: which process listens on a port, so a started service is known to be ours.
//! - [`api`]: a typed client of the five services' public HTTP API.
//! - [`ledger`]: what a scenario did (credits, stock, vouchers, points, orders), the checker's input.
//! - [`checker`]: the invariants, asserted over the public APIs.
//! - [`inject`]: publishing events straight onto the streams, as faults.
//! - [`otlp`]: an OTLP/HTTP trace receiver that keeps the spans the services export.
//!
//! Pointed at a running deployment (`JETSAGA_ORDER_URL`, `JETSAGA_PAYMENT_URL`,
//! `JETSAGA_STOCK_URL`, `JETSAGA_VOUCHER_URL`, `JETSAGA_POINTS_URL`, and `NATS_URL` for the scenarios that inject), the
//! API-only scenarios run against it; those that kill or pause processes say so and return.

pub mod api;
pub mod checker;
pub mod inject;
pub mod ledger;
pub mod listening;
pub mod netcut;
pub mod otlp;
pub mod system;

pub use api::Api;
pub use ledger::Ledger;
pub use system::{Svc, System, SystemOptions};
